// ACT calibration sets and row biases from two passes of the instrumented kernel (see attention_act.h).
#include "kernels/attention_act.h"

#include <cmath>

#include "core/error.h"

namespace headscope {

ActCalibration act_calibration(const AttnShape& sh, const float* q, const float* k, const float* v, int64_t head, float tau,
                               float beta, const AttnInterventions& iv) {
  if (sh.q_pos0 != 0 || sh.S != sh.T) throw Error("ACT calibration needs a prefill pass (queries = keys)");
  if (!(tau > 0.f) || !(beta >= 0.f && beta <= 1.f)) throw Error("ACT needs tau > 0 and 0 <= beta <= 1");
  if (head < 0 || head >= sh.H) throw Error("ACT: head out of range");
  const int64_t T = sh.T, d = sh.d, hk = head / (sh.H / sh.H_kv);
  // The head alone: [T, 1, d] slices, so that the passes cost one head, not the layer.
  std::vector<float> qh(T * d), kh(T * d), vh(T * d), out(T * d);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < d; ++i) {
      qh[t * d + i] = q[(t * sh.H + head) * d + i];
      kh[t * d + i] = k[(t * sh.H_kv + hk) * d + i];
      vh[t * d + i] = v[(t * sh.H_kv + hk) * d + i];
    }
  AttnShape one = sh;
  one.H = one.H_kv = 1;
  AttnInterventions iv1;
  iv1.key_padding = iv.key_padding;
  if (iv.logit_bias) iv1.logit_bias = iv.logit_bias + head * sh.S;
  if (iv.uniform) iv1.uniform = iv.uniform + head;

  std::vector<float> recv(T);
  std::vector<int32_t> count(T);
  AttnStats s1;
  s1.key_recv = recv.data(), s1.key_count = count.data(), s1.recv_lo = 0, s1.recv_hi = -1;
  attention_cpu(one, qh.data(), kh.data(), vh.data(), out.data(), s1, iv1);
  ActCalibration c;
  // Strict >, where a mean equal to tau up to float rounding (relative 1e-6: the kernel's sums are a few ulp off
  // exact) counts as equal: a published tie then falls the same way on every machine.
  for (int64_t key = 0; key < T; ++key)
    if (recv[key] / static_cast<float>(T - key) > tau * (1.f + 1e-6f)) c.keys.push_back(static_cast<int32_t>(key));
  if (!c.keys.empty()) c.keys.erase(c.keys.begin());  // the smallest keeps its mass
  c.row_bias.assign(T, 0.f);
  c.key_mask.assign(T, 0);
  if (c.keys.empty()) return c;
  for (int32_t key : c.keys) c.key_mask[key] = 1;

  std::vector<float> ps(T);
  AttnStats s2;
  s2.sink_pos = c.keys.data(), s2.n_sinks = static_cast<int>(c.keys.size()), s2.query[kStatSinkMass] = ps.data();
  attention_cpu(one, qh.data(), kh.data(), vh.data(), out.data(), s2, iv1);
  for (int64_t t = 0; t < T; ++t) {
    const double p = ps[t];
    if (p > 0 && p < 1) c.row_bias[t] = static_cast<float>(std::log(beta * (1 - p) / (1 - beta * p)));
  }
  return c;
}

}  // namespace headscope
