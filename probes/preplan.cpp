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

ProbeItem sequence_item(const std::vector<int32_t>& tokens, int64_t response_start) {
  ProbeItem it;
  it.tokens = tokens, it.response_start = response_start;
  it.text = "given tokens";
  return it;
}

void check_response_items(const Model& m, const std::vector<ProbeItem>& items, const std::string& probe) {
  if (items.empty()) throw Error("the " + probe + " probe needs prompts (--prompt TEXT or --prompts FILE)");
  for (size_t i = 0; i < items.size(); ++i) {
    const ProbeItem& it = items[i];
    const int64_t N = static_cast<int64_t>(it.tokens.size());
    if (it.continue_tokens > 0) {
      if (N < 1) throw Error("the " + probe + " probe's prompt " + std::to_string(i + 1) + " is empty");
      std::vector<int32_t> ids = it.tokens;
      fit_context(m.config(), ids, ContextPolicy{}, "prompt " + std::to_string(i + 1), it.continue_tokens);
    } else if (it.response_start < 1 || it.response_start >= N) {
      throw Error("the " + probe + " probe needs a prompt and a response (response start " + std::to_string(it.response_start) + " of " +
                  std::to_string(N) + " tokens)");
    }
  }
}

nlohmann::json PreplanProbe::params() const {
  return {{"waad_window", o_.waad_window}, {"h_lo", o_.h_lo}, {"h_hi", o_.to_end ? nlohmann::json("end") : nlohmann::json(o_.h_hi)},
          {"head_share", o_.head_share}, {"quantile", o_.quantile}, {"items", items_.size()},
          {"head_sets", o_.local_heads.empty() ? "span" : "given"}};
}

std::vector<ProbeItem> PreplanProbe::items(const Model& m) const {
  const PreplanOptions& o = o_;
  if (o.waad_window < 1 || o.h_lo < 0 || (!o.to_end && o.h_hi < o.h_lo)) throw Error("the preplan probe needs W >= 1 and 0 <= H_lo <= H_hi");
  if (!(o.head_share > 0 && o.head_share <= 0.5) || !(o.quantile > 0 && o.quantile <= 1))
    throw Error("the preplan probe needs a head share in (0, 0.5] and a token quantile in (0, 1]");
  const int64_t L = m.config().n_layers, H = m.config().n_heads;
  for (const auto* set : {&o.local_heads, &o.global_heads})
    for (auto [l, h] : *set)
      if (l < 0 || l >= L || h < 0 || h >= H) throw Error("head " + std::to_string(l) + "." + std::to_string(h) + " does not exist");
  check_response_items(m, items_, "preplan");
  return items_;
}

ItemResult PreplanProbe::run(const Model& m, const ProbeItem& item) const {
  const PreplanOptions& o = o_;
  const std::vector<int32_t>& tokens = item.tokens;
  const int64_t response_start = item.response_start;
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, N = static_cast<int64_t>(tokens.size()), r0 = response_start;
  AttnRecord rec;
  rec.stats = true;
  rec.key_recv = true;
  rec.waad_window = o.waad_window;
  rec.recv_lo = o.h_lo, rec.recv_hi = o.to_end ? -1 : o.h_hi;
  rec.query_mask.assign(static_cast<size_t>(N), 0);
  std::fill(rec.query_mask.begin() + r0, rec.query_mask.end(), 1);
  const ForwardResult fr = m.run(tokens, rec, /*last_only=*/true);

  ItemResult r;
  // Span per head: the mean over response rows of the per-query mean distance.
  at::Tensor span = at::empty({L, H}, at::kDouble);
  for (int64_t l = 0; l < L; ++l) span[l] = fr.attn[l][kStatMeanDist].narrow(1, r0, N - r0).to(at::kDouble).mean(1);
  r.heads["span"] = span;
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
    is_local[l][h] = 1.0;
    waad += fr.attn[l][kStatWaad][h].to(at::kDouble) / static_cast<double>(local.size());
  }
  for (auto [l, h] : global) {
    is_global[l][h] = 1.0;
    recv += fr.attn[l][kStatKeyRecv][h].to(at::kDouble) / static_cast<double>(global.size());
  }
  r.heads["local"] = is_local, r.heads["global"] = is_global;
  // WAAD on response rows; Delta_t for t, t + 1 both in R; FAI where T(s) is not empty.
  at::Tensor waad_r = at::full({N}, NAN, at::kDouble), delta = at::full({N}, NAN, at::kDouble), fai = at::full({N}, NAN, at::kDouble);
  waad_r.narrow(0, r0, N - r0).copy_(waad.narrow(0, r0, N - r0));
  if (N - r0 >= 2) delta.narrow(0, r0, N - r0 - 1).copy_((waad.narrow(0, r0, N - r0 - 1) - waad.narrow(0, r0 + 1, N - r0 - 1)).abs());
  const at::Tensor count = fr.key_count.to(at::kDouble);
  fai = at::where(count > 0, recv / count.clamp_min(1), fai);
  r.tokens["waad"] = waad_r, r.tokens["delta"] = delta, r.tokens["fai"] = fai;
  r.tokens["preplan"] = top_share(delta, o.quantile);
  r.tokens["anchor"] = top_share(fai, o.quantile);
  return r;
}

void PreplanProbe::combine(const Model&, const std::vector<ProbeItem>&, ProbeResult& r) const {
  for (const char* v : {"span", "local", "global"}) r.scores[v] = mean_over_items(r, v);  // local, global: share of items
  int64_t preplan = 0, anchor = 0;
  for (const ItemResult& it : r.items)
    preplan += (it.tokens.at("preplan") == 1.0).sum().item<int64_t>(), anchor += (it.tokens.at("anchor") == 1.0).sum().item<int64_t>();
  r.summary = {{"items", r.items.size()}, {"local_heads", (r.items[0].heads.at("local") == 1.0).sum().item<int64_t>()},
               {"global_heads", (r.items[0].heads.at("global") == 1.0).sum().item<int64_t>()}, {"preplan_tokens", preplan},
               {"anchor_tokens", anchor}};
}

}  // namespace headscope
