// Device discovery (see device.h).
#include "kernels/device.h"

#ifdef HEADSCOPE_WITH_CUDA
#include "kernels/cuda/device_query.h"
#endif

namespace headscope {

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

}  // namespace headscope
