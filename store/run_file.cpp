// Run file reader and the helpers shared with the writer (see run_file.h).
#include "store/run_file.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <fstream>

#include "core/error.h"
#include "store/h5util.h"

namespace headscope {

using h5::check;
using h5::check_status;
using h5::Handle;


std::string sha256_file(const std::string& path) { return h5::sha256_of_file(path); }

std::string sha256_hex(const std::string& bytes) { return h5::sha256_of_bytes(bytes.data(), bytes.size()); }

struct RunReader::Impl {
  std::string path;
  Handle file;
  int64_t rows = 0;  // rows of /tokens: every item's tokens (read once when the file is opened)
  Handle open_ds(const std::string& name) const {
    if (!h5::exists(file, name)) throw Error(path + ": has no dataset " + name);
    return Handle(check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), "open " + name), H5Dclose);
  }
  // Item `item`'s rows of the per-token arrays, checked against /tokens (a damaged file may hold anything).
  std::pair<int64_t, int32_t> span(int64_t item) const {
    int64_t off;
    int32_t len;
    h5::read_rows(open_ds("items/offset"), H5T_NATIVE_INT64, &off, item, 1);
    h5::read_rows(open_ds("items/length"), H5T_NATIVE_INT32, &len, item, 1);
    if (off < 0 || len < 0 || off > rows || len > rows - off)
      throw Error(path + ": damaged run file (item " + std::to_string(item) + " claims tokens " + std::to_string(off) + " + " +
                  std::to_string(len) + " of " + std::to_string(rows) + ")");
    return {off, len};
  }
  std::vector<std::string> names(const std::string& group) const {
    std::vector<std::string> out;
    if (!h5::exists(file, group)) return out;
    Handle g(check(H5Gopen2(file, group.c_str(), H5P_DEFAULT), "open /" + group), H5Gclose);
    H5G_info_t info;
    H5Gget_info(g, &info);
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      std::string s(static_cast<size_t>(n), '\0');
      H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size() + 1, H5P_DEFAULT);
      out.push_back(s);
    }
    return out;
  }
  std::string string_at(const std::string& ds, int64_t item, int64_t n) const {
    check_item(item, n);
    Handle st = h5::str_type();
    char* p = nullptr;
    h5::read_rows(open_ds(ds), st, &p, item, 1);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  void check_item(int64_t item, int64_t n) const {
    if (item < 0 || item >= n) throw Error(path + ": no item " + std::to_string(item) + " (the file has " + std::to_string(n) + ")");
  }
  // Runs one read; any failure (HDF5's, a damaged value) becomes one Error that names the file.
  template <class F>
  auto named(F&& f) const -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      const std::string m = e.what();
      if (dynamic_cast<const Error*>(&e) && m.rfind(path + ":", 0) == 0) throw;
      throw Error(path + ": damaged or unreadable run file (" + m.substr(0, m.find('\n')) + ")");
    }
  }
};

RunReader::RunReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
  if (std::filesystem::is_directory(path)) throw Error(path + ": is a folder, not a run file");
  // The checksum block first (h5util.h): a damaged file never reaches HDF5.
  bool sealed = false;
  try {
    sealed = h5::verify_seal(path);
  } catch (const Error& e) {
    throw Error(path + ": damaged run file (" + e.what() + ")");
  }
  impl_->file = h5::file_open_read(path);
  if (impl_->file.id < 0) throw Error(path + ": not an HDF5 file, or damaged");
  impl_->named([&] {
    if (!h5::has_attr(impl_->file, "schema_version")) throw Error(path + ": not a headscope run file (no schema_version)");
    int64_t v = 0;
    try {
      v = h5::read_int_attr(impl_->file, "schema_version");
    } catch (const Error&) {
      throw Error(path + ": not a headscope run file (its schema_version is not an integer)");
    }
    if (v != kRunSchemaVersion)
      throw Error(path + ": run file schema " + std::to_string(v) + ", this headscope reads schema " + std::to_string(kRunSchemaVersion));
    if (!sealed)
      throw Error(path + ": not a headscope run file, or damaged (it has no checksum block: headscope writes one before the HDF5 data)");
    // Everything the reader relies on, named when missing, so that a damaged or foreign file fails here in one line.
    for (const char* a : {"status", "settings", "spec", "run_id", "created", "command_line", "headscope_version", "items_per_part"})
      if (!h5::has_attr(impl_->file, a)) throw Error(path + ": not a complete headscope run file (no attribute '" + std::string(a) + "')");
    for (const char* d : {"model", "items/text", "items/meta", "items/offset", "items/length", "items/recorded", "tokens"})
      if (!h5::exists(impl_->file, d)) throw Error(path + ": not a complete headscope run file (no /" + std::string(d) + ")");
    impl_->rows = static_cast<int64_t>(h5::dims(impl_->open_ds("tokens"))[0]);
    // A run still recording reads its arrays from the part files beside it (HDF5 opens them itself): check them too.
    const std::filesystem::path parts(path + ".parts");
    std::error_code ec;
    if (h5::read_str_attr(impl_->file, "status") != "complete" && std::filesystem::is_directory(parts, ec))
      for (const auto& e : std::filesystem::directory_iterator(parts, ec)) {
        if (e.path().extension() != ".h5") continue;
        try {
          if (!h5::verify_seal(e.path().string())) throw Error("it has no checksum block");
        } catch (const Error& err) {
          throw Error(path + ": its part file " + e.path().filename().string() + " is damaged (" + err.what() +
                      "); resuming the job records that part again");
        }
      }
  });
}

RunReader::~RunReader() = default;

nlohmann::json RunReader::header() const {
  return impl_->named([&] { return read_header(); });
}

nlohmann::json RunReader::read_header() const {
  nlohmann::json j;
  hid_t f = impl_->file;
  j["schema_version"] = h5::read_int_attr(f, "schema_version");
  for (const char* k : {"headscope_version", "created", "command_line", "status", "run_id"}) j[k] = h5::read_str_attr(f, k);
  for (const char* k : {"settings", "spec"}) j[k] = nlohmann::json::parse(h5::read_str_attr(f, k), nullptr, false);
  j["items_per_part"] = h5::read_int_attr(f, "items_per_part");
  Handle model(check(H5Gopen2(f, "model", H5P_DEFAULT), "open /model"), H5Gclose);
  for (const char* k : {"path", "family", "architecture", "config", "checkpoint_sha256"}) j["model"][k] = h5::read_str_attr(model, k);
  return j;
}

int64_t RunReader::n_tokens() const { return impl_->rows; }

std::string RunReader::status() const {
  return impl_->named([&] { return h5::read_str_attr(impl_->file, "status"); });
}

int64_t RunReader::n_items() const {
  return impl_->named([&] { return static_cast<int64_t>(h5::dims(impl_->open_ds("items/length"))[0]); });
}

int64_t RunReader::n_recorded() const {
  const int64_t n = n_items();
  return impl_->named([&] {
    std::vector<uint8_t> r(static_cast<size_t>(n));
    h5::read_rows(impl_->open_ds("items/recorded"), H5T_NATIVE_UINT8, r.data(), 0, n);
    int64_t c = 0;
    for (uint8_t x : r) c += x != 0;
    return c;
  });
}

bool RunReader::recorded(int64_t item) const {
  impl_->check_item(item, n_items());
  return impl_->named([&] {
    uint8_t r = 0;
    h5::read_rows(impl_->open_ds("items/recorded"), H5T_NATIVE_UINT8, &r, item, 1);
    return r != 0;
  });
}

std::vector<std::string> RunReader::stat_names() const {
  return impl_->named([&] { return impl_->names("stats"); });
}
std::vector<std::string> RunReader::act_names() const {
  return impl_->named([&] { return impl_->names("acts"); });
}

std::string RunReader::text(int64_t item) const {
  const int64_t n = n_items();
  return impl_->named([&] { return impl_->string_at("items/text", item, n); });
}

nlohmann::json RunReader::meta(int64_t item) const {
  const int64_t n = n_items();
  const std::string s = impl_->named([&] { return impl_->string_at("items/meta", item, n); });
  return nlohmann::json::parse(s.empty() ? "null" : s, nullptr, false);
}

std::vector<int32_t> RunReader::tokens(int64_t item) const {
  impl_->check_item(item, n_items());
  return impl_->named([&] {
    auto [off, len] = impl_->span(item);
    std::vector<int32_t> out(static_cast<size_t>(len));
    h5::read_rows(impl_->open_ds("tokens"), H5T_NATIVE_INT32, out.data(), off, len);
    return out;
  });
}

int64_t RunReader::length(int64_t item) const {
  impl_->check_item(item, n_items());
  return impl_->named([&] { return static_cast<int64_t>(impl_->span(item).second); });
}

at::Tensor RunReader::array(const std::string& path, int64_t item) const {
  if (!recorded(item))
    throw Error(impl_->path + ": item " + std::to_string(item) +
                " is not recorded yet (the job was interrupted; resuming it completes the file)");
  return impl_->named([&] {
    auto [off, len] = impl_->span(item);
    Handle ds = impl_->open_ds(path);
    std::vector<hsize_t> d = h5::dims(ds);
    const bool per_item = h5::has_attr(ds, "rows") && h5::read_str_attr(ds, "rows") == "item";
    if (per_item) off = item, len = 1;
    if (d.empty() || d[0] != static_cast<hsize_t>(per_item ? n_items() : impl_->rows))
      throw Error("/" + path + " does not have a row per " + (per_item ? "item" : "token"));
    std::vector<int64_t> shape{len};
    for (size_t i = 1; i < d.size(); ++i) shape.push_back(static_cast<int64_t>(d[i]));
    Handle type(check(H5Dget_type(ds), "type of " + path), H5Tclose);
    const bool is_int = H5Tget_class(type) == H5T_INTEGER, is_double = !is_int && H5Tget_size(type) == 8;
    at::Tensor out = at::empty(shape, is_int ? at::kInt : is_double ? at::kDouble : at::kFloat);
    h5::read_rows(ds, is_int ? H5T_NATIVE_INT32 : is_double ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, out.data_ptr(), off, len);
    return per_item ? out.squeeze(0) : out;
  });
}

std::vector<std::string> RunReader::probe_names() const {
  // A probe's group holds params or its value groups; any other group only nests names ("circuit/logits").
  return impl_->named([&] {
    std::vector<std::string> out;
    std::function<void(const std::string&)> walk = [&](const std::string& g) {
      for (const std::string& n : impl_->names("probes" + g)) {
        const std::string name = g.empty() ? n : g.substr(1) + "/" + n, path = "probes/" + name;
        Handle grp(check(H5Gopen2(impl_->file, path.c_str(), H5P_DEFAULT), "open /" + path), H5Gclose);
        bool probe = h5::has_attr(grp, "params");
        for (const char* v : {"heads", "tokens", "scalars", "scores"}) probe = probe || h5::exists(impl_->file, path + "/" + v);
        if (probe) out.push_back(name);
        else walk(g + "/" + n);
      }
    };
    walk("");
    return out;
  });
}

ProbeResult RunReader::probe(const std::string& name) const {
  const std::string g = "probes/" + name;
  ProbeResult r;
  impl_->named([&] {
    if (!h5::exists(impl_->file, g)) throw Error(impl_->path + ": has no probe '" + name + "'");
    Handle grp(check(H5Gopen2(impl_->file, g.c_str(), H5P_DEFAULT), "open /" + g), H5Gclose);
    if (!h5::has_attr(grp, "params"))
      throw Error(impl_->path + ": the " + name + " probe's results are not complete (the job was interrupted; resume it)");
    r.name = name;
    r.params = nlohmann::json::parse(h5::read_str_attr(grp, "params"));
    r.summary = nlohmann::json::parse(h5::read_str_attr(grp, "summary"));
    r.rank_by = h5::read_str_attr(grp, "rank_by");
    r.run_items = nlohmann::json::parse(h5::read_str_attr(grp, "items")).get<std::vector<int64_t>>();
    for (const std::string& s : impl_->names(g + "/scores")) {
      Handle ds = impl_->open_ds(g + "/scores/" + s);
      const std::vector<hsize_t> d = h5::dims(ds);
      if (d.size() != 2) throw Error("/" + g + "/scores/" + s + " is not [layer, head]");
      at::Tensor t = at::empty({static_cast<int64_t>(d[0]), static_cast<int64_t>(d[1])}, at::kDouble);
      h5::read_rows(ds, H5T_NATIVE_DOUBLE, t.data_ptr(), 0, static_cast<int64_t>(d[0]));
      r.scores[s] = t;
    }
    return 0;
  });
  const std::vector<std::string> heads = impl_->named([&] { return impl_->names(g + "/heads"); });
  const std::vector<std::string> tokens = impl_->named([&] { return impl_->names(g + "/tokens"); });
  const std::vector<std::string> scalars = impl_->named([&] { return impl_->names(g + "/scalars"); });
  for (int64_t i : r.run_items) {
    ItemResult it;
    for (const std::string& v : heads) it.heads[v] = array(g + "/heads/" + v, i);
    for (const std::string& v : tokens) it.tokens[v] = array(g + "/tokens/" + v, i);
    for (const std::string& v : scalars) it.scalars[v] = array(g + "/scalars/" + v, i).item<double>();
    r.items.push_back(std::move(it));
    r.item_tokens.push_back(RunReader::tokens(i));
    r.item_meta.push_back(meta(i));
  }
  return r;
}

void h5::write_probe_result(hid_t f, const ProbeResult& r) {
  const std::string g = "probes/" + r.name;
  Handle lcpl = h5::link_plist();
  Handle grp(check(H5Gcreate2(f, g.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT), "group /" + g), H5Gclose);
  h5::write_attr(grp, "params", r.params.dump());
  h5::write_attr(grp, "summary", r.summary.dump());
  h5::write_attr(grp, "rank_by", r.rank_by);
  h5::write_attr(grp, "items", nlohmann::json(r.run_items).dump());
  for (auto& [name, t] : r.scores) {
    const at::Tensor c = t.to(at::kDouble).contiguous();
    const hsize_t dims[2] = {static_cast<hsize_t>(c.size(0)), static_cast<hsize_t>(c.size(1))};
    Handle space(check(H5Screate_simple(2, dims, nullptr), "space"), H5Sclose);
    Handle ds(check(H5Dcreate2(f, (g + "/scores/" + name).c_str(), H5T_IEEE_F64LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT),
                    "create /" + g + "/scores/" + name),
              H5Dclose);
    check_status(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data_ptr()), "write /" + g + "/scores/" + name);
    h5::write_attr(ds, "shape", std::string("[layer, head]"));
  }
}

at::Tensor RunReader::stat(const std::string& name, int64_t item) const { return array("stats/" + name, item); }
at::Tensor RunReader::act(const std::string& hook, int64_t item) const { return array("acts/" + hook, item); }

}  // namespace headscope
