// Prompt-set loading (see prompts.h).
#include "datasets/prompts.h"

#include <fstream>

#include "core/error.h"

namespace headscope {

std::vector<PromptItem> load_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  const bool jsonl = path.size() >= 6 && (path.compare(path.size() - 6, 6, ".jsonl") == 0);
  std::vector<PromptItem> items;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!jsonl) {
      items.push_back({line, nullptr});
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw Error(path + ":" + std::to_string(n) + ": expected a JSON object with a \"text\" string");
    items.push_back({j["text"].get<std::string>(), j.value("meta", nlohmann::json())});
  }
  if (items.empty()) throw Error(path + ": no prompts in the file");
  return items;
}

}  // namespace headscope
