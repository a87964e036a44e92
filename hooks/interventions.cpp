// Interventions from a checked spec, installed as hooks (see interventions.h).
#include "hooks/interventions.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace headscope {

namespace {

// Token positions as a bool mask over T (every position when the list is empty); negative ones count from the end.
at::Tensor position_mask(const Intervention& iv, int64_t T) {
  if (iv.positions.empty()) return at::ones({T}, at::kBool);
  check_spec_positions({iv}, T);
  at::Tensor m = at::zeros({T}, at::kBool);
  for (int64_t p : iv.positions) m[p < 0 ? p + T : p] = true;
  return m;
}

}  // namespace

void install_interventions(const nlohmann::json& spec, const ModelConfig& cfg, Hooks& hooks, const ActivationCache* source,
                           const HeadMeans* means) {
  install_interventions(parse_spec(spec, cfg), cfg, hooks, source, means);
}

void install_interventions(const std::vector<Intervention>& spec, const ModelConfig& cfg, Hooks& hooks,
                           const ActivationCache* source, const HeadMeans* means) {
  const int64_t H = cfg.n_heads;
  using K = Intervention::Kind;
  for (const Intervention& iv : spec) {
    switch (iv.kind) {
      case K::mean_ablate:
        if (!means || means->z.empty()) throw Error(iv.where + ": mean ablation needs head means from a reference set of prompts");
        for (auto [l, h] : iv.heads) {
          at::Tensor mean = means->z.at(l).select(0, h);  // [d]
          hooks.add(Hooks::name(l, "attn.hook_z"), [h = h, mean](const at::Tensor& z, const HookContext&) {
            at::Tensor out = z.clone();
            out.select(1, h).copy_(mean.unsqueeze(0).expand({z.size(0), z.size(2)}));
            return out;
          });
        }
        break;
      case K::ablate:
      case K::scale: {
        const float factor = iv.kind == K::ablate ? 0.f : iv.factor;
        for (auto [l, h] : iv.heads) {
          hooks.add(Hooks::name(l, "attn.hook_z"), [h = h, factor](const at::Tensor& z, const HookContext&) {
            at::Tensor out = z.clone();
            out.select(1, h).mul_(factor);  // z [T, H, d]
            if (factor == 0.f) out.select(1, h).zero_();  // exact zeros, also where z held inf/nan
            return out;
          });
        }
        break;
      }
      case K::patch: {
        if (!source) throw Error(iv.where + ": a patch intervention needs a source run");
        std::vector<int64_t> shape;
        try {
          shape = hook_shape(cfg, iv.hook);
        } catch (const Error& e) {
          throw Error(iv.where + ": " + e.what());
        }
        if (!iv.heads.empty() && (shape.size() != 2 || shape[0] != H))
          throw Error(iv.where + ": heads can only be chosen on per-head hooks (hook_q, hook_z, hook_result), not " + iv.hook);
        const std::string name = iv.hook;
        hooks.add(name, [iv, source](const at::Tensor& v, const HookContext&) {
          const at::Tensor& src = source->get(iv.hook);
          if (src.sizes() != v.sizes())
            throw Error(iv.where + ": the source run has a different shape at " + iv.hook + " (another prompt length?)");
          at::Tensor mask = position_mask(iv, v.size(0));  // [T]
          at::Tensor out = v.clone();
          if (iv.heads.empty()) {
            out.index_put_({mask}, src.index({mask}));
          } else {
            for (auto [l, h] : iv.heads) {
              at::Tensor o = out.select(1, h), s = src.select(1, h);
              o.index_put_({mask}, s.index({mask}));
            }
          }
          return out;
        });
        break;
      }
      case K::steer: {
        at::Tensor v = at::tensor(iv.vector, at::kFloat);
        for (int layer : iv.layers)
          hooks.add(Hooks::name(layer, "hook_resid_pre"), [v, iv](const at::Tensor& x, const HookContext&) {
            at::Tensor mask = position_mask(iv, x.size(0)).to(at::kFloat).unsqueeze(1);
            return x + mask * v.to(x.device()).unsqueeze(0);
          });
        break;
      }
      case K::uniform:  // the retrieval-head masking experiment: uniform attention, not zero output
        for (auto [l, h] : iv.heads) hooks.kernel_edits(l).uniform_heads.push_back(h);
        break;
      case K::attn_bias:  // additive logit bias on chosen key positions (attention steering)
        for (auto [l, h] : iv.heads)
          for (int64_t key : iv.keys) hooks.kernel_edits(l).bias.emplace_back(h, key, iv.bias);
        break;
      case K::act:  // ACT attention calibration: sink-like keys past the first scaled by beta, per row
        for (auto [l, h] : iv.heads) hooks.kernel_edits(l).act.emplace_back(h, iv.tau, iv.beta);
        break;
      case K::kv_window:  // a compressed KV cache: the first keys and a recent window per head
        for (auto [l, h] : iv.heads) {
          KernelEdits& e = hooks.kernel_edits(l);
          if (!e.kv_window.empty() && e.kv_sink != iv.sink)
            throw Error(iv.where + ": layer " + std::to_string(l) + " already has kv_window heads with sink " + std::to_string(e.kv_sink));
          e.kv_window.emplace_back(h, iv.window), e.kv_sink = iv.sink;
        }
        break;
    }
  }
}

}  // namespace headscope
