// Entity-binding prompts after "Mixing Mechanisms: How Language Models Retrieve Bound Entities In-Context"
// (METRICS.md §6): a context binds A groups, each a key entity to an answer entity ("The pen is in box C."), and a
// query restates one group's key ("The pen is in box" -> " C"). Each item pairs an original context
// with a counterfactual one over the same entities, bound and ordered differently, chosen so that four group
// indices of the original are all different:
//   q  the original's queried group (the answer when the intervention has no effect)
//   p  the counterfactual's queried group, by position (positional mechanism: the original's answer at p)
//   k  the group of the original bound to the counterfactual's query key (lexical: "keyload")
//   i  the group of the original whose answer is the counterfactual's answer (reflexive: "payload")
// Tasks, each query completing its group's statement (what a small model can do): boxes ("The pen is in box C." …
// "The pen is in box" -> " C"), owners ("Mary has the pen." … "Mary has the" -> " pen") and letters ("aC bA eE" …
// "b" -> "A": single characters without spaces, for character-level tokenizers and planted models). Entities that
// are not one token (with their leading space, where the task has one) for the tokenizer in use are dropped, and
// counted (each candidate answer is read from its one token). Seeded: the same items on every machine.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace headscope {

struct BindingContext {
  std::string text;                  // the groups, then the query, ending where the answer starts
  std::vector<std::string> keys, answers;  // per group, in context order (without the space before them)
  int query = 0;                     // the queried group
};

struct BindingItem {
  BindingContext original, counterfactual;
  int q = 0, p = 0, k = 0, i = 0;
};

struct BindingOptions {
  std::string task = "boxes";  // boxes, owners, letters
  int groups = 5;              // A, 4 .. the entities available
  int items = 100;
  uint64_t seed = 0;
};

struct BindingSet {
  std::vector<BindingItem> items;
  std::string answer_prefix;  // what precedes an answer's token: " " (its first token is the candidate's)
  int64_t keys_kept = 0, keys_dropped = 0, answers_kept = 0, answers_dropped = 0;
};

// `encode` tokenizes without special tokens. Error for an unknown task, fewer than 4 groups (q, p, k and i must
// differ), or fewer single-token entities than groups.
BindingSet make_binding(const BindingOptions& o, const std::function<std::vector<int32_t>(const std::string&)>& encode);

}  // namespace headscope
