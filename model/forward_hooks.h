// What the forward pass asks of hooks, as an interface, so that model/ needs nothing from hooks/ (which
// implements it: hooks/hooks.h Hooks). A hook point is named blocks.L.<point> (TransformerLens names, listed in
// hooks/hooks.h) or ln_final.hook_normalized / unembed.hook_logits.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace headscope {

// Changes made inside the attention kernel for one layer (kernels/attention.h AttnInterventions).
struct KernelEdits {
  std::vector<int> uniform_heads;                      // these heads attend uniformly to the keys they can see
  std::vector<std::tuple<int, int64_t, float>> bias;   // (head, key position, additive logit bias)
  std::vector<std::tuple<int, float, float>> act;      // (head, tau, beta): ACT calibration (kernels/attention_act.h)
  std::vector<std::pair<int, int64_t>> kv_window;      // (head, window): only the first kv_sink keys and the window
  int64_t kv_sink = 0;                                 //   most recent ones are seen (a compressed KV cache)
};

class ForwardHooks {
 public:
  virtual ~ForwardHooks() = default;
  virtual bool empty() const = 0;                        // nothing hooked, no kernel edit: the plain forward
  virtual bool has(const std::string& name) const = 0;   // something hooks this point
  // The tensor the forward continues with at point `name` of `layer` (-1 for ln_final / unembed).
  virtual at::Tensor run(const std::string& name, int64_t layer, at::Tensor value) const = 0;
  virtual const KernelEdits* kernel_edits_for(int64_t layer) const = 0;  // null: none in this layer
};

// "blocks.3.attn.hook_z" from (3, "attn.hook_z").
std::string hook_name(int64_t layer, const char* point);

}  // namespace headscope
