// Device discovery (see device.h).
#include "kernels/device.h"

#include <ATen/Context.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"

#ifdef HEADSCOPE_WITH_CUDA
#include "kernels/cuda/device_query.h"
#endif

namespace headscope {

void use_fast_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  using CoreName = char* (*)();
  auto corename = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!corename || std::strcmp(corename(), "Prescott") != 0) return;
  __builtin_cpu_init();
  const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : nullptr;
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then the run goes on with the slow kernels
}

DeviceInfo query_devices() {
  DeviceInfo info;
#ifdef HEADSCOPE_WITH_CUDA
  info.cuda_built = true;
  char err[256] = {0};
  int n = headscope_cuda_device_count(err, sizeof err);
  if (n < 0) info.cuda_status = std::string("no usable CUDA device (") + err + ")";
  else if (n == 0) info.cuda_status = "no CUDA device found";
  for (int i = 0; i < n; ++i) {
    char name[256];
    if (headscope_cuda_device_name(i, name, sizeof name) == 0) info.cuda_devices.push_back(name);
  }
#else
  info.cuda_status = "built without CUDA (configure with -DHEADSCOPE_CUDA=ON and nvcc on PATH)";
#endif
  return info;
}

ComputeDevice parse_device(const std::string& s) {
  ComputeDevice d;
  if (s == "cpu") return d;
  d.cuda = true;
  if (s == "cuda") return d;
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.find_first_not_of("0123456789", 5) == std::string::npos && s.size() < 10) {
    d.index = std::stoi(s.substr(5));
    return d;
  }
  throw Error("unknown device '" + s + "' (known: cpu, cuda, cuda:N)");
}

std::string device_unavailable(const ComputeDevice& d) {
  if (!d.cuda) return "";
  const DeviceInfo info = query_devices();
  if (!info.cuda_built) return "this headscope was " + info.cuda_status;
  if (d.index >= static_cast<int>(info.cuda_devices.size()))
    return info.cuda_devices.empty() ? info.cuda_status
                                     : "there are " + std::to_string(info.cuda_devices.size()) + " CUDA devices (cuda:0.." +
                                           std::to_string(info.cuda_devices.size() - 1) + ")";
  if (!at::hasCUDA()) return "the LibTorch this headscope was built against has no CUDA support (build against a CUDA LibTorch, e.g. PyTorch's)";
  return "";
}

}  // namespace headscope
