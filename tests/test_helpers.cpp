// Subprocess helper for tests that drive the CLI (see test_helpers.h).
#include "test_helpers.h"

#include <sys/wait.h>

#include <sstream>

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

}  // namespace testutil
