// Which compute devices headscope can use: always the CPU; CUDA GPUs when the CUDA kernels were built
// (HEADSCOPE_CUDA) and a device is present. No LibTorch or CUDA header here.
#pragma once
#include <string>
#include <vector>

namespace headscope {

struct DeviceInfo {
  bool cuda_built = false;              // the CUDA kernels are compiled into this binary
  std::vector<std::string> cuda_devices;  // "NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)"
  std::string cuda_status;              // why no device is usable, when none is
};

DeviceInfo query_devices();

// Where a model computes: the CPU, or CUDA device `index`.
struct ComputeDevice {
  bool cuda = false;
  int index = 0;
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};
// "cpu", "cuda" (= cuda:0) or "cuda:N"; Error otherwise.
ComputeDevice parse_device(const std::string& s);
// "" when this build can compute on `d` on this machine; otherwise why not, in one sentence.
std::string device_unavailable(const ComputeDevice& d);

}  // namespace headscope
