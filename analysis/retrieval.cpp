// Retrieval-head scoring of one item (see retrieval.h).
#include "analysis/retrieval.h"

#include <ATen/ATen.h>

#include <map>
#include <set>

#include "analysis/porter_stemmer.h"
#include "core/error.h"

namespace headscope {

std::pair<int64_t, int64_t> locate_needle(const std::vector<int32_t>& prompt, const std::vector<int32_t>& needle) {
  if (needle.empty()) return {-1, -1};
  const std::set<int32_t> want(needle.begin(), needle.end());
  const int64_t n = static_cast<int64_t>(needle.size()), T = static_cast<int64_t>(prompt.size());
  for (int64_t i = 0; i < T; ++i) {  // windows at the end are shorter, as in the reference's slices
    std::set<int32_t> have;
    for (int64_t j = i; j < std::min(T, i + n); ++j)
      if (want.count(prompt[j])) have.insert(prompt[j]);
    if (static_cast<double>(have.size()) / static_cast<double>(want.size()) > 0.9) return {i, i + n};
  }
  return {-1, -1};
}

at::Tensor retrieval_copy_scores(const at::Tensor& argmax_in, const std::vector<int32_t>& emitted, const std::vector<int32_t>& prompt,
                                 std::pair<int64_t, int64_t> span, bool set_mode) {
  const at::Tensor argmax = argmax_in.to(at::kInt).contiguous();
  if (argmax.dim() != 3 || argmax.size(0) != static_cast<int64_t>(emitted.size()))
    throw Error("retrieval scores: the argmax keys must be [steps, layers, heads], one step per emitted token");
  const auto [a, b] = span;
  const int64_t steps = argmax.size(0), LH = argmax.size(1) * argmax.size(2), T = static_cast<int64_t>(prompt.size());
  if (a < 0 || b <= a || b > T) throw Error("retrieval scores: the needle span is outside the prompt");
  const int32_t* k = argmax.data_ptr<int32_t>();
  std::set<int32_t> needle_set(prompt.begin() + a, prompt.begin() + b);
  at::Tensor r = at::zeros({argmax.size(1), argmax.size(2)}, at::kDouble);
  double* out = r.data_ptr<double>();
  for (int64_t h = 0; h < LH; ++h) {
    int64_t events = 0;
    std::set<int32_t> copied;
    for (int64_t n = 0; n < steps; ++n) {
      const int64_t j = k[n * LH + h];
      if (j >= a && j < b && prompt[j] == emitted[n]) ++events, copied.insert(emitted[n]);
    }
    out[h] = set_mode ? static_cast<double>(copied.size()) / static_cast<double>(needle_set.size())
                      : static_cast<double>(events) / static_cast<double>(b - a);
  }
  return r;
}

namespace {

// rouge_score's DefaultTokenizer with use_stemmer=True: lower case, [a-z0-9]+ words, words longer than 3
// characters stemmed.
std::vector<std::string> rouge_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    out.push_back(word.size() > 3 ? porter_stem(word) : word);
    word.clear();
  };
  for (unsigned char c : text) {
    const unsigned char l = (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c - 'A' + 'a') : c;
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) word += static_cast<char>(l);
    else flush();
  }
  flush();
  return out;
}

}  // namespace

double rouge1_recall(const std::string& reference, const std::string& prediction) {
  std::map<std::string, int64_t> ref, pred;
  for (auto& w : rouge_tokens(reference)) ++ref[w];
  for (auto& w : rouge_tokens(prediction)) ++pred[w];
  int64_t total = 0, overlap = 0;
  for (auto& [w, n] : ref) {
    total += n;
    auto it = pred.find(w);
    if (it != pred.end()) overlap += std::min(n, it->second);
  }
  return static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(total, 1));
}

}  // namespace headscope
