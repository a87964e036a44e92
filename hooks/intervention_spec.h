// The intervention spec: a small JSON list that the CLI, the GUI and run files share. This file reads and checks
// it, entry by entry, into plain values (no tensors, no model weights), so every mistake is reported with the
// entry's index, type and field before anything runs; interventions.h installs the checked entries as hooks.
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
//     {"type": "kv_window", "heads": ["3.1"], "sink": 4, "window": 64}  inside the kernel: the heads see only the
//                        first `sink` keys and the `window` most recent ones (a compressed KV cache)
//   ]}
// Heads are "L.H" strings; positions and keys are token indices (negative counts from the end). Numbers must be
// finite as float32. A bare list is the same as {"interventions": list}.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"

namespace headscope {

// One checked entry of a spec.
struct Intervention {
  enum class Kind { ablate, mean_ablate, scale, patch, steer, uniform, attn_bias, act, kv_window };
  Kind kind = Kind::ablate;
  std::string where;                       // how errors name it: "intervention 2 (steer)"
  std::vector<std::pair<int, int>> heads;  // (layer, head); patch: optional, all heads when empty
  float factor = 0.f;                      // scale
  std::string hook;                        // patch: the hook point
  std::vector<int64_t> positions;          // patch, steer: token positions; empty = every position
  std::vector<int> layers;                 // steer
  std::vector<float> vector;               // steer: d_model values, already multiplied by "scale"
  std::vector<int64_t> keys;               // attn_bias: key positions
  float bias = 0.f;                        // attn_bias
  float tau = 0.1f, beta = 0.4f;           // act
  int64_t sink = 4, window = 64;           // kv_window
};

// Checks every entry of `spec` against the model's shape; Error naming the entry ("intervention 1 (ablate):
// ...") and the field for the first problem.
std::vector<Intervention> parse_spec(const nlohmann::json& spec, const ModelConfig& cfg);

// Checks the positions and keys of every entry against a prompt of T tokens (-T <= p < T); Error naming the
// entry and the position. Called for every prompt before a run starts.
void check_spec_positions(const std::vector<Intervention>& spec, int64_t T);

// "3.1,4.2" -> {(3,1), (4,2)}; Error naming the bad entry or the model's range.
std::vector<std::pair<int, int>> parse_heads(const std::string& list, const ModelConfig& cfg);

// A spec from a JSON file (Error naming the file when it cannot be read or parsed).
nlohmann::json load_spec(const std::string& path);

// A spec that changes `heads` ("3.1,4.2") one way: mode "zero" (ablate), "mean" (mean ablation), "act" (ACT
// calibration, tau 0.1, beta 0.4), "uniform" (uniform attention) or "scale=F".
nlohmann::json spec_for_heads(const std::string& heads, const std::string& mode, const ModelConfig& cfg);

// A spec that steers the residual entering each of `layers` by scale x the vector in `vector_path` (a JSON list of
// d_model numbers), at every position; checked like any spec (Error naming the file or the problem).
nlohmann::json steer_spec(const std::vector<int>& layers, const std::string& vector_path, double scale, const ModelConfig& cfg);

// Whether `spec` has a mean-ablation entry (and so needs HeadMeans).
bool spec_needs_means(const nlohmann::json& spec);

}  // namespace headscope
