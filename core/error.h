// headscope's one error type: every failure a user can cause (bad checkpoint, bad prompt, bad flag)
// is reported as a headscope::Error whose message is one line that names the file and says what to do.
#pragma once
#include <stdexcept>
#include <string>

namespace headscope {

struct Error : std::runtime_error {
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace headscope
