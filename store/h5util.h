// Small helpers over HDF5's C API for the run-file code in store/: RAII handles, checked calls whose errors
// carry HDF5's own innermost message (e.g. "No space left on device"), attributes, and row-range I/O.
// Internal to store/; nothing outside it includes HDF5.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace headscope::h5 {

// The innermost message on HDF5's error stack (the system error text when a write failed), or "".
std::string error_detail();

// Throw headscope::Error("HDF5: <what> failed: <detail>") when an HDF5 call failed.
hid_t check(hid_t id, const std::string& what);
void check_status(herr_t status, const std::string& what);

struct Handle {
  hid_t id = -1;
  herr_t (*closer)(hid_t) = nullptr;
  Handle() = default;
  Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), closer(c) {}
  Handle(Handle&& o) noexcept : id(o.id), closer(o.closer) { o.id = -1; }
  Handle& operator=(Handle&& o) noexcept {
    reset();
    id = o.id, closer = o.closer, o.id = -1;
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset() {
    if (id >= 0 && closer) closer(id);
    id = -1;
  }
  // Closes now and reports failure (a file's close is where its last buffered writes happen).
  void close_checked(const std::string& what) {
    const hid_t i = id;
    id = -1;
    if (i >= 0 && closer) check_status(closer(i), what);
  }
  operator hid_t() const { return id; }
};

// Every file store/ writes begins with a checksum block: HDF5 leaves the first kUserBlock bytes of a file to its
// user (the "userblock"), and headscope keeps there the length and the SHA-256 of everything after it. A damaged
// file (truncated, bytes changed) is then refused before HDF5 reads it: HDF5 1.10 checksums its metadata but not
// its global heap (variable-length strings), and some damage there crashes it. h5py and HDF5 tools skip the block.
constexpr size_t kUserBlock = 512;

Handle file_create(const std::string& path);     // truncates, with a checksum block; errors become headscope::Error
Handle file_open_read(const std::string& path);  // id < 0 when it cannot be opened (no throw)
// Builds an HDF5 file in memory with `fill`, then writes its bytes (checksum block filled) to `path` with plain
// POSIX I/O, so that a full disk is an Error with the system's words and HDF5 never holds a half-written file. For
// files that fit in memory.
void write_file_via_image(const std::string& path, const std::function<void(hid_t)>& fill);
// Fills the checksum block of a closed file made by file_create.
void seal(const std::string& path);
// Checks a file's checksum block: true when it matches, false when the file has none (not written by this
// headscope); Error saying what is wrong otherwise (truncated, changed bytes).
bool verify_seal(const std::string& path);
// SHA-256 (hex) of a file's bytes from `offset` on, and of bytes in memory.
std::string sha256_of_file(const std::string& path, uint64_t offset = 0);
std::string sha256_of_bytes(const char* data, size_t n);
Handle str_type();                               // variable-length UTF-8 string
Handle link_plist();                             // link creation that makes intermediate groups ("a/b/c")

void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, int64_t value);
bool has_attr(hid_t obj, const std::string& name);
std::string read_str_attr(hid_t obj, const std::string& name);  // "" when absent
int64_t read_int_attr(hid_t obj, const std::string& name);      // throws when absent

// Dimensions of a dataset.
std::vector<hsize_t> dims(hid_t ds);
bool exists(hid_t loc, const std::string& path);  // every link on the path exists

// Reads rows [start, start + n) (first dimension) of a dataset into `out`.
void read_rows(hid_t ds, hid_t mem_type, void* out, hsize_t start, hsize_t n);

}  // namespace headscope::h5

namespace headscope {
struct ProbeResult;
namespace h5 {
// Writes a probe's combined results (attributes and /probes/<name>/scores) into a run file being written
// (run_file.cpp; the reader is RunReader::probe).
void write_probe_result(hid_t file, const ProbeResult& r);
}  // namespace h5
}  // namespace headscope
