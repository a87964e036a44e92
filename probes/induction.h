// The induction family on repeated random tokens (METRICS.md §4; ARENA 1.2 and TransformerLens head_detector):
// `rows` sequences [BOS] + r + r, r = n token ids drawn uniformly from the vocabulary (special ids excluded),
// seeded. No pattern is held: each detection pattern is a set of keys per query (analysis/head_detect.h) whose
// mass the attention kernel sums (AttnRecord::keyset_*), so memory is O(layers x heads x T) per sequence. Then
//   ARENA stripes (means over rows of the per-sequence means):
//     induction          A[i, i - n + 1] for i = n - 1 .. 2n (n + 2 rows; the first two are not induction rows)
//     induction_strict   the same for i = n + 1 .. 2n
//     previous           A[i, i - 1] for i = 1 .. 2n;   current: A[i, i] for i = 0 .. 2n
//   TransformerLens detect_head (analysis/head_detect.h), "mul" and "abs", with exclude_bos / exclude_current as
//   asked (forwarded for every sequence, unlike TransformerLens's list mode): tl_previous, tl_duplicate,
//   tl_induction and *_abs.
#pragma once
#include <cstdint>
#include <vector>

#include "analysis/head_detect.h"
#include "model/model.h"
#include "probes/probe.h"

namespace headscope {

struct InductionOptions {
  int rows = 10;
  int n = 50;
  uint64_t seed = 0;
  bool exclude_bos = false, exclude_current = false;
};

// `rows` sequences [bos] + r + r; ids uniform over [0, vocab) except special ones (splitmix64 with rejection:
// the same ids on every machine). Error when the model has no BOS token.
std::vector<std::vector<int32_t>> repeated_random_tokens(const Model& m, int rows, int n, uint64_t seed);

class InductionProbe : public Probe {
 public:
  explicit InductionProbe(InductionOptions o) : o_(o) {}
  std::string name() const override { return "induction"; }
  nlohmann::json params() const override;
  std::string rank_by() const override { return "induction"; }
  std::vector<std::string> head_values() const override;
  std::vector<ProbeItem> items(const Model& m) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

 private:
  InductionOptions o_;
};

inline ProbeResult induction_probe(const Model& m, const InductionOptions& o, const ProbeProgress& progress = nullptr) {
  return run_probe(m, InductionProbe(o), progress);
}

}  // namespace headscope
