// Indirect-object identification prompts (see ioi.h).
#include "datasets/ioi.h"

#include <set>

#include "core/error.h"
#include "core/random.h"

namespace headscope {

namespace {

// Common English first names (the task needs many that are one token each for a given tokenizer).
const std::vector<std::string>& names() {
  static const std::vector<std::string> n = {
      "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Anna", "Paul", "Mark", "Lisa", "Kate", "Sarah", "David", "Michael",
      "Robert", "Emma", "Alice", "Bob", "Jack", "Jane", "Peter", "Susan", "Laura", "Ben", "Sam", "Max", "Eric", "Adam", "Ryan", "Kevin",
      "Brian", "Jason", "Matt", "Chris", "Steve", "George", "Henry", "Frank", "Grace", "Helen", "Julia", "Rachel", "Nancy", "Karen",
      "Linda", "Jessica", "Daniel", "Andrew", "Joseph", "Charles", "Thomas", "William", "Richard", "Edward", "Victoria", "Rose", "Lucy",
      "Leo", "Luke", "Nick", "Tim", "Joe", "Bill", "Fred", "Carl", "Ann", "Jim", "Ted", "Ray", "Roy", "Ruth", "Joan", "Jean", "Carol"};
  return n;
}
const std::vector<std::string>& places() {
  static const std::vector<std::string> p = {"store", "garden", "restaurant", "school", "hospital", "office", "house", "station",
                                             "park", "market", "library", "beach"};
  return p;
}
const std::vector<std::string>& objects() {
  static const std::vector<std::string> o = {"ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack", "book",
                                             "bag", "letter", "flower"};
  return o;
}

std::string fill(std::string t, const std::string& a, const std::string& b, const std::string& b2, const std::string& place,
                 const std::string& object) {
  // [B] appears twice: the first is the subject's first mention (S1), the second its repeat (S2).
  auto replace_first = [&](const std::string& key, const std::string& v) {
    const size_t at = t.find(key);
    if (at != std::string::npos) t.replace(at, key.size(), v);
  };
  replace_first("[B]", b);
  replace_first("[B]", b2);
  for (;;) {
    const size_t at = t.find("[A]");
    if (at == std::string::npos) break;
    t.replace(at, 3, a);
  }
  for (const char* key : {"[PLACE]", "[OBJECT]"})
    for (size_t at; (at = t.find(key)) != std::string::npos;) t.replace(at, std::string(key).size(), key[1] == 'P' ? place : object);
  return t;
}

}  // namespace

const std::vector<std::string>& ioi_templates_baba() {
  // S first (BABA): "[B] and [A] ... [B] ... to" -> [A]. The prompt stops before the final [A].
  static const std::vector<std::string> t = {
      "Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to",
      "Then, [B] and [A] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to",
      "Then, [B] and [A] were working at the [PLACE]. [B] decided to give a [OBJECT] to",
      "After [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to",
      "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give it to",
      "While [B] and [A] were working at the [PLACE], [B] gave a [OBJECT] to",
      "Afterwards, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to",
      "Friends [B] and [A] found a [OBJECT] at the [PLACE]. [B] gave it to",
  };
  return t;
}

IoiSet make_ioi(const IoiOptions& o, const std::function<std::vector<int32_t>(const std::string&)>& encode) {
  if (o.corrupt != "abc" && o.corrupt != "flip") throw Error("IOI corrupt prompts must be abc or flip, not '" + o.corrupt + "'");
  if (o.order != "mixed" && o.order != "abba" && o.order != "baba") throw Error("IOI order must be mixed, abba or baba, not '" + o.order + "'");
  if (o.count < 1) throw Error("IOI needs at least one prompt");
  IoiSet set;
  std::vector<std::string> ok;
  for (const std::string& n : names()) {
    if (encode(" " + n).size() == 1) ok.push_back(n);
    else ++set.names_dropped;
  }
  set.names_kept = static_cast<int64_t>(ok.size());
  if (ok.size() < 3)
    throw Error("IOI: only " + std::to_string(ok.size()) + " of " + std::to_string(names().size()) +
                " names are single tokens for this tokenizer; the task needs three");
  uint64_t s = o.seed;
  auto pick = [&](const std::vector<std::string>& v) { return v[splitmix64(s) % v.size()]; };
  auto distinct = [&](std::set<std::string> avoid) {
    for (;;) {
      const std::string n = pick(ok);
      if (!avoid.count(n)) return n;
    }
  };
  const auto& templates = ioi_templates_baba();
  for (int i = 0; i < o.count; ++i) {
    IoiPrompt p;
    p.template_index = static_cast<int>(splitmix64(s) % templates.size());
    p.order = o.order == "abba" ? "ABBA" : o.order == "baba" ? "BABA" : (i % 2 ? "BABA" : "ABBA");
    p.io = pick(ok);
    p.s = distinct({p.io});
    const std::string place = pick(places()), object = pick(objects());
    std::string t = templates[static_cast<size_t>(p.template_index)];
    if (p.order == "ABBA") {  // IO first: swap the first "[B] and [A]"
      const size_t at = t.find("[B] and [A]");
      t.replace(at, 11, "[A] and [B]");
    }
    p.clean = fill(t, p.io, p.s, p.s, place, object);
    if (o.corrupt == "abc") {  // three different names in the IO, S1 and S2 slots
      const std::string a = distinct({}), b = distinct({a}), c = distinct({a, b});
      p.corrupt = fill(t, a, b, c, place, object);
      p.corrupt_names = {a, b, c};
    } else {  // S2 <-> IO: the repeated name becomes the IO's
      p.corrupt = fill(t, p.io, p.s, p.io, place, object);
      p.corrupt_names = {p.io, p.s, p.io};
    }
    set.prompts.push_back(std::move(p));
  }
  return set;
}

}  // namespace headscope
