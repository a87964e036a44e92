// Tests for model/dequant: GGUF block decoding must equal gguf.quants.dequantize bit for bit
// (reference data from tests/reference/make_dequant_refs.py), plus hand-computed blocks.
#include "testing.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/dequant.h"
#include "test_helpers.h"

using headscope::GgmlType;

namespace {

std::string quant_path(const std::string& file) {
  return std::string(HEADSCOPE_TEST_DATA) + "/quant/" + file;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::string hex32(uint32_t u) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", u);
  return buf;
}

// Bitwise comparison (NaN payloads and signs of zero included); reports the first mismatch.
void require_bitwise_equal(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (bits(got[i]) != bits(want[i])) {
      if (mismatches++ == 0) first = i;
    }
  }
  if (mismatches != 0) {
    INFO("first mismatch at element " << first << ": got " << got[first] << " (" << hex32(bits(got[first]))
                                      << "), want " << want[first] << " (" << hex32(bits(want[first])) << ")");
    CHECK(mismatches == 0);
  }
  REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
}

void check_reference(GgmlType type) {
  const std::string name = headscope::ggml_type_name(type);
  INFO("type " << name);
  const std::vector<uint8_t> blocks = testutil::read_bytes(quant_path(name + ".blocks"));
  const std::vector<uint8_t> expected_bytes = testutil::read_bytes(quant_path(name + ".f32"));
  const int64_t bb = headscope::ggml_block_bytes(type);
  REQUIRE(blocks.size() % static_cast<size_t>(bb) == 0);
  const int64_t n = static_cast<int64_t>(blocks.size()) / bb * headscope::ggml_block_size(type);
  REQUIRE(n > 0);
  REQUIRE(expected_bytes.size() == static_cast<size_t>(n) * 4);
  REQUIRE(headscope::ggml_row_bytes(type, n) == static_cast<int64_t>(blocks.size()));

  std::vector<float> want(static_cast<size_t>(n));
  std::memcpy(want.data(), expected_bytes.data(), expected_bytes.size());

  std::vector<float> got(static_cast<size_t>(n), from_bits(0xdeadbeefu));
  headscope::dequantize(type, blocks.data(), got.data(), n);
  require_bitwise_equal(got, want);

  // The same data decoded in block-aligned pieces from an odd (unaligned) address.
  std::vector<uint8_t> shifted(blocks.size() + 1);
  std::memcpy(shifted.data() + 1, blocks.data(), blocks.size());
  const int64_t bs = headscope::ggml_block_size(type);
  const int64_t n_blocks = n / bs;
  std::vector<float> pieces(static_cast<size_t>(n), from_bits(0xdeadbeefu));
  int64_t done = 0;
  for (int64_t chunk = 1; done < n_blocks; chunk = chunk * 2 + 1) {
    const int64_t take = std::min(chunk, n_blocks - done);
    const int64_t start = done * bs;
    headscope::dequantize(type, shifted.data() + 1 + headscope::ggml_row_bytes(type, start), pieces.data() + start,
                          take * bs);
    done += take;
  }
  require_bitwise_equal(pieces, want);
}

void put_half(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

}  // namespace

TEST_CASE("dequant: every type matches gguf.quants.dequantize bit for bit", "[dequant]") {
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0,
                        GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    SECTION(headscope::ggml_type_name(type)) { check_reference(type); }
  }
}

TEST_CASE("dequant: type table", "[dequant]") {
  struct Row {
    uint32_t code;
    const char* name;
    int64_t block_size, block_bytes;
  };
  // From the GGML type table (ggml.c type_traits / gguf GGML_QUANT_SIZES).
  const Row rows[] = {{0, "F32", 1, 4},       {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},
                      {3, "Q4_1", 32, 20},    {8, "Q8_0", 32, 34},    {12, "Q4_K", 256, 144},
                      {13, "Q5_K", 256, 176}, {14, "Q6_K", 256, 210}, {30, "BF16", 1, 2}};
  for (const Row& r : rows) {
    INFO(r.name);
    REQUIRE(headscope::ggml_type_supported(r.code));
    const auto t = static_cast<GgmlType>(r.code);
    REQUIRE(std::string(headscope::ggml_type_name(t)) == r.name);
    REQUIRE(headscope::ggml_block_size(t) == r.block_size);
    REQUIRE(headscope::ggml_block_bytes(t) == r.block_bytes);
  }
  for (uint32_t code : {4u, 5u, 6u, 7u, 9u, 10u, 11u, 15u, 16u, 29u, 31u, 1000u}) {
    INFO("code " << code);
    REQUIRE_FALSE(headscope::ggml_type_supported(code));
  }
  REQUIRE(std::string(headscope::ggml_type_name(static_cast<GgmlType>(6))) == "unknown");
  REQUIRE_THROWS_AS(headscope::ggml_block_size(static_cast<GgmlType>(6)), std::invalid_argument);
  REQUIRE_THROWS_AS(headscope::ggml_row_bytes(static_cast<GgmlType>(6), 32), std::invalid_argument);
}

TEST_CASE("dequant: row bytes and element counts that are not whole blocks", "[dequant]") {
  REQUIRE(headscope::ggml_row_bytes(GgmlType::Q4_0, 64) == 36);
  REQUIRE(headscope::ggml_row_bytes(GgmlType::Q4_1, 576) == 18 * 20);
  REQUIRE(headscope::ggml_row_bytes(GgmlType::Q4_K, 512) == 288);
  REQUIRE(headscope::ggml_row_bytes(GgmlType::Q6_K, 256) == 210);
  REQUIRE(headscope::ggml_row_bytes(GgmlType::F16, 7) == 14);
  REQUIRE(headscope::ggml_row_bytes(GgmlType::F32, 0) == 0);
  REQUIRE_THROWS_AS(headscope::ggml_row_bytes(GgmlType::Q4_0, 33), std::invalid_argument);
  REQUIRE_THROWS_AS(headscope::ggml_row_bytes(GgmlType::Q8_0, 16), std::invalid_argument);
  REQUIRE_THROWS_AS(headscope::ggml_row_bytes(GgmlType::Q5_K, 255), std::invalid_argument);
  REQUIRE_THROWS_AS(headscope::ggml_row_bytes(GgmlType::Q4_1, -32), std::invalid_argument);
  REQUIRE_THROWS_WITH(headscope::ggml_row_bytes(GgmlType::Q4_0, 33), Catch::Contains("Q4_0") && Catch::Contains("32"));

  std::vector<uint8_t> src(34 * 4, 0);
  std::vector<float> dst(128);
  REQUIRE_THROWS_AS(headscope::dequantize(GgmlType::Q8_0, src.data(), dst.data(), 100), std::invalid_argument);
}

TEST_CASE("dequant: fp16 and bf16 scalars", "[dequant]") {
  using headscope::bf16_to_fp32;
  using headscope::fp16_to_fp32;
  REQUIRE(fp16_to_fp32(0x3C00) == 1.0f);
  REQUIRE(fp16_to_fp32(0xC000) == -2.0f);
  REQUIRE(fp16_to_fp32(0x3800) == 0.5f);
  REQUIRE(fp16_to_fp32(0x7BFF) == 65504.0f);
  REQUIRE(fp16_to_fp32(0x0400) == std::ldexp(1.0f, -14));           // smallest normal
  REQUIRE(fp16_to_fp32(0x0001) == std::ldexp(1.0f, -24));           // smallest subnormal
  REQUIRE(fp16_to_fp32(0x03FF) == std::ldexp(1023.0f, -24));        // largest subnormal
  REQUIRE(bits(fp16_to_fp32(0x0000)) == 0x00000000u);
  REQUIRE(bits(fp16_to_fp32(0x8000)) == 0x80000000u);               // -0 keeps its sign
  REQUIRE(bits(fp16_to_fp32(0x7C00)) == 0x7F800000u);               // +inf
  REQUIRE(bits(fp16_to_fp32(0xFC00)) == 0xFF800000u);               // -inf
  REQUIRE(bits(fp16_to_fp32(0x7E00)) == 0x7FC00000u);               // quiet NaN
  REQUIRE(bits(fp16_to_fp32(0x7C01)) == 0x7F802000u);               // signalling NaN stays signalling
  REQUIRE(bits(fp16_to_fp32(0xFD55)) == 0xFFAAA000u);               // payload kept

  // All 65536 halves against the IEEE definition: (-1)^s * 2^(e-15) * (1 + m/1024), subnormal 2^-14 * m/1024.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const uint32_t s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    uint32_t want;
    if (e == 0x1F) {
      want = (s << 31) | 0x7F800000u | (m << 13);
    } else {
      const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -24)
                               : std::ldexp(static_cast<float>(1024 + m), static_cast<int>(e) - 25);
      want = bits(s ? -mag : mag);
    }
    if (bits(fp16_to_fp32(static_cast<uint16_t>(h))) != want) {
      FAIL("fp16_to_fp32(" << h << ") = " << hex32(bits(fp16_to_fp32(static_cast<uint16_t>(h)))) << ", want "
                           << hex32(want));
    }
  }

  REQUIRE(bf16_to_fp32(0x3F80) == 1.0f);
  REQUIRE(bf16_to_fp32(0xC049) == -3.140625f);
  REQUIRE(bits(bf16_to_fp32(0x8000)) == 0x80000000u);
  REQUIRE(bits(bf16_to_fp32(0x7F81)) == 0x7F810000u);
}

TEST_CASE("dequant: hand-computed Q4_0 block", "[dequant]") {
  // d = 0.5 (fp16 0x3800); qs[j] = j | (15 - j) << 4.
  // Element j (low nibble, j < 16) = 0.5 * (j - 8):         -4.0, -3.5, ..., 3.5
  // Element 16 + j (high nibble)   = 0.5 * ((15 - j) - 8):  3.5, 3.0, ..., -4.0
  uint8_t block[18];
  put_half(block, 0x3800);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  const float want[32] = {-4.0f, -3.5f, -3.0f, -2.5f, -2.0f, -1.5f, -1.0f, -0.5f, 0.0f,  0.5f,  1.0f,
                          1.5f,  2.0f,  2.5f,  3.0f,  3.5f,  3.5f,  3.0f,  2.5f,  2.0f,  1.5f,  1.0f,
                          0.5f,  0.0f,  -0.5f, -1.0f, -1.5f, -2.0f, -2.5f, -3.0f, -3.5f, -4.0f};
  float got[32];
  headscope::dequantize(GgmlType::Q4_0, block, got, 32);
  for (int i = 0; i < 32; ++i) {
    INFO("element " << i);
    REQUIRE(bits(got[i]) == bits(want[i]));  // 0.5 * 0 = +0.0
  }
}

TEST_CASE("dequant: hand-computed Q4_1 blocks, including the rounding of + m", "[dequant]") {
  {
    // d = 0.25 (0x3400), m = -1.0 (0xBC00), every qs byte 0xF0:
    // low nibble 0 -> 0.25*0 - 1 = -1.0 (elements 0..15); high nibble 15 -> 3.75 - 1 = 2.75 (16..31).
    uint8_t block[20];
    put_half(block, 0x3400);
    put_half(block + 2, 0xBC00);
    std::memset(block + 4, 0xF0, 16);
    float got[32];
    headscope::dequantize(GgmlType::Q4_1, block, got, 32);
    for (int i = 0; i < 16; ++i) REQUIRE(got[i] == -1.0f);
    for (int i = 16; i < 32; ++i) REQUIRE(got[i] == 2.75f);
  }
  {
    // d = 1.0, m = 2^-24 (fp16 subnormal 0x0001); qs[0] = 0x10, qs[1] = 0x32, rest 0.
    // float32: 0 + 2^-24 = 2^-24 exactly; 1 + 2^-24 is a tie halfway to the next float (ulp(1) = 2^-23),
    // rounds to even -> 1.0; 3 + 2^-24 -> 3.0; 2 + 2^-24 -> 2.0.
    uint8_t block[20] = {};
    put_half(block, 0x3C00);
    put_half(block + 2, 0x0001);
    block[4] = 0x10;  // element 0: q = 0, element 16: q = 1
    block[5] = 0x32;  // element 1: q = 2, element 17: q = 3
    float got[32];
    headscope::dequantize(GgmlType::Q4_1, block, got, 32);
    REQUIRE(got[0] == std::ldexp(1.0f, -24));
    REQUIRE(got[16] == 1.0f);
    REQUIRE(got[1] == 2.0f);
    REQUIRE(got[17] == 3.0f);
  }
}

TEST_CASE("dequant: hand-computed Q8_0 block", "[dequant]") {
  // d = -2.0 (0xC000); qs = -128, 127, 0, 1, rest 0.
  // -128 * -2 = 256; 127 * -2 = -254; 0 * -2 = -0.0 (sign bit set); 1 * -2 = -2.
  uint8_t block[34] = {};
  put_half(block, 0xC000);
  block[2] = 0x80;
  block[3] = 0x7F;
  block[5] = 0x01;
  float got[32];
  headscope::dequantize(GgmlType::Q8_0, block, got, 32);
  REQUIRE(got[0] == 256.0f);
  REQUIRE(got[1] == -254.0f);
  REQUIRE(bits(got[2]) == 0x80000000u);
  REQUIRE(got[3] == -2.0f);
  REQUIRE(bits(got[31]) == 0x80000000u);
}

TEST_CASE("dequant: hand-computed Q4_K and Q5_K blocks", "[dequant]") {
  // d = 1.0, dmin = 0.5. Packed scales (12 bytes at offset 4):
  //   s[0] = 0x41 -> sc[0] = 0x41 & 63 = 1; top bits (0x41 >> 2) & 0x30 = 0x10 go to sc[4]
  //   s[4] = 0x82 -> mn[0] = 2;            top bits (0x82 >> 2) & 0x30 = 0x20 go to mn[4]
  //   s[8] = 0x23 -> sc[4] = 3 | 0x10 = 19, mn[4] = 2 | 0x20 = 34
  //   everything else 0 -> sc = mn = 0 for the other sub-blocks.
  // Q4_K qs (offset 16): qs[0] = 0x75, qs[64] = 0x0A.
  //   element 0   (sub-block 0, low nibble of qs[0])  = 1*1*5  - 0.5*2  = 4.0
  //   element 32  (sub-block 1, high nibble of qs[0]) = 1*0*7  - 0.5*0  = +0.0
  //   element 128 (sub-block 4, low nibble of qs[64]) = 1*19*10 - 0.5*34 = 173.0
  //   element 129 (q = 0)                              = 0 - 17 = -17.0
  uint8_t q4k[144] = {};
  put_half(q4k, 0x3C00);
  put_half(q4k + 2, 0x3800);
  q4k[4 + 0] = 0x41;
  q4k[4 + 4] = 0x82;
  q4k[4 + 8] = 0x23;
  q4k[16 + 0] = 0x75;
  q4k[16 + 64] = 0x0A;
  float got[256];
  headscope::dequantize(GgmlType::Q4_K, q4k, got, 256);
  REQUIRE(got[0] == 4.0f);
  REQUIRE(got[1] == -1.0f);  // q = 0: 0 - 0.5*2
  REQUIRE(bits(got[32]) == 0u);
  REQUIRE(got[128] == 173.0f);
  REQUIRE(got[129] == -17.0f);
  REQUIRE(bits(got[255]) == 0u);

  // Q5_K: same d, dmin and scales; qh (offset 16, 32 bytes) then qs (offset 48).
  // qh[0] = 0x11: bit 0 -> 5th bit of element 0 (sub-block 0), bit 4 -> element 128 (sub-block 4).
  //   element 0   = 1*1*(5|16)   - 1  = 20.0
  //   element 128 = 19*(10|16)   - 17 = 494 - 17 = 477.0
  uint8_t q5k[176] = {};
  std::memcpy(q5k, q4k, 16);
  q5k[16 + 0] = 0x11;
  q5k[48 + 0] = 0x75;
  q5k[48 + 64] = 0x0A;
  headscope::dequantize(GgmlType::Q5_K, q5k, got, 256);
  REQUIRE(got[0] == 20.0f);
  REQUIRE(got[128] == 477.0f);
  REQUIRE(got[129] == -17.0f);
  REQUIRE(bits(got[32]) == 0u);
}

TEST_CASE("dequant: hand-computed Q6_K block", "[dequant]") {
  // Layout: ql[128] @0, qh[64] @128, int8 scales[16] @192, fp16 d @208.
  // d = 1.0; scales[0] = -2, others 1; ql = 0 and qh = 0 except ql[0] = 0x21, qh[0] = 0xE4 (0b11'10'01'00).
  // q = (low4 | high2 << 4) - 32:
  //   element 0  : low = ql[0] & 15 = 1, high = qh[0] bits 0-1 = 0 -> q = -31, scale -2 -> 62
  //   element 1  : q = -32, scale -2 -> 64
  //   element 32 : low = ql[32] & 15 = 0, high = bits 2-3 = 1 -> q = 16 - 32 = -16 -> -16
  //   element 64 : low = ql[0] >> 4 = 2, high = bits 4-5 = 2 -> q = 34 - 32 = 2 -> 2
  //   element 96 : low = ql[32] >> 4 = 0, high = bits 6-7 = 3 -> q = 48 - 32 = 16 -> 16
  //   element 255: q = -32 -> -32
  uint8_t block[210] = {};
  block[0] = 0x21;
  block[128] = 0xE4;
  for (int i = 0; i < 16; ++i) block[192 + i] = 1;
  block[192] = static_cast<uint8_t>(-2);
  put_half(block + 208, 0x3C00);
  float got[256];
  headscope::dequantize(GgmlType::Q6_K, block, got, 256);
  REQUIRE(got[0] == 62.0f);
  REQUIRE(got[1] == 64.0f);
  REQUIRE(got[16] == -32.0f);
  REQUIRE(got[32] == -16.0f);
  REQUIRE(got[64] == 2.0f);
  REQUIRE(got[96] == 16.0f);
  REQUIRE(got[255] == -32.0f);
}

// ---------------------------------------------------------------------------------------------------------
// Real tensors: every tensor of stories260K and SmolLM2-135M (Q4_1, Q8_0, F32) read through the GGUF reader and
// dequantised must hash (sha256 of the float32 bytes) to what the PyPI gguf package's dequantize gives.
#include <openssl/evp.h>

#include "model/checkpoint.h"

namespace {
std::string sha256_hex(const void* data, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) std::snprintf(b, sizeof b, "%02x", md[i]), hex += b;
  return hex;
}
}  // namespace

namespace {
// Every tensor of the file `name` in real_tensors.json (type, shape, offset, sha256 of the fp32 values).
void check_real_tensors(const std::string& name, const std::string& path) {
  auto ref = nlohmann::json::parse(std::ifstream(std::string(HEADSCOPE_TEST_DATA) + "/quant/real_tensors.json"));
  const nlohmann::json* file = nullptr;
  for (auto& f : ref["files"])
    if (f["file"] == name) file = &f;
  REQUIRE(file);
  auto ck = headscope::Checkpoint::open(path);
  const uint8_t* base = nullptr;
  REQUIRE(ck->tensors().size() == (*file)["tensors"].size());
  std::vector<float> buf;
  for (auto& t : (*file)["tensors"]) {
    const auto& info = ck->get(t["name"]);
    INFO(name << ": " << t["name"].get<std::string>());
    CHECK(static_cast<uint32_t>(info.type) == t["type_code"].get<uint32_t>());
    auto shape = t["shape"].get<std::vector<int64_t>>();
    CHECK(std::vector<int64_t>(shape.rbegin(), shape.rend()) == info.shape);
    if (!base) base = info.data - t["offset"].get<uint64_t>();
    CHECK(static_cast<uint64_t>(info.data - base) == t["offset"].get<uint64_t>());
    buf.resize(info.numel());
    headscope::dequantize(info.type, info.data, buf.data(), info.numel());
    CHECK(sha256_hex(buf.data(), buf.size() * 4) == t["sha256"].get<std::string>());
  }
}
}  // namespace

TEST_CASE("stories260K's F32 tensors read exactly as the gguf package reads them", "[dequant][gguf][real]") {
  check_real_tensors("stories260K.gguf", testutil::stories260k());
}

TEST_CASE("SmolLM2's Q4_1/Q8_0/F32 tensors dequantise exactly as the gguf package does", "[dequant][gguf][real]") {
  const std::string path = testutil::smollm2();
  if (path.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  check_real_tensors("SmolLM2-135M-Instruct.Q4_1.gguf", path);
}
