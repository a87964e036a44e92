// The induction-family probe (see induction.h).
#include "probes/induction.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"
#include "core/random.h"

namespace headscope {

namespace {

int32_t bos_of(const Model& m) {
  if (m.config().bos_id >= 0) return static_cast<int32_t>(m.config().bos_id);
  if (m.has_tokenizer() && m.tokenizer().bos_id() >= 0) return m.tokenizer().bos_id();
  return -1;
}

}  // namespace

std::vector<std::vector<int32_t>> repeated_random_tokens(const Model& m, int rows, int n, uint64_t seed) {
  if (rows < 1 || n < 2) throw Error("repeated random tokens need at least 1 row of n >= 2 tokens");
  const int32_t bos = bos_of(m);
  if (bos < 0) throw Error("the induction probe needs a BOS token ([BOS] + r + r), and this model has none");
  const uint64_t V = static_cast<uint64_t>(m.config().vocab), limit = UINT64_MAX - UINT64_MAX % V;
  auto special = [&](int32_t id) { return id == bos || id == m.config().eos_id || (m.has_tokenizer() && m.tokenizer().is_special(id)); };
  uint64_t state = seed;
  std::vector<std::vector<int32_t>> out;
  for (int r = 0; r < rows; ++r) {
    std::vector<int32_t> half;
    while (static_cast<int>(half.size()) < n) {
      const uint64_t x = splitmix64(state);
      if (x >= limit) continue;  // rejection: exactly uniform
      const int32_t id = static_cast<int32_t>(x % V);
      if (!special(id)) half.push_back(id);
    }
    std::vector<int32_t> seq{bos};
    seq.insert(seq.end(), half.begin(), half.end());
    seq.insert(seq.end(), half.begin(), half.end());
    out.push_back(std::move(seq));
  }
  return out;
}

ProbeResult induction_probe(const Model& m, const InductionOptions& o, const ProbeProgress& progress) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, n = o.n, T = 2 * n + 1;
  if (T > cfg.context) throw Error("the induction probe's sequences of 2n + 1 = " + std::to_string(T) + " tokens exceed this model's context of " + std::to_string(cfg.context));
  // Every head's T x T pattern of one sequence is held at once (small at the default T = 101: 11 MB for 270 heads).
  const double pattern_bytes = 4.0 * static_cast<double>(L * H) * static_cast<double>(T) * static_cast<double>(T);
  if (pattern_bytes > 2.0 * (1 << 30))
    throw Error("the induction probe holds every head's pattern of a sequence: " + std::to_string(L * H) + " heads x " + std::to_string(T) +
                "^2 floats would take " + std::to_string(static_cast<int64_t>(pattern_bytes / (1 << 20))) + " MiB; use a shorter repeat (n <= " +
                std::to_string(static_cast<int64_t>((std::sqrt(2.0 * (1 << 30) / 4.0 / static_cast<double>(L * H)) - 1) / 2)) + ")");
  const auto data = repeated_random_tokens(m, o.rows, o.n, o.seed);
  ProbeResult r;
  r.name = "induction";
  r.rank_by = "induction";
  r.params = {{"rows", o.rows}, {"n", o.n}, {"seq_len", T}, {"seed", o.seed}, {"bos", data[0][0]},
              {"exclude_bos", o.exclude_bos}, {"exclude_current", o.exclude_current}, {"sampler", "splitmix64, rejection, special ids excluded"}};
  const char* names[] = {"induction", "induction_strict", "previous", "current", "tl_previous", "tl_duplicate", "tl_induction",
                         "tl_previous_abs", "tl_duplicate_abs", "tl_induction_abs"};
  for (const char* s : names) r.scores[s] = at::zeros({L, H}, at::kDouble);
  AttnRecord rec;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) rec.pattern_heads.emplace_back(static_cast<int>(l), static_cast<int>(h));
  DetectOptions mul{o.exclude_bos, o.exclude_current, false}, abs{o.exclude_bos, o.exclude_current, true};
  for (size_t i = 0; i < data.size(); ++i) {
    const ForwardResult fr = m.run(data[i], rec, /*last_only=*/true);
    for (const auto& [lh, A] : fr.patterns) {
      const int64_t l = lh.first, h = lh.second;
      auto add = [&](const char* s, double v) { r.scores[s][l][h] += v / static_cast<double>(data.size()); };
      add("induction", stripe_mean(A, n - 1, n - 1, 2 * n));
      add("induction_strict", stripe_mean(A, n - 1, n + 1, 2 * n));
      add("previous", stripe_mean(A, 1, 1, 2 * n));
      add("current", stripe_mean(A, 0, 0, 2 * n));
      add("tl_previous", detect_score(A, data[i], DetectPattern::previous, mul));
      add("tl_duplicate", detect_score(A, data[i], DetectPattern::duplicate, mul));
      add("tl_induction", detect_score(A, data[i], DetectPattern::induction, mul));
      add("tl_previous_abs", detect_score(A, data[i], DetectPattern::previous, abs));
      add("tl_duplicate_abs", detect_score(A, data[i], DetectPattern::duplicate, abs));
      add("tl_induction_abs", detect_score(A, data[i], DetectPattern::induction, abs));
    }
    if (progress && !progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(data.size()))) throw Cancelled();
  }
  // ARENA's detector threshold: a head is called an induction (previous-token) head above 0.4.
  r.summary = {{"induction_heads_above_0.4", (r.scores["induction"] > 0.4).sum().item<int64_t>()},
               {"previous_token_heads_above_0.4", (r.scores["previous"] > 0.4).sum().item<int64_t>()}};
  return r;
}

}  // namespace headscope
