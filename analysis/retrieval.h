// Retrieval heads (Wu et al., "Retrieval Head Mechanistically Explains Long-Context Factuality", METRICS.md §1; the
// authors' retrieval_head_detection.py), as pure functions of one needle-in-a-haystack item: where the needle is in
// the prompt, each head's copy events from the decode steps' argmax keys, and the ROUGE-1 recall that decides
// whether the item counts. The retrieval probe (probes/retrieval.h) runs the model and calls these.
//   locate_needle   the first window of |needle| prompt tokens whose token set covers > 0.9 of the needle's set
//   copy score      per head, over the decode steps n (each step's query is the row that emits token w_n):
//                   j* = the step's argmax key (ties: the lowest index); a copy event is a <= j* < b and
//                   prompt[j*] = w_n. mode "step": r = copy events / (b - a) (the code; can exceed 1);
//                   mode "set": r = |{w_n copied}| / |needle token set| (the paper's |g_h ∩ k| / |k|)
//   rouge1_recall   rouge_score's ROUGE-1 recall with its tokenizer (lower case, [a-z0-9]+ words) and Porter
//                   stemming of words longer than 3 characters (NLTK's, analysis/porter_stemmer.h)
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace headscope {

// [a, b) in `prompt`, or {-1, -1} when no window covers the needle.
std::pair<int64_t, int64_t> locate_needle(const std::vector<int32_t>& prompt, const std::vector<int32_t>& needle);

// argmax: [steps, L, H] int32 keys; emitted: the token each step emits (steps of them); span: [a, b).
// Returns r [L, H] float64.
at::Tensor retrieval_copy_scores(const at::Tensor& argmax, const std::vector<int32_t>& emitted, const std::vector<int32_t>& prompt,
                                 std::pair<int64_t, int64_t> span, bool set_mode);

double rouge1_recall(const std::string& reference, const std::string& prediction);

}  // namespace headscope
