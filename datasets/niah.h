// Needle-in-a-haystack items (Wu et al.'s retrieval_head_detection.py, after gkamradt's LLMTest_NeedleInAHaystack;
// METRICS.md §1): a haystack text cut to a token budget, a needle sentence inserted at a depth (moved back to the
// nearest preceding sentence end), and the question after it, in the model's chat template when it has one. The
// tokenizer is the caller's (callbacks), so nothing here depends on a model.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace headscope {

struct Needle {
  std::string needle;    // the sentence put into the haystack
  std::string question;
  std::string answer;    // the part of the needle the answer must recall (the reference's "real_needle")
};

// The three needles of the reference (haystack_for_detect/needles.jsonl).
std::vector<Needle> paper_needles();
// `count` new needles, seeded (splitmix64): "The secret code of the <colour> <animal> is <number>." and the like.
std::vector<Needle> generated_needles(int count, uint64_t seed);
// Needles from JSONL: {"needle", "question", "answer"} per line ("real_needle" is accepted for "answer").
std::vector<Needle> load_needles(const std::string& path);

// A haystack text file: Error (naming the file) when it cannot be read, is empty or is not valid UTF-8.
std::string read_haystack(const std::string& path);

// The reference's grids: round(linspace(lo, hi, n)) (as numpy rounds: half to even).
std::vector<int64_t> linspace_round(double lo, double hi, int n);

// How the question is asked: "plain" (haystack + "Based on the content of the book, Question: {q}\nAnswer:"), or
// a chat template ("chatml", "llama2", "llama3") with the haystack in <book>…</book>.
std::string chat_format_of(const std::string& chat_template);  // a GGUF/HF chat template -> one of the above

struct NiahTokenizer {
  std::function<std::vector<int32_t>(const std::string&)> encode;  // without special tokens
  std::function<std::string(const std::vector<int32_t>&)> decode;
  std::function<std::string(int32_t)> token_text;
};

struct NiahItem {
  std::string prompt;       // the whole text the model reads
  Needle needle;
  int64_t length = 0;       // the requested context length (tokens)
  double depth = 0;         // percent
  int64_t haystack_tokens = 0, insertion = 0;  // haystack tokens kept; where the needle went (token index)
};

// One item: the haystack's first (length - reserve - |needle|) tokens, the needle inserted at depth% (after the
// nearest preceding token that ends a sentence, '.', or at the start), decoded and put in the template. Error when
// the haystack has fewer tokens than the budget.
NiahItem make_niah_item(const std::string& haystack, const Needle& needle, int64_t length, double depth, const std::string& format,
                        const NiahTokenizer& tok, int64_t reserve = 200);

}  // namespace headscope
