// HDF5 helpers for store/ (see h5util.h).
#include "store/h5util.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"

namespace headscope::h5 {

std::string error_detail() {
  std::string detail;
  auto walk = [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
    if (n == 0 && e->desc) *static_cast<std::string*>(data) = e->desc;  // upward walk: the innermost first
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk, &detail);
  // A failed system call reads "... errno = 28, error message = 'No space left on device', ...": keep the message.
  const std::string key = "error message = '";
  const size_t p = detail.find(key);
  if (p != std::string::npos) {
    const size_t q = detail.find('\'', p + key.size());
    return detail.substr(p + key.size(), q == std::string::npos ? std::string::npos : q - p - key.size());
  }
  return detail;
}

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) {
    const std::string d = error_detail();
    throw Error("HDF5: " + what + " failed" + (d.empty() ? "" : ": " + d));
  }
  return id;
}

void check_status(herr_t s, const std::string& what) {
  if (s < 0) check(static_cast<hid_t>(-1), what);
}

namespace {
// HDF5 1.10 object formats: compact chunk indexes (single chunk, fixed array) and object headers. Virtual
// datasets need a 1.10 reader anyway.
Handle file_access(bool in_memory) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become headscope::Error, not HDF5's stack dump
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), "file access plist"), H5Pclose);
  check_status(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110), "format bounds");
  if (in_memory) check_status(H5Pset_fapl_core(fapl, 256 << 10, 0), "in-memory file");
  return fapl;
}
}  // namespace

namespace {

// File creation with room for the checksum block.
Handle file_creation() {
  Handle fcpl(check(H5Pcreate(H5P_FILE_CREATE), "file creation plist"), H5Pclose);
  check_status(H5Pset_userblock(fcpl, kUserBlock), "userblock");
  return fcpl;
}

constexpr char kSealMagic[] = "headscope checksum block\n";

// The block's text for `bytes` bytes after it with SHA-256 `hex`, zero-padded to kUserBlock.
std::string seal_block(uint64_t bytes, const std::string& hex) {
  std::string b = std::string(kSealMagic) + "bytes " + std::to_string(bytes) + "\nsha256 " + hex + "\n";
  b.resize(kUserBlock, '\0');
  return b;
}

std::string hex_of(const unsigned char* md, unsigned len) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) s += digits[md[i] >> 4], s += digits[md[i] & 15];
  return s;
}

}  // namespace

std::string sha256_of_bytes(const char* data, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
  return hex_of(md, len);
}

std::string sha256_of_file(const std::string& path, uint64_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for hashing");
  in.seekg(static_cast<std::streamoff>(offset));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return hex_of(md, len);
}

Handle file_create(const std::string& path) {
  Handle fapl = file_access(false);
  Handle fcpl = file_creation();
  return Handle(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), "create " + path), H5Fclose);
}

void seal(const std::string& path) {
  const uint64_t size = std::filesystem::file_size(path);
  if (size < kUserBlock) throw Error(path + ": too short to hold a checksum block");
  const std::string block = seal_block(size - kUserBlock, sha256_of_file(path, kUserBlock));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::pwrite(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size())) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    throw Error("cannot write " + path + ": " + std::strerror(e));
  }
  if (::close(fd) != 0) throw Error("cannot write " + path + ": " + std::strerror(errno));
}

bool verify_seal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open it");
  std::string block(kUserBlock, '\0');
  in.read(block.data(), static_cast<std::streamsize>(kUserBlock));
  const size_t got = static_cast<size_t>(in.gcount());
  if (block.compare(0, sizeof kSealMagic - 1, kSealMagic) != 0) return false;
  if (got < kUserBlock) throw Error("truncated inside its checksum block");
  uint64_t bytes = 0;
  char hex[65] = {0};
  if (std::sscanf(block.c_str() + sizeof kSealMagic - 1, "bytes %20" SCNu64 "\nsha256 %64[0-9a-f]", &bytes, hex) != 2 ||
      block != seal_block(bytes, hex))
    throw Error("its checksum block is damaged");
  const uint64_t size = std::filesystem::file_size(path) - kUserBlock;
  if (size < bytes) throw Error("truncated: it holds " + std::to_string(size) + " of its " + std::to_string(bytes) + " bytes");
  if (size > bytes) throw Error("it holds " + std::to_string(size - bytes) + " bytes more than it was written with");
  if (sha256_of_file(path, kUserBlock) != hex) throw Error("its bytes have changed since it was written (checksum mismatch)");
  return true;
}

namespace {
// The core driver's memory, through HDF5's file-image callbacks: at close, the buffer holds the finished file.
struct ImageCapture {
  std::map<void*, size_t> sizes;
  std::vector<char> bytes;
  static void* alloc(size_t n, H5FD_file_image_op_t, void* u) { return track(u, nullptr, n); }
  static void* copy(void* d, const void* s, size_t n, H5FD_file_image_op_t, void*) { return std::memcpy(d, s, n); }
  static void* resize(void* p, size_t n, H5FD_file_image_op_t, void* u) { return track(u, p, n); }
  static void* track(void* u, void* old, size_t n) {
    auto* c = static_cast<ImageCapture*>(u);
    void* p = std::realloc(old, n);
    if (p) c->sizes.erase(old), c->sizes[p] = n;
    return p;
  }
  static herr_t release(void* p, H5FD_file_image_op_t op, void* u) {
    auto* c = static_cast<ImageCapture*>(u);
    if (p && op == H5FD_FILE_IMAGE_OP_FILE_CLOSE) {
      const char* b = static_cast<const char*>(p);
      size_t n = c->sizes[p];
      // The buffer grows in steps; the superblock (version 2/3, 8-byte addresses) says where the file ends.
      if (n >= 48 && std::memcmp(b, "\x89HDF\r\n\x1a\n", 8) == 0 && (b[8] == 2 || b[8] == 3) && b[9] == 8) {
        uint64_t eof;
        std::memcpy(&eof, b + 28, 8);
        n = std::min<size_t>(n, static_cast<size_t>(eof));
      }
      c->bytes.assign(b, b + n);
    }
    c->sizes.erase(p);
    std::free(p);
    return 0;
  }
  static void* same(void* u) { return u; }
  static herr_t keep(void*) { return 0; }
};
}  // namespace

void write_file_via_image(const std::string& path, const std::function<void(hid_t)>& fill) {
  ImageCapture cap;
  {
    Handle fapl = file_access(true);
    H5FD_file_image_callbacks_t cb{&ImageCapture::alloc, &ImageCapture::copy, &ImageCapture::resize, &ImageCapture::release,
                                   &ImageCapture::same, &ImageCapture::keep, &cap};
    check_status(H5Pset_file_image_callbacks(fapl, &cb), "file image callbacks");
    Handle fcpl = file_creation();
    Handle f(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), "create " + path + " in memory"), H5Fclose);
    fill(f);
    f.close_checked("close " + path + " in memory");
  }
  if (cap.bytes.size() < kUserBlock + 56) throw Error("HDF5: no file image for " + path);
  // With a userblock the core driver hands back its whole allocation: keep the file's bytes, up to the end-of-file
  // address of its superblock (version 2/3, 8-byte addresses: the byte count of the whole file, block included).
  const char* sb = cap.bytes.data() + kUserBlock;
  if (std::memcmp(sb, "\x89HDF\r\n\x1a\n", 8) != 0 || (sb[8] != 2 && sb[8] != 3) || sb[9] != 8)
    throw Error("HDF5: unexpected superblock in the file image for " + path);
  uint64_t eof = 0;
  std::memcpy(&eof, sb + 28, 8);  // little-endian on every platform headscope builds on
  if (eof < kUserBlock + 56 || eof > cap.bytes.size()) throw Error("HDF5: unexpected end of file in the image for " + path);
  cap.bytes.resize(static_cast<size_t>(eof));
  const std::string block = seal_block(cap.bytes.size() - kUserBlock, sha256_of_bytes(cap.bytes.data() + kUserBlock, cap.bytes.size() - kUserBlock));
  std::memcpy(cap.bytes.data(), block.data(), kUserBlock);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < cap.bytes.size()) {
    const ssize_t w = ::write(fd, cap.bytes.data() + done, cap.bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = w < 0 ? errno : ENOSPC;
      ::close(fd), ::unlink(path.c_str());
      throw Error("cannot write " + path + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(w);
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(e));
  }
}

Handle file_open_read(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
}

Handle str_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return Handle(t, H5Tclose);
}

Handle link_plist() {
  Handle p(check(H5Pcreate(H5P_LINK_CREATE), "link plist"), H5Pclose);
  check_status(H5Pset_create_intermediate_group(p, 1), "intermediate groups");
  return p;
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = str_type();
  Handle space(check(H5Screate(H5S_SCALAR), "scalar space"), H5Sclose);
  Handle attr(check(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name), H5Aclose);
  const char* p = value.c_str();
  check_status(H5Awrite(attr, type, &p), "write attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, int64_t value) {
  Handle space(check(H5Screate(H5S_SCALAR), "scalar space"), H5Sclose);
  Handle attr(check(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name), H5Aclose);
  check_status(H5Awrite(attr, H5T_NATIVE_INT64, &value), "write attribute " + name);
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string read_str_attr(hid_t obj, const std::string& name) {
  if (!has_attr(obj, name)) return "";
  Handle attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name), H5Aclose);
  Handle type = str_type();
  char* p = nullptr;
  check_status(H5Aread(attr, type, &p), "read attribute " + name);
  std::string s = p ? p : "";
  H5free_memory(p);
  return s;
}

int64_t read_int_attr(hid_t obj, const std::string& name) {
  Handle attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name), H5Aclose);
  int64_t v = 0;
  check_status(H5Aread(attr, H5T_NATIVE_INT64, &v), "read attribute " + name);
  return v;
}

std::vector<hsize_t> dims(hid_t ds) {
  Handle space(check(H5Dget_space(ds), "dataspace"), H5Sclose);
  std::vector<hsize_t> d(static_cast<size_t>(H5Sget_simple_extent_ndims(space)));
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  return d;
}

bool exists(hid_t loc, const std::string& path) {
  size_t p = 0;
  while (true) {
    const size_t q = path.find('/', p);
    if (H5Lexists(loc, path.substr(0, q).c_str(), H5P_DEFAULT) <= 0) return false;
    if (q == std::string::npos) return true;
    p = q + 1;
  }
}

void read_rows(hid_t ds, hid_t mem_type, void* out, hsize_t start_row, hsize_t n) {
  std::vector<hsize_t> d = dims(ds);
  if (n == 0) return;
  if (start_row + n > d[0]) throw Error("run file: rows past the end of a dataset");
  std::vector<hsize_t> start(d.size(), 0), count = d;
  start[0] = start_row, count[0] = n;
  Handle fspace(check(H5Dget_space(ds), "dataspace"), H5Sclose);
  check_status(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), "select");
  Handle mspace(check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), "memory space"), H5Sclose);
  check_status(H5Dread(ds, mem_type, mspace, fspace, H5P_DEFAULT, out), "read");
}

}  // namespace headscope::h5
