// Named hook points of the forward pass (TransformerLens names) and a registry of user hooks. A hook sees the
// tensor at its point and returns the tensor the forward continues with: the same one to only read it, a new
// one to replace it. Several hooks on one point run in the order they were added. With no hook on a point,
// the forward does no extra work there (per-head hook_result is only built when something hooks it).
//
// Points, per layer L (shapes for T tokens):
//   blocks.L.hook_resid_pre [T, D]     blocks.L.attn.hook_q [T, H, d]   .hook_k/.hook_v [T, H_kv, d] (before RoPE)
//   blocks.L.attn.hook_z [T, H, d]     per-head attention output, before the output projection
//   blocks.L.attn.hook_result [T, H, D] per-head contribution to the residual stream (without the output bias)
//   blocks.L.hook_attn_out [T, D]      blocks.L.hook_resid_mid [T, D] (sequential residual only)
//   blocks.L.hook_mlp_out [T, D]       blocks.L.hook_resid_post [T, D]
//   ln_final.hook_normalized [T', D]   unembed.hook_logits [T', vocab]   (T' = 1 when only the last position)
// blocks.L.attn.hook_pattern is produced by AttnRecord::pattern_heads (materialised only on request).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "model/forward_hooks.h"

namespace headscope {

struct ModelConfig;

struct HookContext {
  int64_t layer;            // -1 for ln_final / unembed
  const std::string& name;  // the full hook name
};

using HookFn = std::function<at::Tensor(const at::Tensor& value, const HookContext& ctx)>;

// The registry the forward pass runs (model/forward_hooks.h): user functions per point, and in-kernel edits.
class Hooks : public ForwardHooks {
 public:
  void add(const std::string& name, HookFn fn);
  bool has(const std::string& name) const override { return fns_.count(name) > 0; }
  bool empty() const override { return fns_.empty() && edits_.empty(); }
  at::Tensor run(const std::string& name, int64_t layer, at::Tensor value) const override;
  // In-kernel edits of a layer's attention (uniform heads, logit bias on chosen keys, ACT).
  KernelEdits& kernel_edits(int64_t layer) { return edits_[layer]; }
  const KernelEdits* kernel_edits_for(int64_t layer) const override {
    auto it = edits_.find(layer);
    return it == edits_.end() ? nullptr : &it->second;
  }

  // "blocks.3.attn.hook_z" from (3, "attn.hook_z").
  static std::string name(int64_t layer, const char* point) { return hook_name(layer, point); }
  // Every hook name of a model with n_layers layers (for validation and listings).
  static std::vector<std::string> all_names(int64_t n_layers);

 private:
  std::unordered_map<std::string, std::vector<HookFn>> fns_;
  std::map<int64_t, KernelEdits> edits_;
};

// Shape of one token's value at a hook point of this model ([d_model], [n_heads, d_head], …); Error naming the
// known points for an unknown name or a layer out of range.
std::vector<int64_t> hook_shape(const ModelConfig& cfg, const std::string& name);

// Records the value at each named point (a copy) into a map: an activation cache for later patching.
struct ActivationCache {
  std::map<std::string, at::Tensor> values;
  void record(Hooks& hooks, const std::vector<std::string>& names);
  const at::Tensor& get(const std::string& name) const;  // throws Error if not recorded
};

}  // namespace headscope
