// Figure data from run files (see run_views.h).
#include "probes/run_views.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "analysis/sink_levels.h"
#include "core/error.h"
#include "core/head_stats.h"
#include "core/text.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "probes/circuit.h"
#include "runs/pattern.h"

namespace headscope {

namespace {

std::string base(const std::string& path) { return std::filesystem::path(path).filename().string(); }

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU).to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void check_item(const RunReader& r, int64_t item) {
  if (item < 0 || item >= r.n_items())
    throw Error("no item " + std::to_string(item) + " in the run (it has items 0.." + std::to_string(r.n_items() - 1) + ")");
  if (!r.recorded(item)) throw Error("item " + std::to_string(item) + " is not recorded yet (the job is still running or was interrupted)");
}

std::string item_probe(const RunReader& r, int64_t item) {
  const nlohmann::json m = r.meta(item);
  return m.is_object() && m.contains("probe") && m["probe"].is_string() ? m["probe"].get<std::string>() : "";
}

// The run items of a probe, from the items' meta (also while recording).
std::vector<int64_t> probe_items(const RunReader& r, const std::string& probe) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < r.n_items(); ++i)
    if (item_probe(r, i) == probe) out.push_back(i);
  return out;
}

std::string ranges(const std::vector<int64_t>& v) {
  if (v.empty()) return "none";
  std::string s;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    s += (s.empty() ? "" : ", ") + std::to_string(v[i]) + (j > i ? ".." + std::to_string(v[j]) : "");
    i = j + 1;
  }
  return s;
}

void require_probe_item(const RunReader& r, int64_t item, const std::string& probe) {
  check_item(r, item);
  if (item_probe(r, item) != probe)
    throw Error("item " + std::to_string(item) + " is not a " + probe + " item (the run's " + probe + " items: " + ranges(probe_items(r, probe)) + ")");
}

std::vector<std::string> names_in(const std::vector<std::string>& all, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& n : all)
    if (n.rfind(prefix, 0) == 0) out.push_back(n);
  return out;
}

std::vector<std::string> token_texts(const RunReader& r, int64_t item, const TokenText& text) {
  std::vector<std::string> out;
  for (int32_t id : r.tokens(item)) out.push_back(text ? text(id) : "#" + std::to_string(id));
  return out;
}

}  // namespace

std::pair<int64_t, int64_t> run_shape(const RunReader& r) {
  nlohmann::json cfg = r.header()["model"]["config"];
  if (cfg.is_string()) cfg = nlohmann::json::parse(cfg.get<std::string>(), nullptr, false);
  if (!cfg.is_object() || !cfg.contains("n_layers") || !cfg.contains("n_heads")) throw Error("the run file's /model config does not give layers and heads");
  return {cfg["n_layers"].get<int64_t>(), cfg["n_heads"].get<int64_t>()};
}

TokenText run_token_text(const RunReader& r, const std::string& checkpoint) {
  std::string path = checkpoint;
  if (path.empty()) path = r.header()["model"].value("path", std::string());
  std::shared_ptr<Tokenizer> tok;
  try {
    std::error_code ec;
    if (!path.empty() && std::filesystem::exists(path, ec)) {
      const auto ck = Checkpoint::open(path);
      if (ck->format() == Checkpoint::Format::GGUF) {
        if (ck->gguf()->has("tokenizer.ggml.model")) tok = Tokenizer::from_gguf(*ck->gguf());
      } else if (!ck->hf_tokenizer().is_null()) {
        tok = Tokenizer::from_hf_json(ck->hf_tokenizer(), ck->folder() + "/tokenizer.json");
      }
    }
  } catch (const Error&) {
    if (!checkpoint.empty()) throw;  // asked for by name: say why it cannot be read
    tok.reset();                     // the run's own path moved or changed: ids it is
  }
  if (!checkpoint.empty() && !tok) throw Error(checkpoint + ": no tokenizer in this checkpoint");
  return [tok](int32_t id) -> std::string {
    if (tok && id >= 0 && id < tok->vocab_size()) return tok->token_text(id);
    return "#" + std::to_string(id);
  };
}

RunContents run_contents(const RunReader& r) {
  RunContents c;
  c.status = r.status();
  std::tie(c.layers, c.heads) = run_shape(r);
  c.n_items = r.n_items(), c.n_recorded = r.n_recorded();
  c.stats = r.stat_names();
  for (int64_t i = 0; i < c.n_items; ++i) {
    RunItemInfo it;
    it.index = i, it.recorded = r.recorded(i), it.probe = item_probe(r, i), it.text = r.text(i);
    it.tokens = r.length(i);
    c.items.push_back(std::move(it));
  }
  const bool complete = c.status == "complete";
  for (const std::string& name : r.probe_names()) {
    RunProbeInfo p;
    p.name = name;
    for (const RunItemInfo& it : c.items)
      if (it.probe == name) p.items.push_back(it.index);
    if (complete) {
      const ProbeResult pr = r.probe(name);
      p.complete = true, p.rank_by = pr.rank_by;
      for (auto& [s, t] : pr.scores) p.scores.push_back(s);
      if (!pr.items.empty()) {
        for (auto& [v, t] : pr.items[0].heads) p.head_values.push_back(v);
        for (auto& [v, t] : pr.items[0].tokens) p.token_values.push_back(v);
        for (auto& [v, x] : pr.items[0].scalars) p.scalar_values.push_back(v);
      }
    }
    if (name.rfind("circuit/", 0) == 0) c.has_circuit = true;
    if (name.rfind("binding/", 0) == 0) c.binding.push_back(name);
    if (name.rfind("niah/", 0) == 0 || name.rfind("kv/", 0) == 0) c.niah.push_back(name);
    c.probes.push_back(std::move(p));
  }
  return c;
}

HeadGridFigure stat_grid(const RunReader& r, const std::string& stat, int64_t item) {
  const std::vector<std::string> stats = r.stat_names();
  if (std::find(stats.begin(), stats.end(), stat) == stats.end()) {
    throw Error("the run records no statistic '" + stat + "' (it records: " + (stats.empty() ? "none" : join(stats)) + ")");
  }
  HeadGridFigure g;
  std::tie(g.layers, g.heads) = run_shape(r);
  const int id = head_stat_find(stat.c_str());
  g.label = id >= 0 ? head_stat(id).label : stat, g.units = id >= 0 ? head_stat(id).units : "";
  std::vector<int64_t> items;
  if (item >= 0) {
    check_item(r, item);
    items = {item};
    g.title = stat + ", item " + std::to_string(item) + ": mean over its " + std::to_string(r.tokens(item).size()) + " tokens";
  } else {
    for (int64_t i = 0; i < r.n_items(); ++i)
      if (r.recorded(i)) items.push_back(i);
    if (items.empty()) throw Error("no item of the run is recorded yet");
    g.title = stat + ": mean over " + std::to_string(items.size()) + " item" + (items.size() == 1 ? "" : "s") + " (each item's tokens, then items)";
  }
  g.values = mean_stat(r, stat, items);
  if (g.units == "probability") g.scale.lo = 0, g.scale.hi = 1;
  return g;
}

HeadGridFigure score_grid(const RunReader& r, const std::string& probe, const std::string& score_in, int64_t item) {
  const std::vector<std::string> probes = r.probe_names();
  if (std::find(probes.begin(), probes.end(), probe) == probes.end()) {
    throw Error("the run holds no probe '" + probe + "' (it holds: " + (probes.empty() ? "none" : join(probes)) + ")");
  }
  HeadGridFigure g;
  std::tie(g.layers, g.heads) = run_shape(r);
  std::string score = score_in;
  if (item >= 0) {
    require_probe_item(r, item, probe);
    if (score.empty()) throw Error("say which per-item value of " + probe + " to show");
    g.values = to_vector(r.array("probes/" + probe + "/heads/" + score, item));
    g.title = probe + " " + score + ", item " + std::to_string(item);
  } else {
    if (r.status() != "complete")
      throw Error("the run is still recording (or was interrupted): the " + probe + " probe's combined scores are written when the job completes; "
                  "pick an item to see its own values");
    const ProbeResult p = r.probe(probe);
    if (score.empty()) score = p.rank_by;
    auto it = p.scores.find(score);
    if (it == p.scores.end()) {
      std::string list;
      for (auto& [s, t] : p.scores) list += (list.empty() ? "" : ", ") + s;
      throw Error("the " + probe + " probe has no score '" + score + "' (its scores: " + (list.empty() ? "none" : list) + ")");
    }
    g.values = to_vector(it->second);
    g.title = probe + ": " + score + " over " + std::to_string(p.items.size()) + " item" + (p.items.size() == 1 ? "" : "s");
  }
  if (static_cast<int64_t>(g.values.size()) != g.layers * g.heads) throw Error("the " + probe + " value " + score + " is not [layer, head]");
  g.label = score;
  return g;
}

RankingFigure ranking(const HeadGridFigure& grid, int top) {
  if (top < 1) throw Error("the ranking needs at least one head (top " + std::to_string(top) + ")");
  RankingFigure f;
  std::vector<RankedHead> all;
  for (int64_t l = 0; l < grid.layers; ++l)
    for (int64_t h = 0; h < grid.heads; ++h) {
      const double v = grid.values.at(static_cast<size_t>(l * grid.heads + h));
      if (!std::isnan(v)) all.push_back({static_cast<int>(l), static_cast<int>(h), v});
    }
  if (all.empty()) throw Error("no head has a value to rank");
  std::stable_sort(all.begin(), all.end(), [](const RankedHead& a, const RankedHead& b) { return a.value > b.value; });
  all.resize(std::min<size_t>(all.size(), static_cast<size_t>(top)));
  f.heads = all, f.label = grid.label, f.units = grid.units, f.scale = grid.scale;
  f.title = "top " + std::to_string(all.size()) + " heads: " + grid.title;
  return f;
}

TokenStripFigure token_strip(const RunReader& r, int64_t item, const std::string& value, const std::string& head, const TokenText& text) {
  check_item(r, item);
  TokenStripFigure f;
  f.tokens = token_texts(r, item, text);
  const size_t slash = value.find('/');
  if (slash != std::string::npos) {  // a probe's per-token value
    const std::string probe = value.substr(0, slash), v = value.substr(slash + 1);
    require_probe_item(r, item, probe);
    f.values = to_vector(r.array("probes/" + probe + "/tokens/" + v, item));
    f.label = value;
    f.title = value + ", item " + std::to_string(item);
  } else {
    const std::vector<std::string> stats = r.stat_names();
    if (std::find(stats.begin(), stats.end(), value) == stats.end())
      throw Error("the run records no statistic '" + value + "' (a probe's per-token value is named <probe>/<value>, e.g. preplan/fai)");
    const at::Tensor x = r.stat(value, item).to(at::kDouble);  // [T, L, H]
    const int id = head_stat_find(value.c_str());
    f.units = id >= 0 ? head_stat(id).units : "";
    if (head.empty()) {
      f.values = to_vector(x.flatten(1).mean(1));
      f.label = value + ", mean over heads";
    } else {
      const auto [L, H] = run_shape(r);
      const size_t dot = head.find('.');
      int l = -1, h = -1;
      try {
        if (dot == std::string::npos) throw std::invalid_argument(head);
        size_t u1 = 0, u2 = 0;
        l = std::stoi(head.substr(0, dot), &u1), h = std::stoi(head.substr(dot + 1), &u2);
        if (u1 != dot || u2 != head.size() - dot - 1) throw std::invalid_argument(head);
      } catch (const std::exception&) {
        throw Error("a head is LAYER.HEAD (e.g. 3.1), not '" + head + "'");
      }
      if (l < 0 || l >= L || h < 0 || h >= H)
        throw Error("head " + head + " is not in this model (" + std::to_string(L) + " layers x " + std::to_string(H) + " heads)");
      f.values = to_vector(x.select(1, l).select(1, h));
      f.label = value + " of head " + head;
    }
    if (f.units == "probability") f.scale.lo = 0, f.scale.hi = 1;
    f.title = f.label + ", item " + std::to_string(item);
  }
  if (f.values.size() != f.tokens.size()) throw Error("the values of " + value + " do not match the item's tokens");
  return f;
}

SinkViewFigure sink_view(const RunReader& r, int64_t item, const TokenText& text) {
  check_item(r, item);
  SinkViewFigure f;
  f.tokens = token_texts(r, item, text);
  const int64_t T = static_cast<int64_t>(f.tokens.size());
  f.layers = run_shape(r).first;
  const int64_t L = f.layers;
  const std::vector<std::string> stats = r.stat_names();
  const bool secondary = item_probe(r, item) == "secondary";
  // The secondary probe's own s_l(j) at every layer ("sink_score_l<l>"; runs scored before it stored them lack it).
  std::vector<std::vector<double>> per_layer;
  if (secondary) {
    try {
      for (int64_t l = 0; l < L; ++l) per_layer.push_back(to_vector(r.array("probes/secondary/tokens/sink_score_l" + std::to_string(l), item)));
    } catch (const Error&) {
      per_layer.clear();
    }
  }
  if (!per_layer.empty()) {
    f.score.assign(static_cast<size_t>(L * T), NAN);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = 0; j < T; ++j) f.score[static_cast<size_t>(l * T + j)] = per_layer[static_cast<size_t>(l)][static_cast<size_t>(j)];
    f.title = "sink score per layer and token, item " + std::to_string(item) + " (secondary probe)";
  } else if (std::find(stats.begin(), stats.end(), "key_recv") != stats.end()) {
    // s_l(j) = mean_h key_recv[j, l, h] / (number of query rows counted for key j), with the run's received-mass
    // window [lo, hi] of relative offsets (record: lo = 1, hi = -1, i.e. every later row).
    const nlohmann::json settings = r.header()["settings"];
    int64_t lo = 1, hi = -1;
    if (settings.is_object() && settings.contains("recv_window") && settings["recv_window"].is_array() && settings["recv_window"].size() == 2)
      lo = settings["recv_window"][0].get<int64_t>(), hi = settings["recv_window"][1].get<int64_t>();
    const at::Tensor recv = r.stat("key_recv", item).to(at::kDouble).mean(2);  // [T, L]
    f.score.assign(static_cast<size_t>(L * T), NAN);
    for (int64_t j = 0; j < T; ++j) {
      const int64_t first = j + lo, last = hi < 0 ? T - 1 : std::min(T - 1, j + hi);
      const int64_t count = std::max<int64_t>(0, last - first + 1);
      if (count == 0) continue;
      for (int64_t l = 0; l < L; ++l) f.score[static_cast<size_t>(l * T + j)] = recv[j][l].item<double>() / static_cast<double>(count);
    }
    f.title = "sink score per layer and token, item " + std::to_string(item) + " (from the recorded key_recv)";
  } else if (secondary) {
    f.score.assign(static_cast<size_t>(L * T), NAN);
    const std::vector<double> ls = to_vector(r.array("probes/secondary/tokens/l_start", item));
    const std::vector<double> sc = to_vector(r.array("probes/secondary/tokens/sink_score", item));
    for (int64_t j = 0; j < T; ++j)
      if (std::isfinite(ls[static_cast<size_t>(j)]) && ls[static_cast<size_t>(j)] >= 0 && ls[static_cast<size_t>(j)] < static_cast<double>(L))
        f.score[static_cast<size_t>(static_cast<int64_t>(ls[static_cast<size_t>(j)]) * T + j)] = sc[static_cast<size_t>(j)];
    f.title = "sinks, item " + std::to_string(item) + " (sink score stored at l_start of flagged tokens only)";
  } else {
    throw Error("item " + std::to_string(item) + " has no sink scores: record it with the key_recv statistic (headscope record --stats key_recv), "
                "or score it with the secondary probe");
  }
  f.units = "probability";
  if (secondary) {
    auto scalar = [&](const char* v) { return r.array(std::string("probes/secondary/scalars/") + v, item).item<double>(); };
    f.anchor = static_cast<int64_t>(scalar("anchor")), f.l_s = static_cast<int64_t>(scalar("l_s")), f.l_e = static_cast<int64_t>(scalar("l_e"));
    const std::vector<double> ls = to_vector(r.array("probes/secondary/tokens/l_start", item));
    const std::vector<double> lt = to_vector(r.array("probes/secondary/tokens/lifetime", item));
    const std::vector<double> kind = to_vector(r.array("probes/secondary/tokens/kind", item));
    std::vector<SinkToken> tokens;
    for (int64_t j = 0; j < T; ++j) {
      const double k = kind[static_cast<size_t>(j)];
      if (!std::isfinite(k)) continue;
      const std::string name = k == 1 ? "primary" : k == 2 ? "secondary" : "noise";
      f.sinks.push_back({j, static_cast<int64_t>(ls[static_cast<size_t>(j)]), static_cast<int64_t>(lt[static_cast<size_t>(j)]), name});
      tokens.push_back({j, f.sinks.back().l_start, f.sinks.back().lifetime, name});
    }
    for (auto& [key, n] : sink_levels(tokens)) f.levels.push_back({key.first, key.second, n});
  }
  return f;
}

TimelineFigure preplan_timeline(const RunReader& r, int64_t item, const TokenText& text) {
  require_probe_item(r, item, "preplan");
  TimelineFigure f;
  f.tokens = token_texts(r, item, text);
  f.waad = to_vector(r.array("probes/preplan/tokens/waad", item));
  f.fai = to_vector(r.array("probes/preplan/tokens/fai", item));
  const std::vector<double> pre = to_vector(r.array("probes/preplan/tokens/preplan", item));
  const std::vector<double> anc = to_vector(r.array("probes/preplan/tokens/anchor", item));
  for (size_t t = 0; t < pre.size(); ++t) {
    if (pre[t] == 1) f.preplan.push_back(static_cast<int64_t>(t));
    if (anc[t] == 1) f.anchor.push_back(static_cast<int64_t>(t));
  }
  const nlohmann::json m = r.meta(item);
  if (m.is_object() && m.contains("response_start")) f.response_start = m["response_start"].get<int64_t>();
  f.title = "preplan and anchor tokens, item " + std::to_string(item);
  return f;
}

CircuitFigure circuit_graph(const RunReader& r) {
  std::vector<ProbeResult> stages;
  const std::vector<std::string> names = r.probe_names();
  for (const std::string& n : names)
    if (n.rfind("circuit/", 0) == 0) {
      if (r.status() != "complete") throw Error("the circuit job is still running (or was interrupted): its stages are written when it completes");
      stages.push_back(r.probe(n));
    }
  if (stages.empty()) throw Error("the run holds no circuit (write one with: headscope circuit MODEL --task ioi -o RUN.h5)");
  CircuitFigure f;
  std::tie(f.layers, f.heads) = run_shape(r);
  std::map<std::pair<int, int>, int64_t> index;
  for (const CircuitHead& h : circuit_heads(stages)) {
    index[{h.layer, h.head}] = static_cast<int64_t>(f.nodes.size());
    f.nodes.push_back({h.layer, h.head, h.cls, h.stage, h.effect});
  }
  std::string task = stages[0].params.value("task", std::string());
  for (const ProbeResult& st : stages) {
    const std::string stage = st.summary.value("stage", std::string());
    std::vector<int64_t> receivers;
    if (st.summary.contains("receivers"))
      for (const auto& rcv : st.summary["receivers"]) {
        const std::string s = rcv.get<std::string>();
        const size_t dot = s.find('.');
        auto it = index.find({std::stoi(s.substr(0, dot)), std::stoi(s.substr(dot + 1))});
        if (it != index.end()) receivers.push_back(it->second);
      }
    for (const auto& sel : st.summary.value("selected", nlohmann::json::array())) {
      auto it = index.find({sel.at("layer").get<int>(), sel.at("head").get<int>()});
      if (it == index.end()) continue;
      if (stage == "logits") f.edges.push_back({it->second, -1});
      for (int64_t to : receivers)
        if (to != it->second) f.edges.push_back({it->second, to});
    }
  }
  f.title = "circuit" + (task.empty() ? "" : " (" + task + ")") + ": " + std::to_string(f.nodes.size()) + " heads";
  return f;
}

BindingFigure binding_mix(const RunReader& r, const std::string& probe_in) {
  const std::vector<std::string> all = names_in(r.probe_names(), "binding/");
  if (all.empty()) throw Error("the run holds no binding probe (write one with: headscope binding MODEL --task boxes -o RUN.h5)");
  std::string probe = probe_in;
  if (probe.empty()) {
    if (all.size() > 1) throw Error("the run holds binding at several layers (" + join(all) + "): choose one");
    probe = all[0];
  } else if (std::find(all.begin(), all.end(), probe) == all.end()) {
    throw Error("the run holds no probe '" + probe + "' (binding probes: " + join(all) + ")");
  }
  if (r.status() != "complete") throw Error("the binding job is still running (or was interrupted): its mix is written when it completes");
  const ProbeResult p = r.probe(probe);
  BindingFigure f;
  f.mechanisms = {"positional", "lexical", "reflexive", "no effect", "mixed"};
  for (const auto& row : p.summary.at("by_position")) {
    BindingRow b;
    b.p = row.at("p").get<int64_t>(), b.items = row.at("items").get<int64_t>();
    for (std::string m : f.mechanisms) b.shares.push_back(row.value(m == "no effect" ? "no_effect" : m, 0.0));  // the summary's keys
    f.rows.push_back(b);
  }
  f.title = "binding mechanisms by query position, layer " + std::to_string(p.summary.value("layer", -1)) + " (" +
            std::to_string(p.summary.value("items", 0)) + " items)";
  return f;
}

std::vector<NiahCondition> niah_table(const RunReader& r) {
  std::vector<NiahCondition> out;
  for (const std::string& n : r.probe_names()) {
    if (n.rfind("niah/", 0) != 0 && n.rfind("kv/", 0) != 0) continue;
    if (r.status() != "complete") throw Error("the experiment is still running (or was interrupted): its conditions are written when it completes");
    const ProbeResult p = r.probe(n);
    NiahCondition c;
    c.name = n;
    c.items = p.summary.value("items", int64_t{0});
    c.heads_changed = p.summary.value("heads_changed", int64_t{0});
    c.rouge1 = p.summary.value("niah_rouge1", NAN);
    c.kv_fraction = p.summary.value("kv_fraction", 1.0);
    out.push_back(c);
  }
  if (out.empty()) throw Error("the run holds no NIAH conditions (write them with: headscope experiment retrieval-masking|kv-budget ... -o RUN.h5)");
  return out;
}

CompareGridFigure compare_grid(const RunComparison& c, const std::string& name, int mark) {
  for (const CompareEntry& e : c.entries) {
    if (e.name != name) continue;
    CompareGridFigure f;
    f.layers = c.layers, f.heads = c.heads, f.diff = e.diff, f.label = e.name, f.units = e.units;
    f.name_a = base(c.path_a), f.name_b = base(c.path_b);
    for (int i = 0; i < mark && i < static_cast<int>(e.ranked.size()); ++i)
      if (!std::isnan(e.ranked[static_cast<size_t>(i)].diff)) f.marked.push_back({e.ranked[static_cast<size_t>(i)].layer, e.ranked[static_cast<size_t>(i)].head});
    f.title = e.name + ": b \xE2\x88\x92 a" + (e.kind == "stat" ? " (means over " + std::to_string(e.items) + " items)" : "");
    return f;
  }
  std::string list;
  for (const CompareEntry& e : c.entries) list += (list.empty() ? "" : ", ") + e.name;
  throw Error("the comparison has no '" + name + "' (it has: " + list + ")");
}

Figure run_figure(const RunReader& r, const std::string& path, const FigureRequest& q) {
  // The head grid asked for: a statistic, or a probe's score ("P/S", or probe and score apart).
  auto grid = [&]() -> HeadGridFigure {
    if (!q.stat.empty()) return stat_grid(r, q.stat, q.item);
    std::string probe = q.probe, score = q.score;
    if (probe.empty() && score.find('/') != std::string::npos) probe = score.substr(0, score.rfind('/')), score = score.substr(score.rfind('/') + 1);
    if (probe.empty()) throw Error("the " + q.kind + " figure needs a recorded statistic (--stat NAME) or a probe's score (--probe P [--score S])");
    return score_grid(r, probe, score, q.item);
  };
  // The item a one-item view shows: the one asked for, else the first recorded item of `probe` (any item for "").
  auto item_of = [&](const std::string& probe) {
    if (q.item >= 0) return q.item;
    for (int64_t i = 0; i < r.n_items(); ++i)
      if (r.recorded(i) && (probe.empty() || item_probe(r, i) == probe)) return i;
    throw Error("no item " + (probe.empty() ? std::string() : "of the " + probe + " probe ") + "is recorded in " + path);
  };
  if (q.kind == "grid") return grid();
  if (q.kind == "ranking") return ranking(grid(), q.top);
  if (q.kind == "tokens") {
    std::string value = q.stat.empty() ? q.score : q.stat;
    if (!q.probe.empty() && !q.score.empty()) value = q.probe + "/" + q.score;
    if (value.empty()) throw Error("the tokens figure needs a statistic (--stat NAME [--head L.H]) or a per-token value (--score PROBE/VALUE, e.g. preplan/fai)");
    return token_strip(r, item_of(""), value, q.head, run_token_text(r, q.checkpoint));
  }
  if (q.kind == "sinks") {
    const auto probes = r.probe_names();
    const bool secondary = std::find(probes.begin(), probes.end(), "secondary") != probes.end();
    return sink_view(r, item_of(secondary ? "secondary" : ""), run_token_text(r, q.checkpoint));
  }
  if (q.kind == "timeline") return preplan_timeline(r, item_of("preplan"), run_token_text(r, q.checkpoint));
  if (q.kind == "circuit") return circuit_graph(r);
  if (q.kind == "binding") return binding_mix(r, q.probe);
  if (q.kind == "compare") {
    if (q.other.empty()) throw Error("the compare figure needs the second run (--other B.h5; the figure shows B - RUN)");
    std::string name = q.stat.empty() ? q.score : q.stat;
    if (!q.probe.empty() && !q.score.empty()) name = q.probe + "/" + q.score;
    if (name.empty()) throw Error("the compare figure needs what to compare: --stat NAME or --score PROBE/SCORE");
    CompareOptions o;
    o.only = {name};
    return compare_grid(compare_runs(path, q.other, o), name, 3);
  }
  throw Error("unknown figure kind '" + q.kind + "' (kinds: grid, attention, tokens, sinks, timeline, ranking, circuit, binding, compare)");
}

AttentionFigure attention_view(const Model& m, const std::vector<int32_t>& ids, int layer, int head) {
  AttentionFigure f;
  f.probs = prompt_head_pattern(m, ids, layer, head);
  for (int32_t id : ids) f.tokens.push_back(m.has_tokenizer() ? m.tokenizer().token_text(id) : "#" + std::to_string(id));
  f.title = "attention of head " + head_label(layer, head) + " (" + std::to_string(ids.size()) + " tokens)";
  return f;
}

}  // namespace headscope
