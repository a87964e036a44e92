// Entity-binding mechanisms (METRICS.md §6, "Mixing Mechanisms"): for each item of a binding task
// (datasets/binding.h), the residual stream entering one layer (blocks.L.hook_resid_pre) at the original prompt's
// last position is replaced by the counterfactual prompt's, and the final-position logits restricted to the first
// tokens of the original's A candidate answers give P over its groups; the argmax names the mechanism (positional,
// lexical, reflexive, no effect, mixed; analysis/binding.h). Per layer one probe ("binding/layer<L>") so a layer
// sweep is one resumable job; per item it stores P, the indices q, p, k, i and the model's own answer without
// the intervention. Combined: the mechanism mix overall and by the counterfactual query's position p, the task
// accuracy, and the causal model fitted on the items with its JSS on held-out ones.
#pragma once
#include <string>
#include <vector>

#include "datasets/binding.h"
#include "probes/probe.h"

namespace headscope {

class BindingProbe : public Probe {
 public:
  BindingProbe(BindingOptions o, int layer);
  std::string name() const override { return "binding/layer" + std::to_string(layer_); }
  nlohmann::json params() const override;
  std::string rank_by() const override { return ""; }  // no per-head scores
  std::vector<std::string> head_values() const override { return {}; }
  std::vector<std::string> scalar_values() const override;
  std::vector<ProbeItem> items(const Model& m) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

 private:
  BindingOptions o_;
  int layer_;
};

// The layer the paper's example uses, scaled: round(0.7 (layers - 1)) (18 of gemma-2-2b's 26 layers).
int default_binding_layer(int64_t n_layers);

}  // namespace headscope
