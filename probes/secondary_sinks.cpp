// The primary/secondary sink probe (see secondary_sinks.h).
#include "probes/secondary_sinks.h"

#include <ATen/ATen.h>

#include <cmath>

#include "analysis/sink_levels.h"
#include "core/error.h"
#include "hooks/hooks.h"

namespace headscope {

namespace {
const char* kKinds[] = {"", "primary", "secondary", "noise"};  // the "kind" values 1, 2, 3
}

nlohmann::json SecondarySinkProbe::params() const {
  return {{"cos_threshold", o_.cos_threshold}, {"candidates", o_.candidates.empty() ? nlohmann::json("auto") : nlohmann::json(o_.candidates)},
          {"items", items_.size()}, {"final_layer", "after the final norm"}};
}

std::vector<std::string> SecondarySinkProbe::scalar_values() const {
  return {"anchor", "l_s", "l_e", "primary_min_lifetime", "secondary_min_lifetime", "max_abs_cos", "max_abs_cos_position",
          "max_abs_cos_layer"};
}

std::vector<std::string> SecondarySinkProbe::token_values() const {
  std::vector<std::string> v{"l_start", "lifetime", "kind", "sink_score", "mlp_alignment"};
  for (int64_t l = 0; l < n_layers_; ++l) v.push_back("sink_score_l" + std::to_string(l));
  return v;
}

std::vector<ProbeItem> SecondarySinkProbe::items(const Model& m) const {
  if (m.config().n_layers < 2) throw Error("the sink probe needs a model of at least 2 layers");
  n_layers_ = m.config().n_layers;
  check_response_items(m, items_, "secondary");
  return items_;
}

ItemResult SecondarySinkProbe::run(const Model& m, const ProbeItem& item) const {
  const std::vector<int32_t>& all = item.tokens;
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, N = static_cast<int64_t>(all.size());
  std::vector<int64_t> candidates = o_.candidates;
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
  const SinkAnalysis a = analyze_sinks(at::stack(layers), candidates, o_.cos_threshold);
  const int64_t b = a.anchor;

  ItemResult r;
  const at::Tensor count = fr.key_count.to(at::kDouble).clamp_min(1);  // later rows per key
  at::Tensor anchor_mass = at::empty({L, H}, at::kDouble);
  at::Tensor score = at::empty({L, N}, at::kDouble);  // s_l(j): mean over heads of the received mass per later row
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor recv = fr.attn[l][kStatKeyRecv].to(at::kDouble) / count.unsqueeze(0);  // [H, N]
    anchor_mass[l] = recv.select(1, b);
    score[l] = recv.mean(0);
  }
  r.heads["anchor_mass"] = anchor_mass;
  for (const std::string& k : token_values()) r.tokens[k] = at::full({N}, NAN, at::kDouble);
  const at::Tensor seen = fr.key_count.to(at::kCPU) > 0;  // tokens some later row attends to
  for (int64_t l = 0; l < L; ++l)
    r.tokens["sink_score_l" + std::to_string(l)] = at::where(seen, score[l], at::full({N}, NAN, at::kDouble));
  for (const SinkToken& t : a.tokens) {
    const at::Tensor mj = cache.get(Hooks::name(t.l_start, "hook_mlp_out")).cpu().to(at::kDouble);
    const at::Tensor x = mj[t.position], y = mj[b];
    const double align = (x * y).sum().item<double>() / std::max(1e-30, x.norm().item<double>() * y.norm().item<double>());
    r.tokens["l_start"][t.position] = static_cast<double>(t.l_start);
    r.tokens["lifetime"][t.position] = static_cast<double>(t.lifetime);
    r.tokens["kind"][t.position] = t.kind == "primary" ? 1.0 : t.kind == "secondary" ? 2.0 : 3.0;
    r.tokens["sink_score"][t.position] = score[t.l_start][t.position].item<double>();
    r.tokens["mlp_alignment"][t.position] = align;
  }
  r.scalars = {{"anchor", static_cast<double>(b)}, {"l_s", static_cast<double>(a.l_s)}, {"l_e", static_cast<double>(a.l_e)},
               {"primary_min_lifetime", a.primary_min}, {"secondary_min_lifetime", a.secondary_min}, {"max_abs_cos", a.max_cos},
               {"max_abs_cos_position", static_cast<double>(a.max_cos_position)}, {"max_abs_cos_layer", static_cast<double>(a.max_cos_layer)}};
  return r;
}

void SecondarySinkProbe::combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const {
  r.scores["anchor_mass"] = mean_over_items(r, "anchor_mass");
  int64_t counts[4] = {0, 0, 0, 0};
  std::vector<SinkToken> all;
  nlohmann::json flagged = nlohmann::json::array(), anchors = nlohmann::json::array(), windows = nlohmann::json::array();
  nlohmann::json best = {{"value", 0.0}, {"item", -1}, {"position", -1}, {"layer", -1}};
  for (size_t i = 0; i < r.items.size(); ++i) {
    const ItemResult& it = r.items[i];
    anchors.push_back(static_cast<int64_t>(it.scalars.at("anchor")));
    windows.push_back({static_cast<int64_t>(it.scalars.at("l_s")), static_cast<int64_t>(it.scalars.at("l_e"))});
    if (it.scalars.at("max_abs_cos") > best["value"].get<double>())
      best = {{"value", it.scalars.at("max_abs_cos")}, {"item", i}, {"position", static_cast<int64_t>(it.scalars.at("max_abs_cos_position"))},
              {"layer", static_cast<int64_t>(it.scalars.at("max_abs_cos_layer"))}};
    const at::Tensor kind = it.tokens.at("kind");
    for (int64_t j = 0; j < kind.size(0); ++j) {
      const double k = kind[j].item<double>();
      if (std::isnan(k)) continue;
      const int ki = static_cast<int>(k);
      ++counts[ki];
      SinkToken t{j, static_cast<int64_t>(it.tokens.at("l_start")[j].item<double>()), static_cast<int64_t>(it.tokens.at("lifetime")[j].item<double>()),
                  kKinds[ki]};
      all.push_back(t);
      const int32_t id = items[i].tokens.at(static_cast<size_t>(j));
      flagged.push_back({{"item", i}, {"position", j}, {"text", m.has_tokenizer() ? m.tokenizer().token_text(id) : ""},
                         {"l_start", t.l_start}, {"lifetime", t.lifetime}, {"kind", t.kind},
                         {"sink_score", it.tokens.at("sink_score")[j].item<double>()},
                         {"mlp_alignment", it.tokens.at("mlp_alignment")[j].item<double>()}});
    }
  }
  nlohmann::json levels = nlohmann::json::array();
  for (auto& [key, n] : sink_levels(all)) levels.push_back({{"l_start", key.first}, {"lifetime", key.second}, {"tokens", n}});
  const ItemResult& first = r.items.at(0);
  r.summary = {{"items", r.items.size()}, {"anchors", anchors}, {"windows", windows},
               {"primary_min_lifetime", first.scalars.at("primary_min_lifetime")},
               {"secondary_min_lifetime_exclusive", first.scalars.at("secondary_min_lifetime")}, {"primary", counts[1]},
               {"secondary", counts[2]}, {"noise", counts[3]}, {"levels", levels}, {"flagged", flagged}, {"max_abs_cos", best}};
}

}  // namespace headscope
