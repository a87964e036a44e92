// Installing a checked intervention spec (intervention_spec.h) as hooks (hooks.h): each entry installs hooks
// on the points it changes, or in-kernel edits of a layer's attention; entries apply in order and compose.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <nlohmann/json.hpp>

#include "hooks/hooks.h"
#include "hooks/intervention_spec.h"
#include "model/config.h"

namespace headscope {

// Mean of each head's output (hook_z) over every position of a reference set of prompts: layer -> [H, d_head].
// Mean ablation replaces a head's output with this mean (runs/means.h computes it).
struct HeadMeans {
  std::map<int64_t, at::Tensor> z;
  int64_t n_prompts = 0, n_tokens = 0;
};

// Checks `spec` against the model (parse_spec) and installs its hooks. `source` is needed by "patch" entries,
// `means` by {"type": "ablate", "mode": "mean"} entries. Positions are checked against each forward's length
// when it runs; check_spec_positions checks them up front.
void install_interventions(const nlohmann::json& spec, const ModelConfig& cfg, Hooks& hooks,
                           const ActivationCache* source = nullptr, const HeadMeans* means = nullptr);
// The same for entries parse_spec has already checked against `cfg`.
void install_interventions(const std::vector<Intervention>& spec, const ModelConfig& cfg, Hooks& hooks,
                           const ActivationCache* source = nullptr, const HeadMeans* means = nullptr);

}  // namespace headscope
