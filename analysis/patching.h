// The metrics of causal interventions (METRICS.md §5, §6, §8), as pure functions: logit difference, the
// normalised patching scores (denoising m, noising s) with both aggregations over prompts, ablation KL, the
// Jensen-Shannon similarity of the binding causal model, and the top-2 %-per-stage head selection of circuit
// overlap. The patching engine and the circuit / binding jobs call these; tests pin them to METRICS.md's fixtures.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace headscope {

// logit[correct] - logit[incorrect] of one position's logits [vocab].
double logit_diff(const at::Tensor& logits, int64_t correct, int64_t incorrect);

// Denoising (a clean activation into the corrupt run): m = (LD_patch - LD_corr) / (LD_clean - LD_corr), 0 = corrupt,
// 1 = clean. Noising (a corrupt activation into the clean run; path patching): s = (LD_patch - LD_clean) /
// (LD_corr - LD_clean). NaN when |LD_clean - LD_corr| < 1e-6 (no signal to normalise by).
double denoising_score(double ld_patch, double ld_clean, double ld_corr);
double noising_score(double ld_patch, double ld_clean, double ld_corr);

// The two aggregations over prompts, per batch of `batch` prompts (the last may be shorter): the mean over batches of
// the ratio of the batch means (Merullo et al.), and the mean of the per-prompt ratios. `noising` picks s, else m.
struct PatchingAggregate {
  double ratio_of_means = 0, mean_of_ratios = 0;
};
PatchingAggregate aggregate_patching(const std::vector<double>& ld_patch, const std::vector<double>& ld_clean,
                                     const std::vector<double>& ld_corr, bool noising, int64_t batch = 25);

// KL(P_full || P_ablated) of one position, natural log, from logits [vocab] (float64 log-softmax).
double kl_from_logits(const at::Tensor& full_logits, const at::Tensor& ablated_logits);
// The same for probability vectors (terms with p = 0 are 0).
double kl_divergence(const std::vector<double>& p, const std::vector<double>& q);

// Jensen-Shannon divergence with base-2 logs (in [0, 1]) and the similarity JSS = 1 - JSD_2.
double jsd2(const std::vector<double>& p, const std::vector<double>& q);
inline double jss(const std::vector<double>& p, const std::vector<double>& q) { return 1.0 - jsd2(p, q); }

// The heads of one path-patching stage kept for a circuit: the top ceil(share x heads) by |score| (ties: the larger
// |score| first, then the lower index in [layer, head] order), as (layer, head).
std::vector<std::pair<int, int>> top_heads_of_stage(const at::Tensor& score, double share = 0.02);
// Shared / union of two head sets (0 when both are empty).
double head_overlap(const std::vector<std::pair<int, int>>& a, const std::vector<std::pair<int, int>>& b);

}  // namespace headscope
