// Prompt-set loading (see prompts.h).
#include "datasets/prompts.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/text.h"

namespace headscope {

std::vector<PromptItem> load_prompts(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a folder; give a prompt file (JSONL or text, one prompt per line)");
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  auto ends_with = [&](const char* ext) {
    const size_t n = std::char_traits<char>::length(ext);
    return path.size() >= n && path.compare(path.size() - n, n, ext) == 0;
  };
  const bool jsonl = ends_with(".jsonl") || ends_with(".json");  // a .json prompt file holds one JSON object per line
  std::vector<PromptItem> items;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    const std::string where = path + ":" + std::to_string(n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::string text;
    nlohmann::json meta;
    if (!jsonl) {
      text = line;
    } else {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
        throw Error(where + ": expected a JSON object with a \"text\" string");
      text = j["text"].get<std::string>();
      meta = j.value("meta", nlohmann::json());
    }
    // Run files store texts as C strings and tokenizers need UTF-8: both are refused here, with the line.
    if (text.find('\0') != std::string::npos)
      throw Error(where + ": the text holds a NUL character (U+0000), which a run file cannot store; remove it");
    if (const size_t bad = utf8_error_offset(text); bad != std::string::npos)
      throw Error(where + ": the text is not valid UTF-8 (bad byte at offset " + std::to_string(bad) + ")");
    items.push_back({std::move(text), std::move(meta)});
  }
  if (items.empty()) throw Error(path + ": no prompts in the file");
  return items;
}

}  // namespace headscope
