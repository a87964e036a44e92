// Needle-in-a-haystack accuracy with chosen heads changed on the decode steps only (the prompt pass runs unchanged,
// as in the reference's needle_in_haystack_with_mask.py): the heads attend uniformly ("uniform", the retrieval-head
// masking experiment) or keep only the first `sink` keys and the `window` most recent ones ("kv_window", a
// compressed KV cache). Each item is decoded greedily (at most max_new tokens, stopping after a newline) and scored
// by the ROUGE-1 recall x 100 of its answer. Two experiments build on it (the CLI's `experiment`):
//   retrieval masking  the top-K heads by retrieval score masked, against K random heads outside the top 100
//                      (several seeded draws) and against nothing masked;
//   KV budget          a fraction of heads, ranked by any [layer, head] score (or randomly), keeps its whole cache,
//                      every other head a StreamingLLM budget; with the KV memory that would be kept.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "probes/probe.h"
#include "probes/retrieval.h"

namespace headscope {

struct NiahEvalOptions {
  RetrievalOptions grid;                      // items (needles default: eval_needle()), max_new
  std::string label = "niah";                 // the probe's name in the run file
  std::string change = "none";                // none, uniform, kv_window
  std::vector<std::pair<int, int>> heads;     // the heads changed
  int64_t sink = 4, window = 64;              // kv_window
};

class NiahEvalProbe : public Probe {
 public:
  explicit NiahEvalProbe(NiahEvalOptions o);
  std::string name() const override { return o_.label; }
  nlohmann::json params() const override;
  std::string rank_by() const override { return ""; }
  std::vector<std::string> head_values() const override { return {}; }
  std::vector<std::string> scalar_values() const override { return {"rouge1", "generated", "kv_fraction"}; }
  std::vector<ProbeItem> items(const Model& m) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

 private:
  NiahEvalOptions o_;
};

// The share of the KV cache (keys and values of every layer) a sequence of T tokens keeps when `budgeted` heads keep
// only min(T, sink + window) keys; a KV head shared by several query heads (GQA) keeps everything while any of them
// is not budgeted.
double kv_fraction(const ModelConfig& cfg, const std::vector<std::pair<int, int>>& budgeted, int64_t T, int64_t sink, int64_t window);

// Heads ordered by a [layer, head] score, highest first (ties: lower layer, then lower head).
std::vector<std::pair<int, int>> heads_by_score(const at::Tensor& score);
// `count` distinct heads drawn uniformly (splitmix64, seeded) from those not in `exclude`.
std::vector<std::pair<int, int>> random_heads(const ModelConfig& cfg, int count, const std::vector<std::pair<int, int>>& exclude, uint64_t seed);

}  // namespace headscope

namespace headscope {

// The conditions of the retrieval-masking experiment: nothing changed ("niah/none"), the top `top` heads of
// `retrieval` made uniform ("niah/top<K>"), and `draws` sets of `top` random heads outside the top `exclude_top`
// ("niah/random<K>/<d>", seeds seed + d).
std::vector<NiahEvalOptions> masking_conditions(const ModelConfig& cfg, const RetrievalOptions& grid, const at::Tensor& retrieval, int top,
                                                int draws, uint64_t seed, int exclude_top = 100);

// The conditions of the KV-budget experiment: every head whole ("kv/full"), then for each ranking (name, [layer,
// head] score; an undefined tensor: a seeded random order) and each kept fraction, the first ceil(f x heads) heads
// of the ranking keep their cache and the others a sink + window budget ("kv/<ranking>/<f>").
std::vector<NiahEvalOptions> kv_budget_conditions(const ModelConfig& cfg, const RetrievalOptions& grid,
                                                  const std::vector<std::pair<std::string, at::Tensor>>& rankings,
                                                  const std::vector<double>& keep, int64_t sink, int64_t window, uint64_t seed);

}  // namespace headscope
