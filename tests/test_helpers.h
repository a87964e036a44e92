// Shared helpers for the Catch2 tests: paths to fixtures and real models, JSON loading, temp folders,
// and running the CLI as a subprocess.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace testutil {

inline std::string data(const std::string& rel) { return std::string(HEADSCOPE_TEST_DATA) + "/" + rel; }

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing test fixture " + path);
  return nlohmann::json::parse(in);
}

inline std::string stories260k() { return std::string(HEADSCOPE_SHARED_DIR) + "/models/stories260K/stories260K.gguf"; }

// The default real model: $HEADSCOPE_MODEL_DIR or ~/.cache/headscope. Empty when absent.
inline std::string smollm2() {
  const char* dir = std::getenv("HEADSCOPE_MODEL_DIR");
  std::string d = dir ? dir : std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") + "/.cache/headscope";
  std::string p = d + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  return std::filesystem::exists(p) ? p : std::string();
}

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
// before the command in the shell line (e.g. "ulimit -f 100; exec ").
RunResult run_cli(const std::string& args, const std::string& shell_prefix = "");
std::string shell_quote(const std::string& s);
std::string slurp(const std::string& path);  // a file's whole text ("" when it cannot be read)

}  // namespace testutil
