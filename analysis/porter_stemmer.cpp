// NLTK's Porter stemmer (see porter_stemmer.h). The steps and rule tables follow Porter (1980) with NLTK's
// extensions marked where they differ.
#include "analysis/porter_stemmer.h"

#include <functional>
#include <map>
#include <vector>

namespace headscope {

namespace {

using Cond = std::function<bool(const std::string&)>;
struct Rule {
  std::string suffix, replacement;
  Cond cond;           // on the stem (the word without the suffix); empty: always
  bool double_consonant = false;  // the "*d" rule: the word ends in a double consonant
};

bool ends_with(const std::string& w, const std::string& s) { return w.size() >= s.size() && w.compare(w.size() - s.size(), s.size(), s) == 0; }

bool is_consonant(const std::string& w, size_t i) {
  const char c = w[i];
  if (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') return false;
  if (c == 'y') return i == 0 ? true : !is_consonant(w, i - 1);
  return true;
}

int measure(const std::string& stem) {  // the number of "vc" in the consonant/vowel sequence
  int m = 0;
  for (size_t i = 0; i + 1 < stem.size(); ++i)
    if (!is_consonant(stem, i) && is_consonant(stem, i + 1)) ++m;
  return m;
}

bool contains_vowel(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (!is_consonant(s, i)) return true;
  return false;
}

bool ends_double_consonant(const std::string& w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

bool ends_cvc(const std::string& w) {
  const size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != 'w' && w[n - 1] != 'x' &&
      w[n - 1] != 'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);  // NLTK extension
}

// The first rule whose suffix the word ends with decides: its replacement when its condition holds, else the word.
std::string apply(const std::string& w, const std::vector<Rule>& rules) {
  for (const Rule& r : rules) {
    if (r.double_consonant) {
      if (!ends_double_consonant(w)) continue;
      const std::string stem = w.substr(0, w.size() - 2);
      return !r.cond || r.cond(stem) ? stem + r.replacement : w;
    }
    if (ends_with(w, r.suffix)) {
      const std::string stem = w.substr(0, w.size() - r.suffix.size());
      return !r.cond || r.cond(stem) ? stem + r.replacement : w;
    }
  }
  return w;
}

const Cond m_pos = [](const std::string& s) { return measure(s) > 0; };
const Cond m_gt1 = [](const std::string& s) { return measure(s) > 1; };

std::string step1a(const std::string& w) {
  if (ends_with(w, "ies") && w.size() == 4) return w.substr(0, 1) + "ie";  // NLTK: "ties" -> "tie"
  return apply(w, {{"sses", "ss", {}}, {"ies", "i", {}}, {"ss", "ss", {}}, {"s", "", {}}});
}

std::string step1b(const std::string& w) {
  if (ends_with(w, "ied")) return w.size() == 4 ? w.substr(0, 1) + "ie" : w.substr(0, w.size() - 3) + "i";  // NLTK
  if (ends_with(w, "eed")) {
    const std::string stem = w.substr(0, w.size() - 3);
    return measure(stem) > 0 ? stem + "ee" : w;
  }
  std::string s;
  bool ok = false;
  for (const char* suf : {"ed", "ing"})
    if (ends_with(w, suf)) {
      s = w.substr(0, w.size() - std::string(suf).size());
      if (contains_vowel(s)) {
        ok = true;
        break;
      }
    }
  if (!ok) return w;
  const char last = s.back();
  return apply(s, {{"at", "ate", {}},
                   {"bl", "ble", {}},
                   {"iz", "ize", {}},
                   {"", std::string(1, last), [last](const std::string&) { return last != 'l' && last != 's' && last != 'z'; }, true},
                   {"", "e", [](const std::string& stem) { return measure(stem) == 1 && ends_cvc(stem); }}});
}

std::string step1c(const std::string& w) {  // NLTK: y -> i after a consonant that is not the first letter
  return apply(w, {{"y", "i", [](const std::string& stem) { return stem.size() > 1 && is_consonant(stem, stem.size() - 1); }}});
}

std::string step2(const std::string& w) {
  if (ends_with(w, "alli") && measure(w.substr(0, w.size() - 4)) > 0) return step2(w.substr(0, w.size() - 4) + "al");  // NLTK
  const std::string word = w;
  return apply(w, {{"ational", "ate", m_pos}, {"tional", "tion", m_pos}, {"enci", "ence", m_pos}, {"anci", "ance", m_pos},
                   {"izer", "ize", m_pos},    {"bli", "ble", m_pos},     {"alli", "al", m_pos},     {"entli", "ent", m_pos},
                   {"eli", "e", m_pos},       {"ousli", "ous", m_pos},   {"ization", "ize", m_pos}, {"ation", "ate", m_pos},
                   {"ator", "ate", m_pos},    {"alism", "al", m_pos},    {"iveness", "ive", m_pos}, {"fulness", "ful", m_pos},
                   {"ousness", "ous", m_pos}, {"aliti", "al", m_pos},    {"iviti", "ive", m_pos},   {"biliti", "ble", m_pos},
                   {"fulli", "ful", m_pos},  // NLTK
                   {"logi", "log", [word](const std::string&) { return measure(word.substr(0, word.size() - 3)) > 0; }}});  // NLTK
}

std::string step3(const std::string& w) {
  return apply(w, {{"icate", "ic", m_pos}, {"ative", "", m_pos}, {"alize", "al", m_pos}, {"iciti", "ic", m_pos},
                   {"ical", "ic", m_pos},  {"ful", "", m_pos},   {"ness", "", m_pos}});
}

std::string step4(const std::string& w) {
  return apply(w, {{"al", "", m_gt1},   {"ance", "", m_gt1}, {"ence", "", m_gt1}, {"er", "", m_gt1},   {"ic", "", m_gt1},
                   {"able", "", m_gt1}, {"ible", "", m_gt1}, {"ant", "", m_gt1},  {"ement", "", m_gt1}, {"ment", "", m_gt1},
                   {"ent", "", m_gt1},
                   {"ion", "", [](const std::string& s) { return measure(s) > 1 && !s.empty() && (s.back() == 's' || s.back() == 't'); }},
                   {"ou", "", m_gt1},   {"ism", "", m_gt1},  {"ate", "", m_gt1},  {"iti", "", m_gt1},  {"ous", "", m_gt1},
                   {"ive", "", m_gt1},  {"ize", "", m_gt1}});
}

std::string step5a(const std::string& w) {
  if (!ends_with(w, "e")) return w;
  const std::string stem = w.substr(0, w.size() - 1);
  const int m = measure(stem);
  return m > 1 || (m == 1 && !ends_cvc(stem)) ? stem : w;
}

std::string step5b(const std::string& w) {
  return apply(w, {{"ll", "l", [w](const std::string&) { return measure(w.substr(0, w.size() - 1)) > 1; }}});
}

}  // namespace

std::string porter_stem(const std::string& word) {
  // NLTK's irregular forms.
  static const std::map<std::string, std::string> pool = {
      {"sky", "sky"},         {"skies", "sky"},       {"dying", "die"},         {"lying", "lie"},     {"tying", "tie"},
      {"news", "news"},       {"innings", "inning"},  {"inning", "inning"},     {"outings", "outing"}, {"outing", "outing"},
      {"cannings", "canning"}, {"canning", "canning"}, {"howe", "howe"},         {"proceed", "proceed"}, {"exceed", "exceed"},
      {"succeed", "succeed"}};
  auto it = pool.find(word);
  if (it != pool.end()) return it->second;
  if (word.size() <= 2) return word;
  return step5b(step5a(step4(step3(step2(step1c(step1b(step1a(word))))))));
}

}  // namespace headscope
