// Two run files side by side: for every head statistic both record and every probe score both hold, each run's
// [layer, head] values, the difference b - a and the heads ranked by |b - a|. For an intervention against the clean
// run (an ablated head), a quantised model against its F16 original, or one model on two prompt sets. The runs'
// models must have the same shape (layers, heads). Plain data (no LibTorch in this header), with a JSON form that the
// CLI prints (`headscope compare`) and the GUI can show; probes/run_views.h turns an entry into a comparison figure.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace headscope {

struct HeadDiff {
  int layer = 0, head = 0;
  double a = 0, b = 0, diff = 0;  // diff = b - a
  double relative = 0;            // (b - a) / |a|; NaN when a is 0 or NaN
};

struct CompareEntry {
  std::string kind;   // "stat" (recorded per token: /stats/<name>) or "score" (a probe's combined score)
  std::string name;   // "entropy", or "<probe>/<score>" ("induction/induction", "circuit/logits/effect")
  std::string units;  // the statistic's units as stored ("" for scores)
  // stat: how many items entered the means (recorded in both runs, matched by index), and how many of them hold
  // other token ids in the two runs (other prompts, or other tokenizers: the comparison is then of different texts).
  int64_t items = 0, items_with_other_tokens = 0;
  std::vector<double> a, b, diff;  // [layers * heads], row-major
  std::vector<HeadDiff> ranked;    // every head by |b - a|, largest first (NaN last; ties: lower layer, then head)
};

struct RunComparison {
  std::string path_a, path_b;
  int64_t layers = 0, heads = 0;
  std::vector<CompareEntry> entries;  // statistics (by name), then scores (by probe, score)
};

struct CompareOptions {
  // Keep only these entries (a statistic's name, "<probe>/<score>", or a probe's name for all its scores); empty:
  // everything both runs have. A name neither run has both of is an Error naming what they share.
  std::vector<std::string> only;
};

// Statistics: the mean over each item's tokens (NaN rows skipped), then the mean over the items recorded in both runs
// (items matched by index, up to the shorter run), separately for a and b. Runs still recording count the items that
// have landed. Scores: only when both runs are complete (a recording run has no combined scores yet) and both hold
// the probe and score. Error (one line) when either file is not a run file, the models' shapes differ (both named),
// or nothing can be compared.
RunComparison compare_runs(const std::string& a, const std::string& b, const CompareOptions& o = {});

// The per-head mean of a statistic over chosen items of one run: mean over each item's tokens, then over the items
// ([layers * heads]; what compare_runs uses for each side).
class RunReader;
std::vector<double> mean_stat(const RunReader& r, const std::string& stat, const std::vector<int64_t>& items);

// JSON: {"a", "b", "layers", "heads", "entries": [{"kind", "name", "units", "items", "items_with_other_tokens",
// "a", "b", "diff" ([layer][head], NaN as null), "ranked": [{"head": "L.H", "layer", "head_index", "a", "b",
// "diff", "relative"}]}]}; `top` > 0 keeps the first `top` ranked heads of each entry.
nlohmann::json to_json(const RunComparison& c, int top = 0);

}  // namespace headscope
