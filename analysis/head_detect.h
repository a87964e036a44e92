// Scores of one head's attention pattern against a mechanism (METRICS.md §2a, §4), from a pattern [T, T] of one
// sequence. Pure functions over the pattern and the tokens: the probes (probes/) run the model and call these.
//
//   detect_score   TransformerLens `detect_head` (head_detector.py): detection patterns D_prev[i, i-1] = 1;
//                  D_dup[i, j] = 1 iff tok_j = tok_i, j < i; D_ind[i, j] = D_dup[i, j - 1] (j >= 1, lower
//                  triangle). "mul": sum(A * D) / sum(A) after zeroing A's BOS column and/or diagonal when
//                  excluded (rows without any target still count); "abs": 1 - round(sum|A - D| / T, 3) with the
//                  excluded entries of |A - D| zeroed.
//   stripe_mean    ARENA 1.2: the mean of A[i, i - offset] over rows first .. last (inclusive).
//   sink_alpha     Gu et al.: alpha_k = (1 / (T - k)) sum_{t >= k} A[t, k].
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace headscope {

enum class DetectPattern { previous, duplicate, induction };

struct DetectOptions {
  bool exclude_bos = false;      // zero the first key's column
  bool exclude_current = false;  // zero the diagonal
  bool abs = false;              // TransformerLens error_measure "abs" (default "mul")
};

// The 0/1 detection pattern D [T, T] (float32) of `tokens`.
at::Tensor detection_pattern(DetectPattern kind, const std::vector<int32_t>& tokens);

// A: one head's pattern [T, T] over `tokens` (rows sum to 1, lower triangular).
double detect_score(const at::Tensor& A, const std::vector<int32_t>& tokens, DetectPattern kind, const DetectOptions& o);

double stripe_mean(const at::Tensor& A, int64_t offset, int64_t first, int64_t last);

double sink_alpha(const at::Tensor& A, int64_t k);

}  // namespace headscope
