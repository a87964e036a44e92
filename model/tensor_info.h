// A tensor as a checkpoint stores it: name, storage type, shape and a pointer into the mapped file.
// Shapes are outermost-first (PyTorch order) for every format; GGUF's innermost-first dims are reversed on read.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/dequant.h"

namespace headscope {

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> shape;  // outermost first
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

std::string shape_str(const std::vector<int64_t>& shape);  // "[576, 49152]"

}  // namespace headscope
