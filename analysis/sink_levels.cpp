// Primary and secondary sinks from residual streams (see sink_levels.h).
#include "analysis/sink_levels.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>

#include "core/error.h"

namespace headscope {

SinkAnalysis analyze_sinks(const at::Tensor& h_in, const std::vector<int64_t>& candidates, double cos_threshold) {
  if (h_in.dim() != 3 || h_in.size(0) < 2) throw Error("sink analysis: the residuals must be [layers >= 2, tokens, d_model]");
  const at::Tensor h = h_in.to(at::kDouble);
  const int64_t L = h.size(0), N = h.size(1);
  SinkAnalysis a;
  // 1. The anchor.
  const at::Tensor norms = h.norm(2, -1);  // [L, N]
  double best = -1;
  for (int64_t c : candidates) {
    if (c < 0 || c >= N) continue;
    const double m = norms.select(1, c).mean().item<double>();
    if (m > best) best = m, a.anchor = c;
  }
  if (best < 0) throw Error("sink analysis: no anchor candidate inside the " + std::to_string(N) + " tokens");
  const int64_t b = a.anchor;
  a.anchor_norm = norms.select(1, b).contiguous();
  // 2. The layer window from the anchor's norm steps.
  const at::Tensor delta = a.anchor_norm.narrow(0, 1, L - 1) - a.anchor_norm.narrow(0, 0, L - 1);  // [L - 1]
  a.l_s = 1 + delta.argmax().item<int64_t>();
  a.l_e = a.l_s < L - 1 ? 1 + a.l_s + delta.narrow(0, a.l_s, L - 1 - a.l_s).argmin().item<int64_t>() : L;
  // 3-4. Flags, lifetimes, classes.
  a.primary_min = L >= 24 ? static_cast<double>(L - 15) : 0.55 * static_cast<double>(L);
  a.secondary_min = L >= 24 ? 4.0 : 0.1 * static_cast<double>(L);
  const at::Tensor unit = h / h.norm(2, -1, true).clamp_min(1e-30);
  const at::Tensor cosb = (unit * unit.select(1, b).unsqueeze(1)).sum(-1).abs();  // [L, N]
  for (int64_t j = b + 1; j < N; ++j) {
    int64_t lifetime = 0, l_start = -1;
    for (int64_t l = a.l_s; l < a.l_e; ++l) {
      const double c = cosb[l][j].item<double>();
      if (c > a.max_cos) a.max_cos = c, a.max_cos_position = j, a.max_cos_layer = l;
      if (c > cos_threshold) {
        ++lifetime;
        if (l_start < 0) l_start = l;
      }
    }
    if (lifetime == 0) continue;
    const double lt = static_cast<double>(lifetime);
    const std::string kind = lt >= a.primary_min ? "primary" : lt > a.secondary_min ? "secondary" : "noise";
    a.tokens.push_back({j, l_start, lifetime, kind});
  }
  a.levels = sink_levels(a.tokens);
  return a;
}

std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> sink_levels(const std::vector<SinkToken>& tokens) {
  std::map<std::pair<int64_t, int64_t>, int64_t> count;
  for (const SinkToken& t : tokens)
    if (t.kind == "secondary") ++count[{t.l_start, t.lifetime}];
  std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> levels;
  for (auto& [key, n] : count)
    if (n >= 2) levels.push_back({key, n});
  std::stable_sort(levels.begin(), levels.end(), [](auto& x, auto& y) { return x.second > y.second; });
  return levels;
}

}  // namespace headscope
