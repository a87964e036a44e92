// C interface of the CUDA device query, callable from host code compiled without nvcc.
#pragma once

extern "C" {
// Number of CUDA devices, or -1 with `err` filled (a CUDA runtime message) when none can be queried.
int headscope_cuda_device_count(char* err, int err_len);
// Writes "name (sm_XY, N GiB)" for device i; returns 0 on success.
int headscope_cuda_device_name(int i, char* out, int out_len);
}
