// Rotary position embeddings: the cos/sin tables of every RoPE variant the supported families use (default,
// linear, dynamic NTK, llama3, yarn), with GGUF's per-frequency divisors (rope_freqs.weight).
#pragma once
#include <ATen/core/Tensor.h>

#include "model/config.h"

namespace headscope {

// cos/sin multipliers for positions 0..T-1 (yarn's attention factor folded in), on the CPU.
struct RopeTables {
  at::Tensor cos, sin;  // [T, rotary_dim/2]
};
RopeTables rope_tables(const ModelConfig& cfg, const at::Tensor& freq_factors, int64_t T);

// Rotates the first rotary_dim features of each head of x [T, H, d] (HF's rotate_half pairing).
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& rt, int64_t rotary_dim);

}  // namespace headscope
