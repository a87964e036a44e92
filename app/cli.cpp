// headscope: the command-line interface. Thin: every command calls the headscope_core library and prints
// a table for people or, with --json, one JSON document for scripts and tests.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <tuple>
#include <set>
#include <fstream>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "analysis/figure.h"
#include "analysis/head_summary.h"
#include "core/error.h"
#include "core/text.h"
#include "datasets/prompts.h"
#include "hooks/interventions.h"
#include "kernels/attention.h"
#include "kernels/device.h"
#include "probes/binding.h"
#include "probes/circuit.h"
#include "probes/induction.h"
#include "probes/preplan.h"
#include "probes/secondary_sinks.h"
#include "probes/sinks.h"
#include "datasets/colored_objects.h"
#include "datasets/ioi.h"
#include "probes/niah_eval.h"
#include "runs/patching.h"
#include "probes/retrieval.h"
#include "probes/run_views.h"
#include "runs/compare.h"
#include "probes/score.h"
#include "model/model.h"
#include "runs/means.h"
#include "runs/predict.h"
#include "runs/record.h"
#include "store/run_file.h"
#include "store/run_writer.h"

using namespace headscope;
using json = nlohmann::json;

namespace {

struct Common {
  bool json = false;
  int threads = 0;
  std::string device = "cpu", matmul = "fp32";
};

// --device and --matmul as the library's ComputeDevice.
ComputeDevice compute_device(const Common& c) {
  ComputeDevice d = parse_device(c.device);
  if (c.matmul != "fp32" && c.matmul != "bf16") throw Error("--matmul must be fp32 or bf16, not '" + c.matmul + "'");
  d.bf16 = c.matmul == "bf16";
  return d;
}

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_flag("--json", c.json, "Print one JSON document on stdout");
  cmd->add_option("--threads", c.threads, "Compute threads (default: $HEADSCOPE_THREADS, else all cores)");
  cmd->add_option("--device", c.device, "Where the model computes: cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--matmul", c.matmul, "Linear layers in fp32 (exact reference numbers) or bf16 (weights kept in bf16, "
                                        "fp32 accumulation; several times faster where the CPU has AMX or AVX512-BF16)")
      ->capture_default_str();
}

json to_json(const std::vector<TokenScore>& top) {
  json out = json::array();
  for (const TokenScore& t : top) out.push_back({{"id", t.id}, {"text", t.text}, {"logit", t.logit}, {"prob", t.prob}});
  return out;
}

// CLI11 check: a positive integer (named by CLI11 as "--option: ...").
std::string positive_integer(const std::string& v) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || std::isspace(static_cast<unsigned char>(v[0])) || *end != 0 || errno != 0 || n < 1)
    return "must be a positive integer, not '" + v + "'";
  return "";
}

// CLI11 check: a finite number for which `ok` holds; `rule` says which ("in (0, 1]").
std::function<std::string(const std::string&)> number_where(const char* rule, bool (*ok)(double)) {
  return [rule, ok](const std::string& v) -> std::string {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || std::isspace(static_cast<unsigned char>(v[0])) || *end != 0 || !std::isfinite(x) || !ok(x))
      return "must be a number " + std::string(rule) + ", not '" + v + "'";
    return "";
  };
}

void print_json(const json& j) { std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n"; }

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

// What every command that runs the model on one prompt is given: the text or the ids, and how to fit the context.
struct PromptArgs {
  std::string text, ids;
  bool no_bos = false;
  ContextPolicy context;
};

// The prompt's token ids (from --ids or --prompt), fitted to the model's context (--max-tokens,
// --allow-beyond-context); `extra` tokens are still to be generated.
std::vector<int32_t> prompt_ids(const Model& m, const PromptArgs& p, int64_t extra = 0) {
  std::vector<int32_t> out;
  if (!p.ids.empty()) out = parse_ids(p.ids);
  else if (p.text.empty()) throw Error("give a prompt with --prompt TEXT (or token ids with --ids 1,2,3)");
  else out = m.tokenizer().encode(p.text, !p.no_bos);
  fit_context(m.config(), out, p.context, "the prompt", extra);
  return out;
}

int cmd_info(const std::string& path, const Common& c) {
  auto m = Model::load(path, compute_device(c));
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
  auto m = Model::load(path, compute_device(c));
  auto ids = m->tokenizer().encode(text, !no_bos);
  if (c.json) {
    json texts = json::array();
    for (auto id : ids) texts.push_back(m->tokenizer().token_text(id));
    return print_json({{"ids", ids}, {"tokens", texts}}), 0;
  }
  for (auto id : ids) std::printf("%7d  '%s'\n", id, escape_control(m->tokenizer().token_text(id)).c_str());
  std::printf("%zu tokens\n", ids.size());
  return 0;
}

int cmd_predict(const std::string& path, const PromptArgs& prompt, int top_k,
                bool all_positions, const Common& c) {
  auto m = Model::load(path, compute_device(c));
  auto ids = prompt_ids(*m, prompt);
  at::Tensor logits = m->forward(ids, /*last_only=*/!all_positions);
  const int64_t T = static_cast<int64_t>(ids.size()), first = T - logits.size(0);
  json positions = json::array();
  for (int64_t t = first; t < T; ++t) positions.push_back({{"index", t}, {"top", to_json(top_tokens(*m, logits[t - first], top_k))}});
  if (c.json) return print_json({{"tokens", ids}, {"positions", positions}}), 0;
  for (auto& p : positions) {
    int64_t t = p["index"];
    std::printf("after token %lld '%s':\n", static_cast<long long>(t), escape_control(token_label(*m, ids[t])).c_str());
    for (auto& e : p["top"])
      std::printf("  %7d  %-20s logit %9.4f  p %.4f\n", e["id"].get<int>(), ("'" + escape_control(e["text"]) + "'").c_str(),
                  e["logit"].get<float>(), e["prob"].get<float>());
  }
  return 0;
}

int cmd_generate(const std::string& path, const PromptArgs& prompt, int n, const Sampling& sampling, bool stats, const Common& c) {
  if (n < 0) throw Error("-n must be >= 0");
  ComputeDevice dev = compute_device(c);
  dev.keep_blocks = true;  // decode steps read a quantised GGUF's own blocks
  auto m = Model::load(path, dev);
  auto ids = prompt_ids(*m, prompt, n);
  AttnRecord rec;
  rec.stats = stats;
  rec.key_recv = false;
  const auto t0 = std::chrono::steady_clock::now();
  const Model::Generation g = m->generate(ids, n, sampling, stats ? &rec : nullptr);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<int32_t>& gen = g.tokens;
  std::string text;
  if (m->has_tokenizer()) {
    std::vector<int32_t> all = ids;
    all.insert(all.end(), gen.begin(), gen.end());
    if (!all.empty() && all[0] == m->tokenizer().bos_id()) all.erase(all.begin());
    text = m->tokenizer().decode(all);
  }
  const double decode_rate = gen.size() > 1 ? static_cast<double>(gen.size() - 1) / g.decode_seconds : 0.0;
  json j = {{"prompt_tokens", ids}, {"generated", gen}, {"text", text}, {"seconds", secs}, {"prefill_seconds", g.prefill_seconds},
            {"decode_seconds", g.decode_seconds}, {"decode_tokens_per_s", decode_rate}, {"threads", get_threads()},
            {"sampling", {{"temperature", sampling.temperature}, {"top_p", sampling.top_p}, {"seed", sampling.seed}}}};
  // --stats: each generated token's row of every per-query statistic, [layer][head], read by the step that
  // produced it (the last row of the pass before it).
  json steps = json::array();
  for (size_t i = 0; stats && i < g.steps.size(); ++i) {
    json st = {{"token", gen[i]}, {"text", token_label(*m, gen[i])}};
    for (int id = 0; id < kStatCount; ++id) {
      if (!head_stat_is_row_sum(id) && id != kStatArgmax) continue;
      json layers = json::array();
      for (const AttnLayerStats& a : g.steps[i].attn) {
        at::Tensor row = a[id].select(1, -1).contiguous();  // [H]
        json heads = json::array();
        for (int64_t h = 0; h < row.size(0); ++h)
          heads.push_back(head_stat(id).is_int ? json(row[h].item<int32_t>()) : json(row[h].item<float>()));
        layers.push_back(heads);
      }
      st[head_stat(id).name] = layers;
    }
    steps.push_back(st);
  }
  if (stats) j["steps"] = steps;
  if (c.json) return print_json(j), 0;
  std::printf("%s\n", text.c_str());
  if (stats) {
    std::printf("%-5s %-16s %12s %12s   (means over the %lld heads of the query row that produced the token)\n", "step", "token",
                "entropy", "sink_mass", static_cast<long long>(m->config().n_layers * m->config().n_heads));
    // The mean over every layer and head of statistic `id` in the last query row of step i.
    auto mean_last_row = [&](size_t i, int id) {
      double sum = 0;
      for (const AttnLayerStats& a : g.steps[i].attn) sum += a[id].select(1, -1).sum().item<double>();
      return sum / static_cast<double>(m->config().n_layers * m->config().n_heads);
    };
    for (size_t i = 0; i < g.steps.size(); ++i)
      std::printf("%-5zu %-16s %12.4f %12.4f\n", i, ("'" + escape_control(token_label(*m, gen[i])) + "'").c_str(),
                  mean_last_row(i, kStatEntropy), mean_last_row(i, kStatSinkMass));
  }
  std::fprintf(stderr, "%zu tokens: prompt pass %.3f s (%zu tokens), then %.1f tok/s decoding with the KV cache\n", gen.size(),
               g.prefill_seconds, ids.size(), decode_rate);
  return 0;
}

int cmd_bench(const std::string& path, const std::vector<int>& lengths, int repeat, const std::string& logits_mode,
              const Common& c) {
  if (logits_mode != "last" && logits_mode != "all") throw Error("--logits must be 'last' or 'all'");
  const bool last_only = logits_mode == "last";
  auto m = Model::load(path, compute_device(c));
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

int cmd_attn(const std::string& path, const PromptArgs& prompt, int random_tokens, int seed, const std::string& head, int top,
             bool stats, const Common& c) {
  auto m = Model::load(path, compute_device(c));
  const ModelConfig& cfg = m->config();
  std::vector<int32_t> ids;
  if (random_tokens > 0) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(cfg.vocab - 1));
    ids.resize(random_tokens);
    for (auto& id : ids) id = dist(rng);
    fit_context(cfg, ids, prompt.context, "the random prompt");
  } else {
    ids = prompt_ids(*m, prompt);
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
        for (int id = 0; id < kStatCount; ++id)
          if (head_stat_is_row_sum(id)) e[head_stat(id).name] = hs.at(id, l, h);
        table.push_back(e);
      }
    j["heads_table"] = table;
    if (!c.json) {
      // One column per per-query statistic of the table, in its order.
      std::printf("%-6s", "head");
      for (int id = 0; id < kStatCount; ++id)
        if (head_stat_is_row_sum(id)) std::printf(" %10s", head_stat(id).name);
      std::printf("   (means over %lld queries; sink = key 0)\n", static_cast<long long>(T));
      for (auto& e : table) {
        std::printf("%-6s", (std::to_string(e["layer"].get<int>()) + "." + std::to_string(e["head"].get<int>())).c_str());
        for (int id = 0; id < kStatCount; ++id)
          if (head_stat_is_row_sum(id)) std::printf(" %10.4f", e[head_stat(id).name].get<float>());
        std::printf("\n");
      }
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
        keys.push_back({{"key", key}, {"text", token_label(*m, ids[key])}, {"prob", a.topk_prob[h][t][i].item<float>()}});
      }
      rows.push_back({{"query", t}, {"text", token_label(*m, ids[t])}, {"top", keys}});
    }
    j["head"] = head;
    j["queries"] = rows;
    if (!c.json) {
      std::printf("head %s: top %d keys per query\n", head.c_str(), top);
      for (auto& row : rows) {
        std::printf("%5lld %-16s ->", static_cast<long long>(row["query"].get<int64_t>()),
                    ("'" + escape_control(row["text"]) + "'").c_str());
        for (auto& k : row["top"])
          std::printf("  %lld '%s' %.3f", static_cast<long long>(k["key"].get<int64_t>()), escape_control(k["text"]).c_str(),
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

// How ablate and record are told what to change.
struct InterventionArgs {
  std::string spec_path, heads, mode = "zero", mean_data;
};

// The intervention spec of --spec FILE, or of --heads/--mode; an empty list when neither is given and
// `optional`.
json intervention_spec(const InterventionArgs& a, const ModelConfig& cfg, bool optional) {
  if (!a.spec_path.empty()) return load_spec(a.spec_path);
  if (a.heads.empty()) {
    if (optional) return json::array();
    throw Error("say what to change: --heads 3.1,4.2 [--mode zero|mean|scale=F|act|uniform] or --spec SPEC.json");
  }
  try {
    return spec_for_heads(a.heads, a.mode, cfg);
  } catch (const Error& e) {
    throw Error(std::string("--heads/--mode: ") + e.what());
  }
}

// Mean ablation's reference prompts come from --mean-data.
void require_mean_data(const json& spec, const std::string& mean_data) {
  if (spec_needs_means(spec) && mean_data.empty())
    throw Error("mean ablation needs --mean-data FILE (prompts, one per line, or JSONL with \"text\")");
}

int cmd_ablate(const std::string& path, const PromptArgs& prompt, const InterventionArgs& iv,
               const std::vector<std::string>& targets, int top_k, const Common& c) {
  auto m = Model::load(path, compute_device(c));
  const ModelConfig& cfg = m->config();
  auto ids = prompt_ids(*m, prompt);
  const json spec = intervention_spec(iv, cfg, false);
  require_mean_data(spec, iv.mean_data);
  const HeadMeans means = means_for_spec(spec, *m, iv.mean_data);
  const InterventionEffect e = intervention_effect(*m, ids, spec, means, targets, top_k);
  json tj = json::array();
  for (const TargetLogit& t : e.targets)
    tj.push_back({{"text", t.text}, {"id", t.id}, {"logit_before", t.before}, {"logit_after", t.after}});
  json j = {{"tokens", ids}, {"spec", spec}, {"kl", e.kl}, {"before", to_json(e.before)}, {"after", to_json(e.after)}, {"targets", tj}};
  if (tj.size() >= 2) {
    j["logit_diff_before"] = tj[0]["logit_before"].get<double>() - tj[1]["logit_before"].get<double>();
    j["logit_diff_after"] = tj[0]["logit_after"].get<double>() - tj[1]["logit_after"].get<double>();
  }
  const double kl = e.kl;
  top_k = static_cast<int>(e.before.size());
  if (c.json) return print_json(j), 0;
  std::printf("intervention: %s\n", spec.dump().c_str());
  std::printf("%-28s %-28s\n", "before", "after");
  for (int i = 0; i < top_k; ++i)
    std::printf("%-20s %6.3f  %-20s %6.3f\n", ("'" + escape_control(j["before"][i]["text"]) + "'").c_str(), j["before"][i]["prob"].get<float>(),
                ("'" + escape_control(j["after"][i]["text"]) + "'").c_str(), j["after"][i]["prob"].get<float>());
  std::printf("KL(before || after) = %.6f nats\n", kl);
  for (auto& t : tj)
    std::printf("logit '%s': %.4f -> %.4f\n", escape_control(t["text"]).c_str(), t["logit_before"].get<float>(), t["logit_after"].get<float>());
  if (j.contains("logit_diff_before"))
    std::printf("logit difference '%s' - '%s': %.4f -> %.4f\n", escape_control(tj[0]["text"]).c_str(), escape_control(tj[1]["text"]).c_str(),
                j["logit_diff_before"].get<double>(), j["logit_diff_after"].get<double>());
  return 0;
}

struct RecordFlags {
  std::string data, output;
  InterventionArgs iv;
  ContextPolicy context;
  std::vector<std::string> stats{"all"}, hooks;
  bool force = false, resume = false, compare_plain = false;
  int64_t part_items = 0, generate = 0;
};

// One line of "what: done/total unit" on stderr: rewritten in place on a terminal; otherwise one line per call, or
// at most about `lines` lines when lines > 0 (a log).
void print_count(const std::string& what, int64_t done, int64_t total, const char* unit, bool tty, int64_t lines = 0) {
  if (!tty && lines > 0 && done != total && done % std::max<int64_t>(1, total / lines) != 0) return;
  std::fprintf(stderr, tty ? "\r%s: %lld/%lld %s   " : "%s: %lld/%lld %s\n", what.c_str(), static_cast<long long>(done),
               static_cast<long long>(total), unit);
  if (tty && done == total) std::fprintf(stderr, "\n");
}

// One line of progress on stderr: rewritten in place on a terminal, one line per item otherwise.
// A job above this many tokens or bytes gets a warning with its size before it starts.
constexpr int64_t kWarnTokens = 1000000;
constexpr double kWarnBytes = 10.0 * (1 << 30);

void print_progress(const RecordProgress& p, bool tty, const std::string& output) {
  if (p.to_continue > 0) {
    std::fprintf(stderr, tty ? "\rcontinuations: %lld/%lld made   %s" : "continuations: %lld/%lld made\n%s", static_cast<long long>(p.continued),
                 static_cast<long long>(p.to_continue), tty && p.continued == p.to_continue ? "\n" : "");
    return;
  }
  if (p.done_now == 0) {
    if (p.resumed)
      std::fprintf(stderr, "resuming %s: %lld of %lld items already recorded\n", output.c_str(), static_cast<long long>(p.committed),
                   static_cast<long long>(p.total));
    if (p.planned_tokens > kWarnTokens || p.planned_bytes > kWarnBytes)
      std::fprintf(stderr, "headscope: warning: %lld items, %lld tokens to record, about %.1f GiB of arrays before compression; "
                   "a stopped job continues with --resume\n", static_cast<long long>(p.left_now),
                   static_cast<long long>(p.planned_tokens), p.planned_bytes / (1 << 30));
    return;
  }
  const double eta = p.seconds / p.done_now * p.left_now;
  std::string bar;
  if (tty) {
    const int64_t w = 24, fill = p.total ? p.committed * w / p.total : w;
    bar = "|" + std::string(static_cast<size_t>(fill), '#') + std::string(static_cast<size_t>(w - fill), '.') + "| ";
  }
  std::fprintf(stderr, tty ? "\r%s[%lld/%lld items recorded] %.0f tok/s, ETA %.0f s   " : "%s[%lld/%lld items recorded] %.0f tok/s, ETA %.0f s\n",
               bar.c_str(), static_cast<long long>(p.committed), static_cast<long long>(p.total), p.tokens / std::max(p.seconds, 1e-9), eta);
}

int cmd_record(const std::string& path, const RecordFlags& f, const std::string& command_line, const Common& c) {
  auto m = Model::load(path, compute_device(c));
  RecordOptions o;
  o.output = f.output;
  o.open = f.force ? RunOpen::overwrite : f.resume ? RunOpen::resume : RunOpen::create;
  for (const std::string& s : f.stats) {
    if (s == "all") {
      o.stats.clear();
      for (int id = 0; id < kStatCount; ++id) o.stats.push_back(head_stat(id).name);
    } else if (s == "none") {
      o.stats.clear();
    } else {
      o.stats.push_back(s);
    }
  }
  if (o.stats.empty() && f.hooks.empty()) throw Error("nothing to record: --stats none and no --hooks");
  o.hooks = f.hooks;
  o.spec = intervention_spec(f.iv, m->config(), true);
  require_mean_data(o.spec, f.iv.mean_data);
  o.mean_data = f.iv.mean_data;
  o.context = f.context;
  o.generate = f.generate;
  o.items_per_part = f.part_items;
  o.command_line = command_line;
  const bool tty = isatty(2);
  RecordSummary r;
  try {
    r = record_run(*m, path, load_prompts(f.data), o, [&](const RecordProgress& p) {
      print_progress(p, tty, f.output);
      return true;
    });
  } catch (const ChoiceError&) {
    throw;  // main() names the flags
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind("unknown statistic", 0) == 0) throw Error("--stats: " + msg.substr(0, msg.size() - 1) + ", all, none)");
    throw;
  }
  if (tty && r.recorded_now) std::fprintf(stderr, "\n");
  json j = {{"output", f.output}, {"items", r.items}, {"recorded_now", r.recorded_now}, {"resumed", r.resumed},
            {"tokens", r.tokens}, {"seconds", r.seconds}, {"tokens_per_s", r.tokens / std::max(r.seconds, 1e-9)}};
  if (f.compare_plain) {
    // The same prompts through the plain forward (no statistics, nothing written), in this process.
    auto t1 = std::chrono::steady_clock::now();
    for (const auto& ids : r.recorded_ids) m->forward(ids, /*last_only=*/true);
    const double plain_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    const double bytes = static_cast<double>(std::filesystem::file_size(f.output));
    j["plain_seconds"] = plain_secs;
    j["plain_tokens_per_s"] = r.tokens / plain_secs;
    j["throughput_ratio"] = plain_secs / r.seconds;
    j["file_bytes"] = bytes;
    j["bytes_per_token"] = bytes / r.tokens;
  }
  if (c.json) return print_json(j), 0;
  if (!r.recorded_now) std::printf("%s is complete: nothing to record\n", f.output.c_str());
  else
    std::printf("wrote %s: %lld items (%lld this run), %lld tokens, %.1f tok/s\n", f.output.c_str(), static_cast<long long>(r.items),
                static_cast<long long>(r.recorded_now), static_cast<long long>(r.tokens), r.tokens / r.seconds);
  if (f.compare_plain)
    std::printf("plain forward: %.1f tok/s; recording / plain throughput %.2fx; %.0f bytes per token\n",
                j["plain_tokens_per_s"].get<double>(), j["throughput_ratio"].get<double>(), j["bytes_per_token"].get<double>());
  return 0;
}

void print_ranked(const ProbeResult& r, int top);
void print_probe_details(const ProbeResult& r, const std::vector<std::vector<std::string>>& item_texts);
json to_json(const ProbeResult& r, const std::vector<std::vector<std::string>>& item_texts);

int cmd_inspect(const std::string& path, const Common& c) {
  RunReader r(path);
  json j = r.header();
  j["items"] = r.n_items();
  j["recorded"] = r.n_recorded();
  j["stats"] = r.stat_names();
  j["acts"] = r.act_names();
  j["probes"] = json::array();
  if (r.status() == "complete")
    for (const std::string& name : r.probe_names()) j["probes"].push_back(to_json(r.probe(name), {}));
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
  if (r.status() == "complete")
    for (const std::string& name : r.probe_names()) {
      std::printf("\n");
      const ProbeResult p = r.probe(name);  // per-token values: /probes/<name>/tokens/*
      print_ranked(p, 10);
      print_probe_details(p, {});
    }
  return 0;
}

struct ScoreFlags {
  std::vector<std::string> probes;
  std::string data, sink_input = "text";
  std::string prompt, prompts;  // preplan, secondary: the prompt(s), continued by the model itself
  int response = 64;            // tokens of the model's own greedy continuation
  PreplanOptions preplan;
  int top = 10;
  InductionOptions induction;
  SinkOptions sinks;
  int sink_items = 100;
  uint64_t seed = 0;
  std::string output;
  bool force = false, resume = false;
  // retrieval
  std::string haystack, needles, retrieval_mode = "step", format = "auto";
  int needle_count = 0, max_new = 50;
  std::vector<int64_t> lengths;
  std::vector<double> depths;
};

// The retrieval probe's options from the flags: the haystack file (default: the public-domain text the source tree
// ships), the needles (the reference's, a file, or generated), the grid.
RetrievalOptions retrieval_options(const ScoreFlags& f) {
  RetrievalOptions o;
  std::string path = f.haystack;
  if (path.empty()) path = std::filesystem::exists(HEADSCOPE_HAYSTACK) ? HEADSCOPE_HAYSTACK : HEADSCOPE_HAYSTACK_INSTALLED;
  o.haystack = read_haystack(path);
  o.haystack_name = std::filesystem::path(path).filename().string();
  if (!f.needles.empty() && f.needle_count > 0) throw Error("--needles and --needle-count exclude each other");
  if (!f.needles.empty()) o.needles = load_needles(f.needles);
  if (f.needle_count > 0) o.needles = generated_needles(f.needle_count, f.seed);
  if (f.retrieval_mode != "step" && f.retrieval_mode != "set") throw Error("--retrieval-mode must be step or set, not '" + f.retrieval_mode + "'");
  o.set_mode = f.retrieval_mode == "set";
  o.format = f.format;
  o.lengths = f.lengths, o.depths = f.depths, o.max_new = f.max_new;
  return o;
}

// A JSON value shortened for one line of text: long strings cut, long lists and objects counted (--json has them
// whole).
json brief(const json& j) {
  if (j.is_string() && j.get<std::string>().size() > 48) return j.get<std::string>().substr(0, 45) + "...";
  if (j.is_array() && j.size() > 8) return std::to_string(j.size()) + " entries";
  if (j.is_array() || j.is_object()) {
    json out = j;
    for (auto& v : out) v = brief(v);
    return out;
  }
  return j;
}

// One probe's heads ranked by its main score, with its other scores beside.
void print_ranked(const ProbeResult& r, int top) {
  if (r.scores.empty()) {  // a probe without per-head scores (binding)
    std::printf("%s: %s (params %s)\n", r.name.c_str(), brief(r.summary).dump().c_str(), brief(r.params).dump().c_str());
    return;
  }
  const at::Tensor key = r.scores.at(r.rank_by);
  const int64_t L = key.size(0), H = key.size(1);
  std::vector<std::pair<double, int64_t>> order;
  for (int64_t i = 0; i < L * H; ++i) order.emplace_back(-key.view(-1)[i].item<double>(), i);
  std::stable_sort(order.begin(), order.end());
  json summary = r.summary;
  summary.erase("flagged");
  std::printf("%s: %s (params %s)\n", r.name.c_str(), brief(summary).dump().c_str(), brief(r.params).dump().c_str());
  std::printf("  %-6s", "head");
  for (auto& [name, t] : r.scores) std::printf(" %12s", name.c_str());
  std::printf("\n");
  for (int i = 0; i < std::min<int64_t>(top, L * H); ++i) {
    const int64_t at_ = order[i].second;
    std::printf("  %-6s", (std::to_string(at_ / H) + "." + std::to_string(at_ % H)).c_str());
    for (auto& [name, t] : r.scores) std::printf(" %12.6f", t.view(-1)[at_].item<double>());
    std::printf("\n");
  }
}

// The lines after the table: the secondary probe's flagged tokens; with token texts, the preplan probe's marked
// tokens per item.
void print_probe_details(const ProbeResult& r, const std::vector<std::vector<std::string>>& item_texts) {
  if (r.name == "secondary") {
    const json& s = r.summary;
    std::printf("  anchors %s, windows %s, lifetimes: primary >= %.1f, secondary > %.1f; largest |cos| with the anchor %.3f "
                "(item %lld, token %lld, layer %lld)\n",
                s["anchors"].dump().c_str(), s["windows"].dump().c_str(), s["primary_min_lifetime"].get<double>(),
                s["secondary_min_lifetime_exclusive"].get<double>(), s["max_abs_cos"]["value"].get<double>(),
                static_cast<long long>(s["max_abs_cos"]["item"].get<int64_t>()), static_cast<long long>(s["max_abs_cos"]["position"].get<int64_t>()),
                static_cast<long long>(s["max_abs_cos"]["layer"].get<int64_t>()));
    for (const json& t : s["flagged"])
      std::printf("  item %lld token %5lld %-16s %-9s l_start %2lld lifetime %2lld  sink score %.4f  MLP alignment %+.3f\n",
                  static_cast<long long>(t["item"].get<int64_t>()), static_cast<long long>(t["position"].get<int64_t>()),
                  ("'" + escape_control(t["text"].get<std::string>()) + "'").c_str(), t["kind"].get<std::string>().c_str(),
                  static_cast<long long>(t["l_start"].get<int64_t>()), static_cast<long long>(t["lifetime"].get<int64_t>()),
                  t["sink_score"].get<double>(), t["mlp_alignment"].get<double>());
  }
  if (r.name.rfind("circuit/", 0) == 0) {  // a circuit stage: its receivers and the heads it selected
    const json& s = r.summary;
    std::printf("  %lld senders -> %s of %s; selected (top %g %% of heads by |s|):\n", static_cast<long long>(s["senders"].get<int64_t>()),
                s["input"].get<std::string>().c_str(), s["receivers"].empty() ? "the logits" : s["receivers"].dump().c_str(),
                100.0 * r.params.value("share", 0.02));
    if (s["selected"].empty()) std::printf("    (none)\n");
    for (const json& h : s["selected"])
      std::printf("    %2d.%-3d %-16s s %+.4f (mean of per-pair ratios %+.4f)\n", h["layer"].get<int>(), h["head"].get<int>(),
                  h["class"].get<std::string>().c_str(), h["effect"].get<double>(), h["effect_mean_of_ratios"].get<double>());
  }
  if (r.name.rfind("binding/", 0) == 0) {  // the mechanism mix, by position, and the causal model
    const json& s = r.summary;
    const char* mech[] = {"positional", "lexical", "reflexive", "no_effect", "mixed"};
    std::printf("  layer %d, %lld items; answers without the intervention: %.1f %% correct\n  %-10s %6s", s["layer"].get<int>(),
                static_cast<long long>(s["items"].get<int64_t>()), 100 * s["accuracy_without"].get<double>(), "", "items");
    for (const char* m : mech) std::printf(" %11s", m);
    std::printf("\n  %-10s %6lld", "all", static_cast<long long>(s["items"].get<int64_t>()));
    for (const char* m : mech) std::printf(" %10.1f%%", 100 * s["mechanisms"][m].get<double>());
    std::printf("\n");
    for (const json& row : s["by_position"]) {
      std::printf("  p = %-6d %6lld", row["p"].get<int>(), static_cast<long long>(row["items"].get<int64_t>()));
      for (const char* m : mech) std::printf(" %10.1f%%", 100 * row[m].get<double>());
      std::printf("\n");
    }
    if (s.contains("causal_model")) {
      const json& c = s["causal_model"];
      std::printf("  causal model (train/validation/test %s, %d epochs): JSS on the test items %.3f; positional term only %.3f; uniform %.3f\n",
                  c["split"].dump().c_str(), c["epochs"].get<int>(), c["jss_test"].get<double>(), c["jss_positional_only"].get<double>(),
                  c["jss_uniform"].get<double>());
    }
  }
  if (r.summary.contains("by_length_depth")) {  // NIAH: ROUGE-1 recall x 100 by context length (rows) and depth
    std::map<int64_t, std::map<double, double>> grid;
    std::set<double> depths;
    for (const json& e : r.summary["by_length_depth"]) {
      grid[e["length"].get<int64_t>()][e["depth"].get<double>()] = e["rouge1"].get<double>();
      depths.insert(e["depth"].get<double>());
    }
    std::printf("  NIAH ROUGE-1 recall x 100 (mean %.1f), length x depth %%:\n  %8s", r.summary.value("niah_rouge1", 0.0), "");
    for (double dp : depths) std::printf(" %7g", dp);
    std::printf("\n");
    for (auto& [len, row] : grid) {
      std::printf("  %8lld", static_cast<long long>(len));
      for (double dp : depths) row.count(dp) ? std::printf(" %7.1f", row[dp]) : std::printf(" %7s", "-");
      std::printf("\n");
    }
  }
  if (r.name == "preplan" && !item_texts.empty()) {
    std::printf("  tokens (prompt ||| response; [P preplan], [A anchor]):\n");
    for (size_t i = 0; i < r.items.size() && i < item_texts.size(); ++i) {
      const ItemResult& it = r.items[i];
      std::string marked;
      for (size_t t = 0; t < item_texts[i].size(); ++t) {
        const std::string mark = std::string(it.tokens.at("preplan")[t].item<double>() == 1.0 ? "P" : "") +
                                 (it.tokens.at("anchor")[t].item<double>() == 1.0 ? "A" : "");
        const std::string text = escape_control(item_texts[i][t]);
        marked += mark.empty() ? text : "[" + mark + text + "]";
        if (static_cast<int64_t>(t) + 1 == r.item_meta.at(i).value("response_start", int64_t{-1})) marked += " ||| ";
      }
      std::printf("  item %zu: %s\n", i, marked.c_str());
    }
  }
}

json to_json(const ProbeResult& r, const std::vector<std::vector<std::string>>& item_texts) {
  json scores = json::object();
  for (auto& [name, t] : r.scores) {
    json rows = json::array();
    for (int64_t l = 0; l < t.size(0); ++l) {
      std::vector<double> row(static_cast<size_t>(t.size(1)));
      for (int64_t h = 0; h < t.size(1); ++h) row[h] = t[l][h].item<double>();
      rows.push_back(row);
    }
    scores[name] = rows;
  }
  json items = json::array();
  for (size_t i = 0; i < r.items.size(); ++i) {
    json it = json::object();
    if (i < r.item_meta.size()) it["meta"] = r.item_meta[i];
    for (auto& [name, v] : r.items[i].scalars) it[name] = v;
    if (!r.items[i].tokens.empty()) {  // per-token values (null where undefined), with the token texts when known
      json toks = json::array();
      const int64_t T = r.items[i].tokens.begin()->second.size(0);
      for (int64_t t = 0; t < T; ++t) {
        json e = json::object();
        if (i < item_texts.size()) e["text"] = item_texts[i][t];
        for (auto& [name, v] : r.items[i].tokens) {
          const double x = v[t].item<double>();
          e[name] = std::isnan(x) ? json(nullptr) : json(x);
        }
        toks.push_back(e);
      }
      it["tokens"] = toks;
    }
    items.push_back(it);
  }
  return {{"probe", r.name}, {"params", r.params}, {"rank_by", r.rank_by}, {"summary", r.summary}, {"scores", scores}, {"items", items}};
}

// Runs probes as one job (probes/score.h), in memory or into the run file `output` (--force / --resume), with
// progress on stderr (`unit` per item, about `lines` lines when not on a terminal); `seconds` gets the wall time.
struct JobFlags {
  std::string output;
  bool force = false, resume = false;
};
std::vector<ProbeResult> run_probe_job(const Model& m, const std::vector<std::unique_ptr<Probe>>& owned, const JobFlags& f,
                                       const std::string& model_path, const std::string& command_line, const char* unit, int64_t lines,
                                       double* seconds = nullptr) {
  std::vector<const Probe*> probes;
  for (auto& p : owned) probes.push_back(p.get());
  ScoreOptions o;
  o.output = f.output, o.model_path = model_path, o.command_line = command_line;
  o.open = f.force ? RunOpen::overwrite : f.resume ? RunOpen::resume : RunOpen::create;
  const bool tty = isatty(2);
  bool told_resume = false;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<ProbeResult> results = score_probes(m, probes, o, [&](const ScoreProgress& p) {
    if (p.resumed && !told_resume) std::fprintf(stderr, "resuming %s: %lld items already done\n", f.output.c_str(), static_cast<long long>(p.kept));
    told_resume |= p.resumed;
    print_count(p.phase, p.done, p.total, p.phase == "continuations" ? "continuations made" : unit, tty, lines);
    return true;
  });
  if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return results;
}

int cmd_score(const std::string& path, const ScoreFlags& f, const std::string& command_line, const Common& c) {
  for (const std::string& p : f.probes)
    if (p != "induction" && p != "sinks" && p != "preplan" && p != "secondary" && p != "retrieval")
      throw Error("unknown probe '" + p + "' (known: induction, sinks, preplan, secondary, retrieval)");
  auto wants = [&](const char* p) { return std::find(f.probes.begin(), f.probes.end(), p) != f.probes.end(); };
  for (const char* p : {"preplan", "secondary"})
    if (wants(p) && f.prompt.empty() && f.prompts.empty())
      throw Error(std::string("the ") + p + " probe needs --prompt TEXT or --prompts FILE (the model continues each with --response N tokens)");
  if (f.sink_input != "text" && f.sink_input != "random" && f.sink_input != "repeated")
    throw Error("--sink-input must be text, random or repeated, not '" + f.sink_input + "'");
  if (wants("sinks") && f.sink_input == "text" && f.data.empty())
    throw Error("the sinks probe on text needs --data FILE (prompts of at least --sink-tokens tokens), or --sink-input random|repeated");
  auto m = Model::load(path, compute_device(c));
  std::vector<std::unique_ptr<Probe>> owned;
  std::vector<PromptItem> prompts;
  if (!f.prompt.empty()) prompts.push_back({f.prompt, nullptr});
  if (!f.prompts.empty())
    for (PromptItem& p : load_prompts(f.prompts)) prompts.push_back(std::move(p));
  for (const std::string& p : f.probes) {
    if (p == "induction") {
      InductionOptions o = f.induction;
      o.seed = f.seed;
      owned.push_back(std::make_unique<InductionProbe>(o));
    } else if (p == "sinks") {
      SinkOptions o = f.sinks;
      o.input = f.sink_input;
      std::vector<ProbeItem> items;
      if (f.sink_input == "text") {
        items = prompt_items(*m, load_prompts(f.data), 0);  // the texts as they are, nothing continued
      } else {
        items = id_items(sink_random_items(*m, f.sink_items, f.sinks.tokens, f.sink_input == "repeated", f.seed), f.sink_input);
      }
      owned.push_back(std::make_unique<SinkRateProbe>(std::move(items), o));
    } else if (p == "preplan") {
      owned.push_back(std::make_unique<PreplanProbe>(prompt_items(*m, prompts, f.response), f.preplan));
    } else if (p == "retrieval") {
      owned.push_back(std::make_unique<RetrievalProbe>(retrieval_options(f)));
    } else {
      owned.push_back(std::make_unique<SecondarySinkProbe>(prompt_items(*m, prompts, f.response), SecondarySinkOptions{}));
    }
  }
  double seconds = 0;
  const std::vector<ProbeResult> results = run_probe_job(*m, owned, {f.output, f.force, f.resume}, path, command_line, "items", 10, &seconds);
  json out = json::array();
  for (size_t k = 0; k < results.size(); ++k) {
    const ProbeResult& r = results[k];
    std::vector<std::vector<std::string>> texts;
    if (!r.items.empty() && !r.items[0].tokens.empty())
      for (const auto& ids : r.item_tokens) {
        texts.emplace_back();
        for (int32_t id : ids) texts.back().push_back(token_label(*m, id));
      }
    out.push_back(to_json(r, texts));
    if (!c.json) print_ranked(r, f.top), print_probe_details(r, texts);
  }
  if (!f.output.empty() && !c.json) std::printf("wrote %s\n", f.output.c_str());
  if (!c.json) std::fprintf(stderr, "%.1f s (model load excluded)\n", seconds);
  if (c.json) print_json({{"model", path}, {"output", f.output}, {"seconds", seconds}, {"probes", out}});
  return 0;
}

struct ExperimentFlags {
  ScoreFlags grid;                           // haystack, needles, lengths, depths, max_new, format, seed, output
  std::string scores, scores_probe = "retrieval", scores_key = "retrieval";
  int top = 20, draws = 5;
  std::vector<std::string> rank{"retrieval", "random"};
  std::vector<double> keep{0.1, 0.25, 0.5};
  int64_t sink = 4, window = 64;
};

// A [layer, head] score for ranking heads: from a run file's probe results, or the retrieval probe run here over the
// experiment's grid with the reference's three detection needles.
at::Tensor head_scores(const Model& m, const ExperimentFlags& f, const std::string& probe, const std::string& key, bool tty) {
  if (!f.scores.empty()) {
    RunReader r(f.scores);
    const ProbeResult p = r.probe(probe);
    auto it = p.scores.find(key);
    if (it == p.scores.end()) throw Error(f.scores + ": the " + probe + " probe has no score '" + key + "'");
    if (it->second.size(0) != m.config().n_layers || it->second.size(1) != m.config().n_heads)
      throw Error(f.scores + ": its " + probe + " scores are for another model's heads");
    return it->second;
  }
  if (probe != "retrieval" || key != "retrieval")
    throw Error("ranking heads by " + probe + "/" + key + " needs --scores RUN (a run file with that probe's results)");
  RetrievalOptions o = retrieval_options(f.grid);
  if (f.grid.needles.empty() && f.grid.needle_count == 0) o.needles.clear();  // detection: the reference's needles
  std::fprintf(stderr, "retrieval scores: the retrieval probe over the same grid first (no --scores given)\n");
  const RetrievalProbe rp(o);
  return run_probe(m, rp, [&](int64_t done, int64_t total) {
           print_count("retrieval", done, total, "items", tty);
           return true;
         }).scores.at("retrieval");
}

int cmd_experiment(const std::string& kind, const std::string& path, const ExperimentFlags& f, const std::string& command_line,
                   const Common& c) {
  auto m = Model::load(path, compute_device(c));
  const bool tty = isatty(2);
  RetrievalOptions grid = retrieval_options(f.grid);
  if (f.grid.needles.empty() && f.grid.needle_count == 0) grid.needles = {eval_needle()};
  std::vector<NiahEvalOptions> conditions;
  json setup;
  if (kind == "retrieval-masking") {
    const at::Tensor r = head_scores(*m, f, f.scores_probe, f.scores_key, tty);
    conditions = masking_conditions(m->config(), grid, r, f.top, f.draws, f.grid.seed);
    setup = {{"top", f.top}, {"draws", f.draws}, {"seed", f.grid.seed}, {"scores", f.scores.empty() ? "computed" : f.scores}};
  } else {
    std::vector<std::pair<std::string, at::Tensor>> rankings;
    for (const std::string& name : f.rank) {
      if (name == "random") {
        rankings.emplace_back("random", at::Tensor());
      } else if (name == "retrieval") {
        rankings.emplace_back("retrieval", head_scores(*m, f, f.scores_probe, f.scores_key, tty));
      } else {
        const size_t slash = name.find('/');
        if (slash == std::string::npos) throw Error("--rank: '" + name + "' is not random, retrieval or PROBE/SCORE (e.g. induction/induction)");
        rankings.emplace_back(name, head_scores(*m, f, name.substr(0, slash), name.substr(slash + 1), tty));
      }
    }
    conditions = kv_budget_conditions(m->config(), grid, rankings, f.keep, f.sink, f.window, f.grid.seed);
    setup = {{"rank", f.rank}, {"keep", f.keep}, {"sink", f.sink}, {"window", f.window}, {"seed", f.grid.seed}};
  }
  std::vector<std::unique_ptr<Probe>> owned;
  for (const NiahEvalOptions& o : conditions) owned.push_back(std::make_unique<NiahEvalProbe>(o));
  const std::vector<ProbeResult> results = run_probe_job(*m, owned, {f.grid.output, f.grid.force, f.grid.resume}, path, command_line, "items", 5);
  json out = json::array();
  std::map<std::string, std::vector<double>> groups;  // "niah/random20" -> its draws
  for (size_t k = 0; k < results.size(); ++k) {
    const json& s = results[k].summary;
    out.push_back({{"condition", results[k].name}, {"params", results[k].params}, {"summary", s}});
    const std::string& name = results[k].name;
    const size_t last = name.rfind('/');
    if (name.rfind("niah/random", 0) == 0) groups[name.substr(0, last)].push_back(s["niah_rouge1"].get<double>());
  }
  if (c.json) return print_json({{"model", path}, {"experiment", kind}, {"setup", setup}, {"output", f.grid.output}, {"conditions", out}}), 0;
  std::printf("%s on %s (%s): NIAH score = ROUGE-1 recall x 100 of the answer, mean over %zu items per condition\n", kind.c_str(),
              path.c_str(), setup.dump().c_str(), results.empty() ? size_t{0} : results[0].items.size());
  std::printf("  %-22s %6s %10s %9s\n", "condition", "heads", "NIAH", "KV kept");
  for (const ProbeResult& r : results)
    std::printf("  %-22s %6lld %10.2f %8.1f%%\n", r.name.c_str(), static_cast<long long>(r.summary["heads_changed"].get<int64_t>()),
                r.summary["niah_rouge1"].get<double>(), 100.0 * r.summary["kv_fraction"].get<double>());
  for (auto& [g, v] : groups) {
    double mean = 0, var = 0;
    for (double x : v) mean += x / static_cast<double>(v.size());
    for (double x : v) var += (x - mean) * (x - mean) / std::max<double>(1.0, static_cast<double>(v.size()) - 1.0);
    std::printf("  %-22s %6s %10.2f ± %.2f (mean ± sd over %zu draws)\n", g.c_str(), "", mean, std::sqrt(var), v.size());
  }
  if (!f.grid.output.empty()) std::printf("wrote %s\n", f.grid.output.c_str());
  return 0;
}

struct PatchFlags {
  std::string task = "ioi", corrupt = "abc";
  int pairs = 20, top = 10;
  uint64_t seed = 0;
  bool noising = false, per_position = false;
};

// Activation patching of every head over task prompt pairs (runs/patching.h): the task's accuracy and logit
// difference, then the heads ranked by their normalised effect.
int cmd_patch(const std::string& path, const PatchFlags& f, const Common& c) {
  auto m = Model::load(path, compute_device(c));
  TaskOptions to;
  to.task = f.task, to.corrupt = f.corrupt, to.pairs = f.pairs, to.seed = f.seed, to.same_length = f.per_position;
  const TaskPairs set = make_task_pairs(*m, to);
  const std::vector<PatchPair>& pairs = set.pairs;
  const json& vocabulary = set.vocabulary;
  const int64_t unequal = set.dropped_unequal;
  HeadPatchingOptions o;
  o.noising = f.noising, o.per_position = f.per_position;
  const bool tty = isatty(2);
  const HeadPatchingResult r = patch_heads(*m, pairs, o, [&](int64_t done, int64_t total) {
    print_count("patching", done, total, "pairs", tty);
    return true;
  });
  double correct = 0, ld = 0, ldc = 0;
  for (size_t i = 0; i < r.ld_clean.size(); ++i) correct += r.ld_clean[i] > 0, ld += r.ld_clean[i], ldc += r.ld_corrupt[i];
  const double n = static_cast<double>(r.ld_clean.size());
  json heads = json::array();
  const at::Tensor key = o.per_position ? r.ratio_of_means.abs().amax({2}) : r.ratio_of_means.abs();
  const auto order = heads_by_score(at::nan_to_num(key, 0.0));
  for (int i = 0; i < std::min<int>(f.top, static_cast<int>(order.size())); ++i) {
    auto [l, h] = order[static_cast<size_t>(i)];
    heads.push_back({{"head", std::to_string(l) + "." + std::to_string(h)},
                     {"ratio_of_means", o.per_position ? json(nullptr) : json(r.ratio_of_means[l][h].item<double>())},
                     {"mean_of_ratios", o.per_position ? json(nullptr) : json(r.mean_of_ratios[l][h].item<double>())},
                     {"max_abs", key[l][h].item<double>()}});
  }
  const json j = {{"task", f.task}, {"pairs", r.ld_clean.size()}, {"tokens", pairs.at(0).clean.size()}, {"vocabulary", vocabulary}, {"pairs_dropped_unequal_length", unequal}, {"pairs_drawn_of_other_lengths", set.dropped_length}, {"accuracy", correct / n}, {"logit_diff_clean", ld / n},
                  {"logit_diff_corrupt", ldc / n}, {"mode", o.noising ? "noising" : "denoising"}, {"per_position", o.per_position},
                  {"forwards", r.forwards}, {"passes", r.passes}, {"seconds", r.seconds}, {"forwards_per_s", static_cast<double>(r.forwards) / r.seconds},
                  {"plain_forward_seconds", r.plain_forward_seconds},
                  {"speedup_vs_plain_forwards", r.plain_forward_seconds * static_cast<double>(r.forwards) / r.seconds},
                  {"top_heads", heads}};
  if (c.json) return print_json(j), 0;
  std::printf("%s on %s: %zu pairs (single tokens: %s; %lld pairs of unequal length dropped%s)\n", f.task.c_str(), path.c_str(),
              r.ld_clean.size(), vocabulary.dump().c_str(), static_cast<long long>(unequal),
              o.per_position ? (", one length: " + std::to_string(pairs.at(0).clean.size()) + " tokens").c_str() : "");
  std::printf("  accuracy (the correct answer above the other) %.1f %%, logit difference clean %.3f, corrupt %.3f\n", 100.0 * correct / n,
              ld / n, ldc / n);
  std::printf("  %s patching of every head%s: %lld forwards in %.1f s (%.1f forwards/s; %.1fx one plain forward each, %.1f ms)\n",
              o.noising ? "noising" : "denoising", o.per_position ? " at every position" : "", static_cast<long long>(r.forwards), r.seconds,
              static_cast<double>(r.forwards) / r.seconds, r.plain_forward_seconds * static_cast<double>(r.forwards) / r.seconds,
              1e3 * r.plain_forward_seconds);
  for (const json& h : heads)
    std::printf("  %-6s %s\n", h["head"].get<std::string>().c_str(),
                o.per_position ? ("max |m| over positions " + std::to_string(h["max_abs"].get<double>())).c_str()
                               : ("ratio of means " + std::to_string(h["ratio_of_means"].get<double>()) + ", mean of ratios " +
                                  std::to_string(h["mean_of_ratios"].get<double>())).c_str());
  return 0;
}

struct BindingFlags {
  BindingOptions task;
  std::vector<std::string> layers;
  std::string output;
  bool force = false, resume = false;
};

// Binding mechanisms by interchange interventions at one or more layers (probes/binding.h), into a resumable run file.
int cmd_binding(const std::string& path, const BindingFlags& f, const std::string& command_line, const Common& c) {
  auto m = Model::load(path, compute_device(c));
  const int64_t L = m->config().n_layers;
  std::vector<int> layers;
  for (const std::string& s : f.layers) {
    if (s == "all") {
      for (int l = 0; l < L; ++l) layers.push_back(l);
      continue;
    }
    char* end = nullptr;
    const long l = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end || l < 0 || l >= L)
      throw Error("--layers: '" + s + "' is not a layer of this model (0.." + std::to_string(L - 1) + ") or 'all'");
    layers.push_back(static_cast<int>(l));
  }
  if (layers.empty()) layers.push_back(default_binding_layer(L));
  std::vector<std::unique_ptr<Probe>> owned;
  for (int l : layers) owned.push_back(std::make_unique<BindingProbe>(f.task, l));
  double seconds = 0;
  const std::vector<ProbeResult> results = run_probe_job(*m, owned, {f.output, f.force, f.resume}, path, command_line, "items", 10, &seconds);
  if (c.json) {
    json out = json::array();
    for (const ProbeResult& r : results) out.push_back({{"probe", r.name}, {"params", r.params}, {"summary", r.summary}});
    return print_json({{"model", path}, {"output", f.output}, {"seconds", seconds}, {"layers", out}}), 0;
  }
  std::printf("binding task %s on %s: %d groups, interchange at the last position entering the layer\n", f.task.task.c_str(), path.c_str(),
              f.task.groups);
  for (const ProbeResult& r : results) print_probe_details(r, {});
  if (!f.output.empty()) std::printf("wrote %s\n", f.output.c_str());
  std::fprintf(stderr, "%.1f s (model load excluded)\n", seconds);
  return 0;
}

struct CircuitFlags {
  PatchFlags task;
  double share = 0.02;
  std::string output, circuit, heads;
  bool force = false, resume = false;
  int draws = 5;
};

TaskOptions task_options(const PatchFlags& f) {
  TaskOptions t;
  t.task = f.task, t.corrupt = f.corrupt, t.pairs = f.pairs, t.seed = f.seed;
  return t;
}

// A task's circuit by path patching (probes/circuit.h), into a resumable run file: the stages and the circuit by class.
int cmd_circuit(const std::string& path, const CircuitFlags& f, const std::string& command_line, const Common& c) {
  if (path.empty()) throw Error("circuit needs a MODEL (or: circuit overlap A.h5 B.h5, circuit repair MODEL --circuit RUN.h5)");
  auto m = Model::load(path, compute_device(c));
  CircuitOptions co;
  co.task = task_options(f.task), co.share = f.share;
  const auto owned = circuit_probes(*m, co);
  double seconds = 0;
  const std::vector<ProbeResult> results = run_probe_job(*m, owned, {f.output, f.force, f.resume}, path, command_line, "items (pairs)", 20, &seconds);
  const std::vector<CircuitHead> heads = circuit_heads(results);
  json circuit = json::array();
  for (const CircuitHead& h : heads)
    circuit.push_back({{"head", std::to_string(h.layer) + "." + std::to_string(h.head)}, {"class", h.cls}, {"stage", h.stage}, {"effect", h.effect}});
  const json& first = results.at(1).summary;
  if (c.json) {
    json stages = json::array();
    for (size_t k = 1; k < results.size(); ++k) stages.push_back({{"stage", results[k].name}, {"summary", results[k].summary}});
    return print_json({{"model", path}, {"task", f.task.task}, {"output", f.output}, {"seconds", seconds}, {"pairs", first["pairs"]},
                       {"accuracy", first["accuracy"]}, {"logit_diff_clean", first["logit_diff_clean"]},
                       {"logit_diff_corrupt", first["logit_diff_corrupt"]}, {"stages", stages}, {"circuit", circuit}}),
           0;
  }
  std::printf("%s circuit of %s: %lld pairs, accuracy %.1f %% (correct answer above the other), logit difference clean %.3f, corrupt %.3f\n",
              f.task.task.c_str(), path.c_str(), static_cast<long long>(first["pairs"].get<int64_t>()), 100.0 * first["accuracy"].get<double>(),
              first["logit_diff_clean"].get<double>(), first["logit_diff_corrupt"].get<double>());
  for (size_t k = 1; k < results.size(); ++k) {
    std::printf("stage %s:", results[k].name.c_str());
    print_probe_details(results[k], {});
  }
  std::map<std::string, std::vector<std::string>> by_class;
  for (const CircuitHead& h : heads) by_class[h.cls].push_back(std::to_string(h.layer) + "." + std::to_string(h.head));
  std::printf("circuit (%zu heads):\n", heads.size());
  for (auto& [cls, hs] : by_class) std::printf("  %-18s %s\n", cls.c_str(), join(hs).c_str());
  if (!f.output.empty()) std::printf("wrote %s\n", f.output.c_str());
  std::fprintf(stderr, "%.1f s (model load excluded)\n", seconds);
  return 0;
}

// A circuit read back from a run file written by `circuit`.
std::vector<CircuitHead> read_circuit(const std::string& path, std::string* task) {
  RunReader r(path);
  std::vector<ProbeResult> stages;
  for (const std::string& n : r.probe_names())
    if (n.rfind("circuit/", 0) == 0) stages.push_back(r.probe(n));
  if (stages.empty()) throw Error(path + " holds no circuit (write one with: headscope circuit MODEL --task ... -o " + path + ")");
  if (task) *task = stages[0].params.value("task", std::string("?"));
  return circuit_heads(stages);
}

int cmd_circuit_overlap(const std::string& a, const std::string& b, const Common& c) {
  std::string ta, tb;
  const std::vector<CircuitHead> ca = read_circuit(a, &ta), cb = read_circuit(b, &tb);
  const CircuitOverlap o = circuit_overlap(ca, cb);
  auto row = [](const Overlap& x) { return json{{"shared", x.shared}, {"union", x.in_union}, {"jaccard", std::isnan(x.jaccard) ? json(nullptr) : json(x.jaccard)}}; };
  json per = json::object();
  for (auto& [cls, x] : o.per_class) per[cls] = row(x);
  if (c.json) return print_json({{"a", a}, {"b", b}, {"task_a", ta}, {"task_b", tb}, {"heads_a", ca.size()}, {"heads_b", cb.size()}, {"all", row(o.all)}, {"per_class", per}}), 0;
  std::printf("circuit overlap: %s (%s, %zu heads) and %s (%s, %zu heads)\n", a.c_str(), ta.c_str(), ca.size(), b.c_str(), tb.c_str(), cb.size());
  std::printf("  %-18s %6s %6s %8s\n", "class", "shared", "union", "Jaccard");
  auto print = [](const std::string& name, const Overlap& x) {
    std::printf("  %-18s %6lld %6lld %8s\n", name.c_str(), static_cast<long long>(x.shared), static_cast<long long>(x.in_union),
                std::isnan(x.jaccard) ? "-" : (std::to_string(static_cast<int>(std::lround(100 * x.jaccard))) + " %").c_str());
  };
  print("all heads", o.all);
  for (auto& [cls, x] : o.per_class) print(cls, x);
  return 0;
}

int cmd_circuit_repair(const std::string& path, const CircuitFlags& f, const Common& c) {
  if (path.empty()) throw Error("circuit repair needs a MODEL");
  if (f.circuit.empty() == f.heads.empty()) throw Error("circuit repair needs the heads: --circuit RUN.h5 (a Colored Objects circuit) or --heads L.H,...");
  RepairOptions o;
  o.prompts = f.task.pairs, o.seed = f.task.seed, o.draws = f.draws;
  if (!f.circuit.empty()) {
    std::string task;
    o.heads = repair_heads(read_circuit(f.circuit, &task));
    if (o.heads.empty()) throw Error(f.circuit + " (" + task + ") has no S-inhibition or negative mover heads to use");
  }
  auto m = Model::load(path, compute_device(c));
  if (!f.heads.empty()) o.heads = parse_heads(f.heads, m->config());
  const bool tty = isatty(2);
  const RepairResult r = repair_colored_objects(*m, o, [&](int64_t done, int64_t total) {
    print_count("conditions", done, total, "conditions", tty, 1);
    return true;
  });
  double mean = 0, var = 0;
  const double n = static_cast<double>(r.random_after.size());
  for (double x : r.random_after) mean += x / n;
  for (double x : r.random_after) var += (x - mean) * (x - mean) / std::max(1.0, n - 1);
  json heads = json::array(), draws = json::array();
  for (auto [l, h] : o.heads) heads.push_back(std::to_string(l) + "." + std::to_string(h));
  for (size_t d = 0; d < r.random_heads.size(); ++d) {
    json hs = json::array();
    for (auto [l, h] : r.random_heads[d]) hs.push_back(std::to_string(l) + "." + std::to_string(h));
    draws.push_back({{"heads", hs}, {"accuracy", r.random_after[d]}});
  }
  if (c.json)
    return print_json({{"model", path}, {"prompts", r.prompts}, {"heads", heads}, {"accuracy_before", r.before}, {"accuracy_after", r.after},
                       {"logit_diff_before", r.ld_before}, {"logit_diff_after", r.ld_after}, {"random", draws},
                       {"random_mean", mean}, {"random_sd", std::sqrt(var)}}),
           0;
  std::printf("Colored Objects repair on %s: %lld prompts; heads %s attend from the final token to the incorrect colours\n", path.c_str(),
              static_cast<long long>(r.prompts), heads.dump().c_str());
  std::printf("  accuracy (the correct colour above the question's other two) %.1f %% -> %.1f %%; logit difference %.3f -> %.3f\n",
              100 * r.before, 100 * r.after, r.ld_before, r.ld_after);
  if (!r.random_after.empty())
    std::printf("  %zu random sets of %zu heads: %.1f %% +- %.1f\n", r.random_after.size(), o.heads.size(), 100 * mean, 100 * std::sqrt(var));
  return 0;
}

// compare: two run files head by head (runs/compare.h); the ranked heads per statistic and score, or everything.
int cmd_compare(const std::string& a, const std::string& b, const std::string& stat, int top, const Common& c) {
  if (top < 1) throw Error("--top must be a positive integer");
  CompareOptions o;
  if (!stat.empty()) o.only = {stat};
  const RunComparison cmp = compare_runs(a, b, o);
  if (c.json) return print_json(to_json(cmp)), 0;
  std::printf("compare %s (a) with %s (b): %lld layers x %lld heads\n", a.c_str(), b.c_str(), static_cast<long long>(cmp.layers),
              static_cast<long long>(cmp.heads));
  for (const CompareEntry& e : cmp.entries) {
    std::printf("\n%s %s%s", e.kind == "stat" ? "statistic" : "score", e.name.c_str(), e.units.empty() ? "" : (" (" + e.units + ")").c_str());
    if (e.kind == "stat") {
      std::printf(": per-head mean over the tokens of each of %lld items recorded in both, then over the items", static_cast<long long>(e.items));
      if (e.items_with_other_tokens > 0) std::printf(" (%lld of them hold other tokens in the two runs)", static_cast<long long>(e.items_with_other_tokens));
    }
    std::printf("; heads by |b - a|\n  %-6s %12s %12s %12s %9s\n", "head", "a", "b", "b - a", "relative");
    for (int i = 0; i < std::min<int>(top, static_cast<int>(e.ranked.size())); ++i) {
      const HeadDiff& d = e.ranked[static_cast<size_t>(i)];
      const std::string rel = std::isfinite(d.relative) ? (std::to_string(static_cast<int64_t>(std::lround(100 * d.relative))) + " %") : "-";
      std::printf("  %-6s %12.6g %12.6g %12.6g %9s\n", head_label(d.layer, d.head).c_str(), d.a, d.b, d.diff, rel.c_str());
    }
  }
  return 0;
}

struct FigureFlags {
  std::string kind, stat, score, probe, other, model, prompt, head, output;
  int64_t item = -1;
  bool log = false;
  std::vector<double> range;
  int top = 20;
};

// figure: one figure of a run file (probes/run_views.h) written by analysis/figure.h.
int cmd_figure(const std::string& run, const FigureFlags& f, const Common& c) {
  static const std::vector<std::string> kinds{"grid", "attention", "tokens", "sinks", "timeline", "ranking", "circuit", "binding", "compare"};
  if (std::find(kinds.begin(), kinds.end(), f.kind) == kinds.end())
    throw Error("unknown figure kind '" + f.kind + "' (kinds: grid, attention, tokens, sinks, timeline, ranking, circuit, binding, compare)");
  if (f.output.empty()) throw Error("say where to write the figure: -o FIGURE.pdf|svg|png");
  check_figure_path(f.output);
  if (!f.range.empty() && (f.range.size() != 2 || !(f.range[0] < f.range[1])))
    throw Error("--range takes two numbers LO HI with LO < HI");
  if (f.top < 1) throw Error("--top must be a positive integer");
  auto scaled = [&](ColorScale s) {
    if (f.log) s.log = true;
    if (f.range.size() == 2) s.lo = f.range[0], s.hi = f.range[1], s.symmetric = false;
    return s;
  };
  const auto t0 = std::chrono::steady_clock::now();
  Figure fig;
  if (f.kind == "attention") {
    if (f.model.empty() || f.prompt.empty() || f.head.empty())
      throw Error("--kind attention draws one head's pattern over a prompt (a run file stores none): give --model MODEL --prompt TEXT --head L.H");
    auto m = Model::load(f.model, compute_device(c));
    const auto heads = parse_heads(f.head, m->config());
    if (heads.size() != 1) throw Error("--head takes one head, e.g. 3.1");
    std::vector<int32_t> ids = m->tokenizer().encode(f.prompt, true);
    fit_context(m->config(), ids, ContextPolicy{}, "the prompt");
    AttentionFigure a = attention_view(*m, ids, heads[0].first, heads[0].second);
    a.scale = scaled(a.scale);
    fig = a;
  } else {
    if (run.empty()) throw Error("--kind " + f.kind + " needs a run file: headscope figure RUN.h5 --kind " + f.kind + " -o FIGURE.pdf");
    const RunReader r(run);
    if (f.item < 0 && (f.kind == "tokens" || f.kind == "sinks" || f.kind == "timeline"))
      throw Error("--kind " + f.kind + " shows one item: give --item I (the run has items 0.." + std::to_string(r.n_items() - 1) + ")");
    if (f.kind == "compare" && f.log) throw Error("--log does not apply to a difference (b - a is signed)");
    FigureRequest q;
    q.kind = f.kind, q.stat = f.stat, q.probe = f.probe, q.score = f.score, q.item = f.item, q.head = f.head, q.other = f.other;
    q.top = f.top, q.checkpoint = f.model;
    fig = run_figure(r, run, q);
    std::visit([&](auto& x) {  // --log / --range on the figure's colour scale
      if constexpr (std::is_same_v<std::decay_t<decltype(x)>, CompareGridFigure>) {
        if (f.range.size() == 2) x.scale.lo = f.range[0], x.scale.hi = f.range[1], x.scale.symmetric = false;
      } else if constexpr (!std::is_same_v<std::decay_t<decltype(x)>, TimelineFigure> && !std::is_same_v<std::decay_t<decltype(x)>, CircuitFigure> &&
                           !std::is_same_v<std::decay_t<decltype(x)>, BindingFigure>) {
        x.scale = scaled(x.scale);
      }
    }, fig);
  }
  const FigureLayout L = save_figure(fig, f.output);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (c.json)
    return print_json({{"path", f.output}, {"kind", f.kind}, {"width_pt", L.width}, {"height_pt", L.height}, {"raster", L.raster}, {"seconds", secs}}), 0;
  std::printf("%s\n", f.output.c_str());
  return 0;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

int main(int argc, char** argv) {
  use_fast_blas_kernels(argv);
  CLI::App app{"headscope: load a transformer checkpoint, run it, and look inside its attention heads"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("headscope ") + HEADSCOPE_VERSION);
  Common common;
  std::string model, text;
  PromptArgs prompt;
  bool no_bos = false, all_positions = false;
  int top_k = 5, n = 20, repeat = 3;
  std::string logits_mode = "last";
  std::vector<int> lengths{128, 512, 2048};

  // How a command that runs the model fits prompts to its context (record takes them for every prompt).
  auto add_context_options = [&](CLI::App* cmd, ContextPolicy& context) {
    cmd->add_option("--max-tokens", context.max_tokens, "Keep only the first N tokens of a prompt longer than N")
        ->check(positive_integer);
    cmd->add_flag("--allow-beyond-context", context.beyond_context,
                  "Run prompts longer than the model's context (rotary models; for extrapolation studies)");
  };
  // Every command that runs the model on a prompt takes the same inputs.
  auto add_prompt_options = [&](CLI::App* cmd) {
    cmd->add_option("MODEL", model, "Checkpoint")->required();
    auto* text_opt = cmd->add_option("--prompt", prompt.text, "Prompt text");
    cmd->add_option("--ids", prompt.ids, "Token ids instead of a prompt: 1,2,3")->excludes(text_opt);
    cmd->add_flag("--no-bos", prompt.no_bos, "Do not prepend the BOS token");
    add_context_options(cmd, prompt.context);
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

  auto* generate = app.add_subcommand("generate", "Continue a prompt (greedy by default) with a KV cache");
  Sampling sampling;
  bool gen_stats = false;
  add_prompt_options(generate);
  generate->add_option("-n", n, "Tokens to generate")->capture_default_str();
  generate->add_option("--temperature", sampling.temperature, "Sample from softmax(logits / T) (0: greedy)")
      ->capture_default_str()->check(number_where(">= 0", [](double x) { return x >= 0; }));
  generate->add_option("--top-p", sampling.top_p, "Sample only from the smallest set of tokens holding this probability")
      ->capture_default_str()->check(number_where("in (0, 1]", [](double x) { return x > 0 && x <= 1; }));
  generate->add_option("--seed", sampling.seed, "Seed of the sampler (the same seed gives the same text)")->capture_default_str();
  generate->add_flag("--stats", gen_stats, "Every head's attention statistics for each generated token's query row");
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

  // What ablate and record change: a spec file, or heads and a mode (not both).
  auto add_intervention_options = [](CLI::App* cmd, InterventionArgs& iv) {
    auto* spec = cmd->add_option("--spec", iv.spec_path, "Intervention spec (JSON; see hooks/intervention_spec.h)");
    auto* heads = cmd->add_option("--heads", iv.heads, "Heads to change: 3.1,4.2 (with --mode)")
                      ->check([](const std::string& v) { return v.empty() ? std::string("no heads given") : std::string(); })
                      ->excludes(spec);
    cmd->add_option("--mode", iv.mode, "zero | mean | scale=F | act (ACT attention calibration) | uniform, for --heads")
        ->capture_default_str()
        ->needs(heads);
    cmd->add_option("--mean-data", iv.mean_data, "Reference prompts for mean ablation (text, one per line, or JSONL)");
  };

  auto* ablate = app.add_subcommand("ablate", "Change heads (ablate, scale, patch, steer) and compare the next-token predictions");
  InterventionArgs ablate_iv;
  std::vector<std::string> targets;
  add_prompt_options(ablate);
  add_intervention_options(ablate, ablate_iv);
  ablate->add_option("--targets", targets, "Answer strings whose first-token logits to compare (two give a logit difference)")
      ->delimiter(',');
  ablate->add_option("--top-k", top_k, "How many tokens to show")->capture_default_str();
  add_common(ablate, common);

  auto* record = app.add_subcommand("record", "Record every head's statistics (and chosen activations) over a prompt set into an "
                                              "HDF5 run file; a killed job continues with --resume");
  RecordFlags ro;
  record->add_option("MODEL", model, "Checkpoint")->required();
  record->add_option("--data", ro.data, "Prompts: JSONL ({\"text\", \"meta\"}) or text, one per line")->required();
  record->add_option("-o,--output", ro.output, "Run file to write (.h5)")->required();
  std::string stat_names;
  for (int id = 0; id < kStatCount; ++id) stat_names += std::string(id ? ", " : "") + head_stat(id).name;
  record->add_option("--stats", ro.stats, "Statistics per token, layer and head: all, none, or a list of " + stat_names)
      ->delimiter(',')->capture_default_str();
  record->add_option("--hooks", ro.hooks, "Activations to store per token: hook names, e.g. blocks.3.attn.hook_z,blocks.5.hook_resid_post "
                                          "(values after any intervention)")->delimiter(',');
  add_intervention_options(record, ro.iv);
  add_context_options(record, ro.context);
  auto* force = record->add_flag("--force", ro.force, "Replace an existing run file (the old one stays until the new one is complete)");
  record->add_flag("--resume", ro.resume, "Continue an interrupted job: record only the items the run file lacks")->excludes(force);
  record->add_option("--generate", ro.generate, "Continue each prompt greedily by up to N tokens first (KV cache, under the "
                                                "interventions) and record prompt + continuation")
      ->check(positive_integer);
  record->add_option("--part-items", ro.part_items, "Items per committed part (default: items / 4096, at least 1)")
      ->check(positive_integer);
  record->add_flag("--compare-plain", ro.compare_plain,
                   "Benchmark: afterwards run the same prompts through the plain forward and report the throughput ratio "
                   "and the file size per token");
  add_common(record, common);

  auto* score = app.add_subcommand("score", "Score every head with probes: induction (induction, previous-token and duplicate-token "
                                            "heads on repeated random tokens), sinks (the sink rate of Gu et al.), preplan (preplan and anchor tokens of the "
                                            "model's own continuation, Li et al.), secondary (primary and secondary sinks in "
                                            "the residual stream, Wong et al.), retrieval (retrieval heads on needle-in-a-haystack "
                                            "items, Wu et al.)");
  ScoreFlags sf;
  score->add_option("MODEL", model, "Checkpoint")->required();
  score->add_option("--probe", sf.probes, "Probes to run: induction, sinks, preplan, secondary, retrieval")->delimiter(',')->required();
  score->add_option("--data", sf.data, "Prompts for the sinks probe on text (JSONL or text, one per line)");
  score->add_option("--top", sf.top, "Heads to list per probe")->capture_default_str()->check(positive_integer);
  score->add_option("--seed", sf.seed, "Seed of the random token data")->capture_default_str();
  score->add_option("--rows", sf.induction.rows, "induction: sequences [BOS] + r + r")->capture_default_str()->check(positive_integer);
  score->add_option("--repeat-len", sf.induction.n, "induction: n, the length of r")->capture_default_str()->check(positive_integer);
  score->add_flag("--exclude-bos", sf.induction.exclude_bos, "induction: TransformerLens scores without the BOS column");
  score->add_flag("--exclude-current", sf.induction.exclude_current, "induction: TransformerLens scores without the diagonal");
  score->add_option("--sink-input", sf.sink_input, "sinks: text (--data), random or repeated tokens")->capture_default_str();
  score->add_option("--sink-tokens", sf.sinks.tokens, "sinks: T, the tokens of each item")->capture_default_str()->check(positive_integer);
  score->add_option("--sink-eps", sf.sinks.eps, "sinks: the threshold on alpha")
      ->capture_default_str()->check(number_where("in [0, 1)", [](double x) { return x >= 0 && x < 1; }));
  score->add_option("--sink-items", sf.sink_items, "sinks: items of random or repeated tokens")->capture_default_str()->check(positive_integer);
  score->add_option("--prompt", sf.prompt, "preplan, secondary: a prompt the model continues");
  score->add_option("--prompts", sf.prompts, "preplan, secondary: prompts the model continues (JSONL or text, one per line)");
  score->add_option("-o,--output", sf.output, "Run file to write the results to (.h5; per-item and per-token values under /probes)");
  auto* score_force = score->add_flag("--force", sf.force, "Replace an existing run file (the old one stays until the new one is complete)")
                          ->needs("--output");
  score->add_flag("--resume", sf.resume, "Continue an interrupted job: score only the items the run file lacks")
      ->excludes(score_force)->needs("--output");
  score->add_option("--response", sf.response, "preplan, secondary: tokens of its greedy continuation")->capture_default_str()->check(positive_integer);
  score->add_option("--haystack", sf.haystack, "retrieval: the haystack text (default: datasets/text/public_domain.txt)");
  score->add_option("--needles", sf.needles, "retrieval: needles, JSONL {needle, question, answer} (default: the reference's three)");
  score->add_option("--needle-count", sf.needle_count, "retrieval: generate this many needles instead (seeded with --seed)")
      ->check(positive_integer);
  score->add_option("--lengths", sf.lengths, "retrieval: context lengths in tokens (default: 20 from 1000 to min(50000, the context))")
      ->delimiter(',')->check(positive_integer);
  score->add_option("--depths", sf.depths, "retrieval: needle depths in percent (default: 0, 11, ..., 100)")->delimiter(',')
      ->check(number_where("in [0, 100]", [](double x) { return x >= 0 && x <= 100; }));
  score->add_option("--retrieval-mode", sf.retrieval_mode, "retrieval: step (copy events per needle token, the reference's code) or set")
      ->capture_default_str();
  score->add_option("--prompt-format", sf.format, "retrieval: auto (the model's chat template), plain, chatml, llama2, llama3")
      ->capture_default_str();
  score->add_option("--max-new", sf.max_new, "retrieval: tokens decoded per item at most (stops after a newline)")
      ->capture_default_str()->check(positive_integer);
  score->add_option("--fai-horizon", sf.preplan.h_hi, "preplan: H_hi, the last query offset FAI counts (H_lo = 10)")->capture_default_str()
      ->check(positive_integer);
  score->add_flag("--fai-to-end", sf.preplan.to_end, "preplan: FAI over every later response row");
  add_common(score, common);

  auto* experiment = app.add_subcommand("experiment", "Experiments on needle-in-a-haystack accuracy with heads changed on decode steps");
  experiment->require_subcommand(1);
  ExperimentFlags ef;
  auto add_grid = [&](CLI::App* cmd) {
    cmd->add_option("MODEL", model, "Checkpoint")->required();
    cmd->add_option("--haystack", ef.grid.haystack, "The haystack text (default: datasets/text/public_domain.txt)");
    cmd->add_option("--needles", ef.grid.needles, "Needles, JSONL {needle, question, answer} (default: the reference's San Francisco needle)");
    cmd->add_option("--lengths", ef.grid.lengths, "Context lengths in tokens (default: 20 from 1000 to min(50000, the context))")
        ->delimiter(',')->check(positive_integer);
    cmd->add_option("--depths", ef.grid.depths, "Needle depths in percent (default: 0, 11, ..., 100)")->delimiter(',')
        ->check(number_where("in [0, 100]", [](double x) { return x >= 0 && x <= 100; }));
    cmd->add_option("--max-new", ef.grid.max_new, "Tokens decoded per item at most (stops after a newline)")->capture_default_str()
        ->check(positive_integer);
    cmd->add_option("--prompt-format", ef.grid.format, "auto (the model's chat template), plain, chatml, llama2, llama3")->capture_default_str();
    cmd->add_option("--seed", ef.grid.seed, "Seed of the random heads")->capture_default_str();
    cmd->add_option("--scores", ef.scores, "A run file with probe results to rank heads by (default: run the retrieval probe first)");
    cmd->add_option("--scores-probe", ef.scores_probe, "The probe in --scores")->capture_default_str();
    cmd->add_option("--scores-key", ef.scores_key, "Its score")->capture_default_str();
    cmd->add_option("-o,--output", ef.grid.output, "Run file for every condition's per-item results (.h5)");
    auto* force = cmd->add_flag("--force", ef.grid.force, "Replace an existing run file")->needs("--output");
    cmd->add_flag("--resume", ef.grid.resume, "Continue an interrupted job")->excludes(force)->needs("--output");
    add_common(cmd, common);
  };
  auto* masking = experiment->add_subcommand("retrieval-masking", "NIAH with the top-K retrieval heads made uniform on decode steps, "
                                                                   "against K random heads outside the top 100 and against none");
  add_grid(masking);
  masking->add_option("--top", ef.top, "K, the heads masked")->capture_default_str()->check(positive_integer);
  masking->add_option("--draws", ef.draws, "Sets of random heads")->capture_default_str()->check(positive_integer);
  auto* budget = experiment->add_subcommand("kv-budget", "NIAH with a fraction of heads keeping their whole KV cache and the rest only "
                                                         "the first --sink keys and the last --window (StreamingLLM), per head ranking");
  add_grid(budget);
  budget->add_option("--rank", ef.rank, "Rankings: retrieval, random, or PROBE/SCORE from --scores (e.g. induction/induction)")
      ->delimiter(',')->capture_default_str();
  budget->add_option("--keep", ef.keep, "Fractions of heads that keep their whole cache")->delimiter(',')->capture_default_str()
      ->check(number_where("in [0, 1]", [](double x) { return x >= 0 && x <= 1; }));
  budget->add_option("--sink", ef.sink, "Keys kept at the start")->capture_default_str()->check(number_where(">= 0", [](double x) { return x >= 0; }));
  budget->add_option("--window", ef.window, "Recent keys kept")->capture_default_str()->check(positive_integer);

  auto* patch = app.add_subcommand("patch", "Activation patching of every head's output over task prompt pairs (IOI, Colored Objects): the task's "
                                            "accuracy and logit difference, and the heads ranked by their normalised effect");
  PatchFlags pf;
  patch->add_option("MODEL", model, "Checkpoint")->required();
  patch->add_option("--task", pf.task, "Task: ioi, colored-objects")->capture_default_str();
  patch->add_option("--pairs", pf.pairs, "Prompt pairs")->capture_default_str()->check(positive_integer);
  patch->add_option("--corrupt", pf.corrupt, "ioi: corrupt prompts abc (three different names) or flip (S2 <-> IO)")->capture_default_str();
  patch->add_option("--seed", pf.seed, "Seed of the prompts")->capture_default_str();
  patch->add_flag("--noising", pf.noising, "Corrupt activations into the clean run (else clean into corrupt)");
  patch->add_flag("--per-position", pf.per_position, "Patch one position at a time");
  patch->add_option("--top", pf.top, "Heads to list")->capture_default_str()->check(positive_integer);
  add_common(patch, common);

  auto* circuit = app.add_subcommand("circuit", "Find a task's circuit by path patching (Merullo et al.: logits <- movers' queries <- "
                                                "S-inhibition values <- induction keys, top 2 % of heads per stage), into a resumable run file");
  CircuitFlags cf;
  std::string run_a, run_b;
  circuit->add_option("MODEL", model, "Checkpoint");
  circuit->add_option("--task", cf.task.task, "Task: ioi, colored-objects, or a pairs file FILE.jsonl ({clean, corrupt, correct, incorrect})")
      ->capture_default_str();
  circuit->add_option("--pairs", cf.task.pairs, "Prompt pairs (at most this many from a pairs file)")->capture_default_str()->check(positive_integer);
  circuit->add_option("--corrupt", cf.task.corrupt, "ioi: corrupt prompts abc (three different names) or flip (S2 <-> IO)")->capture_default_str();
  circuit->add_option("--seed", cf.task.seed, "Seed of the prompts")->capture_default_str();
  circuit->add_option("--share", cf.share, "Share of all heads each stage selects")->capture_default_str()
      ->check(number_where("in (0, 1]", [](double x) { return x > 0 && x <= 1; }));
  circuit->add_option("-o,--output", cf.output, "Run file to write the stages to (.h5)");
  auto* circuit_force = circuit->add_flag("--force", cf.force, "Replace an existing run file (the old one stays until the new one is complete)");
  circuit->add_flag("--resume", cf.resume, "Continue an interrupted job")->excludes(circuit_force);
  add_common(circuit, common);
  auto* overlap = circuit->add_subcommand("overlap", "Compare two circuits: shared and union heads, Jaccard, per class");
  overlap->add_option("A", run_a, "Run file written by circuit")->required();
  overlap->add_option("B", run_b, "Run file written by circuit")->required();
  add_common(overlap, common);
  auto* repair = circuit->add_subcommand("repair", "Colored Objects: make chosen heads attend from the final token to the incorrect colours; "
                                                   "accuracy before and after, against random heads");
  repair->add_option("MODEL", model, "Checkpoint")->required();
  repair->add_option("--circuit", cf.circuit, "A Colored Objects circuit run file: its 3 strongest S-inhibition heads and strongest negative mover");
  repair->add_option("--heads", cf.heads, "Or the heads, L.H,...");
  repair->add_option("--prompts", cf.task.pairs, "Colored Objects prompts")->capture_default_str()->check(positive_integer);
  repair->add_option("--seed", cf.task.seed, "Seed of the prompts (random draw d: seed + 1 + d)")->capture_default_str();
  repair->add_option("--draws", cf.draws, "Random head sets for the control")->capture_default_str()->check(number_where(">= 0", [](double x) { return x >= 0; }));
  add_common(repair, common);

  auto* binding = app.add_subcommand("binding", "Entity-binding mechanisms (Mixing Mechanisms): interchange the last position's residual "
                                                "with a counterfactual's at a layer; positional/lexical/reflexive mix and the causal model's JSS");
  BindingFlags bf;
  binding->add_option("MODEL", model, "Checkpoint")->required();
  binding->add_option("--task", bf.task.task, "Task: boxes (objects in lettered boxes), owners (names holding objects)")->capture_default_str();
  binding->add_option("--groups", bf.task.groups, "Bound groups per context (>= 4)")->capture_default_str()->check(positive_integer);
  binding->add_option("--items", bf.task.items, "Items (original + counterfactual)")->capture_default_str()->check(positive_integer);
  binding->add_option("--seed", bf.task.seed, "Seed of the items and of the causal model's split")->capture_default_str();
  binding->add_option("--layers", bf.layers, "Layers to intervene at, or 'all' (default: round(0.7 (layers - 1)))")->delimiter(',');
  binding->add_option("-o,--output", bf.output, "Run file to write to (.h5)");
  auto* binding_force = binding->add_flag("--force", bf.force, "Replace an existing run file (the old one stays until the new one is complete)");
  binding->add_flag("--resume", bf.resume, "Continue an interrupted job")->excludes(binding_force);
  add_common(binding, common);

  auto* inspect = app.add_subcommand("inspect", "Summarise a run file");
  inspect->add_option("RUN", model, "Run file (.h5)")->required();
  add_common(inspect, common);

  auto* compare = app.add_subcommand("compare", "Compare two run files head by head (same model shape): every statistic and probe score both "
                                                 "hold, b - a per head, heads ranked by |b - a|");
  std::string compare_stat;
  int compare_top = 10;
  compare->add_option("A", run_a, "Run file a (.h5)")->required();
  compare->add_option("B", run_b, "Run file b (.h5)")->required();
  compare->add_option("--stat", compare_stat, "Only this statistic or probe score (entropy, induction/induction, or a probe's name)");
  compare->add_option("--top", compare_top, "Heads to print per statistic and score")->capture_default_str()->check(positive_integer);
  add_common(compare, common);

  auto* figure = app.add_subcommand("figure", "Draw a figure of a run file as PNG, SVG or PDF: head grid, attention pattern, token strip, sink "
                                               "view, preplan timeline, probe ranking, circuit graph, binding mix, comparison");
  FigureFlags ff;
  figure->add_option("RUN", model, "Run file (.h5; not needed for --kind attention)");
  figure->add_option("--kind", ff.kind, "grid | attention | tokens | sinks | timeline | ranking | circuit | binding | compare")->required();
  figure->add_option("--stat", ff.stat, "A recorded statistic (grid, ranking, tokens, compare)");
  figure->add_option("--score", ff.score, "A probe's score (with --probe, or as PROBE/SCORE); a per-token value PROBE/VALUE for tokens");
  figure->add_option("--probe", ff.probe, "The probe (grid, ranking; binding: binding/layer<L>)");
  figure->add_option("--item", ff.item, "The run item (tokens, sinks, timeline; grid: that item instead of the mean)")
      ->check(CLI::NonNegativeNumber);
  figure->add_option("--other", ff.other, "compare: the second run file b (the figure shows b - RUN)");
  figure->add_option("--model", ff.model, "attention: the checkpoint; tokens, sinks, timeline: the checkpoint whose tokenizer names the tokens "
                                          "(default: the run's own)");
  figure->add_option("--prompt", ff.prompt, "attention: the prompt");
  figure->add_option("--head", ff.head, "attention: the head L.H; tokens: colour by this head's statistic (default: the mean over heads)");
  figure->add_option("--top", ff.top, "ranking: heads shown")->capture_default_str()->check(positive_integer);
  figure->add_flag("--log", ff.log, "Log colour scale");
  figure->add_option("--range", ff.range, "Colour range LO HI (default: the data's; attention [0, 1]; compare symmetric around 0)")
      ->expected(2)->allow_extra_args(false);
  figure->add_option("-o,--output", ff.output, "The figure: .png, .svg or .pdf")->required();
  add_common(figure, common);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A usage error: one line, naming the option (CLI11's message does), exit 1 like every other error.
    std::fprintf(stderr, "headscope: error: %s (see headscope --help)\n", first_line(e.what()).c_str());
    return 1;
  }
  std::string cl;  // the command line, stored in run files
  for (int i = 0; i < argc; ++i) cl += (i ? " " : "") + std::string(argv[i]);
  try {
    set_threads(common.threads);
    if (*info) return cmd_info(model, common);
    if (*tokenize) return cmd_tokenize(model, text, no_bos, common);
    if (*predict) return cmd_predict(model, prompt, top_k, all_positions, common);
    if (*generate) return cmd_generate(model, prompt, n, sampling, gen_stats, common);
    if (*bench) return cmd_bench(model, lengths, repeat, logits_mode, common);
    if (*ablate) return cmd_ablate(model, prompt, ablate_iv, targets, top_k, common);
    if (*record) return cmd_record(model, ro, cl, common);
    if (*inspect) return cmd_inspect(model, common);
    if (*compare) return cmd_compare(run_a, run_b, compare_stat, compare_top, common);
    if (*figure) return cmd_figure(model, ff, common);
    if (*score) return cmd_score(model, sf, cl, common);
    if (*experiment) return cmd_experiment(*masking ? "retrieval-masking" : "kv-budget", model, ef, cl, common);
    if (*patch) return cmd_patch(model, pf, common);
    if (*binding) return cmd_binding(model, bf, cl, common);
    if (*overlap) return cmd_circuit_overlap(run_a, run_b, common);
    if (*repair) return cmd_circuit_repair(model, cf, common);
    if (*circuit) return cmd_circuit(model, cf, cl, common);
    if (*attn) return cmd_attn(model, prompt, random_tokens, seed, head, top, stats, common);
  } catch (const ChoiceError& e) {
    // The library's remedies in this program's words.
    using R = ChoiceError::Remedy;
    const char* how = e.remedy == R::overwrite             ? "; pass --force to replace it"
                      : e.remedy == R::resume              ? " (rerun with --resume)"
                      : e.remedy == R::overwrite_or_resume ? "; pass --force to overwrite it, or --resume to continue an interrupted job"
                      : e.remedy == R::truncate            ? "; pass --max-tokens N to keep the first N tokens"
                                                           : "; pass --max-tokens N to keep the first N tokens, or --allow-beyond-context "
                                                             "to run past the context (extrapolation)";
    std::fprintf(stderr, "headscope: error: %s%s\n", e.what(), how);
    return 1;
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
