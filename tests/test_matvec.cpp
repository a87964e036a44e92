// The decode steps' matrix-vector products (kernels/matvec.h): bf16 against a float64 dot product of the same bf16
// values over sizes that exercise every tail of its blocking and several thread counts; quantised blocks (kept as a
// GGUF stores them, model/weights.h) against the gguf package's own dequantisation.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/matvec.h"
#include "model/weights.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

TEST_CASE("bf16 matrix-vector product equals a float64 dot product of the bf16 values", "[matvec]") {
  const int prev_threads = at::get_num_threads();
  for (int64_t rows : {1, 7, 64, 65, 200})
    for (int64_t cols : {1, 5, 8, 31, 32, 33, 100, 576}) {
      at::Tensor w = at::randn({rows, cols}).to(at::kBFloat16), x = at::randn({cols});
      const at::Tensor want = at::mv(w.to(at::kDouble), x.to(at::kDouble));
      std::vector<at::Tensor> got;
      for (int threads : {1, 2, 3}) {
        at::set_num_threads(threads);
        at::Tensor y = at::full({rows}, -7.f);
        matvec_bf16(reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()), x.data_ptr<float>(), y.data_ptr<float>(), rows, cols);
        got.push_back(y);
      }
      INFO(rows << " x " << cols);
      // float accumulation of cols products of magnitude ~1: a few float ulps of sqrt(cols)-sized sums.
      CHECK((got[0].to(at::kDouble) - want).abs().max().item<double>() < 1e-5 * std::sqrt(static_cast<double>(cols)) + 1e-6);
      CHECK(at::equal(got[0], got[1]));  // one thread per output row, a fixed order: any thread count, same bits
      CHECK(at::equal(got[0], got[2]));
    }
  at::set_num_threads(prev_threads);
}

TEST_CASE("block matrix-vector product over Q4_0, Q4_1 and Q8_0 blocks equals the gguf package's dequantised values", "[matvec][gguf]") {
  // tests/data/quant/<type>.blocks: 2048 elements as the gguf package quantised them; <type>.f32 its dequantisation.
  for (const char* name : {"Q4_0", "Q4_1", "Q8_0"}) {
    INFO(name);
    std::vector<uint8_t> blocks = testutil::read_bytes(testutil::data(std::string("quant/") + name + ".blocks"));
    std::vector<uint8_t> f32 = testutil::read_bytes(testutil::data(std::string("quant/") + name + ".f32"));
    const int64_t rows = 8, cols = 256;
    REQUIRE(f32.size() == static_cast<size_t>(4 * rows * cols));
    TensorInfo t;
    t.type = std::string(name) == "Q4_0" ? GgmlType::Q4_0 : std::string(name) == "Q4_1" ? GgmlType::Q4_1 : GgmlType::Q8_0;
    t.shape = {rows, cols}, t.data = blocks.data(), t.nbytes = blocks.size();
    const KeptBlocks k = kept_blocks(t);
    REQUIRE(k.defined());
    CHECK(k.bits == (t.type == GgmlType::Q8_0 ? 8 : 4));
    at::Tensor w = at::from_blob(f32.data(), {rows, cols}, at::kFloat).to(at::kDouble);
    at::Tensor x = at::randn({cols}), y = at::full({rows}, -7.f);
    matvec_blocks(k.view(), x.data_ptr<float>(), y.data_ptr<float>());
    const at::Tensor want = at::mv(w, x.to(at::kDouble));
    INFO("max |diff| " << (y.to(at::kDouble) - want).abs().max().item<double>() << " of max |y| " << want.abs().max().item<double>());
    CHECK((y.to(at::kDouble) - want).abs().max().item<double>() < 1e-5 * want.abs().max().item<double>() + 1e-6);
  }
  TensorInfo f;  // other types and widths are not kept
  f.type = GgmlType::F32, f.shape = {2, 64};
  CHECK(!kept_blocks(f).defined());
  f.type = GgmlType::Q8_0, f.shape = {2, 48};
  CHECK(!kept_blocks(f).defined());
}
