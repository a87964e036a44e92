// GGUF tensor dequantisation: GGML type codes, block geometry and float32 decoding of F32/F16/BF16/Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K.
//
// Results are bit-identical to the PyPI `gguf` package's `gguf.quants.dequantize`
// (checked by tests/test_dequant.cpp against tests/data/quant/, made by
// tests/reference/make_dequant_refs.py). The per-type block layouts and formulas are
// documented in model/dequant.cpp.
#pragma once

#include <cstdint>

namespace headscope {

// GGUF / ggml tensor type codes (the values stored in a GGUF tensor-info record).
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

// True if `code` is one of the GgmlType values above (the types dequantize() decodes).
bool ggml_type_supported(uint32_t code);

// "F32", "Q4_K", ... (the gguf/ggml spelling); "unknown" for a value outside the enum.
const char* ggml_type_name(GgmlType type);

// Elements per block: 1 for F32/F16/BF16, 32 for Q4_0/Q4_1/Q8_0, 256 for the K-quants.
// Throws std::invalid_argument for an unsupported type.
int64_t ggml_block_size(GgmlType type);

// Bytes per block: F32 4, F16 2, BF16 2, Q4_0 18, Q4_1 20, Q8_0 34, Q4_K 144, Q5_K 176, Q6_K 210.
// Throws std::invalid_argument for an unsupported type.
int64_t ggml_block_bytes(GgmlType type);

// Bytes taken by n elements (one row, or a whole tensor): n / block_size * block_bytes.
// Throws std::invalid_argument if n < 0 or n is not a multiple of ggml_block_size(type).
int64_t ggml_row_bytes(GgmlType type, int64_t n);

// Decodes n elements of `type` from src (ggml_row_bytes(type, n) bytes, any alignment)
// into dst[0..n) as float32. n must be a non-negative multiple of the block size
// (std::invalid_argument otherwise). Pure function with no shared state: safe to call
// from several threads at once, e.g. on disjoint block ranges of one tensor
// (src + ggml_row_bytes(type, k) is the start of element k for any block multiple k).
// NaN/inf bit patterns in F32/F16/BF16 data are carried through bit for bit
// (signalling NaNs stay signalling, payloads are kept), as numpy does.
void dequantize(GgmlType type, const void* src, float* dst, int64_t n);

// IEEE half -> float, exact for every one of the 65536 inputs (subnormals, ±0, ±inf,
// NaN payloads kept), pure integer/exact arithmetic: equals numpy's float16 -> float32.
float fp16_to_fp32(uint16_t h);

// bfloat16 -> float: the 16 bits become the top half of the float32 (exact, NaNs kept).
float bf16_to_fp32(uint16_t h);

}  // namespace headscope
