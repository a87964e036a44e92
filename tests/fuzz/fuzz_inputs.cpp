// libFuzzer targets for the text inputs a user hands the CLI, built with clang (-fsanitize=fuzzer,address,
// undefined) as fuzz_spec (HEADSCOPE_FUZZ_SPEC defined) and fuzz_prompts:
//   * fuzz_spec: the bytes as an intervention spec (JSON) checked against a model shape, with its positions
//     checked against a prompt length; or, when they are not JSON, as a --heads list and a --mode (two lines);
//   * fuzz_prompts: the bytes as a prompt file, read both as JSONL and as plain text.
// Any input must be accepted or refused with a headscope::Error whose message is one line; any other exception,
// a crash, a leak, undefined behaviour or a message with a line break is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#ifdef HEADSCOPE_FUZZ_SPEC
#include "hooks/intervention_spec.h"
#else
#include "datasets/prompts.h"
#endif

namespace {

void check_one_line(const headscope::Error& e) {
  if (std::strchr(e.what(), '\n') || std::strchr(e.what(), '\r')) {
    std::fprintf(stderr, "error message with a line break: %s\n", e.what());
    std::abort();
  }
}

#ifndef HEADSCOPE_FUZZ_SPEC
// A scratch file per process, rewritten for every input.
std::string scratch(const char* ext) {
  return "/tmp/headscope-fuzz-" + std::to_string(getpid()) + ext;
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
#ifdef HEADSCOPE_FUZZ_SPEC
  headscope::ModelConfig cfg;  // stories260K's shape
  cfg.n_layers = 5, cfg.n_heads = 8, cfg.n_kv_heads = 4, cfg.d_model = 64, cfg.d_head = 8;
  const nlohmann::json spec = nlohmann::json::parse(text, nullptr, false);
  try {
    if (!spec.is_discarded()) {
      auto checked = headscope::parse_spec(spec, cfg);
      headscope::check_spec_positions(checked, 1 + static_cast<int64_t>(size % 64));
      (void)headscope::spec_needs_means(spec);
    } else {
      const size_t nl = text.find('\n');
      headscope::spec_for_heads(text.substr(0, nl), nl == std::string::npos ? "zero" : text.substr(nl + 1), cfg);
    }
  } catch (const headscope::Error& e) {
    check_one_line(e);
  }
#else
  for (const char* ext : {".jsonl", ".txt"}) {
    const std::string path = scratch(ext);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
      for (const headscope::PromptItem& it : headscope::load_prompts(path))
        if (it.text.find('\0') != std::string::npos) std::abort();  // a NUL never reaches a run file
    } catch (const headscope::Error& e) {
      check_one_line(e);
    }
    std::remove(path.c_str());
  }
#endif
  return 0;
}
