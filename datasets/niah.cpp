// Needle-in-a-haystack items (see niah.h).
#include "datasets/niah.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/random.h"
#include "core/text.h"

namespace headscope {

std::vector<Needle> paper_needles() {
  return {{"A new report from the WMO shows that records were once again broken, and in some cases smashed, for greenhouse gas "
           "levels, surface temperatures, ocean heat and acidification.",
           "What does a new report from WMO shows ?",
           "records were once again broken, and in some cases smashed, for greenhouse gas levels, surface temperatures, ocean heat "
           "and acidification."},
          {"The best thing to do in Beijing is to take a walk in Chaoyang Park and have a cup of Espresso in the evening.",
           "What is the best thing to do in Beijing ?", "take a walk in Chaoyang Park and have a cup of Espresso in the evening"},
          {"Mr Green is disliked by everyone because he is a mean person and also he can't ride a horse or dive a car.",
           "Why does everyone dislikes Mr Green ?", "Because he is a mean person and also he can't ride a horse or dive a car."}};
}

std::vector<Needle> generated_needles(int count, uint64_t seed) {
  static const char* colours[] = {"red", "blue", "green", "yellow", "purple", "orange", "silver", "golden"};
  static const char* things[] = {"fox", "lighthouse", "violin", "garden", "river", "castle", "comet", "lantern"};
  static const char* kinds[] = {"secret code", "magic number", "lucky number", "password"};
  std::vector<Needle> out;
  uint64_t s = seed;
  for (int i = 0; i < count; ++i) {
    const std::string colour = colours[splitmix64(s) % 8], thing = things[splitmix64(s) % 8], kind = kinds[splitmix64(s) % 4];
    const std::string value = std::to_string(100000 + splitmix64(s) % 900000);
    out.push_back({"The " + kind + " of the " + colour + " " + thing + " is " + value + ".",
                   "What is the " + kind + " of the " + colour + " " + thing + "?", value});
  }
  return out;
}

std::vector<Needle> load_needles(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the needles file");
  std::vector<Needle> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    const char* answer_key = j.is_object() && j.contains("answer") ? "answer" : "real_needle";
    if (!j.is_object() || !j.contains("needle") || !j.contains("question") || !j.contains(answer_key) || !j["needle"].is_string() ||
        !j["question"].is_string() || !j[answer_key].is_string())
      throw Error(path + ":" + std::to_string(n) + ": expected {\"needle\": …, \"question\": …, \"answer\": …} (strings)");
    out.push_back({j["needle"], j["question"], j[answer_key]});
  }
  if (out.empty()) throw Error(path + ": no needles");
  return out;
}

std::string read_haystack(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read the haystack (give a text file)");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw Error(path + ": the haystack is empty");
  if (const size_t bad = utf8_error_offset(text); bad != std::string::npos)
    throw Error(path + ": the haystack is not valid UTF-8 (byte " + std::to_string(bad) + "); give a UTF-8 text file");
  return text;
}

std::vector<int64_t> linspace_round(double lo, double hi, int n) {
  std::vector<int64_t> out;
  for (int i = 0; i < n; ++i) {
    const double x = n == 1 ? lo : lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1);
    out.push_back(static_cast<int64_t>(std::nearbyint(x)));  // round half to even, as numpy
  }
  return out;
}

std::string chat_format_of(const std::string& t) {
  if (t.find("<|im_start|>") != std::string::npos) return "chatml";
  if (t.find("<|start_header_id|>") != std::string::npos) return "llama3";
  if (t.find("[INST]") != std::string::npos) return "llama2";
  return "plain";
}

namespace {

std::string wrap(const std::string& context, const std::string& question, const std::string& format) {
  const std::string ask = "Based on the content of the book, Question: " + question + "\nAnswer:";
  const std::string user = "<book>" + context + "</book>\n" + ask;
  if (format == "chatml") return "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
  if (format == "llama3") return "<|start_header_id|>user<|end_header_id|>\n\n" + user + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  if (format == "llama2") return "[INST] " + user + " [/INST]";
  if (format == "plain") return context + ask;
  throw Error("unknown prompt format '" + format + "' (plain, chatml, llama2, llama3)");
}

bool ends_sentence(const std::string& text) {
  const size_t e = text.find_last_not_of(" \t\r\n");
  return e != std::string::npos && text[e] == '.';
}

}  // namespace

NiahItem make_niah_item(const std::string& haystack, const Needle& needle, int64_t length, double depth, const std::string& format,
                        const NiahTokenizer& tok, int64_t reserve) {
  if (!(depth >= 0 && depth <= 100)) throw Error("needle depth must be in [0, 100] percent, not " + std::to_string(depth));
  const std::vector<int32_t> needle_ids = tok.encode(needle.needle);
  const int64_t budget = length - reserve - static_cast<int64_t>(needle_ids.size());
  if (budget < 1)
    throw Error("a context of " + std::to_string(length) + " tokens leaves no room for a haystack (" + std::to_string(reserve) +
                " reserved for the question and answer, " + std::to_string(needle_ids.size()) + " for the needle)");
  std::vector<int32_t> ctx = tok.encode(haystack);
  if (static_cast<int64_t>(ctx.size()) < budget)
    throw Error("the haystack has " + std::to_string(ctx.size()) + " tokens; a context of " + std::to_string(length) + " tokens needs " +
                std::to_string(budget) + " (give a longer --haystack or shorter --lengths)");
  ctx.resize(static_cast<size_t>(budget));
  int64_t at = depth >= 100 ? budget : static_cast<int64_t>(static_cast<double>(budget) * depth / 100.0);
  if (depth < 100)
    while (at > 0 && !ends_sentence(tok.token_text(ctx[at - 1]))) --at;  // back to the nearest sentence end
  std::vector<int32_t> with(ctx.begin(), ctx.begin() + at);
  with.insert(with.end(), needle_ids.begin(), needle_ids.end());
  with.insert(with.end(), ctx.begin() + at, ctx.end());
  NiahItem it;
  it.prompt = wrap(tok.decode(with), needle.question, format);
  it.needle = needle, it.length = length, it.depth = depth, it.haystack_tokens = budget, it.insertion = at;
  return it;
}

}  // namespace headscope
