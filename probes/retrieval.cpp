// The retrieval-head probe (see retrieval.h).
#include "probes/retrieval.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "analysis/retrieval.h"
#include "core/error.h"

namespace headscope {

std::string prompt_format(const Model& m) { return m.has_tokenizer() ? chat_format_of(m.tokenizer().chat_template()) : "plain"; }

std::vector<int64_t> RetrievalProbe::lengths_for(const Model& m) const {
  std::vector<int64_t> l = o_.lengths;
  const int64_t ctx = m.config().context;
  if (l.empty()) l = linspace_round(std::min<int64_t>(1000, ctx), static_cast<double>(std::min<int64_t>(50000, ctx)), 20);  // capped
  for (int64_t x : l)
    if (x > ctx)
      throw Error("a context length of " + std::to_string(x) + " tokens is beyond this model's context of " + std::to_string(ctx) +
                  " tokens (give --lengths up to " + std::to_string(ctx) + ")");
  std::sort(l.begin(), l.end());
  l.erase(std::unique(l.begin(), l.end()), l.end());
  return l;
}

std::vector<double> RetrievalProbe::depths() const {
  if (!o_.depths.empty()) return o_.depths;
  std::vector<double> d;
  for (int64_t x : linspace_round(0, 100, 10)) d.push_back(static_cast<double>(x));
  return d;
}

nlohmann::json RetrievalProbe::params() const {
  nlohmann::json needles = nlohmann::json::array();
  for (const Needle& n : o_.needles.empty() ? paper_needles() : o_.needles)
    needles.push_back({{"needle", n.needle}, {"question", n.question}, {"answer", n.answer}});
  return {{"lengths", o_.lengths}, {"depths", depths()}, {"needles", needles}, {"haystack", o_.haystack_name},
          {"haystack_bytes", o_.haystack.size()}, {"format", o_.format}, {"max_new", o_.max_new},
          {"mode", o_.set_mode ? "set" : "step"}, {"rouge_threshold", o_.rouge_threshold}, {"reserve", o_.reserve}};
}

Needle eval_needle() {
  return {"\nThe best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.\n",
          "What is the best thing to do in San Francisco?", "eat a sandwich and sit in Dolores Park on a sunny day"};
}

std::vector<ProbeItem> niah_items(const Model& m, const RetrievalOptions& o) {
  if (!m.has_tokenizer()) throw Error("needle-in-a-haystack items need the model's tokenizer");
  if (!o.given_items.empty()) {
    for (const ProbeItem& it : o.given_items)
      if (!it.meta.contains("answer") || !it.meta["answer"].is_string()) throw Error("a needle item needs its \"answer\" in its meta");
    return o.given_items;
  }
  if (o.haystack.empty()) throw Error("needle-in-a-haystack items need a haystack text");
  const RetrievalProbe grid(o);
  const Tokenizer& t = m.tokenizer();
  const std::string format = o.format == "auto" ? prompt_format(m) : o.format;
  NiahTokenizer tok{[&](const std::string& s) { return t.encode(s, false); }, [&](const std::vector<int32_t>& ids) { return t.decode(ids); },
                    [&](int32_t id) { return t.token_text(id); }};
  std::vector<ProbeItem> out;
  const auto needles = o.needles.empty() ? paper_needles() : o.needles;
  for (size_t k = 0; k < needles.size(); ++k)
    for (int64_t length : grid.lengths_for(m))
      for (double depth : grid.depths()) {
        const NiahItem n = make_niah_item(o.haystack, needles[k], length, depth, format, tok, o.reserve);
        ProbeItem it;
        it.tokens = t.encode(n.prompt);
        it.text = n.prompt;
        it.meta = {{"needle", k}, {"length", length}, {"depth", depth}, {"answer", needles[k].answer}, {"insertion", n.insertion}};
        std::vector<int32_t> ids = it.tokens;
        fit_context(m.config(), ids, ContextPolicy{}, "the needle item of " + std::to_string(length) + " tokens", o.max_new);
        out.push_back(std::move(it));
      }
  return out;
}

std::vector<ProbeItem> RetrievalProbe::items(const Model& m) const {
  if (o_.max_new < 1) throw Error("the retrieval probe needs at least one token to decode");
  std::vector<ProbeItem> out = niah_items(m, o_);
  for (ProbeItem& it : out) it.continue_tokens = o_.max_new, it.stop_at_newline = true;
  return out;
}

ItemResult RetrievalProbe::run(const Model& m, const ProbeItem& item) const {
  const int64_t L = m.config().n_layers, H = m.config().n_heads, r0 = item.response_start, N = static_cast<int64_t>(item.tokens.size());
  if (r0 < 1 || r0 >= N) throw Error("the retrieval probe needs a prompt and its continuation");
  const std::vector<int32_t> prompt(item.tokens.begin(), item.tokens.begin() + r0), emitted(item.tokens.begin() + r0, item.tokens.end());
  ItemResult r;
  const std::string answer = item.meta.value("answer", "");
  const auto span = locate_needle(prompt, m.tokenizer().encode(answer, false));
  const double rouge = 100.0 * rouge1_recall(answer, m.tokenizer().decode(emitted));
  r.scalars = {{"rouge1", rouge}, {"needle_start", static_cast<double>(span.first)}, {"needle_end", static_cast<double>(span.second)}};
  r.scalars["kept"] = span.first >= 0 && rouge > o_.rouge_threshold ? 1.0 : 0.0;
  if (span.first < 0) {  // the needle is not in the prompt as tokens: the item is skipped
    r.heads["r"] = at::full({L, H}, NAN, at::kDouble);
    return r;
  }
  // Row t of prompt + answer emits token t + 1: rows r0 - 1 .. N - 2 are the decode steps (their statistics equal
  // the steps'), so one forward over all but the last token gives every step's argmax key.
  AttnRecord rec;
  rec.stats = true;
  rec.key_recv = false;
  const std::vector<int32_t> read(item.tokens.begin(), item.tokens.end() - 1);
  const ForwardResult fr = m.run(read, rec, /*last_only=*/true);
  at::Tensor argmax = at::empty({N - r0, L, H}, at::kInt);
  for (int64_t l = 0; l < L; ++l) argmax.select(1, l).copy_(fr.attn[l][kStatArgmax].narrow(1, r0 - 1, N - r0).t());
  r.heads["r"] = retrieval_copy_scores(argmax, emitted, prompt, span, o_.set_mode);
  return r;
}

void RetrievalProbe::combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const {
  const int64_t L = m.config().n_layers, H = m.config().n_heads;
  at::Tensor sum = at::zeros({L, H}, at::kDouble), active = at::zeros({L, H}, at::kDouble);
  int64_t kept = 0, located = 0;
  double rouge_sum = 0;
  std::map<std::pair<int64_t, double>, std::pair<double, int64_t>> grid;  // (length, depth) -> (rouge sum, items)
  for (size_t i = 0; i < r.items.size(); ++i) {
    const ItemResult& it = r.items[i];
    const double rouge = it.scalars.at("rouge1");
    rouge_sum += rouge;
    auto& g = grid[{items[i].meta.value("length", int64_t{0}), items[i].meta.value("depth", 0.0)}];
    g.first += rouge, g.second += 1;
    located += it.scalars.at("needle_start") >= 0;
    if (it.scalars.at("kept") != 1.0) continue;
    ++kept;
    sum += it.heads.at("r");
    active += (it.heads.at("r") > 0).to(at::kDouble);
  }
  const double n = static_cast<double>(std::max<int64_t>(kept, 1));
  r.scores["retrieval"] = kept ? sum / n : at::zeros({L, H}, at::kDouble);
  r.scores["activation"] = kept ? active / n : at::zeros({L, H}, at::kDouble);
  nlohmann::json table = nlohmann::json::array();
  for (auto& [key, v] : grid) table.push_back({{"length", key.first}, {"depth", key.second}, {"rouge1", v.first / static_cast<double>(v.second)}});
  r.summary = {{"items", r.items.size()}, {"kept", kept}, {"needle_located", located},
               {"niah_rouge1", r.items.empty() ? 0.0 : rouge_sum / static_cast<double>(r.items.size())},
               {"retrieval_heads_above_0.1", (r.scores["retrieval"] > 0.1).sum().item<int64_t>()},
               {"by_length_depth", table}};
  if (kept == 0) r.summary["note"] = "no item passed ROUGE-1 recall > " + std::to_string(o_.rouge_threshold) + ": no retrieval scores";
}

}  // namespace headscope
