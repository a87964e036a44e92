// libFuzzer target for the checkpoint parsers. Built with clang (-fsanitize=fuzzer,address,undefined) as
// fuzz_gguf (HEADSCOPE_FUZZ_GGUF defined) and fuzz_safetensors. Any input must either parse or throw
// headscope::Error; any other exception, crash, leak or undefined behaviour is a finding.
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/dequant.h"
#include "core/error.h"
#include "model/gguf.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  headscope::ByteView bytes{data, size, "fuzz-input"};
  try {
#ifdef HEADSCOPE_FUZZ_GGUF
    headscope::GgufFile g = headscope::gguf_parse(bytes);
    std::vector<float> out;
    for (const auto& t : g.tensors) {  // decode each tensor's first block: reads must stay in bounds
      int64_t n = std::min<int64_t>(t.numel(), headscope::ggml_block_size(t.type));
      out.resize(n);
      if (n > 0) headscope::dequantize(t.type, t.data, out.data(), n);
    }
    try { headscope::config_from_gguf(g); } catch (const headscope::Error&) {}
    if (g.has("tokenizer.ggml.model")) {
      auto tok = headscope::Tokenizer::from_gguf(g);
      auto ids = tok->encode("Hello, world! 123 \xe4\xbd\xa0\xe5\xa5\xbd");
      tok->decode(ids);
    }
#else
    auto ts = headscope::safetensors_parse(bytes);
    for (const auto& t : ts)
      if (t.nbytes >= 4) (void)*reinterpret_cast<const volatile uint8_t*>(t.data + t.nbytes - 1);
#endif
  } catch (const headscope::Error&) {
  }
  return 0;
}
