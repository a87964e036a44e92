// The generic decoder: one forward pass for every supported family, configured by ModelConfig, over the weights of
// model/weights.h (HF layout, so hook tensors line up with TransformerLens/HF conventions); what it records from the
// attention kernel (AttnRecord -> ForwardResult). Weight loading: weights.h; RoPE: rope.h; the kernel adapter:
// attention_adapter.h.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "core/head_stats.h"
#include "model/config.h"
#include "model/weights.h"

namespace headscope {

// Every layer's attention inputs as the kernel saw them (after q/k-norm and RoPE): what a viewer keeps so that
// selecting another head costs one head's attention rows, not a forward pass.
struct AttnInputs {
  std::vector<at::Tensor> q, k;  // per layer: [T, H, d], [S, H_kv, d]
};

// What a forward pass records from the instrumented attention kernel (kernels/attention.h).
struct AttnRecord {
  bool stats = false;                 // per-head statistics for every layer (AttnLayerStats)
  int topk = 0;                       // top-k keys per query (<= 16)
  std::vector<int32_t> sinks{0};      // positions whose received mass is "sink mass"
  int waad_window = 10;               // W of the windowed attention distance
  int64_t recv_lo = 1, recv_hi = -1;  // per-key received mass from queries at relative offsets [lo, hi]
  std::vector<uint8_t> query_mask;     // [T]: only these query rows count in the received mass and its count (empty: all)
  // blocks.L.attn.hook_pattern, materialised only for these (layer, head) pairs, query rows [q_lo, q_hi) and key
  // columns [k_lo, k_hi): the probabilities of the full softmax rows the kernel used, in-kernel interventions
  // (uniform, attn_bias, act) included, cut to the window.
  std::vector<std::pair<int, int>> pattern_heads;
  int64_t q_lo = 0, q_hi = -1;  // q_hi < 0: to the end
  int64_t k_lo = 0, k_hi = -1;  // k_hi < 0: up to the last query row
  // Per query, the mass on chosen sets of keys (kernels/attention.h AttnStats::keyset_*), in every layer, without a
  // pattern row: set c of query t is keyset_keys[keyset_offsets[c (T + 1) + t] .. keyset_offsets[c (T + 1) + t + 1])
  // (absolute key positions). ForwardResult::keyset_mass holds the results.
  int n_keysets = 0;
  std::vector<int64_t> keyset_offsets;  // [n_keysets, T + 1]
  std::vector<int32_t> keyset_keys;
  // Called before each layer with (layer, n_layers); returning false cancels the pass (throws Cancelled).
  std::function<bool(int64_t, int64_t)> on_layer;
  bool key_recv = true;  // compute kStatKeyRecv (a second pass over the keys) with the statistics
  // When set, every layer's queries and keys after RoPE (q [T, H, d], k [S, H_kv, d]) are kept here, so that any
  // head's pattern can be computed afterwards without another forward (head_pattern below).
  AttnInputs* keep_inputs = nullptr;
};

// Head (layer, head)'s probabilities for query rows [q_lo, q_hi) over keys [0, q_hi): [q_hi - q_lo, q_hi], the
// kernel's own softmax rows (the same numbers a forward with AttnRecord::pattern_heads gives), from kept inputs.
at::Tensor head_pattern(const ModelConfig& c, const AttnInputs& in, int64_t layer, int64_t head, int64_t q_lo, int64_t q_hi);

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
  std::vector<at::Tensor> keyset_mass;       // one per layer when record.n_keysets: [n_keysets, H, T] float32
};

// The keys and values of the tokens already run, per layer, so that decoding one more token costs one query row
// against the cached keys instead of the whole prefix again. Buffers grow by doubling.
class KvCache {
 public:
  int64_t size() const { return n_; }  // tokens cached (the next token's position)
  void clear() { n_ = 0; }
  // Layer `layer`'s keys and values with [T, H_kv, d] rows appended (k after RoPE): [n + T, H_kv, d] views. The
  // forward pass calls it once per layer; commit() then advances the token count.
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  void commit(int64_t T) { n_ += T; }
  // Layer `layer`'s first n cached keys and values (rotated keys): [n, H_kv, d] views.
  std::pair<at::Tensor, at::Tensor> prefix(int64_t layer, int64_t n) const;

 private:
  std::vector<at::Tensor> k_, v_;  // per layer [capacity, H_kv, d]
  int64_t n_ = 0;
};

// ids: token ids (each < vocab). Logits [T, vocab] float32, or [1, vocab] for the last position only.
// hooks: user hooks at the named points (hooks/hooks.h); null or empty costs nothing.
// cache: when given, `ids` are the tokens after the cache->size() cached ones (positions n .. n + T - 1); their
// keys and values are appended. Statistics, hook values and logits are those of the new rows (per-key statistics
// and kStatKeyRecv span all n + T keys), equal to the same rows of a forward over the whole sequence.
ForwardResult forward(const ModelConfig& cfg, const Weights& w, const std::vector<int32_t>& ids, bool last_only = false,
                      const AttnRecord* record = nullptr, const class ForwardHooks* hooks = nullptr, KvCache* cache = nullptr);

// The embedded tokens at positions pos0 .. pos0 + T - 1 (learned positions added): the residual entering layer 0.
at::Tensor embed(const ModelConfig& cfg, const Weights& w, const std::vector<int32_t>& ids, int64_t pos0 = 0);

// B prompts of the same length T at once, from the residual entering layer `first_layer` (resid [B·T, D], the
// prompts' rows one after another) to each prompt's last-position logits [B, vocab]. No statistics; hook values
// hold all B·T rows in that order (in-kernel edits apply to every prompt). The layers before first_layer are not
// run: starting from a cached residual skips them. With prefix_len > 0, prompt b continues the first prefix_len
// tokens of prefixes[b] (their keys and values at each layer; the rows are positions prefix_len .. prefix_len + T - 1),
// which are not changed. Each prompt's logits equal its own forward's.
at::Tensor forward_batch(const ModelConfig& cfg, const Weights& w, const at::Tensor& resid, int64_t B, int64_t first_layer,
                         const class ForwardHooks* hooks = nullptr, const std::vector<const KvCache*>& prefixes = {},
                         int64_t prefix_len = 0);

}  // namespace headscope
