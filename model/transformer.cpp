// Weight loading and the forward pass of the generic decoder (see transformer.h).
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "model/forward_hooks.h"
#include "kernels/attention.h"
#include "kernels/attention_act.h"
#include "model/checkpoint.h"
#include "core/error.h"

namespace headscope {
namespace {

// Dequantises (or wraps, for aligned F32) one stored tensor as a float32 tensor of the stored shape.
at::Tensor to_float(const TensorInfo& t) {
  auto opts = at::TensorOptions().dtype(at::kFloat);
  if (t.type == GgmlType::F32 && reinterpret_cast<uintptr_t>(t.data) % 64 == 0)
    return at::from_blob(const_cast<uint8_t*>(t.data), t.shape, opts);  // zero-copy view of the mapping
  at::Tensor out = at::empty(t.shape, opts);
  const int64_t n = t.numel();
  const int64_t bs = ggml_block_size(t.type);
  const int64_t bb = ggml_block_bytes(t.type);
  const int64_t blocks = n / bs;
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, blocks, 4096, [&](int64_t b0, int64_t b1) {
    dequantize(t.type, t.data + b0 * bb, dst + b0 * bs, (b1 - b0) * bs);
  });
  return out;
}

class Loader {
 public:
  explicit Loader(const Checkpoint& ck) : ck_(ck) {}

  bool has(const std::string& name) const { return ck_.find(name) != nullptr; }

  // The tensor `name` as float32, checked against `shape` (outermost first).
  at::Tensor get(const std::string& name, std::vector<int64_t> shape) const {
    const TensorInfo& t = ck_.get(name);
    if (t.shape != shape && !(t.numel() == prod(shape) && squeezed(t.shape) == squeezed(shape)))
      throw Error(ck_.path() + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", the config implies " +
                  shape_str(shape));
    return to_float(t).reshape(shape);
  }
  at::Tensor get_opt(const std::string& name, std::vector<int64_t> shape) const {
    return has(name) ? get(name, shape) : at::Tensor();
  }

 private:
  static int64_t prod(const std::vector<int64_t>& s) {
    int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
  }
  static std::vector<int64_t> squeezed(const std::vector<int64_t>& s) {
    std::vector<int64_t> o;
    for (auto d : s)
      if (d != 1) o.push_back(d);
    return o;
  }
  const Checkpoint& ck_;
};

// llama.cpp's converter reorders each head's q/k rows so that rotary pairs are adjacent ("normal" rope);
// undo it so that the rows are in HF order (first half / second half pairs).
at::Tensor unpermute_rows(const at::Tensor& w, int64_t heads) {
  auto s = w.sizes().vec();
  int64_t rest = w.numel() / s[0];
  return w.reshape({heads, s[0] / heads / 2, 2, rest}).transpose(1, 2).reshape(s).contiguous();
}

// GPT-NeoX's fused query_key_value rows are [head, (q|k|v), d_head]; regroup into all q, all k, all v rows.
at::Tensor neox_regroup(const at::Tensor& t, int64_t H, int64_t d) {
  if (!t.defined()) return t;
  auto s = t.sizes().vec();
  std::vector<int64_t> split{H, 3, d};
  for (size_t i = 1; i < s.size(); ++i) split.push_back(s[i]);
  return t.reshape(split).transpose(0, 1).reshape(s).contiguous();
}

Weights load_hf(const Checkpoint& ck, const ModelConfig& c) {
  Loader L(ck);
  Weights w;
  const int64_t D = c.d_model, H = c.n_heads, Hk = c.n_kv_heads, d = c.d_head, F = c.d_ff, V = c.vocab;
  if (c.family == Family::Llama) {
    std::string p = L.has("model.embed_tokens.weight") ? "model." : "";
    w.embed = L.get(p + "embed_tokens.weight", {V, D});
    w.final_w = L.get(p + "norm.weight", {D});
    w.unembed = c.tied_embeddings || !L.has("lm_head.weight") ? w.embed : L.get("lm_head.weight", {V, D});
    for (int64_t i = 0; i < c.n_layers; ++i) {
      std::string b = p + "layers." + std::to_string(i) + ".";
      LayerWeights lw;
      lw.ln1_w = L.get(b + "input_layernorm.weight", {D});
      lw.ln2_w = L.get(b + "post_attention_layernorm.weight", {D});
      lw.w_qkv = at::cat({L.get(b + "self_attn.q_proj.weight", {H * d, D}), L.get(b + "self_attn.k_proj.weight", {Hk * d, D}),
                          L.get(b + "self_attn.v_proj.weight", {Hk * d, D})});
      if (c.qkv_bias)
        lw.b_qkv = at::cat({L.get(b + "self_attn.q_proj.bias", {H * d}), L.get(b + "self_attn.k_proj.bias", {Hk * d}),
                            L.get(b + "self_attn.v_proj.bias", {Hk * d})});
      lw.w_o = L.get(b + "self_attn.o_proj.weight", {D, H * d});
      if (c.o_bias) lw.b_o = L.get(b + "self_attn.o_proj.bias", {D});
      if (c.qk_norm) {
        lw.q_norm = L.get(b + "self_attn.q_norm.weight", {d});
        lw.k_norm = L.get(b + "self_attn.k_norm.weight", {d});
      }
      lw.w_in = at::cat({L.get(b + "mlp.gate_proj.weight", {F, D}), L.get(b + "mlp.up_proj.weight", {F, D})});
      lw.w_out = L.get(b + "mlp.down_proj.weight", {D, F});
      if (c.mlp_bias) {
        lw.b_in = at::cat({L.get(b + "mlp.gate_proj.bias", {F}), L.get(b + "mlp.up_proj.bias", {F})});
        lw.b_out = L.get(b + "mlp.down_proj.bias", {D});
      }
      w.layers.push_back(std::move(lw));
    }
  } else if (c.family == Family::GPT2) {
    std::string p = L.has("transformer.wte.weight") ? "transformer." : "";
    w.embed = L.get(p + "wte.weight", {V, D});
    w.pos_embed = L.get(p + "wpe.weight", {c.context, D});
    w.final_w = L.get(p + "ln_f.weight", {D});
    w.final_b = L.get(p + "ln_f.bias", {D});
    w.unembed = w.embed;
    for (int64_t i = 0; i < c.n_layers; ++i) {
      std::string b = p + "h." + std::to_string(i) + ".";
      LayerWeights lw;  // GPT-2 stores Conv1D weights as [in, out]: transpose to [out, in]
      lw.ln1_w = L.get(b + "ln_1.weight", {D});
      lw.ln1_b = L.get(b + "ln_1.bias", {D});
      lw.ln2_w = L.get(b + "ln_2.weight", {D});
      lw.ln2_b = L.get(b + "ln_2.bias", {D});
      lw.w_qkv = L.get(b + "attn.c_attn.weight", {D, 3 * D}).t().contiguous();
      lw.b_qkv = L.get(b + "attn.c_attn.bias", {3 * D});
      lw.w_o = L.get(b + "attn.c_proj.weight", {D, D}).t().contiguous();
      lw.b_o = L.get(b + "attn.c_proj.bias", {D});
      lw.w_in = L.get(b + "mlp.c_fc.weight", {D, F}).t().contiguous();
      lw.b_in = L.get(b + "mlp.c_fc.bias", {F});
      lw.w_out = L.get(b + "mlp.c_proj.weight", {F, D}).t().contiguous();
      lw.b_out = L.get(b + "mlp.c_proj.bias", {D});
      w.layers.push_back(std::move(lw));
    }
  } else {  // GPT-NeoX
    std::string p = L.has("gpt_neox.embed_in.weight") ? "gpt_neox." : "";
    w.embed = L.get(p + "embed_in.weight", {V, D});
    w.final_w = L.get(p + "final_layer_norm.weight", {D});
    w.final_b = L.get(p + "final_layer_norm.bias", {D});
    w.unembed = c.tied_embeddings ? w.embed : L.get("embed_out.weight", {V, D});
    for (int64_t i = 0; i < c.n_layers; ++i) {
      std::string b = p + "layers." + std::to_string(i) + ".";
      LayerWeights lw;
      lw.ln1_w = L.get(b + "input_layernorm.weight", {D});
      lw.ln1_b = L.get(b + "input_layernorm.bias", {D});
      lw.ln2_w = L.get(b + "post_attention_layernorm.weight", {D});
      lw.ln2_b = L.get(b + "post_attention_layernorm.bias", {D});
      lw.w_qkv = neox_regroup(L.get(b + "attention.query_key_value.weight", {3 * D, D}), H, d);
      if (c.qkv_bias) lw.b_qkv = neox_regroup(L.get(b + "attention.query_key_value.bias", {3 * D}), H, d);
      lw.w_o = L.get(b + "attention.dense.weight", {D, D});
      if (c.o_bias) lw.b_o = L.get(b + "attention.dense.bias", {D});
      lw.w_in = L.get(b + "mlp.dense_h_to_4h.weight", {F, D});
      lw.b_in = L.get(b + "mlp.dense_h_to_4h.bias", {F});
      lw.w_out = L.get(b + "mlp.dense_4h_to_h.weight", {D, F});
      lw.b_out = L.get(b + "mlp.dense_4h_to_h.bias", {D});
      w.layers.push_back(std::move(lw));
    }
  }
  return w;
}

Weights load_gguf(const Checkpoint& ck, const ModelConfig& c) {
  Loader L(ck);
  Weights w;
  const int64_t D = c.d_model, H = c.n_heads, Hk = c.n_kv_heads, d = c.d_head, F = c.d_ff, V = c.vocab;
  w.embed = L.get("token_embd.weight", {V, D});
  w.final_w = L.get("output_norm.weight", {D});
  w.final_b = L.get_opt("output_norm.bias", {D});
  w.unembed = L.has("output.weight") ? L.get("output.weight", {V, D}) : w.embed;
  if (L.has("position_embd.weight")) w.pos_embed = L.get("position_embd.weight", {c.context, D});
  if (L.has("rope_freqs.weight")) w.rope_freq_factors = L.get("rope_freqs.weight", {c.rope.rotary_dim / 2});
  const bool permuted = c.architecture == "llama" || c.architecture == "mistral";
  for (int64_t i = 0; i < c.n_layers; ++i) {
    std::string b = "blk." + std::to_string(i) + ".";
    LayerWeights lw;
    lw.ln1_w = L.get(b + "attn_norm.weight", {D});
    lw.ln1_b = L.get_opt(b + "attn_norm.bias", {D});
    lw.ln2_w = L.get(b + "ffn_norm.weight", {D});
    lw.ln2_b = L.get_opt(b + "ffn_norm.bias", {D});
    if (L.has(b + "attn_qkv.weight")) {
      lw.w_qkv = L.get(b + "attn_qkv.weight", {(H + 2 * Hk) * d, D});
      lw.b_qkv = L.get_opt(b + "attn_qkv.bias", {(H + 2 * Hk) * d});
      if (c.family == Family::GPTNeoX) lw.w_qkv = neox_regroup(lw.w_qkv, H, d), lw.b_qkv = neox_regroup(lw.b_qkv, H, d);
    } else {
      at::Tensor q = L.get(b + "attn_q.weight", {H * d, D}), k = L.get(b + "attn_k.weight", {Hk * d, D});
      at::Tensor qb = L.get_opt(b + "attn_q.bias", {H * d}), kb = L.get_opt(b + "attn_k.bias", {Hk * d});
      if (permuted) {
        q = unpermute_rows(q, H), k = unpermute_rows(k, Hk);
        if (qb.defined()) qb = unpermute_rows(qb.reshape({H * d, 1}), H).reshape({H * d});
        if (kb.defined()) kb = unpermute_rows(kb.reshape({Hk * d, 1}), Hk).reshape({Hk * d});
      }
      lw.w_qkv = at::cat({q, k, L.get(b + "attn_v.weight", {Hk * d, D})});
      if (qb.defined()) lw.b_qkv = at::cat({qb, kb, L.get(b + "attn_v.bias", {Hk * d})});
    }
    lw.w_o = L.get(b + "attn_output.weight", {D, H * d});
    lw.b_o = L.get_opt(b + "attn_output.bias", {D});
    if (c.qk_norm) {
      lw.q_norm = L.get(b + "attn_q_norm.weight", {d});
      lw.k_norm = L.get(b + "attn_k_norm.weight", {d});
    }
    if (c.gated_mlp) {
      lw.w_in = at::cat({L.get(b + "ffn_gate.weight", {F, D}), L.get(b + "ffn_up.weight", {F, D})});
    } else {
      lw.w_in = L.get(b + "ffn_up.weight", {F, D});
      lw.b_in = L.get_opt(b + "ffn_up.bias", {F});
    }
    lw.w_out = L.get(b + "ffn_down.weight", {D, F});
    lw.b_out = L.get_opt(b + "ffn_down.bias", {D});
    w.layers.push_back(std::move(lw));
  }
  return w;
}

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

// HF's rotate-half rotary embedding on the first rotary_dim features of each head. x: [T, H, d]
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& rt, int64_t rdim) {
  const int64_t half = rdim / 2;
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor cos = rt.cos.unsqueeze(1), sin = rt.sin.unsqueeze(1);  // [T, 1, half]
  at::Tensor r1 = x1 * cos - x2 * sin, r2 = x2 * cos + x1 * sin;
  if (rdim == x.size(-1)) return at::cat({r1, r2}, -1);
  return at::cat({r1, r2, x.narrow(-1, rdim, x.size(-1) - rdim)}, -1);
}

at::Tensor activation(const ModelConfig& c, const at::Tensor& x) {
  switch (c.act) {
    case Activation::SiLU: return at::silu(x);
    case Activation::GELU: return at::gelu(x);
    case Activation::GELUTanh: return at::gelu(x, "tanh");
  }
  return x;
}

// One layer's attention through the instrumented kernel. q [T, H, d], k/v [T, H_kv, d] -> [T, H*d]. Statistics,
// key counts and the layer's requested hook_pattern windows go into `res`.
at::Tensor attention(const ModelConfig& c, int64_t layer, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttnRecord* rec, ForwardResult& res, const KernelEdits* edits) {
  const int64_t T = q.size(0), H = c.n_heads;
  AttnInterventions iv;
  std::vector<uint8_t> uniform;
  std::vector<float> bias;
  if (edits) {
    if (!edits->uniform_heads.empty()) {
      uniform.assign(H, 0);
      for (int h : edits->uniform_heads) uniform[h] = 1;
      iv.uniform = uniform.data();
    }
    if (!edits->bias.empty()) {
      bias.assign(static_cast<size_t>(H * T), 0.f);
      for (auto& [h, key, b] : edits->bias) {
        const int64_t s = key < 0 ? key + T : key;
        if (s >= 0 && s < T) bias[h * T + s] += b;
      }
      iv.logit_bias = bias.data();
    }
  }
  at::Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  AttnShape sh;
  sh.T = sh.S = T, sh.H = H, sh.H_kv = c.n_kv_heads, sh.d = c.d_head, sh.window = c.sliding_window;
  std::vector<float> row_bias;
  std::vector<uint8_t> row_keys;
  if (edits && !edits->act.empty()) {
    row_bias.assign(static_cast<size_t>(H * T), 0.f), row_keys.assign(static_cast<size_t>(H * T), 0);
    for (auto& [h, tau, beta] : edits->act) {
      ActCalibration a = act_calibration(sh, qc.data_ptr<float>(), kc.data_ptr<float>(), vc.data_ptr<float>(), h, tau, beta, iv);
      std::copy(a.row_bias.begin(), a.row_bias.end(), row_bias.begin() + h * T);
      std::copy(a.key_mask.begin(), a.key_mask.end(), row_keys.begin() + h * T);
    }
    iv.row_bias = row_bias.data(), iv.row_bias_keys = row_keys.data();
  }
  at::Tensor out = at::empty({T, H, c.d_head}, q.options());
  AttnStats st;
  std::vector<int32_t> sinks;
  at::Tensor* key_count = &res.key_count;
  if (rec && rec->stats) {
    AttnLayerStats& o = res.attn[layer];
    auto f = at::TensorOptions().dtype(at::kFloat), i32 = at::TensorOptions().dtype(at::kInt);
    // Every statistic of the table (core/head_stats.h), each [H, T].
    for (int id = 0; id < kStatCount; ++id) {
      if (id == kStatKeyRecv && !rec->key_recv) continue;
      o.stat[id] = at::empty({H, T}, head_stat(id).is_int ? i32 : f);
      if (head_stat_is_row_sum(id)) st.query[id] = o.stat[id].data_ptr<float>();
    }
    st.argmax = o.stat[kStatArgmax].data_ptr<int32_t>();
    st.waad_window = rec->waad_window;
    if (rec->key_recv) st.key_recv = o.stat[kStatKeyRecv].data_ptr<float>(), st.recv_lo = rec->recv_lo, st.recv_hi = rec->recv_hi;
    for (int32_t s : rec->sinks)
      if (s >= 0 && s < T) sinks.push_back(s);
    st.sink_pos = sinks.data(), st.n_sinks = static_cast<int>(sinks.size());
    if (rec->topk > 0) {
      st.topk = rec->topk;
      o.topk_idx = at::empty({H, T, rec->topk}, i32), o.topk_prob = at::empty({H, T, rec->topk}, f);
      st.topk_idx = o.topk_idx.data_ptr<int32_t>(), st.topk_prob = o.topk_prob.data_ptr<float>();
    }
    if (key_count && !key_count->defined()) {
      *key_count = at::empty({T}, i32);
      st.key_count = key_count->data_ptr<int32_t>();
    }
  }
  // hook_pattern: the probabilities this very kernel call uses, for the requested heads of this layer and window.
  std::vector<int32_t> pattern_heads;
  if (rec)
    for (auto& [l, head] : rec->pattern_heads)
      if (l == layer) pattern_heads.push_back(head);
  at::Tensor patterns;
  if (!pattern_heads.empty()) {
    const int64_t q1 = rec->q_hi < 0 ? T : std::min<int64_t>(rec->q_hi, T), q0 = std::clamp<int64_t>(rec->q_lo, 0, q1);
    const int64_t k1 = rec->k_hi < 0 ? q1 : std::min<int64_t>(rec->k_hi, q1), k0 = std::clamp<int64_t>(rec->k_lo, 0, k1);
    patterns = at::empty({static_cast<int64_t>(pattern_heads.size()), q1 - q0, k1 - k0}, at::TensorOptions().dtype(at::kFloat));
    st.pattern_heads = pattern_heads.data(), st.n_pattern = static_cast<int>(pattern_heads.size());
    st.pattern_q0 = q0, st.pattern_q1 = q1, st.pattern_k0 = k0, st.pattern_k1 = k1, st.pattern = patterns.data_ptr<float>();
  }
  attention_cpu(sh, qc.data_ptr<float>(), kc.data_ptr<float>(), vc.data_ptr<float>(), out.data_ptr<float>(), st, iv);
  for (size_t i = 0; i < pattern_heads.size(); ++i) res.patterns.push_back({{static_cast<int>(layer), pattern_heads[i]}, patterns[i]});
  return out.view({T, H * c.d_head});
}

}  // namespace

Weights load_weights(const Checkpoint& ck, const ModelConfig& cfg) {
  Weights w = ck.format() == Checkpoint::Format::GGUF ? load_gguf(ck, cfg) : load_hf(ck, cfg);
  if (static_cast<int64_t>(w.layers.size()) != cfg.n_layers) throw Error(ck.path() + ": layer count mismatch");
  return w;
}

RopeTables rope_tables(const ModelConfig& c, const at::Tensor& freq_factors, int64_t T) {
  const RopeConfig& r = c.rope;
  const int64_t dim = r.rotary_dim;
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  double base = r.theta;
  if (r.scaling == "dynamic" && T > r.original_max_position && r.original_max_position > 0)
    base = base * std::pow(r.factor * T / r.original_max_position - (r.factor - 1), static_cast<double>(dim) / (dim - 2));
  at::Tensor exps = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<float>(dim);
  at::Tensor pos_freqs = at::pow(static_cast<float>(base), exps);
  at::Tensor inv_freq = 1.0 / pos_freqs;
  double attn_scale = 1.0;
  if (r.scaling == "linear") {
    inv_freq = inv_freq / r.factor;
  } else if (r.scaling == "llama3") {
    const double old_ctx = static_cast<double>(r.original_max_position);
    const double low_wl = old_ctx / r.low_freq_factor, high_wl = old_ctx / r.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_wl, inv_freq / r.factor, inv_freq);
    at::Tensor smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    at::Tensor medium = at::logical_not(wavelen < high_wl) & at::logical_not(wavelen > low_wl);
    inv_freq = at::where(medium, smoothed, scaled);
  } else if (r.scaling == "yarn") {
    auto mscale = [](double s, double m) { return s <= 1 ? 1.0 : 0.1 * m * std::log(s) + 1.0; };
    attn_scale = r.attention_factor > 0 ? r.attention_factor
                 : (r.mscale > 0 && r.mscale_all_dim > 0) ? mscale(r.factor, r.mscale) / mscale(r.factor, r.mscale_all_dim)
                                                          : mscale(r.factor, 1.0);
    auto corr_dim = [&](double rot) {
      return dim * std::log(r.original_max_position / (rot * 2 * M_PI)) / (2 * std::log(base));
    };
    double low = corr_dim(r.beta_fast), high = corr_dim(r.beta_slow);
    if (r.truncate) low = std::floor(low), high = std::ceil(high);
    low = std::max(low, 0.0), high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;
    at::Tensor ramp = at::clamp((at::arange(dim / 2, f32) - low) / (high - low), 0, 1);
    at::Tensor extrap = 1 - ramp;
    at::Tensor inv_interp = 1.0 / (r.factor * pos_freqs);
    inv_freq = inv_interp * (1 - extrap) + inv_freq * extrap;
  }
  if (freq_factors.defined()) inv_freq = inv_freq / freq_factors;
  at::Tensor pos = at::arange(T, f32);
  at::Tensor freqs = at::outer(pos, inv_freq);
  return {freqs.cos() * attn_scale, freqs.sin() * attn_scale};
}

ForwardResult forward(const ModelConfig& c, const Weights& w, const std::vector<int32_t>& ids, bool last_only,
                      const AttnRecord* rec, const ForwardHooks* hooks) {
  ForwardResult res;
  // Runs the hooks on a point, only when something hooks it.
  auto hook = [&](int64_t layer, const char* point, at::Tensor v) {
    if (!hooks || hooks->empty()) return v;
    const std::string name = layer >= 0 ? hook_name(layer, point) : std::string(point);
    return hooks->has(name) ? hooks->run(name, layer, v) : v;
  };
  auto hooked = [&](int64_t layer, const char* point) { return hooks && hooks->has(hook_name(layer, point)); };
  if (rec && rec->stats) res.attn.resize(c.n_layers);
  if (rec && (rec->topk < 0 || rec->topk > kMaxTopK)) throw Error("top-k must be between 0 and " + std::to_string(kMaxTopK));
  for (auto& [l, h] : rec ? rec->pattern_heads : std::vector<std::pair<int, int>>{})
    if (l < 0 || l >= c.n_layers || h < 0 || h >= c.n_heads)
      throw Error("head " + std::to_string(l) + "." + std::to_string(h) + " does not exist (layers 0.." +
                  std::to_string(c.n_layers - 1) + ", heads 0.." + std::to_string(c.n_heads - 1) + ")");
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0) throw Error("the prompt is empty: nothing to run");
  for (int32_t id : ids)
    if (id < 0 || id >= c.vocab) throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(c.vocab - 1) + ")");
  if (c.learned_positions && T > c.context)
    throw Error("the prompt has " + std::to_string(T) + " tokens; this model's learned positions stop at " + std::to_string(c.context));
  at::Tensor idt = at::from_blob(const_cast<int32_t*>(ids.data()), {T}, at::TensorOptions().dtype(at::kInt)).to(at::kLong);
  at::Tensor x = w.embed.index_select(0, idt);
  if (c.learned_positions) x = x + w.pos_embed.narrow(0, 0, T);

  RopeTables rt;
  if (c.rope.rotary_dim > 0) rt = rope_tables(c, w.rope_freq_factors, T);
  const int64_t H = c.n_heads, Hk = c.n_kv_heads, d = c.d_head;
  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    if (rec && rec->on_layer && !rec->on_layer(layer, c.n_layers)) throw Cancelled();
    const LayerWeights& lw = w.layers[layer];
    x = hook(layer, "hook_resid_pre", x);
    at::Tensor h = norm(c, x, lw.ln1_w, lw.ln1_b);
    at::Tensor qkv = at::linear(h, lw.w_qkv, lw.b_qkv);
    at::Tensor q = qkv.narrow(1, 0, H * d).view({T, H, d});
    at::Tensor k = qkv.narrow(1, H * d, Hk * d).view({T, Hk, d});
    at::Tensor v = qkv.narrow(1, (H + Hk) * d, Hk * d).view({T, Hk, d});
    if (c.qk_norm) q = rms_heads(q, lw.q_norm, c.norm_eps), k = rms_heads(k, lw.k_norm, c.norm_eps);
    q = hook(layer, "attn.hook_q", q), k = hook(layer, "attn.hook_k", k), v = hook(layer, "attn.hook_v", v);
    if (c.rope.rotary_dim > 0) q = apply_rope(q, rt, c.rope.rotary_dim), k = apply_rope(k, rt, c.rope.rotary_dim);
    at::Tensor z = attention(c, layer, q, k, v, rec, res, hooks ? hooks->kernel_edits_for(layer) : nullptr);
    z = hook(layer, "attn.hook_z", z.view({T, H, d})).reshape({T, H * d});
    at::Tensor attn_out;
    if (hooked(layer, "attn.hook_result")) {
      // Per-head contributions [T, H, D]: z_h times head h's columns of W_O.
      at::Tensor result = at::einsum("thd,Dhd->thD", {z.view({T, H, d}), lw.w_o.view({c.d_model, H, d})});
      result = hook(layer, "attn.hook_result", result);
      attn_out = result.sum(1);
      if (lw.b_o.defined()) attn_out = attn_out + lw.b_o;
    } else {
      attn_out = at::linear(z, lw.w_o, lw.b_o);
    }
    attn_out = hook(layer, "hook_attn_out", attn_out);
    auto mlp = [&](const at::Tensor& m) {
      at::Tensor u = at::linear(m, lw.w_in, lw.b_in);
      if (c.gated_mlp) u = activation(c, u.narrow(1, 0, c.d_ff)) * u.narrow(1, c.d_ff, c.d_ff);
      else u = activation(c, u);
      return at::linear(u, lw.w_out, lw.b_out);
    };
    if (c.parallel_residual) {
      x = x + attn_out + hook(layer, "hook_mlp_out", mlp(norm(c, x, lw.ln2_w, lw.ln2_b)));
    } else {
      x = hook(layer, "hook_resid_mid", x + attn_out);
      x = x + hook(layer, "hook_mlp_out", mlp(norm(c, x, lw.ln2_w, lw.ln2_b)));
    }
    x = hook(layer, "hook_resid_post", x);
  }
  if (last_only) x = x.narrow(0, T - 1, 1);
  x = hook(-1, "ln_final.hook_normalized", norm(c, x, w.final_w, w.final_b));
  res.logits = hook(-1, "unembed.hook_logits", at::linear(x, w.unembed, w.unembed_b));
  return res;
}

std::string hook_name(int64_t layer, const char* point) { return "blocks." + std::to_string(layer) + "." + point; }

}  // namespace headscope
