// Subprocess, model-cache and skip helpers for the tests (see test_helpers.h).
#include "test_helpers.h"

#include <sys/wait.h>

#include <cstdio>
#include <set>

#include "testing.h"

namespace testutil {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult run_cli(const std::string& args, const std::string& shell_prefix) {
  TempDir tmp;
  std::string cmd = shell_prefix + std::string(HEADSCOPE_CLI) + " " + args + " >" + (tmp / "out") + " 2>" + (tmp / "err") + " </dev/null";
  int status = std::system(cmd.c_str());
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, slurp(tmp / "out"), slurp(tmp / "err")};
}

std::string model_dir() {
  const char* dir = std::getenv("HEADSCOPE_MODEL_DIR");
  if (dir && *dir) return dir;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/headscope";
}

namespace {
std::string cached(const std::string& name) {
  const std::string p = model_dir() + "/" + name;
  return std::filesystem::exists(p) ? p : std::string();
}
std::string current_test;
int n_started = 0;
std::set<std::string> skipped;
}  // namespace

std::string smollm2() { return cached("SmolLM2-135M-Instruct.Q4_1.gguf"); }
std::string qwen3_tokenizer() { return cached("qwen3-tokenizer.json"); }
std::string not_downloaded(const std::string& name) {
  return name + " is not in " + model_dir() + " (the README's setup command downloads it)";
}

void skip(const std::string& why) {
  WARN("SKIPPED: " << why);
  std::printf("SKIPPED: %s\n", why.c_str());
  skipped.insert(current_test);
}

namespace detail {
void test_case_started(const std::string& name) {
  current_test = name;
  ++n_started;
}
bool every_test_case_skipped() { return n_started > 0 && static_cast<int>(skipped.size()) == n_started; }
}  // namespace detail

}  // namespace testutil
