// Several probes in one job, in memory or into a resumable run file (see score.h).
#include "probes/score.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "core/error.h"
#include "runs/record.h"
#include "store/run_file.h"

namespace headscope {

namespace {

std::string path_of(const Probe& p, const char* kind, const std::string& value) {
  return "probes/" + p.name() + "/" + kind + "/" + value;
}

// An item's values as run-file arrays; NaN arrays for the values of the other probes.
std::map<std::string, at::Tensor> arrays_of(const std::vector<const Probe*>& probes, const Probe* owner, const ItemResult* r,
                                            int64_t L, int64_t H, int64_t T) {
  std::map<std::string, at::Tensor> a;
  auto pick = [&](const std::map<std::string, at::Tensor>& m, const std::string& v, std::vector<int64_t> shape) {
    if (!r) return at::full(shape, NAN, at::kDouble);
    auto it = m.find(v);
    if (it == m.end()) throw Error("probe " + owner->name() + " gave no value '" + v + "'");
    return it->second.to(at::kDouble).reshape(shape).contiguous();
  };
  for (const Probe* p : probes) {
    const ItemResult* mine = p == owner ? r : nullptr;
    for (const std::string& v : p->head_values())
      a[path_of(*p, "heads", v)] = mine ? pick(mine->heads, v, {1, L, H}) : at::full({1, L, H}, NAN, at::kDouble);
    for (const std::string& v : p->token_values())
      a[path_of(*p, "tokens", v)] = mine ? pick(mine->tokens, v, {T}) : at::full({T}, NAN, at::kDouble);
    for (const std::string& v : p->scalar_values()) {
      double x = NAN;
      if (mine) {
        auto it = mine->scalars.find(v);
        if (it == mine->scalars.end()) throw Error("probe " + p->name() + " gave no value '" + v + "'");
        x = it->second;
      }
      a[path_of(*p, "scalars", v)] = at::full({1}, x, at::kDouble);
    }
  }
  return a;
}

ItemResult read_item(const RunReader& rd, const Probe& p, int64_t item) {
  ItemResult r;
  for (const std::string& v : p.head_values()) r.heads[v] = rd.array(path_of(p, "heads", v), item);
  for (const std::string& v : p.token_values()) r.tokens[v] = rd.array(path_of(p, "tokens", v), item);
  for (const std::string& v : p.scalar_values()) r.scalars[v] = rd.array(path_of(p, "scalars", v), item).item<double>();
  return r;
}

}  // namespace

std::vector<ProbeResult> score_probes(const Model& m, const std::vector<const Probe*>& probes, const ScoreOptions& o,
                                      const std::function<bool(const ScoreProgress&)>& progress) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads;
  if (probes.empty()) throw Error("no probe to run");
  auto report = [&](ScoreProgress p) {
    if (progress && !progress(p)) throw Cancelled();
  };
  // 1. Every probe's items, checked before anything runs.
  std::vector<std::vector<ProbeItem>> items;
  for (const Probe* p : probes) {
    items.push_back(p->items(m));
    if (items.back().empty()) throw Error("the " + p->name() + " probe has no items");
  }
  // 2. Continuations: once per distinct (prompt, length); read back from the run file when resuming.
  // Run item j is the j-th item in probe order (the plan below).
  const auto kept = o.output.empty() || o.open != RunOpen::resume ? std::map<int64_t, std::vector<int32_t>>{} : kept_item_tokens(o.output);
  auto kept_for = [&](size_t k, size_t i, const ProbeItem& it) -> const std::vector<int32_t>* {
    int64_t j = static_cast<int64_t>(i);
    for (size_t q = 0; q < k; ++q) j += static_cast<int64_t>(items[q].size());
    auto f = kept.find(j);
    const int64_t r0 = static_cast<int64_t>(it.tokens.size()), size = f == kept.end() ? 0 : static_cast<int64_t>(f->second.size());
    if (size <= r0 || size > r0 + it.continue_tokens || !std::equal(it.tokens.begin(), it.tokens.end(), f->second.begin())) return nullptr;
    return &f->second;
  };
  std::map<std::pair<std::vector<int32_t>, int64_t>, std::vector<int32_t>> made;
  std::set<std::pair<std::vector<int32_t>, int64_t>> distinct;  // continuations to make
  for (size_t k = 0; k < probes.size(); ++k)
    for (size_t i = 0; i < items[k].size(); ++i)
      if (items[k][i].continue_tokens > 0 && !kept_for(k, i, items[k][i]))
        distinct.insert({items[k][i].tokens, items[k][i].continue_tokens * 2 + items[k][i].stop_at_newline});
  const int64_t to_make = static_cast<int64_t>(distinct.size());
  int64_t made_n = 0;
  for (size_t k = 0; k < probes.size(); ++k)
    for (size_t i = 0; i < items[k].size(); ++i) {
      ProbeItem& it = items[k][i];
      it.meta["probe"] = probes[k]->name(), it.meta["index"] = static_cast<int64_t>(i);
      if (it.continue_tokens <= 0) continue;
      const int64_t r0 = static_cast<int64_t>(it.tokens.size()), n = it.continue_tokens;
      const std::vector<int32_t>* from_file = kept_for(k, i, it);
      std::vector<int32_t> all;
      if (from_file) {
        all = *from_file;
      } else {
        auto key = std::make_pair(it.tokens, n * 2 + it.stop_at_newline);
        auto done = made.find(key);
        if (done == made.end()) {
          report({"continuations", made_n, to_make});
          std::vector<int32_t> seq = it.tokens;
          std::function<bool(int32_t)> stop;
          if (it.stop_at_newline) stop = [&](int32_t id) { return m.tokenizer().token_text(id).find('\n') != std::string::npos; };
          for (int32_t id : m.generate(it.tokens, static_cast<int>(n), Sampling{}, nullptr, nullptr, stop).tokens) seq.push_back(id);
          done = made.emplace(key, std::move(seq)).first;
          ++made_n;
        }
        all = done->second;
      }
      it.tokens = all, it.response_start = r0, it.continue_tokens = 0;
      it.meta["response_start"] = r0, it.meta["response"] = n;
    }
  if (to_make > 0) report({"continuations", to_make, to_make});

  std::vector<ProbeResult> results(probes.size());
  for (size_t k = 0; k < probes.size(); ++k) {
    results[k].name = probes[k]->name(), results[k].params = probes[k]->params(), results[k].rank_by = probes[k]->rank_by();
    results[k].items.resize(items[k].size());
    for (const ProbeItem& it : items[k]) results[k].item_tokens.push_back(it.tokens), results[k].item_meta.push_back(it.meta);
  }
  // Probe k is prepared with the combined results of probes 0 .. k-1 (whose items are all in by then: items run in
  // probe order, and a resumed job reads the kept ones back first).
  std::vector<char> prepared(probes.size(), 0), combined(probes.size(), 0);
  auto prepare = [&](size_t k) {
    if (prepared[k]) return;
    for (size_t q = 0; q < k; ++q)
      if (!combined[q]) probes[q]->combine(m, items[q], results[q]), combined[q] = 1;
    probes[k]->prepare(m, std::vector<ProbeResult>(results.begin(), results.begin() + static_cast<std::ptrdiff_t>(k)));
    prepared[k] = 1;
  };
  auto combine_all = [&] {
    for (size_t k = 0; k < probes.size(); ++k) {
      prepare(k);
      if (!combined[k]) probes[k]->combine(m, items[k], results[k]), combined[k] = 1;
    }
  };
  if (o.output.empty()) {  // in memory
    for (size_t k = 0; k < probes.size(); ++k) {
      prepare(k);
      for (size_t i = 0; i < items[k].size(); ++i) {
        results[k].items[i] = probes[k]->run(m, items[k][i]);
        report({probes[k]->name(), static_cast<int64_t>(i + 1), static_cast<int64_t>(items[k].size())});
      }
    }
    combine_all();
    return results;
  }

  // 3. Into a run file: one run item per probe item, in probe order.
  RunPlan plan;
  plan.command_line = o.command_line;
  plan.model = run_model_info(m, o.model_path);
  nlohmann::json settings = nlohmann::json::array();
  std::vector<std::pair<size_t, size_t>> owner;  // run item -> (probe, probe item)
  for (size_t k = 0; k < probes.size(); ++k) {
    settings.push_back({{"probe", probes[k]->name()}, {"params", probes[k]->params()}});
    for (size_t i = 0; i < items[k].size(); ++i) {
      plan.items.push_back({items[k][i].text, items[k][i].meta, items[k][i].tokens});
      owner.emplace_back(k, i);
      results[k].run_items.push_back(static_cast<int64_t>(owner.size()) - 1);
    }
    for (const std::string& v : probes[k]->head_values())
      plan.arrays.push_back({path_of(*probes[k], "heads", v), false, {L, H}, "", "[item, layer, head]", true, true});
    for (const std::string& v : probes[k]->token_values())
      plan.arrays.push_back({path_of(*probes[k], "tokens", v), false, {}, "", "[token]", false, true});
    for (const std::string& v : probes[k]->scalar_values())
      plan.arrays.push_back({path_of(*probes[k], "scalars", v), false, {}, "", "[item]", true, true});
  }
  plan.settings = {{"command", "score"}, {"probes", settings}};
  RunWriter w(o.output, std::move(plan), o.open);
  const std::vector<int64_t> todo = w.pending();
  std::vector<int64_t> left(probes.size(), 0), done(probes.size(), 0);
  for (int64_t j : todo) ++left[owner[j].first];
  const int64_t kept_items = static_cast<int64_t>(owner.size() - todo.size());
  if (kept_items > 0) {  // the earlier job's items, read back from their parts before anything new is queued
    std::vector<char> kept(owner.size(), 1);
    for (int64_t j : todo) kept[static_cast<size_t>(j)] = 0;
    RunReader rd(w.work_path());
    for (size_t j = 0; j < owner.size(); ++j)
      if (kept[j]) results[owner[j].first].items[owner[j].second] = read_item(rd, *probes[owner[j].first], static_cast<int64_t>(j));
  }
  for (int64_t j : todo) {
    const auto [k, i] = owner[j];
    prepare(k);
    results[k].items[i] = probes[k]->run(m, items[k][i]);
    w.append(j, arrays_of(probes, probes[k], &results[k].items[i], L, H, static_cast<int64_t>(items[k][i].tokens.size())));
    report({probes[k]->name(), ++done[k], left[k], kept_items > 0, kept_items});
  }
  w.flush();
  combine_all();
  w.finish(results);
  return results;
}

std::vector<ProbeItem> prompt_items(const Model& m, const std::vector<PromptItem>& prompts, int64_t response) {
  std::vector<ProbeItem> out;
  for (const PromptItem& p : prompts) {
    ProbeItem it;
    it.tokens = m.tokenizer().encode(p.text);
    it.text = p.text;
    if (p.meta.is_object()) it.meta = p.meta;
    it.continue_tokens = response;
    out.push_back(std::move(it));
  }
  return out;
}

at::Tensor mean_over_items(const ProbeResult& r, const std::string& value) {
  if (r.items.empty()) throw Error("probe " + r.name + ": no items to combine");
  at::Tensor sum = at::zeros_like(r.items[0].heads.at(value), at::kDouble);
  for (const ItemResult& it : r.items) sum += it.heads.at(value).to(at::kDouble);
  return sum / static_cast<double>(r.items.size());
}

ProbeResult run_probe(const Model& m, const Probe& p, const ProbeProgress& progress) {
  std::function<bool(const ScoreProgress&)> cb;
  if (progress) cb = [&](const ScoreProgress& s) { return s.phase == "continuations" || progress(s.done, s.total); };
  return score_probes(m, {&p}, ScoreOptions{}, cb).at(0);
}

}  // namespace headscope
