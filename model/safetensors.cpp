// safetensors parsing with full validation (see safetensors.h).
#include "model/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace headscope {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<TensorInfo> safetensors_parse(const ByteView& b) {
  uint64_t header_len;
  std::memcpy(&header_len, b.at(0, 8, "safetensors header length"), 8);
  if (header_len > (100u << 20))
    throw Error(b.name + ": not a safetensors file: declared header length " + std::to_string(header_len) +
                " bytes is implausible");
  const char* header = reinterpret_cast<const char*>(b.at(8, header_len, "safetensors JSON header"));
  nlohmann::json j = nlohmann::json::parse(header, header + header_len, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw Error(b.name + ": not a safetensors file: the header is not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_len = b.size - data_start;
  std::vector<TensorInfo> out;
  for (auto& [name, t] : j.items()) {
    if (name == "__metadata__") continue;
    const std::string where = b.name + ": tensor '" + name + "': ";
    if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") || !t.contains("data_offsets") ||
        !t["dtype"].is_string() || !t["shape"].is_array() || !t["data_offsets"].is_array() ||
        t["data_offsets"].size() != 2)
      throw Error(where + "malformed entry (needs dtype, shape, data_offsets)");
    TensorInfo ti;
    ti.name = name;
    const std::string dt = t["dtype"];
    int64_t elsize;
    if (dt == "F32") ti.type = GgmlType::F32, elsize = 4;
    else if (dt == "F16") ti.type = GgmlType::F16, elsize = 2;
    else if (dt == "BF16") ti.type = GgmlType::BF16, elsize = 2;
    else throw Error(where + "unsupported dtype " + dt + " (supported: F32, F16, BF16)");
    if (t["shape"].size() > 8) throw Error(where + "too many dimensions");
    uint64_t numel = 1;
    for (auto& d : t["shape"]) {
      if (!d.is_number_unsigned()) throw Error(where + "shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 40) || (v && numel > (1ull << 40) / v)) throw Error(where + "shape is implausibly large");
      numel *= v;
      ti.shape.push_back(static_cast<int64_t>(v));
    }
    auto& off = t["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + "data_offsets must be non-negative integers");
    uint64_t begin = off[0], end = off[1];
    if (end < begin || end > data_len)
      throw Error(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") lie outside the file's data section (" + std::to_string(data_len) +
                  " bytes); the file is truncated or corrupt");
    if (end - begin != numel * static_cast<uint64_t>(elsize))
      throw Error(where + "shape " + shape_str(ti.shape) + " x " + dt + " needs " +
                  std::to_string(numel * elsize) + " bytes but data_offsets give " + std::to_string(end - begin));
    ti.data = b.data + data_start + begin;
    ti.nbytes = end - begin;
    out.push_back(std::move(ti));
  }
  return out;
}

}  // namespace headscope
