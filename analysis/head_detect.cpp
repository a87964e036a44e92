// Pattern scores against mechanisms (see head_detect.h).
#include "analysis/head_detect.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace headscope {

at::Tensor detection_pattern(DetectPattern kind, const std::vector<int32_t>& tokens) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  at::Tensor D = at::zeros({T, T}, at::kFloat);
  float* d = D.data_ptr<float>();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      bool on = false;
      if (kind == DetectPattern::previous) on = j == i - 1;
      else if (kind == DetectPattern::duplicate) on = j < i && tokens[j] == tokens[i];
      else on = j >= 1 && j - 1 < i && tokens[j - 1] == tokens[i];  // D_dup[i, j - 1], kept where j <= i
      d[i * T + j] = on ? 1.f : 0.f;
    }
  return D;
}

double detect_score(const at::Tensor& A_in, const std::vector<int32_t>& tokens, DetectPattern kind, const DetectOptions& o) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (A_in.dim() != 2 || A_in.size(0) != T || A_in.size(1) != T)
    throw Error("detect_score: the pattern must be [T, T] for the " + std::to_string(T) + " tokens");
  const at::Tensor D = detection_pattern(kind, tokens).to(at::kDouble);
  at::Tensor A = A_in.to(at::kDouble).clone();
  if (!o.abs) {
    if (o.exclude_bos) A.select(1, 0).zero_();
    if (o.exclude_current) A.diagonal().zero_();
    const double total = A.sum().item<double>();
    return total > 0 ? (A * D).sum().item<double>() / total : 0.0;
  }
  at::Tensor diff = (A - D).abs();
  if (o.exclude_bos) diff.select(1, 0).zero_();
  if (o.exclude_current) diff.diagonal().zero_();
  return 1.0 - std::round(diff.sum().item<double>() / static_cast<double>(T) * 1000.0) / 1000.0;
}

double stripe_mean(const at::Tensor& A, int64_t offset, int64_t first, int64_t last) {
  if (first < offset || last >= A.size(0) || last < first) throw Error("stripe_mean: rows outside the pattern");
  double sum = 0;
  const at::Tensor a = A.to(at::kDouble).contiguous();
  const double* p = a.data_ptr<double>();
  for (int64_t i = first; i <= last; ++i) sum += p[i * a.size(1) + (i - offset)];
  return sum / static_cast<double>(last - first + 1);
}

double sink_alpha(const at::Tensor& A, int64_t k) {
  const int64_t T = A.size(0);
  if (k < 0 || k >= T) throw Error("sink_alpha: key outside the pattern");
  return A.to(at::kDouble).select(1, k).narrow(0, k, T - k).sum().item<double>() / static_cast<double>(T - k);
}

}  // namespace headscope
