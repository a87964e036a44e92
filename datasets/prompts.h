// Prompt sets from files: JSONL ({"text": ..., "meta": {...}} per line) or plain text (one prompt per line).
// Blank lines are skipped; a malformed line, a text with a NUL character or invalid UTF-8 is an Error naming the
// file and line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace headscope {

struct PromptItem {
  std::string text;
  nlohmann::json meta;  // null for plain text
};

// .jsonl and .json files are read as JSONL (one object per line); anything else as plain text.
std::vector<PromptItem> load_prompts(const std::string& path);

}  // namespace headscope
