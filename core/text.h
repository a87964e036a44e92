// Small text helpers shared by the libraries and both programs: UTF-8 validation, and a token's text for display
// with control characters escaped, so that one token stays on one line of a terminal or one chip of the GUI
// ("\n" -> "\\n", "\t" -> "\\t", other bytes below 0x20 -> "\\xNN").
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace headscope {

// Offset of the first byte where `s` stops being well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), or std::string::npos.
inline size_t utf8_error_offset(const std::string& s) {
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return i;
    if (i + len > n) return i;
    for (int k = 1; k < len; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string::npos;
}

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

// A token's text drawn so that whitespace shows: space -> "·" (U+00B7), newline -> "↵" (U+21B5), tab -> "→"
// (U+2192); other control bytes as escape_control writes them ("\r", "\x01"). For
// chips and tick labels, where a lone space token must not be a blank.
inline std::string visible_token(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == ' ') o += "\xc2\xb7";
    else if (c == '\n') o += "\xe2\x86\xb5";
    else if (c == '\t') o += "\xe2\x86\x92";
    else o += escape_control(std::string(1, static_cast<char>(c)));
  }
  return o;
}

// The strings joined with `sep` between them ("a, b, c"), as error messages list what a file holds.
inline std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string o;
  for (const std::string& s : v) o += (o.empty() ? "" : sep) + s;
  return o;
}

// A head as "layer.head" ("23.3"), the way the CLI, specs and run files name it.
inline std::string head_label(int layer, int head) { return std::to_string(layer) + "." + std::to_string(head); }

}  // namespace headscope
