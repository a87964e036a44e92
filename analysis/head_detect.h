// Scores of one head's attention pattern against a mechanism (METRICS.md §2a, §4). A detection pattern is a set
// of keys per query row (KeySets); a score needs only each row's mass on such sets, which the attention kernel
// computes without a pattern row (AttnRecord::keyset_*): the probes (probes/) run the model and call these. The
// [T, T] overloads take a whole pattern (tests, hand-built fixtures) and go through the same row masses.
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

// Keys per query row: row t's keys are keys[offsets[t] .. offsets[t + 1]), ascending.
struct KeySets {
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> keys;
  int64_t rows() const { return static_cast<int64_t>(offsets.size()) - 1; }
  bool has(int64_t t, int64_t s) const;
  void add_row(const std::vector<int32_t>& row_keys);  // ascending
};

// The detection pattern's keys of `tokens` per row, and the same as a 0/1 matrix D [T, T] (float32).
KeySets detection_keys(DetectPattern kind, const std::vector<int32_t>& tokens);
at::Tensor detection_pattern(DetectPattern kind, const std::vector<int32_t>& tokens);
// Row t's key t - offset (none where t < offset): ARENA's stripes.
KeySets stripe_keys(int64_t T, int64_t offset);

// Per row of one pattern: the row's sum, its mass on the detection keys, on key 0 and on key t (the diagonal).
struct DetectRows {
  std::vector<double> sum, on_keys, on_first, on_current;
};
// The mass of every row of A [T, T] on `sets`' keys.
std::vector<double> row_mass(const at::Tensor& A, const KeySets& sets);
DetectRows detect_rows(const at::Tensor& A, const KeySets& D);

// TransformerLens's score from the row masses and the detection keys D.
double detect_score(const DetectRows& rows, const KeySets& D, const DetectOptions& o);
// A: one head's pattern [T, T] over `tokens` (rows sum to 1, lower triangular).
double detect_score(const at::Tensor& A, const std::vector<int32_t>& tokens, DetectPattern kind, const DetectOptions& o);

// The mean of rows first .. last (inclusive) of a per-row mass on stripe_keys(T, offset); or of A's stripe.
double stripe_mean(const std::vector<double>& stripe_mass, int64_t first, int64_t last);
double stripe_mean(const at::Tensor& A, int64_t offset, int64_t first, int64_t last);

double sink_alpha(const at::Tensor& A, int64_t k);

}  // namespace headscope
