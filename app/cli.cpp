// headscope: the command-line interface. Thin: every command calls the headscope_core library and prints
// a table for people or, with --json, one JSON document for scripts and tests.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <fstream>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "analysis/head_summary.h"
#include "datasets/prompts.h"
#include "hooks/interventions.h"
#include "store/run_file.h"
#include "store/run_writer.h"
#include "kernels/attention.h"
#include "kernels/device.h"
#include "model/error.h"
#include "model/model.h"

using namespace headscope;
using json = nlohmann::json;

namespace {

struct Common {
  bool json = false;
  int threads = 0;
};

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_flag("--json", c.json, "Print one JSON document on stdout");
  cmd->add_option("--threads", c.threads, "Compute threads (default: all cores)");
}

void print_json(const json& j) { std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n"; }

// A token's text for a terminal: control characters escaped, so one token stays on one line.
std::string printable(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else if (c == '\r') o += "\\r";
    else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); o += b; }
    else o += static_cast<char>(c);
  }
  return o;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string tok = s.substr(i, j - i);
    try {
      size_t used;
      long v = std::stol(tok, &used);
      if (used != tok.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(tok);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw Error("--ids: '" + tok + "' is not a token id (expected comma-separated non-negative integers)");
    }
    i = j + 1;
  }
  return ids;
}

std::vector<int32_t> prompt_ids(const Model& m, const std::string& prompt, const std::string& ids, bool no_bos) {
  if (!ids.empty()) return parse_ids(ids);
  if (prompt.empty()) throw Error("give a prompt with --prompt TEXT (or token ids with --ids 1,2,3)");
  return m.tokenizer().encode(prompt, !no_bos);
}

std::string tok_text(const Model& m, int32_t id) {
  return m.has_tokenizer() && id < m.tokenizer().vocab_size() ? m.tokenizer().token_text(id) : "#" + std::to_string(id);
}

int cmd_info(const std::string& path, const Common& c) {
  auto m = Model::load(path);
  const ModelConfig& cfg = m->config();
  DeviceInfo dev = query_devices();
  json j = cfg.to_json();
  j["path"] = path;
  j["format"] = m->checkpoint().format() == Checkpoint::Format::GGUF ? "gguf" : "safetensors";
  j["dtype"] = m->checkpoint().dominant_type();
  j["compute_dtype"] = "float32";
  j["params"] = m->n_params();
  j["tokenizer"] = m->has_tokenizer() ? json(m->tokenizer().kind()) : json(nullptr);
  j["devices"] = {{"cpu_threads", get_threads()}, {"cuda_built", dev.cuda_built}, {"cuda", dev.cuda_devices},
                  {"cuda_status", dev.cuda_status}};
  if (c.json) return print_json(j), 0;
  auto row = [](const char* k, const std::string& v) { std::printf("%-14s %s\n", k, v.c_str()); };
  row("model", path);
  row("family", cfg.family_name() + " (" + cfg.architecture + ")");
  row("layers", std::to_string(cfg.n_layers));
  row("heads", std::to_string(cfg.n_heads));
  row("kv-heads", std::to_string(cfg.n_kv_heads));
  row("d_model", std::to_string(cfg.d_model));
  row("d_head", std::to_string(cfg.d_head));
  row("d_ff", std::to_string(cfg.d_ff));
  char params[64];
  std::snprintf(params, sizeof params, "%lld (%.1f M)", static_cast<long long>(m->n_params()), m->n_params() / 1e6);
  row("params", params);
  row("dtype", j["dtype"].get<std::string>() + " on disk, float32 compute");
  row("vocab", std::to_string(cfg.vocab));
  row("context", std::to_string(cfg.context));
  if (cfg.rope.rotary_dim)
    row("rope", "dim " + std::to_string(cfg.rope.rotary_dim) + ", theta " + std::to_string(static_cast<long long>(cfg.rope.theta)) +
                    ", scaling " + cfg.rope.scaling);
  row("tokenizer", m->has_tokenizer() ? m->tokenizer().kind() : "none");
  row("cpu threads", std::to_string(get_threads()));
  row("cuda", dev.cuda_devices.empty() ? dev.cuda_status : dev.cuda_devices[0]);
  return 0;
}

int cmd_tokenize(const std::string& path, const std::string& text, bool no_bos, const Common& c) {
  auto m = Model::load(path);
  auto ids = m->tokenizer().encode(text, !no_bos);
  if (c.json) {
    json texts = json::array();
    for (auto id : ids) texts.push_back(m->tokenizer().token_text(id));
    return print_json({{"ids", ids}, {"tokens", texts}}), 0;
  }
  for (auto id : ids) std::printf("%7d  '%s'\n", id, printable(m->tokenizer().token_text(id)).c_str());
  std::printf("%zu tokens\n", ids.size());
  return 0;
}

int cmd_predict(const std::string& path, const std::string& prompt, const std::string& ids_arg, bool no_bos, int top_k,
                bool all_positions, const Common& c) {
  auto m = Model::load(path);
  auto ids = prompt_ids(*m, prompt, ids_arg, no_bos);
  at::Tensor logits = m->forward(ids, /*last_only=*/!all_positions);
  const int64_t T = static_cast<int64_t>(ids.size()), first = T - logits.size(0);
  top_k = static_cast<int>(std::min<int64_t>(std::max(top_k, 1), logits.size(1)));
  at::Tensor probs = at::softmax(logits, -1);
  json positions = json::array();
  for (int64_t t = first; t < T; ++t) {
    auto [vals, idx] = logits[t - first].topk(top_k);
    json top = json::array();
    for (int i = 0; i < top_k; ++i) {
      int32_t id = static_cast<int32_t>(idx[i].item<int64_t>());
      top.push_back({{"id", id}, {"text", tok_text(*m, id)}, {"logit", vals[i].item<float>()},
                     {"prob", probs[t - first][id].item<float>()}});
    }
    positions.push_back({{"index", t}, {"top", top}});
  }
  if (c.json) return print_json({{"tokens", ids}, {"positions", positions}}), 0;
  for (auto& p : positions) {
    int64_t t = p["index"];
    std::printf("after token %lld '%s':\n", static_cast<long long>(t), printable(tok_text(*m, ids[t])).c_str());
    for (auto& e : p["top"])
      std::printf("  %7d  %-20s logit %9.4f  p %.4f\n", e["id"].get<int>(), ("'" + printable(e["text"]) + "'").c_str(),
                  e["logit"].get<float>(), e["prob"].get<float>());
  }
  return 0;
}

int cmd_generate(const std::string& path, const std::string& prompt, const std::string& ids_arg, bool no_bos, int n,
                 const Common& c) {
  auto m = Model::load(path);
  auto ids = prompt_ids(*m, prompt, ids_arg, no_bos);
  if (n < 0) throw Error("-n must be >= 0");
  if (m->config().learned_positions && ids.size() + n > static_cast<size_t>(m->config().context))
    throw Error("prompt + generated tokens exceed this model's context of " + std::to_string(m->config().context));
  auto gen = m->generate_greedy(ids, n);
  std::string text;
  if (m->has_tokenizer()) {
    std::vector<int32_t> all = ids;
    all.insert(all.end(), gen.begin(), gen.end());
    if (!all.empty() && all[0] == m->tokenizer().bos_id()) all.erase(all.begin());
    text = m->tokenizer().decode(all);
  }
  if (c.json) return print_json({{"prompt_tokens", ids}, {"generated", gen}, {"text", text}}), 0;
  std::printf("%s\n", text.c_str());
  return 0;
}

int cmd_bench(const std::string& path, const std::vector<int>& lengths, int repeat, const std::string& logits_mode,
              const Common& c) {
  if (logits_mode != "last" && logits_mode != "all") throw Error("--logits must be 'last' or 'all'");
  const bool last_only = logits_mode == "last";
  auto m = Model::load(path);
  json results = json::array();
  std::mt19937 rng(0);
  for (int T : lengths) {
    if (T <= 0) throw Error("--tokens: lengths must be positive");
    std::vector<int32_t> ids(T);
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(m->config().vocab - 1));
    for (auto& id : ids) id = dist(rng);
    m->forward(ids, last_only);  // warm-up
    double best = 1e30;
    for (int r = 0; r < std::max(repeat, 1); ++r) {
      auto t0 = std::chrono::steady_clock::now();
      at::Tensor logits = m->forward(ids, last_only);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    results.push_back({{"tokens", T}, {"seconds", best}, {"tokens_per_s", T / best}});
    if (!c.json) std::fprintf(stderr, "T=%5d  %.3f s  %.1f tok/s\n", T, best, T / best);
  }
  json j = {{"model", path}, {"threads", get_threads()}, {"logits", logits_mode}, {"results", results}};
  if (c.json) print_json(j);
  return 0;
}

int cmd_attn(const std::string& path, const std::string& prompt, const std::string& ids_arg, int random_tokens, int seed,
             bool no_bos, const std::string& head, int top, bool stats, const Common& c) {
  auto m = Model::load(path);
  const ModelConfig& cfg = m->config();
  std::vector<int32_t> ids;
  if (random_tokens > 0) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(cfg.vocab - 1));
    ids.resize(random_tokens);
    for (auto& id : ids) id = dist(rng);
  } else {
    ids = prompt_ids(*m, prompt, ids_arg, no_bos);
  }
  if (head.empty() && !stats) throw Error("say what to show: --head L.H (a head's top keys per query) and/or --stats");
  if (top < 1 || top > kMaxTopK) throw Error("--top must be between 1 and " + std::to_string(kMaxTopK));
  AttnRecord rec;
  rec.stats = true;
  rec.topk = head.empty() ? 0 : top;
  auto t0 = std::chrono::steady_clock::now();
  ForwardResult r = m->run(ids, rec, /*last_only=*/true);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t T = static_cast<int64_t>(ids.size());
  json j = {{"tokens", T}, {"seconds", secs}, {"layers", cfg.n_layers}, {"heads", cfg.n_heads}};
  if (stats) {
    json table = json::array();
    const HeadSummary hs = summarize_heads(r);
    for (int l = 0; l < cfg.n_layers; ++l)
      for (int h = 0; h < cfg.n_heads; ++h) {
        json e = {{"layer", l}, {"head", h}};
        for (int k = 0; k < kHeadStatCount; ++k) e[head_stat_name(static_cast<HeadStat>(k))] = hs.at(static_cast<HeadStat>(k), l, h);
        table.push_back(e);
      }
    j["heads_table"] = table;
    if (!c.json) {
      std::printf("%-6s %10s %10s %10s %10s   (means over %lld queries; sink = key 0)\n", "head", "entropy", "sink mass",
                  "distance", "max prob", static_cast<long long>(T));
      for (auto& e : table)
        std::printf("%-6s %10.4f %10.4f %10.2f %10.4f\n",
                    (std::to_string(e["layer"].get<int>()) + "." + std::to_string(e["head"].get<int>())).c_str(),
                    e["entropy"].get<float>(), e["sink_mass"].get<float>(), e["mean_dist"].get<float>(), e["max_prob"].get<float>());
    }
  }
  if (!head.empty()) {
    auto hl = parse_heads(head, cfg);
    if (hl.size() != 1) throw Error("--head takes one head, e.g. 3.1");
    auto [l, h] = hl[0];
    const AttnLayerStats& a = r.attn[l];
    json rows = json::array();
    for (int64_t t = 0; t < T; ++t) {
      json keys = json::array();
      for (int i = 0; i < top; ++i) {
        int32_t key = a.topk_idx[h][t][i].item<int32_t>();
        if (key < 0) break;
        keys.push_back({{"key", key}, {"text", tok_text(*m, ids[key])}, {"prob", a.topk_prob[h][t][i].item<float>()}});
      }
      rows.push_back({{"query", t}, {"text", tok_text(*m, ids[t])}, {"top", keys}});
    }
    j["head"] = head;
    j["queries"] = rows;
    if (!c.json) {
      std::printf("head %s: top %d keys per query\n", head.c_str(), top);
      for (auto& row : rows) {
        std::printf("%5lld %-16s ->", static_cast<long long>(row["query"].get<int64_t>()),
                    ("'" + printable(row["text"]) + "'").c_str());
        for (auto& k : row["top"])
          std::printf("  %lld '%s' %.3f", static_cast<long long>(k["key"].get<int64_t>()), printable(k["text"]).c_str(),
                      k["prob"].get<float>());
        std::printf("\n");
      }
    }
  }
  if (c.json) print_json(j);
  else std::fprintf(stderr, "%lld tokens, forward with statistics for %lld heads: %.3f s\n", static_cast<long long>(T),
                    static_cast<long long>(cfg.n_layers * cfg.n_heads), secs);
  return 0;
}

// The intervention spec of --spec FILE, or of --heads/--mode; an empty list when neither is given and
// `optional`.
json intervention_spec(const std::string& spec_path, const std::string& heads, const std::string& mode, const ModelConfig& cfg,
                       bool optional) {
  if (!spec_path.empty()) {
    std::ifstream in(spec_path);
    if (!in) throw Error(spec_path + ": cannot open");
    json spec = json::parse(in, nullptr, false);
    if (spec.is_discarded()) throw Error(spec_path + ": not valid JSON");
    return spec;
  }
  if (heads.empty()) {
    if (optional) return json::array();
    throw Error("say what to change: --heads 3.1,4.2 [--mode zero|mean|scale=F|act] or --spec SPEC.json");
  }
  json list = json::array();
  for (auto& [l, h] : parse_heads(heads, cfg)) list.push_back(std::to_string(l) + "." + std::to_string(h));
  if (mode == "zero") return json::array({{{"type", "ablate"}, {"heads", list}}});
  if (mode == "mean") return json::array({{{"type", "ablate"}, {"heads", list}, {"mode", "mean"}}});
  if (mode == "act") return json::array({{{"type", "act"}, {"heads", list}}});  // ACT calibration, tau 0.1, beta 0.4
  if (mode.rfind("scale=", 0) == 0) {
    float f;
    try { f = std::stof(mode.substr(6)); } catch (const std::exception&) { throw Error("--mode scale=F needs a number"); }
    return json::array({{{"type", "scale"}, {"heads", list}, {"factor", f}}});
  }
  throw Error("--mode must be zero, mean, scale=F or act");
}

// Per-head means for mean ablation, from --mean-data, when the spec needs them.
HeadMeans spec_means(const json& spec, const Model& m, const std::string& mean_data) {
  if (!spec_needs_means(spec)) return {};
  if (mean_data.empty()) throw Error("mean ablation needs --mean-data FILE (prompts, one per line, or JSONL with \"text\")");
  std::vector<std::string> texts;
  for (auto& item : load_prompts(mean_data)) texts.push_back(item.text);
  return compute_head_means(m, texts);
}

int cmd_ablate(const std::string& path, const std::string& prompt, const std::string& ids_arg, bool no_bos,
               const std::string& spec_path, const std::string& heads, const std::string& mode,
               const std::string& mean_data, const std::vector<std::string>& targets, int top_k, const Common& c) {
  auto m = Model::load(path);
  const ModelConfig& cfg = m->config();
  auto ids = prompt_ids(*m, prompt, ids_arg, no_bos);
  const json spec = intervention_spec(spec_path, heads, mode, cfg, false);
  const HeadMeans means = spec_means(spec, *m, mean_data);
  Hooks hooks;
  install_interventions(spec, cfg, hooks, nullptr, &means);
  at::Tensor before = m->run(ids, AttnRecord{}, true).logits[0];
  at::Tensor after = m->run(ids, AttnRecord{}, true, &hooks).logits[0];
  at::Tensor lp_b = at::log_softmax(before.to(at::kDouble), -1), lp_a = at::log_softmax(after.to(at::kDouble), -1);
  const double kl = (lp_b.exp() * (lp_b - lp_a)).sum().item<double>();
  auto top = [&](const at::Tensor& logits) {
    at::Tensor p = at::softmax(logits, -1);
    auto [v, idx] = logits.topk(top_k);
    json out = json::array();
    for (int i = 0; i < top_k; ++i) {
      int32_t id = static_cast<int32_t>(idx[i].item<int64_t>());
      out.push_back({{"id", id}, {"text", tok_text(*m, id)}, {"logit", v[i].item<float>()}, {"prob", p[id].item<float>()}});
    }
    return out;
  };
  json tj = json::array();
  for (const std::string& t : targets) {
    auto tids = m->tokenizer().encode(t, false);
    if (tids.empty()) throw Error("--targets: '" + t + "' has no tokens");
    const int32_t id = tids[0];  // first token of the answer, as in logit-difference metrics
    tj.push_back({{"text", t}, {"id", id}, {"logit_before", before[id].item<float>()}, {"logit_after", after[id].item<float>()}});
  }
  json j = {{"tokens", ids}, {"spec", spec}, {"kl", kl}, {"before", top(before)}, {"after", top(after)}, {"targets", tj}};
  if (tj.size() >= 2) {
    j["logit_diff_before"] = tj[0]["logit_before"].get<double>() - tj[1]["logit_before"].get<double>();
    j["logit_diff_after"] = tj[0]["logit_after"].get<double>() - tj[1]["logit_after"].get<double>();
  }
  if (c.json) return print_json(j), 0;
  std::printf("intervention: %s\n", spec.dump().c_str());
  std::printf("%-28s %-28s\n", "before", "after");
  for (int i = 0; i < top_k; ++i)
    std::printf("%-20s %6.3f  %-20s %6.3f\n", ("'" + printable(j["before"][i]["text"]) + "'").c_str(), j["before"][i]["prob"].get<float>(),
                ("'" + printable(j["after"][i]["text"]) + "'").c_str(), j["after"][i]["prob"].get<float>());
  std::printf("KL(before || after) = %.6f nats\n", kl);
  for (auto& t : tj)
    std::printf("logit '%s': %.4f -> %.4f\n", printable(t["text"]).c_str(), t["logit_before"].get<float>(), t["logit_after"].get<float>());
  if (j.contains("logit_diff_before"))
    std::printf("logit difference '%s' - '%s': %.4f -> %.4f\n", printable(tj[0]["text"]).c_str(), printable(tj[1]["text"]).c_str(),
                j["logit_diff_before"].get<double>(), j["logit_diff_after"].get<double>());
  return 0;
}

struct RecordOptions {
  std::string data, output, spec_path, heads, mode = "zero", mean_data;
  std::vector<std::string> stats{"all"}, hooks;
  bool force = false, resume = false, compare_plain = false;
  int64_t part_items = 0;
};

// One line of progress on stderr: rewritten in place on a terminal, one line per item otherwise.
struct Progress {
  bool tty = isatty(2);
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
  void item(int64_t committed, int64_t total, int64_t done_now, int64_t left_now, int64_t tokens) const {
    const double secs = seconds();
    const double eta = done_now ? secs / done_now * left_now : 0;
    std::string bar;
    if (tty) {
      const int64_t w = 24, fill = total ? committed * w / total : w;
      bar = "|" + std::string(static_cast<size_t>(fill), '#') + std::string(static_cast<size_t>(w - fill), '.') + "| ";
    }
    std::fprintf(stderr, tty ? "\r%s[%lld/%lld items recorded] %.0f tok/s, ETA %.0f s   " : "%s[%lld/%lld items recorded] %.0f tok/s, ETA %.0f s\n",
                 bar.c_str(), static_cast<long long>(committed), static_cast<long long>(total), tokens / std::max(secs, 1e-9), eta);
  }
};

int cmd_record(const std::string& path, const RecordOptions& o, const std::string& command_line, const Common& c) {
  if (o.force && o.resume) throw Error("--force and --resume exclude each other");
  auto m = Model::load(path);
  const ModelConfig& cfg = m->config();
  auto prompts = load_prompts(o.data);
  RunPlan plan;
  plan.command_line = command_line;
  plan.model = {{"path", path}, {"family", cfg.family_name()}, {"architecture", cfg.architecture},
                {"config", cfg.to_json().dump()}, {"checkpoint_sha256", sha256_file(m->checkpoint().files().at(0))}};
  plan.items_per_part = o.part_items;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto ids = m->tokenizer().encode(prompts[i].text);
    if (ids.empty()) throw Error(o.data + ": item " + std::to_string(i + 1) + " has no tokens");
    plan.items.push_back({prompts[i].text, prompts[i].meta, std::move(ids)});
  }
  // What to record: statistics (--stats) and activations (--hooks).
  std::vector<std::string> stats;
  for (const std::string& s : o.stats) {
    if (s == "all") stats = run_stat_names();
    else if (s == "none") stats.clear();
    else if (std::find(run_stat_names().begin(), run_stat_names().end(), s) == run_stat_names().end()) {
      std::string known;
      for (auto& n : run_stat_names()) known += " " + n;
      throw Error("--stats: unknown statistic '" + s + "' (known:" + known + ", all, none)");
    } else if (std::find(stats.begin(), stats.end(), s) == stats.end()) stats.push_back(s);
  }
  if (stats.empty() && o.hooks.empty()) throw Error("nothing to record: --stats none and no --hooks");
  for (const std::string& s : stats)
    plan.arrays.push_back({"stats/" + s, s == "argmax", {cfg.n_layers, cfg.n_heads}, run_stat_units(s), "[token, layer, head]"});
  bool all_positions = false;
  for (const std::string& h : o.hooks) {
    std::vector<int64_t> shape = hook_shape(cfg, h);
    std::string dims = "[token";
    for (int64_t x : shape) dims += ", " + std::to_string(x);
    plan.arrays.push_back({"acts/" + h, false, shape, h == "unembed.hook_logits" ? "logit" : "activation", dims + "]"});
    all_positions |= h.rfind("ln_final", 0) == 0 || h.rfind("unembed", 0) == 0;
  }
  plan.spec = intervention_spec(o.spec_path, o.heads, o.mode, cfg, true);
  const HeadMeans means = spec_means(plan.spec, *m, o.mean_data);
  AttnRecord rec;
  rec.stats = !stats.empty();
  rec.key_recv = std::find(stats.begin(), stats.end(), "key_recv") != stats.end();
  plan.settings = {{"sinks", rec.sinks}, {"waad_window", rec.waad_window}, {"recv_window", {rec.recv_lo, rec.recv_hi}},
                   {"mean_data_sha256", o.mean_data.empty() ? "" : sha256_file(o.mean_data)}};
  Hooks hooks;
  install_interventions(plan.spec, cfg, hooks, nullptr, &means);
  ActivationCache acts;  // installed after the interventions: it records the values the forward goes on with
  acts.record(hooks, o.hooks);

  std::vector<std::vector<int32_t>> item_ids;
  for (const PlannedItem& it : plan.items) item_ids.push_back(it.tokens);
  RunWriter w(o.output, std::move(plan), o.force ? RunOpen::overwrite : o.resume ? RunOpen::resume : RunOpen::create);
  const std::vector<int64_t>& todo = w.pending();
  if (w.resumed())
    std::fprintf(stderr, "resuming %s: %lld of %lld items already recorded\n", o.output.c_str(), static_cast<long long>(w.committed()),
                 static_cast<long long>(w.n_items()));
  Progress prog;
  int64_t tokens = 0;
  for (size_t n = 0; n < todo.size(); ++n) {
    const int64_t i = todo[n];
    const std::vector<int32_t>& ids = item_ids[i];
    acts.values.clear();
    ForwardResult r = m->run(ids, rec, !all_positions, hooks.empty() ? nullptr : &hooks);
    std::map<std::string, at::Tensor> arrays;
    if (rec.stats)
      for (auto& [name, t] : run_item_stats(r))
        if (std::find(stats.begin(), stats.end(), name) != stats.end()) arrays["stats/" + name] = t;
    for (const std::string& h : o.hooks) {
      auto it = acts.values.find(h);
      if (it == acts.values.end())
        throw Error("hook " + h + " did not run in this model (hook_resid_mid exists only with a sequential residual stream)");
      arrays["acts/" + h] = it->second;
    }
    tokens += static_cast<int64_t>(ids.size());
    w.append(i, std::move(arrays));
    prog.item(w.committed(), w.n_items(), static_cast<int64_t>(n + 1), static_cast<int64_t>(todo.size() - n - 1), tokens);
  }
  w.finish();
  const double rec_secs = prog.seconds();
  if (prog.tty && !todo.empty()) std::fprintf(stderr, "\n");
  json j = {{"output", o.output}, {"items", w.n_items()}, {"recorded_now", todo.size()}, {"resumed", w.resumed()},
            {"tokens", tokens}, {"seconds", rec_secs}, {"tokens_per_s", tokens / std::max(rec_secs, 1e-9)}};
  if (o.compare_plain) {
    // The same prompts through the plain forward (no statistics, nothing written), in this process.
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t i : todo) m->forward(item_ids[i], /*last_only=*/true);
    const double plain_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    const double bytes = static_cast<double>(std::filesystem::file_size(o.output));
    j["plain_seconds"] = plain_secs;
    j["plain_tokens_per_s"] = tokens / plain_secs;
    j["throughput_ratio"] = plain_secs / rec_secs;
    j["file_bytes"] = bytes;
    j["bytes_per_token"] = bytes / tokens;
  }
  if (c.json) return print_json(j), 0;
  if (todo.empty()) std::printf("%s is complete: nothing to record\n", o.output.c_str());
  else
    std::printf("wrote %s: %lld items (%zu this run), %lld tokens, %.1f tok/s\n", o.output.c_str(), static_cast<long long>(w.n_items()),
                todo.size(), static_cast<long long>(tokens), tokens / rec_secs);
  if (o.compare_plain)
    std::printf("plain forward: %.1f tok/s; recording / plain throughput %.2fx; %.0f bytes per token\n",
                j["plain_tokens_per_s"].get<double>(), j["throughput_ratio"].get<double>(), j["bytes_per_token"].get<double>());
  return 0;
}

int cmd_inspect(const std::string& path, const Common& c) {
  RunReader r(path);
  json j = r.header();
  j["items"] = r.n_items();
  j["recorded"] = r.n_recorded();
  j["stats"] = r.stat_names();
  j["acts"] = r.act_names();
  const int64_t tokens = r.n_tokens();
  j["tokens"] = tokens;
  if (c.json) return print_json(j), 0;
  std::printf("run file     %s (schema %lld, headscope %s, created %s)\n", path.c_str(),
              static_cast<long long>(j["schema_version"].get<int64_t>()), j["headscope_version"].get<std::string>().c_str(),
              j["created"].get<std::string>().c_str());
  std::printf("command      %s\n", j["command_line"].get<std::string>().c_str());
  std::printf("model        %s (%s), sha256 %s\n", j["model"]["path"].get<std::string>().c_str(),
              j["model"]["architecture"].get<std::string>().c_str(), j["model"]["checkpoint_sha256"].get<std::string>().c_str());
  if (r.status() == "complete")
    std::printf("items        %lld (%lld tokens), complete\n", static_cast<long long>(r.n_items()), static_cast<long long>(tokens));
  else
    std::printf("items        %lld of %lld recorded (%lld tokens planned): interrupted or still running; "
                "`headscope record ... --resume` completes it\n",
                static_cast<long long>(r.n_recorded()), static_cast<long long>(r.n_items()), static_cast<long long>(tokens));
  if (!j["spec"].empty()) std::printf("intervention %s\n", j["spec"].dump().c_str());
  std::string names;
  for (auto& n : r.stat_names()) names += n + " ";
  if (!names.empty()) std::printf("statistics   %s[token, layer, head]\n", names.c_str());
  for (auto& h : r.act_names()) std::printf("activations  %s\n", h.c_str());
  return 0;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"headscope: load a transformer checkpoint, run it, and look inside its attention heads"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("headscope ") + HEADSCOPE_VERSION);
  Common common;
  std::string model, prompt, ids, text;
  bool no_bos = false, all_positions = false;
  int top_k = 5, n = 20, repeat = 3;
  std::string logits_mode = "last";
  std::vector<int> lengths{128, 512, 2048};

  // Every command that runs the model on a prompt takes the same three inputs.
  auto add_prompt_options = [&](CLI::App* cmd) {
    cmd->add_option("MODEL", model, "Checkpoint")->required();
    cmd->add_option("--prompt", prompt, "Prompt text");
    cmd->add_option("--ids", ids, "Token ids instead of a prompt: 1,2,3");
    cmd->add_flag("--no-bos", no_bos, "Do not prepend the BOS token");
  };

  auto* info = app.add_subcommand("info", "Describe a model: family, layers, heads, sizes, dtype, vocabulary");
  info->add_option("MODEL", model, "Checkpoint: .gguf, .safetensors, or a folder with config.json")->required();
  add_common(info, common);

  auto* tokenize = app.add_subcommand("tokenize", "Show the tokens of a text");
  tokenize->add_option("MODEL", model, "Checkpoint")->required();
  tokenize->add_option("TEXT", text, "Text to tokenize")->required();
  tokenize->add_flag("--no-bos", no_bos, "Do not prepend the BOS token even if the model's tokenizer does");
  add_common(tokenize, common);

  auto* predict = app.add_subcommand("predict", "Top next tokens after a prompt");
  add_prompt_options(predict);
  predict->add_option("--top-k", top_k, "How many tokens to show")->capture_default_str();
  predict->add_flag("--all-positions", all_positions, "Predictions at every position, not only the last");
  add_common(predict, common);

  auto* generate = app.add_subcommand("generate", "Greedy continuation of a prompt");
  add_prompt_options(generate);
  generate->add_option("-n", n, "Tokens to generate")->capture_default_str();
  add_common(generate, common);

  auto* bench = app.add_subcommand("bench", "Prompt-processing speed: one full forward over T tokens");
  bench->add_option("MODEL", model, "Checkpoint")->required();
  bench->add_option("--tokens", lengths, "Prompt lengths")->delimiter(',')->capture_default_str();
  bench->add_option("--repeat", repeat, "Timed repeats (best is reported)")->capture_default_str();
  bench->add_option("--logits", logits_mode, "Unembed the last position only (as llama.cpp does) or all positions")
      ->capture_default_str();
  add_common(bench, common);

  auto* attn = app.add_subcommand("attn", "Look at attention heads: a head's top keys per query, or a per-head table");
  std::string head;
  int top = 5, random_tokens = 0, seed = 0;
  bool stats = false;
  add_prompt_options(attn);
  attn->add_option("--random-tokens", random_tokens, "Run on T random token ids instead of a prompt (for scale tests)");
  attn->add_option("--seed", seed, "Seed for --random-tokens")->capture_default_str();
  attn->add_option("--head", head, "Show this head (LAYER.HEAD): its top keys for every query");
  attn->add_option("--top", top, "Keys per query for --head (1..16)")->capture_default_str();
  attn->add_flag("--stats", stats, "Per-head summary for all heads: mean entropy, sink mass, distance, max probability");
  add_common(attn, common);

  auto* ablate = app.add_subcommand("ablate", "Change heads (ablate, scale, patch, steer) and compare the next-token predictions");
  std::string spec_path, heads, mode = "zero";
  std::vector<std::string> targets;
  add_prompt_options(ablate);
  ablate->add_option("--spec", spec_path, "Intervention spec (JSON; see hooks/interventions.h)");
  ablate->add_option("--heads", heads, "Heads to change: 3.1,4.2");
  ablate->add_option("--mode", mode, "zero | mean | scale=F | act (ACT attention calibration)")->capture_default_str();
  std::string mean_data;
  ablate->add_option("--mean-data", mean_data, "Reference prompts for --mode mean (text, one per line, or JSONL)");
  ablate->add_option("--targets", targets, "Answer strings whose first-token logits to compare (two give a logit difference)")
      ->delimiter(',');
  ablate->add_option("--top-k", top_k, "How many tokens to show")->capture_default_str();
  add_common(ablate, common);

  auto* record = app.add_subcommand("record", "Record every head's statistics (and chosen activations) over a prompt set into an "
                                              "HDF5 run file; a killed job continues with --resume");
  RecordOptions ro;
  record->add_option("MODEL", model, "Checkpoint")->required();
  record->add_option("--data", ro.data, "Prompts: JSONL ({\"text\", \"meta\"}) or text, one per line")->required();
  record->add_option("-o,--output", ro.output, "Run file to write (.h5)")->required();
  record->add_option("--stats", ro.stats, "Statistics per token, layer and head: all, none, or a list of entropy, max_prob, argmax, "
                                          "sink_mass, mean_dist, waad, key_recv")->delimiter(',')->capture_default_str();
  record->add_option("--hooks", ro.hooks, "Activations to store per token: hook names, e.g. blocks.3.attn.hook_z,blocks.5.hook_resid_post "
                                          "(values after any intervention)")->delimiter(',');
  record->add_option("--spec", ro.spec_path, "Intervention spec applied while recording (JSON; see hooks/interventions.h)");
  record->add_option("--heads", ro.heads, "Heads to change while recording: 3.1,4.2 (with --mode)");
  record->add_option("--mode", ro.mode, "zero | mean | scale=F | act, for --heads")->capture_default_str();
  record->add_option("--mean-data", ro.mean_data, "Reference prompts for mean ablation");
  record->add_flag("--force", ro.force, "Overwrite an existing run file");
  record->add_flag("--resume", ro.resume, "Continue an interrupted job: record only the items the run file lacks");
  record->add_option("--part-items", ro.part_items, "Items per committed part (default: items / 4096, at least 1)");
  record->add_flag("--compare-plain", ro.compare_plain,
                   "Benchmark: afterwards run the same prompts through the plain forward and report the throughput ratio "
                   "and the file size per token");
  add_common(record, common);

  auto* inspect = app.add_subcommand("inspect", "Summarise a run file");
  inspect->add_option("RUN", model, "Run file (.h5)")->required();
  add_common(inspect, common);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    set_threads(common.threads);
    if (*info) return cmd_info(model, common);
    if (*tokenize) return cmd_tokenize(model, text, no_bos, common);
    if (*predict) return cmd_predict(model, prompt, ids, no_bos, top_k, all_positions, common);
    if (*generate) return cmd_generate(model, prompt, ids, no_bos, n, common);
    if (*bench) return cmd_bench(model, lengths, repeat, logits_mode, common);
    if (*ablate) return cmd_ablate(model, prompt, ids, no_bos, spec_path, heads, mode, mean_data, targets, top_k, common);
    if (*record) {
      std::string cl;
      for (int i = 0; i < argc; ++i) cl += (i ? " " : "") + std::string(argv[i]);
      return cmd_record(model, ro, cl, common);
    }
    if (*inspect) return cmd_inspect(model, common);
    if (*attn) return cmd_attn(model, prompt, ids, random_tokens, seed, no_bos, head, top, stats, common);
  } catch (const headscope::Error& e) {
    std::fprintf(stderr, "headscope: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "headscope: error: %s\n", first_line(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "headscope: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "headscope: error: %s\n", first_line(e.what()).c_str());
    return 1;
  }
  return 0;
}
