// Read-only memory-mapped file: checkpoint readers parse headers from it and hand out
// zero-copy views of tensor data. Every bounds check goes through `at()`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace headscope {

// A checked view of bytes in memory (a mapped file, or a fuzzer's input): parsers read only through at().
struct ByteView {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  std::string name;  // file path, for messages
  // Pointer to [offset, offset+len) or an Error naming `what` when that range is past the end.
  const uint8_t* at(uint64_t offset, uint64_t len, const char* what) const;
};

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error (missing, unreadable, a folder)
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  ByteView bytes() const { return ByteView{data_, size_, path_}; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace headscope
