// Activation patching of attention heads (see patching.h).
#include "runs/patching.h"

#include <ATen/ATen.h>

#include <chrono>
#include <string>

#include "analysis/patching.h"
#include "core/error.h"
#include "hooks/hooks.h"
#include "hooks/intervention_spec.h"
#include "hooks/interventions.h"

namespace headscope {

HeadPatchingResult patch_heads(const Model& m, const std::vector<PatchPair>& pairs, const HeadPatchingOptions& o,
                               const std::function<bool(int64_t, int64_t)>& progress) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads;
  if (pairs.empty()) throw Error("patching needs at least one clean/corrupt pair (the pair set is empty)");
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PatchPair& p = pairs[i];
    if (p.clean.empty() || p.clean.size() != p.corrupt.size())
      throw Error("pair " + std::to_string(i + 1) + ": the clean prompt has " + std::to_string(p.clean.size()) + " tokens and the corrupt one " +
                  std::to_string(p.corrupt.size()) + "; patching needs prompts of the same length");
    for (int32_t t : {p.correct, p.incorrect})
      if (t < 0 || t >= cfg.vocab) throw Error("pair " + std::to_string(i + 1) + ": answer token " + std::to_string(t) + " is outside the vocabulary");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t T = static_cast<int64_t>(pairs[0].clean.size());
  for (const PatchPair& p : pairs)
    if (o.per_position && static_cast<int64_t>(p.clean.size()) != T)
      throw Error("patching one position at a time needs every pair of the same length (" + std::to_string(T) + " tokens)");
  const int64_t P = o.per_position ? T : 1;
  std::vector<std::string> names;
  for (int64_t l = 0; l < L; ++l) names.push_back(Hooks::name(l, "attn.hook_z"));
  HeadPatchingResult r;
  std::vector<std::vector<double>> patched(static_cast<size_t>(L * H * P));  // per cell, per pair
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PatchPair& p = pairs[i];
    auto run_cached = [&](const std::vector<int32_t>& ids, ActivationCache& cache) {
      Hooks hooks;
      cache.record(hooks, names);
      const at::Tensor logits = m.run(ids, AttnRecord{}, /*last_only=*/true, &hooks).logits[0];
      ++r.forwards;
      return logit_diff(logits, p.correct, p.incorrect);
    };
    ActivationCache clean, corrupt;
    r.ld_clean.push_back(run_cached(p.clean, clean));
    r.ld_corrupt.push_back(run_cached(p.corrupt, corrupt));
    const ActivationCache& source = o.noising ? corrupt : clean;
    const std::vector<int32_t>& target = o.noising ? p.clean : p.corrupt;
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t pos = 0; pos < P; ++pos) {
          Intervention iv;
          iv.kind = Intervention::Kind::patch;
          iv.where = "patch " + std::to_string(l) + "." + std::to_string(h);
          iv.hook = names[static_cast<size_t>(l)];
          iv.heads = {{static_cast<int>(l), static_cast<int>(h)}};
          if (o.per_position) iv.positions = {pos};
          Hooks hooks;
          install_interventions(std::vector<Intervention>{iv}, cfg, hooks, &source);
          const at::Tensor logits = m.run(target, AttnRecord{}, /*last_only=*/true, &hooks).logits[0];
          ++r.forwards;
          patched[static_cast<size_t>((l * H + h) * P + pos)].push_back(logit_diff(logits, p.correct, p.incorrect));
        }
    if (progress && !progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(pairs.size()))) throw Cancelled();
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

}  // namespace headscope
