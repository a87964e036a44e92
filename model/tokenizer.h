// Tokenizers: byte-level BPE (GPT-2, Qwen, SmolLM, Llama 3) from an HF tokenizer.json, from GGUF metadata
// (tokenizer.ggml.model = gpt2) or from GPT-2's encoder.json + vocab.bpe; SentencePiece-style vocabularies
// with scores and byte fallback from GGUF (tokenizer.ggml.model = llama). Added/special tokens written in the
// text are recognised as tokens. Decoding is exact: decode(encode(s)) == s for any valid UTF-8 s.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace headscope {

class GgufFile;

class Tokenizer {
 public:
  static std::unique_ptr<Tokenizer> from_hf_json(const nlohmann::json& tokenizer_json, const std::string& where);
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& gguf);
  static std::unique_ptr<Tokenizer> from_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe);
  ~Tokenizer();

  // add_special: prepend BOS when the model's tokenizer config says so.
  std::vector<int32_t> encode(const std::string& text, bool add_special = true) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string token_text(int32_t id) const;  // the bytes one token stands for (may be a partial UTF-8 sequence)
  int64_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  // BOS, EOS and the added/special tokens (chat markers and the like): what random-token data leaves out.
  bool is_special(int32_t id) const;
  bool add_bos() const;
  std::string kind() const;  // "bpe" (byte-level) or "spm"
  // The chat template the checkpoint carries (GGUF tokenizer.chat_template, HF tokenizer_config.json), or "".
  const std::string& chat_template() const;
  void set_chat_template(const std::string& t);

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace headscope
