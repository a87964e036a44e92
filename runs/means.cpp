// Head means for mean ablation (see means.h).
#include "runs/means.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "datasets/prompts.h"
#include "hooks/hooks.h"

namespace headscope {

HeadMeans compute_head_means(const Model& model, const std::vector<std::string>& texts) {
  const ModelConfig& cfg = model.config();
  HeadMeans m;
  std::map<int64_t, at::Tensor> sums;
  for (const std::string& text : texts) {
    Hooks hooks;
    for (int64_t l = 0; l < cfg.n_layers; ++l)
      hooks.add(Hooks::name(l, "attn.hook_z"), [&sums, l](const at::Tensor& z, const HookContext&) {
        at::Tensor s = z.to(at::kDouble).sum(0);  // [H, d]
        sums[l] = sums.count(l) ? sums[l] + s : s;
        return z;
      });
    auto ids = model.tokenizer().encode(text);
    model.run(ids, AttnRecord{}, /*last_only=*/true, &hooks);
    m.n_tokens += static_cast<int64_t>(ids.size());
    ++m.n_prompts;
  }
  if (m.n_tokens == 0) throw Error("mean ablation needs at least one reference prompt");
  for (auto& [l, s] : sums) m.z[l] = (s / static_cast<double>(m.n_tokens)).to(at::kFloat);
  return m;
}
HeadMeans means_for_spec(const nlohmann::json& spec, const Model& model, const std::string& mean_data) {
  if (!spec_needs_means(spec)) return {};
  if (mean_data.empty()) throw Error("mean ablation needs reference prompts (a prompt file: one per line, or JSONL with \"text\")");
  std::vector<std::string> texts;
  for (auto& item : load_prompts(mean_data)) texts.push_back(item.text);
  return compute_head_means(model, texts);
}

}  // namespace headscope
