// CUDA device discovery through the runtime API (statically linked cudart, no driver library at link time).
#include <cuda_runtime.h>

#include <cstdio>

#include "kernels/cuda/device_query.h"

extern "C" int headscope_cuda_device_count(char* err, int err_len) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    std::snprintf(err, err_len, "%s", cudaGetErrorString(e));
    return -1;
  }
  return n;
}

extern "C" int headscope_cuda_device_name(int i, char* out, int out_len) {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, i) != cudaSuccess) return -1;
  std::snprintf(out, out_len, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
                static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return 0;
}
