// Opening checkpoints of every supported format (see checkpoint.h).
#include "model/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "model/safetensors.h"

namespace headscope {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

nlohmann::json read_json_file(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw Error(p.string() + ": cannot open");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(p.string() + ": not valid JSON");
  return j;
}

void refuse_pickle(const std::string& path) {
  for (const char* ext : {".bin", ".pt", ".pth", ".ckpt", ".pkl"})
    if (ends_with(path, ext))
      throw Error(path + ": pickle-based checkpoints are refused (loading them can execute code from the file); "
                         "convert it to safetensors first, e.g. in Python: "
                         "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)");
}

}  // namespace

void Checkpoint::add_tensors(std::vector<TensorInfo> ts) {
  for (auto& t : ts) {
    if (index_.count(t.name)) throw Error(path_ + ": tensor '" + t.name + "' appears more than once");
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
  auto ck = std::unique_ptr<Checkpoint>(new Checkpoint());
  ck->path_ = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file or folder");
  refuse_pickle(path);

  fs::path file = path;
  if (fs::is_directory(path)) {
    ck->folder_ = path;
    fs::path dir = path;
    if (fs::exists(dir / "model.safetensors.index.json")) file = dir / "model.safetensors.index.json";
    else if (fs::exists(dir / "model.safetensors")) file = dir / "model.safetensors";
    else {
      std::vector<fs::path> ggufs, pickles, sts;
      for (auto& e : fs::directory_iterator(dir)) {
        auto ext = e.path().extension().string();
        if (ext == ".gguf") ggufs.push_back(e.path());
        if (ext == ".safetensors") sts.push_back(e.path());
        if (ext == ".bin" || ext == ".pt" || ext == ".pth") pickles.push_back(e.path());
      }
      if (sts.size() == 1) file = sts[0];
      else if (sts.size() > 1) throw Error(path + ": holds several .safetensors files but no model.safetensors.index.json; name one");
      else if (ggufs.size() == 1) file = ggufs[0];
      else if (ggufs.size() > 1) throw Error(path + ": holds several .gguf files; name one");
      else if (!pickles.empty()) refuse_pickle(pickles[0].string());
      else throw Error(path + ": no model.safetensors, model.safetensors.index.json or .gguf file in this folder");
    }
  } else {
    ck->folder_ = fs::path(path).parent_path().string();
    if (ck->folder_.empty()) ck->folder_ = ".";
  }

  const std::string f = file.string();
  if (ends_with(f, ".gguf")) {
    ck->format_ = Format::GGUF;
    ck->maps_.push_back(std::make_unique<MappedFile>(f));
    ck->files_.push_back(f);
    ck->gguf_ = gguf_parse(ck->maps_.back()->bytes());
    ck->add_tensors(ck->gguf_->tensors);
    return ck;
  }
  if (ends_with(f, ".index.json")) {
    nlohmann::json idx = read_json_file(file);
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw Error(f + ": a safetensors index needs a 'weight_map' object");
    std::map<std::string, std::set<std::string>> by_shard;
    for (auto& [name, shard] : idx["weight_map"].items()) {
      if (!shard.is_string()) throw Error(f + ": weight_map entry '" + name + "' is not a file name");
      by_shard[shard.get<std::string>()].insert(name);
    }
    for (auto& [shard, names] : by_shard) {
      fs::path sp = file.parent_path() / shard;
      ck->maps_.push_back(std::make_unique<MappedFile>(sp.string()));
      ck->files_.push_back(sp.string());
      auto ts = safetensors_parse(ck->maps_.back()->bytes());
      for (auto& t : ts)
        if (!names.count(t.name))
          throw Error(sp.string() + ": holds tensor '" + t.name + "' that the index does not assign to it");
      if (ts.size() != names.size())
        throw Error(sp.string() + ": the index lists " + std::to_string(names.size()) + " tensors for this shard, it holds " +
                    std::to_string(ts.size()));
      ck->add_tensors(std::move(ts));
    }
  } else if (ends_with(f, ".safetensors")) {
    ck->maps_.push_back(std::make_unique<MappedFile>(f));
    ck->files_.push_back(f);
    ck->add_tensors(safetensors_parse(ck->maps_.back()->bytes()));
  } else {
    throw Error(f + ": unknown checkpoint format (expected a .gguf file, a .safetensors file, or a folder with config.json)");
  }
  ck->format_ = Format::Safetensors;
  fs::path cfg = file.parent_path() / "config.json";
  if (!fs::exists(cfg)) throw Error(f + ": a safetensors checkpoint needs its HF config.json beside it (" + cfg.string() + ")");
  ck->hf_config_ = read_json_file(cfg);
  ck->folder_ = file.parent_path().string();
  fs::path tok = file.parent_path() / "tokenizer.json";
  if (fs::exists(tok)) ck->hf_tokenizer_ = read_json_file(tok);
  return ck;
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& Checkpoint::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) throw Error(path_ + ": missing tensor '" + name + "'");
  return *t;
}

std::string Checkpoint::dominant_type() const {
  std::map<std::string, int64_t> count;
  for (auto& t : tensors_) count[ggml_type_name(t.type)] += t.numel();
  std::string best;
  int64_t n = -1;
  for (auto& [k, v] : count)
    if (v > n) best = k, n = v;
  return best;
}

}  // namespace headscope
