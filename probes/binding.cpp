// Entity-binding mechanisms by interchange interventions (see binding.h).
#include "probes/binding.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>

#include "analysis/binding.h"
#include "core/error.h"
#include "hooks/hooks.h"

namespace headscope {

namespace {
const char* kMechanisms[] = {"positional", "lexical", "reflexive", "no_effect", "mixed"};
}

BindingProbe::BindingProbe(BindingOptions o, int layer) : o_(std::move(o)), layer_(layer) {}

int default_binding_layer(int64_t n_layers) { return static_cast<int>(std::lround(0.7 * static_cast<double>(n_layers - 1))); }

nlohmann::json BindingProbe::params() const {
  return {{"task", o_.task}, {"groups", o_.groups}, {"items", o_.items}, {"seed", o_.seed}, {"layer", layer_}, {"point", "hook_resid_pre"},
          {"position", "last"}};
}

std::vector<std::string> BindingProbe::scalar_values() const {
  std::vector<std::string> v{"q", "p", "k", "i", "answer_without"};
  for (int a = 0; a < o_.groups; ++a) v.push_back("P" + std::to_string(a));
  return v;
}

std::vector<ProbeItem> BindingProbe::items(const Model& m) const {
  if (layer_ < 0 || layer_ >= m.config().n_layers)
    throw Error("binding: layer " + std::to_string(layer_) + " does not exist (layers 0.." + std::to_string(m.config().n_layers - 1) + ")");
  const Tokenizer& tok = m.tokenizer();
  const BindingSet set = make_binding(o_, [&](const std::string& s) { return tok.encode(s, false); });
  std::vector<ProbeItem> out;
  for (const BindingItem& b : set.items) {
    ProbeItem it;
    it.tokens = tok.encode(b.original.text), it.text = b.original.text;
    std::vector<int32_t> candidates;
    for (const std::string& a : b.original.answers) candidates.push_back(tok.encode(set.answer_prefix + a, false).at(0));
    it.meta = {{"counterfactual", tok.encode(b.counterfactual.text)}, {"counterfactual_text", b.counterfactual.text},
               {"candidates", candidates}, {"q", b.q}, {"p", b.p}, {"k", b.k}, {"i", b.i}};
    out.push_back(std::move(it));
  }
  return out;
}

ItemResult BindingProbe::run(const Model& m, const ProbeItem& item) const {
  const std::string point = Hooks::name(layer_, "hook_resid_pre");
  const std::vector<int32_t> cf = item.meta.at("counterfactual").get<std::vector<int32_t>>();
  const std::vector<int32_t> cand = item.meta.at("candidates").get<std::vector<int32_t>>();
  at::Tensor from;  // the counterfactual's last row entering the layer
  Hooks take;
  take.add(point, [&](const at::Tensor& x, const HookContext&) {
    from = x[x.size(0) - 1].clone();
    return x;
  });
  m.run(cf, AttnRecord{}, true, &take);
  Hooks put;
  put.add(point, [&](const at::Tensor& x, const HookContext&) {
    at::Tensor y = x.clone();
    y[y.size(0) - 1].copy_(from);
    return y;
  });
  const at::Tensor idx = at::tensor(std::vector<int64_t>(cand.begin(), cand.end()), at::kLong);
  const at::Tensor P = at::softmax(m.run(item.tokens, AttnRecord{}, true, &put).logits[0].to(at::kDouble).index_select(0, idx), 0);
  const at::Tensor without = m.run(item.tokens, AttnRecord{}, true).logits[0].index_select(0, idx);
  ItemResult r;
  for (const char* k : {"q", "p", "k", "i"}) r.scalars[k] = item.meta.at(k).get<double>();
  r.scalars["answer_without"] = static_cast<double>(without.argmax().item<int64_t>());
  for (int a = 0; a < o_.groups; ++a) r.scalars["P" + std::to_string(a)] = P[a].item<double>();
  return r;
}

void BindingProbe::combine(const Model&, const std::vector<ProbeItem>&, ProbeResult& r) const {
  std::vector<BindingObservation> obs;
  std::map<std::string, int64_t> mix;
  std::map<int, std::map<std::string, int64_t>> by_position;
  double correct = 0;
  for (const ItemResult& it : r.items) {
    BindingObservation b;
    b.q = static_cast<int>(it.scalars.at("q")), b.p = static_cast<int>(it.scalars.at("p"));
    b.k = static_cast<int>(it.scalars.at("k")), b.i = static_cast<int>(it.scalars.at("i"));
    for (int a = 0; a < o_.groups; ++a) b.P.push_back(it.scalars.at("P" + std::to_string(a)));
    correct += static_cast<int>(it.scalars.at("answer_without")) == b.q;
    const std::string mech = binding_mechanism(b);
    ++mix[mech], ++by_position[b.p][mech];
    obs.push_back(std::move(b));
  }
  const double n = static_cast<double>(obs.size());
  nlohmann::json shares = nlohmann::json::object(), positions = nlohmann::json::array();
  for (const char* k : kMechanisms) shares[k] = static_cast<double>(mix[k]) / n;
  for (auto& [p, m] : by_position) {
    int64_t total = 0;
    for (auto& [k, c] : m) total += c;
    nlohmann::json row = {{"p", p}, {"items", total}};
    for (const char* k : kMechanisms) row[k] = static_cast<double>(m[k]) / static_cast<double>(total);
    positions.push_back(row);
  }
  r.summary = {{"layer", layer_}, {"items", obs.size()}, {"accuracy_without", correct / n}, {"mechanisms", shares}, {"by_position", positions}};
  if (obs.size() >= 7) {
    const CausalModelFit f = fit_causal_model(obs, CausalModelOptions{o_.seed});
    r.summary["causal_model"] = {{"jss_test", f.jss_test}, {"jss_positional_only", f.jss_positional}, {"jss_uniform", f.jss_uniform},
                                 {"split", {f.train, f.validation, f.test}}, {"epochs", f.epochs}, {"w", f.w},
                                 {"sigma", {f.s0, f.s1, f.s2}}, {"g_lexical", f.g_k}, {"g_reflexive", f.g_i}};
  }
}

}  // namespace headscope
