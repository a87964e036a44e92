// Activation patching of attention heads (METRICS.md §8; the TransformerLens/ARENA conventions): over pairs of
// clean and corrupt prompts of equal length, each head's output (blocks.L.attn.hook_z) — at every position, or at
// one position at a time — is taken from one run into the other, and the change in the logit difference between
// the correct and the incorrect answer at the last position is normalised:
//   denoising  clean activations into the corrupt run:  m = (LD_patch - LD_corr) / (LD_clean - LD_corr)
//   noising    corrupt activations into the clean run:  s = (LD_patch - LD_clean) / (LD_corr - LD_clean)
// with both aggregations over prompts (analysis/patching.h). Each pair runs clean and corrupt once (their head
// outputs cached), then one forward per patched (layer, head[, position]).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "model/model.h"

namespace headscope {

struct PatchPair {
  std::vector<int32_t> clean, corrupt;  // the same length
  int32_t correct = -1, incorrect = -1;  // answer tokens (the first token of each answer)
};

struct HeadPatchingOptions {
  bool noising = false;        // else denoising
  bool per_position = false;   // one position at a time ([L, H, T]), else every position at once ([L, H])
  int64_t batch = 25;          // prompts per batch of the ratio-of-means aggregation
};

struct HeadPatchingResult {
  at::Tensor ratio_of_means, mean_of_ratios;  // [L, H] or [L, H, T] float64 (NaN where no pair has signal)
  std::vector<double> ld_clean, ld_corrupt;   // per pair
  int64_t forwards = 0;
  double seconds = 0;
};

// Error for an empty pair set, pairs of different lengths (named), answers outside the vocabulary.
// `progress(done, total)` after each pair; returning false stops (Cancelled).
HeadPatchingResult patch_heads(const Model& m, const std::vector<PatchPair>& pairs, const HeadPatchingOptions& o,
                               const std::function<bool(int64_t, int64_t)>& progress = nullptr);

}  // namespace headscope
