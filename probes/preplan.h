// Preplan and anchor tokens (Li et al., "Attention Illuminates LLM Reasoning: The Preplan-and-Anchor Rhythm",
// METRICS.md §3), from one forward over prompt + response (R = the response rows, t >= response_start):
//   span d(l, h) = mean over t in R of sum_s A[t, s] (t - s)          (the kernel's mean_dist, per query)
//   local heads  = the share `head_share` (30 %) of heads with the lowest d; global heads = the highest d
//   WAAD_t       = sum_s Abar_loc[t, s] min(t - s, W), W = 10          (mean of the local heads' waad, per query)
//   FAI_s        = mean over t in T(s) of Abar_glob[t, s], T(s) = {t in R : s + H_lo <= t <= min(N - 1, s + H_hi)}
//                  (H_lo = 10, H_hi = 50; `to_end`: t <= N - 1); NaN where T(s) is empty   (the global heads'
//                  per-key received mass with a relative query window and the response as query mask, over the
//                  count of those queries)
//   preplan tokens: the top `quantile` (40 %) of Delta_t = |WAAD_t - WAAD_{t+1}| over t, t + 1 in R;
//   anchor tokens:  the top 40 % of FAI (NaN excluded; prompt tokens can be anchors).
// Everything comes from per-query and per-key kernel statistics: O(layers x heads x N), never an N x N map.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "model/model.h"
#include "probes/probe.h"

namespace headscope {

struct PreplanOptions {
  int waad_window = 10;
  int64_t h_lo = 10, h_hi = 50;
  bool to_end = false;
  double head_share = 0.3;
  double quantile = 0.4;
  // Chosen head sets instead of the span ranking (for experiments and fixtures); empty: by span.
  std::vector<std::pair<int, int>> local_heads, global_heads;
};

// Items: prompts the model continues (ProbeItem::continue_tokens), or prompt + response given (response_start:
// the first response row, 1 <= response_start < N). Per item: "span" [L, H] and "local" / "global" (1 for the
// heads of each set); per token (NaN outside its domain): "waad", "delta", "fai", "preplan", "anchor" (1 for the
// chosen tokens, else 0). Scores: the means over items (for local / global: the share of items).
class PreplanProbe : public Probe {
 public:
  PreplanProbe(std::vector<ProbeItem> items, PreplanOptions o) : items_(std::move(items)), o_(std::move(o)) {}
  std::string name() const override { return "preplan"; }
  nlohmann::json params() const override;
  std::string rank_by() const override { return "span"; }
  std::vector<std::string> head_values() const override { return {"span", "local", "global"}; }
  std::vector<std::string> token_values() const override { return {"waad", "delta", "fai", "preplan", "anchor"}; }
  std::vector<ProbeItem> items(const Model& m) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

 private:
  std::vector<ProbeItem> items_;
  PreplanOptions o_;
};

// One item of given tokens (prompt + response).
ProbeItem sequence_item(const std::vector<int32_t>& tokens, int64_t response_start);
// Checks items of a prompt + response probe: continued ones fit the context, given ones have both parts.
void check_response_items(const Model& m, const std::vector<ProbeItem>& items, const std::string& probe);

inline ProbeResult preplan_probe(const Model& m, const std::vector<int32_t>& tokens, int64_t response_start, const PreplanOptions& o) {
  return run_probe(m, PreplanProbe({sequence_item(tokens, response_start)}, o));
}

}  // namespace headscope
