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
  // The linear layers' weights kept in bfloat16 and their matmuls run in bf16 with fp32 accumulation (oneDNN; AMX
  // tiles on CPUs that have them): about 7x the fp32 matmul throughput on a Sapphire Rapids core and half the weight
  // memory, at bf16's ~3 significant digits on the products' inputs. Attention, norms, RoPE and residuals stay fp32.
  bool bf16 = false;
  // A quantised GGUF's Q4_0/Q4_1/Q8_0 matrices also kept as stored, for decode steps (one-row products read those
  // bytes, not fp32's or bf16's: decoding is bound by memory bandwidth). The checkpoint's own weights, so the
  // numbers are fp32's up to the order of the sums. Costs their size in memory again (~110 MB for SmolLM2-135M).
  bool keep_blocks = false;
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};
// Debian 12's OpenBLAS (0.3.21) does not know CPUs newer than it (Emerald Rapids, for one) and falls back to its
// SSE3 "Prescott" kernels, a third of the fp32 matmul speed. Called first thing in main(): when OpenBLAS reports
// Prescott on a CPU with AVX-512 (or AVX2) and OPENBLAS_CORETYPE is unset, sets it to SkylakeX (Haswell) and
// re-executes the program, since OpenBLAS reads it only when loaded. Returns normally in every other case.
void use_fast_blas_kernels(char** argv);

// "cpu", "cuda" (= cuda:0) or "cuda:N"; Error otherwise.
ComputeDevice parse_device(const std::string& s);
// "" when this build can compute on `d` on this machine; otherwise why not, in one sentence.
std::string device_unavailable(const ComputeDevice& d);

}  // namespace headscope
