// Primary and secondary attention sinks from residual streams (Wong et al., "On the Existence and Behaviour of
// Secondary Attention Sinks", METRICS.md §2b; the authors' hidden_state_base.py), as a pure function of the
// residual after every block, h [L, N, D] (HF's hidden_states[1:]: the last entry after the final norm):
//   1. anchor b: among the candidate positions, the largest mean over layers of ||h^l_b||;
//   2. window: Delta_l = ||h^{l+1}_b|| - ||h^l_b||, l_s = 1 + argmax Delta, l_e = 1 + argmin_{l >= l_s} Delta
//      (absolute layers; l_e = L when no Delta is left after l_s); layers [l_s, l_e) are scanned;
//   3. position j > b is flagged at layer l when |cos(h^l_j, h^l_b)| > 0.9 (absolute value);
//   4. lifetime = flagged layers, l_start = the first; primary when lifetime >= L - 15, secondary when
//      4 < lifetime < L - 15, else noise; for L < 24 the constants scale: primary >= 0.55 L, secondary > 0.1 L;
//   5. sink levels: (l_start, lifetime) pairs that recur among the secondary sinks (two or more positions).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace headscope {

struct SinkToken {
  int64_t position;
  int64_t l_start, lifetime;
  std::string kind;  // "primary", "secondary" or "noise"
};

struct SinkAnalysis {
  int64_t anchor = 0;                // b
  int64_t l_s = 0, l_e = 0;          // the scanned layers [l_s, l_e)
  at::Tensor anchor_norm;            // [L] ||h^l_b||
  std::vector<SinkToken> tokens;     // every position flagged at least once, by position
  std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> levels;  // ((l_start, lifetime), positions), most first
  double primary_min = 0, secondary_min = 0;  // the lifetime thresholds used (primary >=, secondary >)
  double max_cos = 0;                         // the largest |cos| of any later token with b inside the window
  int64_t max_cos_position = -1, max_cos_layer = -1;
};

// Step 5 alone: the recurring (l_start, lifetime) pairs among the secondary sinks of `tokens` (of one sequence or
// of many), with their counts, most first.
std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> sink_levels(const std::vector<SinkToken>& tokens);

SinkAnalysis analyze_sinks(const at::Tensor& h, const std::vector<int64_t>& candidates, double cos_threshold = 0.9);

}  // namespace headscope
