// Matrix-vector products for decode steps (see matvec.h), eight columns at a time in float. bf16: the bits widened
// to float by a 16-bit shift (bf16 is the high half of a float), four accumulators per row so that the loads of
// consecutive blocks overlap. Blocks: each block's bytes widened to float, its partial dot product scaled once per
// block. Accumulators are added in one fixed order.
#include "kernels/matvec.h"

#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace headscope {
namespace {

typedef float v8 __attribute__((vector_size(32)));
typedef uint32_t vu8 __attribute__((vector_size(32)));
typedef uint16_t vh8 __attribute__((vector_size(16)));

#ifdef __AVX2__  // the widening moves as single instructions (GCC scalarises __builtin_convertvector of bytes)
inline v8 load_bf16(const uint16_t* p) {
  const __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16);
  return reinterpret_cast<v8>(_mm256_castsi256_ps(u));
}
inline v8 widen_u8(__m128i b) { return reinterpret_cast<v8>(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b))); }  // low 8 bytes
inline v8 widen_bytes(const uint8_t* p) { return widen_u8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline v8 widen_sbytes(const uint8_t* p) {
  return reinterpret_cast<v8>(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
}
// The 32 nibbles of a 4-bit block as four vectors: low nibbles of bytes 0-7, 8-15, then high nibbles.
inline void widen_nibbles(const uint8_t* p, v8 out[4]) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), m = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(raw, m), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m);
  out[0] = widen_u8(lo), out[1] = widen_u8(_mm_srli_si128(lo, 8)), out[2] = widen_u8(hi), out[3] = widen_u8(_mm_srli_si128(hi, 8));
}
#else
inline v8 load_bf16(const uint16_t* p) {
  vh8 h;
  std::memcpy(&h, p, sizeof h);
  const vu8 u = __builtin_convertvector(h, vu8) << 16;
  v8 f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline v8 widen_bytes(const uint8_t* p) {
  typedef uint8_t vb8 __attribute__((vector_size(8)));
  vb8 b;
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(b, v8);
}
inline v8 widen_sbytes(const uint8_t* p) {
  typedef int8_t vsb8 __attribute__((vector_size(8)));
  vsb8 b;
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(b, v8);
}
inline void widen_nibbles(const uint8_t* p, v8 out[4]) {
  uint8_t n[32];
  for (int j = 0; j < 16; ++j) n[j] = p[j] & 15, n[j + 16] = p[j] >> 4;
  for (int u = 0; u < 4; ++u) out[u] = widen_bytes(n + 8 * u);
}
#endif
inline v8 loadu(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float hsum(v8 a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

// The row products are not inlined: with reassociation allowed, a copy inlined into LibTorch's serial path and
// another into its OpenMP region could round differently; one copy gives the same bits for any thread count.
__attribute__((noinline)) float dot_row(const uint16_t* w, const float* x, int64_t cols) {
  v8 a0{}, a1{}, a2{}, a3{};
  int64_t i = 0;
  for (; i + 32 <= cols; i += 32) {
    a0 += load_bf16(w + i) * loadu(x + i);
    a1 += load_bf16(w + i + 8) * loadu(x + i + 8);
    a2 += load_bf16(w + i + 16) * loadu(x + i + 16);
    a3 += load_bf16(w + i + 24) * loadu(x + i + 24);
  }
  for (; i + 8 <= cols; i += 8) a0 += load_bf16(w + i) * loadu(x + i);
  float s = hsum((a0 + a1) + (a2 + a3));
  for (; i < cols; ++i) s += bf16_to_float(w[i]) * x[i];
  return s;
}

// One row of 4-bit blocks: sum_b scale_b (sum_j n_j x_j) + offset_b (sum_j x_j), with the block sums of x given.
__attribute__((noinline)) float dot_row_4bit(const uint8_t* q, const float* scale, const float* offset, const float* x, const float* xsum, int64_t nb) {
  v8 acc{};
  float off = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    v8 n[4];
    widen_nibbles(q + 16 * b, n);
    const float* xb = x + kBlockCols * b;
    const v8 s = (n[0] * loadu(xb) + n[1] * loadu(xb + 8)) + (n[2] * loadu(xb + 16) + n[3] * loadu(xb + 24));
    acc += s * scale[b];
    off += offset[b] * xsum[b];
  }
  return hsum(acc) + off;
}

__attribute__((noinline)) float dot_row_8bit(const uint8_t* q, const float* scale, const float* x, int64_t nb) {
  v8 acc{};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* qb = q + kBlockCols * b;
    const float* xb = x + kBlockCols * b;
    const v8 s = (widen_sbytes(qb) * loadu(xb) + widen_sbytes(qb + 8) * loadu(xb + 8)) +
                 (widen_sbytes(qb + 16) * loadu(xb + 16) + widen_sbytes(qb + 24) * loadu(xb + 24));
    acc += s * scale[b];
  }
  return hsum(acc);
}

}  // namespace

void matvec_blocks(const BlockMatrix& m, const float* x, float* y) {
  const int64_t nb = m.cols / kBlockCols;
  std::vector<float> xsum(static_cast<size_t>(nb), 0.f);
  for (int64_t b = 0; b < nb; ++b)
    for (int j = 0; j < kBlockCols; ++j) xsum[b] += x[kBlockCols * b + j];
  const int64_t row_bytes = nb * (m.bits == 4 ? 16 : 32);
  at::parallel_for(0, m.rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      y[r] = m.bits == 4 ? dot_row_4bit(m.q + r * row_bytes, m.scale + r * nb, m.offset + r * nb, x, xsum.data(), nb)
                         : dot_row_8bit(m.q + r * row_bytes, m.scale + r * nb, x, nb);
  });
}

void matvec_bf16(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols) {
  // Chunks of at least 64 rows: small matrices stay on one thread, where waking the pool costs more than it saves.
  at::parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot_row(w + r * cols, x, cols);
  });
}

}  // namespace headscope
