// Prompt sets from files: JSONL ({"text": ..., "meta": {...}} per line) or plain text (one prompt per line).
// Blank lines are skipped; a malformed line is an Error naming the file and line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace headscope {

struct PromptItem {
  std::string text;
  nlohmann::json meta;  // null for plain text
};

// .jsonl/.json lines files are read as JSONL; anything else as plain text.
std::vector<PromptItem> load_prompts(const std::string& path);

}  // namespace headscope
