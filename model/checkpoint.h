// A checkpoint on disk, whatever its format: one GGUF file, one safetensors file, a sharded safetensors
// set (model.safetensors.index.json), or a folder holding either with its HF config.json.
// Pickle-based files (.bin/.pt/.pth/.ckpt) are refused: loading them would execute code from the file.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/gguf.h"
#include "model/mapped_file.h"
#include "model/tensor_info.h"

namespace headscope {

class Checkpoint {
 public:
  enum class Format { GGUF, Safetensors };

  static std::unique_ptr<Checkpoint> open(const std::string& path);  // throws Error

  Format format() const { return format_; }
  const std::string& path() const { return path_; }           // what the user named
  const std::vector<std::string>& files() const { return files_; }  // files read, for hashing
  const nlohmann::json& hf_config() const { return hf_config_; }     // config.json (safetensors only)
  const nlohmann::json& hf_tokenizer() const { return hf_tokenizer_; }  // tokenizer.json beside it, or null
  const std::string& folder() const { return folder_; }
  const GgufFile* gguf() const { return gguf_ ? &*gguf_ : nullptr; }

  const TensorInfo* find(const std::string& name) const;
  const TensorInfo& get(const std::string& name) const;  // throws Error "missing tensor"
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // The storage type most weights use ("Q4_1", "F32", ...).
  std::string dominant_type() const;

 private:
  Format format_ = Format::Safetensors;
  std::string path_, folder_;
  std::vector<std::string> files_;
  std::vector<std::unique_ptr<MappedFile>> maps_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  nlohmann::json hf_config_, hf_tokenizer_;
  std::optional<GgufFile> gguf_;
  void add_tensors(std::vector<TensorInfo> ts);
};

}  // namespace headscope
