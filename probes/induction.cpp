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

namespace {
const std::vector<std::string> kValues = {"induction", "induction_strict", "previous", "current", "tl_previous", "tl_duplicate",
                                          "tl_induction", "tl_previous_abs", "tl_duplicate_abs", "tl_induction_abs"};
}

nlohmann::json InductionProbe::params() const {
  return {{"rows", o_.rows}, {"n", o_.n}, {"seq_len", 2 * o_.n + 1}, {"seed", o_.seed}, {"exclude_bos", o_.exclude_bos},
          {"exclude_current", o_.exclude_current}, {"sampler", "splitmix64, rejection, special ids excluded"}};
}

std::vector<std::string> InductionProbe::head_values() const { return kValues; }

std::vector<ProbeItem> InductionProbe::items(const Model& m) const {
  const int64_t T = 2 * static_cast<int64_t>(o_.n) + 1;
  if (T > m.config().context)
    throw Error("the induction probe's sequences of 2n + 1 = " + std::to_string(T) + " tokens exceed this model's context of " +
                std::to_string(m.config().context));
  std::vector<ProbeItem> out;
  int row = 0;
  for (auto& ids : repeated_random_tokens(m, o_.rows, o_.n, o_.seed)) {
    ProbeItem it;
    it.tokens = std::move(ids);
    it.text = "[BOS] + r + r, n = " + std::to_string(o_.n) + ", seed " + std::to_string(o_.seed) + ", row " + std::to_string(row);
    it.meta = {{"row", row++}, {"seed", o_.seed}, {"n", o_.n}, {"bos", it.tokens[0]}};
    out.push_back(std::move(it));
  }
  return out;
}

ItemResult InductionProbe::run(const Model& m, const ProbeItem& item) const {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, T = static_cast<int64_t>(item.tokens.size()), n = (T - 1) / 2;
  // Six key sets per query: the three detection patterns, key 0, the diagonal, and the induction stripe.
  KeySets first, current;
  for (int64_t t = 0; t < T; ++t) first.add_row({0}), current.add_row({static_cast<int32_t>(t)});
  const KeySets sets[6] = {detection_keys(DetectPattern::previous, item.tokens), detection_keys(DetectPattern::duplicate, item.tokens),
                           detection_keys(DetectPattern::induction, item.tokens), first, current, stripe_keys(T, n - 1)};
  AttnRecord rec;
  rec.n_keysets = 6;
  for (const KeySets& k : sets) {
    const int64_t base = static_cast<int64_t>(rec.keyset_keys.size());
    for (int64_t off : k.offsets) rec.keyset_offsets.push_back(base + off);
    rec.keyset_keys.insert(rec.keyset_keys.end(), k.keys.begin(), k.keys.end());
  }
  const ForwardResult fr = m.run(item.tokens, rec, /*last_only=*/true);
  ItemResult r;
  for (const std::string& v : kValues) r.heads[v] = at::zeros({L, H}, at::kDouble);
  const DetectOptions mul{o_.exclude_bos, o_.exclude_current, false}, abs{o_.exclude_bos, o_.exclude_current, true};
  const char* tl[3] = {"tl_previous", "tl_duplicate", "tl_induction"};
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor mass = fr.keyset_mass[l].to(at::kDouble).contiguous();  // [6, H, T]
    const double* p = mass.data_ptr<double>();
    for (int64_t h = 0; h < H; ++h) {
      auto row = [&](int c) { return std::vector<double>(p + (c * H + h) * T, p + (c * H + h + 1) * T); };
      auto set = [&](const char* v, double x) { r.heads[v][l][h] = x; };
      set("induction", stripe_mean(row(5), n - 1, 2 * n));
      set("induction_strict", stripe_mean(row(5), n + 1, 2 * n));
      set("previous", stripe_mean(row(0), 1, 2 * n));
      set("current", stripe_mean(row(4), 0, 2 * n));
      for (int c = 0; c < 3; ++c) {
        const DetectRows rows{std::vector<double>(static_cast<size_t>(T), 1.0), row(c), row(3), row(4)};  // kernel rows sum to 1
        set(tl[c], detect_score(rows, sets[c], mul));
        set((std::string(tl[c]) + "_abs").c_str(), detect_score(rows, sets[c], abs));
      }
    }
  }
  return r;
}

void InductionProbe::combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const {
  for (const std::string& v : kValues) r.scores[v] = mean_over_items(r, v);
  r.params["bos"] = items.at(0).tokens.at(0);
  (void)m;
  // ARENA's detector threshold: a head is called an induction (previous-token) head above 0.4.
  r.summary = {{"induction_heads_above_0.4", (r.scores["induction"] > 0.4).sum().item<int64_t>()},
               {"previous_token_heads_above_0.4", (r.scores["previous"] > 0.4).sum().item<int64_t>()}};
}

}  // namespace headscope
