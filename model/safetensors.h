// safetensors reader: 8-byte header length, JSON header, raw little-endian tensor data.
// Accepts F32, F16 and BF16; validates every offset, shape and size before anything is read.
#pragma once
#include <vector>

#include "model/mapped_file.h"
#include "model/tensor_info.h"

namespace headscope {

// Parses the header of a safetensors file held in `bytes`; throws Error with one line on any defect.
std::vector<TensorInfo> safetensors_parse(const ByteView& bytes);

}  // namespace headscope
