// One head's attention pattern from the kernel's hook_pattern window (see pattern.h).
#include "runs/pattern.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/text.h"

namespace headscope {

std::vector<double> prompt_head_pattern(const Model& m, const std::vector<int32_t>& ids, int layer, int head, const ForwardHooks* hooks) {
  const ModelConfig& cfg = m.config();
  if (layer < 0 || layer >= cfg.n_layers || head < 0 || head >= cfg.n_heads)
    throw Error("head " + head_label(layer, head) + " is not in this model (" + std::to_string(cfg.n_layers) + " layers x " +
                std::to_string(cfg.n_heads) + " heads)");
  if (ids.empty()) throw Error("the prompt has no tokens");
  AttnRecord rec;
  rec.pattern_heads = {{layer, head}};
  const ForwardResult r = m.run(ids, rec, /*last_only=*/true, hooks);
  if (r.patterns.size() != 1) throw Error("the attention kernel returned no pattern for head " + head_label(layer, head));
  const int64_t T = static_cast<int64_t>(ids.size());
  const at::Tensor p = r.patterns[0].second.to(at::kCPU).to(at::kDouble).contiguous();
  if (p.dim() != 2 || p.size(0) != T || p.size(1) != T) throw Error("the attention kernel returned a pattern of another shape");
  return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
}

}  // namespace headscope
