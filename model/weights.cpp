// Weight loading (see weights.h): one table of tensor names per architecture and format, a reader that takes
// exactly the tensors the table and the configuration ask for, and the assembly of the decoder's fused layout.
#include "model/weights.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstring>
#include <iterator>
#include <set>
#include <string>

#include "core/error.h"
#include "model/checkpoint.h"

namespace headscope {
namespace {

// Where a stored tensor goes. Model-level slots first, then per-layer ones.
enum Slot : int {
  kEmbed, kPosEmbed, kFinalW, kFinalB, kUnembed, kRopeFreqs, kModelSlots,
  kLn1W = kModelSlots, kLn1B, kLn2W, kLn2B, kQ, kK, kV, kQkv, kQB, kKB, kVB, kQkvB, kO, kOB, kQNorm, kKNorm,
  kGate, kUp, kGateB, kUpB, kDown, kDownB, kSlotCount
};

// A tensor dimension in terms of the config.
enum class Dim { none, D, V, F, Hd, Kd, Qkv, ctx, d, rot2 };

// When the tensor is part of the architecture: always, or only under a config flag. Optional tensors are read
// when present (GGUF files say by their tensors what a config.json says by flags).
enum class When { always, optional, qkv_bias, o_bias, mlp_bias, qk_norm, gated, untied };

struct TensorName {
  Slot slot;
  const char* name;  // "{L}" stands for the layer index; names of layer slots are per layer
  Dim d0, d1;
  When when;
  bool conv1d = false;  // stored [in, out] (GPT-2's Conv1D): transposed to [out, in]
};

// HF transformers (safetensors + config.json). Names are relative to the family's prefix ("model.", "transformer.",
// "gpt_neox."), which a checkpoint may or may not carry; the unembedding sits outside it.
const TensorName kHfLlama[] = {
    {kEmbed, "embed_tokens.weight", Dim::V, Dim::D, When::always},
    {kFinalW, "norm.weight", Dim::D, Dim::none, When::always},
    {kUnembed, "/lm_head.weight", Dim::V, Dim::D, When::optional},
    {kLn1W, "layers.{L}.input_layernorm.weight", Dim::D, Dim::none, When::always},
    {kLn2W, "layers.{L}.post_attention_layernorm.weight", Dim::D, Dim::none, When::always},
    {kQ, "layers.{L}.self_attn.q_proj.weight", Dim::Hd, Dim::D, When::always},
    {kK, "layers.{L}.self_attn.k_proj.weight", Dim::Kd, Dim::D, When::always},
    {kV, "layers.{L}.self_attn.v_proj.weight", Dim::Kd, Dim::D, When::always},
    {kQB, "layers.{L}.self_attn.q_proj.bias", Dim::Hd, Dim::none, When::qkv_bias},
    {kKB, "layers.{L}.self_attn.k_proj.bias", Dim::Kd, Dim::none, When::qkv_bias},
    {kVB, "layers.{L}.self_attn.v_proj.bias", Dim::Kd, Dim::none, When::qkv_bias},
    {kO, "layers.{L}.self_attn.o_proj.weight", Dim::D, Dim::Hd, When::always},
    {kOB, "layers.{L}.self_attn.o_proj.bias", Dim::D, Dim::none, When::o_bias},
    {kQNorm, "layers.{L}.self_attn.q_norm.weight", Dim::d, Dim::none, When::qk_norm},
    {kKNorm, "layers.{L}.self_attn.k_norm.weight", Dim::d, Dim::none, When::qk_norm},
    {kGate, "layers.{L}.mlp.gate_proj.weight", Dim::F, Dim::D, When::always},
    {kUp, "layers.{L}.mlp.up_proj.weight", Dim::F, Dim::D, When::always},
    {kDown, "layers.{L}.mlp.down_proj.weight", Dim::D, Dim::F, When::always},
    {kGateB, "layers.{L}.mlp.gate_proj.bias", Dim::F, Dim::none, When::mlp_bias},
    {kUpB, "layers.{L}.mlp.up_proj.bias", Dim::F, Dim::none, When::mlp_bias},
    {kDownB, "layers.{L}.mlp.down_proj.bias", Dim::D, Dim::none, When::mlp_bias},
};
const TensorName kHfGpt2[] = {
    {kEmbed, "wte.weight", Dim::V, Dim::D, When::always},
    {kPosEmbed, "wpe.weight", Dim::ctx, Dim::D, When::always},
    {kFinalW, "ln_f.weight", Dim::D, Dim::none, When::always},
    {kFinalB, "ln_f.bias", Dim::D, Dim::none, When::always},
    {kLn1W, "h.{L}.ln_1.weight", Dim::D, Dim::none, When::always},
    {kLn1B, "h.{L}.ln_1.bias", Dim::D, Dim::none, When::always},
    {kLn2W, "h.{L}.ln_2.weight", Dim::D, Dim::none, When::always},
    {kLn2B, "h.{L}.ln_2.bias", Dim::D, Dim::none, When::always},
    {kQkv, "h.{L}.attn.c_attn.weight", Dim::Qkv, Dim::D, When::always, true},
    {kQkvB, "h.{L}.attn.c_attn.bias", Dim::Qkv, Dim::none, When::always},
    {kO, "h.{L}.attn.c_proj.weight", Dim::D, Dim::Hd, When::always, true},
    {kOB, "h.{L}.attn.c_proj.bias", Dim::D, Dim::none, When::always},
    {kUp, "h.{L}.mlp.c_fc.weight", Dim::F, Dim::D, When::always, true},
    {kUpB, "h.{L}.mlp.c_fc.bias", Dim::F, Dim::none, When::always},
    {kDown, "h.{L}.mlp.c_proj.weight", Dim::D, Dim::F, When::always, true},
    {kDownB, "h.{L}.mlp.c_proj.bias", Dim::D, Dim::none, When::always},
};
const TensorName kHfNeox[] = {
    {kEmbed, "embed_in.weight", Dim::V, Dim::D, When::always},
    {kFinalW, "final_layer_norm.weight", Dim::D, Dim::none, When::always},
    {kFinalB, "final_layer_norm.bias", Dim::D, Dim::none, When::always},
    {kUnembed, "/embed_out.weight", Dim::V, Dim::D, When::untied},
    {kLn1W, "layers.{L}.input_layernorm.weight", Dim::D, Dim::none, When::always},
    {kLn1B, "layers.{L}.input_layernorm.bias", Dim::D, Dim::none, When::always},
    {kLn2W, "layers.{L}.post_attention_layernorm.weight", Dim::D, Dim::none, When::always},
    {kLn2B, "layers.{L}.post_attention_layernorm.bias", Dim::D, Dim::none, When::always},
    {kQkv, "layers.{L}.attention.query_key_value.weight", Dim::Qkv, Dim::D, When::always},
    {kQkvB, "layers.{L}.attention.query_key_value.bias", Dim::Qkv, Dim::none, When::qkv_bias},
    {kO, "layers.{L}.attention.dense.weight", Dim::D, Dim::Hd, When::always},
    {kOB, "layers.{L}.attention.dense.bias", Dim::D, Dim::none, When::o_bias},
    {kUp, "layers.{L}.mlp.dense_h_to_4h.weight", Dim::F, Dim::D, When::always},
    {kUpB, "layers.{L}.mlp.dense_h_to_4h.bias", Dim::F, Dim::none, When::always},
    {kDown, "layers.{L}.mlp.dense_4h_to_h.weight", Dim::D, Dim::F, When::always},
    {kDownB, "layers.{L}.mlp.dense_4h_to_h.bias", Dim::D, Dim::none, When::always},
};
// GGUF (llama.cpp's names), every architecture: q/k/v are separate or fused, biases and norms' biases optional.
const TensorName kGguf[] = {
    {kEmbed, "token_embd.weight", Dim::V, Dim::D, When::always},
    {kPosEmbed, "position_embd.weight", Dim::ctx, Dim::D, When::optional},
    {kFinalW, "output_norm.weight", Dim::D, Dim::none, When::always},
    {kFinalB, "output_norm.bias", Dim::D, Dim::none, When::optional},
    {kUnembed, "output.weight", Dim::V, Dim::D, When::optional},
    {kRopeFreqs, "rope_freqs.weight", Dim::rot2, Dim::none, When::optional},
    {kLn1W, "blk.{L}.attn_norm.weight", Dim::D, Dim::none, When::always},
    {kLn1B, "blk.{L}.attn_norm.bias", Dim::D, Dim::none, When::optional},
    {kLn2W, "blk.{L}.ffn_norm.weight", Dim::D, Dim::none, When::always},
    {kLn2B, "blk.{L}.ffn_norm.bias", Dim::D, Dim::none, When::optional},
    {kQkv, "blk.{L}.attn_qkv.weight", Dim::Qkv, Dim::D, When::optional},
    {kQkvB, "blk.{L}.attn_qkv.bias", Dim::Qkv, Dim::none, When::optional},
    {kQ, "blk.{L}.attn_q.weight", Dim::Hd, Dim::D, When::optional},
    {kK, "blk.{L}.attn_k.weight", Dim::Kd, Dim::D, When::optional},
    {kV, "blk.{L}.attn_v.weight", Dim::Kd, Dim::D, When::optional},
    {kQB, "blk.{L}.attn_q.bias", Dim::Hd, Dim::none, When::optional},
    {kKB, "blk.{L}.attn_k.bias", Dim::Kd, Dim::none, When::optional},
    {kVB, "blk.{L}.attn_v.bias", Dim::Kd, Dim::none, When::optional},
    {kO, "blk.{L}.attn_output.weight", Dim::D, Dim::Hd, When::always},
    {kOB, "blk.{L}.attn_output.bias", Dim::D, Dim::none, When::optional},
    {kQNorm, "blk.{L}.attn_q_norm.weight", Dim::d, Dim::none, When::qk_norm},
    {kKNorm, "blk.{L}.attn_k_norm.weight", Dim::d, Dim::none, When::qk_norm},
    {kGate, "blk.{L}.ffn_gate.weight", Dim::F, Dim::D, When::gated},
    {kUp, "blk.{L}.ffn_up.weight", Dim::F, Dim::D, When::always},
    {kUpB, "blk.{L}.ffn_up.bias", Dim::F, Dim::none, When::optional},
    {kDown, "blk.{L}.ffn_down.weight", Dim::D, Dim::F, When::always},
    {kDownB, "blk.{L}.ffn_down.bias", Dim::D, Dim::none, When::optional},
};
// Stored tensors that are not weights (buffers some writers save): ignored. "{L}" as above.
const char* const kIgnored[] = {"layers.{L}.self_attn.rotary_emb.inv_freq", "h.{L}.attn.bias", "h.{L}.attn.masked_bias",
                                "/lm_head.weight", "layers.{L}.attention.bias", "layers.{L}.attention.masked_bias",
                                "layers.{L}.attention.rotary_emb.inv_freq"};

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

std::string shape_text(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

// Reads the tensors of one table for one configuration, remembering which stored tensors it took.
class Reader {
 public:
  Reader(const Checkpoint& ck, const ModelConfig& c, std::string prefix) : ck_(ck), c_(c), prefix_(std::move(prefix)) {}

  std::string full_name(const char* name, int64_t layer) const {
    std::string n = name;
    if (n[0] == '/') n = n.substr(1);
    else n = prefix_ + n;
    const size_t at = n.find("{L}");
    if (at != std::string::npos) n.replace(at, 3, std::to_string(layer));
    return n;
  }

  // The stored tensor for `e`, or null (read() has taken and checked it).
  const TensorInfo* info(const TensorName& e, int64_t layer) const { return wanted(e.when) ? ck_.find(full_name(e.name, layer)) : nullptr; }

  // The tensor for `e` (undefined when it is not part of this configuration, or optional and absent).
  at::Tensor read(const TensorName& e, int64_t layer) {
    const std::string name = full_name(e.name, layer);
    const TensorInfo* t = ck_.find(name);
    if (!wanted(e.when)) return {};
    if (!t) {
      if (e.when == When::optional) return {};
      throw Error(ck_.path() + ": missing tensor '" + name + "' (the " + c_.family_name() + " configuration needs it)");
    }
    taken_.insert(name);
    std::vector<int64_t> shape{size(e.d0)};
    if (e.d1 != Dim::none) shape.push_back(size(e.d1));
    std::vector<int64_t> stored = shape;
    if (e.conv1d) std::swap(stored[0], stored[1]);
    if (t->shape != stored && !(t->numel() == numel(stored) && squeezed(t->shape) == squeezed(stored)))
      throw Error(ck_.path() + ": tensor '" + name + "' has shape " + shape_text(t->shape) + ", the config implies " + shape_text(stored));
    at::Tensor x = to_float(*t).reshape(stored);
    return e.conv1d ? x.t().contiguous() : x;
  }

  // Every stored tensor is either taken or a known non-weight; otherwise the checkpoint is not what the config says.
  void refuse_leftovers() const {
    std::set<std::string> ignored;
    for (int64_t l = 0; l < c_.n_layers; ++l)
      for (const char* n : kIgnored) ignored.insert(full_name(n, l));
    std::string extra;
    int n_extra = 0;
    for (const TensorInfo& t : ck_.tensors())
      if (!taken_.count(t.name) && !ignored.count(t.name)) {
        if (n_extra < 5) extra += (n_extra ? ", " : "") + t.name;
        ++n_extra;
      }
    if (n_extra)
      throw Error(ck_.path() + ": " + std::to_string(n_extra) + " tensor(s) not part of the " + c_.family_name() +
                  " architecture as configured: " + extra + (n_extra > 5 ? ", ..." : "") +
                  " (a config.json that does not match the weights, or an architecture headscope does not know)");
  }

 private:
  bool wanted(When w) const {
    switch (w) {
      case When::always: case When::optional: return true;
      case When::qkv_bias: return c_.qkv_bias;
      case When::o_bias: return c_.o_bias;
      case When::mlp_bias: return c_.mlp_bias;
      case When::qk_norm: return c_.qk_norm;
      case When::gated: return c_.gated_mlp;
      case When::untied: return !c_.tied_embeddings;
    }
    return false;
  }
  int64_t size(Dim d) const {
    switch (d) {
      case Dim::D: return c_.d_model;
      case Dim::V: return c_.vocab;
      case Dim::F: return c_.d_ff;
      case Dim::Hd: return c_.n_heads * c_.d_head;
      case Dim::Kd: return c_.n_kv_heads * c_.d_head;
      case Dim::Qkv: return (c_.n_heads + 2 * c_.n_kv_heads) * c_.d_head;
      case Dim::ctx: return c_.context;
      case Dim::d: return c_.d_head;
      case Dim::rot2: return c_.rope.rotary_dim / 2;
      case Dim::none: break;
    }
    return 1;
  }
  static int64_t numel(const std::vector<int64_t>& s) {
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
  const ModelConfig& c_;
  std::string prefix_;
  std::set<std::string> taken_;
};

// llama.cpp's converter reorders each head's q/k rows so that rotary pairs are adjacent ("normal" rope);
// undo it so that the rows are in HF order (first half / second half pairs).
at::Tensor unpermute_rows(const at::Tensor& w, int64_t heads) {
  if (!w.defined()) return w;
  const bool vec = w.dim() == 1;
  at::Tensor m = vec ? w.reshape({w.size(0), 1}) : w;
  auto s = m.sizes().vec();
  const int64_t rest = m.numel() / s[0];
  at::Tensor r = m.reshape({heads, s[0] / heads / 2, 2, rest}).transpose(1, 2).reshape(s).contiguous();
  return vec ? r.reshape({w.size(0)}) : r;
}

// GPT-NeoX's fused query_key_value rows are [head, (q|k|v), d_head]; regroup into all q, all k, all v rows.
at::Tensor neox_regroup(const at::Tensor& t, int64_t H, int64_t d) {
  if (!t.defined()) return t;
  auto s = t.sizes().vec();
  std::vector<int64_t> split{H, 3, d};
  for (size_t i = 1; i < s.size(); ++i) split.push_back(s[i]);
  return t.reshape(split).transpose(0, 1).reshape(s).contiguous();
}

at::Tensor cat_defined(std::initializer_list<at::Tensor> parts) {
  std::vector<at::Tensor> v;
  for (const at::Tensor& p : parts)
    if (p.defined()) v.push_back(p);
  return v.empty() ? at::Tensor() : at::cat(v);
}

}  // namespace

Weights weights_to(const Weights& w, const at::Device& device) {
  auto to = [&](const at::Tensor& t) { return t.defined() ? t.to(device) : t; };
  Weights o;
  o.embed = to(w.embed), o.pos_embed = to(w.pos_embed), o.final_w = to(w.final_w), o.final_b = to(w.final_b);
  o.unembed = to(w.unembed), o.unembed_b = to(w.unembed_b), o.rope_freq_factors = to(w.rope_freq_factors);
  for (const LayerWeights& l : w.layers)
    o.layers.push_back({to(l.ln1_w), to(l.ln1_b), to(l.ln2_w), to(l.ln2_b), to(l.w_qkv), to(l.b_qkv), to(l.w_o), to(l.b_o),
                        to(l.q_norm), to(l.k_norm), to(l.w_in), to(l.b_in), to(l.w_out), to(l.b_out)});
  return o;
}

BlockMatrix KeptBlocks::view() const {
  BlockMatrix m;
  m.bits = bits, m.rows = rows, m.cols = cols;
  m.q = q.data_ptr<uint8_t>(), m.scale = scale.data_ptr<float>(), m.offset = offset.defined() ? offset.data_ptr<float>() : nullptr;
  return m;
}

// The bytes as they are; the fp16 scales widened to float, Q4_0's d (n - 8) as scale d and offset -8 d (exact).
KeptBlocks kept_blocks(const TensorInfo& ti) {
  const TensorInfo* t = &ti;
  KeptBlocks k;
  if (t->shape.size() != 2 || t->shape[1] % kBlockCols) return k;
  if (t->type != GgmlType::Q4_0 && t->type != GgmlType::Q4_1 && t->type != GgmlType::Q8_0) return k;
  const int64_t rows = t->shape[0], nb = t->shape[1] / kBlockCols, bb = ggml_block_bytes(t->type);
  k.bits = t->type == GgmlType::Q8_0 ? 8 : 4, k.rows = rows, k.cols = t->shape[1];
  const int64_t qb = k.bits == 4 ? 16 : 32, head = bb - qb;  // bytes of scales before each block's values
  k.q = at::empty({rows, nb * qb}, at::kByte), k.scale = at::empty({rows, nb});
  if (k.bits == 4) k.offset = at::empty({rows, nb});
  uint8_t* q = k.q.data_ptr<uint8_t>();
  float* sc = k.scale.data_ptr<float>();
  float* off = k.bits == 4 ? k.offset.data_ptr<float>() : nullptr;
  for (int64_t i = 0; i < rows * nb; ++i) {
    const uint8_t* b = t->data + i * bb;
    uint16_t h[2];
    std::memcpy(h, b, sizeof h);
    sc[i] = fp16_to_fp32(h[0]);
    if (t->type == GgmlType::Q4_0) off[i] = -8.f * sc[i];
    if (t->type == GgmlType::Q4_1) off[i] = fp16_to_fp32(h[1]);
    std::memcpy(q + i * qb, b + head, static_cast<size_t>(qb));
  }
  return k;
}

namespace {

KeptBlocks blocks_of(const TensorInfo* t) { return t ? kept_blocks(*t) : KeptBlocks{}; }

// Several matrices' blocks stacked by rows (q, k, v; gate, up), each row-permuted by `perm` first when given; empty
// unless every part is kept with the same bits and width.
KeptBlocks stack_blocks(std::vector<KeptBlocks> parts, const std::vector<int64_t>& heads = {}) {
  KeptBlocks k;
  if (parts.empty()) return k;
  for (const KeptBlocks& p : parts)
    if (!p.defined() || p.bits != parts[0].bits || p.cols != parts[0].cols) return k;
  std::vector<at::Tensor> q, s, o;
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t perm = i < heads.size() ? heads[i] : 0;
    auto re = [&](const at::Tensor& t) { return perm > 0 ? unpermute_rows(t, perm) : t; };
    q.push_back(re(parts[i].q)), s.push_back(re(parts[i].scale));
    if (parts[i].bits == 4) o.push_back(re(parts[i].offset));
    k.rows += parts[i].rows;
  }
  k.bits = parts[0].bits, k.cols = parts[0].cols;
  k.q = at::cat(q).contiguous(), k.scale = at::cat(s).contiguous();
  if (!o.empty()) k.offset = at::cat(o).contiguous();
  return k;
}

}  // namespace

Weights load_weights(const Checkpoint& ck, const ModelConfig& c, bool bf16_linear, bool keep_blocks) {
  const bool gguf = ck.format() == Checkpoint::Format::GGUF;
  const TensorName* table;
  size_t n_entries;
  std::string prefix;
  auto pick = [&](const auto& t, const char* pre, const char* probe) {
    table = t, n_entries = std::size(t);
    prefix = ck.find(std::string(pre) + probe) ? pre : "";
  };
  if (gguf) pick(kGguf, "", "");
  else if (c.family == Family::Llama) pick(kHfLlama, "model.", "embed_tokens.weight");
  else if (c.family == Family::GPT2) pick(kHfGpt2, "transformer.", "wte.weight");
  else pick(kHfNeox, "gpt_neox.", "embed_in.weight");
  Reader R(ck, c, prefix);

  std::vector<at::Tensor> top(kModelSlots);
  for (size_t i = 0; i < n_entries; ++i)
    if (table[i].slot < kModelSlots) top[table[i].slot] = R.read(table[i], 0);
  Weights w;
  w.embed = top[kEmbed], w.pos_embed = top[kPosEmbed], w.final_w = top[kFinalW], w.final_b = top[kFinalB];
  w.rope_freq_factors = top[kRopeFreqs];
  w.unembed = c.tied_embeddings || !top[kUnembed].defined() ? w.embed : top[kUnembed];
  if (c.learned_positions && !w.pos_embed.defined()) throw Error(ck.path() + ": this architecture needs learned position embeddings");

  const int64_t H = c.n_heads, Hk = c.n_kv_heads, d = c.d_head;
  // llama.cpp permutes the q/k rows of these architectures for its interleaved rotary layout.
  const bool permuted = gguf && (c.architecture == "llama" || c.architecture == "mistral");
  keep_blocks = keep_blocks && gguf;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    std::vector<at::Tensor> s(kSlotCount);
    std::vector<KeptBlocks> kept(kSlotCount);
    for (size_t i = 0; i < n_entries; ++i)
      if (table[i].slot >= kModelSlots) {
        s[table[i].slot] = R.read(table[i], l);
        if (keep_blocks) kept[table[i].slot] = blocks_of(R.info(table[i], l));
      }
    LayerWeights lw;
    lw.ln1_w = s[kLn1W], lw.ln1_b = s[kLn1B], lw.ln2_w = s[kLn2W], lw.ln2_b = s[kLn2B];
    if (s[kQkv].defined()) {
      const bool neox = c.family == Family::GPTNeoX;
      lw.w_qkv = neox ? neox_regroup(s[kQkv], H, d) : s[kQkv];
      lw.b_qkv = neox ? neox_regroup(s[kQkvB], H, d) : s[kQkvB];
    } else {
      for (Slot need : {kQ, kK, kV})
        if (!s[need].defined())
          throw Error(ck.path() + ": layer " + std::to_string(l) + " has neither fused nor separate q/k/v weights (" +
                      R.full_name(need == kQ ? "blk.{L}.attn_q.weight" : need == kK ? "blk.{L}.attn_k.weight" : "blk.{L}.attn_v.weight", l) + " is missing)");
      if (permuted) s[kQ] = unpermute_rows(s[kQ], H), s[kK] = unpermute_rows(s[kK], Hk), s[kQB] = unpermute_rows(s[kQB], H), s[kKB] = unpermute_rows(s[kKB], Hk);
      lw.w_qkv = at::cat({s[kQ], s[kK], s[kV]});
      if (s[kQB].defined() || s[kKB].defined() || s[kVB].defined()) {
        if (!s[kQB].defined() || !s[kKB].defined() || !s[kVB].defined())
          throw Error(ck.path() + ": layer " + std::to_string(l) + " has biases for some of q, k, v but not all");
        lw.b_qkv = at::cat({s[kQB], s[kKB], s[kVB]});
      }
    }
    lw.w_o = s[kO], lw.b_o = s[kOB], lw.q_norm = s[kQNorm], lw.k_norm = s[kKNorm];
    lw.w_in = cat_defined({s[kGate], s[kUp]});
    lw.b_in = cat_defined({s[kGateB], s[kUpB]});
    lw.w_out = s[kDown], lw.b_out = s[kDownB];
    if (bf16_linear) {  // layer by layer, so the fp32 copies of the whole model never coexist with the bf16 ones
      auto bf = [](const at::Tensor& t) { return t.defined() ? t.to(at::kBFloat16).contiguous() : t; };
      lw.w_qkv = bf(lw.w_qkv), lw.w_o = bf(lw.w_o), lw.w_in = bf(lw.w_in), lw.w_out = bf(lw.w_out);
    }
    if (keep_blocks) {
      if (s[kQkv].defined()) lw.k_qkv = c.family == Family::GPTNeoX ? KeptBlocks{} : kept[kQkv];
      else lw.k_qkv = stack_blocks({kept[kQ], kept[kK], kept[kV]}, permuted ? std::vector<int64_t>{H, Hk} : std::vector<int64_t>{});
      lw.k_o = kept[kO], lw.k_out = kept[kDown];
      lw.k_in = s[kGate].defined() ? stack_blocks({kept[kGate], kept[kUp]}) : kept[kUp];
    }
    w.layers.push_back(std::move(lw));
  }
  if (keep_blocks)
    for (size_t i = 0; i < n_entries; ++i)
      if (table[i].slot == (top[kUnembed].defined() ? kUnembed : kEmbed)) w.k_unembed = blocks_of(R.info(table[i], 0));
  if (bf16_linear) {  // the unembedding too (the largest matrix a decode step reads), and a tied table once
    const bool tied = w.unembed.is_same(w.embed);
    w.embed = w.embed.to(at::kBFloat16).contiguous();
    w.unembed = tied ? w.embed : w.unembed.to(at::kBFloat16).contiguous();
  }
  R.refuse_leftovers();
  return w;
}

}  // namespace headscope
