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
  std::string question;  // with {K}; ends where the answer (after a space) starts
};

const Schema& schema(const std::string& task) {
  static const Schema boxes{{"apple", "pen",  "cup",  "book", "hat",  "key",  "ball", "bag",  "shoe", "ring",
                             "lamp",  "clock", "coin", "fork", "kite", "map",  "vase", "bell", "sock", "watch"},
                            {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T"},
                            "The {K} is in box {V}. ",
                            "Which box is the {K} in? Box"};
  static const Schema owners{{"pen",  "cup",  "book", "hat",  "key",  "ball", "bag",  "shoe", "ring", "lamp",
                              "clock", "coin", "fork", "kite", "map",  "vase", "bell", "sock", "watch", "apple"},
                             {"Mary", "John", "Anna", "Paul", "Kate", "Mark", "Lisa", "Tom", "Sarah", "David",
                              "Emma", "James", "Laura", "Peter", "Alice", "Chris", "Susan", "Steve", "Jane", "Bob"},
                             "{V} has the {K}. ",
                             "Who has the {K}? Answer:"};
  if (task == "boxes") return boxes;
  if (task == "owners") return owners;
  throw Error("unknown binding task '" + task + "' (known: boxes, owners)");
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
  for (const std::string& k : s.keys) encode(" " + k).size() == 1 ? keys.push_back(k), ++set.keys_kept : ++set.keys_dropped;
  for (const std::string& v : s.answers) encode(" " + v).size() == 1 ? answers.push_back(v), ++set.answers_kept : ++set.answers_dropped;
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
