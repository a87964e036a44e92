// The forward pass's attention adapter (see attention_adapter.h).
#include "model/attention_adapter.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/attention_act.h"

namespace headscope {

at::Tensor attend(const ModelConfig& c, int64_t layer, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  int64_t pos0, const AttnRecord* rec, ForwardResult& res, const KernelEdits* edits) {
  const int64_t T = q.size(0), S = k.size(0), H = c.n_heads;
  AttnInterventions iv;
  std::vector<uint8_t> uniform;
  std::vector<float> bias;
  std::vector<int32_t> head_window;
  if (edits) {
    if (!edits->kv_window.empty()) {
      if (!edits->act.empty()) throw Error("a kv_window budget and ACT calibration cannot act on the same layer");
      head_window.assign(H, 0);
      for (auto [h, w] : edits->kv_window) head_window[h] = static_cast<int32_t>(w);
      iv.head_window = head_window.data(), iv.sink_keys = edits->kv_sink;
    }
    if (!edits->uniform_heads.empty()) {
      uniform.assign(H, 0);
      for (int h : edits->uniform_heads) uniform[h] = 1;
      iv.uniform = uniform.data();
    }
    if (!edits->bias.empty()) {
      bias.assign(static_cast<size_t>(H * S), 0.f);
      for (auto& [h, key, b] : edits->bias) {
        const int64_t s = key < 0 ? key + S : key;
        if (s < 0 || s >= S)
          throw Error("attn_bias key " + std::to_string(key) + " is outside the " + std::to_string(S) + " tokens of this forward");
        bias[h * S + s] += b;
      }
      iv.logit_bias = bias.data();
    }
  }
  at::Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  // On a CUDA device the kernel reads device memory: the same buffers are allocated there, the host-side
  // interventions are copied over, and every recorded statistic and pattern comes back to the CPU at the end.
  const bool on_gpu = q.is_cuda();
  const at::TensorOptions f = at::TensorOptions().dtype(at::kFloat).device(q.device());
  const at::TensorOptions i32 = at::TensorOptions().dtype(at::kInt).device(q.device());
  AttnShape sh;
  sh.T = T, sh.S = S, sh.q_pos0 = pos0, sh.H = H, sh.H_kv = c.n_kv_heads, sh.d = c.d_head, sh.window = c.sliding_window;
  std::vector<float> row_bias;
  std::vector<uint8_t> row_keys;
  if (edits && !edits->act.empty()) {
    if (pos0 != 0) throw Error("ACT calibration needs the whole sequence in one pass; it does not run on decode steps");
    row_bias.assign(static_cast<size_t>(H * T), 0.f), row_keys.assign(static_cast<size_t>(H * T), 0);
    const at::Tensor qh = qc.cpu(), kh = kc.cpu(), vh = vc.cpu();  // the calibration's two passes run on the host
    for (auto& [h, tau, beta] : edits->act) {
      ActCalibration a = act_calibration(sh, qh.data_ptr<float>(), kh.data_ptr<float>(), vh.data_ptr<float>(), h, tau, beta, iv);
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
    // Every statistic of the table (core/head_stats.h), each [H, T] (per key: [H, S]).
    for (int id = 0; id < kStatCount; ++id) {
      if (id == kStatKeyRecv && !rec->key_recv) continue;
      o.stat[id] = at::empty({H, head_stat(id).per_key ? S : T}, head_stat(id).is_int ? i32 : f);
      if (head_stat_is_row_sum(id)) st.query[id] = o.stat[id].data_ptr<float>();
    }
    st.argmax = o.stat[kStatArgmax].data_ptr<int32_t>();
    st.waad_window = rec->waad_window;
    if (rec->key_recv) st.key_recv = o.stat[kStatKeyRecv].data_ptr<float>(), st.recv_lo = rec->recv_lo, st.recv_hi = rec->recv_hi;
    if (!rec->query_mask.empty()) {
      if (static_cast<int64_t>(rec->query_mask.size()) != T)
        throw Error("the query mask has " + std::to_string(rec->query_mask.size()) + " rows for " + std::to_string(T) + " queries");
      st.query_mask = rec->query_mask.data();
    }
    for (int32_t s : rec->sinks)
      if (s >= 0 && s < S) sinks.push_back(s);
    st.sink_pos = sinks.data(), st.n_sinks = static_cast<int>(sinks.size());
    if (rec->topk > 0) {
      st.topk = rec->topk;
      o.topk_idx = at::empty({H, T, rec->topk}, i32), o.topk_prob = at::empty({H, T, rec->topk}, f);
      st.topk_idx = o.topk_idx.data_ptr<int32_t>(), st.topk_prob = o.topk_prob.data_ptr<float>();
    }
    if (key_count && !key_count->defined()) {
      *key_count = at::empty({S}, at::kInt);  // host memory: an O(S) count
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
    const int64_t k1 = rec->k_hi < 0 ? pos0 + q1 : std::min<int64_t>(rec->k_hi, pos0 + q1), k0 = std::clamp<int64_t>(rec->k_lo, 0, k1);
    patterns = at::empty({static_cast<int64_t>(pattern_heads.size()), q1 - q0, k1 - k0}, f);
    st.pattern_heads = pattern_heads.data(), st.n_pattern = static_cast<int>(pattern_heads.size());
    st.pattern_q0 = q0, st.pattern_q1 = q1, st.pattern_k0 = k0, st.pattern_k1 = k1, st.pattern = patterns.data_ptr<float>();
  }
  at::Tensor keyset_mass;
  if (rec && rec->n_keysets > 0) {
    const int64_t n = rec->n_keysets;
    if (static_cast<int64_t>(rec->keyset_offsets.size()) != n * (T + 1) || rec->keyset_offsets.back() > static_cast<int64_t>(rec->keyset_keys.size()))
      throw Error("key sets: " + std::to_string(n) + " sets need " + std::to_string(n * (T + 1)) + " offsets for " + std::to_string(T) +
                  " queries, and keys up to the last offset");
    keyset_mass = at::empty({n, H, T}, f);
    st.n_keysets = static_cast<int>(n), st.keyset_offsets = rec->keyset_offsets.data(), st.keyset_keys = rec->keyset_keys.data();
    st.keyset_mass = keyset_mass.data_ptr<float>();
  }
  if (!on_gpu) {
    attention_cpu(sh, qc.data_ptr<float>(), kc.data_ptr<float>(), vc.data_ptr<float>(), out.data_ptr<float>(), st, iv);
  } else {
    auto up = [&](const auto& v, at::ScalarType t) {
      return at::from_blob(const_cast<void*>(static_cast<const void*>(v.data())), {static_cast<int64_t>(v.size())}, t).to(q.device());
    };
    at::Tensor d_uniform, d_bias, d_row_bias, d_row_keys, d_pattern_heads, d_query_mask, d_offsets, d_keys, d_window;
    AttnInterventions div;
    if (iv.uniform) d_uniform = up(uniform, at::kByte), div.uniform = d_uniform.data_ptr<uint8_t>();
    if (iv.head_window) d_window = up(head_window, at::kInt), div.head_window = d_window.data_ptr<int32_t>(), div.sink_keys = iv.sink_keys;
    if (iv.logit_bias) d_bias = up(bias, at::kFloat), div.logit_bias = d_bias.data_ptr<float>();
    if (iv.row_bias) {
      d_row_bias = up(row_bias, at::kFloat), d_row_keys = up(row_keys, at::kByte);
      div.row_bias = d_row_bias.data_ptr<float>(), div.row_bias_keys = d_row_keys.data_ptr<uint8_t>();
    }
    AttnStats dst = st;
    dst.key_count = nullptr;  // counted on the host below
    if (!pattern_heads.empty()) d_pattern_heads = up(pattern_heads, at::kInt), dst.pattern_heads = d_pattern_heads.data_ptr<int32_t>();
    if (st.query_mask) d_query_mask = up(rec->query_mask, at::kByte), dst.query_mask = d_query_mask.data_ptr<uint8_t>();
    if (st.n_keysets > 0) {
      if (std::string e = pattern_request_error(sh, st, true); !e.empty()) throw Error("attention kernel: " + e);  // checked on the host
      d_offsets = up(rec->keyset_offsets, at::kLong), dst.keyset_offsets = d_offsets.data_ptr<int64_t>();
      std::vector<int32_t> keys = rec->keyset_keys;
      if (keys.empty()) keys.push_back(0);  // a device buffer, never read
      d_keys = up(keys, at::kInt), dst.keyset_keys = d_keys.data_ptr<int32_t>();
    }
    char err[512];
    if (!attention_cuda(sh, qc.data_ptr<float>(), kc.data_ptr<float>(), vc.data_ptr<float>(), out.data_ptr<float>(), dst, div, err,
                        sizeof err))
      throw Error(err);
    if (st.key_count) {
      AttnStats only;
      only.key_count = st.key_count, only.recv_lo = st.recv_lo, only.recv_hi = st.recv_hi, only.query_mask = st.query_mask;
      attention_key_count(sh, only, AttnInterventions{});
    }
    if (rec && rec->stats) {
      AttnLayerStats& o = res.attn[layer];
      for (at::Tensor& t : o.stat)
        if (t.defined()) t = t.cpu();
      if (o.topk_idx.defined()) o.topk_idx = o.topk_idx.cpu(), o.topk_prob = o.topk_prob.cpu();
    }
    if (patterns.defined()) patterns = patterns.cpu();
    if (keyset_mass.defined()) keyset_mass = keyset_mass.cpu();
  }
  if (keyset_mass.defined()) res.keyset_mass[layer] = keyset_mass;
  for (size_t i = 0; i < pattern_heads.size(); ++i) res.patterns.push_back({{static_cast<int>(layer), pattern_heads[i]}, patterns[i]});
  return out.view({T, H * c.d_head});
}

}  // namespace headscope
