// Indirect-object identification prompts (Wang et al., "Interpretability in the Wild", arXiv 2211.00593; the task
// Merullo et al. reuse, METRICS.md §5): "When Mary and John went to the store, John gave a drink to" -> " Mary" (the
// indirect object, IO) rather than " John" (the subject, S). Templates in the paper's two orders, ABBA (IO first)
// and BABA (S first); names, places and objects drawn with a seeded generator. Corrupt prompts: ABC (the three name
// slots IO, S1, S2 all different) or the S2 <-> IO flip of Merullo et al. Names must be single tokens (with their
// leading space) for the tokenizer in use: the others are dropped, and counted. The tokenizer comes as a callback,
// so nothing here depends on a model.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace headscope {

struct IoiPrompt {
  std::string clean, corrupt;       // without the answer; both end before " IO"
  std::string io, s;                // the names: the correct and the incorrect answer (without the leading space)
  std::string order;                // "ABBA" or "BABA"
  int template_index = 0;
  std::vector<std::string> corrupt_names;  // IO, S1, S2 of the corrupt prompt
};

struct IoiOptions {
  int count = 100;
  uint64_t seed = 0;
  std::string corrupt = "abc";      // abc, or flip (S2 <-> IO)
  std::string order = "mixed";      // mixed (alternating), abba, baba
};

struct IoiSet {
  std::vector<IoiPrompt> prompts;
  int64_t names_kept = 0, names_dropped = 0;  // of the name list, by the single-token rule
};

// `encode` tokenizes without special tokens. Error when fewer than 3 names are single tokens (the task needs three),
// or on unknown options.
IoiSet make_ioi(const IoiOptions& o, const std::function<std::vector<int32_t>(const std::string&)>& encode);

// The templates, with [A] (IO in ABBA order), [B], [PLACE], [OBJECT]; exposed for the tests.
const std::vector<std::string>& ioi_templates_baba();

}  // namespace headscope
