// The preplan-and-anchor probe (see preplan.h).
#include "probes/preplan.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace headscope {

namespace {

// 1 for the top `q` share (ceil, at least one) of the finite values of v, by value (ties: the lower index); NaN
// values stay NaN.
at::Tensor top_share(const at::Tensor& v, double q) {
  const double* x = v.data_ptr<double>();
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < v.numel(); ++i)
    if (std::isfinite(x[i])) idx.push_back(i);
  at::Tensor out = at::full({v.numel()}, NAN, at::kDouble);
  for (int64_t i : idx) out[i] = 0.0;
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return x[a] > x[b]; });
  const size_t k = idx.empty() ? 0 : std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(idx.size()) - 1e-9)));
  for (size_t i = 0; i < k; ++i) out[idx[i]] = 1.0;
  return out;
}

}  // namespace

ProbeResult preplan_probe(const Model& m, const std::vector<int32_t>& tokens, int64_t response_start, const PreplanOptions& o) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, N = static_cast<int64_t>(tokens.size()), r0 = response_start;
  if (r0 < 1 || r0 >= N) throw Error("the preplan probe needs a prompt and a response (response start " + std::to_string(r0) + " of " + std::to_string(N) + " tokens)");
  if (o.waad_window < 1 || o.h_lo < 0 || (!o.to_end && o.h_hi < o.h_lo)) throw Error("the preplan probe needs W >= 1 and 0 <= H_lo <= H_hi");
  if (!(o.head_share > 0 && o.head_share <= 0.5) || !(o.quantile > 0 && o.quantile <= 1))
    throw Error("the preplan probe needs a head share in (0, 0.5] and a token quantile in (0, 1]");
  AttnRecord rec;
  rec.stats = true;
  rec.key_recv = true;
  rec.waad_window = o.waad_window;
  rec.recv_lo = o.h_lo, rec.recv_hi = o.to_end ? -1 : o.h_hi;
  rec.query_mask.assign(static_cast<size_t>(N), 0);
  std::fill(rec.query_mask.begin() + r0, rec.query_mask.end(), 1);
  const ForwardResult fr = m.run(tokens, rec, /*last_only=*/true);

  ProbeResult r;
  r.name = "preplan";
  r.rank_by = "span";
  r.params = {{"waad_window", o.waad_window}, {"h_lo", o.h_lo}, {"h_hi", o.to_end ? nlohmann::json("end") : nlohmann::json(o.h_hi)},
              {"head_share", o.head_share}, {"quantile", o.quantile}, {"tokens", N}, {"response_start", r0},
              {"head_sets", o.local_heads.empty() ? "span" : "given"}};
  // Span per head: the mean over response rows of the per-query mean distance.
  at::Tensor span = at::empty({L, H}, at::kDouble);
  for (int64_t l = 0; l < L; ++l) span[l] = fr.attn[l][kStatMeanDist].narrow(1, r0, N - r0).to(at::kDouble).mean(1);
  r.scores["span"] = span;
  std::vector<std::pair<int, int>> local = o.local_heads, global = o.global_heads;
  if (local.empty() || global.empty()) {
    std::vector<int64_t> order(static_cast<size_t>(L * H));
    for (int64_t i = 0; i < L * H; ++i) order[i] = i;
    const double* d = span.data_ptr<double>();
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d[a] < d[b]; });
    const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::floor(o.head_share * static_cast<double>(L * H) + 1e-9)));
    local.clear(), global.clear();
    for (int64_t i = 0; i < k; ++i) {
      local.emplace_back(static_cast<int>(order[i] / H), static_cast<int>(order[i] % H));
      global.emplace_back(static_cast<int>(order[L * H - 1 - i] / H), static_cast<int>(order[L * H - 1 - i] % H));
    }
  }
  at::Tensor is_local = at::zeros({L, H}, at::kDouble), is_global = at::zeros({L, H}, at::kDouble);
  at::Tensor waad = at::zeros({N}, at::kDouble), recv = at::zeros({N}, at::kDouble);
  for (auto [l, h] : local) {
    if (l < 0 || l >= L || h < 0 || h >= H) throw Error("local head " + std::to_string(l) + "." + std::to_string(h) + " does not exist");
    is_local[l][h] = 1.0;
    waad += fr.attn[l][kStatWaad][h].to(at::kDouble) / static_cast<double>(local.size());
  }
  for (auto [l, h] : global) {
    if (l < 0 || l >= L || h < 0 || h >= H) throw Error("global head " + std::to_string(l) + "." + std::to_string(h) + " does not exist");
    is_global[l][h] = 1.0;
    recv += fr.attn[l][kStatKeyRecv][h].to(at::kDouble) / static_cast<double>(global.size());
  }
  r.scores["local"] = is_local, r.scores["global"] = is_global;
  // WAAD on response rows; Delta_t for t, t + 1 both in R; FAI where T(s) is not empty.
  at::Tensor waad_r = at::full({N}, NAN, at::kDouble), delta = at::full({N}, NAN, at::kDouble), fai = at::full({N}, NAN, at::kDouble);
  waad_r.narrow(0, r0, N - r0).copy_(waad.narrow(0, r0, N - r0));
  if (N - r0 >= 2) delta.narrow(0, r0, N - r0 - 1).copy_((waad.narrow(0, r0, N - r0 - 1) - waad.narrow(0, r0 + 1, N - r0 - 1)).abs());
  const at::Tensor count = fr.key_count.to(at::kDouble);
  fai = at::where(count > 0, recv / count.clamp_min(1), fai);
  r.detail["waad"] = waad_r, r.detail["delta"] = delta, r.detail["fai"] = fai;
  r.detail["preplan"] = top_share(delta, o.quantile);
  r.detail["anchor"] = top_share(fai, o.quantile);
  r.summary = {{"local_heads", local.size()}, {"global_heads", global.size()},
               {"preplan_tokens", (r.detail["preplan"] == 1.0).sum().item<int64_t>()},
               {"anchor_tokens", (r.detail["anchor"] == 1.0).sum().item<int64_t>()}};
  return r;
}

}  // namespace headscope
