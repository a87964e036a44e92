// Entity-binding prompts (see binding.h).
#include "datasets/binding.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace headscope {

namespace {

struct Schema {
  std::vector<std::string> keys, answers;
  std::string group;     // with {K} and {V}
  std::string question;  // with {K}; ends where the answer starts
  std::string before = " ";  // what precedes an entity in the text (its single-token form)
};

const Schema& schema(const std::string& task) {
  static const Schema boxes{{"apple", "pen",  "cup",  "book", "hat",  "key",  "ball", "bag",  "shoe", "ring",
                             "lamp",  "clock", "coin", "fork", "kite", "map",  "vase", "bell", "sock", "watch"},
                            {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T"},
                            "The {K} is in box {V}. ",
                            "The {K} is in box"};
  static const Schema owners{{"Mary", "John", "Anna", "Paul", "Kate", "Mark", "Lisa", "Tom", "Sarah", "David",
                              "Emma", "James", "Laura", "Peter", "Alice", "Chris", "Susan", "Steve", "Jane", "Bob"},
                             {"pen",  "cup",  "book", "hat",  "key",  "ball", "bag",  "shoe", "ring", "lamp",
                              "clock", "coin", "fork", "kite", "map",  "vase", "bell", "sock", "watch", "apple"},
                             "{K} has the {V}. ",
                             "{K} has the"};
  // Single characters bound without spaces ("aC bA eE cB dD b" -> "A"), for character-level tokenizers.
  static const Schema letters{{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t"},
                              {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T"},
                              "{K}{V} ",
                              "{K}",
                              ""};
  if (task == "boxes") return boxes;
  if (task == "owners") return owners;
  if (task == "letters") return letters;
  throw Error("unknown binding task '" + task + "' (known: boxes, owners, letters)");
}

std::string with_slots(std::string t, const std::string& k, const std::string& v) {
  for (size_t at; (at = t.find("{K}")) != std::string::npos;) t.replace(at, 3, k);
  for (size_t at; (at = t.find("{V}")) != std::string::npos;) t.replace(at, 3, v);
  return t;
}

}  // namespace

BindingSet make_binding(const BindingOptions& o, const std::function<std::vector<int32_t>(const std::string&)>& encode) {
  const Schema& s = schema(o.task);
  if (o.groups < 4) throw Error("binding needs at least 4 groups (the four indices q, p, k and i must differ), not " + std::to_string(o.groups));
  if (o.items < 1) throw Error("binding needs at least one item");
  BindingSet set;
  std::vector<std::string> keys, answers;
  for (const std::string& k : s.keys) encode(s.before + k).size() == 1 ? keys.push_back(k), ++set.keys_kept : ++set.keys_dropped;
  for (const std::string& v : s.answers) encode(s.before + v).size() == 1 ? answers.push_back(v), ++set.answers_kept : ++set.answers_dropped;
  set.answer_prefix = s.before;
  const size_t A = static_cast<size_t>(o.groups);
  if (keys.size() < A || answers.size() < A)
    throw Error("binding task " + o.task + ": " + std::to_string(keys.size()) + " of " + std::to_string(s.keys.size()) + " keys and " +
                std::to_string(answers.size()) + " of " + std::to_string(s.answers.size()) +
                " answers are single tokens for this tokenizer; " + std::to_string(A) + " groups need " + std::to_string(A) + " of each");
  uint64_t st = o.seed;
  auto below = [&](size_t n) { return static_cast<size_t>(splitmix64(st) % n); };
  auto shuffle = [&](std::vector<size_t>& v) {
    for (size_t j = v.size(); j > 1; --j) std::swap(v[j - 1], v[below(j)]);
  };
  auto context = [&](const std::vector<std::string>& ks, const std::vector<std::string>& vs, int query) {
    BindingContext c;
    for (size_t g = 0; g < ks.size(); ++g) c.text += with_slots(s.group, ks[g], vs[g]);
    c.text += with_slots(s.question, ks[static_cast<size_t>(query)], "");
    c.keys = ks, c.answers = vs, c.query = query;
    return c;
  };
  for (int n = 0; n < o.items; ++n) {
    // The original: A distinct keys and answers, bound in a random order.
    std::vector<size_t> kp(keys.size()), vp(answers.size());
    std::iota(kp.begin(), kp.end(), 0), std::iota(vp.begin(), vp.end(), 0);
    shuffle(kp), shuffle(vp);
    std::vector<std::string> ks, vs;
    for (size_t g = 0; g < A; ++g) ks.push_back(keys[kp[g]]), vs.push_back(answers[vp[g]]);
    // Four different group indices.
    std::vector<size_t> idx(A);
    std::iota(idx.begin(), idx.end(), 0);
    shuffle(idx);
    BindingItem it;
    it.q = static_cast<int>(idx[0]), it.p = static_cast<int>(idx[1]), it.k = static_cast<int>(idx[2]), it.i = static_cast<int>(idx[3]);
    // The counterfactual: group g holds the original's key pi(g) and answer sigma(g), random permutations with
    // pi(p) = k and sigma(p) = i; it queries group p.
    auto permutation_with = [&](size_t from, size_t to) {
      std::vector<size_t> rest;
      for (size_t g = 0; g < A; ++g)
        if (g != to) rest.push_back(g);
      shuffle(rest);
      std::vector<size_t> perm(A);
      for (size_t g = 0, r = 0; g < A; ++g) perm[g] = g == from ? to : rest[r++];
      return perm;
    };
    const std::vector<size_t> pi = permutation_with(static_cast<size_t>(it.p), static_cast<size_t>(it.k));
    const std::vector<size_t> sigma = permutation_with(static_cast<size_t>(it.p), static_cast<size_t>(it.i));
    std::vector<std::string> cks, cvs;
    for (size_t g = 0; g < A; ++g) cks.push_back(ks[pi[g]]), cvs.push_back(vs[sigma[g]]);
    it.original = context(ks, vs, it.q);
    it.counterfactual = context(cks, cvs, it.p);
    set.items.push_back(std::move(it));
  }
  return set;
}

}  // namespace headscope
