// Retrieval heads (METRICS.md §1): the copy score on the reference's fixture, ROUGE-1 recall against the rouge-score
// package, needle-in-a-haystack items, and the whole probe on a planted copier model.
#include <ATen/ATen.h>

#include <cmath>
#include <fstream>

#include "analysis/porter_stemmer.h"
#include "analysis/retrieval.h"
#include "core/error.h"
#include "datasets/niah.h"
#include "model/model.h"
#include "planted_model.h"
#include "probes/niah_eval.h"
#include "probes/retrieval.h"
#include "probes/score.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

TEST_CASE("retrieval copy score: METRICS.md §1's fixture (1.0, every other token 0.5, BOS 0)", "[retrieval][metrics]") {
  // A prompt whose needle sits at [4, 10); the model emits the six needle tokens and then two others.
  const std::vector<int32_t> prompt{1, 50, 51, 52, 20, 21, 22, 23, 24, 25, 53, 54};
  const std::vector<int32_t> emitted{20, 21, 22, 23, 24, 25, 60, 61};
  const auto span = locate_needle(prompt, {20, 21, 22, 23, 24, 25});
  REQUIRE(span == std::make_pair<int64_t, int64_t>(4, 10));
  // Heads: 0 on the token it emits, 1 the same on every other step (else BOS), 2 always on BOS, 3 on the right
  // position but one step late (the token does not match).
  at::Tensor argmax = at::zeros({8, 1, 4}, at::kInt);
  for (int64_t n = 0; n < 8; ++n) {
    const int32_t at_needle = n < 6 ? static_cast<int32_t>(4 + n) : 11;
    argmax[n][0][0] = at_needle;
    argmax[n][0][1] = n % 2 == 0 ? at_needle : 0;
    argmax[n][0][3] = n >= 1 && n < 7 ? static_cast<int32_t>(4 + n - 1) : 0;
  }
  const at::Tensor r = retrieval_copy_scores(argmax, emitted, prompt, span, false);
  CHECK(r[0][0].item<double>() == 1.0);
  CHECK(r[0][1].item<double>() == 0.5);
  CHECK(r[0][2].item<double>() == 0.0);
  CHECK(r[0][3].item<double>() == 0.0);
  // "set" mode counts distinct copied tokens over the needle's token set; a repeated copy counts once there, twice
  // in "step" mode (which can pass 1).
  at::Tensor twice = argmax.clone();
  twice[6][0][0] = 9, twice[7][0][0] = 9;
  const std::vector<int32_t> again{20, 21, 22, 23, 24, 25, 25, 25};
  CHECK(retrieval_copy_scores(twice, again, prompt, span, false)[0][0].item<double>() == 8.0 / 6.0);
  CHECK(retrieval_copy_scores(twice, again, prompt, span, true)[0][0].item<double>() == 1.0);
  // A needle covered to > 90 % of its token set is found; one missing a token of ten is not (0.9 is not > 0.9).
  const std::vector<int32_t> ten{30, 31, 32, 33, 34, 35, 36, 37, 38, 39};
  std::vector<int32_t> p2{1, 2, 30, 31, 32, 33, 34, 35, 36, 37, 38, 99, 3};
  CHECK(locate_needle(p2, ten).first == -1);
  p2[11] = 39;
  CHECK(locate_needle(p2, ten) == std::make_pair<int64_t, int64_t>(2, 12));
}

TEST_CASE("ROUGE-1 recall equals the rouge-score package's on every reference pair", "[retrieval][reference]") {
  std::ifstream in(testutil::data("rouge/rouge1_recall.json"));
  REQUIRE(in);
  const auto j = nlohmann::json::parse(in);
  REQUIRE(j["pairs"].size() >= 19);
  for (const auto& p : j["pairs"]) {
    INFO(p["reference"].get<std::string>() << " | " << p["prediction"].get<std::string>());
    CHECK(std::fabs(rouge1_recall(p["reference"], p["prediction"]) - p["recall"].get<double>()) < 1e-12);
  }
}

TEST_CASE("needle items: the reference's grids, the needle after the nearest sentence end, budgets checked", "[retrieval][datasets]") {
  CHECK(linspace_round(0, 100, 10) == std::vector<int64_t>{0, 11, 22, 33, 44, 56, 67, 78, 89, 100});
  CHECK(linspace_round(1000, 50000, 20).at(1) == 3579);  // numpy: round(1000 + 49000 / 19) = 3579
  // One token per character.
  NiahTokenizer tok{[](const std::string& s) {
                      std::vector<int32_t> ids;
                      for (unsigned char c : s) ids.push_back(c);
                      return ids;
                    },
                    [](const std::vector<int32_t>& ids) {
                      std::string s;
                      for (int32_t id : ids) s += static_cast<char>(id);
                      return s;
                    },
                    [](int32_t id) { return std::string(1, static_cast<char>(id)); }};
  const std::string hay = "aaaa. bbbb. cccc. dddd. eeee. ffff. gggg. hhhh. ";
  const Needle n{"NEEDLE.", "What?", "NEEDLE"};
  // length 40 - reserve 10 - 7 needle tokens = 23 haystack tokens; 50 % of 23 = 11, back to just after "bbbb.".
  NiahItem it = make_niah_item(hay, n, 40, 50, "plain", tok, 10);
  CHECK(it.haystack_tokens == 23);
  CHECK(it.insertion == 11);
  CHECK(it.prompt == "aaaa. bbbb.NEEDLE. cccc. dddd.Based on the content of the book, Question: What?\nAnswer:");
  CHECK(make_niah_item(hay, n, 40, 0, "plain", tok, 10).insertion == 0);
  CHECK(make_niah_item(hay, n, 40, 100, "plain", tok, 10).prompt.rfind("aaaa. bbbb. cccc. dddd.NEEDLE.Based", 0) == 0);
  CHECK(make_niah_item(hay, n, 40, 50, "chatml", tok, 10).prompt.rfind("<|im_start|>user\n<book>aaaa.", 0) == 0);
  CHECK(chat_format_of("{% for m in messages %}<|im_start|>{{ m.role }}") == "chatml");
  try {
    make_niah_item(hay, n, 100, 50, "plain", tok, 10);
    FAIL("a haystack too short was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "the haystack has 48 tokens; a context of 100 tokens needs 83 (give a longer --haystack or shorter --lengths)");
  }
  CHECK(generated_needles(3, 7).size() == 3);
  CHECK(generated_needles(3, 7)[1].needle == generated_needles(3, 7)[1].needle);
}

TEST_CASE("the retrieval probe on a planted copier: copy head R = 1, every other token 0.5, BOS head 0, failed items dropped",
          "[retrieval][planted]") {
  namespace C = planted::copy;
  testutil::TempDir d;
  auto m = Model::load(planted::write_copy_model(d / "copy"));
  auto item = [&](const std::string& prompt) {
    ProbeItem it;
    it.tokens = m->tokenizer().encode(prompt, false);
    it.text = prompt;
    it.meta = {{"answer", "QZ7W3X"}};
    return it;
  };
  RetrievalOptions o;
  o.max_new = 12;
  o.given_items = {item("ab cd. #QZ7W3X\nef gh. #")};
  const ProbeResult one = run_probe(*m, RetrievalProbe(o));
  REQUIRE(one.items.size() == 1);
  const std::string answer = m->tokenizer().decode(std::vector<int32_t>(one.item_tokens[0].begin() + one.item_meta[0]["response_start"].get<int64_t>(),
                                                                         one.item_tokens[0].end()));
  CHECK(answer == "QZ7W3X\n");  // copied, and stopped after the newline
  CHECK(one.items[0].scalars.at("rouge1") == 100.0);
  CHECK(one.scores.at("retrieval")[1][C::kCopyHead].item<double>() == 1.0);
  CHECK(one.scores.at("retrieval")[1][C::kHalfHead].item<double>() == 0.5);
  CHECK(one.scores.at("retrieval")[1][C::kBosHead].item<double>() == 0.0);
  CHECK(one.scores.at("retrieval").sum().item<double>() == 1.5);  // nobody else copies
  CHECK(one.scores.at("activation")[1][C::kCopyHead].item<double>() == 1.0);
  // The same item beside one whose prompt does not ask for the needle: that item fails ROUGE and is dropped.
  o.given_items.push_back(item("ab cd. #QZ7W3X\nef gh. a"));
  const ProbeResult two = run_probe(*m, RetrievalProbe(o));
  CHECK(two.items[1].scalars.at("kept") == 0.0);
  CHECK(two.summary["kept"] == 1);
  CHECK(at::equal(two.scores.at("retrieval"), one.scores.at("retrieval")));
}

TEST_CASE("the Porter stemmer gives NLTK's stem for every word of the public-domain corpus", "[retrieval][reference]") {
  std::ifstream in(testutil::data("rouge/porter_nltk.json"));
  REQUIRE(in);
  const auto table = nlohmann::json::parse(in);
  REQUIRE(table.size() > 4000);
  int64_t wrong = 0;
  for (auto& [word, stem] : table.items())
    if (porter_stem(word) != stem.get<std::string>()) {
      if (++wrong <= 10) UNSCOPED_INFO(word << ": " << porter_stem(word) << ", NLTK " << stem.get<std::string>());
    }
  CHECK(wrong == 0);
}

TEST_CASE("NIAH with heads changed on decode steps: masking the copy head or cutting its cache breaks the copy", "[retrieval][planted]") {
  namespace C = planted::copy;
  testutil::TempDir d;
  auto m = Model::load(planted::write_copy_model(d / "copy"));
  ProbeItem it;
  it.tokens = m->tokenizer().encode("ab cd. #QZ7W3X\nef gh. #", false);  // 23 tokens; the needle at 8..13
  it.meta = {{"answer", "QZ7W3X"}};
  NiahEvalOptions o;
  o.grid.given_items = {it};
  o.grid.max_new = 12;
  auto score = [&](const std::string& change, std::vector<std::pair<int, int>> heads, int64_t window) {
    NiahEvalOptions c = o;
    c.label = "t", c.change = change, c.heads = std::move(heads), c.window = window, c.sink = 1;
    return run_probe(*m, NiahEvalProbe(c)).items.at(0).scalars;
  };
  CHECK(score("none", {}, 0).at("rouge1") == 100.0);
  CHECK(score("uniform", {{1, C::kCopyHead}}, 0).at("rouge1") == 0.0);  // the copier's attention spread: nothing copied
  CHECK(score("uniform", {{1, C::kBosHead}}, 0).at("rouge1") == 100.0);  // another head: no harm
  // A budget of key 0 and the last 2 keys hides the needle from the copy head; a window of 30 keeps it.
  const auto cut = score("kv_window", {{1, C::kCopyHead}}, 2), kept = score("kv_window", {{1, C::kCopyHead}}, 30);
  CHECK(cut.at("rouge1") == 0.0);
  CHECK(kept.at("rouge1") == 100.0);
  // KV kept: 7 of 8 heads (no GQA here) hold all T tokens, the budgeted one 1 + 2; T = 23 + the tokens generated.
  const double T = 23 + cut.at("generated");
  CHECK(std::fabs(cut.at("kv_fraction") - (7 * T + 3) / (8 * T)) < 1e-12);
}

TEST_CASE("experiment conditions: top-K by score, random heads outside the top, kept fractions of a ranking", "[retrieval]") {
  testutil::TempDir d;
  auto m = Model::load(planted::write_copy_model(d / "copy"));
  at::Tensor score = at::zeros({2, 4}, at::kDouble);
  score[1][1] = 1.0, score[1][3] = 0.5, score[0][0] = 0.25;
  const auto masking = masking_conditions(m->config(), RetrievalOptions{}, score, 2, 3, 11);
  REQUIRE(masking.size() == 5);
  CHECK(masking[0].label == "niah/none");
  CHECK(masking[1].label == "niah/top2");
  CHECK(masking[1].heads == std::vector<std::pair<int, int>>{{1, 1}, {1, 3}});
  for (int k = 2; k < 5; ++k) {
    CHECK(masking[k].heads.size() == 2);
    // 8 heads, 2 masked: the top 6 are excluded, so the draws come from the last two of the ranking.
    for (auto h : masking[k].heads) CHECK((h == std::pair<int, int>{1, 0} || h == std::pair<int, int>{1, 2}));
  }
  const auto kv = kv_budget_conditions(m->config(), RetrievalOptions{}, {{"retrieval", score}, {"random", at::Tensor()}}, {0.25, 1.0}, 4, 64, 5);
  REQUIRE(kv.size() == 5);
  CHECK(kv[1].label == "kv/retrieval/0.25");
  CHECK(kv[1].heads.size() == 6);  // ceil(0.25 x 8) = 2 heads keep their cache: (1, 1) and (1, 3)
  CHECK(std::find(kv[1].heads.begin(), kv[1].heads.end(), std::pair<int, int>{1, 1}) == kv[1].heads.end());
  CHECK(kv[2].heads.empty());  // keep 1.0: nothing budgeted
  CHECK(kv[3].label == "kv/random/0.25");
  CHECK(kv[3].heads.size() == 6);
}

TEST_CASE("score --probe retrieval refuses bad haystacks, needles past the budget and lengths past the context in one line",
          "[retrieval][cli]") {
  testutil::TempDir d;
  const std::string model = testutil::shell_quote(planted::write_copy_model(d / "copy"));
  std::ofstream(d / "bad.txt", std::ios::binary) << "Once upon a time \xff\xfe there was";
  std::ofstream(d / "empty.txt") << "  \n";
  std::ofstream(d / "ok.txt") << "The cat sat. The dog ran. ";
  const std::pair<std::string, std::string> cases[] = {
      {"--haystack " + (d / "bad.txt") + " --lengths 50",
       "headscope: error: " + (d / "bad.txt") + ": the haystack is not valid UTF-8 (byte 17); give a UTF-8 text file\n"},
      {"--haystack " + (d / "empty.txt"), "headscope: error: " + (d / "empty.txt") + ": the haystack is empty\n"},
      {"--haystack " + (d / "nowhere.txt"), "headscope: error: " + (d / "nowhere.txt") + ": cannot read the haystack (give a text file)\n"},
      {"--haystack " + (d / "ok.txt") + " --lengths 100",
       "headscope: error: a context length of 100 tokens is beyond this model's context of 72 tokens (give --lengths up to 72)\n"},
      {"--haystack " + (d / "ok.txt") + " --lengths 72",
       "headscope: error: a context of 72 tokens leaves no room for a haystack (200 reserved for the question and answer, 174 for "
       "the needle)\n"},
      {"--haystack " + (d / "ok.txt") + " --retrieval-mode sets", "headscope: error: --retrieval-mode must be step or set, not 'sets'\n"},
  };
  for (const auto& [args, expect] : cases) {
    const auto r = testutil::run_cli("score " + model + " --probe retrieval " + args);
    INFO(args);
    CHECK(r.code == 1);
    CHECK(r.err == expect);
    CHECK(r.out.empty());
  }
}

TEST_CASE("headscope experiment retrieval-masking and kv-budget run end to end from a retrieval run file (stories260K)",
          "[retrieval][cli]") {
  testutil::TempDir d;
  const std::string model = testutil::shell_quote(testutil::unpacked("models/stories260K/stories260K.gguf"));
  const std::string grid = " --lengths 400 --depths 50 --max-new 8";
  auto r = testutil::run_cli("score " + model + " --probe retrieval,induction --repeat-len 20 --rows 2" + grid + " -o " + (d / "ret.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  r = testutil::run_cli("experiment retrieval-masking " + model + " --scores " + (d / "ret.h5") + " --top 3 --draws 2" + grid +
                        " -o " + (d / "mask.h5") + " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["conditions"].size() == 4);  // none, top3, two random draws
  CHECK(j["conditions"][1]["condition"] == "niah/top3");
  CHECK(j["conditions"][1]["params"]["heads"].size() == 3);
  CHECK(j["conditions"][1]["params"]["change"] == "uniform");
  // Rankings by the retrieval score, at random, and by another probe's score from the same run file.
  r = testutil::run_cli("experiment kv-budget " + model + " --scores " + (d / "ret.h5") + " --rank retrieval,random,induction/induction "
                        "--keep 0.25 --window 16" + grid + " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  j = nlohmann::json::parse(r.out);
  REQUIRE(j["conditions"].size() == 4);
  CHECK(j["conditions"][3]["condition"] == "kv/induction/induction/0.25");
  CHECK(j["conditions"][3]["params"]["heads"].size() == 30);  // 40 heads, ceil(0.25 x 40) = 10 keep their cache
  const double kept = j["conditions"][3]["summary"]["kv_fraction"].get<double>();
  CHECK(kept > 0.0);
  CHECK(kept < 1.0);
  // A ranking the run file does not hold, and a kept fraction outside [0, 1]: one line each.
  r = testutil::run_cli("experiment kv-budget " + model + " --scores " + (d / "ret.h5") + " --rank sinks/alpha" + grid);
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: " + (d / "ret.h5") + ": has no probe 'sinks'\n");
  r = testutil::run_cli("experiment kv-budget " + model + " --keep 1.5" + grid);
  CHECK(r.code == 1);
  CHECK(r.err.find("--keep") != std::string::npos);
}
