// The decoder's weights as fp32 LibTorch tensors in the layout HF transformers uses (GGUF's permuted Llama q/k rows
// are restored at load), and the loader that fills them from a checkpoint through one table of tensor names per
// architecture and format (weights.cpp), in the manner of llama.cpp's llama-arch: every tensor the configuration
// needs is asked for by name and shape, and a tensor nobody asked for is refused by name.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "kernels/matvec.h"
#include "model/config.h"
#include "model/tensor_info.h"

namespace headscope {

class Checkpoint;

// A linear matrix as a quantised GGUF stores it (Q4_0, Q4_1, Q8_0: kernels/matvec.h), kept beside the dense one for
// one-row products (decode steps), which then read a fifth to a quarter of fp32's bytes. Empty (bits 0) otherwise.
struct KeptBlocks {
  int bits = 0;
  at::Tensor q, scale, offset;  // uint8 [rows, bytes], float [rows, cols / 32] (offset: 4-bit only)
  int64_t rows = 0, cols = 0;
  bool defined() const { return bits > 0; }
  BlockMatrix view() const;
};

struct LayerWeights {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
  at::Tensor w_qkv, b_qkv;       // [(H + 2*H_kv) * d_head, d_model]: q rows, then k, then v
  at::Tensor w_o, b_o;           // [d_model, H * d_head]
  at::Tensor q_norm, k_norm;     // [d_head] (Qwen3)
  at::Tensor w_in, b_in;         // gated: [2*d_ff, d_model] (gate rows, then up); plain: [d_ff, d_model]
  at::Tensor w_out, b_out;       // [d_model, d_ff]
  KeptBlocks k_qkv, k_o, k_in, k_out;  // the same matrices as stored (load_weights' keep_blocks)
};

struct Weights {
  at::Tensor embed;              // [vocab, d_model]
  at::Tensor pos_embed;          // [context, d_model] (GPT-2)
  at::Tensor final_w, final_b;   // final norm
  at::Tensor unembed, unembed_b; // [vocab, d_model] (the embedding itself when tied)
  at::Tensor rope_freq_factors;  // [rotary_dim/2] divisors from GGUF rope_freqs.weight, or undefined
  KeptBlocks k_unembed;
  std::vector<LayerWeights> layers;
};

// Reads, dequantises and checks every weight against the config; throws Error naming the tensor that is missing,
// has the wrong shape, or is in the checkpoint but not part of the architecture as configured.
// bf16_linear: the layers' linear matrices (q/k/v, output, MLP) converted to bfloat16 as each layer is read (the
// forward pass then runs them in bf16, transformer.cpp linear()), and the embedding and unembedding tables (one
// table when tied; looked-up rows are widened to fp32); norms and biases stay fp32.
// A stored 2-D Q4_0/Q4_1/Q8_0 tensor as KeptBlocks; empty for any other type, or a width not a multiple of 32.
KeptBlocks kept_blocks(const TensorInfo& t);

// keep_blocks: the linear matrices and the unembedding that a GGUF stores as Q4_0, Q4_1 or Q8_0 are also kept in
// those blocks (KeptBlocks), for decode steps; a matrix whose parts mix types, or another type, is not.
Weights load_weights(const Checkpoint& ck, const ModelConfig& cfg, bool bf16_linear = false, bool keep_blocks = false);
// The same weights on another device (each defined tensor copied there).
Weights weights_to(const Weights& w, const at::Device& device);

}  // namespace headscope
