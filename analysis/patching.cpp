// Metrics of causal interventions (see patching.h).
#include "analysis/patching.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"

namespace headscope {

double logit_diff(const at::Tensor& logits, int64_t correct, int64_t incorrect) {
  const int64_t V = logits.numel();
  if (correct < 0 || correct >= V || incorrect < 0 || incorrect >= V) throw Error("logit difference: token outside the vocabulary");
  const at::Tensor l = logits.reshape({-1}).to(at::kDouble);
  return l[correct].item<double>() - l[incorrect].item<double>();
}

namespace {
double normalised(double num, double den) { return std::fabs(den) < 1e-6 ? NAN : num / den; }
}  // namespace

double denoising_score(double ld_patch, double ld_clean, double ld_corr) { return normalised(ld_patch - ld_corr, ld_clean - ld_corr); }
double noising_score(double ld_patch, double ld_clean, double ld_corr) { return normalised(ld_patch - ld_clean, ld_corr - ld_clean); }

PatchingAggregate aggregate_patching(const std::vector<double>& patch, const std::vector<double>& clean, const std::vector<double>& corr,
                                     bool noising, int64_t batch) {
  const size_t n = patch.size();
  if (n == 0 || clean.size() != n || corr.size() != n) throw Error("patching: no prompts, or logit differences of different counts");
  if (batch < 1) throw Error("patching: the batch must hold at least one prompt");
  auto score = noising ? noising_score : denoising_score;
  PatchingAggregate a;
  double batches = 0, per_prompt = 0, prompts = 0;
  for (size_t b0 = 0; b0 < n; b0 += static_cast<size_t>(batch)) {
    const size_t b1 = std::min(n, b0 + static_cast<size_t>(batch));
    double mp = 0, mc = 0, mr = 0;
    for (size_t i = b0; i < b1; ++i) mp += patch[i], mc += clean[i], mr += corr[i];
    const double k = static_cast<double>(b1 - b0);
    const double r = score(mp / k, mc / k, mr / k);
    if (!std::isnan(r)) a.ratio_of_means += r, batches += 1;
  }
  for (size_t i = 0; i < n; ++i) {
    const double r = score(patch[i], clean[i], corr[i]);
    if (!std::isnan(r)) per_prompt += r, prompts += 1;
  }
  a.ratio_of_means = batches > 0 ? a.ratio_of_means / batches : NAN;
  a.mean_of_ratios = prompts > 0 ? per_prompt / prompts : NAN;
  return a;
}

double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  if (p.size() != q.size() || p.empty()) throw Error("KL divergence: distributions of different sizes");
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) kl += p[i] * (std::log(p[i]) - std::log(q[i]));
  return kl;
}

double kl_from_logits(const at::Tensor& full, const at::Tensor& ablated) {
  const at::Tensor lp = at::log_softmax(full.reshape({-1}).to(at::kDouble), 0), lq = at::log_softmax(ablated.reshape({-1}).to(at::kDouble), 0);
  if (lp.numel() != lq.numel()) throw Error("KL divergence: logits of different sizes");
  return (lp.exp() * (lp - lq)).sum().item<double>();
}

double jsd2(const std::vector<double>& p, const std::vector<double>& q) {
  if (p.size() != q.size() || p.empty()) throw Error("Jensen-Shannon divergence: distributions of different sizes");
  double d = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = 0.5 * (p[i] + q[i]);
    if (p[i] > 0) d += 0.5 * p[i] * std::log2(p[i] / m);
    if (q[i] > 0) d += 0.5 * q[i] * std::log2(q[i] / m);
  }
  return std::clamp(d, 0.0, 1.0);
}

std::vector<std::pair<int, int>> top_heads_of_stage(const at::Tensor& score_in, double share) {
  const at::Tensor s = score_in.to(at::kDouble).contiguous();
  if (s.dim() != 2) throw Error("a stage's scores must be [layer, head]");
  const int64_t H = s.size(1), n = s.numel();
  const double* p = s.data_ptr<double>();
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const double x = std::isnan(p[a]) ? -1 : std::fabs(p[a]), y = std::isnan(p[b]) ? -1 : std::fabs(p[b]);
    return x > y;
  });
  const size_t k = static_cast<size_t>(std::ceil(share * static_cast<double>(n) - 1e-9));
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i < std::min(k, order.size()); ++i) out.emplace_back(static_cast<int>(order[i] / H), static_cast<int>(order[i] % H));
  return out;
}

double head_overlap(const std::vector<std::pair<int, int>>& a, const std::vector<std::pair<int, int>>& b) {
  const std::set<std::pair<int, int>> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  std::set<std::pair<int, int>> both = sa;
  both.insert(sb.begin(), sb.end());
  size_t shared = 0;
  for (const auto& h : sa) shared += sb.count(h);
  return both.empty() ? 0.0 : static_cast<double>(shared) / static_cast<double>(both.size());
}

}  // namespace headscope
