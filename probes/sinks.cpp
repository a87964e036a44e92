// The sink-rate probe (see sinks.h).
#include "probes/sinks.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "probes/induction.h"

namespace headscope {

std::vector<ProbeItem> id_items(const std::vector<std::vector<int32_t>>& ids, const std::string& what) {
  std::vector<ProbeItem> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    ProbeItem it;
    it.tokens = ids[i];
    it.text = what + " item " + std::to_string(i + 1);
    out.push_back(std::move(it));
  }
  return out;
}

nlohmann::json SinkRateProbe::params() const {
  return {{"tokens", o_.tokens}, {"eps", o_.eps}, {"k", o_.k}, {"items", items_.size()}, {"input", o_.input}};
}

std::vector<ProbeItem> SinkRateProbe::items(const Model& m) const {
  const int64_t T = o_.tokens;
  if (T < 2) throw Error("the sink rate needs T >= 2 tokens per item");
  if (o_.k < 0 || o_.k >= T) throw Error("the sink position k must be in 0.." + std::to_string(T - 1));
  if (!(o_.eps >= 0 && o_.eps < 1)) throw Error("the sink threshold eps must be in [0, 1)");
  if (items_.empty()) throw Error("the sink rate needs at least one item");
  if (T > m.config().context)
    throw Error("the sink rate's T = " + std::to_string(T) + " tokens exceeds this model's context of " + std::to_string(m.config().context));
  std::vector<ProbeItem> out;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (static_cast<int64_t>(items_[i].tokens.size()) < T)
      throw Error("item " + std::to_string(i + 1) + " has " + std::to_string(items_[i].tokens.size()) + " tokens; the sink rate needs T = " +
                  std::to_string(T) + " (give longer prompts or a smaller T)");
    ProbeItem it = items_[i];
    it.tokens.resize(static_cast<size_t>(T));
    // The BOS policy, per item: whether token 0 is the tokenizer's BOS.
    it.meta["bos_first"] = m.has_tokenizer() && m.tokenizer().bos_id() >= 0 && it.tokens[0] == m.tokenizer().bos_id();
    out.push_back(std::move(it));
  }
  return out;
}

ItemResult SinkRateProbe::run(const Model& m, const ProbeItem& item) const {
  const int64_t L = m.config().n_layers, H = m.config().n_heads;
  AttnRecord rec;
  rec.stats = true;
  rec.key_recv = true;
  rec.recv_lo = 0, rec.recv_hi = -1;  // every query t >= k
  const ForwardResult fr = m.run(item.tokens, rec, /*last_only=*/true);
  const double count = fr.key_count[o_.k].item<int32_t>();  // T - k queries see key k
  ItemResult r;
  r.heads["alpha"] = at::empty({L, H}, at::kDouble);
  for (int64_t l = 0; l < L; ++l) r.heads["alpha"][l] = fr.attn[l][kStatKeyRecv].select(1, o_.k).to(at::kDouble) / count;
  r.heads["sink"] = (r.heads["alpha"] > o_.eps).to(at::kDouble);
  return r;
}

void SinkRateProbe::combine(const Model&, const std::vector<ProbeItem>& items, ProbeResult& r) const {
  r.scores["sink_rate"] = mean_over_items(r, "sink");  // share of items in which the head's alpha_k exceeds eps
  r.scores["alpha"] = mean_over_items(r, "alpha");
  r.params["bos_first"] = items.at(0).meta.value("bos_first", false);
  r.summary = {{"sink_rate_percent", 100.0 * r.scores["sink_rate"].mean().item<double>()}};
}

std::vector<std::vector<int32_t>> sink_random_items(const Model& m, int count, int64_t T, bool repeated, uint64_t seed) {
  const bool bos = m.has_tokenizer() && m.tokenizer().add_bos() && m.tokenizer().bos_id() >= 0;
  const int64_t body = bos ? T - 1 : T;
  // The repeated-random-tokens generator gives [BOS] + r + r; the first half is `body` uniform special-free ids.
  std::vector<std::vector<int32_t>> out;
  const auto draws = repeated_random_tokens(m, count, static_cast<int>(repeated ? 2 : body), seed);
  for (const auto& d : draws) {
    std::vector<int32_t> item;
    if (bos) item.push_back(m.tokenizer().bos_id());
    if (repeated) item.insert(item.end(), static_cast<size_t>(body), d[1]);
    else item.insert(item.end(), d.begin() + 1, d.begin() + 1 + body);
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace headscope
