// Hook registry and activation cache (see hooks.h).
#include "hooks/hooks.h"

#include <ATen/ATen.h>

#include "model/config.h"
#include "core/error.h"

namespace headscope {

void Hooks::add(const std::string& name, HookFn fn) { fns_[name].push_back(std::move(fn)); }

at::Tensor Hooks::run(const std::string& name, int64_t layer, at::Tensor value) const {
  auto it = fns_.find(name);
  if (it == fns_.end()) return value;
  HookContext ctx{layer, name};
  for (const HookFn& fn : it->second) {
    at::Tensor out = fn(value, ctx);
    if (!out.defined()) continue;  // a reader that returned nothing
    if (out.sizes() != value.sizes()) throw Error("hook on " + name + " changed the tensor's shape");
    value = out;
  }
  return value;
}


std::vector<std::string> Hooks::all_names(int64_t n_layers) {
  static const char* points[] = {"hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z",
                                 "attn.hook_result", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"};
  std::vector<std::string> out;
  for (int64_t l = 0; l < n_layers; ++l)
    for (const char* p : points) out.push_back(name(l, p));
  out.push_back("ln_final.hook_normalized");
  out.push_back("unembed.hook_logits");
  return out;
}

std::vector<int64_t> hook_shape(const ModelConfig& c, const std::string& name) {
  if (name == "ln_final.hook_normalized") return {c.d_model};
  if (name == "unembed.hook_logits") return {c.vocab};
  int64_t layer = -1;
  size_t used = 0;
  if (name.rfind("blocks.", 0) == 0) {
    try {
      layer = std::stoll(name.substr(7), &used);
    } catch (const std::exception&) {
      layer = -1;
    }
  }
  const std::string point = layer >= 0 && name.size() > 7 + used ? name.substr(7 + used + 1) : "";
  if (layer >= 0 && point.size() && layer >= c.n_layers)
    throw Error("hook " + name + ": the model has layers 0.." + std::to_string(c.n_layers - 1));
  if (point == "hook_resid_pre" || point == "hook_attn_out" || point == "hook_resid_mid" || point == "hook_mlp_out" ||
      point == "hook_resid_post")
    return {c.d_model};
  if (point == "attn.hook_q" || point == "attn.hook_z") return {c.n_heads, c.d_head};
  if (point == "attn.hook_k" || point == "attn.hook_v") return {c.n_kv_heads, c.d_head};
  if (point == "attn.hook_result") return {c.n_heads, c.d_model};
  throw Error("unknown hook point '" + name + "' (known: blocks.L.{hook_resid_pre, attn.hook_q, attn.hook_k, attn.hook_v, "
              "attn.hook_z, attn.hook_result, hook_attn_out, hook_resid_mid, hook_mlp_out, hook_resid_post}, "
              "ln_final.hook_normalized, unembed.hook_logits)");
}

void ActivationCache::record(Hooks& hooks, const std::vector<std::string>& names) {
  for (const std::string& n : names)
    hooks.add(n, [this](const at::Tensor& v, const HookContext& ctx) {
      values[ctx.name] = v.clone();
      return v;
    });
}

const at::Tensor& ActivationCache::get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) throw Error("activation cache has no value for " + name);
  return it->second;
}

}  // namespace headscope
