// HDF5 run file writer (background thread) and reader (see run_file.h). HDF5's C API is used directly; every
// call is checked and turned into a headscope::Error naming the file.
#include "store/run_file.h"

#include <ATen/ATen.h>
#include <hdf5.h>
#include <openssl/evp.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "model/error.h"

namespace headscope {
namespace {

constexpr int kSchemaVersion = 1;

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) throw Error("HDF5: " + what + " failed");
  return id;
}
void check_status(herr_t s, const std::string& what) {
  if (s < 0) throw Error("HDF5: " + what + " failed");
}

// RAII for HDF5 handles.
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
  ~Handle() { reset(); }
  void reset() {
    if (id >= 0 && closer) closer(id);
    id = -1;
  }
  operator hid_t() const { return id; }
};

hid_t vlen_str_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void write_str_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type(vlen_str_type(), H5Tclose);
  Handle space(check(H5Screate(H5S_SCALAR), "scalar space"), H5Sclose);
  Handle attr(check(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name), H5Aclose);
  const char* p = value.c_str();
  check_status(H5Awrite(attr, type, &p), "write attribute " + name);
}

void write_int_attr(hid_t obj, const std::string& name, int64_t value) {
  Handle space(check(H5Screate(H5S_SCALAR), "scalar space"), H5Sclose);
  Handle attr(check(H5Acreate2(obj, name.c_str(), H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name), H5Aclose);
  check_status(H5Awrite(attr, H5T_NATIVE_INT64, &value), "write attribute " + name);
}

std::string read_str_attr(hid_t obj, const std::string& name) {
  if (H5Aexists(obj, name.c_str()) <= 0) return "";
  Handle attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name), H5Aclose);
  Handle type(vlen_str_type(), H5Tclose);
  char* p = nullptr;
  check_status(H5Aread(attr, type, &p), "read attribute " + name);
  std::string s = p ? p : "";
  H5free_memory(p);
  return s;
}

// An extendable, chunked, shuffle+gzip dataset of rank 1 or 3 ([rows] or [rows, L, H]).
hid_t create_extendable(hid_t parent, const std::string& name, hid_t type, const std::vector<hsize_t>& inner, hsize_t chunk_rows) {
  std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{chunk_rows};
  for (hsize_t d : inner) dims.push_back(d), maxdims.push_back(d), chunk.push_back(d);
  Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()), "space " + name), H5Sclose);
  Handle plist(check(H5Pcreate(H5P_DATASET_CREATE), "plist"), H5Pclose);
  check_status(H5Pset_chunk(plist, static_cast<int>(chunk.size()), chunk.data()), "chunk " + name);
  if (H5Tis_variable_str(type) <= 0) {
    check_status(H5Pset_shuffle(plist), "shuffle " + name);
    check_status(H5Pset_deflate(plist, 4), "gzip " + name);
  }
  return check(H5Dcreate2(parent, name.c_str(), type, space, H5P_DEFAULT, plist, H5P_DEFAULT), "create dataset " + name);
}

// Appends n rows (row size = product of the inner dims) to an extendable dataset.
void append_rows(hid_t ds, hid_t mem_type, const void* data, hsize_t n) {
  if (n == 0) return;
  Handle space(check(H5Dget_space(ds), "dataspace"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::vector<hsize_t> start(rank, 0), count = dims;
  start[0] = dims[0], count[0] = n;
  dims[0] += n;
  check_status(H5Dset_extent(ds, dims.data()), "extend dataset");
  Handle fspace(check(H5Dget_space(ds), "dataspace"), H5Sclose);
  check_status(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), "select");
  Handle mspace(check(H5Screate_simple(rank, count.data(), nullptr), "memory space"), H5Sclose);
  check_status(H5Dwrite(ds, mem_type, mspace, fspace, H5P_DEFAULT, data), "write");
}

// Reads rows [start, start + n) of a dataset into `out` (which must hold n rows).
void read_rows(hid_t ds, hid_t mem_type, void* out, hsize_t start_row, hsize_t n) {
  Handle fspace(check(H5Dget_space(ds), "dataspace"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(fspace);
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(fspace, dims.data(), nullptr);
  if (start_row + n > dims[0]) throw Error("run file: rows past the end of a dataset");
  std::vector<hsize_t> start(rank, 0), count = dims;
  start[0] = start_row, count[0] = n;
  check_status(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), "select");
  Handle mspace(check(H5Screate_simple(rank, count.data(), nullptr), "memory space"), H5Sclose);
  check_status(H5Dread(ds, mem_type, mspace, fspace, H5P_DEFAULT, out), "read");
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::map<std::string, at::Tensor> run_item_stats(const ForwardResult& r) {
  if (r.attn.empty()) throw Error("run_item_stats: the forward pass recorded no attention statistics");
  std::map<std::string, std::vector<at::Tensor>> per;
  for (const AttnLayerStats& a : r.attn) {
    per["entropy"].push_back(a.entropy), per["max_prob"].push_back(a.max_prob), per["argmax"].push_back(a.argmax);
    per["sink_mass"].push_back(a.sink_mass), per["mean_dist"].push_back(a.mean_dist), per["waad"].push_back(a.waad);
    per["key_recv"].push_back(a.key_recv);
  }
  std::map<std::string, at::Tensor> out;
  for (auto& [name, layers] : per) out[name] = at::stack(layers, 0).permute({2, 0, 1}).contiguous();  // [L,H,T] -> [T,L,H]
  return out;
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for hashing");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) std::snprintf(b, sizeof b, "%02x", md[i]), hex += b;
  return hex;
}

struct RunWriter::Impl {
  std::string path;
  Handle file, items, stats, text, meta, offset, length, tokens;
  std::map<std::string, Handle> stat_ds;
  int64_t rows = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<RunItem> queue;
  bool closing = false;
  std::exception_ptr error;
  std::thread thread;

  void write(const RunItem& it) {
    const hsize_t T = it.tokens.size();
    Handle st(vlen_str_type(), H5Tclose);
    const char* tp = it.text.c_str();
    append_rows(text, st, &tp, 1);
    std::string m = it.meta.is_null() ? "null" : it.meta.dump();
    const char* mp = m.c_str();
    append_rows(meta, st, &mp, 1);
    int64_t off = rows;
    int32_t len = static_cast<int32_t>(T);
    append_rows(tokens, H5T_NATIVE_INT32, it.tokens.data(), T);
    for (auto& [name, t] : it.stats) {
      if (t.dim() != 3 || t.size(0) != static_cast<int64_t>(T))
        throw Error(path + ": statistic " + name + " must be [T, L, H] for the item's " + std::to_string(T) + " tokens");
      const bool is_int = t.scalar_type() == at::kInt;
      auto dsit = stat_ds.find(name);
      if (dsit == stat_ds.end()) {
        Handle ds(create_extendable(stats, name, is_int ? H5T_STD_I32LE : H5T_IEEE_F32LE,
                                    {static_cast<hsize_t>(t.size(1)), static_cast<hsize_t>(t.size(2))}, 256),
                  H5Dclose);
        write_str_attr(ds, "shape", "[token, layer, head]");
        write_str_attr(ds, "units", name == "entropy" ? "nats" : (name == "mean_dist" || name == "waad") ? "tokens"
                                    : name == "argmax" ? "key position" : "probability");
        dsit = stat_ds.emplace(name, std::move(ds)).first;
      }
      at::Tensor c = t.contiguous();
      append_rows(dsit->second, is_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, c.data_ptr(), T);
    }
    // The item counts only once its offset and length are in: readers and resume use /items/length's extent.
    append_rows(offset, H5T_NATIVE_INT64, &off, 1);
    append_rows(length, H5T_NATIVE_INT32, &len, 1);
    rows += static_cast<int64_t>(T);
    check_status(H5Fflush(file, H5F_SCOPE_GLOBAL), "flush");
  }

  void loop() {
    for (;;) {
      RunItem it;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return closing || !queue.empty(); });
        if (queue.empty()) return;
        it = std::move(queue.front());
        queue.pop_front();
      }
      try {
        write(it);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        error = std::current_exception();
        queue.clear();
        return;
      }
      cv.notify_all();
    }
  }
};

RunWriter::RunWriter(const std::string& path, const RunHeader& header, bool overwrite) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  if (!overwrite && std::filesystem::exists(path))
    throw Error(path + ": exists; pass --force to overwrite it");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become headscope::Error, not HDF5's stack dump
  m.file = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (m.file.id < 0) throw Error(path + ": cannot create the run file (folder missing, no permission, or disk full?)");
  write_int_attr(m.file, "schema_version", kSchemaVersion);
  write_str_attr(m.file, "headscope_version", HEADSCOPE_VERSION);
  write_str_attr(m.file, "created", now_iso());
  write_str_attr(m.file, "command_line", header.command_line);
  Handle model(check(H5Gcreate2(m.file, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group /model"), H5Gclose);
  for (auto& [k, v] : header.model.items()) write_str_attr(model, k, v.is_string() ? v.get<std::string>() : v.dump());
  m.items = Handle(check(H5Gcreate2(m.file, "items", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group /items"), H5Gclose);
  m.stats = Handle(check(H5Gcreate2(m.file, "stats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group /stats"), H5Gclose);
  Handle st(vlen_str_type(), H5Tclose);
  m.text = Handle(create_extendable(m.items, "text", st, {}, 64), H5Dclose);
  m.meta = Handle(create_extendable(m.items, "meta", st, {}, 64), H5Dclose);
  m.offset = Handle(create_extendable(m.items, "offset", H5T_STD_I64LE, {}, 256), H5Dclose);
  m.length = Handle(create_extendable(m.items, "length", H5T_STD_I32LE, {}, 256), H5Dclose);
  m.tokens = Handle(create_extendable(m.file, "tokens", H5T_STD_I32LE, {}, 4096), H5Dclose);
  write_str_attr(m.tokens, "units", "token id");
  m.thread = std::thread([&m] { m.loop(); });
}

void RunWriter::append(RunItem item) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lk(m.mu);
  if (m.error) std::rethrow_exception(m.error);
  m.cv.wait(lk, [&] { return m.queue.size() < 8 || m.error; });  // bounded queue: the producer waits
  if (m.error) std::rethrow_exception(m.error);
  m.queue.push_back(std::move(item));
  m.cv.notify_all();
}

void RunWriter::close() {
  Impl& m = *impl_;
  if (!m.thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    m.closing = true;
  }
  m.cv.notify_all();
  m.thread.join();
  m.stat_ds.clear();
  m.text.reset(), m.meta.reset(), m.offset.reset(), m.length.reset(), m.tokens.reset(), m.items.reset(), m.stats.reset();
  m.file.reset();
  if (m.error) std::rethrow_exception(m.error);
}

RunWriter::~RunWriter() {
  try {
    close();
  } catch (...) {
  }
}

struct RunReader::Impl {
  std::string path;
  Handle file;
  Handle open_ds(const std::string& name) const {
    if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) throw Error(path + ": has no dataset " + name);
    return Handle(check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), "open " + name), H5Dclose);
  }
  int64_t extent(const std::string& name) const {
    Handle ds = open_ds(name);
    Handle space(H5Dget_space(ds), H5Sclose);
    hsize_t dims[4] = {0};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    return static_cast<int64_t>(dims[0]);
  }
  std::pair<int64_t, int32_t> span(int64_t item) const {
    int64_t off;
    int32_t len;
    read_rows(open_ds("items/offset"), H5T_NATIVE_INT64, &off, item, 1);
    read_rows(open_ds("items/length"), H5T_NATIVE_INT32, &len, item, 1);
    return {off, len};
  }
};

RunReader::RunReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
  impl_->file = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (impl_->file.id < 0) throw Error(path + ": not an HDF5 file, or damaged");
  if (H5Aexists(impl_->file, "schema_version") <= 0) throw Error(path + ": not a headscope run file (no schema_version)");
}

RunReader::~RunReader() = default;

nlohmann::json RunReader::header() const {
  nlohmann::json j;
  hid_t f = impl_->file;
  int64_t v = 0;
  {
    Handle a(H5Aopen(f, "schema_version", H5P_DEFAULT), H5Aclose);
    H5Aread(a, H5T_NATIVE_INT64, &v);
  }
  j["schema_version"] = v;
  for (const char* k : {"headscope_version", "created", "command_line"}) j[k] = read_str_attr(f, k);
  Handle model(H5Gopen2(f, "model", H5P_DEFAULT), H5Gclose);
  for (const char* k : {"path", "family", "architecture", "config", "checkpoint_sha256"}) j["model"][k] = read_str_attr(model, k);
  return j;
}

int64_t RunReader::n_items() const { return impl_->extent("items/length"); }

std::vector<std::string> RunReader::stat_names() const {
  std::vector<std::string> names;
  Handle g(check(H5Gopen2(impl_->file, "stats", H5P_DEFAULT), "open /stats"), H5Gclose);
  H5G_info_t info;
  H5Gget_info(g, &info);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char buf[256];
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf, sizeof buf, H5P_DEFAULT);
    names.push_back(buf);
  }
  return names;
}

std::string RunReader::text(int64_t item) const {
  if (item < 0 || item >= n_items()) throw Error(impl_->path + ": no item " + std::to_string(item));
  Handle st(vlen_str_type(), H5Tclose);
  char* p = nullptr;
  read_rows(impl_->open_ds("items/text"), st, &p, item, 1);
  std::string s = p ? p : "";
  H5free_memory(p);
  return s;
}

std::vector<int32_t> RunReader::tokens(int64_t item) const {
  if (item < 0 || item >= n_items()) throw Error(impl_->path + ": no item " + std::to_string(item));
  auto [off, len] = impl_->span(item);
  std::vector<int32_t> out(len);
  read_rows(impl_->open_ds("tokens"), H5T_NATIVE_INT32, out.data(), off, len);
  return out;
}

at::Tensor RunReader::stat(const std::string& name, int64_t item) const {
  if (item < 0 || item >= n_items()) throw Error(impl_->path + ": no item " + std::to_string(item));
  auto [off, len] = impl_->span(item);
  Handle ds = impl_->open_ds("stats/" + name);
  Handle space(H5Dget_space(ds), H5Sclose);
  hsize_t dims[3];
  H5Sget_simple_extent_dims(space, dims, nullptr);
  Handle type(H5Dget_type(ds), H5Tclose);
  const bool is_int = H5Tget_class(type) == H5T_INTEGER;
  at::Tensor out = at::empty({len, static_cast<int64_t>(dims[1]), static_cast<int64_t>(dims[2])}, is_int ? at::kInt : at::kFloat);
  read_rows(ds, is_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, out.data_ptr(), off, len);
  return out;
}

}  // namespace headscope
