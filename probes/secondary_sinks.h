// Primary and secondary attention sinks on prompt + response (Wong et al. use the model's own greedy continuation,
// METRICS.md §2b; Model::generate makes it): the sequence runs once with the residual after every block
// (hook_resid_post; the last layer's after the final norm, as HF's hidden_states[1:] are) and every MLP output
// recorded; analysis/sink_levels.h finds the anchor, the layer window, the flagged tokens with their l_start and
// lifetime, their class and the recurring levels. Per token it also gives the sink score at l_start,
// s_l(j) = mean over heads and later rows t of A[t, j] (the kernel's per-key received mass over its count), and
// the MLP alignment at l_start, cos(mlp_out_j, mlp_out_b).
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "probes/preplan.h"
#include "probes/probe.h"

namespace headscope {

struct SecondarySinkOptions {
  double cos_threshold = 0.9;
  std::vector<int64_t> candidates;    // anchor candidates; empty: {0, 1, 2} when the prompt starts with a special
                                      // token (a chat template), else {0, 1}
};

// Items as for the preplan probe (prompts continued by the model, or prompt + response given). Per item:
// "anchor_mass" [L, H], each head's mean attention on the anchor b (its received mass over its count); per token
// (NaN where not flagged): "l_start", "lifetime", "kind" (1 primary, 2 secondary, 3 noise), "sink_score" and
// "mlp_alignment" at l_start; per token, for every layer l, "sink_score_l<l>": s_l(j) at that layer (NaN for the
// last token, which no later row sees; what the sink view of probes/run_views.h draws); scalars: the anchor, the window [l_s, l_e), the lifetime thresholds and the largest
// |cos| with the anchor (value, position, layer). Scores: the mean anchor mass; summary: counts over all items,
// the sink levels recurring across them, every flagged token with its item and text.
class SecondarySinkProbe : public Probe {
 public:
  SecondarySinkProbe(std::vector<ProbeItem> items, SecondarySinkOptions o) : items_(std::move(items)), o_(std::move(o)) {}
  std::string name() const override { return "secondary"; }
  nlohmann::json params() const override;
  std::string rank_by() const override { return "anchor_mass"; }
  std::vector<std::string> head_values() const override { return {"anchor_mass"}; }
  // The per-layer sink scores follow the five per-token values once items(m) has seen the model's layers.
  std::vector<std::string> token_values() const override;
  std::vector<std::string> scalar_values() const override;
  std::vector<ProbeItem> items(const Model& m) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

 private:
  std::vector<ProbeItem> items_;
  SecondarySinkOptions o_;
  mutable int64_t n_layers_ = 0;  // set by items(m)
};

inline ProbeResult secondary_sink_probe(const Model& m, const std::vector<int32_t>& tokens, int64_t response_start,
                                        const SecondarySinkOptions& o) {
  return run_probe(m, SecondarySinkProbe({sequence_item(tokens, response_start)}, o));
}

}  // namespace headscope
