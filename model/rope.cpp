// RoPE tables and rotation (see rope.h).
#include "model/rope.h"

#include <ATen/ATen.h>

#include <cmath>

namespace headscope {

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
  if (freq_factors.defined()) inv_freq = inv_freq / freq_factors.to(at::kCPU);
  at::Tensor pos = at::arange(T, f32);
  at::Tensor freqs = at::outer(pos, inv_freq);
  return {freqs.cos() * attn_scale, freqs.sin() * attn_scale};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& rt, int64_t rdim) {
  const int64_t half = rdim / 2;
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor cos = rt.cos.unsqueeze(1), sin = rt.sin.unsqueeze(1);  // [T, 1, half]
  at::Tensor r1 = x1 * cos - x2 * sin, r2 = x2 * cos + x1 * sin;
  if (rdim == x.size(-1)) return at::cat({r1, r2}, -1);
  return at::cat({r1, r2, x.narrow(-1, rdim, x.size(-1) - rdim)}, -1);
}

}  // namespace headscope
