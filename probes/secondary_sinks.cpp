// The primary/secondary sink probe (see secondary_sinks.h).
#include "probes/secondary_sinks.h"

#include <ATen/ATen.h>

#include <cmath>

#include "analysis/sink_levels.h"
#include "core/error.h"
#include "hooks/hooks.h"

namespace headscope {

ProbeResult secondary_sink_probe(const Model& m, const std::vector<int32_t>& all, int64_t response_start,
                                 const SecondarySinkOptions& o) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, N = static_cast<int64_t>(all.size());
  if (response_start < 1 || response_start > N) throw Error("the sink probe needs a prompt (response start " + std::to_string(response_start) + " of " + std::to_string(N) + " tokens)");
  if (L < 2) throw Error("the sink probe needs a model of at least 2 layers");
  std::vector<int64_t> candidates = o.candidates;
  if (candidates.empty()) {
    candidates = {0, 1};
    if (m.has_tokenizer() && m.tokenizer().is_special(all[0])) candidates.push_back(2);
  }
  // One pass: residuals, MLP outputs, and the received mass of every key from later rows.
  Hooks hooks;
  ActivationCache cache;
  std::vector<std::string> names;
  for (int64_t l = 0; l < L; ++l) names.push_back(Hooks::name(l, "hook_resid_post")), names.push_back(Hooks::name(l, "hook_mlp_out"));
  names.push_back("ln_final.hook_normalized");
  cache.record(hooks, names);
  AttnRecord rec;
  rec.stats = true;
  rec.key_recv = true;
  rec.recv_lo = 1, rec.recv_hi = -1;
  const ForwardResult fr = m.run(all, rec, /*last_only=*/false, &hooks);
  std::vector<at::Tensor> layers;
  for (int64_t l = 0; l + 1 < L; ++l) layers.push_back(cache.get(Hooks::name(l, "hook_resid_post")).cpu());
  layers.push_back(cache.get("ln_final.hook_normalized").cpu());  // HF's last hidden state is after the final norm
  const SinkAnalysis a = analyze_sinks(at::stack(layers), candidates, o.cos_threshold);
  const int64_t b = a.anchor;

  ProbeResult r;
  r.name = "secondary";
  r.rank_by = "anchor_mass";
  r.params = {{"response", N - response_start}, {"cos_threshold", o.cos_threshold}, {"candidates", candidates}, {"tokens", N},
              {"response_start", response_start}, {"final_layer", "after the final norm"}};
  const at::Tensor count = fr.key_count.to(at::kDouble).clamp_min(1);  // later rows per key
  at::Tensor anchor_mass = at::empty({L, H}, at::kDouble);
  at::Tensor score = at::empty({L, N}, at::kDouble);  // s_l(j): mean over heads of the received mass per later row
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor recv = fr.attn[l][kStatKeyRecv].to(at::kDouble) / count.unsqueeze(0);  // [H, N]
    anchor_mass[l] = recv.select(1, b);
    score[l] = recv.mean(0);
  }
  r.scores["anchor_mass"] = anchor_mass;
  for (const char* k : {"l_start", "lifetime", "kind", "sink_score", "mlp_alignment"}) r.detail[k] = at::full({N}, NAN, at::kDouble);
  int64_t n_primary = 0, n_secondary = 0, n_noise = 0;
  nlohmann::json flagged = nlohmann::json::array();
  for (const SinkToken& t : a.tokens) {
    const at::Tensor mj = cache.get(Hooks::name(t.l_start, "hook_mlp_out")).cpu().to(at::kDouble);
    const at::Tensor x = mj[t.position], y = mj[b];
    const double align = (x * y).sum().item<double>() / std::max(1e-30, x.norm().item<double>() * y.norm().item<double>());
    const double kind = t.kind == "primary" ? 1 : t.kind == "secondary" ? 2 : 3;
    (t.kind == "primary" ? n_primary : t.kind == "secondary" ? n_secondary : n_noise) += 1;
    r.detail["l_start"][t.position] = static_cast<double>(t.l_start);
    r.detail["lifetime"][t.position] = static_cast<double>(t.lifetime);
    r.detail["kind"][t.position] = kind;
    r.detail["sink_score"][t.position] = score[t.l_start][t.position].item<double>();
    r.detail["mlp_alignment"][t.position] = align;
    flagged.push_back({{"position", t.position}, {"text", m.has_tokenizer() ? m.tokenizer().token_text(all[t.position]) : ""},
                       {"l_start", t.l_start}, {"lifetime", t.lifetime}, {"kind", t.kind},
                       {"sink_score", score[t.l_start][t.position].item<double>()}, {"mlp_alignment", align}});
  }
  nlohmann::json levels = nlohmann::json::array();
  for (auto& [key, n] : a.levels) levels.push_back({{"l_start", key.first}, {"lifetime", key.second}, {"tokens", n}});
  r.summary = {{"anchor", b}, {"window", {a.l_s, a.l_e}}, {"primary_min_lifetime", a.primary_min},
               {"secondary_min_lifetime_exclusive", a.secondary_min}, {"primary", n_primary}, {"secondary", n_secondary},
               {"noise", n_noise}, {"levels", levels}, {"flagged", flagged},
               {"max_abs_cos", {{"value", a.max_cos}, {"position", a.max_cos_position}, {"layer", a.max_cos_layer}}}};
  return r;
}

}  // namespace headscope
