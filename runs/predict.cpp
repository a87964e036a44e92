// Predictions and intervention effects (see predict.h).
#include "runs/predict.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "hooks/hooks.h"

namespace headscope {

std::string token_label(const Model& m, int32_t id) {
  return m.has_tokenizer() && id >= 0 && id < m.tokenizer().vocab_size() ? m.tokenizer().token_text(id) : "#" + std::to_string(id);
}

std::vector<TokenScore> top_tokens(const Model& m, const at::Tensor& logits, int k) {
  k = static_cast<int>(std::min<int64_t>(std::max(k, 1), logits.size(-1)));
  at::Tensor probs = at::softmax(logits, -1);
  auto [vals, idx] = logits.topk(k);
  std::vector<TokenScore> out;
  for (int i = 0; i < k; ++i) {
    const int32_t id = static_cast<int32_t>(idx[i].item<int64_t>());
    out.push_back({id, token_label(m, id), vals[i].item<float>(), probs[id].item<float>()});
  }
  return out;
}

InterventionEffect intervention_effect(const Model& m, const std::vector<int32_t>& ids, const nlohmann::json& spec,
                                       const HeadMeans& means, const std::vector<std::string>& targets, int top_k) {
  const std::vector<Intervention> checked = parse_spec(spec, m.config());
  check_spec_positions(checked, static_cast<int64_t>(ids.size()));
  Hooks hooks;
  install_interventions(checked, m.config(), hooks, nullptr, &means);
  at::Tensor before = m.run(ids, AttnRecord{}, true).logits[0];
  at::Tensor after = m.run(ids, AttnRecord{}, true, &hooks).logits[0];
  if (!at::isfinite(after).all().item<bool>())
    throw Error("the intervention made the next-token logits NaN or infinite; nothing to compare");
  at::Tensor lp_b = at::log_softmax(before.to(at::kDouble), -1), lp_a = at::log_softmax(after.to(at::kDouble), -1);
  InterventionEffect e;
  e.kl = (lp_b.exp() * (lp_b - lp_a)).sum().item<double>();
  e.before = top_tokens(m, before, top_k), e.after = top_tokens(m, after, top_k);
  for (const std::string& t : targets) {
    auto tids = m.tokenizer().encode(t, false);
    if (tids.empty()) throw Error("target '" + t + "' has no tokens");
    const int32_t id = tids[0];
    e.targets.push_back({t, id, before[id].item<float>(), after[id].item<float>()});
  }
  return e;
}

}  // namespace headscope
