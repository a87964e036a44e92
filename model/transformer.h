// The generic decoder: one forward pass for every supported family, configured by ModelConfig.
// Weights are held as fp32 LibTorch tensors in the layout HF transformers uses (GGUF's permuted Llama q/k
// rows are restored at load), so hook tensors line up with TransformerLens/HF conventions.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "core/head_stats.h"
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

// Reads, dequantises and checks every weight against the config; throws Error naming the tensor.
Weights load_weights(const Checkpoint& ck, const ModelConfig& cfg);

// Rotary inverse frequencies [rotary_dim/2] (float32) and the cos/sin multiplier, for a sequence of length T.
struct RopeTables {
  at::Tensor cos, sin;  // [T, rotary_dim/2]
};
RopeTables rope_tables(const ModelConfig& cfg, const at::Tensor& freq_factors, int64_t T);

// What a forward pass records from the instrumented attention kernel (kernels/attention.h).
struct AttnRecord {
  bool stats = false;                 // per-head statistics for every layer (AttnLayerStats)
  int topk = 0;                       // top-k keys per query (<= 16)
  std::vector<int32_t> sinks{0};      // positions whose received mass is "sink mass"
  int waad_window = 10;               // W of the windowed attention distance
  int64_t recv_lo = 1, recv_hi = -1;  // per-key received mass from queries at relative offsets [lo, hi]
  // blocks.L.attn.hook_pattern, materialised only for these (layer, head) pairs, query rows [q_lo, q_hi) and key
  // columns [k_lo, k_hi): the probabilities of the full softmax rows the kernel used, in-kernel interventions
  // (uniform, attn_bias, act) included, cut to the window.
  std::vector<std::pair<int, int>> pattern_heads;
  int64_t q_lo = 0, q_hi = -1;  // q_hi < 0: to the end
  int64_t k_lo = 0, k_hi = -1;  // k_hi < 0: up to the last query row
  // Called before each layer with (layer, n_layers); returning false cancels the pass (throws Cancelled).
  std::function<bool(int64_t, int64_t)> on_layer;
  bool key_recv = true;  // compute kStatKeyRecv (a second pass over the keys) with the statistics
};

// Statistics of one layer, by id (core/head_stats.h): stat[id] is [H, T] (queries, or keys for per-key ones),
// float32 or int32 as the table says; undefined when not computed (kStatKeyRecv without AttnRecord::key_recv).
struct AttnLayerStats {
  at::Tensor stat[kStatCount];
  at::Tensor topk_idx, topk_prob;  // [H, T, k]
  const at::Tensor& operator[](int id) const { return stat[id]; }
};

struct ForwardResult {
  at::Tensor logits;                         // [T, vocab] or [1, vocab]
  std::vector<AttnLayerStats> attn;          // one per layer when record.stats
  at::Tensor key_count;                      // [T] queries counted per key (same for every layer and head)
  std::vector<std::pair<std::pair<int, int>, at::Tensor>> patterns;  // ((layer, head), [rows, keys]) probabilities
};

// ids: token ids (each < vocab). Logits [T, vocab] float32, or [1, vocab] for the last position only.
// hooks: user hooks at the named points (hooks/hooks.h); null or empty costs nothing.
ForwardResult forward(const ModelConfig& cfg, const Weights& w, const std::vector<int32_t>& ids, bool last_only = false,
                      const AttnRecord* record = nullptr, const class ForwardHooks* hooks = nullptr);

}  // namespace headscope
