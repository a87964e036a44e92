// The decoder's weights as fp32 LibTorch tensors in the layout HF transformers uses (GGUF's permuted Llama q/k rows
// are restored at load), and the loader that fills them from a checkpoint through one table of tensor names per
// architecture and format (weights.cpp), in the manner of llama.cpp's llama-arch: every tensor the configuration
// needs is asked for by name and shape, and a tensor nobody asked for is refused by name.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "model/config.h"

namespace headscope {

class Checkpoint;

struct LayerWeights {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
  at::Tensor w_qkv, b_qkv;       // [(H + 2*H_kv) * d_head, d_model]: q rows, then k, then v
  at::Tensor w_o, b_o;           // [d_model, H * d_head]
  at::Tensor q_norm, k_norm;     // [d_head] (Qwen3)
  at::Tensor w_in, b_in;         // gated: [2*d_ff, d_model] (gate rows, then up); plain: [d_ff, d_model]
  at::Tensor w_out, b_out;       // [d_model, d_ff]
};

struct Weights {
  at::Tensor embed;              // [vocab, d_model]
  at::Tensor pos_embed;          // [context, d_model] (GPT-2)
  at::Tensor final_w, final_b;   // final norm
  at::Tensor unembed, unembed_b; // [vocab, d_model] (the embedding itself when tied)
  at::Tensor rope_freq_factors;  // [rotary_dim/2] divisors from GGUF rope_freqs.weight, or undefined
  std::vector<LayerWeights> layers;
};

// Reads, dequantises and checks every weight against the config; throws Error naming the tensor that is missing,
// has the wrong shape, or is in the checkpoint but not part of the architecture as configured.
// bf16_linear: the layers' linear matrices (q/k/v, output, MLP) converted to bfloat16 as each layer is read (the
// forward pass then runs them in bf16, transformer.cpp linear()); embeddings, the unembedding (logits keep fp32's
// digits), norms and biases stay fp32.
Weights load_weights(const Checkpoint& ck, const ModelConfig& cfg, bool bf16_linear = false);
// The same weights on another device (each defined tensor copied there).
Weights weights_to(const Weights& w, const at::Device& device);

}  // namespace headscope
