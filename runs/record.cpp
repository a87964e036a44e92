// record_run: a model over prompts into a run file (see record.h).
#include "runs/record.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "hooks/hooks.h"
#include "hooks/interventions.h"
#include "runs/means.h"
#include "store/run_file.h"

namespace headscope {

std::map<std::string, at::Tensor> run_item_stats(const ForwardResult& r, const std::vector<std::string>& only) {
  if (r.attn.empty()) throw Error("run_item_stats: the forward pass recorded no attention statistics");
  std::map<std::string, at::Tensor> out;
  for (int id = 0; id < kStatCount; ++id) {
    if (!r.attn[0][id].defined()) continue;
    if (!only.empty() && std::find(only.begin(), only.end(), head_stat(id).name) == only.end()) continue;
    std::vector<at::Tensor> layers;
    for (const AttnLayerStats& a : r.attn) layers.push_back(a[id]);
    out[head_stat(id).name] = at::stack(layers, 0).permute({2, 0, 1}).contiguous();  // [L, H, T] -> [T, L, H]
  }
  return out;
}

std::map<int64_t, std::vector<int32_t>> kept_item_tokens(const std::string& output) {
  std::map<int64_t, std::vector<int32_t>> out;
  for (const std::string& path : {output + ".replacement", output}) {  // the replacement, when there, wins
    if (!std::filesystem::exists(path)) continue;
    try {
      RunReader r(path);
      for (int64_t i = 0; i < r.n_items(); ++i) out[i] = r.tokens(i);
      return out;
    } catch (const std::exception&) {
      out.clear();  // not a run of ours: RunWriter says what to do with it
    }
  }
  return out;
}

nlohmann::json run_model_info(const Model& m, const std::string& model_path) {
  const ModelConfig& cfg = m.config();
  return {{"path", model_path}, {"family", cfg.family_name()}, {"architecture", cfg.architecture},
          {"config", cfg.to_json().dump()}, {"checkpoint_sha256", sha256_file(m.checkpoint().files().at(0))}};
}

RecordSummary record_run(const Model& m, const std::string& model_path, const std::vector<PromptItem>& prompts,
                         const RecordOptions& o, const std::function<bool(const RecordProgress&)>& progress) {
  const ModelConfig& cfg = m.config();
  RunPlan plan;
  plan.command_line = o.command_line;
  plan.model = run_model_info(m, model_path);
  plan.items_per_part = o.items_per_part;
  const std::vector<Intervention> checked_spec = parse_spec(o.spec, cfg);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string what = "prompt " + std::to_string(i + 1);
    auto ids = m.tokenizer().encode(prompts[i].text);
    if (ids.empty()) throw Error(what + " has no tokens");
    fit_context(cfg, ids, o.context, what, o.generate);
    try {
      check_spec_positions(checked_spec, static_cast<int64_t>(ids.size()));
    } catch (const Error& e) {
      throw Error(what + ": " + e.what());
    }
    plan.items.push_back({prompts[i].text, prompts[i].meta, std::move(ids)});
  }
  if (plan.items.empty()) throw Error("no prompts to record");
  // What to record: statistics and activations, each name checked.
  std::vector<std::string> stats;
  for (const std::string& s : o.stats) {
    const int id = head_stat_find(s.c_str());
    if (id < 0) {
      std::string names;
      for (int k = 0; k < kStatCount; ++k) names += std::string(" ") + head_stat(k).name;
      throw Error("unknown statistic '" + s + "' (known:" + names + ")");
    }
    if (std::find(stats.begin(), stats.end(), s) == stats.end()) {
      stats.push_back(s);
      plan.arrays.push_back({"stats/" + s, head_stat(id).is_int, {cfg.n_layers, cfg.n_heads}, head_stat(id).units, "[token, layer, head]"});
    }
  }
  if (stats.empty() && o.hooks.empty()) throw Error("nothing to record: no statistics and no hook activations chosen");
  bool all_positions = false;
  for (size_t i = 0; i < o.hooks.size(); ++i)
    if (std::find(o.hooks.begin(), o.hooks.begin() + i, o.hooks[i]) != o.hooks.begin() + i)
      throw Error("hook " + o.hooks[i] + " is listed twice");
  for (const std::string& h : o.hooks) {
    std::vector<int64_t> shape = hook_shape(cfg, h);
    std::string dims = "[token";
    for (int64_t x : shape) dims += ", " + std::to_string(x);
    plan.arrays.push_back({"acts/" + h, false, shape, h == "unembed.hook_logits" ? "logit" : "activation", dims + "]"});
    all_positions |= h.rfind("ln_final", 0) == 0 || h.rfind("unembed", 0) == 0;
  }
  plan.spec = o.spec;
  const HeadMeans means = means_for_spec(plan.spec, m, o.mean_data);
  AttnRecord rec;
  rec.stats = !stats.empty();
  rec.key_recv = std::find(stats.begin(), stats.end(), "key_recv") != stats.end();
  plan.settings = {{"sinks", rec.sinks}, {"waad_window", rec.waad_window}, {"recv_window", {rec.recv_lo, rec.recv_hi}},
                   {"mean_data_sha256", o.mean_data.empty() ? "" : sha256_file(o.mean_data)},
                   {"max_tokens", o.context.max_tokens}, {"beyond_context", o.context.beyond_context}, {"generate", o.generate}};
  double row_bytes = 0;  // one token's bytes over every array
  for (const ArraySpec& a : plan.arrays) {
    double n = 4;
    for (int64_t x : a.inner) n *= static_cast<double>(x);
    row_bytes += n;
  }
  Hooks hooks;
  install_interventions(checked_spec, cfg, hooks, nullptr, &means);
  ActivationCache acts;  // installed after the interventions: it records the values the forward goes on with
  acts.record(hooks, o.hooks);

  if (o.generate > 0) {
    const auto kept = o.open == RunOpen::resume ? kept_item_tokens(o.output) : std::map<int64_t, std::vector<int32_t>>{};
    RecordProgress gp;
    gp.to_continue = static_cast<int64_t>(plan.items.size());
    for (size_t i = 0; i < plan.items.size(); ++i) {
      PlannedItem& it = plan.items[i];
      const int64_t r0 = static_cast<int64_t>(it.tokens.size());
      auto k = kept.find(static_cast<int64_t>(i));
      if (k != kept.end() && static_cast<int64_t>(k->second.size()) > r0 && static_cast<int64_t>(k->second.size()) <= r0 + o.generate &&
          std::equal(it.tokens.begin(), it.tokens.end(), k->second.begin())) {
        it.tokens = k->second;
      } else {
        for (int32_t id : m.generate(it.tokens, static_cast<int>(o.generate), Sampling{}, nullptr, hooks.empty() ? nullptr : &hooks).tokens)
          it.tokens.push_back(id);
      }
      if (!it.meta.is_object()) it.meta = it.meta.is_null() ? nlohmann::json::object() : nlohmann::json{{"meta", it.meta}};
      it.meta["response_start"] = r0;
      gp.continued = static_cast<int64_t>(i + 1);
      if (progress && !progress(gp)) throw Cancelled();
    }
    acts.values.clear();
  }
  std::vector<std::vector<int32_t>> item_ids;
  for (const PlannedItem& it : plan.items) item_ids.push_back(it.tokens);
  RunWriter w(o.output, std::move(plan), o.open);
  const std::vector<int64_t> todo = w.pending();
  int64_t planned_tokens = 0;
  for (int64_t i : todo) planned_tokens += static_cast<int64_t>(item_ids[i].size());
  RecordSummary sum;
  sum.resumed = w.resumed();
  const auto t0 = std::chrono::steady_clock::now();
  auto report = [&](int64_t done) {
    if (!progress) return;
    RecordProgress p;
    p.committed = w.committed(), p.total = w.n_items(), p.done_now = done;
    p.left_now = static_cast<int64_t>(todo.size()) - done, p.tokens = sum.tokens, p.resumed = sum.resumed;
    p.planned_tokens = planned_tokens, p.planned_bytes = static_cast<double>(planned_tokens) * row_bytes;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!progress(p)) throw Cancelled();
  };
  report(0);
  for (size_t n = 0; n < todo.size(); ++n) {
    const int64_t i = todo[n];
    const std::vector<int32_t>& ids = item_ids[i];
    acts.values.clear();
    ForwardResult r = m.run(ids, rec, !all_positions, hooks.empty() ? nullptr : &hooks);
    std::map<std::string, at::Tensor> arrays;
    if (rec.stats)
      for (auto& [name, t] : run_item_stats(r, stats)) arrays["stats/" + name] = t;
    for (const std::string& h : o.hooks) {
      auto it = acts.values.find(h);
      if (it == acts.values.end())
        throw Error("hook " + h + " did not run in this model (hook_resid_mid exists only with a sequential residual stream)");
      arrays["acts/" + h] = it->second.cpu();  // a no-op on the CPU; from the GPU when the model computes there
    }
    sum.tokens += static_cast<int64_t>(ids.size());
    w.append(i, std::move(arrays));
    sum.recorded_ids.push_back(ids);
    report(static_cast<int64_t>(n + 1));
  }
  w.finish();
  if (!todo.empty()) report(static_cast<int64_t>(todo.size()));  // the final state: every item committed
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sum.items = w.n_items();
  sum.recorded_now = static_cast<int64_t>(todo.size());
  return sum;
}

}  // namespace headscope
