// Per-row math of the instrumented attention kernel, shared by the CPU and CUDA implementations
// (`__host__ __device__` under nvcc, plain inline functions otherwise), so the CPU tests exercise exactly the
// arithmetic the GPU runs. One RowState follows one query row through the keys in increasing order with an
// online softmax: every accumulator is kept relative to the running maximum score m and rescaled when m grows,
// so after the last key the statistics equal those of the exact softmax (to float rounding).
#pragma once
#include <math.h>

#include <cstdint>
#include <cstring>

#include "core/head_stats.h"

#ifdef __CUDACC__
#define HS_HD __host__ __device__ __forceinline__
#else
#define HS_HD inline
#endif

namespace headscope {

// exp(x) for float, ~1 ulp (Cephes' polynomial after Cody–Waite reduction); 0 for x < -87.3.
// Written without branches on the data path so that loops over it vectorise.
HS_HD float hs_expf(float x) {
  const float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  float xc = x < -87.3f ? -87.3f : x;  // (ternaries, not fminf/fmaxf: those keep NaN rules that block vectorising)
  xc = xc > 88.3f ? 88.3f : xc;
  const float n = floorf(xc * kLog2e + 0.5f);
  const float r = xc - n * kLn2Hi - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
#ifdef __CUDA_ARCH__
  const float scale = __int_as_float(bits);
#else
  float scale;
  std::memcpy(&scale, &bits, 4);
#endif
  const float y = p * scale;
  return x < -87.3f ? 0.f : y;
}

constexpr int kRowTopK = 16;  // = kMaxTopK in attention.h (checked there)

struct RowState {
  float m;       // running max of the scores seen
  float l;       // sum exp(s - m)
  float ent;     // sum exp(s - m) * (s - m): entropy = log l - ent / l
  // Per-query statistics that are sums of exp(s - m) * w(t, s) over the keys, by id (core/head_stats.h):
  //   kStatSinkMass w = [s is a sink]   kStatMeanDist w = t - s   kStatWaad w = min(t - s, W)   kStatPrevMass w = [s = t - 1]
  float sum[kStatCount];
  int32_t argmax;
  int32_t n_top;
  float top_s[kRowTopK];    // top-k scores, decreasing; ties keep the earlier (lower) key first
  int32_t top_i[kRowTopK];
};

HS_HD void row_init(RowState& r) {
  r.m = -INFINITY;
  r.l = r.ent = 0.f;
  for (int i = 0; i < kStatCount; ++i) r.sum[i] = 0.f;
  r.argmax = -1;
  r.n_top = 0;
}

// Raises the running max to m_new (>= r.m) and rescales the sums; returns the factor exp(m_old - m_new) that
// the caller applies to its output accumulator.
HS_HD float row_rescale(RowState& r, float m_new) {
  if (m_new <= r.m) return 1.f;
  float f = r.l > 0.f ? hs_expf(r.m - m_new) : 0.f;
  // sum p (s - m_new) = sum p (s - m_old) + (m_old - m_new) sum p, all times f.
  r.ent = r.l > 0.f ? f * (r.ent + (r.m - m_new) * r.l) : 0.f;
  r.l *= f;
  for (int i = 0; i < kStatCount; ++i) r.sum[i] *= f;
  r.m = m_new;
  return f;
}

// Top-k insertion of key `idx` with score s (keys arrive in increasing index order, so a strict comparison
// keeps the lower index first among equal scores).
HS_HD void row_topk_push(RowState& r, int k, float s, int32_t idx) {
  if (r.n_top == k && !(s > r.top_s[k - 1])) return;
  int pos = r.n_top < k ? r.n_top++ : k - 1;
  while (pos > 0 && s > r.top_s[pos - 1]) {
    r.top_s[pos] = r.top_s[pos - 1];
    r.top_i[pos] = r.top_i[pos - 1];
    --pos;
  }
  r.top_s[pos] = s;
  r.top_i[pos] = idx;
}

// Adds a tile of n keys starting at key position s0 for the query at absolute position t. Scores s[j] are
// already scaled, biased and set to -inf for keys the query cannot see; the caller has raised the running max
// to at least max_j s[j] (row_rescale). Writes each key's unnormalised weight exp(s - m) to p[j] (the caller
// multiplies them into V) and updates the sums. kStats = false skips everything the plain output does not need.
template <bool kStats>
HS_HD void row_add_tile(RowState& r, const float* s, float* p, int n, int64_t t, int64_t s0, int waad_w,
                        const uint8_t* is_sink) {
  const float m = r.m;
  // The weights and their sum in one loop, the same with or without statistics, so that recording statistics
  // never changes the attention output by a single bit.
  float l = 0.f;
  for (int j = 0; j < n; ++j) {
    const float pj = hs_expf(s[j] - m);
    p[j] = pj;
    l += pj;
  }
  r.l += l;
  if (!kStats) return;
  // Distances t - s = dt0 - j: their weighted sum is dt0 l - sum_j p_j j (one product per key; as floats, since
  // int64 lanes would not vectorise). Entropy needs (s - m) per key; masked keys (p = 0, s = -inf) add nothing.
  const float dt0 = static_cast<float>(t - s0), w = static_cast<float>(waad_w);
  float ent = 0.f, pj_j = 0.f;
  for (int j = 0; j < n; ++j) {
    const float pj = p[j], x = s[j] - m;  // (read whatever p is: a conditional read would not vectorise as well)
    ent += pj > 0.f ? pj * x : 0.f;
    pj_j += pj * static_cast<float>(j);
  }
  const float dist = dt0 * l - pj_j;
  // WAAD weighs min(t - s, W): the tile's distances run from dt0 - (n - 1) to dt0, so the sum is W l when they
  // are all >= W, the distance sum when all are below it, and key by key only in the tile that straddles W.
  float waad;
  if (dt0 - static_cast<float>(n - 1) >= w) {
    waad = w * l;
  } else if (dt0 < w) {
    waad = dist;
  } else {
    waad = 0.f;
    for (int j = 0; j < n; ++j) {
      const float dt = dt0 - static_cast<float>(j);
      waad += p[j] * (dt < w ? dt : w);
    }
  }
  // The previous token's weight: key t - 1, in one tile only.
  const int64_t jp = t - 1 - s0;
  const float prev = jp >= 0 && jp < n ? p[jp] : 0.f;
  float sink = 0.f;
  if (is_sink)  // (null for tiles without a sink)
    for (int j = 0; j < n; ++j) sink += is_sink[j] ? p[j] : 0.f;
  r.ent += ent;
  r.sum[kStatMeanDist] += dist, r.sum[kStatWaad] += waad, r.sum[kStatPrevMass] += prev, r.sum[kStatSinkMass] += sink;
}

// Final values of a row: value[id] for every per-query float statistic. A row that saw no key (all masked) gets
// zeros and argmax -1.
struct RowResult {
  float inv_l, lse;
  float value[kStatCount];
};
HS_HD RowResult row_finish(const RowState& r) {
  RowResult o{};
  if (!(r.l > 0.f)) return o;
  o.inv_l = 1.f / r.l;
  o.lse = r.m + logf(r.l);
  for (int i = 0; i < kStatCount; ++i) o.value[i] = r.sum[i] * o.inv_l;
  o.value[kStatMaxProb] = o.inv_l;  // the max score contributes exp(0) = 1
  o.value[kStatEntropy] = logf(r.l) - r.ent * o.inv_l;
  return o;
}

// Is key position `s` visible from absolute query position `t`?
HS_HD bool key_visible(int64_t t, int64_t s, int64_t window) { return s <= t && (window <= 0 || t - s < window); }

}  // namespace headscope
