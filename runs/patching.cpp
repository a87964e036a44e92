// Patching attention heads: task pairs, activation patching and path patching (see patching.h).
#include "runs/patching.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "analysis/patching.h"
#include "core/error.h"
#include "core/text.h"
#include "datasets/colored_objects.h"
#include "datasets/ioi.h"
#include "hooks/hooks.h"

namespace headscope {

namespace {

// Rows of hook values per batched pass: enough variants to share each weight read, few enough to stay in cache.
constexpr int64_t kRowsPerPass = 1024;
// Pairs whose variants share passes (their activations are cached together).
constexpr size_t kPairsPerGroup = 8;

}  // namespace

void check_pairs(const ModelConfig& cfg, const std::vector<PatchPair>& pairs) {
  if (pairs.empty()) throw Error("patching needs at least one clean/corrupt pair (the pair set is empty)");
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PatchPair& p = pairs[i];
    if (p.clean.empty() || p.clean.size() != p.corrupt.size())
      throw Error("pair " + std::to_string(i + 1) + ": the clean prompt has " + std::to_string(p.clean.size()) + " tokens and the corrupt one " +
                  std::to_string(p.corrupt.size()) + "; patching needs prompts of the same length");
    for (int32_t t : {p.correct, p.incorrect})
      if (t < 0 || t >= cfg.vocab) throw Error("pair " + std::to_string(i + 1) + ": answer token " + std::to_string(t) + " is outside the vocabulary");
  }
}

TaskPairs make_task_pairs(const Model& m, const TaskOptions& o) {
  const bool file = o.task.size() > 6 && o.task.compare(o.task.size() - 6, 6, ".jsonl") == 0;
  if (o.task != "ioi" && o.task != "colored-objects" && !file)
    throw Error("unknown task '" + o.task + "' (known: ioi, colored-objects, or a pairs file FILE.jsonl)");
  if (o.pairs < 1) throw Error("the task needs at least one pair (--pairs " + std::to_string(o.pairs) + ")");
  const Tokenizer& tok = m.tokenizer();
  auto encode = [&](const std::string& s) { return tok.encode(s, false); };
  // (clean, corrupt, correct answer, incorrect answer) per prompt; the task's answers get their leading space.
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> texts;
  TaskPairs out;
  std::string space = " ";
  // One position at a time needs one length: draw 8 times as many prompts and keep `pairs` of the most common length.
  const int draw = o.same_length ? o.pairs * 8 : o.pairs;
  if (file) {
    std::ifstream in(o.task);
    if (!in) throw Error("cannot read the pairs file " + o.task);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      const char* keys[] = {"clean", "corrupt", "correct", "incorrect"};
      bool ok = j.is_object();
      for (const char* k : keys) ok = ok && j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty();
      if (!ok) throw Error(o.task + " line " + std::to_string(n) + ": expected {\"clean\", \"corrupt\", \"correct\", \"incorrect\"} as non-empty strings");
      texts.emplace_back(j["clean"], j["corrupt"], j["correct"], j["incorrect"]);
      if (static_cast<int>(texts.size()) == draw) break;
    }
    if (texts.empty()) throw Error("the pairs file " + o.task + " holds no pair (the pair set is empty)");
    out.vocabulary = {{"pairs_file", o.task}};
    space.clear();
  } else if (o.task == "ioi") {
    IoiOptions io;
    io.count = draw, io.seed = o.seed, io.corrupt = o.corrupt;
    const IoiSet set = make_ioi(io, encode);
    for (const IoiPrompt& p : set.prompts) texts.emplace_back(p.clean, p.corrupt, p.io, p.s);
    out.vocabulary = {{"names_kept", set.names_kept}, {"names_dropped", set.names_dropped}};
  } else {
    const ColoredObjectsSet set = make_colored_objects(draw, o.seed, encode);
    for (const ColoredObjectsPrompt& p : set.prompts) texts.emplace_back(p.clean, p.corrupt, p.answer, p.corrupt_answer);
    out.vocabulary = {{"colours_kept", set.colours_kept}, {"colours_dropped", set.colours_dropped}, {"objects_kept", set.objects_kept},
                      {"objects_dropped", set.objects_dropped}};
  }
  for (const auto& [clean, corrupt, yes, no] : texts) {
    PatchPair pp{tok.encode(clean), tok.encode(corrupt), encode(space + yes).at(0), encode(space + no).at(0), clean, corrupt};
    if (pp.clean.size() != pp.corrupt.size()) {
      ++out.dropped_unequal;
      continue;
    }
    out.pairs.push_back(std::move(pp));
  }
  if (o.same_length && !out.pairs.empty()) {
    std::map<size_t, int64_t> lengths;
    for (const PatchPair& p : out.pairs) ++lengths[p.clean.size()];
    size_t best = out.pairs[0].clean.size();
    for (auto& [len, n] : lengths)
      if (n > lengths[best]) best = len;
    std::vector<PatchPair> same;
    for (PatchPair& p : out.pairs)
      if (p.clean.size() == best) same.push_back(std::move(p));
    if (same.size() > static_cast<size_t>(o.pairs)) same.resize(static_cast<size_t>(o.pairs));
    out.dropped_length = static_cast<int64_t>(out.pairs.size() - same.size());
    out.pairs = std::move(same);
  }
  if (out.pairs.empty())
    throw Error("no " + o.task + " pair is left: all " + std::to_string(out.dropped_unequal) +
                " clean and corrupt prompts tokenize to different lengths for this model");
  return out;
}

PromptCache cache_prompt(const Model& m, const std::vector<int32_t>& ids, int32_t correct, int32_t incorrect) {
  const int64_t L = m.config().n_layers;
  PromptCache c;
  c.resid.resize(L), c.q.resize(L), c.k.resize(L), c.v.resize(L), c.z.resize(L);
  Hooks hooks;
  const std::pair<const char*, std::vector<at::Tensor>*> points[] = {
      {"hook_resid_pre", &c.resid}, {"attn.hook_q", &c.q}, {"attn.hook_k", &c.k}, {"attn.hook_v", &c.v}, {"attn.hook_z", &c.z}};
  for (int64_t l = 0; l < L; ++l)
    for (const auto& [point, into] : points)
      hooks.add(Hooks::name(l, point), [into, l](const at::Tensor& v, const HookContext&) {
        (*into)[static_cast<size_t>(l)] = v.clone();
        return v;
      });
  c.ld = logit_diff(m.run(ids, AttnRecord{}, /*last_only=*/true, &hooks, &c.kv).logits[0], correct, incorrect);
  return c;
}

HeadPatchingResult patch_heads(const Model& m, const std::vector<PatchPair>& pairs, const HeadPatchingOptions& o,
                               const std::function<bool(int64_t, int64_t)>& progress) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, d = cfg.d_head;
  check_pairs(cfg, pairs);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t T = static_cast<int64_t>(pairs[0].clean.size());
  for (const PatchPair& p : pairs)
    if (o.per_position && static_cast<int64_t>(p.clean.size()) != T)
      throw Error("patching one position at a time needs every pair of the same length (" + std::to_string(T) + " tokens)");
  const int64_t P = o.per_position ? T : 1;
  HeadPatchingResult r;
  std::vector<double> plain;
  for (int k = 0; k < 3; ++k) {
    const auto s0 = std::chrono::steady_clock::now();
    m.forward(pairs[0].clean, /*last_only=*/true);
    plain.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
  }
  std::sort(plain.begin(), plain.end());
  r.plain_forward_seconds = plain[1];
  std::vector<std::vector<double>> patched(static_cast<size_t>(L * H * P));  // per cell, per pair
  for (size_t i0 = 0; i0 < pairs.size();) {
    // A group of up to kPairsPerGroup consecutive pairs of one length runs its variants together.
    const int64_t Tp = static_cast<int64_t>(pairs[i0].clean.size());
    size_t i1 = i0 + 1;
    while (i1 < pairs.size() && i1 - i0 < kPairsPerGroup && static_cast<int64_t>(pairs[i1].clean.size()) == Tp) ++i1;
    const int64_t G = static_cast<int64_t>(i1 - i0);
    std::vector<PromptCache> clean(static_cast<size_t>(G)), corrupt(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      const PatchPair& p = pairs[i0 + static_cast<size_t>(g)];
      clean[static_cast<size_t>(g)] = cache_prompt(m, p.clean, p.correct, p.incorrect);
      corrupt[static_cast<size_t>(g)] = cache_prompt(m, p.corrupt, p.correct, p.incorrect);
      r.forwards += 2;
      r.ld_clean.push_back(clean[static_cast<size_t>(g)].ld), r.ld_corrupt.push_back(corrupt[static_cast<size_t>(g)].ld);
    }
    const std::vector<PromptCache>& source = o.noising ? corrupt : clean;
    const std::vector<PromptCache>& target = o.noising ? clean : corrupt;
    for (int64_t l = 0; l < L; ++l)
      for (int64_t pos = o.per_position ? 0 : -1; pos < (o.per_position ? Tp : 0); ++pos) {
        // Every head of every pair at this position (or at all of them): the rows from the position on, after the
        // cached ones. Variant v is pair v / H, head v % H.
        const int64_t start = std::max<int64_t>(pos, 0), rows = Tp - start, variants = G * H;
        const int64_t per_pass = std::max<int64_t>(1, kRowsPerPass / rows);
        for (int64_t v0 = 0; v0 < variants; v0 += per_pass) {
          const int64_t B = std::min<int64_t>(per_pass, variants - v0);
          Hooks hooks;
          hooks.add(Hooks::name(l, "attn.hook_z"), [&](const at::Tensor& z_in, const HookContext&) {
            at::Tensor z = z_in.clone().view({B, rows, H, d});
            for (int64_t b = 0; b < B; ++b) {
              const int64_t g = (v0 + b) / H, h = (v0 + b) % H;
              const at::Tensor& src = source[static_cast<size_t>(g)].z[static_cast<size_t>(l)];
              if (pos < 0) z[b].select(1, h).copy_(src.select(1, h));
              else z[b][0][h].copy_(src[pos][h]);
            }
            return z.view({B * rows, H, d});
          });
          std::vector<at::Tensor> resid;
          std::vector<const KvCache*> prefixes;
          for (int64_t b = 0; b < B; ++b) {
            const PromptCache& t = target[static_cast<size_t>((v0 + b) / H)];
            resid.push_back(t.resid[static_cast<size_t>(l)].narrow(0, start, rows)), prefixes.push_back(&t.kv);
          }
          const at::Tensor logits = m.forward_batch(at::cat(resid), B, l, &hooks, prefixes, start);
          r.forwards += B, ++r.passes;
          for (int64_t b = 0; b < B; ++b) {
            const int64_t g = (v0 + b) / H, h = (v0 + b) % H;
            const PatchPair& p = pairs[i0 + static_cast<size_t>(g)];
            std::vector<double>& cell = patched[static_cast<size_t>((l * H + h) * P + start)];
            if (cell.size() <= i0 + static_cast<size_t>(g)) cell.resize(i0 + static_cast<size_t>(g) + 1, NAN);
            cell[i0 + static_cast<size_t>(g)] = logit_diff(logits[b], p.correct, p.incorrect);
          }
        }
      }
    i0 = i1;
    if (progress && !progress(static_cast<int64_t>(i0), static_cast<int64_t>(pairs.size()))) throw Cancelled();
  }
  r.ratio_of_means = at::empty(o.per_position ? std::vector<int64_t>{L, H, T} : std::vector<int64_t>{L, H}, at::kDouble);
  r.mean_of_ratios = at::empty_like(r.ratio_of_means);
  double* a = r.ratio_of_means.data_ptr<double>();
  double* b = r.mean_of_ratios.data_ptr<double>();
  for (size_t c = 0; c < patched.size(); ++c) {
    const PatchingAggregate g = aggregate_patching(patched[c], r.ld_clean, r.ld_corrupt, o.noising, o.batch);
    a[c] = g.ratio_of_means, b[c] = g.mean_of_ratios;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

const char* path_input_name(PathInput p) {
  switch (p) {
    case PathInput::logits: return "logits";
    case PathInput::q: return "q";
    case PathInput::k: return "k";
    case PathInput::v: return "v";
  }
  return "?";
}

std::vector<std::pair<int, int>> path_senders(const ModelConfig& cfg, const PathTarget& t) {
  int below = static_cast<int>(cfg.n_layers);
  if (t.input != PathInput::logits) {
    below = t.receivers.empty() ? 0 : below;
    for (auto [l, h] : t.receivers) below = std::min(below, l);
  }
  std::vector<std::pair<int, int>> out;
  for (int l = 0; l < below; ++l)
    for (int h = 0; h < static_cast<int>(cfg.n_heads); ++h) out.emplace_back(l, h);
  return out;
}

at::Tensor path_patch_pair(const Model& m, const PatchPair& p, const PromptCache& clean, const PromptCache& corrupt,
                           const PathTarget& t, int64_t* forwards, int64_t* passes) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, Hk = cfg.n_kv_heads, d = cfg.d_head, group = H / Hk;
  const int64_t T = static_cast<int64_t>(p.clean.size());
  for (auto [l, h] : t.receivers)
    if (l < 0 || l >= L || h < 0 || h >= H) throw Error("receiver head " + head_label(l, h) + " does not exist");
  at::Tensor out = at::full({L, H}, NAN, at::kDouble);
  const std::vector<std::pair<int, int>> senders = path_senders(cfg, t);
  if (senders.empty()) return out;
  // Receivers by layer, and the point their input is read from.
  std::map<int64_t, std::vector<int64_t>> recv;
  for (auto [l, h] : t.receivers) recv[l].push_back(h);
  const char* point = t.input == PathInput::q ? "attn.hook_q" : t.input == PathInput::k ? "attn.hook_k" : "attn.hook_v";
  const int64_t width = t.input == PathInput::q ? H : Hk;  // heads in the hooked tensor
  std::map<int64_t, std::vector<int64_t>> slots;  // per receiver layer, the heads (q) or KV groups (k/v) replaced
  for (auto& [l, hs] : recv) {
    std::set<int64_t> s;
    for (int64_t h : hs) s.insert(t.input == PathInput::q ? h : h / group);
    slots[l].assign(s.begin(), s.end());
  }
  const int64_t per_pass = std::max<int64_t>(1, kRowsPerPass / T);
  for (int64_t ls = 0; ls < L; ++ls) {
    std::vector<int64_t> hs;
    for (auto [l, h] : senders)
      if (l == ls) hs.push_back(h);
    for (size_t s0 = 0; s0 < hs.size(); s0 += static_cast<size_t>(per_pass)) {
      const int64_t B = std::min<int64_t>(per_pass, static_cast<int64_t>(hs.size() - s0));
      // Run 1: every head frozen to its clean output, the sender's from the corrupt run.
      Hooks run1;
      for (int64_t l = ls; l < L; ++l)
        run1.add(Hooks::name(l, "attn.hook_z"), [&, l](const at::Tensor&, const HookContext&) {
          at::Tensor z = clean.z[static_cast<size_t>(l)].repeat({B, 1, 1}).view({B, T, H, d});
          if (l == ls)
            for (int64_t b = 0; b < B; ++b) {
              const int64_t h = hs[s0 + static_cast<size_t>(b)];
              z[b].select(1, h).copy_(corrupt.z[static_cast<size_t>(l)].select(1, h));
            }
          return z.view({B * T, H, d});
        });
      std::map<int64_t, at::Tensor> captured;  // receiver layer -> its hooked input in run 1 [B*T, width, d]
      if (t.input != PathInput::logits)
        for (auto& [l, unused] : recv)
          run1.add(Hooks::name(l, point), [&captured, l](const at::Tensor& v, const HookContext&) {
            captured[l] = v;
            return v;
          });
      at::Tensor logits = m.forward_batch(clean.resid[static_cast<size_t>(ls)].repeat({B, 1}), B, ls, &run1);
      if (forwards) *forwards += B;
      if (passes) ++*passes;
      if (t.input != PathInput::logits) {
        // Run 2: the clean prompt with only the receivers' inputs taken from run 1.
        Hooks run2;
        for (auto& [l, idx] : slots) {
          run2.add(Hooks::name(l, point), [&, l](const at::Tensor& v, const HookContext&) {
            at::Tensor x = v.clone().view({B, T, width, d});
            const at::Tensor from = captured.at(l).view({B, T, width, d});
            for (int64_t j : slots.at(l)) x.select(2, j).copy_(from.select(2, j));
            return x.view({B * T, width, d});
          });
          if (t.input != PathInput::q) {  // the other heads of a replaced KV group keep their clean output
            std::vector<int64_t> keep;
            for (int64_t g : idx)
              for (int64_t h = g * group; h < (g + 1) * group; ++h)
                if (std::find(recv[l].begin(), recv[l].end(), h) == recv[l].end()) keep.push_back(h);
            if (!keep.empty())
              run2.add(Hooks::name(l, "attn.hook_z"), [&, l, keep](const at::Tensor& z_in, const HookContext&) {
                at::Tensor z = z_in.clone().view({B, T, H, d});
                for (int64_t h : keep) z.select(2, h).copy_(clean.z[static_cast<size_t>(l)].select(1, h).unsqueeze(0).expand({B, T, d}));
                return z.view({B * T, H, d});
              });
          }
        }
        const int64_t lr = recv.begin()->first;
        logits = m.forward_batch(clean.resid[static_cast<size_t>(lr)].repeat({B, 1}), B, lr, &run2);
        if (passes) ++*passes;
      }
      for (int64_t b = 0; b < B; ++b) out[ls][hs[s0 + static_cast<size_t>(b)]] = logit_diff(logits[b], p.correct, p.incorrect);
    }
  }
  return out;
}

}  // namespace headscope
