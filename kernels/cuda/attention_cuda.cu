// CUDA implementation of the instrumented attention kernel (contract in attention.h). Flash-attention style:
// a block owns one head and kRows consecutive queries (one thread per query); K and V tiles of kTile keys are
// staged in shared memory and every thread runs the same online-softmax row math as the CPU kernel
// (attention_math.h: row_rescale, row_add_tile, row_topk_push, row_finish). Per-key received mass needs the
// normalised probabilities, so a second kernel, one thread per key, walks the queries with the row
// log-sum-exp saved by the first; a requested pattern window is a third kernel, one thread per (row, key), with
// each row's final max and 1 / sum, and requested key sets a fourth, one thread per (head, row). No T x T buffer
// exists on the device either.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "kernels/attention.h"
#include "kernels/attention_math.h"

namespace headscope {
namespace {

constexpr int kRows = 64;   // queries per block (one per thread)
constexpr int kTile = 32;   // keys per shared-memory tile
constexpr int kMaxD = 256;  // largest head size the CUDA kernel takes

struct DevArgs {
  AttnShape sh;
  float scale;
  const float *q, *k, *v;
  float* out;
  AttnStats st;              // device pointers
  AttnInterventions iv;      // device pointers
  const uint8_t* is_sink;    // [S] or null
  float* lse;                // [H, T] or null
  float *row_m, *row_inv_l;  // [H, T] or null: for the pattern kernel
};

__device__ void tile_scores(const DevArgs& a, int64_t h, const float* qrow, const float* ks, int n, int64_t t_abs,
                            int64_t s0, float* sc) {
  const int64_t d = a.sh.d;
  const bool uni = a.iv.uniform && a.iv.uniform[h];
  for (int j = 0; j < n; ++j) {
    float s = 0.f;
    if (!uni) {
      for (int64_t kk = 0; kk < d; ++kk) s += qrow[kk] * ks[j * d + kk];
      s *= a.scale;
      if (a.iv.logit_bias) s += a.iv.logit_bias[h * a.sh.S + s0 + j];
      if (a.iv.row_bias && a.iv.row_bias_keys[h * a.sh.S + s0 + j]) s += a.iv.row_bias[h * a.sh.T + (t_abs - a.sh.q_pos0)];
    }
    const bool budget_out = a.iv.head_window && a.iv.head_window[h] > 0 && s0 + j >= a.iv.sink_keys && s0 + j <= t_abs - a.iv.head_window[h];
    const bool vis = key_visible(t_abs, s0 + j, a.sh.window) && !(a.iv.key_padding && a.iv.key_padding[s0 + j]) && !budget_out;
    sc[j] = vis ? s : -INFINITY;
  }
}

template <bool kStats>
__global__ void attn_forward(DevArgs a) {
  extern __shared__ float smem[];
  const AttnShape& sh = a.sh;
  const int64_t d = sh.d, h = blockIdx.y, hk = h / (sh.H / sh.H_kv);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kRows, t = t0 + threadIdx.x;
  const bool active = t < sh.T;
  const int64_t t_abs = sh.q_pos0 + t;
  float* ks = smem;              // [kTile, d]
  float* vs = smem + kTile * d;  // [kTile, d]
  float qrow[kMaxD], acc[kMaxD], sc[kTile], p[kTile];
  RowState r;
  row_init(r);
  for (int64_t kk = 0; kk < d; ++kk) {
    qrow[kk] = active ? a.q[(t * sh.H + h) * d + kk] : 0.f;
    acc[kk] = 0.f;
  }
  const int64_t last_abs = sh.q_pos0 + min(sh.T, t0 + kRows) - 1;
  const int64_t kbeg = sh.window > 0 ? max(static_cast<int64_t>(0), sh.q_pos0 + t0 - sh.window + 1) : 0;
  const int64_t kend = min(sh.S, last_abs + 1);
  for (int64_t s0 = (kbeg / kTile) * kTile; s0 < kend; s0 += kTile) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kTile), kend - s0));
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n * d; i += blockDim.x) {
      const int64_t j = i / d, kk = i % d;
      ks[i] = a.k[((s0 + j) * sh.H_kv + hk) * d + kk];
      vs[i] = a.v[((s0 + j) * sh.H_kv + hk) * d + kk];
    }
    __syncthreads();
    if (!active || s0 > t_abs) continue;
    tile_scores(a, h, qrow, ks, n, t_abs, s0, sc);
    float tmax = -INFINITY;
    int32_t targ = -1;
    for (int j = 0; j < n; ++j)
      if (sc[j] > tmax) tmax = sc[j], targ = static_cast<int32_t>(s0 + j);
    if (tmax > r.m) {
      r.argmax = targ;
      const float f = row_rescale(r, tmax);
      for (int64_t kk = 0; kk < d; ++kk) acc[kk] *= f;
    }
    if (r.m == -INFINITY) continue;
    row_add_tile<kStats>(r, sc, p, n, t_abs, s0, a.st.waad_window, a.is_sink ? a.is_sink + s0 : nullptr);
    if (kStats && a.st.topk > 0)
      for (int j = 0; j < n; ++j)
        if (sc[j] > -INFINITY) row_topk_push(r, a.st.topk, sc[j], static_cast<int32_t>(s0 + j));
    for (int j = 0; j < n; ++j)
      if (p[j] != 0.f)
        for (int64_t kk = 0; kk < d; ++kk) acc[kk] += p[j] * vs[j * d + kk];
  }
  if (!active) return;
  const RowResult res = row_finish(r);
  const float f = res.inv_l * (a.iv.head_scale ? a.iv.head_scale[h] : 1.f);
  for (int64_t kk = 0; kk < d; ++kk) a.out[(t * sh.H + h) * d + kk] = acc[kk] * f;
  if (!kStats) return;
  const int64_t hi = h * sh.T + t;
  const AttnStats& st = a.st;
  for (int id = 0; id < kStatCount; ++id)
    if (st.query[id]) st.query[id][hi] = res.value[id];
  if (st.argmax) st.argmax[hi] = r.argmax;
  if (a.lse) a.lse[hi] = r.l > 0.f ? res.lse : INFINITY;
  if (a.row_m) a.row_m[hi] = r.m, a.row_inv_l[hi] = res.inv_l;
  for (int j = 0; j < st.topk; ++j) {
    const bool have = j < r.n_top;
    if (st.topk_idx) st.topk_idx[hi * st.topk + j] = have ? r.top_i[j] : -1;
    if (st.topk_prob) st.topk_prob[hi * st.topk + j] = have ? hs_expf(r.top_s[j] - r.m) * res.inv_l : 0.f;
  }
}

// One thread per key: probability received from the queries in its relative window (second pass).
__global__ void attn_received(DevArgs a) {
  const AttnShape& sh = a.sh;
  const AttnStats& st = a.st;
  const int64_t d = sh.d, h = blockIdx.y, hk = h / (sh.H / sh.H_kv);
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= sh.S) return;
  float krow[kMaxD];
  for (int64_t kk = 0; kk < d; ++kk) krow[kk] = a.k[(s * sh.H_kv + hk) * d + kk];
  const bool padded = a.iv.key_padding && a.iv.key_padding[s];
  int64_t lo = s + (st.recv_lo > 0 ? st.recv_lo : 0);
  int64_t hi = st.recv_hi >= 0 ? s + st.recv_hi : sh.q_pos0 + sh.T - 1;
  if (sh.window > 0) hi = min(hi, s + sh.window - 1);
  const int64_t tb = max(static_cast<int64_t>(0), lo - sh.q_pos0), te = min(sh.T, hi - sh.q_pos0 + 1);
  float recv = 0.f;
  for (int64_t t = tb; t < te && !padded; ++t) {
    if (st.query_mask && !st.query_mask[t]) continue;
    const float lse = a.lse[h * sh.T + t];
    if (lse == INFINITY) continue;
    float sc;
    tile_scores(a, h, a.q + (t * sh.H + h) * d, krow, 1, sh.q_pos0 + t, s, &sc);
    recv += hs_expf(sc - lse);
  }
  st.key_recv[h * sh.S + s] = recv;
}

// One thread per (pattern row, key): exp(s - m) / l with the row's final max and sum (third pass).
__global__ void attn_pattern(DevArgs a) {
  const AttnShape& sh = a.sh;
  const AttnStats& st = a.st;
  const int64_t keys = st.pattern_k1 - st.pattern_k0, rows = st.pattern_q1 - st.pattern_q0;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, i = blockIdx.y, pi = blockIdx.z;
  if (j >= keys) return;
  const int64_t h = st.pattern_heads[pi], hk = h / (sh.H / sh.H_kv), t = st.pattern_q0 + i, s = st.pattern_k0 + j;
  const float inv_l = a.row_inv_l[h * sh.T + t];
  float p = 0.f;
  if (inv_l > 0.f) {
    float sc;
    tile_scores(a, h, a.q + (t * sh.H + h) * sh.d, a.k + (s * sh.H_kv + hk) * sh.d, 1, sh.q_pos0 + t, s, &sc);
    p = hs_expf(sc - a.row_m[h * sh.T + t]) * inv_l;
  }
  st.pattern[(pi * rows + i) * keys + j] = p;
}

// One thread per (head, row): the mass of every requested key set (fourth pass).
__global__ void attn_keysets(DevArgs a) {
  const AttnShape& sh = a.sh;
  const AttnStats& st = a.st;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, h = blockIdx.y, hk = h / (sh.H / sh.H_kv);
  if (t >= sh.T) return;
  const float m = a.row_m[h * sh.T + t], inv_l = a.row_inv_l[h * sh.T + t];
  for (int cs = 0; cs < st.n_keysets; ++cs) {
    const int64_t* off = st.keyset_offsets + cs * (sh.T + 1);
    float sum = 0.f;
    if (inv_l > 0.f)
      for (int64_t i = off[t]; i < off[t + 1]; ++i) {
        const int64_t s = st.keyset_keys[i];
        float sc;
        tile_scores(a, h, a.q + (t * sh.H + h) * sh.d, a.k + (s * sh.H_kv + hk) * sh.d, 1, sh.q_pos0 + t, s, &sc);
        sum += hs_expf(sc - m) * inv_l;
      }
    st.keyset_mass[(cs * sh.H + h) * sh.T + t] = sum;
  }
}

struct DeviceBuffers {
  std::vector<void*> ptrs;
  ~DeviceBuffers() {
    for (void* p : ptrs) cudaFree(p);
  }
  template <class T>
  T* alloc(size_t n) {
    void* p = nullptr;
    if (n == 0 || cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) return nullptr;
    ptrs.push_back(p);
    return static_cast<T*>(p);
  }
  template <class T>
  T* upload(const T* host, size_t n) {
    if (!host) return nullptr;
    T* p = alloc<T>(n);
    if (p) cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice);
    return p;
  }
};

bool fail(char* err, int err_len, const char* what, cudaError_t e) {
  std::snprintf(err, err_len, "CUDA attention: %s: %s", what, cudaGetErrorString(e));
  return false;
}

}  // namespace

bool cuda_built() { return true; }

bool cuda_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

bool attention_cuda(const AttnShape& sh, const float* q, const float* k, const float* v, float* out, const AttnStats& st,
                    const AttnInterventions& iv, char* err, int err_len) {
  if (sh.d > kMaxD) {
    std::snprintf(err, err_len, "CUDA attention: d_head %lld > %d", static_cast<long long>(sh.d), kMaxD);
    return false;
  }
  const std::string bad = pattern_request_error(sh, st, false);
  if (!bad.empty()) {
    std::snprintf(err, err_len, "CUDA attention: %s", bad.c_str());
    return false;
  }
  if (sh.T == 0) return true;
  DeviceBuffers buf;
  DevArgs a{sh, sh.scale > 0.f ? sh.scale : 1.f / sqrtf(static_cast<float>(sh.d)), q, k, v, out, st, iv, nullptr, nullptr,
            nullptr, nullptr};
  std::vector<uint8_t> is_sink;
  if (st.n_sinks > 0 && st.query[kStatSinkMass]) {
    is_sink.assign(static_cast<size_t>(sh.S + kTile), 0);
    for (int i = 0; i < st.n_sinks; ++i) is_sink[st.sink_pos[i]] = 1;
    a.is_sink = buf.upload(is_sink.data(), is_sink.size());
  }
  if (st.key_recv) a.lse = buf.alloc<float>(static_cast<size_t>(sh.H * sh.T));
  if (st.needs_row_norm()) a.row_m = buf.alloc<float>(static_cast<size_t>(sh.H * sh.T)), a.row_inv_l = buf.alloc<float>(static_cast<size_t>(sh.H * sh.T));
  const bool stats = st.any();
  dim3 grid(static_cast<unsigned>((sh.T + kRows - 1) / kRows), static_cast<unsigned>(sh.H));
  const size_t shmem = 2 * kTile * sh.d * sizeof(float);
  if (stats) attn_forward<true><<<grid, kRows, shmem>>>(a);
  else attn_forward<false><<<grid, kRows, shmem>>>(a);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(err, err_len, "forward launch", e);
  if (st.key_recv) {
    dim3 g2(static_cast<unsigned>((sh.S + 127) / 128), static_cast<unsigned>(sh.H));
    attn_received<<<g2, 128>>>(a);
    if ((e = cudaGetLastError()) != cudaSuccess) return fail(err, err_len, "received-mass launch", e);
  }
  const int64_t pattern_rows = st.pattern_q1 - st.pattern_q0, pattern_keys = st.pattern_k1 - st.pattern_k0;
  if (st.wants_pattern() && pattern_rows > 0 && pattern_keys > 0) {
    dim3 g3(static_cast<unsigned>((pattern_keys + 127) / 128), static_cast<unsigned>(pattern_rows), static_cast<unsigned>(st.n_pattern));
    attn_pattern<<<g3, 128>>>(a);
    if ((e = cudaGetLastError()) != cudaSuccess) return fail(err, err_len, "pattern launch", e);
  }
  if (st.wants_keysets()) {
    dim3 g4(static_cast<unsigned>((sh.T + 127) / 128), static_cast<unsigned>(sh.H));
    attn_keysets<<<g4, 128>>>(a);
    if ((e = cudaGetLastError()) != cudaSuccess) return fail(err, err_len, "key-set launch", e);
  }
  if ((e = cudaDeviceSynchronize()) != cudaSuccess) return fail(err, err_len, "kernel", e);
  return true;
}

bool attention_cuda_from_host(const AttnShape& sh, const float* q, const float* k, const float* v, float* out,
                              const AttnStats& st, const AttnInterventions& iv, char* err, int err_len) {
  const std::string bad = pattern_request_error(sh, st, true);
  if (!bad.empty()) {
    std::snprintf(err, err_len, "CUDA attention: %s", bad.c_str());
    return false;
  }
  DeviceBuffers buf;
  const size_t nq = sh.T * sh.H * sh.d, nk = sh.S * sh.H_kv * sh.d, ht = sh.H * sh.T, hs = sh.H * sh.S;
  AttnStats ds = st;
  AttnInterventions div;
  const float* dq = buf.upload(q, nq);
  const float* dk = buf.upload(k, nk);
  const float* dv = buf.upload(v, nk);
  float* dout = buf.alloc<float>(nq);
  auto out_f = [&](float* p, size_t n) { return p ? buf.alloc<float>(n) : nullptr; };
  auto out_i = [&](int32_t* p, size_t n) { return p ? buf.alloc<int32_t>(n) : nullptr; };
  for (int id = 0; id < kStatCount; ++id) ds.query[id] = out_f(st.query[id], ht);
  ds.key_recv = out_f(st.key_recv, hs);
  ds.argmax = out_i(st.argmax, ht), ds.topk_idx = out_i(st.topk_idx, ht * st.topk);
  ds.topk_prob = out_f(st.topk_prob, ht * st.topk);
  ds.key_count = nullptr;  // computed on the host below
  const size_t npat = st.wants_pattern() ? static_cast<size_t>(st.n_pattern) * (st.pattern_q1 - st.pattern_q0) * (st.pattern_k1 - st.pattern_k0) : 0;
  ds.pattern_heads = buf.upload(st.pattern_heads, static_cast<size_t>(st.n_pattern));
  ds.pattern = npat ? buf.alloc<float>(npat) : nullptr;
  ds.query_mask = buf.upload(st.query_mask, sh.T);
  const size_t nsets = st.wants_keysets() ? static_cast<size_t>(st.n_keysets) : 0;
  const size_t nkeys = nsets ? static_cast<size_t>(st.keyset_offsets[nsets * (sh.T + 1) - 1]) : 0;
  ds.keyset_offsets = buf.upload(nsets ? st.keyset_offsets : nullptr, nsets * (sh.T + 1));
  ds.keyset_keys = buf.upload(nkeys ? st.keyset_keys : nullptr, nkeys);
  ds.keyset_mass = nsets ? buf.alloc<float>(nsets * ht) : nullptr;
  div.head_scale = buf.upload(iv.head_scale, sh.H);
  div.logit_bias = buf.upload(iv.logit_bias, hs);
  div.uniform = buf.upload(iv.uniform, sh.H);
  div.key_padding = buf.upload(iv.key_padding, sh.S);
  div.row_bias = buf.upload(iv.row_bias, ht);
  div.row_bias_keys = buf.upload(iv.row_bias_keys, hs);
  div.head_window = buf.upload(iv.head_window, sh.H), div.sink_keys = iv.sink_keys;
  if (nsets && nkeys == 0) ds.keyset_keys = ds.keyset_mass ? reinterpret_cast<const int32_t*>(ds.keyset_mass) : nullptr;  // no key listed: never read
  if (!dq || !dk || !dv || !dout || (npat && (!ds.pattern || !ds.pattern_heads)) ||
      (nsets && (!ds.keyset_offsets || !ds.keyset_keys || !ds.keyset_mass)))
    return fail(err, err_len, "allocation", cudaErrorMemoryAllocation);
  if (!attention_cuda(sh, dq, dk, dv, dout, ds, div, err, err_len)) return false;
  auto back = [&](void* host, const void* dev, size_t bytes) {
    if (host && dev) cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost);
  };
  back(out, dout, nq * 4);
  for (int id = 0; id < kStatCount; ++id) back(st.query[id], ds.query[id], ht * 4);
  back(st.key_recv, ds.key_recv, hs * 4);
  back(st.argmax, ds.argmax, ht * 4), back(st.topk_idx, ds.topk_idx, ht * st.topk * 4);
  back(st.topk_prob, ds.topk_prob, ht * st.topk * 4);
  back(npat ? st.pattern : nullptr, ds.pattern, npat * 4);
  back(nsets ? st.keyset_mass : nullptr, ds.keyset_mass, nsets * ht * 4);
  if (st.key_count) {  // a cheap O(S) count shared with the CPU path
    AttnStats only;
    only.key_count = st.key_count, only.recv_lo = st.recv_lo, only.recv_hi = st.recv_hi, only.query_mask = st.query_mask;
    AttnInterventions pad;
    pad.key_padding = iv.key_padding;
    attention_key_count(sh, only, pad);
  }
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? true : fail(err, err_len, "copy back", e);
}

}  // namespace headscope
