// headscope's error types: every failure a user can cause (bad checkpoint, bad prompt, bad input file) is
// reported as a headscope::Error whose message is one line that names the file and says what to do. Library
// messages speak of the library's concepts; the CLI and the GUI add their own words (flags, buttons).
#pragma once
#include <stdexcept>
#include <string>

namespace headscope {

struct Error : std::runtime_error {
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// An error the caller resolves by a choice of its own: replace what is there, or resume it; truncate a prompt
// longer than the model's context, or run past the context. The library says what happened in its own terms; the
// CLI names its flags (--force, --resume, --max-tokens, --allow-beyond-context), the GUI its buttons.
struct ChoiceError : Error {
  enum class Remedy { overwrite, resume, overwrite_or_resume, truncate, truncate_or_extrapolate };
  Remedy remedy;
  ChoiceError(const std::string& msg, Remedy r) : Error(msg), remedy(r) {}
};

// Thrown when a caller's progress callback asked to stop: a value to catch, not a message to compare.
struct Cancelled : Error {
  Cancelled() : Error("cancelled") {}
};

}  // namespace headscope
