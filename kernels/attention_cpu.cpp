// CPU implementation of the instrumented attention kernel (contract in attention.h, per-row math in
// attention_math.h). Work is split into (head, block of kQB queries) tasks over LibTorch's thread pool. Each task
// walks the visible keys in tiles of kKB: the K tile is transposed once into scratch and reused by every query
// of the block. Queries go through a tile in groups of kRows: their scores are computed together, each query
// broadcast over the tile (vectorises over keys, every key vector loaded serves the group), then each row's
// online-softmax step and statistics alone, then the group's outputs accumulate p * V rows together (vectorises
// over d). Scratch per thread is O(kQB * d + kKB * d): no T x T map.
// Per-key received mass needs normalised probabilities, known only once a row has seen all its keys. While the
// block's weights fit (kQB x S floats, S <= 64K keys), the first pass keeps each row's unnormalised weights
// exp(s - m) with the running max m of their tile, and when the block ends adds exp(m_tile - m) / l times them to
// the keys' sums: no score is computed twice. The sums are fixed-point integers (2^-40 units), a thread's blocks
// of one head summed in its own buffer and added atomically to the shared sums when it moves to the next head, so
// the result does not depend on the order of the blocks or on the thread count. Past that size a second pass
// over (head, key tile) tasks recomputes the scores with the row log-sum-exp from the first. A requested pattern
// window is written by a third pass with each row's final max and 1 / sum from the first, and requested key sets'
// masses by a fourth, one score per listed key.
#include <ATen/Parallel.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/attention_math.h"
#include "core/error.h"

namespace headscope {
static_assert(kRowTopK == kMaxTopK, "the row state holds kMaxTopK top keys");
namespace {

constexpr int kQB = 64;  // queries per task

// Eight floats as one value (GCC/Clang vector extension: AVX when enabled, two SSE registers otherwise).
typedef float v8 __attribute__((vector_size(32)));
inline v8 loadu(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void storeu(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }
typedef int vi8 __attribute__((vector_size(32)));
// Bit i set where lane i of a comparison's result is true.
inline unsigned lane_bits(vi8 m) {
#ifdef __AVX__
  return static_cast<unsigned>(_mm256_movemask_ps(reinterpret_cast<__m256>(m)));
#else
  unsigned bits = 0;
  for (int i = 0; i < 8; ++i) bits |= m[i] ? 1u << i : 0u;
  return bits;
#endif
}
constexpr int kKB = 64;  // keys per tile
constexpr int kRows = 4;  // query rows that share each key and value vector loaded
constexpr int64_t kFusedRecvFloats = int64_t{kQB} * 65536;  // a block's kept weights when key_recv is summed in the first pass
constexpr double kFxUnit = 1.0 / 1099511627776.0;          // 2^-40: sums up to 2^23 stay exact in an int64

// Does the first pass sum the per-key received mass (rows of a block times the keys they see fit the scratch)?
bool fused_recv(const AttnShape& sh, const AttnStats& st) {
  const int64_t tiles = (std::min(sh.S, sh.q_pos0 + sh.T) + kKB - 1) / kKB;
  return st.key_recv && std::min<int64_t>(sh.T, kQB) * tiles * kKB <= kFusedRecvFloats;
}

void check_shape(const AttnShape& sh, const AttnStats& st) {
  auto bad = [](const std::string& m) { throw Error("attention kernel: " + m); };
  if (sh.T < 0 || sh.S < 0 || sh.H <= 0 || sh.H_kv <= 0 || sh.d <= 0) bad("sizes must be positive");
  if (sh.H % sh.H_kv) bad("H must be a multiple of H_kv");
  if (sh.d > 512) bad("d_head > 512 is not supported");
  if (sh.q_pos0 < 0) bad("q_pos0 must be >= 0");
  if (st.topk < 0 || st.topk > kMaxTopK) bad("top-k must be in 0.." + std::to_string(kMaxTopK));
  if (st.waad_window < 0) bad("WAAD window must be >= 0");
  for (int i = 0; i < st.n_sinks; ++i)
    if (st.sink_pos[i] < 0 || st.sink_pos[i] >= sh.S) bad("sink position outside the keys");
  for (int id = 0; id < kStatCount; ++id)
    if (st.query[id] && !head_stat_is_row_sum(id)) bad(std::string(head_stat(id).name) + " is not a per-query float statistic");
}

struct Ctx {
  const AttnShape& sh;
  const float *q, *k, *v;
  float* out;
  const AttnStats& st;
  const AttnInterventions& iv;
  float scale;
  std::vector<uint8_t> is_sink;  // [S], empty when no sinks
  std::vector<float> lse;        // [H, T] for the second pass
  std::vector<int64_t> recv_fx;  // [H, S] per-key received mass summed in the first pass, in units of kFxUnit
  std::vector<float> row_m, row_inv_l;  // [H, T] final max score and 1 / sum of each row, for the pattern pass
};

// sc[j] = scale * q . k_j for the kKB keys of a transposed tile. All kKB scores stay in registers (kKB / 8 vectors)
// while the d products accumulate. Not inlined: one copy of the loop for every pass, so the register allocation
// (and the scores, bit for bit) cannot differ between the kernel with and without statistics.
__attribute__((noinline)) void tile_dots(const float* qrow, const float* kT, int64_t d, float scale, float* sc) {
  v8 r[kKB / 8] = {};
  for (int64_t kk = 0; kk < d; ++kk) {
    const v8 qv = v8{} + qrow[kk];
    const float* kr = kT + kk * kKB;
    for (int u = 0; u < kKB / 8; ++u) r[u] += qv * loadu(kr + 8 * u);
  }
  for (int u = 0; u < kKB / 8; ++u) storeu(sc + 8 * u, r[u] * scale);
}

// kR query rows against a transposed tile at once: sc[r * kKB + j] = scale * q_r . k_j. Each key vector loaded
// serves the kR rows (a one-row product reloads the whole tile per row, and the tile, the value rows and the
// accumulators do not fit in L1 together). Per score the same FMAs in the same order as tile_dots: the same bits.
template <int kR>
__attribute__((noinline)) void tile_dots_rows(const float* const* qrows, const float* kT, int64_t d, float scale, float* sc) {
  for (int j0 = 0; j0 < kKB; j0 += 16) {
    v8 r[kR][2] = {};
    for (int64_t kk = 0; kk < d; ++kk) {
      const v8 k0 = loadu(kT + kk * kKB + j0), k1 = loadu(kT + kk * kKB + j0 + 8);
      for (int i = 0; i < kR; ++i) {
        const v8 qv = v8{} + qrows[i][kk];
        r[i][0] += qv * k0, r[i][1] += qv * k1;
      }
    }
    for (int i = 0; i < kR; ++i) storeu(sc + i * kKB + j0, r[i][0] * scale), storeu(sc + i * kKB + j0 + 8, r[i][1] * scale);
  }
}

// Rows r[0..7] (8 keys x 8 dims) as columns: out[i] holds dim i of the 8 keys (unpack, 64-bit shuffle, 128-bit
// halves; the same data, moved in registers instead of 64 scattered stores).
inline void transpose8(const v8 r[8], v8 out[8]) {
  const vi8 lo{0, 8, 1, 9, 4, 12, 5, 13}, hi{2, 10, 3, 11, 6, 14, 7, 15}, a{0, 1, 8, 9, 4, 5, 12, 13}, b{2, 3, 10, 11, 6, 7, 14, 15},
      h0{0, 1, 2, 3, 8, 9, 10, 11}, h1{4, 5, 6, 7, 12, 13, 14, 15};
  v8 t[8], u[8];
  for (int i = 0; i < 4; ++i) t[2 * i] = __builtin_shuffle(r[2 * i], r[2 * i + 1], lo), t[2 * i + 1] = __builtin_shuffle(r[2 * i], r[2 * i + 1], hi);
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = __builtin_shuffle(t[4 * i], t[4 * i + 2], a), u[4 * i + 1] = __builtin_shuffle(t[4 * i], t[4 * i + 2], b);
    u[4 * i + 2] = __builtin_shuffle(t[4 * i + 1], t[4 * i + 3], a), u[4 * i + 3] = __builtin_shuffle(t[4 * i + 1], t[4 * i + 3], b);
  }
  for (int i = 0; i < 4; ++i) out[i] = __builtin_shuffle(u[i], u[i + 4], h0), out[i + 4] = __builtin_shuffle(u[i], u[i + 4], h1);
}

// One query row against keys [s0, s0 + n) read as they are stored (rows `stride` apart), for a block of one query
// (a decode step): transposing a tile costs more than one row's products with it. Eight keys at a time, each key's
// d products summed in eight lanes, the eight sums then transposed into one vector. The sums associate
// differently from tile_dots: a decode step's scores may differ from a whole forward's in the last bits.
__attribute__((noinline)) void row_dots(const float* qrow, const float* k, int64_t stride, int n, int64_t d, float scale, float* sc) {
  int j = 0;
  if (d % 8 == 0)
    for (; j + 8 <= n; j += 8) {
      v8 a[8] = {}, t[8];
      for (int64_t kk = 0; kk < d; kk += 8) {
        const v8 qv = loadu(qrow + kk);
        for (int i = 0; i < 8; ++i) a[i] += qv * loadu(k + (j + i) * stride + kk);
      }
      transpose8(a, t);
      storeu(sc + j, (((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))) * scale);
    }
  for (; j < n; ++j) {
    float acc = 0.f;
    for (int64_t kk = 0; kk < d; ++kk) acc += qrow[kk] * k[j * stride + kk];
    sc[j] = acc * scale;
  }
}

// Turns one row's products sc[0..kKB) with keys [s0, s0 + n) (tile_dots) into its scores: uniform heads' zeros,
// biases, -inf where invisible and for the padding up to kKB (so that sums over a whole tile group their terms
// the same way whatever n is).
inline void finish_scores(const Ctx& c, int64_t h, int n, int64_t t_abs, int64_t s0, float* sc) {
  if (c.iv.uniform && c.iv.uniform[h]) {
    for (int j = 0; j < n; ++j) sc[j] = 0.f;
  } else {
    if (c.iv.logit_bias)
      for (int j = 0; j < n; ++j) sc[j] += c.iv.logit_bias[h * c.sh.S + s0 + j];
    if (c.iv.row_bias) {
      const float b = c.iv.row_bias[h * c.sh.T + (t_abs - c.sh.q_pos0)];
      const uint8_t* keys = c.iv.row_bias_keys + h * c.sh.S + s0;
      for (int j = 0; j < n; ++j)
        if (keys[j]) sc[j] += b;
    }
  }
  // Visible keys of the tile form one range [vis_lo, vis_hi] (causal, window); padding is masked separately.
  const int64_t vis_hi = std::min<int64_t>(n - 1, t_abs - s0);
  const int64_t vis_lo = c.sh.window > 0 ? std::max<int64_t>(0, t_abs - c.sh.window + 1 - s0) : 0;
  for (int64_t j = 0; j < std::min<int64_t>(vis_lo, n); ++j) sc[j] = -INFINITY;
  for (int64_t j = std::max<int64_t>(vis_hi + 1, 0); j < kKB; ++j) sc[j] = -INFINITY;  // and the tile's padding
  if (c.iv.key_padding)
    for (int j = 0; j < n; ++j)
      if (c.iv.key_padding[s0 + j]) sc[j] = -INFINITY;
  if (c.iv.head_window && c.iv.head_window[h] > 0) {  // keys sink_keys .. t - window are out of the head's budget
    const int64_t last_out = t_abs - c.iv.head_window[h];
    for (int64_t j = std::max<int64_t>(c.iv.sink_keys - s0, 0); j < n && s0 + j <= last_out; ++j) sc[j] = -INFINITY;
  }
}

// Scores of one query row against keys [s0, s0 + n), for the passes that take rows one at a time.
inline void row_scores(const Ctx& c, int64_t h, const float* qrow, const float* kT, int n, int64_t t_abs, int64_t s0,
                       float* sc) {
  if (!(c.iv.uniform && c.iv.uniform[h])) tile_dots(qrow, kT, c.sh.d, c.scale, sc);
  finish_scores(c, h, n, t_abs, s0, sc);
}

// The largest of a tile's kKB scores (padding is -inf): eight lanes at a time, then across them. (A scalar loop's
// max is a chain of dependent instructions, as long as the tile's dot products take.)
inline float tile_max(const float* sc) {
  v8 m = loadu(sc);
  for (int u = 1; u < kKB / 8; ++u) {
    const v8 x = loadu(sc + 8 * u);
    m = x > m ? x : m;
  }
  float r = m[0];
  for (int i = 1; i < 8; ++i) r = m[i] > r ? m[i] : r;
  return r;
}

// The first of a tile's kKB scores equal to x (x is one of them): eight compared at once.
inline int first_equal(const float* sc, float x) {
  for (int u = 0;; ++u)
    if (const unsigned bits = lane_bits(loadu(sc + 8 * u) == (v8{} + x))) return 8 * u + __builtin_ctz(bits);
}

// Offers a tile's visible keys to the row's top-k list. Once the list is full only scores above its last entry can
// enter, and most tiles hold few or none: eight scores are compared with it at once and only the lanes that pass
// are pushed (in increasing key order, so ties still keep the lower key first). Padding and masked keys are -inf.
inline void tile_topk(RowState& r, int topk, const float* sc, int n, float tmax, int64_t s0) {
  if (r.n_top < topk) {
    for (int j = 0; j < n; ++j)
      if (sc[j] > -INFINITY) row_topk_push(r, topk, sc[j], static_cast<int32_t>(s0 + j));
    return;
  }
  if (!(tmax > r.top_s[topk - 1])) return;  // the whole tile is below the list
  for (int u = 0; u < kKB / 8; ++u) {
    const vi8 pass = loadu(sc + 8 * u) > (v8{} + r.top_s[topk - 1]);
    for (unsigned bits = lane_bits(pass); bits; bits &= bits - 1) {
      const int j = 8 * u + __builtin_ctz(bits);
      row_topk_push(r, topk, sc[j], static_cast<int32_t>(s0 + j));
    }
  }
}

// a[kk0..kk0 + kC) += sum_j p[j] * V[j] for the n value rows at vs (row stride vstride): the kC / 8 accumulator
// vectors stay in registers while the keys stream through. Each is a chain of dependent FMAs, so eight of them
// (kC = 64) keep both FMA pipes busy where four would wait on the FMA latency.
template <int kC>
inline void accumulate_pv_chunk(float* a, const float* p, const float* vs, int64_t vstride, int n, int64_t kk0) {
  v8 r[kC / 8];
  for (int u = 0; u < kC / 8; ++u) r[u] = loadu(a + kk0 + 8 * u);
  for (int j = 0; j < n; ++j) {
    const v8 pj = v8{} + p[j];
    const float* vr = vs + j * vstride + kk0;
    for (int u = 0; u < kC / 8; ++u) r[u] += pj * loadu(vr + 8 * u);
  }
  for (int u = 0; u < kC / 8; ++u) storeu(a + kk0 + 8 * u, r[u]);
}

// a[0..d) += sum_j p[j] * V[j] in chunks of 64, then 32 features; every feature sums its keys in the same order
// whatever chunk it falls in.
inline void accumulate_pv(float* a, const float* p, const float* vs, int64_t vstride, int n, int64_t d) {
  int64_t kk0 = 0;
  for (; kk0 + 64 <= d; kk0 += 64) accumulate_pv_chunk<64>(a, p, vs, vstride, n, kk0);
  for (; kk0 + 32 <= d; kk0 += 32) accumulate_pv_chunk<32>(a, p, vs, vstride, n, kk0);
  for (int j = 0; j < n; ++j)  // the remaining d % 32 features
    for (int64_t kk = kk0; kk < d; ++kk) a[kk] += p[j] * vs[j * vstride + kk];
}

// The same for kR rows at once: a[i][kk] += sum_j p[i][j] * V[j][kk], features in chunks of 16 so that the kR x 2
// accumulator vectors stay in registers and each value vector loaded serves the kR rows. Per feature the same
// FMAs in the same order as accumulate_pv.
template <int kR>
__attribute__((noinline)) void accumulate_pv_rows(float* const* a, const float* const* p, const float* vs, int64_t vstride,
                                                  int n, int64_t d) {
  int64_t kk0 = 0;
  for (; kk0 + 16 <= d; kk0 += 16) {
    v8 r[kR][2];
    for (int i = 0; i < kR; ++i) r[i][0] = loadu(a[i] + kk0), r[i][1] = loadu(a[i] + kk0 + 8);
    for (int j = 0; j < n; ++j) {
      const float* vr = vs + j * vstride + kk0;
      const v8 v0 = loadu(vr), v1 = loadu(vr + 8);
      for (int i = 0; i < kR; ++i) {
        const v8 pj = v8{} + p[i][j];
        r[i][0] += pj * v0, r[i][1] += pj * v1;
      }
    }
    for (int i = 0; i < kR; ++i) storeu(a[i] + kk0, r[i][0]), storeu(a[i] + kk0 + 8, r[i][1]);
  }
  for (int i = 0; i < kR; ++i)  // the remaining d % 16 features
    for (int j = 0; j < n; ++j)
      for (int64_t kk = kk0; kk < d; ++kk) a[i][kk] += p[i][j] * vs[j * vstride + kk];
}

// Transposes keys [s0, s0 + n) of kv head hk into kT[kk * kKB + j] (zero-padded to kKB).
inline void load_kT(const Ctx& c, int64_t hk, int64_t s0, int n, float* kT) {
  const int64_t d = c.sh.d, stride = c.sh.H_kv * d;
  int j = 0;
  if (d % 8 == 0)  // 8 x 8 blocks transposed in registers
    for (; j + 8 <= n; j += 8)
      for (int64_t kk = 0; kk < d; kk += 8) {
        v8 r[8], o[8];
        for (int i = 0; i < 8; ++i) r[i] = loadu(c.k + (s0 + j + i) * stride + hk * d + kk);
        transpose8(r, o);
        for (int i = 0; i < 8; ++i) storeu(kT + (kk + i) * kKB + j, o[i]);
      }
  for (; j < n; ++j) {
    const float* kr = c.k + (s0 + j) * stride + hk * d;
    for (int64_t kk = 0; kk < d; ++kk) kT[kk * kKB + j] = kr[kk];
  }
  for (int j = n; j < kKB; ++j)
    for (int64_t kk = 0; kk < d; ++kk) kT[kk * kKB + j] = 0.f;
}

// The tasks are not inlined into the pool's lambdas: LibTorch runs a lambda inline when one thread suffices and
// in an OpenMP region otherwise, and two inlined copies could round differently (reassociation is allowed here).
template <bool kStats>
__attribute__((noinline)) void forward_task(Ctx& c, int64_t h, int64_t t0, int64_t t1, std::vector<float>& scratch, int64_t* recv_local) {
  const AttnShape& sh = c.sh;
  const int64_t d = sh.d, hk = h / (sh.H / sh.H_kv), nq = t1 - t0;
  const int topk = c.st.topk;
  // Keys visible to some query of the block.
  const int64_t first_abs = sh.q_pos0 + t0, last_abs = sh.q_pos0 + t1 - 1;
  const int64_t kbeg = sh.window > 0 ? std::max<int64_t>(0, first_abs - sh.window + 1) : 0;
  const int64_t kend = std::min<int64_t>(sh.S, last_abs + 1);
  // With the per-key mass summed here, each row's weights of every tile are kept: [tiles, nq, kKB], with the
  // running max they are relative to, [tiles, nq] (-inf: the row skipped the tile); tile-major, so that one tile's
  // rows are contiguous (rows a whole row of keys apart would share cache sets).
  const bool keep = kStats && !c.recv_fx.empty();
  const int64_t tiles = keep ? (kend - kbeg + kKB - 1) / kKB : 0;
  scratch.resize(static_cast<size_t>(kKB * d + kQB * d + (2 * kRows + 1) * kKB + nq * tiles * (kKB + 1)));
  float* kT = scratch.data();
  float* acc = kT + kKB * d;
  float* sc = acc + kQB * d;  // [kRows, kKB] scores of a group of rows
  float* pw = sc + kRows * kKB;    // [kRows, kKB] their weights exp(s - m)
  float* zero = pw + kRows * kKB;  // the weights of a row of the group that skips the tile
  float* kept = zero + kKB;
  float* kept_m = kept + nq * tiles * kKB;
  std::fill(zero, zero + kKB, 0.f);
  std::fill(kept_m, kept_m + nq * tiles, -INFINITY);
  RowState rs[kQB];
  for (int64_t i = 0; i < nq; ++i) row_init(rs[i]);
  std::fill(acc, acc + nq * d, 0.f);
  const bool uniform = c.iv.uniform && c.iv.uniform[h];
  const float* vhead = c.v + hk * d;  // value rows of the KV head, vstride apart
  const int64_t vstride = sh.H_kv * d;
  for (int64_t s0 = kbeg; s0 < kend; s0 += kKB) {
    const int n = static_cast<int>(std::min<int64_t>(kKB, kend - s0));
    const int64_t tile = (s0 - kbeg) / kKB;
    const bool one_row = nq == 1;  // (a decode step: its products straight from the stored keys)
    if (!one_row) load_kT(c, hk, s0, n, kT);
    bool tile_sinks = false;  // does the tile hold a sink? (most tiles of a long row do not)
    for (int i = 0; i < c.st.n_sinks && !c.is_sink.empty(); ++i) tile_sinks |= c.st.sink_pos[i] >= s0 && c.st.sink_pos[i] < s0 + n;
    const uint8_t* sink_tile = tile_sinks ? c.is_sink.data() + s0 : nullptr;
    // Rows in groups of kRows: their products with the tile at once, then each row's softmax step and statistics
    // alone, then their weighted values at once.
    for (int64_t i0 = 0; i0 < nq; i0 += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, nq - i0));
      bool sees[kRows] = {};
      int seeing = 0;
      for (int g = 0; g < rows; ++g) {
        const int64_t t_abs = sh.q_pos0 + t0 + i0 + g;
        sees[g] = !(sh.window > 0 && s0 + n <= t_abs - sh.window + 1) && s0 <= t_abs;  // window, causal
        seeing += sees[g];
      }
      if (!seeing) continue;
      const float* qrows[kRows] = {};
      for (int g = 0; g < rows; ++g) qrows[g] = c.q + ((t0 + i0 + g) * sh.H + h) * d;
      if (!uniform) {
        if (rows == kRows) tile_dots_rows<kRows>(qrows, kT, d, c.scale, sc);
        else if (one_row) row_dots(qrows[0], c.k + s0 * sh.H_kv * d + hk * d, sh.H_kv * d, n, d, c.scale, sc);
        else
          for (int g = 0; g < rows; ++g)
            if (sees[g]) tile_dots(qrows[g], kT, d, c.scale, sc + g * kKB);
      }
      float* accs[kRows];
      const float* ws[kRows];
      for (int g = 0; g < rows; ++g) {
        const int64_t i = i0 + g, t_abs = sh.q_pos0 + t0 + i;
        accs[g] = acc + i * d, ws[g] = zero;
        if (!sees[g]) continue;
        float* rsc = sc + g * kKB;
        finish_scores(c, h, n, t_abs, s0, rsc);
        RowState& r = rs[i];
        const float tmax = tile_max(rsc);
        if (tmax > r.m) {  // the argmax only when the running max grows
          if (kStats) r.argmax = static_cast<int32_t>(s0 + first_equal(rsc, tmax));
          const float f = row_rescale(r, tmax);
          for (int64_t kk = 0; kk < d; ++kk) accs[g][kk] *= f;
        }
        if (r.m == -INFINITY) continue;  // nothing visible yet
        float* w = keep ? kept + (tile * nq + i) * kKB : pw + g * kKB;
        if (keep) kept_m[tile * nq + i] = r.m;
        // Over the whole padded tile: the row's sums then associate alike for any S (a window of rows, a decode step).
        row_add_tile<kStats>(r, rsc, w, kKB, t_abs, s0, c.st.waad_window, sink_tile);
        if (kStats && topk > 0) tile_topk(r, topk, rsc, n, tmax, s0);
        ws[g] = w;
      }
      if (rows == kRows) accumulate_pv_rows<kRows>(accs, ws, vhead + s0 * vstride, vstride, n, d);
      else
        for (int g = 0; g < rows; ++g)
          if (ws[g] != zero) accumulate_pv(accs[g], ws[g], vhead + s0 * vstride, vstride, n, d);
    }
  }
  const float hscale = c.iv.head_scale ? c.iv.head_scale[h] : 1.f;
  const AttnStats& st = c.st;
  float fin_m[kQB], fin_w[kQB];  // each row's final max, and 1 / sum where the row counts for key_recv (else 0)
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t t = t0 + i, hi = h * sh.T + t;
    const RowResult res = row_finish(rs[i]);
    fin_m[i] = rs[i].m, fin_w[i] = st.query_mask && !st.query_mask[t] ? 0.f : res.inv_l;
    float* o = c.out + (t * sh.H + h) * d;
    const float* a = acc + i * d;
    const float f = res.inv_l * hscale;
    for (int64_t kk = 0; kk < d; ++kk) o[kk] = a[kk] * f;
    if (!kStats) continue;
    for (int id = 0; id < kStatCount; ++id)
      if (st.query[id]) st.query[id][hi] = res.value[id];
    if (st.argmax) st.argmax[hi] = rs[i].argmax;
    if (!c.lse.empty()) c.lse[hi] = rs[i].l > 0.f ? res.lse : INFINITY;
    if (!c.row_m.empty()) c.row_m[hi] = rs[i].m, c.row_inv_l[hi] = res.inv_l;
    for (int j = 0; j < topk; ++j) {
      const bool have = j < rs[i].n_top;
      if (st.topk_idx) st.topk_idx[hi * topk + j] = have ? rs[i].top_i[j] : -1;
      if (st.topk_prob) st.topk_prob[hi * topk + j] = have ? hs_expf(rs[i].top_s[j] - rs[i].m) * res.inv_l : 0.f;
    }
  }
  if (!keep) return;
  // Per-key received mass from the kept weights: p = w exp(m_tile - m) / l for the rows and keys that count.
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t s0 = kbeg + tile * kKB;
    const int n = static_cast<int>(std::min<int64_t>(kKB, kend - s0));
    float part[kKB] = {};
    for (int64_t i = 0; i < nq; ++i) {
      const float mt = kept_m[tile * nq + i];
      if (mt == -INFINITY || fin_w[i] == 0.f) continue;
      const int64_t t_abs = sh.q_pos0 + t0 + i;
      // Keys of the tile this row counts for: relative offset t - s in [recv_lo, recv_hi].
      const int64_t j_hi = std::min<int64_t>(n - 1, t_abs - s0 - st.recv_lo);
      const int64_t j_lo = st.recv_hi >= 0 ? std::max<int64_t>(0, t_abs - s0 - st.recv_hi) : 0;
      const float f = hs_expf(mt - fin_m[i]) * fin_w[i];
      const float* w = kept + (tile * nq + i) * kKB;
      if (j_lo == 0 && j_hi == kKB - 1)
        for (int j = 0; j < kKB; ++j) part[j] += f * w[j];
      else
        for (int64_t j = j_lo; j <= j_hi; ++j) part[j] += f * w[j];
    }
    int64_t* dst = recv_local + s0;
    for (int j = 0; j < n; ++j)
      if (part[j] > 0.f) dst[j] += static_cast<int64_t>(part[j] / kFxUnit + 0.5);
  }
}

// Second pass: probability each key of [s0, s0 + n) of head h receives from the queries in its window.
__attribute__((noinline)) void received_task(Ctx& c, int64_t h, int64_t s0, int n, std::vector<float>& scratch) {
  const AttnShape& sh = c.sh;
  const AttnStats& st = c.st;
  const int64_t d = sh.d, hk = h / (sh.H / sh.H_kv);
  scratch.resize(static_cast<size_t>(kKB * d + kKB + kKB));
  float* kT = scratch.data();
  float* sc = kT + kKB * d;
  float* recv = sc + kKB;
  std::fill(recv, recv + kKB, 0.f);
  load_kT(c, hk, s0, n, kT);
  // Queries that may count for some key in the tile.
  int64_t lo_abs = s0 + std::max<int64_t>(st.recv_lo, 0);
  int64_t hi_abs = st.recv_hi >= 0 ? s0 + n - 1 + st.recv_hi : sh.q_pos0 + sh.T - 1;
  if (sh.window > 0) hi_abs = std::min(hi_abs, s0 + n - 1 + sh.window - 1);
  const int64_t tb = std::max<int64_t>(0, lo_abs - sh.q_pos0), te = std::min<int64_t>(sh.T, hi_abs - sh.q_pos0 + 1);
  for (int64_t t = tb; t < te; ++t) {
    if (st.query_mask && !st.query_mask[t]) continue;
    const float lse = c.lse[h * sh.T + t];
    if (lse == INFINITY) continue;
    const int64_t t_abs = sh.q_pos0 + t;
    row_scores(c, h, c.q + (t * sh.H + h) * d, kT, n, t_abs, s0, sc);
    // Keys of the tile this query counts for: relative offset t - s in [lo, hi], one index range.
    const int64_t j_hi = std::min<int64_t>(n - 1, t_abs - s0 - st.recv_lo);
    const int64_t j_lo = st.recv_hi >= 0 ? std::max<int64_t>(0, t_abs - s0 - st.recv_hi) : 0;
    for (int64_t j = j_lo; j <= j_hi; ++j) recv[j] += hs_expf(sc[j] - lse);
  }
  for (int j = 0; j < n; ++j) st.key_recv[h * sh.S + s0 + j] = recv[j];
}

// Third pass: pattern rows [t0, t1) of the requested head number `pi`, keys [pattern_k0, pattern_k1): each key's
// score as the first pass computed it, exp(s - m) / l with the row's final m and l. Key tiles are aligned to
// multiples of kKB whatever the window, so a window holds exactly the values of the full pattern.
__attribute__((noinline)) void pattern_task(Ctx& c, int pi, int64_t t0, int64_t t1, std::vector<float>& scratch) {
  const AttnShape& sh = c.sh;
  const AttnStats& st = c.st;
  const int64_t h = st.pattern_heads[pi], d = sh.d, hk = h / (sh.H / sh.H_kv);
  const int64_t rows = st.pattern_q1 - st.pattern_q0, keys = st.pattern_k1 - st.pattern_k0;
  scratch.resize(static_cast<size_t>(kKB * d + kKB));
  float* kT = scratch.data();
  float* sc = kT + kKB * d;
  for (int64_t s0 = st.pattern_k0 / kKB * kKB; s0 < st.pattern_k1; s0 += kKB) {
    const int n = static_cast<int>(std::min<int64_t>(kKB, sh.S - s0));
    const int64_t j0 = std::max<int64_t>(st.pattern_k0 - s0, 0), j1 = std::min<int64_t>(st.pattern_k1 - s0, n);
    load_kT(c, hk, s0, n, kT);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t hi = h * sh.T + t;
      float* dst = st.pattern + (pi * rows + (t - st.pattern_q0)) * keys + (s0 + j0 - st.pattern_k0);
      const float m = c.row_m[hi], inv_l = c.row_inv_l[hi];
      if (!(inv_l > 0.f)) {  // a row that sees no key
        std::fill(dst, dst + (j1 - j0), 0.f);
        continue;
      }
      row_scores(c, h, c.q + (t * sh.H + h) * d, kT, n, sh.q_pos0 + t, s0, sc);
      for (int j = 0; j < n; ++j) sc[j] = hs_expf(sc[j] - m) * inv_l;
      std::copy(sc + j0, sc + j1, dst);
    }
  }
}

// Fourth pass: the mass of every requested key set on rows [t0, t1) of head h. Like the pattern pass, scores come
// from row_scores over whole kKB-aligned key tiles (each tile some row of the block needs is loaded once), so a
// key's probability is exactly the pattern's.
__attribute__((noinline)) void keyset_task(Ctx& c, int64_t h, int64_t t0, int64_t t1, std::vector<float>& scratch) {
  const AttnShape& sh = c.sh;
  const AttnStats& st = c.st;
  const int64_t d = sh.d, hk = h / (sh.H / sh.H_kv);
  scratch.resize(static_cast<size_t>(kKB * d + kKB));
  float* kT = scratch.data();
  float* sc = kT + kKB * d;
  std::vector<int64_t> tiles;
  for (int cs = 0; cs < st.n_keysets; ++cs) {
    const int64_t* off = st.keyset_offsets + cs * (sh.T + 1);
    for (int64_t t = t0; t < t1; ++t) {
      st.keyset_mass[(cs * sh.H + h) * sh.T + t] = 0.f;
      for (int64_t i = off[t]; i < off[t + 1]; ++i) tiles.push_back(st.keyset_keys[i] / kKB);
    }
  }
  std::sort(tiles.begin(), tiles.end());
  tiles.erase(std::unique(tiles.begin(), tiles.end()), tiles.end());
  for (int64_t tile : tiles) {
    const int64_t s0 = tile * kKB;
    const int n = static_cast<int>(std::min<int64_t>(kKB, sh.S - s0));
    load_kT(c, hk, s0, n, kT);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t hi = h * sh.T + t;
      const float m = c.row_m[hi], inv_l = c.row_inv_l[hi];
      if (!(inv_l > 0.f)) continue;  // a row that sees no key
      bool scored = false;
      for (int cs = 0; cs < st.n_keysets; ++cs) {
        const int64_t* off = st.keyset_offsets + cs * (sh.T + 1);
        for (int64_t i = off[t]; i < off[t + 1]; ++i) {
          const int64_t key = st.keyset_keys[i];
          if (key < s0 || key >= s0 + n) continue;
          if (!scored) row_scores(c, h, c.q + (t * sh.H + h) * d, kT, n, sh.q_pos0 + t, s0, sc), scored = true;
          st.keyset_mass[(cs * sh.H + h) * sh.T + t] += hs_expf(sc[key - s0] - m) * inv_l;
        }
      }
    }
  }
}

}  // namespace

static std::string keyset_request_error(const AttnShape& sh, const AttnStats& st, bool on_host) {
  if (!st.wants_keysets()) return "";
  if (!st.keyset_offsets || !st.keyset_keys) return "key sets without offsets or keys";
  for (int cs = 0; on_host && cs < st.n_keysets; ++cs) {
    const int64_t* off = st.keyset_offsets + cs * (sh.T + 1);
    for (int64_t t = 0; t < sh.T; ++t) {
      if (off[t + 1] < off[t]) return "key set " + std::to_string(cs) + ": offsets decrease at query " + std::to_string(t);
      for (int64_t i = off[t]; i < off[t + 1]; ++i)
        if (st.keyset_keys[i] < 0 || st.keyset_keys[i] >= sh.S)
          return "key set " + std::to_string(cs) + ": key " + std::to_string(st.keyset_keys[i]) + " of query " + std::to_string(t) +
                 " outside 0.." + std::to_string(sh.S - 1);
    }
  }
  return "";
}

std::string pattern_request_error(const AttnShape& sh, const AttnStats& st, bool heads_on_host) {
  if (!st.wants_pattern()) return keyset_request_error(sh, st, heads_on_host);
  if (!st.pattern_heads) return "pattern heads missing";
  for (int i = 0; heads_on_host && i < st.n_pattern; ++i)
    if (st.pattern_heads[i] < 0 || st.pattern_heads[i] >= sh.H)
      return "pattern head " + std::to_string(st.pattern_heads[i]) + " outside 0.." + std::to_string(sh.H - 1);
  if (st.pattern_q0 < 0 || st.pattern_q1 < st.pattern_q0 || st.pattern_q1 > sh.T) return "pattern rows outside 0.." + std::to_string(sh.T);
  if (st.pattern_k0 < 0 || st.pattern_k1 < st.pattern_k0 || st.pattern_k1 > sh.S) return "pattern keys outside 0.." + std::to_string(sh.S);
  return keyset_request_error(sh, st, heads_on_host);
}

void attention_cpu(const AttnShape& sh, const float* q, const float* k, const float* v, float* out, const AttnStats& st,
                   const AttnInterventions& iv) {
  check_shape(sh, st);
  if (std::string e = pattern_request_error(sh, st, true); !e.empty()) throw Error("attention kernel: " + e);
  Ctx c{sh, q, k, v, out, st, iv, sh.scale > 0.f ? sh.scale : 1.f / std::sqrt(static_cast<float>(sh.d)), {}, {}, {}, {}, {}};
  if (st.n_sinks > 0 && st.query[kStatSinkMass]) {
    c.is_sink.assign(static_cast<size_t>(sh.S + kKB), 0);
    for (int i = 0; i < st.n_sinks; ++i) c.is_sink[st.sink_pos[i]] = 1;
  }
  if (fused_recv(sh, st)) c.recv_fx.assign(static_cast<size_t>(sh.H * sh.S), 0);
  else if (st.key_recv) c.lse.assign(static_cast<size_t>(sh.H * sh.T), INFINITY);
  if (st.needs_row_norm()) c.row_m.assign(static_cast<size_t>(sh.H * sh.T), 0.f), c.row_inv_l.assign(static_cast<size_t>(sh.H * sh.T), 0.f);
  const bool stats = st.any();
  const int64_t nqb = (sh.T + kQB - 1) / kQB;
  at::parallel_for(0, sh.H * nqb, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> scratch;
    // The per-key mass of this thread's blocks of one head, added to the shared sums when the head changes: one
    // atomic addition per key and head instead of one per key and block (integers: the order does not matter).
    std::vector<int64_t> recv_local(c.recv_fx.empty() ? 0 : static_cast<size_t>(sh.S), 0);
    int64_t recv_h = -1;
    auto flush = [&] {
      if (recv_h < 0) return;
      int64_t* dst = c.recv_fx.data() + recv_h * sh.S;
      for (int64_t s = 0; s < sh.S; ++s)
        if (recv_local[s]) __atomic_fetch_add(dst + s, recv_local[s], __ATOMIC_RELAXED), recv_local[s] = 0;
    };
    for (int64_t b = b0; b < b1; ++b) {
      // A head's blocks alternately from its first and last (a causal block costs in proportion to its position),
      // so that the pool's contiguous ranges of tasks cost about the same.
      const int64_t h = b / nqb, i = b % nqb, t0 = (i % 2 ? nqb - 1 - i / 2 : i / 2) * kQB, t1 = std::min<int64_t>(sh.T, t0 + kQB);
      if (!recv_local.empty() && h != recv_h) flush(), recv_h = h;
      if (stats) forward_task<true>(c, h, t0, t1, scratch, recv_local.data());
      else forward_task<false>(c, h, t0, t1, scratch, nullptr);
    }
    if (!recv_local.empty()) flush();
  });
  if (!c.recv_fx.empty())
    for (int64_t i = 0; i < sh.H * sh.S; ++i) st.key_recv[i] = static_cast<float>(static_cast<double>(c.recv_fx[i]) * kFxUnit);
  if (!c.lse.empty()) {
    const int64_t nkb = (sh.S + kKB - 1) / kKB;
    at::parallel_for(0, sh.H * nkb, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> scratch;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t h = b / nkb, s0 = (b % nkb) * kKB;
        received_task(c, h, s0, static_cast<int>(std::min<int64_t>(kKB, sh.S - s0)), scratch);
      }
    });
  }
  if (st.wants_pattern()) {
    const int64_t nrb = (st.pattern_q1 - st.pattern_q0 + kQB - 1) / kQB;
    at::parallel_for(0, st.n_pattern * nrb, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> scratch;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t t0 = st.pattern_q0 + (b % nrb) * kQB;
        pattern_task(c, static_cast<int>(b / nrb), t0, std::min<int64_t>(st.pattern_q1, t0 + kQB), scratch);
      }
    });
  }
  if (st.wants_keysets())
    at::parallel_for(0, sh.H * nqb, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> scratch;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t t0 = (b % nqb) * kQB;
        keyset_task(c, b / nqb, t0, std::min<int64_t>(sh.T, t0 + kQB), scratch);
      }
    });
  if (st.key_count) attention_key_count(sh, st, iv);
}

void attention_key_count(const AttnShape& sh, const AttnStats& st, const AttnInterventions& iv) {
  // Number of queries (in the mask) whose relative position to key s is in [lo, hi] and that can see s:
  // a range count over a prefix sum of the mask.
  std::vector<int64_t> pre(static_cast<size_t>(sh.T + 1), 0);
  for (int64_t t = 0; t < sh.T; ++t) pre[t + 1] = pre[t] + (st.query_mask ? (st.query_mask[t] != 0) : 1);
  for (int64_t s = 0; s < sh.S; ++s) {
    int64_t lo = s + std::max<int64_t>(st.recv_lo, 0);
    int64_t hi = st.recv_hi >= 0 ? s + st.recv_hi : INT64_MAX / 2;
    if (sh.window > 0) hi = std::min(hi, s + sh.window - 1);
    const int64_t a = std::clamp<int64_t>(lo - sh.q_pos0, 0, sh.T), b = std::clamp<int64_t>(hi - sh.q_pos0 + 1, 0, sh.T);
    const bool padded = iv.key_padding && iv.key_padding[s];
    st.key_count[s] = static_cast<int32_t>(b > a && !padded ? pre[b] - pre[a] : 0);
  }
}

#ifndef HEADSCOPE_WITH_CUDA
bool attention_cuda(const AttnShape&, const float*, const float*, const float*, float*, const AttnStats&,
                    const AttnInterventions&, char* err, int err_len) {
  std::snprintf(err, err_len, "headscope was built without CUDA");
  return false;
}
bool attention_cuda_from_host(const AttnShape& sh, const float* q, const float* k, const float* v, float* out,
                              const AttnStats& st, const AttnInterventions& iv, char* err, int err_len) {
  return attention_cuda(sh, q, k, v, out, st, iv, err, err_len);
}
bool cuda_built() { return false; }
bool cuda_available() { return false; }
#endif

}  // namespace headscope
