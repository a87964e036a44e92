// Head probes against answers known before they run: METRICS.md's exact fixture values on hand-built patterns
// (§4 induction family, §2a sink alpha), and the planted model (tests/planted_model.h), whose heads attend by
// construction: the previous-token head, the first-token (BOS) sink, the 0.5/0.5 pair head and the uniform head.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "analysis/head_detect.h"
#include "analysis/sink_levels.h"
#include "core/error.h"
#include "model/model.h"
#include "planted_model.h"
#include "probes/induction.h"
#include "probes/preplan.h"
#include "probes/score.h"
#include "probes/secondary_sinks.h"
#include "probes/sinks.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {

constexpr int kN = 50, kT = 2 * kN + 1;

// [BOS] + r + r with r = 1 .. n (distinct ids).
std::vector<int32_t> repeated_tokens() {
  std::vector<int32_t> t{0};
  for (int rep = 0; rep < 2; ++rep)
    for (int i = 1; i <= kN; ++i) t.push_back(i);
  return t;
}

// A pattern whose row i puts all its mass on key key_of(i).
template <class F>
at::Tensor one_hot_rows(F key_of) {
  at::Tensor A = at::zeros({kT, kT}, at::kFloat);
  for (int64_t i = 0; i < kT; ++i) A[i][key_of(i)] = 1.f;
  return A;
}

}  // namespace

TEST_CASE("induction-family scores reproduce METRICS.md's exact fixture values", "[probes][metrics]") {
  const auto tokens = repeated_tokens();
  const DetectOptions mul, mul_no_bos{true, false, false}, abs{false, false, true};
  // A perfect previous-token head (row 0 on itself): ARENA 1.0, TransformerLens mul 100/101.
  const at::Tensor prev = one_hot_rows([](int64_t i) { return i == 0 ? 0 : i - 1; });
  CHECK(stripe_mean(prev, 1, 1, 2 * kN) == 1.0);
  CHECK(std::fabs(detect_score(prev, tokens, DetectPattern::previous, mul) - 0.990099) < 1e-6);
  CHECK(detect_score(prev, tokens, DetectPattern::previous, mul) == 100.0 / 101.0);
  // abs: only row 0 differs from D (|1 - 0| once): 1 - round(1/101, 3) = 0.99.
  CHECK(std::fabs(detect_score(prev, tokens, DetectPattern::previous, abs) - 0.99) < 1e-12);
  // A duplicate-token head: second-half rows on i - n, first half on BOS: n / (2n + 1); excluding BOS, 1.
  const at::Tensor dup = one_hot_rows([](int64_t i) { return i > kN ? i - kN : 0; });
  CHECK(std::fabs(detect_score(dup, tokens, DetectPattern::duplicate, mul) - 0.495050) < 1e-6);
  CHECK(detect_score(dup, tokens, DetectPattern::duplicate, mul_no_bos) == 1.0);
  // A perfect induction stripe, the first-half rows (n - 1 and n among them) off it, on themselves: ARENA 50/52,
  // strict 1.0; TransformerLens induction n / (2n + 1).
  const at::Tensor ind = one_hot_rows([](int64_t i) { return i > kN ? i - kN + 1 : i; });
  CHECK(std::fabs(stripe_mean(ind, kN - 1, kN - 1, 2 * kN) - 0.961538) < 1e-6);
  CHECK(stripe_mean(ind, kN - 1, kN + 1, 2 * kN) == 1.0);
  CHECK(detect_score(ind, tokens, DetectPattern::induction, mul) == 50.0 / 101.0);
  // The detection patterns themselves, by hand on a short sequence with a repeat inside it: a b a b.
  const std::vector<int32_t> abab{7, 8, 7, 8};
  CHECK(at::equal(detection_pattern(DetectPattern::duplicate, abab),
                  at::tensor({0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0}, at::kFloat).view({4, 4})));
  CHECK(at::equal(detection_pattern(DetectPattern::induction, abab),
                  at::tensor({0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, at::kFloat).view({4, 4})));
}

TEST_CASE("sink alpha of a uniform causal head is H_T / T = 0.074123 at T = 64", "[probes][metrics]") {
  at::Tensor A = at::zeros({64, 64}, at::kFloat);
  for (int64_t t = 0; t < 64; ++t) A[t].narrow(0, 0, t + 1).fill_(1.f / static_cast<float>(t + 1));
  double harmonic = 0;
  for (int t = 1; t <= 64; ++t) harmonic += 1.0 / t;
  CHECK(std::fabs(sink_alpha(A, 0) - 0.074123) < 1e-6);
  CHECK(std::fabs(sink_alpha(A, 0) - harmonic / 64) < 1e-7);
}

TEST_CASE("repeated random tokens: [BOS] + r + r, seeded, no special ids", "[probes]") {
  auto m = Model::load(testutil::stories260k());
  const auto a = repeated_random_tokens(*m, 10, 50, 0), b = repeated_random_tokens(*m, 10, 50, 0), c = repeated_random_tokens(*m, 10, 50, 1);
  CHECK(a == b);
  CHECK(a != c);
  REQUIRE(a.size() == 10);
  std::set<int32_t> seen;
  for (const auto& s : a) {
    REQUIRE(s.size() == 101);
    CHECK(s[0] == m->tokenizer().bos_id());
    for (int i = 1; i <= 50; ++i) {
      CHECK(s[i] == s[i + 50]);
      CHECK_FALSE(m->tokenizer().is_special(s[i]));
      seen.insert(s[i]);
    }
  }
  CHECK(seen.size() > 300);  // 500 draws over 512 ids: spread over the vocabulary
}

TEST_CASE("the planted heads come out of the probes with the values their construction implies", "[probes][planted]") {
  testutil::TempDir d;
  auto m = Model::load(planted::write_model(d / "planted"));
  // Induction family on [BOS] + r + r with n = 30 (T = 61 fits the 72 positions): the previous-token head is
  // exactly that, in both layers; its TransformerLens score is 2n / (2n + 1).
  InductionOptions io;
  io.n = 30, io.rows = 4;
  const ProbeResult ind = induction_probe(*m, io);
  for (int l = 0; l < planted::kLayers; ++l) {
    CHECK(ind.scores.at("previous")[l][planted::kPrevHead].item<double>() == 1.0);
    CHECK(std::fabs(ind.scores.at("tl_previous")[l][planted::kPrevHead].item<double>() - 60.0 / 61.0) < 1e-6);
    CHECK(std::fabs(ind.scores.at("current")[l][planted::kPrevHead].item<double>() - 1.0 / 61.0) < 1e-6);
    for (int h = 0; h < planted::kHeads; ++h)
      if (h != planted::kPrevHead) CHECK(ind.scores.at("previous")[l][h].item<double>() < 0.5);
  }
  // Sink rate at T = 64: alpha_0 of the first-token head 1, of the pair head (5 + 0.5 * 59) / 64, of the
  // previous-token head 2 / 64, of the uniform head H_64 / 64; above eps = 0.3: the first two.
  std::vector<std::vector<int32_t>> items;
  for (const std::string text : {"Once upon a time there was a little cat who liked to play in the park all day",
                                 "The quick brown fox jumps over the lazy dog, and then it runs far away home."})
    items.push_back(m->tokenizer().encode(text, false));
  const ProbeResult sinks = sink_rate_probe(*m, items, SinkOptions{});
  double harmonic = 0;
  for (int t = 1; t <= 64; ++t) harmonic += 1.0 / t;
  for (int l = 0; l < planted::kLayers; ++l) {
    const at::Tensor alpha = sinks.scores.at("alpha")[l];
    CHECK(std::fabs(alpha[planted::kFirstHead].item<double>() - 1.0) < 1e-6);
    CHECK(std::fabs(alpha[planted::kPairHead].item<double>() - (5 + 0.5 * 59) / 64) < 1e-6);
    CHECK(std::fabs(alpha[planted::kPrevHead].item<double>() - 2.0 / 64) < 1e-6);
    CHECK(std::fabs(alpha[planted::kUniformHead].item<double>() - harmonic / 64) < 1e-6);
    CHECK(sinks.scores.at("sink_rate")[l][planted::kFirstHead].item<double>() == 1.0);
    CHECK(sinks.scores.at("sink_rate")[l][planted::kUniformHead].item<double>() == 0.0);
  }
  CHECK(sinks.summary["sink_rate_percent"].get<double>() == 50.0);
  // Bad input: items shorter than T are refused, naming the item.
  try {
    sink_rate_probe(*m, {items[0], m->tokenizer().encode("short", false)}, SinkOptions{});
    FAIL("a short item was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "item 2 has 5 tokens; the sink rate needs T = 64 (give longer prompts or a smaller T)");
  }
}

TEST_CASE("headscope score ranks heads per probe, and refuses bad probe input in one line", "[probes][cli]") {
  testutil::TempDir d;
  const std::string model = testutil::shell_quote(planted::write_model(d / "planted"));
  auto r = testutil::run_cli("score " + model + " --probe induction --repeat-len 30 --rows 2 --top 2 --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["probes"].size() == 1);
  CHECK(j["probes"][0]["scores"]["previous"][0][planted::kPrevHead] == 1.0);
  CHECK(j["probes"][0]["params"]["seq_len"] == 61);
  r = testutil::run_cli("score " + model + " --probe induction --repeat-len 30 --rows 2 --top 2");
  REQUIRE(r.code == 0);
  CHECK(r.out.rfind("induction: {", 0) == 0);  // the probe's summary, then its heads ranked by induction score
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 4);  // summary, header, two heads
  // preplan on the model's own continuation: one entry per token, WAAD only on response rows.
  r = testutil::run_cli("score " + model + " --probe preplan --prompt abcdefghijklmnopqrst --response 20 --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto pj = nlohmann::json::parse(r.out)["probes"][0];
  CHECK(pj["items"][0]["meta"]["response_start"] == 20);
  const auto& toks = pj["items"][0]["tokens"];
  REQUIRE(toks.size() == 40);
  CHECK(toks[19]["waad"].is_null());
  CHECK(toks[25]["waad"] == 1.0);  // the planted previous-token heads are the local ones
  std::ofstream(d / "short.txt") << "Once upon a time there was a little cat who liked to play in the park all day long\nHi\n";
  const std::pair<std::string, std::string> cases[] = {
      {"score " + model + " --probe inductoin", "headscope: error: unknown probe 'inductoin' (known: induction, sinks, preplan, secondary, retrieval)\n"},
      {"score " + model + " --probe preplan", "headscope: error: the preplan probe needs --prompt TEXT or --prompts FILE (the model "
                                              "continues each with --response N tokens)\n"},
      {"score " + model + " --probe sinks", "headscope: error: the sinks probe on text needs --data FILE (prompts of at least "
                                            "--sink-tokens tokens), or --sink-input random|repeated\n"},
      {"score " + model + " --probe sinks --data " + (d / "short.txt"),
       "headscope: error: item 2 has 2 tokens; the sink rate needs T = 64 (give longer prompts or a smaller T)\n"},
      {"score " + model + " --probe induction", "headscope: error: the induction probe's sequences of 2n + 1 = 101 tokens exceed "
                                                "this model's context of 72\n"},
      {"score " + model + " --probe sinks --sink-input noise", "headscope: error: --sink-input must be text, random or repeated, not 'noise'\n"},
  };
  for (const auto& [args, expect] : cases) {
    r = testutil::run_cli(args);
    INFO(args);
    CHECK(r.code == 1);
    CHECK(r.err == expect);
    CHECK(r.out.empty());
  }
}

TEST_CASE("preplan and anchor tokens: METRICS.md §3's fixture on the planted heads", "[probes][planted][preplan]") {
  testutil::TempDir d;
  auto m = Model::load(planted::write_model(d / "planted"));
  const auto tokens = m->tokenizer().encode("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN", false);  // 40 tokens
  REQUIRE(tokens.size() == 40);
  // By span: the local heads are the previous-token heads (d = 1), the global ones the first-token heads
  // (d = mean t = 29.5 over the response rows 20..39).
  const ProbeResult r = preplan_probe(*m, tokens, 20, PreplanOptions{});
  for (int l = 0; l < planted::kLayers; ++l) {
    CHECK(r.scores.at("span")[l][planted::kPrevHead].item<double>() == 1.0);
    CHECK(std::fabs(r.scores.at("span")[l][planted::kFirstHead].item<double>() - 29.5) < 1e-5);
    CHECK(r.scores.at("local")[l][planted::kPrevHead].item<double>() == 1.0);
    CHECK(r.scores.at("global")[l][planted::kFirstHead].item<double>() == 1.0);
  }
  const at::Tensor waad = r.items[0].tokens.at("waad"), fai = r.items[0].tokens.at("fai"), anchor = r.items[0].tokens.at("anchor");
  CHECK(std::isnan(waad[19].item<double>()));  // prompt rows have no WAAD
  for (int t = 20; t < 40; ++t) CHECK(waad[t].item<double>() == 1.0);  // head on t - 1: WAAD = 1
  CHECK(fai[0].item<double>() == 1.0);  // the global heads put everything on token 0
  for (int s = 1; s < 30; ++s) CHECK(fai[s].item<double>() == 0.0);
  for (int s = 30; s < 40; ++s) CHECK(std::isnan(fai[s].item<double>()));  // T(s) empty: s + 10 > 39
  CHECK(anchor[0].item<double>() == 1.0);
  CHECK(anchor.narrow(0, 0, 30).sum().item<double>() == 12.0);  // 40 % of the 30 defined FAI values
  // Chosen sets: the first-token heads as local heads give WAAD = min(t, 10); the pair heads as global heads put
  // 0.5 on s* = 5 from every later row, so FAI_5 = 0.5.
  PreplanOptions o;
  for (int l = 0; l < planted::kLayers; ++l)
    o.local_heads.emplace_back(l, planted::kFirstHead), o.global_heads.emplace_back(l, planted::kPairHead);
  const ProbeResult c = preplan_probe(*m, tokens, 20, o);
  for (int t = 20; t < 40; ++t) CHECK(c.items[0].tokens.at("waad")[t].item<double>() == 10.0);
  CHECK(std::fabs(c.items[0].tokens.at("fai")[planted::kStar].item<double>() - 0.5) < 1e-6);
  CHECK(c.items[0].tokens.at("anchor")[planted::kStar].item<double>() == 1.0);
  CHECK_THROWS_AS(preplan_probe(*m, tokens, 40, PreplanOptions{}), Error);
}

TEST_CASE("the induction probe refuses a model without a BOS token in one line", "[probes][cli]") {
  testutil::TempDir d;
  const std::string dir = planted::write_model(d / "planted");
  nlohmann::json cfg = testutil::load_json(dir + "/config.json");
  cfg.erase("bos_token_id");
  std::ofstream(dir + "/config.json") << cfg.dump();
  auto r = testutil::run_cli("score " + testutil::shell_quote(dir) + " --probe induction --repeat-len 30");
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: the induction probe needs a BOS token ([BOS] + r + r), and this model has none\n");
  CHECK(r.out.empty());
}

TEST_CASE("primary and secondary sinks: METRICS.md §2b's synthetic residual fixture", "[probes][metrics][sinks]") {
  // 16 layers, 6 tokens, d = 8. Token 0 (BOS) along e0 with norm 1, jumping to 10 at layer 3 and dropping to 2 at
  // layer 10: the scan window is [3, 10). Token 2 has cos 0.95 with BOS on layers 5-9, token 4 cos -0.95 there,
  // token 3 cos 0.85 everywhere; tokens 1 and 5 are orthogonal.
  const int64_t L = 16, N = 6, D = 8;
  at::Tensor h = at::zeros({L, N, D}, at::kDouble);
  const double s95 = std::sqrt(1 - 0.95 * 0.95), s85 = std::sqrt(1 - 0.85 * 0.85);
  for (int64_t l = 0; l < L; ++l) {
    h[l][0][0] = l < 3 ? 1.0 : l < 10 ? 10.0 : 2.0;
    h[l][1][1] = 1.0, h[l][5][5] = 3.0;
    const bool planted = l >= 5 && l <= 9;
    h[l][2][0] = planted ? 0.95 : 0.0, h[l][2][2] = planted ? s95 : 1.0;
    h[l][4][0] = planted ? -0.95 : 0.0, h[l][4][4] = planted ? s95 : 1.0;
    h[l][3][0] = 0.85, h[l][3][3] = s85;
  }
  const SinkAnalysis a = analyze_sinks(h, {0, 1});
  CHECK(a.anchor == 0);
  CHECK(a.l_s == 3);
  CHECK(a.l_e == 10);
  REQUIRE(a.tokens.size() == 2);  // token 3 (cos 0.85) is never flagged
  for (const SinkToken& t : a.tokens) {
    CHECK((t.position == 2 || t.position == 4));  // cos -0.95 counts: the absolute value
    CHECK(t.l_start == 5);
    CHECK(t.lifetime == 5);
    CHECK(t.kind == "secondary");  // 16 layers: primary >= 0.55 L = 8.8, secondary > 0.1 L = 1.6
  }
  REQUIRE(a.levels.size() == 1);
  CHECK(a.levels[0].first == std::make_pair(int64_t(5), int64_t(5)));
  CHECK(a.levels[0].second == 2);
}

TEST_CASE("the secondary-sink probe runs prompt + own continuation through the residual analysis", "[probes][planted][sinks]") {
  // The planted residual stream is the one-hot position vector at every layer: every token is orthogonal to the
  // anchor, so nothing is flagged, and the anchor's norm never changes.
  testutil::TempDir d;
  auto m = Model::load(planted::write_model(d / "planted"));
  const std::vector<int32_t> prompt = m->tokenizer().encode("abcdefghij", false);
  std::vector<int32_t> tokens = prompt;
  for (int32_t id : m->generate(prompt, 10).tokens) tokens.push_back(id);
  const ProbeResult r = secondary_sink_probe(*m, tokens, 10, SecondarySinkOptions{});
  CHECK(r.item_tokens.at(0).size() == 20);
  CHECK(r.summary["anchors"] == nlohmann::json::array({0}));
  CHECK(r.summary["primary"] == 0);
  CHECK(r.summary["secondary"] == 0);
  // The largest |cos| is in the last layer, after the final LayerNorm: centring makes two one-hot positions'
  // cosine exactly -1 / (D - 1).
  CHECK(std::fabs(r.summary["max_abs_cos"]["value"].get<double>() - 1.0 / static_cast<double>(m->config().d_model - 1)) < 1e-6);
  CHECK(r.summary["max_abs_cos"]["layer"] == planted::kLayers - 1);
  // Heads' mass on the anchor: the first-token head puts all of it there, the previous-token head only row 1's.
  CHECK(std::fabs(r.scores.at("anchor_mass")[0][planted::kFirstHead].item<double>() - 1.0) < 1e-6);
  CHECK(std::fabs(r.scores.at("anchor_mass")[0][planted::kPrevHead].item<double>() - 1.0 / 19) < 1e-6);
  CHECK(std::isnan(r.items[0].tokens.at("kind")[5].item<double>()));
}

TEST_CASE("the induction probe refuses sequences past the model's context (SmolLM2)", "[probes][cli]") {
  const std::string smol = testutil::smollm2();
  if (smol.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  auto r = testutil::run_cli("score " + testutil::shell_quote(smol) + " --probe induction --repeat-len 5000");
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: the induction probe's sequences of 2n + 1 = 10001 tokens exceed this model's context of 8192\n");
}

TEST_CASE("score into a run file: stopped mid-way, resumed, the same results as in memory, and inspect shows them", "[probes][store]") {
  testutil::TempDir d;
  const std::string dir = planted::write_model(d / "planted");
  auto m = Model::load(dir);
  InductionOptions io;
  io.n = 30, io.rows = 3;
  SinkOptions so;
  so.input = "random";
  const InductionProbe ind(io);
  const SinkRateProbe sinks(id_items(sink_random_items(*m, 4, 64, false, 7), "random"), so);
  const PreplanProbe pre(prompt_items(*m, {{"abcdefghij", nullptr}, {"klmnopqrst", nullptr}}, 20), PreplanOptions{});
  const SecondarySinkProbe sec(prompt_items(*m, {{"abcdefghij", nullptr}}, 20), SecondarySinkOptions{});
  const std::vector<const Probe*> probes{&ind, &sinks, &pre, &sec};
  const std::vector<ProbeResult> memory = score_probes(*m, probes, ScoreOptions{});

  ScoreOptions o;
  o.output = d / "run.h5", o.model_path = dir;
  int64_t seen = 0;
  CHECK_THROWS_AS(score_probes(*m, probes, o, [&](const ScoreProgress& p) { return p.phase == "continuations" || ++seen < 5; }), Cancelled);
  {
    RunReader part(o.output);
    CHECK(part.status() == "recording");
    CHECK(part.n_recorded() >= 3);
    CHECK(part.n_recorded() < part.n_items());
  }
  o.open = RunOpen::resume;
  int64_t continuations = 0, resumed_kept = -1;
  const std::vector<ProbeResult> resumed = score_probes(*m, probes, o, [&](const ScoreProgress& p) {
    if (p.phase == "continuations") ++continuations;
    if (p.resumed) resumed_kept = p.kept;
    return true;
  });
  CHECK(continuations == 0);  // read back from the file, not decoded again
  CHECK(resumed_kept >= 3);
  RunReader r(o.output);
  CHECK(r.status() == "complete");
  CHECK(r.probe_names() == std::vector<std::string>{"induction", "preplan", "secondary", "sinks"});
  for (size_t k = 0; k < probes.size(); ++k) {
    const ProbeResult stored = r.probe(probes[k]->name());
    INFO(probes[k]->name());
    CHECK(stored.summary == memory[k].summary);
    CHECK(stored.rank_by == memory[k].rank_by);
    REQUIRE(stored.scores.size() == memory[k].scores.size());
    for (auto& [name, t] : memory[k].scores) {
      CHECK(at::equal(stored.scores.at(name), t));
      CHECK(at::equal(resumed[k].scores.at(name), t));
    }
    REQUIRE(stored.items.size() == memory[k].items.size());
    for (size_t i = 0; i < stored.items.size(); ++i) {
      CHECK(stored.item_tokens[i] == memory[k].item_tokens[i]);
      for (auto& [name, t] : memory[k].items[i].tokens) CHECK(at::allclose(stored.items[i].tokens.at(name), t, 0, 0, /*equal_nan=*/true));
      for (auto& [name, x] : memory[k].items[i].scalars) CHECK(stored.items[i].scalars.at(name) == x);
    }
  }
  auto cli = testutil::run_cli("inspect " + testutil::shell_quote(o.output) + " --json");
  REQUIRE(cli.code == 0);
  const auto j = nlohmann::json::parse(cli.out);
  REQUIRE(j["probes"].size() == 4);
  CHECK(j["probes"][0]["probe"] == "induction");
  CHECK(j["probes"][0]["scores"]["previous"][0][planted::kPrevHead] == 1.0);
  // The same job again: complete, nothing to do; other parameters: refused, the file kept.
  const InductionProbe other(InductionOptions{3, 30, 1, false, false});
  try {
    score_probes(*m, {&other, &sinks, &pre, &sec}, o);
    FAIL("other parameters were accepted");
  } catch (const ChoiceError& e) {
    CHECK(std::string(e.what()).find("was started with other settings") != std::string::npos);
  }
  CHECK(RunReader(o.output).status() == "complete");
}

TEST_CASE("the planted induction circuit: induction, duplicate-token and previous-token heads ranked first", "[probes][planted]") {
  namespace I = planted::induction;
  testutil::TempDir d;
  auto m = Model::load(planted::write_induction_model(d / "induction"));
  InductionOptions o;
  o.n = 30, o.rows = 4, o.seed = 3;
  const ProbeResult r = induction_probe(*m, o);
  // What the construction implies, from the tokens alone: the duplicate head spreads a row over its earlier equal
  // tokens (itself when there is none); the induction head over the keys whose previous token is the row's token
  // (all of 0..t when there is none).
  const auto data = repeated_random_tokens(*m, o.rows, o.n, o.seed);
  const int64_t n = o.n, T = 2 * n + 1;
  double dup = 0, ind_tl = 0, stripe = 0, strict = 0;
  for (const auto& tok : data) {
    for (int64_t i = 0; i < T; ++i) {
      std::vector<int64_t> same, after;
      for (int64_t j = 0; j < i; ++j) same.push_back(tok[j] == tok[i] ? j : -1);
      for (int64_t j = 1; j <= i; ++j)
        if (tok[j - 1] == tok[i]) after.push_back(j);
      same.erase(std::remove(same.begin(), same.end(), -1), same.end());
      dup += same.empty() ? 0.0 : 1.0;       // TransformerLens mul: the row's mass on D_dup, over T rows
      ind_tl += after.empty() ? 0.0 : 1.0;
      const int64_t key = i - n + 1;       // the ARENA stripe's key
      const bool hit = std::find(after.begin(), after.end(), key) != after.end();
      const double a = after.empty() ? 1.0 / static_cast<double>(i + 1) : hit ? 1.0 / static_cast<double>(after.size()) : 0.0;
      if (i >= n - 1) stripe += a / static_cast<double>(n + 2);
      if (i >= n + 1) strict += a / static_cast<double>(n);
    }
  }
  const double rows = static_cast<double>(o.rows) * static_cast<double>(T);
  CHECK(std::fabs(r.scores.at("tl_duplicate")[0][I::kDupHead].item<double>() - dup / rows) < 1e-6);
  CHECK(std::fabs(r.scores.at("tl_induction")[1][I::kInductionHead].item<double>() - ind_tl / rows) < 1e-6);
  CHECK(std::fabs(r.scores.at("induction")[1][I::kInductionHead].item<double>() - stripe / o.rows) < 1e-5);
  CHECK(std::fabs(r.scores.at("induction_strict")[1][I::kInductionHead].item<double>() - strict / o.rows) < 1e-5);
  for (int l = 0; l < I::kLayers; ++l) CHECK(r.scores.at("previous")[l][I::kPrevHead].item<double>() == 1.0);
  // Each mechanism's head is the first in its own ranking, well ahead of the rest.
  auto top = [&](const char* score) {
    const at::Tensor s = r.scores.at(score).flatten();
    const int64_t best = s.argmax().item<int64_t>();
    const double second = std::get<0>(s.topk(2))[1].item<double>();
    return std::make_tuple(best / I::kHeads, best % I::kHeads, s[best].item<double>() - second);
  };
  auto [il, ih, igap] = top("induction");
  CHECK(il == 1);
  CHECK(ih == I::kInductionHead);
  CHECK(igap > 0.5);
  auto [dl, dh, dgap] = top("tl_duplicate");
  CHECK(dl == 0);
  CHECK(dh == I::kDupHead);
  CHECK(dgap > 0.3);
  INFO("rows with an earlier duplicate: " << dup << " of " << rows << "; induction stripe " << stripe / o.rows);
  CHECK(dup / rows > 0.45);  // the second half repeats the first
}

TEST_CASE("planted primary, secondary and noise sinks come out with their l_start, lifetime and level", "[probes][planted][sinks]") {
  testutil::TempDir d;
  auto m = Model::load(planted::write_sink_model(d / "sinks"));
  std::vector<int32_t> tokens{127};
  for (int32_t id : m->tokenizer().encode("ab@cd#efg!hij#kl", false)) tokens.push_back(id);  // '@' 3, '#' 6 and 14, '!' 10
  const ProbeResult r = secondary_sink_probe(*m, tokens, 8, SecondarySinkOptions{});
  CHECK(r.summary["anchors"] == nlohmann::json::array({0}));
  CHECK(r.summary["windows"] == nlohmann::json::array({nlohmann::json::array({2, 9})}));
  CHECK(r.summary["primary_min_lifetime"] == 5.5);
  CHECK(r.summary["primary"] == 1);
  CHECK(r.summary["secondary"] == 2);
  CHECK(r.summary["noise"] == 1);
  CHECK(r.summary["levels"] == nlohmann::json::parse(R"([{"l_start": 4, "lifetime": 3, "tokens": 2}])"));
  const auto& tok = r.items.at(0).tokens;
  auto at = [&](const char* k, int64_t j) { return tok.at(k)[j].item<double>(); };
  const std::tuple<int64_t, double, double, double> expect[] = {{3, 2, 7, 1}, {6, 4, 3, 2}, {14, 4, 3, 2}, {10, 5, 1, 3}};
  for (auto [j, l_start, lifetime, kind] : expect) {
    INFO("token " << j);
    CHECK(at("l_start", j) == l_start);
    CHECK(at("lifetime", j) == lifetime);
    CHECK(at("kind", j) == kind);
  }
  // '@' gets its S from the same block as the anchor: their MLP outputs there are parallel.
  CHECK(std::fabs(at("mlp_alignment", 3) - 1.0) < 1e-6);
  for (int64_t j : {1, 2, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16}) CHECK(std::isnan(at("kind", j)));
}
