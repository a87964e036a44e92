// What every probe returns: per-head scores [layer, head] under names, the one to rank heads by, the parameters
// it ran with (so that a result says how it was made), and model-level figures. The CLI's `score` prints them
// ranked; the probes themselves are in this folder, one file each.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace headscope {

struct ProbeResult {
  std::string name;                          // "induction", "sinks"
  nlohmann::json params;                     // every parameter, defaults included
  std::map<std::string, at::Tensor> scores;  // [L, H] float64 each
  std::string rank_by;                       // the score heads are ranked by
  nlohmann::json summary;                    // model-level figures
  std::map<std::string, at::Tensor> detail;  // per-token results [tokens] float64 (NaN where undefined), when any
};

// Called after each item with (items done, items in all); returning false stops the probe (it throws Cancelled).
using ProbeProgress = std::function<bool(int64_t, int64_t)>;

}  // namespace headscope
