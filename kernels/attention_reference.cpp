// Materialising reference attention and statistics (see attention_reference.h).
#include "kernels/attention_reference.h"

#include <ATen/ATen.h>

#include <cmath>

namespace headscope {

namespace {
at::Tensor positions(int64_t n, int64_t offset) { return at::arange(n, at::kDouble) + static_cast<double>(offset); }

// visible[t, s] for absolute query positions q_pos0 + t.
at::Tensor visibility(const AttnShape& sh, const AttnInterventions& iv) {
  at::Tensor t = positions(sh.T, sh.q_pos0).unsqueeze(1), s = positions(sh.S, 0).unsqueeze(0);
  at::Tensor vis = s <= t;
  if (sh.window > 0) vis = vis & (t - s < static_cast<double>(sh.window));
  if (iv.key_padding) {
    at::Tensor pad = at::from_blob(const_cast<uint8_t*>(iv.key_padding), {sh.S}, at::kByte).to(at::kBool);
    vis = vis & at::logical_not(pad).unsqueeze(0);
  }
  return vis;
}
}  // namespace

ReferenceAttention attention_reference(const AttnShape& sh, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const AttnInterventions& iv, at::ScalarType dt) {
  const int64_t g = sh.H / sh.H_kv;
  const double scale = sh.scale > 0 ? sh.scale : 1.0 / std::sqrt(static_cast<double>(sh.d));
  at::Tensor qd = q.to(dt).permute({1, 0, 2});                                       // [H, T, d]
  at::Tensor kd = k.to(dt).permute({1, 0, 2}).repeat_interleave(g, 0);              // [H, S, d]
  at::Tensor vd = v.to(dt).permute({1, 0, 2}).repeat_interleave(g, 0);
  at::Tensor scores = at::matmul(qd, kd.transpose(1, 2)) * scale;                             // [H, T, S]
  if (iv.logit_bias)
    scores = scores + at::from_blob(const_cast<float*>(iv.logit_bias), {sh.H, 1, sh.S}, at::kFloat).to(dt);
  if (iv.row_bias) {
    at::Tensor rb = at::from_blob(const_cast<float*>(iv.row_bias), {sh.H, sh.T, 1}, at::kFloat).to(dt);
    at::Tensor keys = at::from_blob(const_cast<uint8_t*>(iv.row_bias_keys), {sh.H, 1, sh.S}, at::kByte).to(dt);
    scores = scores + rb * keys;
  }
  if (iv.uniform)
    for (int64_t h = 0; h < sh.H; ++h)
      if (iv.uniform[h]) scores[h].zero_();
  at::Tensor vis = visibility(sh, iv).unsqueeze(0).repeat({sh.H, 1, 1});  // [H, T, S]
  if (iv.head_window) {
    at::Tensor t = positions(sh.T, sh.q_pos0).unsqueeze(1), s = positions(sh.S, 0).unsqueeze(0);
    for (int64_t h = 0; h < sh.H; ++h)
      if (iv.head_window[h] > 0)
        vis[h] = vis[h] & ((s < static_cast<double>(iv.sink_keys)) | (s > t - static_cast<double>(iv.head_window[h])));
  }
  scores = scores.masked_fill(at::logical_not(vis), -INFINITY);
  at::Tensor probs = at::softmax(scores, -1);
  probs = at::where(vis, probs, at::zeros_like(probs));
  probs = at::nan_to_num(probs, 0.0);  // rows that see nothing
  at::Tensor out = at::matmul(probs, vd);  // [H, T, d]
  if (iv.head_scale)
    out = out * at::from_blob(const_cast<float*>(iv.head_scale), {sh.H, 1, 1}, at::kFloat).to(dt);
  return {out.permute({1, 0, 2}).contiguous(), probs};
}

ReferenceStats reference_stats(const AttnShape& sh, const at::Tensor& probs, const AttnStats& rq,
                               const AttnInterventions& iv) {
  ReferenceStats r;
  at::Tensor sidx = positions(sh.S, 0);  // [S]
  at::Tensor max_prob = std::get<0>(probs.max(-1));
  r.query[kStatMaxProb] = max_prob;
  // argmax with ties to the lowest key index, and -1 for rows that see nothing.
  at::Tensor cand = at::where(probs == max_prob.unsqueeze(-1), sidx.expand_as(probs), at::full_like(probs, 1e18));
  r.argmax = std::get<0>(cand.min(-1));
  r.argmax = at::where(max_prob > 0, r.argmax, at::full_like(r.argmax, -1.0));
  r.query[kStatEntropy] = at::where(probs > 0, -probs * at::log(probs), at::zeros_like(probs)).sum(-1);
  if (rq.topk > 0) {
    auto sorted = at::sort(probs, /*stable=*/true, /*dim=*/-1, /*descending=*/true);
    r.topk_prob = std::get<0>(sorted).narrow(-1, 0, std::min<int64_t>(rq.topk, sh.S));
    r.topk_idx = std::get<1>(sorted).narrow(-1, 0, std::min<int64_t>(rq.topk, sh.S)).to(at::kDouble);
    r.topk_idx = at::where(r.topk_prob > 0, r.topk_idx, at::full_like(r.topk_idx, -1.0));
  }
  if (rq.n_sinks > 0) {
    at::Tensor sinks = at::from_blob(const_cast<int32_t*>(rq.sink_pos), {rq.n_sinks}, at::kInt).to(at::kLong);
    r.query[kStatSinkMass] = probs.index_select(-1, std::get<0>(at::_unique(sinks))).sum(-1);
  } else {
    r.query[kStatSinkMass] = at::zeros({sh.H, sh.T}, probs.options());
  }
  at::Tensor dt = positions(sh.T, sh.q_pos0).unsqueeze(1) - sidx.unsqueeze(0);  // [T, S]
  at::Tensor dpos = at::clamp_min(dt, 0);
  r.query[kStatMeanDist] = (probs * dpos).sum(-1);
  r.query[kStatWaad] = (probs * at::clamp_max(dpos, static_cast<double>(rq.waad_window))).sum(-1);
  r.query[kStatPrevMass] = (probs * (dt == 1.0).to(probs.scalar_type())).sum(-1);
  at::Tensor in = dt >= static_cast<double>(rq.recv_lo);
  if (rq.recv_hi >= 0) in = in & (dt <= static_cast<double>(rq.recv_hi));
  if (rq.query_mask)
    in = in & at::from_blob(const_cast<uint8_t*>(rq.query_mask), {sh.T, 1}, at::kByte).to(at::kBool);
  at::Tensor inw = in.to(at::kDouble);
  r.key_recv = (probs * inw.unsqueeze(0)).sum(1);
  r.key_count = (inw * visibility(sh, iv).to(at::kDouble)).sum(0);
  if (rq.n_keysets > 0) {
    r.keyset_mass = at::zeros({rq.n_keysets, sh.H, sh.T}, at::kDouble);
    const at::Tensor p = probs.to(at::kDouble).contiguous();
    const double* pp = p.data_ptr<double>();
    double* out = r.keyset_mass.data_ptr<double>();
    for (int c = 0; c < rq.n_keysets; ++c)
      for (int64_t t = 0; t < sh.T; ++t)
        for (int64_t i = rq.keyset_offsets[c * (sh.T + 1) + t]; i < rq.keyset_offsets[c * (sh.T + 1) + t + 1]; ++i)
          for (int64_t h = 0; h < sh.H; ++h) out[(c * sh.H + h) * sh.T + t] += pp[(h * sh.T + t) * sh.S + rq.keyset_keys[i]];
  }
  return r;
}

}  // namespace headscope
