// What a probe (probes/) finds, in the form the run file stores and the CLI and GUI read back: per-head scores
// [layer, head] over all items, the parameters it ran with (so that a result says how it was made), model-level
// figures, and each item's own values (per-head [L, H], per-token [T], scalars). store/ writes and reads it under
// /probes/<name>/ (schema in run_file.h); the probes fill it.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace headscope {

struct ItemResult {
  std::map<std::string, at::Tensor> heads;   // [L, H] float64
  std::map<std::string, at::Tensor> tokens;  // [T] float64, NaN where undefined
  std::map<std::string, double> scalars;
};

struct ProbeResult {
  std::string name;                          // "induction", "sinks"
  nlohmann::json params;                     // every parameter, defaults included
  std::map<std::string, at::Tensor> scores;  // [L, H] float64 each, over all items
  std::string rank_by;                       // the score heads are ranked by
  nlohmann::json summary;                    // model-level figures
  std::vector<ItemResult> items;             // per item, in item order
  std::vector<std::vector<int32_t>> item_tokens;  // each item's token ids (a continued prompt: prompt + response)
  std::vector<nlohmann::json> item_meta;          // each item's meta (probe, index, response_start, ...)
  std::vector<int64_t> run_items;            // in a run file: the run's item number of each (else empty)
};

}  // namespace headscope
