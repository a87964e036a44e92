// The instrumented attention kernel contract, shared by the CPU and CUDA implementations.
// Computes causal softmax attention and, in the same pass over the keys, per-head statistics, without ever
// holding a T x T map: scratch is O(tile^2) per thread, and with per-key received mass one query block's weights
// (64 x S floats, S <= 64K; beyond, a second pass recomputes the scores). No LibTorch or CUDA header here (nvcc includes it).
//
//   q    [T, H, d]     queries (float32, row-major)
//   k, v [S, H_kv, d]  keys and values; query head h reads kv head h / (H / H_kv) (GQA)
//   out  [T, H, d]     attention output
// Query t sits at absolute position q_pos0 + t and sees keys s <= q_pos0 + t (causal); with a window W > 0
// only keys s > q_pos0 + t - W; keys marked in `key_padding` are never attended.
#pragma once
#include <cstdint>
#include <string>

#include "core/head_stats.h"

namespace headscope {

constexpr int kMaxTopK = 16;

struct AttnShape {
  int64_t T = 0, S = 0, H = 0, H_kv = 0, d = 0;
  int64_t q_pos0 = 0;   // absolute position of query 0 (S - T when decoding after a prefix)
  int64_t window = 0;   // sliding window (0: full causal)
  float scale = 0.f;    // score scale; 0 means 1/sqrt(d)
};

// Which statistics to compute (core/head_stats.h is the table of them); each pointer is caller-allocated and
// filled when non-null (null: not computed, and costs nothing). Per (head, query) arrays are [H, T]; per (head, key)
// arrays are [H, S].
struct AttnStats {
  // [H, T] for each per-query float statistic id (head_stat_is_row_sum: max_prob, entropy, sink_mass, mean_dist,
  // waad, prev_mass, ...); the other entries stay null.
  float* query[kStatCount] = {};
  int32_t* argmax = nullptr;        // [H, T] the key of the largest probability (ties: the lowest index)
  int topk = 0;                     // k <= kMaxTopK
  int32_t* topk_idx = nullptr;      // [H, T, k] keys by decreasing probability (ties: lower index first); -1 pads
  float* topk_prob = nullptr;       // [H, T, k]
  const int32_t* sink_pos = nullptr;  // sink key positions (absolute) for sink_mass, n_sinks of them
  int n_sinks = 0;
  int waad_window = 10;             // W of the windowed distance
  // Per key: probability received from queries t with key + recv_lo <= t <= key + recv_hi (absolute positions,
  // recv_hi < 0: no upper bound) and query_mask[t] != 0 (null: all queries), and the count of such queries.
  float* key_recv = nullptr;        // [H, S]
  int32_t* key_count = nullptr;     // [S] (the same for every head)
  int64_t recv_lo = 1, recv_hi = -1;
  const uint8_t* query_mask = nullptr;  // [T]
  // blocks.L.attn.hook_pattern: the probabilities the kernel used (scale, bias, uniform, row bias and padding
  // included) for the n_pattern query heads listed in pattern_heads, query rows [pattern_q0, pattern_q1) and keys
  // [pattern_k0, pattern_k1); keys a row cannot see are 0. Only this window is ever held.
  const int32_t* pattern_heads = nullptr;
  int n_pattern = 0;
  int64_t pattern_q0 = 0, pattern_q1 = 0, pattern_k0 = 0, pattern_k1 = 0;
  float* pattern = nullptr;  // [n_pattern, pattern_q1 - pattern_q0, pattern_k1 - pattern_k0]
  // Mass on chosen keys per query, without a row of the pattern: for key set c and query t, the probability on
  // keys keyset_keys[keyset_offsets[c (T + 1) + t] .. keyset_offsets[c (T + 1) + t + 1]) (absolute positions, each
  // listed once; keys the row cannot see add 0). The induction family's detection patterns are such sets.
  int n_keysets = 0;
  const int64_t* keyset_offsets = nullptr;  // [n_keysets, T + 1], ascending
  const int32_t* keyset_keys = nullptr;
  float* keyset_mass = nullptr;             // [n_keysets, H, T]
  bool any() const {
    for (float* q : query)
      if (q) return true;
    return argmax || (topk > 0 && (topk_idx || topk_prob)) || key_recv || key_count || wants_pattern() || wants_keysets();
  }
  bool wants_pattern() const { return n_pattern > 0 && pattern; }
  bool wants_keysets() const { return n_keysets > 0 && keyset_mass; }
  bool needs_row_norm() const { return wants_pattern() || wants_keysets(); }  // rows' final max and 1 / sum kept
};

// Interventions applied inside the kernel.
struct AttnInterventions {
  const float* head_scale = nullptr;  // [H] output multiplier per head (0 = ablation)
  const float* logit_bias = nullptr;  // [H, S] added to the scaled scores before the softmax
  const uint8_t* uniform = nullptr;   // [H] nonzero: the head attends uniformly to the keys it can see
  const uint8_t* key_padding = nullptr;  // [S] nonzero: key is padding, never attended
  // A bias that depends on the query row, on a set of keys per head (ACT calibration, kernels/attention_act.h):
  // row_bias[h, t] is added to the scores of keys s with row_bias_keys[h, s] != 0. Both or neither.
  const float* row_bias = nullptr;         // [H, T]
  const uint8_t* row_bias_keys = nullptr;  // [H, S]
  // A key budget per head (StreamingLLM-style KV-cache compression): head h with head_window[h] > 0 sees only the
  // keys s < sink_keys and the head_window[h] most recent ones, s > t - head_window[h] (t the query's absolute
  // position); 0: every key. key_count ignores it (it counts for the heads without a budget).
  const int32_t* head_window = nullptr;    // [H]
  int64_t sink_keys = 0;
};

// CPU implementation: multi-threaded over heads and query blocks (LibTorch's thread pool).
void attention_cpu(const AttnShape& shape, const float* q, const float* k, const float* v, float* out,
                   const AttnStats& stats = {}, const AttnInterventions& iv = {});

// Why a pattern or key-set request (AttnStats::pattern_*, keyset_*) does not fit the shape, or "" when it does
// (head numbers and key positions are checked only when they are host memory). Both implementations check it.
std::string pattern_request_error(const AttnShape& shape, const AttnStats& stats, bool heads_on_host);

// Fills stats.key_count only (host arrays; O(S)). attention_cpu calls it; the CUDA path too.
void attention_key_count(const AttnShape& shape, const AttnStats& stats, const AttnInterventions& iv);

// CUDA implementation (device pointers), same contract. Returns false with `err` when CUDA is not built or
// no device is usable.
bool attention_cuda(const AttnShape& shape, const float* q, const float* k, const float* v, float* out,
                    const AttnStats& stats, const AttnInterventions& iv, char* err, int err_len);
// The same with host pointers: copies inputs to the device, runs, copies outputs and statistics back.
bool attention_cuda_from_host(const AttnShape& shape, const float* q, const float* k, const float* v, float* out,
                              const AttnStats& stats, const AttnInterventions& iv, char* err, int err_len);
bool cuda_built();      // the CUDA kernels are compiled in
bool cuda_available();  // ... and a device is usable

}  // namespace headscope
