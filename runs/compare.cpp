// Comparing two run files head by head (see compare.h).
#include "runs/compare.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/head_stats.h"
#include "core/text.h"
#include "store/run_file.h"

namespace headscope {

namespace {

std::pair<int64_t, int64_t> shape_of(const RunReader& r, const std::string& path) {
  const nlohmann::json h = r.header();
  nlohmann::json cfg = h["model"]["config"];
  if (cfg.is_string()) cfg = nlohmann::json::parse(cfg.get<std::string>(), nullptr, false);
  if (!cfg.is_object() || !cfg.contains("n_layers") || !cfg.contains("n_heads"))
    throw Error(path + ": its /model config does not say the model's layers and heads");
  return {cfg["n_layers"].get<int64_t>(), cfg["n_heads"].get<int64_t>()};
}

std::string units_of(const std::string& stat) {
  const int id = head_stat_find(stat.c_str());
  return id < 0 ? "" : head_stat(id).units;
}

std::vector<HeadDiff> rank(const std::vector<double>& a, const std::vector<double>& b, int64_t H) {
  std::vector<HeadDiff> out;
  for (size_t i = 0; i < a.size(); ++i) {
    HeadDiff d;
    d.layer = static_cast<int>(static_cast<int64_t>(i) / H), d.head = static_cast<int>(static_cast<int64_t>(i) % H);
    d.a = a[i], d.b = b[i], d.diff = b[i] - a[i];
    d.relative = std::isfinite(a[i]) && a[i] != 0 ? d.diff / std::fabs(a[i]) : NAN;
    out.push_back(d);
  }
  std::stable_sort(out.begin(), out.end(), [](const HeadDiff& x, const HeadDiff& y) {
    const bool nx = std::isnan(x.diff), ny = std::isnan(y.diff);
    if (nx != ny) return ny;  // NaN last
    if (nx) return false;
    return std::fabs(x.diff) > std::fabs(y.diff);
  });
  return out;
}

nlohmann::json num(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

}  // namespace

std::vector<double> mean_stat(const RunReader& r, const std::string& stat, const std::vector<int64_t>& items) {
  at::Tensor sum;
  for (int64_t i : items) {
    const at::Tensor x = r.stat(stat, i).to(at::kDouble);  // [T, L, H]
    const at::Tensor ok = x.isnan().logical_not();
    const at::Tensor m = at::where(ok, x, at::zeros_like(x)).sum(0) / ok.sum(0).to(at::kDouble);  // NaN where no row
    sum = sum.defined() ? sum + m : m;
  }
  if (!sum.defined()) throw Error("no items to average " + stat + " over");
  const at::Tensor mean = (sum / static_cast<double>(items.size())).contiguous();
  return std::vector<double>(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
}

RunComparison compare_runs(const std::string& pa, const std::string& pb, const CompareOptions& o) {
  const RunReader a(pa), b(pb);
  RunComparison c;
  c.path_a = pa, c.path_b = pb;
  const auto sa = shape_of(a, pa), sb = shape_of(b, pb);
  if (sa != sb)
    throw Error("cannot compare " + pa + " (" + std::to_string(sa.first) + " layers x " + std::to_string(sa.second) + " heads) with " + pb +
                " (" + std::to_string(sb.first) + " layers x " + std::to_string(sb.second) + " heads): the models differ in shape");
  c.layers = sa.first, c.heads = sa.second;
  const std::set<std::string> only(o.only.begin(), o.only.end());
  std::set<std::string> matched;
  auto wanted = [&](const std::string& name, const std::string& probe) {
    if (only.empty()) return true;
    if (only.count(name)) return matched.insert(name), true;
    if (!probe.empty() && only.count(probe)) return matched.insert(probe), true;
    return false;
  };
  std::vector<std::string> shared;  // what both hold, for the error message
  // Statistics recorded in both, over the items recorded in both.
  const std::vector<std::string> stats_a = a.stat_names(), stats_b = b.stat_names();
  std::vector<int64_t> items;
  int64_t other_tokens = 0;
  bool items_known = false;
  for (const std::string& s : stats_a) {
    if (std::find(stats_b.begin(), stats_b.end(), s) == stats_b.end()) continue;
    shared.push_back(s);
    if (!wanted(s, "")) continue;
    if (!items_known) {
      items_known = true;
      const int64_t n = std::min(a.n_items(), b.n_items());
      for (int64_t i = 0; i < n; ++i)
        if (a.recorded(i) && b.recorded(i)) {
          items.push_back(i);
          other_tokens += a.tokens(i) != b.tokens(i);
        }
      if (items.empty()) throw Error("cannot compare statistics of " + pa + " and " + pb + ": no item is recorded in both");
    }
    CompareEntry e;
    e.kind = "stat", e.name = s, e.units = units_of(s);
    e.items = static_cast<int64_t>(items.size()), e.items_with_other_tokens = other_tokens;
    e.a = mean_stat(a, s, items), e.b = mean_stat(b, s, items);
    if (static_cast<int64_t>(e.a.size()) != c.layers * c.heads || e.b.size() != e.a.size())
      throw Error("/stats/" + s + " does not hold [layer, head] values of the model's shape");
    for (size_t i = 0; i < e.a.size(); ++i) e.diff.push_back(e.b[i] - e.a[i]);
    e.ranked = rank(e.a, e.b, c.heads);
    c.entries.push_back(std::move(e));
  }
  // Probe scores both complete runs hold.
  if (a.status() == "complete" && b.status() == "complete") {
    const std::vector<std::string> pa_names = a.probe_names(), pb_names = b.probe_names();
    for (const std::string& p : pa_names) {
      if (std::find(pb_names.begin(), pb_names.end(), p) == pb_names.end()) continue;
      const ProbeResult ra = a.probe(p), rb = b.probe(p);
      for (const auto& [score, ta] : ra.scores) {
        auto it = rb.scores.find(score);
        if (it == rb.scores.end()) continue;
        const std::string name = p + "/" + score;
        shared.push_back(name);
        if (!wanted(name, p)) continue;
        CompareEntry e;
        e.kind = "score", e.name = name;
        const at::Tensor xa = ta.to(at::kDouble).contiguous(), xb = it->second.to(at::kDouble).contiguous();
        if (xa.numel() != c.layers * c.heads || xb.numel() != c.layers * c.heads)
          throw Error("the " + name + " score is not [layer, head] of the model's shape");
        e.a.assign(xa.data_ptr<double>(), xa.data_ptr<double>() + xa.numel());
        e.b.assign(xb.data_ptr<double>(), xb.data_ptr<double>() + xb.numel());
        for (size_t i = 0; i < e.a.size(); ++i) e.diff.push_back(e.b[i] - e.a[i]);
        e.ranked = rank(e.a, e.b, c.heads);
        c.entries.push_back(std::move(e));
      }
    }
  }
  const std::string list = join(shared);
  for (const std::string& n : only)
    if (!matched.count(n)) throw Error("'" + n + "' is not in both " + pa + " and " + pb + " (both hold: " + (list.empty() ? "nothing" : list) + ")");
  if (c.entries.empty())
    throw Error("nothing to compare: " + pa + " and " + pb + " hold no statistic and no probe score in common" +
                (a.status() != "complete" || b.status() != "complete" ? " (probe scores need complete runs)" : ""));
  return c;
}

nlohmann::json to_json(const RunComparison& c, int top) {
  nlohmann::json entries = nlohmann::json::array();
  auto grid = [&](const std::vector<double>& v) {
    nlohmann::json g = nlohmann::json::array();
    for (int64_t l = 0; l < c.layers; ++l) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t h = 0; h < c.heads; ++h) row.push_back(num(v[static_cast<size_t>(l * c.heads + h)]));
      g.push_back(row);
    }
    return g;
  };
  for (const CompareEntry& e : c.entries) {
    nlohmann::json ranked = nlohmann::json::array();
    for (const HeadDiff& d : e.ranked) {
      if (top > 0 && static_cast<int>(ranked.size()) >= top) break;
      ranked.push_back({{"head", head_label(d.layer, d.head)}, {"layer", d.layer}, {"head_index", d.head}, {"a", num(d.a)}, {"b", num(d.b)},
                        {"diff", num(d.diff)}, {"relative", num(d.relative)}});
    }
    nlohmann::json j = {{"kind", e.kind}, {"name", e.name}, {"units", e.units}, {"a", grid(e.a)}, {"b", grid(e.b)}, {"diff", grid(e.diff)}, {"ranked", ranked}};
    if (e.kind == "stat") j["items"] = e.items, j["items_with_other_tokens"] = e.items_with_other_tokens;
    entries.push_back(j);
  }
  return {{"a", c.path_a}, {"b", c.path_b}, {"layers", c.layers}, {"heads", c.heads}, {"entries", entries}};
}

}  // namespace headscope
