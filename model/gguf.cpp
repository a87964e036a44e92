// GGUF parsing with full validation (see gguf.h). Layout: magic "GGUF", version, tensor count,
// metadata count, metadata key/values, tensor infos, padding to `general.alignment`, tensor data.
#include "model/gguf.h"

#include <cstring>

#include "core/error.h"

namespace headscope {
namespace {

enum : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64
};

struct Cursor {
  const ByteView& b;
  uint64_t pos = 0;
  template <class T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, b.at(pos, sizeof(T), what), sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    uint64_t n = read<uint64_t>(what);
    const uint8_t* p = b.at(pos, n, what);  // a huge declared length fails here, before any allocation
    pos += n;
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  uint64_t remaining() const { return b.size - pos; }
};

uint64_t value_min_bytes(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: case kString: return 8;
    case kArray: return 12;
    default: return 0;
  }
}

nlohmann::json read_value(Cursor& c, uint32_t type, const std::string& key, int depth) {
  switch (type) {
    case kU8: return c.read<uint8_t>("metadata value");
    case kI8: return c.read<int8_t>("metadata value");
    case kU16: return c.read<uint16_t>("metadata value");
    case kI16: return c.read<int16_t>("metadata value");
    case kU32: return c.read<uint32_t>("metadata value");
    case kI32: return c.read<int32_t>("metadata value");
    case kF32: return c.read<float>("metadata value");
    case kBool: return c.read<uint8_t>("metadata value") != 0;
    case kU64: return c.read<uint64_t>("metadata value");
    case kI64: return c.read<int64_t>("metadata value");
    case kF64: return c.read<double>("metadata value");
    case kString: return c.str("metadata string");
    case kArray: {
      if (depth > 2) throw Error(c.b.name + ": metadata '" + key + "': arrays nested too deeply");
      uint32_t et = c.read<uint32_t>("metadata array type");
      uint64_t n = c.read<uint64_t>("metadata array length");
      uint64_t min = value_min_bytes(et);
      if (min == 0)
        throw Error(c.b.name + ": metadata '" + key + "': unknown array element type " + std::to_string(et));
      if (n > c.remaining() / min)
        throw Error(c.b.name + ": truncated or corrupt: metadata '" + key + "' declares " + std::to_string(n) +
                    " elements, more than the file can hold");
      nlohmann::json arr = nlohmann::json::array();
      arr.get_ref<nlohmann::json::array_t&>().reserve(n);
      for (uint64_t i = 0; i < n; ++i) arr.push_back(read_value(c, et, key, depth + 1));
      return arr;
    }
    default:
      throw Error(c.b.name + ": metadata '" + key + "': unknown value type " + std::to_string(type));
  }
}

}  // namespace

GgufFile gguf_parse(const ByteView& b) {
  GgufFile g;
  g.name = b.name;
  Cursor c{b};
  uint32_t magic = c.read<uint32_t>("GGUF magic");
  if (magic != 0x46554747u) throw Error(b.name + ": not a GGUF file (wrong magic bytes)");
  g.version = c.read<uint32_t>("GGUF version");
  if (g.version != 2 && g.version != 3)
    throw Error(b.name + ": GGUF version " + std::to_string(g.version) + " is not supported (supported: 2, 3)");
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key/value needs at least 8 (key length) + 4 (type) + 1 bytes, each tensor info at least 8+4+8+4+8.
  if (n_kv > c.remaining() / 13 || n_tensors > c.remaining() / 32)
    throw Error(b.name + ": truncated or corrupt: declares " + std::to_string(n_tensors) + " tensors and " +
                std::to_string(n_kv) + " metadata entries, more than the file can hold");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.str("metadata key");
    uint32_t type = c.read<uint32_t>("metadata type");
    g.metadata[key] = read_value(c, type, key, 0);
  }
  if (g.metadata.contains("general.alignment")) {
    auto& a = g.metadata["general.alignment"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || (a.get<uint64_t>() & (a.get<uint64_t>() - 1)))
      throw Error(b.name + ": general.alignment must be a power of two");
    g.alignment = a.get<uint64_t>();
  }
  std::vector<uint64_t> offsets;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = c.str("tensor name");
    uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > 4)
      throw Error(b.name + ": tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    std::vector<int64_t> ne;
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t v = c.read<uint64_t>("tensor dimension");
      if (v > (1ull << 40) || (v && numel > (1ull << 40) / v))
        throw Error(b.name + ": tensor '" + t.name + "' has an implausibly large shape");
      numel *= v;
      ne.push_back(static_cast<int64_t>(v));
    }
    uint32_t type = c.read<uint32_t>("tensor type");
    if (!ggml_type_supported(type))
      throw Error(b.name + ": tensor '" + t.name + "' uses GGML type " + std::to_string(type) +
                  ", which headscope cannot dequantise (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)");
    t.type = static_cast<GgmlType>(type);
    t.shape.assign(ne.rbegin(), ne.rend());
    if (ne[0] % ggml_block_size(t.type) != 0)
      throw Error(b.name + ": tensor '" + t.name + "': row length " + std::to_string(ne[0]) +
                  " is not a multiple of the " + ggml_type_name(t.type) + " block size");
    t.nbytes = static_cast<uint64_t>(ggml_row_bytes(t.type, ne[0])) * (ne[0] ? numel / ne[0] : 0);
    offsets.push_back(c.read<uint64_t>("tensor data offset"));
    g.tensors.push_back(std::move(t));
  }
  g.data_offset = (c.pos + g.alignment - 1) / g.alignment * g.alignment;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    auto& t = g.tensors[i];
    if (offsets[i] % g.alignment != 0)
      throw Error(b.name + ": tensor '" + t.name + "' data offset is not aligned to " + std::to_string(g.alignment));
    if (offsets[i] > b.size)
      throw Error(b.name + ": truncated or corrupt: tensor '" + t.name + "' starts past the end of the file");
    t.data = b.at(g.data_offset + offsets[i], t.nbytes, ("data of tensor '" + t.name + "'").c_str());
  }
  return g;
}

std::string GgufFile::get_str(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_string()) throw Error(name + ": missing or non-string metadata '" + key + "'");
  return *it;
}
int64_t GgufFile::get_int(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_number_integer())
    throw Error(name + ": missing or non-integer metadata '" + key + "'");
  return it->get<int64_t>();
}
int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double GgufFile::get_float(const std::string& key, double fallback) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) return fallback;
  if (!it->is_number()) throw Error(name + ": metadata '" + key + "' is not a number");
  return it->get<double>();
}
bool GgufFile::get_bool(const std::string& key, bool fallback) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) return fallback;
  if (!it->is_boolean()) throw Error(name + ": metadata '" + key + "' is not a boolean");
  return it->get<bool>();
}

}  // namespace headscope
