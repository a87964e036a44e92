// Text for display: a token's text with control characters escaped, so that one token stays on one line of a
// terminal or one chip of the GUI ("\n" -> "\\n", "\t" -> "\\t", other bytes below 0x20 -> "\\xNN").
#pragma once
#include <cstdio>
#include <string>

namespace headscope {

inline std::string escape_control(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else if (c == '\r') o += "\\r";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

}  // namespace headscope
