// The sink-rate probe (see sinks.h).
#include "probes/sinks.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "probes/induction.h"

namespace headscope {

ProbeResult sink_rate_probe(const Model& m, const std::vector<std::vector<int32_t>>& items, const SinkOptions& o,
                            const ProbeProgress& progress) {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads, T = o.tokens;
  if (T < 2) throw Error("the sink rate needs T >= 2 tokens per item");
  if (o.k < 0 || o.k >= T) throw Error("the sink position k must be in 0.." + std::to_string(T - 1));
  if (!(o.eps >= 0 && o.eps < 1)) throw Error("the sink threshold eps must be in [0, 1)");
  if (items.empty()) throw Error("the sink rate needs at least one item");
  for (size_t i = 0; i < items.size(); ++i)
    if (static_cast<int64_t>(items[i].size()) < T)
      throw Error("item " + std::to_string(i + 1) + " has " + std::to_string(items[i].size()) + " tokens; the sink rate needs T = " +
                  std::to_string(T) + " (give longer prompts or a smaller T)");
  ProbeResult r;
  r.name = "sinks";
  r.rank_by = "sink_rate";
  const bool bos_first = m.has_tokenizer() && m.tokenizer().bos_id() >= 0 && items[0][0] == m.tokenizer().bos_id();
  r.params = {{"tokens", T}, {"eps", o.eps}, {"k", o.k}, {"items", items.size()}, {"input", o.input}, {"bos_first", bos_first}};
  at::Tensor hits = at::zeros({L, H}, at::kDouble), alpha_sum = at::zeros({L, H}, at::kDouble);
  AttnRecord rec;
  rec.stats = true;
  rec.key_recv = true;
  rec.recv_lo = 0, rec.recv_hi = -1;  // every query t >= k
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<int32_t> ids(items[i].begin(), items[i].begin() + T);
    const ForwardResult fr = m.run(ids, rec, /*last_only=*/true);
    const double count = fr.key_count[o.k].item<int32_t>();  // T - k queries see key k
    for (int64_t l = 0; l < L; ++l) {
      const at::Tensor alpha = fr.attn[l][kStatKeyRecv].select(1, o.k).to(at::kDouble) / count;  // [H]
      alpha_sum[l] += alpha;
      hits[l] += (alpha > o.eps).to(at::kDouble);
    }
    if (progress && !progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(items.size()))) throw Cancelled();
  }
  const double n = static_cast<double>(items.size());
  r.scores["sink_rate"] = hits / n;  // share of items in which the head's alpha_k exceeds eps
  r.scores["alpha"] = alpha_sum / n;
  r.summary = {{"sink_rate_percent", 100.0 * (hits / n).mean().item<double>()}};
  return r;
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
