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

}  // namespace headscope
