// Interventions described by a small JSON spec, so that the CLI, the GUI and run files use one description.
// Each entry installs hooks (hooks.h) on the points it changes; entries apply in order and compose.
//
//   {"interventions": [
//     {"type": "ablate", "heads": ["3.1", "4.2"]},                       hook_z of those heads := 0
//     {"type": "ablate", "heads": ["3.1"], "mode": "mean"}              hook_z := the head's mean (HeadMeans)
//     {"type": "scale",  "heads": ["3.1"], "factor": 0.5},               hook_z of those heads *= factor
//     {"type": "patch",  "hook": "blocks.3.attn.hook_z", "heads": ["3.1"], "positions": [4, 5]}
//                        value at the hook := the cached source run's value (heads/positions optional)
//     {"type": "steer",  "layers": [2, 3], "positions": [7], "vector": [d_model floats], "scale": 1.0}
//                        hook_resid_pre += scale * vector (positions optional: all)
//     {"type": "uniform",   "heads": ["3.1"]}                          inside the kernel: uniform attention
//     {"type": "attn_bias", "heads": ["3.1"], "keys": [0, -1], "bias": -5.0}  inside the kernel: logit bias on keys
//     {"type": "act", "heads": ["3.1"], "tau": 0.1, "beta": 0.4}    inside the kernel: ACT attention calibration
//                        (kernels/attention_act.h; tau and beta default to the paper's 0.1 and 0.4)
//   ]}
// Heads are "L.H" strings; positions are token indices (negative counts from the end).
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "hooks/hooks.h"
#include "model/config.h"

namespace headscope {

// Mean of each head's output (hook_z) over every position of a reference set of prompts: layer -> [H, d_head].
// Mean ablation replaces a head's output with this mean (runs/means.h computes it).
struct HeadMeans {
  std::map<int64_t, at::Tensor> z;
  int64_t n_prompts = 0, n_tokens = 0;
};

// "3.1,4.2" -> {(3,1), (4,2)}; throws Error naming the bad entry or the model's range.
std::vector<std::pair<int, int>> parse_heads(const std::string& list, const ModelConfig& cfg);

// A spec from a JSON file (Error naming the file when it cannot be read or parsed).
nlohmann::json load_spec(const std::string& path);
// A spec that changes `heads` ("3.1,4.2") one way: mode "zero" (ablate), "mean" (mean ablation), "act" (ACT
// calibration, tau 0.1, beta 0.4) or "scale=F".
nlohmann::json spec_for_heads(const std::string& heads, const std::string& mode, const ModelConfig& cfg);

// Whether `spec` has a mean-ablation entry (and so needs HeadMeans).
bool spec_needs_means(const nlohmann::json& spec);

// Validates `spec` against the model and installs its hooks. `source` is needed by "patch" entries, `means` by
// {"type": "ablate", "mode": "mean"} entries.
void install_interventions(const nlohmann::json& spec, const ModelConfig& cfg, Hooks& hooks,
                           const ActivationCache* source = nullptr, const HeadMeans* means = nullptr);

}  // namespace headscope
