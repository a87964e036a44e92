// GGUF tensor dequantisation (F32/F16/BF16/Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K -> float32), bit-exact with gguf.quants.dequantize.
//
// Reference: the PyPI `gguf` package (0.19.0), gguf/quants.py, `dequantize_blocks` of each
// type. Every formula below is written in the same order and precision as that numpy code:
// the fp16 scales are first widened to float32 (exactly), the integer quant is converted to
// float32 (exactly), and all arithmetic is float32 with one rounding per numpy ufunc.
// Nothing is computed in float16.
//
// Why the results are reproducible bit for bit (and immune to FMA contraction): every
// product here is exact in float32. An fp16 scale has at most 11 significant bits and the
// integer factors are small (sub-block scales <= 6 bits, Q6_K's int8 scale <= 8 bits,
// quants <= 8 bits), so d*q, d*sc, (d*sc)*q and dmin*m have at most 24 significant bits and
// never overflow or underflow float32. The only rounding step is the final `+ m` (Q4_1)
// or `- dmin*m` (Q4_K, Q5_K), which is a single correctly rounded float32 add/sub whether
// or not the compiler fuses it with the product. Grouping of the products is kept as in
// gguf anyway, and so is the operand order of the add/sub (it decides the sign of zero:
// (+0) - (+0) = +0, (-0) - (+0) = -0).
//
// Multi-byte fields are little-endian; this file assumes a little-endian host.

#include "dequant.h"

#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__FAST_MATH__)
#error "model/dequant.cpp must not be compiled with -ffast-math: it must match gguf bit for bit"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model/dequant.cpp assumes a little-endian host (GGUF data is little-endian)"
#endif

namespace headscope {

namespace {

constexpr int64_t kQK = 32;    // block size of Q4_0, Q4_1, Q8_0
constexpr int64_t kQK_K = 256;  // block size of the K-quants

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Branch-free half -> float bits (vectorisable). Normal numbers and inf/NaN are pure
// integer re-biasing (so NaN payloads and the signalling bit survive, as in numpy's
// npy_halfbits_to_floatbits); zero/subnormals are built as 2^-14 * (1 + m/1024) and then
// 2^-14 is subtracted, which is exact (Sterbenz) and gives m * 2^-24 (and +0 for m = 0).
inline uint32_t half_bits_to_float_bits(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t em = (h & 0x7fffu) << 13;  // half exponent+mantissa at float positions
  const uint32_t exp = em & 0x0f800000u;    // the 5 half exponent bits
  // Selections by all-ones/all-zeros masks rather than branches, so loops vectorise.
  const uint32_t is_infnan = 0u - static_cast<uint32_t>(exp == 0x0f800000u);
  const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0);
  const uint32_t normal = em + (112u << 23) + (is_infnan & (112u << 23));  // bias 15 -> 127; 31 -> 255
  const uint32_t sub = float_to_bits(bits_to_float(em + (113u << 23)) - 0x1p-14f);
  return ((normal & ~is_sub) | (sub & is_sub)) | sign;
}

inline float half_at(const uint8_t* p) { return bits_to_float(half_bits_to_float_bits(load_u16(p))); }

// ---------------------------------------------------------------------------------------
// F32: 4 bytes per element, copied bit for bit (gguf: data.view(np.float32)).
void dequant_f32(const uint8_t* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

// F16: 2 bytes per element, IEEE binary16 (gguf: data.view(np.float16).astype(np.float32),
// an exact widening that keeps NaN payloads).
void dequant_f16(const uint8_t* src, float* dst, int64_t n) {
  static_assert(sizeof(float) == sizeof(uint32_t), "float must be 32-bit");
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    const uint32_t f = half_bits_to_float_bits(h);
    std::memcpy(dst + i, &f, 4);
  }
}

// BF16: 2 bytes per element, the top 16 bits of a float32
// (gguf: (blocks.view(np.int16).astype(np.int32) << 16).view(np.float32)).
void dequant_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    const uint32_t f = static_cast<uint32_t>(h) << 16;
    std::memcpy(dst + i, &f, 4);
  }
}

// Q4_0: 32 elements in 18 bytes: { fp16 d; uint8 qs[16]; }.
// Element j (0..15) is the low nibble of qs[j], element j+16 the high nibble.
// gguf: y = d * float32(q - 8)   (float32 multiply; q - 8 in int8, -8..7).
void dequant_q4_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* b = src + i * 18;
    const float d = half_at(b);
    const uint8_t* qs = b + 2;
    float* y = dst + i * kQK;
    for (int j = 0; j < 16; ++j) y[j] = d * static_cast<float>(static_cast<int>(qs[j] & 0x0F) - 8);
    for (int j = 0; j < 16; ++j) y[j + 16] = d * static_cast<float>(static_cast<int>(qs[j] >> 4) - 8);
  }
}

// Q4_1: 32 elements in 20 bytes: { fp16 d; fp16 m; uint8 qs[16]; }, nibbles as in Q4_0.
// gguf: y = (d * float32(q)) + m   (q in 0..15; float32 multiply, then float32 add).
void dequant_q4_1(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* b = src + i * 20;
    const float d = half_at(b);
    const float m = half_at(b + 2);
    const uint8_t* qs = b + 4;
    float* y = dst + i * kQK;
    for (int j = 0; j < 16; ++j) y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    for (int j = 0; j < 16; ++j) y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Q8_0: 32 elements in 34 bytes: { fp16 d; int8 qs[32]; }.
// gguf: y = float32(qs[j]) * d.
void dequant_q8_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* b = src + i * 34;
    const float d = half_at(b);
    const uint8_t* qs = b + 2;
    float* y = dst + i * kQK;
    for (int j = 0; j < 32; ++j) {
      y[j] = static_cast<float>(static_cast<int8_t>(qs[j])) * d;
    }
  }
}

// The 12-byte, 6-bit packed (scale, min) pairs of Q4_K/Q5_K, 8 sub-blocks of 32:
//   bytes 0..3  = EEaaaaaa  (sc[0..3] low 6 bits, top 2 bits of sc[4..7])
//   bytes 4..7  = FFbbbbbb  (mn[0..3] low 6 bits, top 2 bits of mn[4..7])
//   bytes 8..11 = ffffeeee  (low 4 bits of sc[4..7] | low 4 bits of mn[4..7] << 4)
// gguf Q4_K.get_scale_min (= ggml get_scale_min_k4).
inline void k_scale_min(const uint8_t* s, uint8_t sc[8], uint8_t mn[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 0x3F;
    mn[j] = s[j + 4] & 0x3F;
    sc[j + 4] = static_cast<uint8_t>((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
    mn[j + 4] = static_cast<uint8_t>((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
  }
}

// Q4_K: 256 elements in 144 bytes: { fp16 d; fp16 dmin; uint8 scales[12]; uint8 qs[128]; }.
// 8 sub-blocks of 32 with 6-bit (sc, m) from k_scale_min. Sub-block s uses byte chunk
// qs[32*(s/2) .. +32): low nibbles for even s, high nibbles for odd s.
// gguf: y = (d * float32(sc)) * float32(q) - (dmin * float32(m))   (all float32, q 0..15).
//
// Q5_K: 256 elements in 176 bytes:
//   { fp16 d; fp16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }.
// Low 4 bits as in Q4_K; the 5th bit of element l of sub-block s is bit s of qh[l].
// gguf: y = (d * float32(sc)) * float32(q) - (dmin * float32(m))   (q 0..31).
template <bool kQ5>
void dequant_q4_q5_k(const uint8_t* src, float* dst, int64_t nb) {
  constexpr int64_t kBlockBytes = kQ5 ? 176 : 144;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* b = src + i * kBlockBytes;
    const float d = half_at(b);
    const float dmin = half_at(b + 2);
    uint8_t sc[8], mn[8];
    k_scale_min(b + 4, sc, mn);
    const uint8_t* qh = b + 16;  // Q5_K only
    const uint8_t* qs = b + (kQ5 ? 48 : 16);
    float* y = dst + i * kQK_K;
    for (int s = 0; s < 8; ++s) {
      const float dl = d * static_cast<float>(sc[s]);
      const float ml = dmin * static_cast<float>(mn[s]);
      const uint8_t* q = qs + 32 * (s / 2);
      const int shift = 4 * (s & 1);
      float* ys = y + 32 * s;
      for (int l = 0; l < 32; ++l) {
        int v = (q[l] >> shift) & 0x0F;
        if constexpr (kQ5) v |= ((qh[l] >> s) & 1) << 4;
        ys[l] = dl * static_cast<float>(v) - ml;
      }
    }
  }
}

// Q6_K: 256 elements in 210 bytes:
//   { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d; }   (d is LAST).
// Element e = 128*c + 32*g + l (c 0..1, g 0..3, l 0..31):
//   low 4 bits  = ql[64*c + 32*(g&1) + l] >> (4*(g>>1)) & 0xF
//   high 2 bits = qh[32*c + l] >> (2*g) & 3
//   q = (low | high << 4) - 32  (-32..31), scale = scales[e / 16].
// gguf: y = (d * float32(scale)) * float32(q)   (all float32).
void dequant_q6_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* b = src + i * 210;
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half_at(b + 208);
    float* y = dst + i * kQK_K;
    for (int c = 0; c < 2; ++c) {
      for (int g = 0; g < 4; ++g) {
        const uint8_t* lo = ql + 64 * c + 32 * (g & 1);
        const int lshift = 4 * (g >> 1);
        const uint8_t* hi = qh + 32 * c;
        const int hshift = 2 * g;
        float* yg = y + 128 * c + 32 * g;
        for (int h = 0; h < 2; ++h) {
          const float dl = d * static_cast<float>(scales[8 * c + 2 * g + h]);
          for (int l = 16 * h; l < 16 * h + 16; ++l) {
            const int q = (((lo[l] >> lshift) & 0x0F) | (((hi[l] >> hshift) & 3) << 4)) - 32;
            yg[l] = dl * static_cast<float>(q);
          }
        }
      }
    }
  }
}

[[noreturn]] void throw_unsupported(GgmlType type) {
  throw std::invalid_argument("unsupported GGML type code " +
                std::to_string(static_cast<uint32_t>(type)));
}

}  // namespace

bool ggml_type_supported(uint32_t code) {
  switch (static_cast<GgmlType>(code)) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::BF16:
      return true;
  }
  return false;
}

const char* ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q4_1: return "Q4_1";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q4_K: return "Q4_K";
    case GgmlType::Q5_K: return "Q5_K";
    case GgmlType::Q6_K: return "Q6_K";
    case GgmlType::BF16: return "BF16";
  }
  return "unknown";
}

int64_t ggml_block_size(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16: return 1;
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q8_0: return kQK;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return kQK_K;
  }
  throw_unsupported(type);
}

int64_t ggml_block_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return 4;
    case GgmlType::F16: return 2;
    case GgmlType::BF16: return 2;
    case GgmlType::Q4_0: return 2 + kQK / 2;                        // 18
    case GgmlType::Q4_1: return 2 + 2 + kQK / 2;                    // 20
    case GgmlType::Q8_0: return 2 + kQK;                            // 34
    case GgmlType::Q4_K: return 2 + 2 + 12 + kQK_K / 2;             // 144
    case GgmlType::Q5_K: return 2 + 2 + 12 + kQK_K / 8 + kQK_K / 2;  // 176
    case GgmlType::Q6_K: return kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2;  // 210
  }
  throw_unsupported(type);
}

int64_t ggml_row_bytes(GgmlType type, int64_t n) {
  const int64_t bs = ggml_block_size(type);
  if (n < 0 || n % bs != 0) {
    throw std::invalid_argument(std::string("element count ") + std::to_string(n) +
                  " is not a non-negative multiple of the " +
                  ggml_type_name(type) + " block size " + std::to_string(bs));
  }
  return n / bs * ggml_block_bytes(type);
}

void dequantize(GgmlType type, const void* src, float* dst, int64_t n) {
  ggml_row_bytes(type, n);  // validates type and n
  const uint8_t* s = static_cast<const uint8_t*>(src);
  const int64_t nb = n / ggml_block_size(type);
  switch (type) {
    case GgmlType::F32: dequant_f32(s, dst, n); return;
    case GgmlType::F16: dequant_f16(s, dst, n); return;
    case GgmlType::BF16: dequant_bf16(s, dst, n); return;
    case GgmlType::Q4_0: dequant_q4_0(s, dst, nb); return;
    case GgmlType::Q4_1: dequant_q4_1(s, dst, nb); return;
    case GgmlType::Q8_0: dequant_q8_0(s, dst, nb); return;
    case GgmlType::Q4_K: dequant_q4_q5_k<false>(s, dst, nb); return;
    case GgmlType::Q5_K: dequant_q4_q5_k<true>(s, dst, nb); return;
    case GgmlType::Q6_K: dequant_q6_k(s, dst, nb); return;
  }
  throw_unsupported(type);
}

float fp16_to_fp32(uint16_t h) { return bits_to_float(half_bits_to_float_bits(h)); }

float bf16_to_fp32(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

}  // namespace headscope
