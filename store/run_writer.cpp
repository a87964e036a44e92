// Crash-safe run file writer (see run_writer.h for the protocol, run_file.h for the schema).
#include "store/run_writer.h"

#include <ATen/ATen.h>
#include <c10/util/StringUtil.h>

#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include "core/error.h"
#include "store/h5util.h"
#include "store/run_file.h"

namespace headscope {

namespace fs = std::filesystem;
using h5::check;
using h5::check_status;
using h5::Handle;

namespace {

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string random_id() {
  std::random_device rd;
  char b[40];
  std::snprintf(b, sizeof b, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return b;
}

std::string part_file(int64_t k) {
  char b[32];
  std::snprintf(b, sizeof b, "part-%06lld.h5", static_cast<long long>(k));
  return b;
}

std::string part_group(int64_t k) {
  char b[32];
  std::snprintf(b, sizeof b, "parts/%06lld/", static_cast<long long>(k));
  return b;
}

// A fixed-size dataset [dims], numeric ones chunked (at most 1 MiB a chunk) with shuffle + gzip.
void write_array(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
                 const void* data, hid_t lcpl) {
  Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "space " + name), H5Sclose);
  Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "plist"), H5Pclose);
  if (H5Tis_variable_str(file_type) <= 0 && dims[0] > 0) {
    hsize_t row = H5Tget_size(file_type);
    for (size_t i = 1; i < dims.size(); ++i) row *= dims[i];
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (hsize_t{1} << 20) / row));
    check_status(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), "chunk " + name);
    check_status(H5Pset_shuffle(dcpl), "shuffle " + name);
    check_status(H5Pset_deflate(dcpl, 1), "gzip " + name);  // level 4 saves 1.6% of the bytes, costs 5% of the throughput
  }
  Handle ds(check(H5Dcreate2(loc, name.c_str(), file_type, space, lcpl, dcpl, H5P_DEFAULT), "create " + name), H5Dclose);
  if (dims[0] > 0) check_status(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write " + name);
}

// One mapping of a virtual dataset: destination rows [row0, row0 + rows) come from (file, dataset).
struct Mapping {
  hsize_t row0, rows;
  std::string file, dataset;
};

// HDF5 reads a virtual dataset's source file and dataset names as printf-like patterns (%b is a block number):
// a literal '%' must be written "%%".
std::string vds_name(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '%' ? std::string("%%") : std::string(1, c);
  return o;
}

hid_t create_virtual(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, const void* fill,
                     const std::vector<hsize_t>& dims, const std::vector<Mapping>& maps, hid_t lcpl) {
  Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "plist"), H5Pclose);
  check_status(H5Pset_fill_value(dcpl, mem_type, fill), "fill value " + name);
  const int rank = static_cast<int>(dims.size());
  Handle vspace(check(H5Screate_simple(rank, dims.data(), nullptr), "space " + name), H5Sclose);
  for (const Mapping& m : maps) {
    if (m.rows == 0) continue;
    std::vector<hsize_t> start(dims.size(), 0), count = dims;
    start[0] = m.row0, count[0] = m.rows;
    check_status(H5Sselect_hyperslab(vspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), "select " + name);
    Handle src(check(H5Screate_simple(rank, count.data(), nullptr), "source space"), H5Sclose);
    check_status(H5Pset_virtual(dcpl, vspace, vds_name(m.file).c_str(), vds_name(m.dataset).c_str(), src), "map " + name);
  }
  Handle space(check(H5Screate_simple(rank, dims.data(), nullptr), "space " + name), H5Sclose);
  return check(H5Dcreate2(loc, name.c_str(), file_type, space, lcpl, dcpl, H5P_DEFAULT), "create " + name);
}

// HDF5 types of an array's values, on disk and in memory.
hid_t file_type(const ArraySpec& a) { return a.is_int ? H5T_STD_I32LE : a.is_double ? H5T_IEEE_F64LE : H5T_IEEE_F32LE; }
hid_t mem_type(const ArraySpec& a) { return a.is_int ? H5T_NATIVE_INT32 : a.is_double ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT; }
at::ScalarType scalar_type(const ArraySpec& a) { return a.is_int ? at::kInt : a.is_double ? at::kDouble : at::kFloat; }

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

}  // namespace

struct RunWriter::Impl {
  std::string final_path;  // the run file the caller named
  std::string path;        // the file this job writes: final_path, or "<run>.replacement" while replacing a run
  std::string new_path;    // path + ".new": the whole file being written before its rename
  int lock_fd = -1;  // flock on "<run>.lock" while this job writes (a killed job's lock goes with its process)
  ~Impl() {
    if (lock_fd >= 0) ::unlink((final_path + ".lock").c_str()), ::close(lock_fd);
  }

  // Takes "<run>.lock". A lock file left by a killed job holds no lock and is simply locked again; the inode check
  // covers a job that removed its lock file between our open and our flock.
  void lock() {
    const std::string lock_path = final_path + ".lock";
    for (;;) {
      lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (lock_fd < 0) throw Error(final_path + ": cannot create the run file (cannot create " + lock_path + ": " + std::strerror(errno) + ")");
      if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd);
        lock_fd = -1;
        throw Error(final_path + ": another headscope job is writing this run file (it holds " + lock_path + ")");
      }
      struct stat held, named;
      if (fstat(lock_fd, &held) == 0 && ::stat(lock_path.c_str(), &named) == 0 && held.st_ino == named.st_ino && held.st_dev == named.st_dev)
        return;
      ::close(lock_fd);  // that file was removed: lock the one now there
      lock_fd = -1;
    }
  }

  void set_work_path(const std::string& p) {
    path = p, new_path = p + ".new";
    parts_dir = fs::path(p + ".parts");
    parts_rel = fs::path(p).filename().string() + ".parts";
  }

  // The settings a run file was started with, or null when it is not a readable run file of this schema.
  static nlohmann::json saved_settings(const std::string& file) {
    Handle f = h5::file_open_read(file);
    if (f.id < 0) return nullptr;
    try {
      if (!h5::has_attr(f, "schema_version") || h5::read_int_attr(f, "schema_version") != kRunSchemaVersion) return nullptr;
      nlohmann::json j = nlohmann::json::parse(h5::read_str_attr(f, "settings"), nullptr, false);
      return j.is_discarded() ? nlohmann::json() : j;
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // A complete replacement takes the run file's place (one rename: the old run until then, the new one after).
  void promote() {
    if (path == final_path) return;
    fs::rename(path, final_path);
    remove_quietly(parts_dir), remove_quietly(new_path);
  }
  fs::path parts_dir;
  std::string parts_rel;  // parts_dir relative to the run file's folder (virtual dataset sources)
  RunPlan plan;
  nlohmann::json settings;
  std::string run_id, created, command_line;
  int64_t per = 1, n_parts = 0;
  std::vector<int64_t> row_off;  // [N + 1]
  std::vector<char> part_done;
  std::vector<int64_t> pending;
  bool complete = false, was_resumed = false;
  std::atomic<int64_t> committed{0};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<int64_t, std::map<std::string, at::Tensor>>> queue;
  bool closing = false;
  std::exception_ptr error;
  std::thread thread;
  std::map<int64_t, std::map<std::string, at::Tensor>> buffer;  // writer thread only

  int64_t n() const { return static_cast<int64_t>(plan.items.size()); }
  int64_t first(int64_t k) const { return k * per; }
  int64_t end(int64_t k) const { return std::min(n(), (k + 1) * per); }
  hsize_t rows(int64_t k) const { return static_cast<hsize_t>(row_off[end(k)] - row_off[first(k)]); }  // part k's token rows
  hsize_t rows(const ArraySpec& a, int64_t k) const { return a.per_item ? static_cast<hsize_t>(end(k) - first(k)) : rows(k); }
  hsize_t row0(const ArraySpec& a, int64_t k) const { return static_cast<hsize_t>(a.per_item ? first(k) : row_off[first(k)]); }
  std::vector<hsize_t> array_dims(const ArraySpec& a, hsize_t n_rows) const {
    std::vector<hsize_t> d{n_rows};
    for (int64_t x : a.inner) d.push_back(static_cast<hsize_t>(x));
    return d;
  }

  // The whole run file except the array data: items, tokens, attributes, and virtual datasets whose part k comes
  // from (src_file(k), src_prefix(k) + path).
  void write_layout(hid_t f, const std::string& status, const std::function<std::string(int64_t)>& src_file,
                    const std::function<std::string(int64_t)>& src_prefix) const {
    h5::write_attr(f, "schema_version", static_cast<int64_t>(kRunSchemaVersion));
    h5::write_attr(f, "headscope_version", std::string(HEADSCOPE_VERSION));
    h5::write_attr(f, "created", created);
    h5::write_attr(f, "command_line", command_line);
    h5::write_attr(f, "status", status);
    h5::write_attr(f, "run_id", run_id);
    h5::write_attr(f, "settings", settings.dump());
    h5::write_attr(f, "spec", plan.spec.dump());
    h5::write_attr(f, "items_per_part", per);
    Handle lcpl = h5::link_plist();
    {
      Handle model(check(H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group /model"), H5Gclose);
      for (auto& [k, v] : plan.model.items()) h5::write_attr(model, k, v.is_string() ? v.get<std::string>() : v.dump());
    }
    const hsize_t N = static_cast<hsize_t>(n()), total_rows = static_cast<hsize_t>(row_off.back());
    std::vector<const char*> texts, metas;
    std::vector<std::string> meta_s;
    std::vector<int32_t> lengths, tokens;
    for (const PlannedItem& it : plan.items) meta_s.push_back(it.meta.is_null() ? "null" : it.meta.dump());
    for (int64_t i = 0; i < n(); ++i) {
      texts.push_back(plan.items[i].text.c_str()), metas.push_back(meta_s[i].c_str());
      lengths.push_back(static_cast<int32_t>(plan.items[i].tokens.size()));
      tokens.insert(tokens.end(), plan.items[i].tokens.begin(), plan.items[i].tokens.end());
    }
    Handle st = h5::str_type();
    write_array(f, "items/text", st, st, {N}, texts.data(), lcpl);
    write_array(f, "items/meta", st, st, {N}, metas.data(), lcpl);
    write_array(f, "items/offset", H5T_STD_I64LE, H5T_NATIVE_INT64, {N}, row_off.data(), lcpl);
    write_array(f, "items/length", H5T_STD_I32LE, H5T_NATIVE_INT32, {N}, lengths.data(), lcpl);
    write_array(f, "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, {total_rows}, tokens.data(), lcpl);
    {
      Handle ds(check(H5Dopen2(f, "tokens", H5P_DEFAULT), "open tokens"), H5Dclose);
      h5::write_attr(ds, "units", std::string("token id"));
    }
    std::vector<Mapping> item_maps;
    for (int64_t k = 0; k < n_parts; ++k)
      item_maps.push_back({static_cast<hsize_t>(first(k)), static_cast<hsize_t>(end(k) - first(k)), src_file(k), src_prefix(k) + "recorded"});
    const uint8_t zero = 0;
    Handle rec(create_virtual(f, "items/recorded", H5T_STD_U8LE, H5T_NATIVE_UINT8, &zero, {N}, item_maps, lcpl), H5Dclose);
    h5::write_attr(rec, "units", std::string("1 = recorded"));
    for (const ArraySpec& a : plan.arrays) {
      std::vector<Mapping> maps;
      for (int64_t k = 0; k < n_parts; ++k) maps.push_back({row0(a, k), rows(a, k), src_file(k), src_prefix(k) + a.path});
      const float nan = NAN;
      const double nan64 = NAN;
      const int32_t minus1 = -1;
      const void* fill = a.is_int ? static_cast<const void*>(&minus1) : a.is_double ? static_cast<const void*>(&nan64) : &nan;
      Handle ds(create_virtual(f, a.path, file_type(a), mem_type(a), fill, array_dims(a, a.per_item ? N : total_rows), maps, lcpl),
                H5Dclose);
      h5::write_attr(ds, "units", a.units);
      h5::write_attr(ds, "shape", a.shape);
      h5::write_attr(ds, "rows", std::string(a.per_item ? "item" : "token"));
    }
  }

  // Writes `file_path` with write_layout (+ extra), closes it, renames it to `path`. Nothing is left on failure.
  void write_whole(const std::string& status, const std::function<std::string(int64_t)>& src_file,
                   const std::function<std::string(int64_t)>& src_prefix, const std::function<void(hid_t)>& extra) {
    remove_quietly(new_path);
    try {
      if (extra) {  // the final file: as large as the whole run, written by HDF5 in place
        Handle f = h5::file_create(new_path);
        extra(f);
        write_layout(f, status, src_file, src_prefix);
        f.close_checked("close " + new_path);
        h5::seal(new_path);
      } else {
        h5::write_file_via_image(new_path, [&](hid_t f) { write_layout(f, status, src_file, src_prefix); });
      }
      fs::rename(new_path, path);
    } catch (...) {
      remove_quietly(new_path);
      throw;
    }
  }

  void start_new() {
    remove_quietly(parts_dir);
    created = now_iso(), run_id = random_id(), command_line = plan.command_line;
    try {
      write_whole("recording", [&](int64_t k) { return parts_rel + "/" + part_file(k); }, [](int64_t) { return std::string(); },
                  nullptr);
      fs::create_directories(parts_dir);
    } catch (const std::exception& e) {
      throw Error(path + ": cannot create the run file (" + e.what() + ")");
    }
    for (int64_t i = 0; i < n(); ++i) pending.push_back(i);
  }

  bool part_valid(int64_t k) const {
    const fs::path p = parts_dir / part_file(k);
    if (!fs::exists(p)) return false;
    try {
      if (!h5::verify_seal(p.string())) return false;
    } catch (const std::exception&) {
      return false;  // damaged: recorded again
    }
    Handle f = h5::file_open_read(p.string());
    if (f.id < 0) return false;
    try {
      if (h5::read_str_attr(f, "run_id") != run_id || h5::read_int_attr(f, "part") != k) return false;
      if (!h5::exists(f, "recorded") || h5::dims(Handle(H5Dopen2(f, "recorded", H5P_DEFAULT), H5Dclose)) !=
                                             std::vector<hsize_t>{static_cast<hsize_t>(end(k) - first(k))})
        return false;
      for (const ArraySpec& a : plan.arrays) {
        if (!h5::exists(f, a.path)) return false;
        Handle ds(H5Dopen2(f, a.path.c_str(), H5P_DEFAULT), H5Dclose);
        if (ds.id < 0 || h5::dims(ds) != array_dims(a, rows(a, k))) return false;
      }
    } catch (const std::exception&) {
      return false;
    }
    return true;
  }

  void open_existing() {
    {
      bool sealed = false;
      try {
        sealed = h5::verify_seal(path);
      } catch (const Error& e) {
        throw ChoiceError(path + ": exists but is damaged (" + std::string(e.what()) + ")", ChoiceError::Remedy::overwrite);
      }
      Handle f = h5::file_open_read(path);
      if (f.id < 0) throw ChoiceError(path + ": exists but is not an HDF5 file (or is damaged)", ChoiceError::Remedy::overwrite);
      if (!h5::has_attr(f, "schema_version")) throw ChoiceError(path + ": exists but is not a headscope run file", ChoiceError::Remedy::overwrite);
      const int64_t v = h5::read_int_attr(f, "schema_version");
      if (v != kRunSchemaVersion)
        throw ChoiceError(path + ": written with run file schema " + std::to_string(v) + ", which cannot be resumed by this "
                          "headscope (schema " + std::to_string(kRunSchemaVersion) + "); record it again", ChoiceError::Remedy::overwrite);
      if (!sealed) throw ChoiceError(path + ": exists but is damaged (it has no checksum block)", ChoiceError::Remedy::overwrite);
      run_id = h5::read_str_attr(f, "run_id"), created = h5::read_str_attr(f, "created");
      command_line = h5::read_str_attr(f, "command_line");
      nlohmann::json saved = nlohmann::json::parse(h5::read_str_attr(f, "settings"), nullptr, false);
      if (saved != settings) {
        std::string diff;
        for (auto& [k, v] : settings.items())
          if (!saved.contains(k) || saved[k] != v) diff += (diff.empty() ? "" : ", ") + k;
        throw ChoiceError(path + ": was started with other settings (" + (diff.empty() ? std::string("settings") : diff) +
                              " differ); resume with the same model, data and options, or start over", ChoiceError::Remedy::overwrite);
      }
      if (h5::read_str_attr(f, "status") == "complete") {
        complete = true;
        remove_quietly(parts_dir), remove_quietly(new_path);  // leftovers of a job killed after its last rename
        f.close_checked("close " + path);
        promote();
        return;
      }
    }
    was_resumed = true;
    remove_quietly(new_path);
    fs::create_directories(parts_dir);
    for (auto& e : fs::directory_iterator(parts_dir))
      if (e.path().extension() == ".tmp") remove_quietly(e.path());  // a part that was being written
    part_done.assign(static_cast<size_t>(n_parts), 0);
    for (int64_t k = 0; k < n_parts; ++k) {
      if (part_valid(k)) {
        part_done[k] = 1, committed += end(k) - first(k);
      } else {
        remove_quietly(parts_dir / part_file(k));
        for (int64_t i = first(k); i < end(k); ++i) pending.push_back(i);
      }
    }
  }

  void write_part(int64_t k) {
    const int64_t n_k = end(k) - first(k);
    std::vector<at::Tensor> cat(plan.arrays.size());
    for (size_t a = 0; a < plan.arrays.size(); ++a) {
      std::vector<at::Tensor> parts;
      for (int64_t i = first(k); i < end(k); ++i) parts.push_back(buffer.at(i).at(plan.arrays[a].path));
      cat[a] = at::cat(parts, 0).contiguous();
    }
    const fs::path tmp = parts_dir / (part_file(k) + ".tmp"), fin = parts_dir / part_file(k);
    try {
      h5::write_file_via_image(tmp.string(), [&](hid_t f) {
        h5::write_attr(f, "run_id", run_id);
        h5::write_attr(f, "part", k);
        h5::write_attr(f, "first_item", first(k));
        Handle lcpl = h5::link_plist();
        std::vector<uint8_t> ones(static_cast<size_t>(n_k), 1);
        write_array(f, "recorded", H5T_STD_U8LE, H5T_NATIVE_UINT8, {static_cast<hsize_t>(n_k)}, ones.data(), lcpl);
        for (size_t a = 0; a < plan.arrays.size(); ++a) {
          const ArraySpec& s = plan.arrays[a];
          write_array(f, s.path, file_type(s), mem_type(s), array_dims(s, rows(s, k)), cat[a].data_ptr(), lcpl);
        }
      });
      fs::rename(tmp, fin);
    } catch (const std::exception& e) {
      remove_quietly(tmp);
      throw ChoiceError(path + ": cannot write part " + std::to_string(k) + " (" + e.what() + "); the run file keeps the " +
                            std::to_string(committed.load()) + " items recorded before it: make room and resume the job",
                        ChoiceError::Remedy::resume);
    }
    committed += n_k;
    part_done[k] = 1;
    for (int64_t i = first(k); i < end(k); ++i) buffer.erase(i);
  }

  void take(int64_t item, std::map<std::string, at::Tensor> arrays) {
    const int64_t T = static_cast<int64_t>(plan.items[item].tokens.size());
    for (const ArraySpec& a : plan.arrays) {
      auto it = arrays.find(a.path);
      if (it == arrays.end()) throw Error("run writer: item " + std::to_string(item) + " lacks " + a.path);
      std::vector<int64_t> want{a.per_item ? 1 : T};
      want.insert(want.end(), a.inner.begin(), a.inner.end());
      if (it->second.sizes() != at::IntArrayRef(want) || it->second.scalar_type() != scalar_type(a))
        throw Error("run writer: " + a.path + " of item " + std::to_string(item) + " has shape " + c10::str(it->second.sizes()) +
                    ", the plan says " + c10::str(at::IntArrayRef(want)));
    }
    buffer[item] = std::move(arrays);
    const int64_t k = item / per;
    for (int64_t i = first(k); i < end(k); ++i)
      if (!buffer.count(i)) return;
    write_part(k);
  }

  void loop() {
    for (;;) {
      std::pair<int64_t, std::map<std::string, at::Tensor>> job;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return closing || !queue.empty(); });
        if (queue.empty()) return;
        job = std::move(queue.front());
        queue.pop_front();
      }
      cv.notify_all();
      try {
        take(job.first, std::move(job.second));
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        error = std::current_exception();
        queue.clear();
        cv.notify_all();
        return;
      }
    }
  }

  void stop_thread() {
    if (!thread.joinable()) return;
    {
      std::lock_guard<std::mutex> lk(mu);
      closing = true;
    }
    cv.notify_all();
    thread.join();
  }

  // Every part is committed: copy them into one file and put it in place of the run file.
  // The final copy needs about the parts' bytes plus the run file's: check the disk and the file size limit
  // first, since HDF5 cannot recover from a write that fails half-way.
  void check_room() const {
    uintmax_t need = fs::file_size(path) + (uintmax_t{1} << 20);
    for (int64_t k = 0; k < n_parts; ++k) need += fs::file_size(parts_dir / part_file(k));
    struct statvfs sv;
    std::string why;
    if (statvfs(parts_dir.c_str(), &sv) == 0 && static_cast<uintmax_t>(sv.f_bavail) * sv.f_frsize < need)
      why = std::to_string(static_cast<uintmax_t>(sv.f_bavail) * sv.f_frsize >> 20) + " MiB free on the disk";
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
      why = "the file size limit (ulimit -f) is " + std::to_string(rl.rlim_cur >> 10) + " KiB";
    if (!why.empty())
      throw Error("it needs about " + std::to_string(need >> 10) + " KiB and " + why);
  }

  void consolidate(const std::function<void(hid_t)>& extra) {
    try {
      check_room();
      write_whole("complete", [](int64_t) { return std::string("."); }, [](int64_t k) { return part_group(k); },
                  [&](hid_t f) {
                    if (extra) extra(f);
                    Handle lcpl = h5::link_plist();
                    for (int64_t k = 0; k < n_parts; ++k) {
                      const std::string src = (parts_dir / part_file(k)).string();
                      Handle pf = h5::file_open_read(src);
                      if (pf.id < 0) throw Error(src + ": cannot open");
                      check_status(H5Ocopy(pf, "recorded", f, (part_group(k) + "recorded").c_str(), H5P_DEFAULT, lcpl), "copy " + src);
                      for (const ArraySpec& a : plan.arrays)
                        check_status(H5Ocopy(pf, a.path.c_str(), f, (part_group(k) + a.path).c_str(), H5P_DEFAULT, lcpl),
                                     "copy " + a.path + " of " + src);
                    }
                  });
    } catch (const std::exception& e) {
      throw ChoiceError(path + ": every item is recorded, but copying the parts into one file failed (" + e.what() + "); " + path +
                            " and " + parts_dir.string() + " hold the whole run: make room and resume the job to finish",
                        ChoiceError::Remedy::resume);
    }
    remove_quietly(parts_dir);
    try {
      promote();
    } catch (const std::exception& e) {
      throw ChoiceError(path + " holds the complete run, but it could not replace " + final_path + " (" + e.what() + ")",
                        ChoiceError::Remedy::resume);
    }
    complete = true;
  }
};

RunWriter::RunWriter(const std::string& path, RunPlan plan, RunOpen mode) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (plan.items.empty()) throw Error("nothing to record: the prompt set is empty");
  m.final_path = path;
  m.set_work_path(path);
  m.plan = std::move(plan);
  const int64_t N = m.n();
  m.per = m.plan.items_per_part > 0 ? m.plan.items_per_part : std::max<int64_t>(1, (N + 4095) / 4096);
  m.n_parts = (N + m.per - 1) / m.per;
  m.part_done.assign(static_cast<size_t>(m.n_parts), 0);
  m.row_off.assign(1, 0);
  std::string digest;
  for (const PlannedItem& it : m.plan.items) {
    m.row_off.push_back(m.row_off.back() + static_cast<int64_t>(it.tokens.size()));
    digest += it.text + '\0' + it.meta.dump() + '\0';
    digest.append(reinterpret_cast<const char*>(it.tokens.data()), it.tokens.size() * sizeof(int32_t));
  }
  m.settings = m.plan.settings;
  m.settings["checkpoint_sha256"] = m.plan.model.value("checkpoint_sha256", "");
  m.settings["items"] = N;
  m.settings["items_sha256"] = sha256_hex(digest);
  m.settings["items_per_part"] = m.per;
  m.settings["spec"] = m.plan.spec;
  nlohmann::json arrays = nlohmann::json::array();
  for (const ArraySpec& a : m.plan.arrays)
    arrays.push_back({{"path", a.path}, {"dtype", a.is_int ? "int32" : a.is_double ? "float64" : "float32"}, {"inner", a.inner},
                      {"rows", a.per_item ? "item" : "token"}});
  m.settings["arrays"] = arrays;

  // One job per run file: a second one (a resubmitted batch job, say) would write the same parts.
  m.lock();
  const bool exists = fs::exists(path);
  if (mode == RunOpen::create && exists)
    throw ChoiceError(path + ": exists", ChoiceError::Remedy::overwrite_or_resume);
  const std::string replacement = path + ".replacement";
  auto remove_replacement = [&] {
    for (const char* suffix : {"", ".new", ".parts"}) remove_quietly(replacement + suffix);
  };
  if (mode == RunOpen::overwrite && exists) {
    remove_replacement();  // an earlier replacement that never completed
    m.set_work_path(replacement);
    m.start_new();
  } else if (mode == RunOpen::resume && fs::exists(replacement) && Impl::saved_settings(replacement) == m.settings) {
    m.set_work_path(replacement);  // a replacement with these settings was interrupted: continue it
    m.open_existing();
  } else if (mode == RunOpen::resume && exists) {
    m.open_existing();
  } else {
    if (!exists) remove_replacement();  // nothing left to replace
    m.start_new();
  }
  if (!m.complete) m.thread = std::thread([&m] { m.loop(); });
}

RunWriter::~RunWriter() {
  try {
    impl_->stop_thread();
  } catch (...) {
  }
}

const std::vector<int64_t>& RunWriter::pending() const { return impl_->pending; }
int64_t RunWriter::n_items() const { return impl_->n(); }
int64_t RunWriter::committed() const { return impl_->complete ? impl_->n() : impl_->committed.load(); }
bool RunWriter::resumed() const { return impl_->was_resumed; }

void RunWriter::append(int64_t item, std::map<std::string, at::Tensor> arrays) {
  Impl& m = *impl_;
  if (m.complete || item < 0 || item >= m.n()) throw Error("run writer: item " + std::to_string(item) + " is not to be recorded");
  std::unique_lock<std::mutex> lk(m.mu);
  m.cv.wait(lk, [&] { return m.queue.size() < 4 || m.error; });  // bounded queue: the producer waits
  if (m.error) std::rethrow_exception(m.error);
  m.queue.emplace_back(item, std::move(arrays));
  m.cv.notify_all();
}

void RunWriter::flush() {
  Impl& m = *impl_;
  if (m.complete) return;
  m.stop_thread();
  if (m.error) std::rethrow_exception(m.error);
  for (int64_t k = 0; k < m.n_parts; ++k)
    if (!m.part_done[k]) throw Error(m.path + ": part " + std::to_string(k) + " was never recorded (items missing from the job)");
}

const std::string& RunWriter::work_path() const { return impl_->path; }

void RunWriter::finish(const std::vector<ProbeResult>& probe_results) {
  Impl& m = *impl_;
  if (m.complete) return;
  flush();
  m.consolidate([&](hid_t f) {
    for (const ProbeResult& r : probe_results) h5::write_probe_result(f, r);
  });
}

}  // namespace headscope
