// Needle-in-a-haystack accuracy with heads changed on decode steps (see niah_eval.h).
#include "probes/niah_eval.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "analysis/retrieval.h"
#include "core/error.h"
#include "core/random.h"
#include "hooks/hooks.h"
#include "hooks/interventions.h"

namespace headscope {

NiahEvalProbe::NiahEvalProbe(NiahEvalOptions o) : o_(std::move(o)) {
  if (o_.grid.needles.empty() && o_.grid.given_items.empty()) o_.grid.needles = {eval_needle()};
  if (o_.change != "none" && o_.change != "uniform" && o_.change != "kv_window")
    throw Error("unknown head change '" + o_.change + "' (none, uniform, kv_window)");
}

nlohmann::json NiahEvalProbe::params() const {
  nlohmann::json heads = nlohmann::json::array();
  for (auto [l, h] : o_.heads) heads.push_back(std::to_string(l) + "." + std::to_string(h));
  nlohmann::json p = RetrievalProbe(o_.grid).params();
  p.erase("mode"), p.erase("rouge_threshold");
  p["change"] = o_.change, p["heads"] = heads;
  if (o_.change == "kv_window") p["sink"] = o_.sink, p["window"] = o_.window;
  return p;
}

std::vector<ProbeItem> NiahEvalProbe::items(const Model& m) const {
  const int64_t L = m.config().n_layers, H = m.config().n_heads;
  for (auto [l, h] : o_.heads)
    if (l < 0 || l >= L || h < 0 || h >= H) throw Error("head " + std::to_string(l) + "." + std::to_string(h) + " does not exist");
  return niah_items(m, o_.grid);
}

ItemResult NiahEvalProbe::run(const Model& m, const ProbeItem& item) const {
  Hooks hooks;
  if (o_.change != "none" && !o_.heads.empty()) {
    nlohmann::json heads = nlohmann::json::array();
    for (auto [l, h] : o_.heads) heads.push_back(std::to_string(l) + "." + std::to_string(h));
    nlohmann::json e = {{"type", o_.change}, {"heads", heads}};
    if (o_.change == "kv_window") e["sink"] = o_.sink, e["window"] = o_.window;
    install_interventions(nlohmann::json::array({e}), m.config(), hooks);
  }
  // The prompt pass runs unchanged over all but the last token; every later step (from the last prompt token on)
  // with the heads changed.
  KvCache cache;
  const std::vector<int32_t> prefix(item.tokens.begin(), item.tokens.end() - 1);
  if (!prefix.empty()) m.run(prefix, AttnRecord{}, /*last_only=*/true, nullptr, &cache);
  std::vector<int32_t> out;
  int32_t token = item.tokens.back();
  uint64_t rng = 0;
  for (int i = 0; i < o_.grid.max_new; ++i) {
    const ForwardResult r = m.run({token}, AttnRecord{}, true, hooks.empty() ? nullptr : &hooks, &cache);
    token = sample_token(r.logits[0], Sampling{}, rng);
    out.push_back(token);
    if (token == m.config().eos_id || m.tokenizer().token_text(token).find('\n') != std::string::npos) break;
  }
  ItemResult res;
  res.scalars["rouge1"] = 100.0 * rouge1_recall(item.meta.value("answer", ""), m.tokenizer().decode(out));
  res.scalars["generated"] = static_cast<double>(out.size());
  const int64_t T = static_cast<int64_t>(item.tokens.size() + out.size());
  res.scalars["kv_fraction"] = o_.change == "kv_window" ? kv_fraction(m.config(), o_.heads, T, o_.sink, o_.window) : 1.0;
  return res;
}

void NiahEvalProbe::combine(const Model&, const std::vector<ProbeItem>& items, ProbeResult& r) const {
  std::map<std::pair<int64_t, double>, std::pair<double, int64_t>> grid;
  double sum = 0, kv = 0;
  for (size_t i = 0; i < r.items.size(); ++i) {
    const double x = r.items[i].scalars.at("rouge1");
    sum += x, kv += r.items[i].scalars.at("kv_fraction");
    auto& g = grid[{items[i].meta.value("length", int64_t{0}), items[i].meta.value("depth", 0.0)}];
    g.first += x, g.second += 1;
  }
  nlohmann::json table = nlohmann::json::array();
  for (auto& [key, v] : grid) table.push_back({{"length", key.first}, {"depth", key.second}, {"rouge1", v.first / static_cast<double>(v.second)}});
  const double n = static_cast<double>(std::max<size_t>(r.items.size(), 1));
  r.summary = {{"items", r.items.size()}, {"niah_rouge1", sum / n}, {"kv_fraction", kv / n}, {"heads_changed", o_.heads.size()},
               {"by_length_depth", table}};
}

double kv_fraction(const ModelConfig& cfg, const std::vector<std::pair<int, int>>& budgeted, int64_t T, int64_t sink, int64_t window) {
  const int64_t group = cfg.n_heads / std::max<int64_t>(1, cfg.n_kv_heads);
  std::set<std::pair<int, int>> b(budgeted.begin(), budgeted.end());
  double kept = 0, full = 0;
  for (int l = 0; l < cfg.n_layers; ++l)
    for (int64_t kv = 0; kv < cfg.n_kv_heads; ++kv) {
      bool all_budgeted = true;
      for (int64_t g = 0; g < group; ++g) all_budgeted = all_budgeted && b.count({l, static_cast<int>(kv * group + g)});
      kept += static_cast<double>(all_budgeted ? std::min(T, sink + window) : T);
      full += static_cast<double>(T);
    }
  return full > 0 ? kept / full : 1.0;
}

std::vector<std::pair<int, int>> heads_by_score(const at::Tensor& score_in) {
  const at::Tensor s = score_in.to(at::kDouble).contiguous();
  const int64_t H = s.size(1);
  std::vector<int64_t> order(static_cast<size_t>(s.numel()));
  for (int64_t i = 0; i < s.numel(); ++i) order[i] = i;
  const double* p = s.data_ptr<double>();
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const double x = std::isnan(p[a]) ? -INFINITY : p[a], y = std::isnan(p[b]) ? -INFINITY : p[b];
    return x > y;
  });
  std::vector<std::pair<int, int>> out;
  for (int64_t i : order) out.emplace_back(static_cast<int>(i / H), static_cast<int>(i % H));
  return out;
}

std::vector<std::pair<int, int>> random_heads(const ModelConfig& cfg, int count, const std::vector<std::pair<int, int>>& exclude, uint64_t seed) {
  std::vector<std::pair<int, int>> pool;
  std::set<std::pair<int, int>> ex(exclude.begin(), exclude.end());
  for (int l = 0; l < cfg.n_layers; ++l)
    for (int h = 0; h < cfg.n_heads; ++h)
      if (!ex.count({l, h})) pool.emplace_back(l, h);
  if (count > static_cast<int>(pool.size()))
    throw Error("cannot draw " + std::to_string(count) + " random heads from the " + std::to_string(pool.size()) + " left outside the excluded ones");
  uint64_t s = seed;
  for (int i = 0; i < count; ++i) {  // a partial Fisher-Yates shuffle
    const size_t j = static_cast<size_t>(i) + static_cast<size_t>(splitmix64(s) % (pool.size() - static_cast<size_t>(i)));
    std::swap(pool[static_cast<size_t>(i)], pool[j]);
  }
  pool.resize(static_cast<size_t>(count));
  std::sort(pool.begin(), pool.end());
  return pool;
}

}  // namespace headscope

namespace headscope {

std::vector<NiahEvalOptions> masking_conditions(const ModelConfig& cfg, const RetrievalOptions& grid, const at::Tensor& retrieval, int top,
                                                int draws, uint64_t seed, int exclude_top) {
  const int n = static_cast<int>(cfg.n_layers * cfg.n_heads);
  if (top < 1 || top > n) throw Error("--top must be between 1 and the model's " + std::to_string(n) + " heads");
  if (retrieval.dim() != 2 || retrieval.size(0) != cfg.n_layers || retrieval.size(1) != cfg.n_heads)
    throw Error("the retrieval scores are not [" + std::to_string(cfg.n_layers) + ", " + std::to_string(cfg.n_heads) + "] for this model");
  const auto order = heads_by_score(retrieval);
  std::vector<NiahEvalOptions> out;
  NiahEvalOptions base;
  base.grid = grid;
  base.label = "niah/none";
  out.push_back(base);
  NiahEvalOptions t = base;
  t.label = "niah/top" + std::to_string(top), t.change = "uniform", t.heads.assign(order.begin(), order.begin() + top);
  out.push_back(t);
  // Random heads come from outside the top 100 (fewer where the model has too few heads to leave `top` of them).
  const int excluded = std::min(exclude_top, n - top);
  const std::vector<std::pair<int, int>> ex(order.begin(), order.begin() + excluded);
  for (int d = 0; d < draws; ++d) {
    NiahEvalOptions r = base;
    r.label = "niah/random" + std::to_string(top) + "/" + std::to_string(d + 1), r.change = "uniform";
    r.heads = random_heads(cfg, top, ex, seed + static_cast<uint64_t>(d));
    out.push_back(r);
  }
  return out;
}

std::vector<NiahEvalOptions> kv_budget_conditions(const ModelConfig& cfg, const RetrievalOptions& grid,
                                                  const std::vector<std::pair<std::string, at::Tensor>>& rankings,
                                                  const std::vector<double>& keep, int64_t sink, int64_t window, uint64_t seed) {
  const int n = static_cast<int>(cfg.n_layers * cfg.n_heads);
  std::vector<NiahEvalOptions> out;
  NiahEvalOptions base;
  base.grid = grid;
  base.label = "kv/full";
  out.push_back(base);
  for (const auto& [name, score] : rankings) {
    std::vector<std::pair<int, int>> order = score.defined() ? heads_by_score(score) : random_heads(cfg, n, {}, seed);
    if (!score.defined()) {  // random_heads returns its draw sorted: shuffle the order itself
      uint64_t s = seed;
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<size_t>(splitmix64(s) % i)]);
    }
    for (double f : keep) {
      if (!(f >= 0 && f <= 1)) throw Error("--keep fractions must be in [0, 1], not " + std::to_string(f));
      const size_t k = static_cast<size_t>(std::ceil(f * n - 1e-9));
      char label[64];
      std::snprintf(label, sizeof label, "kv/%s/%g", name.c_str(), f);
      NiahEvalOptions c = base;
      c.label = label, c.change = "kv_window", c.sink = sink, c.window = window;
      c.heads.assign(order.begin() + static_cast<std::ptrdiff_t>(k), order.end());  // the budgeted heads: all but the kept
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace headscope
