// The forward pass of the generic decoder (see transformer.h): embeddings, then per layer norm, q/k/v, RoPE, the
// attention adapter, the output projection and the MLP, with a hook at every named point; then the unembedding.
#include "model/transformer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/matvec.h"
#include "model/attention_adapter.h"
#include "model/forward_hooks.h"
#include "model/rope.h"

namespace headscope {
namespace {

at::Tensor norm(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (c.norm == NormType::RMSNorm) {
    at::Tensor var = x.pow(2).mean(-1, /*keepdim=*/true);
    return w * (x * at::rsqrt(var + c.norm_eps));
  }
  return at::layer_norm(x, {x.size(-1)}, w, b, c.norm_eps);
}

at::Tensor rms_heads(const at::Tensor& x, const at::Tensor& w, double eps) {  // x [T, H, d]
  at::Tensor var = x.pow(2).mean(-1, true);
  return w * (x * at::rsqrt(var + eps));
}

// x [T, in] times w [out, in]^T (+ b). One row (a decode step) goes to a matrix-vector product: a matrix product
// of one row makes OpenBLAS pack the whole weight matrix on every call, which cost decoding 5x.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const KeptBlocks& kept = {}) {
  if (kept.defined() && x.size(0) == 1 && x.device().is_cpu()) {  // a decode step over the checkpoint's own blocks
    const at::Tensor xc = x.to(at::kFloat).contiguous();
    at::Tensor y = at::empty({1, kept.rows}, xc.options());
    matvec_blocks(kept.view(), xc.data_ptr<float>(), y.data_ptr<float>());
    return b.defined() ? y.add_(b) : y;
  }
  if (w.scalar_type() == at::kBFloat16) {  // bf16 weights (ComputeDevice::bf16): fp32 accumulation and output
    at::Tensor y;
    if (x.size(0) == 1 && x.device().is_cpu()) {  // a decode step: the bf16 matrix read once, x kept in fp32
      const at::Tensor xc = x.to(at::kFloat).contiguous();
      y = at::empty({1, w.size(0)}, xc.options());
      matvec_bf16(reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()), xc.data_ptr<float>(), y.data_ptr<float>(), w.size(0), w.size(1));
    } else {
      y = at::linear(x.to(at::kBFloat16), w).to(at::kFloat);  // bf16 inputs (oneDNN)
    }
    return b.defined() ? y.add_(b) : y;
  }
  if (x.size(0) != 1 || !x.device().is_cpu()) return at::linear(x, w, b);
  at::Tensor y = at::mv(w, x[0]);
  if (b.defined()) y.add_(b);
  return y.unsqueeze(0);
}

at::Tensor activation(const ModelConfig& c, const at::Tensor& x) {
  switch (c.act) {
    case Activation::SiLU: return at::silu(x);
    case Activation::GELU: return at::gelu(x);
    case Activation::GELUTanh: return at::gelu(x, "tanh");
  }
  return x;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> KvCache::prefix(int64_t layer, int64_t n) const {
  if (layer < 0 || layer >= static_cast<int64_t>(k_.size()) || n < 0 || n > n_)
    throw Error("the KV cache holds " + std::to_string(n_) + " tokens of " + std::to_string(k_.size()) + " layers, not " + std::to_string(n) +
                " of layer " + std::to_string(layer));
  return {k_[layer].narrow(0, 0, n), v_[layer].narrow(0, 0, n)};
}

std::pair<at::Tensor, at::Tensor> KvCache::append(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  if (static_cast<int64_t>(k_.size()) <= layer) k_.resize(layer + 1), v_.resize(layer + 1);
  at::Tensor &kb = k_[layer], &vb = v_[layer];
  const int64_t T = k.size(0), need = n_ + T;
  if (!kb.defined() || kb.size(0) < need) {
    const int64_t cap = std::max<int64_t>({need, 256, kb.defined() ? 2 * kb.size(0) : 0});
    at::Tensor nk = at::empty({cap, k.size(1), k.size(2)}, k.options()), nv = at::empty({cap, v.size(1), v.size(2)}, v.options());
    if (kb.defined() && n_ > 0) nk.narrow(0, 0, n_).copy_(kb.narrow(0, 0, n_)), nv.narrow(0, 0, n_).copy_(vb.narrow(0, 0, n_));
    kb = nk, vb = nv;
  }
  kb.narrow(0, n_, T).copy_(k), vb.narrow(0, n_, T).copy_(v);
  return {kb.narrow(0, 0, need), vb.narrow(0, 0, need)};
}

namespace {

// One decode step's layer on raw buffers, for the plain forward of one token on the CPU with the checkpoint's blocks
// kept: the same operations as the general path below (norm, q/k/v, RoPE, cache, attention kernel, output
// projection, MLP), without a LibTorch operation each (about sixty per layer there, whose dispatch cost as much as
// the layer's arithmetic on a small model). x [d_model] is updated in place. Results equal the general path's to
// float rounding (sums associate differently).
struct StepBuffers {
  std::vector<float> h, qkv, attn, u, mlp;
};

void norm_row(const ModelConfig& c, const float* x, const at::Tensor& w, const at::Tensor& b, float* y) {
  const int64_t D = c.d_model;
  const float* wp = w.data_ptr<float>();
  if (c.norm == NormType::RMSNorm) {
    float ss = 0.f;
    for (int64_t i = 0; i < D; ++i) ss += x[i] * x[i];
    const float r = 1.f / std::sqrt(ss / static_cast<float>(D) + static_cast<float>(c.norm_eps));
    for (int64_t i = 0; i < D; ++i) y[i] = wp[i] * (x[i] * r);
    return;
  }
  float mean = 0.f, var = 0.f;
  for (int64_t i = 0; i < D; ++i) mean += x[i];
  mean /= static_cast<float>(D);
  for (int64_t i = 0; i < D; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float r = 1.f / std::sqrt(var / static_cast<float>(D) + static_cast<float>(c.norm_eps));
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  for (int64_t i = 0; i < D; ++i) y[i] = (x[i] - mean) * r * wp[i] + (bp ? bp[i] : 0.f);
}

void add_bias(float* y, const at::Tensor& b, int64_t n) {
  if (!b.defined()) return;
  const float* bp = b.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) y[i] += bp[i];
}

// RoPE of n heads of d features at one position (cos, sin: [rotary_dim / 2]), rotate_half pairing as apply_rope.
void rope_row(float* x, int64_t n, int64_t d, int64_t rdim, const float* cos, const float* sin) {
  const int64_t half = rdim / 2;
  for (int64_t h = 0; h < n; ++h) {
    float* v = x + h * d;
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = v[i], x2 = v[i + half];
      v[i] = x1 * cos[i] - x2 * sin[i], v[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

float act_value(Activation a, float v) {
  switch (a) {
    case Activation::SiLU: return v / (1.f + std::exp(-v));
    case Activation::GELU: return 0.5f * v * (1.f + std::erf(v * static_cast<float>(M_SQRT1_2)));
    case Activation::GELUTanh: return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
  return v;
}

// The keys and values one prompt's new rows attend to: k and v appended to the cache, or after a cached prefix of
// pos0 tokens, or alone.
void with_context(int64_t layer, int64_t pos0, KvCache* cache, const KvCache* prefix, at::Tensor& k, at::Tensor& v) {
  if (cache) {
    std::tie(k, v) = cache->append(layer, k, v);
  } else if (prefix && pos0 > 0) {
    const auto pre = prefix->prefix(layer, pos0);
    k = at::cat({pre.first, k}), v = at::cat({pre.second, v});
  }
}

bool step_path(const ModelConfig& c, const LayerWeights& lw, int64_t N, const at::Device& dev, const AttnRecord* rec,
               const ForwardHooks* hooks) {
  return N == 1 && dev.is_cpu() && (!hooks || hooks->empty()) && !(rec && rec->keep_inputs) && !c.qk_norm &&
         lw.k_qkv.defined() && lw.k_o.defined() && lw.k_in.defined() && lw.k_out.defined() && lw.ln1_w.scalar_type() == at::kFloat;
}

void step_layer(const ModelConfig& c, const LayerWeights& lw, int64_t layer, float* x, const float* cos, const float* sin, int64_t pos0,
                const AttnRecord* rec, ForwardResult& res, KvCache* cache, const std::vector<const KvCache*>* prefixes, StepBuffers& b) {
  const int64_t H = c.n_heads, Hk = c.n_kv_heads, d = c.d_head, D = c.d_model;
  b.h.resize(D), b.qkv.resize((H + 2 * Hk) * d), b.attn.resize(D), b.u.resize(lw.k_in.rows), b.mlp.resize(D);
  norm_row(c, x, lw.ln1_w, lw.ln1_b, b.h.data());
  matvec_blocks(lw.k_qkv.view(), b.h.data(), b.qkv.data());
  add_bias(b.qkv.data(), lw.b_qkv, lw.k_qkv.rows);
  float *q = b.qkv.data(), *kr = q + H * d, *vr = kr + Hk * d;
  if (c.rope.rotary_dim > 0) rope_row(q, H, d, c.rope.rotary_dim, cos, sin), rope_row(kr, Hk, d, c.rope.rotary_dim, cos, sin);
  const auto f = at::TensorOptions().dtype(at::kFloat);
  at::Tensor k = at::from_blob(kr, {1, Hk, d}, f), v = at::from_blob(vr, {1, Hk, d}, f);
  with_context(layer, pos0, cache, prefixes ? (*prefixes)[0] : nullptr, k, v);
  const at::Tensor z = attend(c, layer, at::from_blob(q, {1, H, d}, f), k, v, pos0, rec, res, nullptr);
  matvec_blocks(lw.k_o.view(), z.data_ptr<float>(), b.attn.data());
  add_bias(b.attn.data(), lw.b_o, D);
  if (!c.parallel_residual)
    for (int64_t i = 0; i < D; ++i) x[i] += b.attn[i];
  norm_row(c, x, lw.ln2_w, lw.ln2_b, b.h.data());  // (parallel residual: the norm of the layer's input)
  matvec_blocks(lw.k_in.view(), b.h.data(), b.u.data());
  add_bias(b.u.data(), lw.b_in, lw.k_in.rows);
  const int64_t ff = c.d_ff;
  if (c.gated_mlp)
    for (int64_t i = 0; i < ff; ++i) b.u[i] = act_value(c.act, b.u[i]) * b.u[ff + i];
  else
    for (int64_t i = 0; i < ff; ++i) b.u[i] = act_value(c.act, b.u[i]);
  matvec_blocks(lw.k_out.view(), b.u.data(), b.mlp.data());
  add_bias(b.mlp.data(), lw.b_out, D);
  for (int64_t i = 0; i < D; ++i) x[i] += b.mlp[i] + (c.parallel_residual ? b.attn[i] : 0.f);
}

// The layers [first_layer, n_layers) over x [B·T, D] (B prompts of T tokens, rows one after another), with a hook
// at every named point; statistics and the cache only when B = 1. Returns the residual after the last layer.
at::Tensor run_layers(const ModelConfig& c, const Weights& w, at::Tensor x, int64_t B, int64_t T, int64_t first_layer, int64_t pos0,
                      const AttnRecord* rec, ForwardResult& res, const ForwardHooks* hooks, KvCache* cache,
                      const std::vector<const KvCache*>* prefixes = nullptr) {
  auto hook = [&](int64_t layer, const char* point, at::Tensor v) {
    if (!hooks || hooks->empty()) return v;
    const std::string name = hook_name(layer, point);
    return hooks->has(name) ? hooks->run(name, layer, v) : v;
  };
  auto hooked = [&](int64_t layer, const char* point) { return hooks && hooks->has(hook_name(layer, point)); };
  const at::Device dev = w.embed.device();
  RopeTables rt;
  if (c.rope.rotary_dim > 0) {
    rt = rope_tables(c, w.rope_freq_factors, pos0 + T);
    rt.cos = rt.cos.narrow(0, pos0, T).to(dev), rt.sin = rt.sin.narrow(0, pos0, T).to(dev);
    if (B > 1) rt.cos = rt.cos.repeat({B, 1}), rt.sin = rt.sin.repeat({B, 1});
  }
  const int64_t H = c.n_heads, Hk = c.n_kv_heads, d = c.d_head, N = B * T;
  StepBuffers step;
  bool x_owned = false;  // x is this pass's own buffer (the raw step path updates it in place)
  for (int64_t layer = first_layer; layer < c.n_layers; ++layer) {
    if (rec && rec->on_layer && !rec->on_layer(layer, c.n_layers)) throw Cancelled();
    const LayerWeights& lw = w.layers[layer];
    if (step_path(c, lw, N, dev, rec, hooks)) {
      if (!x_owned) x = x.to(at::kFloat).clone(at::MemoryFormat::Contiguous), x_owned = true;
      step_layer(c, lw, layer, x.data_ptr<float>(), rt.cos.defined() ? rt.cos.data_ptr<float>() : nullptr,
                 rt.sin.defined() ? rt.sin.data_ptr<float>() : nullptr, pos0, rec, res, cache, prefixes, step);
      continue;
    }
    x_owned = false;
    x = hook(layer, "hook_resid_pre", x);
    at::Tensor h = norm(c, x, lw.ln1_w, lw.ln1_b);
    at::Tensor qkv = linear(h, lw.w_qkv, lw.b_qkv, lw.k_qkv);
    at::Tensor q = qkv.narrow(1, 0, H * d).view({N, H, d});
    at::Tensor k = qkv.narrow(1, H * d, Hk * d).view({N, Hk, d});
    at::Tensor v = qkv.narrow(1, (H + Hk) * d, Hk * d).view({N, Hk, d});
    if (c.qk_norm) q = rms_heads(q, lw.q_norm, c.norm_eps), k = rms_heads(k, lw.k_norm, c.norm_eps);
    q = hook(layer, "attn.hook_q", q), k = hook(layer, "attn.hook_k", k), v = hook(layer, "attn.hook_v", v);
    if (c.rope.rotary_dim > 0) q = apply_rope(q, rt, c.rope.rotary_dim), k = apply_rope(k, rt, c.rope.rotary_dim);
    with_context(layer, pos0, cache, B == 1 && prefixes ? (*prefixes)[0] : nullptr, k, v);  // (B > 1: per prompt below)
    if (rec && rec->keep_inputs && B == 1) {
      if (rec->keep_inputs->q.size() != static_cast<size_t>(c.n_layers)) rec->keep_inputs->q.resize(c.n_layers), rec->keep_inputs->k.resize(c.n_layers);
      rec->keep_inputs->q[layer] = q, rec->keep_inputs->k[layer] = k;  // nothing below changes them in place
    }
    const KernelEdits* edits = hooks ? hooks->kernel_edits_for(layer) : nullptr;
    at::Tensor z;
    if (B == 1) {
      z = attend(c, layer, q, k, v, pos0, rec, res, edits);
    } else {  // one prompt at a time, each after its prefix
      std::vector<at::Tensor> zs;
      for (int64_t b = 0; b < B; ++b) {
        at::Tensor kb = k.narrow(0, b * T, T), vb = v.narrow(0, b * T, T);
        with_context(layer, pos0, nullptr, prefixes ? (*prefixes)[static_cast<size_t>(b)] : nullptr, kb, vb);
        zs.push_back(attend(c, layer, q.narrow(0, b * T, T), kb, vb, pos0, nullptr, res, edits));
      }
      z = at::cat(zs, 0);
    }
    z = hook(layer, "attn.hook_z", z.view({N, H, d})).reshape({N, H * d});
    at::Tensor attn_out;
    if (hooked(layer, "attn.hook_result")) {
      // Per-head contributions [N, H, D]: z_h times head h's columns of W_O.
      at::Tensor result = at::einsum("thd,Dhd->thD", {z.view({N, H, d}), lw.w_o.to(z.scalar_type()).view({c.d_model, H, d})});
      result = hook(layer, "attn.hook_result", result);
      attn_out = result.sum(1);
      if (lw.b_o.defined()) attn_out = attn_out + lw.b_o;
    } else {
      attn_out = linear(z, lw.w_o, lw.b_o, lw.k_o);
    }
    attn_out = hook(layer, "hook_attn_out", attn_out);
    auto mlp = [&](const at::Tensor& m) {
      at::Tensor u = linear(m, lw.w_in, lw.b_in, lw.k_in);
      if (c.gated_mlp) u = activation(c, u.narrow(1, 0, c.d_ff)) * u.narrow(1, c.d_ff, c.d_ff);
      else u = activation(c, u);
      return linear(u, lw.w_out, lw.b_out, lw.k_out);
    };
    if (c.parallel_residual) {
      x = x + attn_out + hook(layer, "hook_mlp_out", mlp(norm(c, x, lw.ln2_w, lw.ln2_b)));
    } else {
      x = hook(layer, "hook_resid_mid", x + attn_out);
      x = x + hook(layer, "hook_mlp_out", mlp(norm(c, x, lw.ln2_w, lw.ln2_b)));
    }
    x = hook(layer, "hook_resid_post", x);
  }
  return x;
}

// The final norm and the unembedding of x [rows, D], with their hooks.
at::Tensor unembed(const ModelConfig& c, const Weights& w, const at::Tensor& x, const ForwardHooks* hooks) {
  auto hook = [&](const char* point, at::Tensor v) { return hooks && !hooks->empty() && hooks->has(point) ? hooks->run(point, -1, v) : v; };
  at::Tensor n = hook("ln_final.hook_normalized", norm(c, x, w.final_w, w.final_b));
  return hook("unembed.hook_logits", linear(n, w.unembed, w.unembed_b, w.k_unembed));
}

void check_ids(const ModelConfig& c, const std::vector<int32_t>& ids) {
  if (ids.empty()) throw Error("the prompt is empty: nothing to run");
  for (int32_t id : ids)
    if (id < 0 || id >= c.vocab) throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(c.vocab - 1) + ")");
}

}  // namespace

at::Tensor embed(const ModelConfig& c, const Weights& w, const std::vector<int32_t>& ids, int64_t pos0) {
  check_ids(c, ids);
  const int64_t T = static_cast<int64_t>(ids.size());
  if (c.learned_positions && pos0 + T > c.context)
    throw Error("the prompt has " + std::to_string(pos0 + T) + " tokens; this model's learned positions stop at " + std::to_string(c.context));
  at::Tensor idt = at::from_blob(const_cast<int32_t*>(ids.data()), {T}, at::TensorOptions().dtype(at::kInt)).to(at::kLong).to(w.embed.device());
  at::Tensor x = w.embed.index_select(0, idt).to(at::kFloat);  // (a bf16 table under --matmul bf16)
  if (c.learned_positions) x = x + w.pos_embed.narrow(0, pos0, T);
  return x;
}

at::Tensor head_pattern(const ModelConfig& c, const AttnInputs& in, int64_t layer, int64_t head, int64_t q_lo, int64_t q_hi) {
  if (layer < 0 || layer >= c.n_layers || head < 0 || head >= c.n_heads)
    throw Error("head " + std::to_string(layer) + "." + std::to_string(head) + " does not exist");
  if (static_cast<size_t>(layer) >= in.q.size() || !in.q[layer].defined()) throw Error("no attention inputs kept for layer " + std::to_string(layer));
  const int64_t T = in.q[layer].size(0), S = in.k[layer].size(0);
  if (q_lo < 0 || q_hi > T || q_lo >= q_hi) throw Error("query rows [" + std::to_string(q_lo) + ", " + std::to_string(q_hi) + ") are outside the " + std::to_string(T) + " kept rows");
  // The head alone: a one-head layer over its KV group's keys (values are not needed: the pattern only).
  ModelConfig one = c;
  one.n_heads = 1, one.n_kv_heads = 1;
  const int64_t pos0 = S - T;  // kept rows follow any cached prefix
  at::Tensor q = in.q[layer].narrow(0, q_lo, q_hi - q_lo).narrow(1, head, 1);
  at::Tensor k = in.k[layer].narrow(0, 0, pos0 + q_hi).narrow(1, head / (c.n_heads / c.n_kv_heads), 1);
  AttnRecord rec;
  rec.pattern_heads = {{static_cast<int>(layer), 0}};
  ForwardResult res;
  attend(one, layer, q, k, at::zeros_like(k), pos0 + q_lo, &rec, res, nullptr);
  return res.patterns.at(0).second;
}

ForwardResult forward(const ModelConfig& c, const Weights& w, const std::vector<int32_t>& ids, bool last_only,
                      const AttnRecord* rec, const ForwardHooks* hooks, KvCache* cache) {
  ForwardResult res;
  if (rec && rec->stats) res.attn.resize(c.n_layers);
  if (rec && rec->n_keysets > 0) res.keyset_mass.resize(c.n_layers);
  if (rec && (rec->topk < 0 || rec->topk > kMaxTopK)) throw Error("top-k must be between 0 and " + std::to_string(kMaxTopK));
  for (auto& [l, h] : rec ? rec->pattern_heads : std::vector<std::pair<int, int>>{})
    if (l < 0 || l >= c.n_layers || h < 0 || h >= c.n_heads)
      throw Error("head " + std::to_string(l) + "." + std::to_string(h) + " does not exist (layers 0.." +
                  std::to_string(c.n_layers - 1) + ", heads 0.." + std::to_string(c.n_heads - 1) + ")");
  const int64_t T = static_cast<int64_t>(ids.size());
  const int64_t pos0 = cache ? cache->size() : 0;  // position of ids[0]
  at::Tensor x = run_layers(c, w, embed(c, w, ids, pos0), 1, T, 0, pos0, rec, res, hooks, cache);
  if (cache) cache->commit(T);
  if (last_only) x = x.narrow(0, T - 1, 1);
  res.logits = unembed(c, w, x, hooks);
  return res;
}

at::Tensor forward_batch(const ModelConfig& c, const Weights& w, const at::Tensor& resid, int64_t B, int64_t first_layer,
                         const ForwardHooks* hooks, const std::vector<const KvCache*>& prefixes, int64_t prefix_len) {
  if (B < 1 || resid.dim() != 2 || resid.size(0) % B != 0 || resid.size(1) != c.d_model)
    throw Error("a batched pass needs B >= 1 prompts of equal length as [B*T, d_model] rows");
  if (first_layer < 0 || first_layer > c.n_layers) throw Error("layer " + std::to_string(first_layer) + " does not exist");
  const int64_t T = resid.size(0) / B;
  ForwardResult res;
  if (prefix_len > 0 && static_cast<int64_t>(prefixes.size()) != B) throw Error("a batched pass needs one prefix cache per prompt");
  for (const KvCache* p : prefixes)
    if (prefix_len < 0 || !p || prefix_len > p->size()) throw Error("a batched pass's prefix is longer than its cache");
  at::Tensor x = run_layers(c, w, resid, B, T, first_layer, prefix_len, nullptr, res, hooks, nullptr, prefix_len > 0 ? &prefixes : nullptr);
  return unembed(c, w, x.view({B, T, c.d_model}).select(1, T - 1), hooks);
}

std::string hook_name(int64_t layer, const char* point) { return "blocks." + std::to_string(layer) + "." + point; }

}  // namespace headscope
