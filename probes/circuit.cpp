// Circuit discovery by path patching, stage by stage (see circuit.h).
#include "probes/circuit.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

#include "analysis/patching.h"
#include "core/error.h"
#include "core/text.h"
#include "core/random.h"
#include "datasets/colored_objects.h"
#include "hooks/hooks.h"
#include "probes/induction.h"
#include "probes/niah_eval.h"

namespace headscope {

namespace {

const ProbeResult* find(const std::vector<ProbeResult>& rs, const std::string& name) {
  for (const ProbeResult& r : rs)
    if (r.name == name) return &r;
  return nullptr;
}

}  // namespace

const std::vector<CircuitStage>& circuit_stages() {
  static const std::vector<CircuitStage> s = {{"logits", PathInput::logits, ""},
                                              {"mover_queries", PathInput::q, "logits"},
                                              {"inhibition_values", PathInput::v, "mover_queries"},
                                              {"induction_keys", PathInput::k, "inhibition_values", "induction"}};
  return s;
}

CircuitStageProbe::CircuitStageProbe(std::vector<PatchPair> pairs, CircuitOptions o, size_t stage)
    : pairs_(std::move(pairs)), o_(std::move(o)), stage_(circuit_stages().at(stage)) {}

nlohmann::json CircuitStageProbe::params() const {
  return {{"task", o_.task.task}, {"corrupt", o_.task.task == "ioi" ? o_.task.corrupt : ""}, {"pairs", o_.task.pairs},
          {"seed", o_.task.seed}, {"stage", stage_.name}, {"input", path_input_name(stage_.input)},
          {"receivers_from", stage_.from}, {"receivers_class", stage_.from_class}, {"share", o_.share}, {"batch", o_.batch}};
}

std::vector<ProbeItem> CircuitStageProbe::items(const Model& m) const {
  check_pairs(m.config(), pairs_);
  std::vector<ProbeItem> out;
  for (const PatchPair& p : pairs_) {
    ProbeItem it;
    it.tokens = p.clean, it.text = p.clean_text;
    it.meta = {{"corrupt", p.corrupt}, {"corrupt_text", p.corrupt_text}, {"correct", p.correct}, {"incorrect", p.incorrect}};
    out.push_back(std::move(it));
  }
  return out;
}

void CircuitStageProbe::prepare(const Model&, const std::vector<ProbeResult>& earlier) const {
  target_ = PathTarget{stage_.input, {}};
  if (!stage_.from.empty()) {
    const ProbeResult* from = find(earlier, "circuit/" + stage_.from);
    if (!from) throw Error("circuit stage " + stage_.name + " needs stage " + stage_.from + " to run before it");
    for (const auto& h : from->summary.at("selected"))
      if (stage_.from_class.empty() || h.at("class") == stage_.from_class) target_.receivers.emplace_back(h.at("layer").get<int>(), h.at("head").get<int>());
  }
  if (const ProbeResult* ind = find(earlier, "induction")) induction_ = ind->scores.at("induction"), duplicate_ = ind->scores.at("tl_duplicate");
}

ItemResult CircuitStageProbe::run(const Model& m, const ProbeItem& item) const {
  PatchPair p;
  p.clean = item.tokens;
  p.corrupt = item.meta.at("corrupt").get<std::vector<int32_t>>();
  p.correct = item.meta.at("correct").get<int32_t>(), p.incorrect = item.meta.at("incorrect").get<int32_t>();
  const PromptCache clean = cache_prompt(m, p.clean, p.correct, p.incorrect);
  const PromptCache corrupt = cache_prompt(m, p.corrupt, p.correct, p.incorrect);
  ItemResult r;
  r.heads["ld_patch"] = path_patch_pair(m, p, clean, corrupt, target_);
  r.scalars["ld_clean"] = clean.ld, r.scalars["ld_corrupt"] = corrupt.ld;
  return r;
}

void CircuitStageProbe::combine(const Model& m, const std::vector<ProbeItem>&, ProbeResult& r) const {
  const ModelConfig& cfg = m.config();
  const int64_t L = cfg.n_layers, H = cfg.n_heads;
  std::vector<double> ld_clean, ld_corrupt;
  for (const ItemResult& it : r.items) ld_clean.push_back(it.scalars.at("ld_clean")), ld_corrupt.push_back(it.scalars.at("ld_corrupt"));
  at::Tensor effect = at::full({L, H}, NAN, at::kDouble), per_pair = at::full({L, H}, NAN, at::kDouble);
  int64_t senders = 0;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> ld;
      for (const ItemResult& it : r.items) ld.push_back(it.heads.at("ld_patch")[l][h].item<double>());
      if (ld.empty() || std::isnan(ld[0])) continue;
      ++senders;
      const PatchingAggregate g = aggregate_patching(ld, ld_clean, ld_corrupt, /*noising=*/true, o_.batch);
      effect[l][h] = g.ratio_of_means, per_pair[l][h] = g.mean_of_ratios;
    }
  r.scores["effect"] = effect, r.scores["effect_mean_of_ratios"] = per_pair;
  // The top share of all heads among the senders.
  nlohmann::json selected = nlohmann::json::array();
  const double ind_max = induction_.defined() ? std::max(1e-12, induction_.max().item<double>()) : 1.0;
  const double dup_max = duplicate_.defined() ? std::max(1e-12, duplicate_.max().item<double>()) : 1.0;
  for (auto [l, h] : top_heads_of_stage(effect, o_.share)) {
    const double s = effect[l][h].item<double>();
    if (std::isnan(s) || std::fabs(s) < 1e-6) continue;  // fewer senders than the share, or no effect at all
    std::string cls;
    if (stage_.name == "logits") cls = s >= 0 ? "name mover" : "negative mover";
    else if (stage_.name == "mover_queries") cls = "S-inhibition";
    else if (stage_.name == "inhibition_values")
      cls = !induction_.defined() ? "induction or duplicate-token"
            : induction_[l][h].item<double>() / ind_max >= duplicate_[l][h].item<double>() / dup_max ? "induction" : "duplicate-token";
    else cls = "previous-token";
    selected.push_back({{"layer", l}, {"head", h}, {"class", cls}, {"effect", s}, {"effect_mean_of_ratios", per_pair[l][h].item<double>()}});
  }
  nlohmann::json receivers = nlohmann::json::array();
  for (auto [l, h] : target_.receivers) receivers.push_back(head_label(l, h));
  double acc = 0, ldc = 0, ldx = 0;
  for (size_t i = 0; i < ld_clean.size(); ++i) acc += ld_clean[i] > 0, ldc += ld_clean[i], ldx += ld_corrupt[i];
  const double n = static_cast<double>(ld_clean.size());
  r.summary = {{"stage", stage_.name}, {"input", path_input_name(stage_.input)}, {"receivers", receivers}, {"senders", senders},
               {"selected", selected}, {"pairs", ld_clean.size()}, {"accuracy", acc / n}, {"logit_diff_clean", ldc / n},
               {"logit_diff_corrupt", ldx / n}};
}

std::vector<std::unique_ptr<Probe>> circuit_probes(const Model& m, const CircuitOptions& o) {
  const TaskPairs set = make_task_pairs(m, o.task);
  std::vector<std::unique_ptr<Probe>> out;
  InductionOptions io;  // [BOS] + r + r within the context
  io.n = static_cast<int>(std::min<int64_t>(io.n, (m.config().context - 1) / 2));
  out.push_back(std::make_unique<InductionProbe>(io));
  for (size_t s = 0; s < circuit_stages().size(); ++s) out.push_back(std::make_unique<CircuitStageProbe>(set.pairs, o, s));
  return out;
}

std::vector<CircuitHead> circuit_heads(const std::vector<ProbeResult>& results) {
  std::vector<CircuitHead> out;
  std::set<std::pair<int, int>> seen;
  for (const CircuitStage& st : circuit_stages()) {
    const ProbeResult* r = find(results, "circuit/" + st.name);
    if (!r) continue;
    for (const auto& h : r->summary.at("selected")) {
      CircuitHead c{h.at("layer").get<int>(), h.at("head").get<int>(), h.at("class").get<std::string>(), st.name, h.at("effect").get<double>()};
      if (seen.insert({c.layer, c.head}).second) out.push_back(c);
    }
  }
  return out;
}

CircuitOverlap circuit_overlap(const std::vector<CircuitHead>& a, const std::vector<CircuitHead>& b) {
  auto overlap = [](const std::set<std::pair<int, int>>& x, const std::set<std::pair<int, int>>& y) {
    Overlap o;
    for (const auto& h : x) o.shared += y.count(h);
    o.in_union = static_cast<int64_t>(x.size() + y.size()) - o.shared;
    o.jaccard = o.in_union == 0 ? NAN : static_cast<double>(o.shared) / static_cast<double>(o.in_union);
    return o;
  };
  auto heads = [](const std::vector<CircuitHead>& c, const std::string* cls) {
    std::set<std::pair<int, int>> s;
    for (const CircuitHead& h : c)
      if (!cls || h.cls == *cls) s.insert({h.layer, h.head});
    return s;
  };
  CircuitOverlap r;
  r.all = overlap(heads(a, nullptr), heads(b, nullptr));
  std::set<std::string> classes;
  for (const auto* c : {&a, &b})
    for (const CircuitHead& h : *c) classes.insert(h.cls);
  for (const std::string& cls : classes) r.per_class[cls] = overlap(heads(a, &cls), heads(b, &cls));
  return r;
}

std::vector<std::pair<int, int>> repair_heads(const std::vector<CircuitHead>& circuit) {
  auto strongest = [&](const std::string& cls, size_t n) {
    std::vector<CircuitHead> c;
    for (const CircuitHead& h : circuit)
      if (h.cls == cls) c.push_back(h);
    std::stable_sort(c.begin(), c.end(), [](const CircuitHead& a, const CircuitHead& b) { return std::fabs(a.effect) > std::fabs(b.effect); });
    std::vector<std::pair<int, int>> out;
    for (size_t i = 0; i < std::min(n, c.size()); ++i) out.emplace_back(c[i].layer, c[i].head);
    return out;
  };
  std::vector<std::pair<int, int>> out = strongest("S-inhibition", 3);
  for (auto h : strongest("negative mover", 1)) out.push_back(h);
  return out;
}

RepairResult repair_colored_objects(const Model& m, const RepairOptions& o, const std::function<bool(int64_t, int64_t)>& progress) {
  const ModelConfig& cfg = m.config();
  if (o.heads.empty()) throw Error("the repair experiment needs at least one head to make attend to the incorrect colours");
  for (auto [l, h] : o.heads)
    if (l < 0 || l >= cfg.n_layers || h < 0 || h >= cfg.n_heads) throw Error("head " + head_label(l, h) + " does not exist");
  const Tokenizer& tok = m.tokenizer();
  auto encode = [&](const std::string& s) { return tok.encode(s, false); };
  const ColoredObjectsSet set = make_colored_objects(o.prompts, o.seed, encode);
  struct Item {
    std::vector<int32_t> ids;
    int32_t answer;
    std::vector<int32_t> wrong_answers;
    std::vector<int64_t> wrong_keys;  // positions of the question's incorrect colours
  };
  std::vector<Item> items;
  for (const ColoredObjectsPrompt& p : set.prompts) {
    Item it;
    it.ids = tok.encode(p.clean);
    it.answer = encode(" " + p.answer).at(0);
    const size_t question = p.clean.rfind("Q:");
    const std::vector<int32_t> head = tok.encode(p.clean.substr(0, question));  // the prompt up to the question
    for (const std::string& c : p.colours) {
      std::string t = " " + c;
      t[1] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[1])));
      const int32_t title_id = encode(t).at(0), id = encode(" " + c).at(0);
      if (title_id == it.answer) continue;
      it.wrong_answers.push_back(title_id);
      for (int64_t k = static_cast<int64_t>(head.size()); k < static_cast<int64_t>(it.ids.size()); ++k)
        if (it.ids[static_cast<size_t>(k)] == id) it.wrong_keys.push_back(k);
    }
    if (it.wrong_keys.size() != 2) throw Error("Colored Objects: the question's incorrect colours were not found as two tokens in '" + p.clean + "'");
    items.push_back(std::move(it));
  }
  // Accuracy and mean logit difference with `heads` attending to the incorrect colours (none: unchanged). The
  // prompt runs without its last token first (into the KV cache), so only the final token's row is changed.
  auto evaluate = [&](const std::vector<std::pair<int, int>>& heads, double* ld_mean) {
    double correct = 0, ld = 0;
    for (const Item& it : items) {
      KvCache cache;
      const std::vector<int32_t> prefix(it.ids.begin(), it.ids.end() - 1);
      m.run(prefix, AttnRecord{}, true, nullptr, &cache);
      Hooks hooks;
      const int64_t T = static_cast<int64_t>(it.ids.size());
      for (auto [l, h] : heads)
        for (int64_t k = 0; k < T; ++k)
          if (std::find(it.wrong_keys.begin(), it.wrong_keys.end(), k) == it.wrong_keys.end()) hooks.kernel_edits(l).bias.emplace_back(h, k, o.bias);
      const at::Tensor logits = m.run({it.ids.back()}, AttnRecord{}, true, heads.empty() ? nullptr : &hooks, &cache).logits[0];
      const float a = logits[it.answer].item<float>();
      float best_wrong = -INFINITY;
      for (int32_t w : it.wrong_answers) best_wrong = std::max(best_wrong, logits[w].item<float>());
      correct += a > best_wrong, ld += a - best_wrong;
    }
    const double n = static_cast<double>(items.size());
    if (ld_mean) *ld_mean = ld / n;
    return correct / n;
  };
  RepairResult r;
  r.prompts = static_cast<int64_t>(items.size());
  const int64_t total = 2 + o.draws;
  r.before = evaluate({}, &r.ld_before);
  if (progress && !progress(1, total)) throw Cancelled();
  r.after = evaluate(o.heads, &r.ld_after);
  if (progress && !progress(2, total)) throw Cancelled();
  for (int d = 0; d < o.draws; ++d) {
    r.random_heads.push_back(random_heads(cfg, static_cast<int>(o.heads.size()), o.heads, o.seed + 1 + static_cast<uint64_t>(d)));
    r.random_after.push_back(evaluate(r.random_heads.back(), nullptr));
    if (progress && !progress(3 + d, total)) throw Cancelled();
  }
  return r;
}

}  // namespace headscope
