// The sink rate of Gu et al. ("When Attention Sink Emerges in Language Models", METRICS.md §2a):
//   alpha_k(l, h) = (1 / (T - k)) sum_{t >= k} A[t, k]  on each item cut to its first T tokens,
//   Sink_k^eps    = 100 * mean over items, layers and heads of 1[alpha_k > eps]   (strict >, per item)
// with eps = 0.3, T = 64, k = 0 by default (their Table 1 reports k = 1 in their 1-based counting: the first
// token). alpha comes from the kernel's per-key received mass (kStatKeyRecv with the query window from 0) and the
// key's query count: O(layers x heads x T) per item, no T x T map. Items keep the tokenizer's BOS policy (Llama
// adds BOS, GPT-2 and Qwen do not): `bos_first` records whether token 0 is BOS.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "probes/probe.h"

namespace headscope {

struct SinkOptions {
  int64_t tokens = 64;  // T
  double eps = 0.3;
  int64_t k = 0;
  std::string input = "text";  // what the items are, recorded with the result: text, random, repeated
};

// items: token ids, each at least `tokens` long (Error naming the first shorter one); each is cut to `tokens`.
// Per item: "alpha" [L, H] and "sink" (1 where alpha > eps); scores: "sink_rate" (the mean of "sink") and "alpha".
class SinkRateProbe : public Probe {
 public:
  SinkRateProbe(std::vector<ProbeItem> items, SinkOptions o) : items_(std::move(items)), o_(std::move(o)) {}
  std::string name() const override { return "sinks"; }
  nlohmann::json params() const override;
  std::string rank_by() const override { return "sink_rate"; }
  std::vector<std::string> head_values() const override { return {"alpha", "sink"}; }
  std::vector<ProbeItem> items(const Model& m) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

 private:
  std::vector<ProbeItem> items_;
  SinkOptions o_;
};

// Token-id items as probe items (text: "item N").
std::vector<ProbeItem> id_items(const std::vector<std::vector<int32_t>>& ids, const std::string& what);

inline ProbeResult sink_rate_probe(const Model& m, const std::vector<std::vector<int32_t>>& items, const SinkOptions& o,
                                   const ProbeProgress& progress = nullptr) {
  return run_probe(m, SinkRateProbe(id_items(items, o.input), o), progress);
}

// Gu et al.'s other inputs: `count` items of T ids drawn uniformly (special ids excluded; BOS first when the
// tokenizer adds one), or one random id repeated T times (after BOS likewise). Seeded; the same on every machine.
std::vector<std::vector<int32_t>> sink_random_items(const Model& m, int count, int64_t T, bool repeated, uint64_t seed);

}  // namespace headscope
