// GGUF v2/v3 reader: metadata key/values (as JSON values) and the tensor table.
// Every count, length and offset is checked against the file before it is used.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/mapped_file.h"
#include "model/tensor_info.h"

namespace headscope {

struct GgufFile {
  uint32_t version = 0;
  nlohmann::json metadata = nlohmann::json::object();  // key -> value (arrays become JSON arrays)
  std::vector<TensorInfo> tensors;                      // shape outermost first
  uint64_t alignment = 32;
  uint64_t data_offset = 0;

  // Typed metadata access; `get_*` throw Error naming the key when absent or of the wrong type.
  bool has(const std::string& key) const { return metadata.contains(key); }
  std::string get_str(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string name;  // file path, for messages
};

GgufFile gguf_parse(const ByteView& bytes);

}  // namespace headscope
