// The metrics of causal interventions (METRICS.md §5, §6, §8): their exact fixture values and hand computations.
#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "analysis/patching.h"
#include "core/error.h"
#include "datasets/colored_objects.h"
#include "datasets/ioi.h"
#include "hooks/hooks.h"
#include "model/tokenizer.h"
#include "model/model.h"
#include "planted_model.h"
#include "probes/circuit.h"
#include "probes/score.h"
#include "runs/patching.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {
// A pair for the planted models' one-character tokenizer: the answers are single characters.
PatchPair char_pair(const Model& m, const std::string& clean, const std::string& corrupt, char correct, char incorrect) {
  PatchPair p;
  p.clean = m.tokenizer().encode(clean, false), p.corrupt = m.tokenizer().encode(corrupt, false);
  p.correct = correct, p.incorrect = incorrect;
  return p;
}
}  // namespace

TEST_CASE("logit difference and normalised patching: METRICS.md §8's fixture (m = 0.5)", "[patching][metrics]") {
  at::Tensor clean = at::zeros({5}), corrupt = at::zeros({5}), patched = at::zeros({5});
  const int64_t io = 1, s = 3;
  clean[io] = 3, clean[s] = 1, corrupt[io] = 1, corrupt[s] = 3, patched[io] = 2, patched[s] = 2;
  const double ld_clean = logit_diff(clean, io, s), ld_corr = logit_diff(corrupt, io, s), ld_patch = logit_diff(patched, io, s);
  CHECK(ld_clean == 2.0);
  CHECK(ld_corr == -2.0);
  CHECK(ld_patch == 0.0);
  CHECK(denoising_score(ld_patch, ld_clean, ld_corr) == 0.5);
  CHECK(noising_score(ld_patch, ld_clean, ld_corr) == 0.5);
  CHECK(denoising_score(ld_clean, ld_clean, ld_corr) == 1.0);  // the clean activation restores the clean run
  CHECK(noising_score(ld_clean, ld_clean, ld_corr) == 0.0);
  CHECK(std::isnan(denoising_score(1.0, 0.5, 0.5 + 1e-7)));      // no signal: guarded, not divided
  CHECK_THROWS_AS(logit_diff(clean, 5, 0), Error);
  // Both aggregations, by hand: prompts with LD_clean 2 and 4, LD_corr 0, LD_patch 1 -> m = 0.5 and 0.25.
  const PatchingAggregate one_batch = aggregate_patching({1, 1}, {2, 4}, {0, 0}, false, 25);
  CHECK(one_batch.mean_of_ratios == 0.375);
  CHECK(std::fabs(one_batch.ratio_of_means - 1.0 / 3.0) < 1e-15);
  const PatchingAggregate two_batches = aggregate_patching({1, 1}, {2, 4}, {0, 0}, false, 1);
  CHECK(two_batches.ratio_of_means == 0.375);  // batches of one prompt: the two aggregations agree
}

TEST_CASE("KL and Jensen-Shannon: METRICS.md §6 and §8's fixtures", "[patching][metrics]") {
  CHECK(kl_divergence({0.5, 0.5}, {0.5, 0.5}) == 0.0);
  CHECK(std::fabs(kl_divergence({0.5, 0.5}, {0.9, 0.1}) - 0.510826) < 1e-6);
  // From logits: log(0.5/0.5) and log(0.9/0.1) as logits give the same distributions.
  at::Tensor p = at::zeros({2}), q = at::tensor({std::log(9.0), 0.0});
  CHECK(std::fabs(kl_from_logits(p, q) - 0.510826) < 1e-6);
  CHECK(std::fabs(jsd2({1, 0}, {0.5, 0.5}) - 0.311278) < 1e-6);
  CHECK(std::fabs(jss({1, 0}, {0.5, 0.5}) - 0.688722) < 1e-6);
  CHECK(jss({0.2, 0.3, 0.5}, {0.2, 0.3, 0.5}) == 1.0);
  CHECK(jss({1, 0, 0}, {0, 0, 1}) == 0.0);
}

TEST_CASE("circuit heads: top 2 % per stage with ties by |score| then index, and their overlap", "[patching][metrics]") {
  // GPT2-Medium's shape: 24 x 16 = 384 heads, ceil(0.02 x 384) = 8 per stage.
  auto stage = [](std::vector<std::pair<int, int>> heads, double base) {
    at::Tensor s = at::zeros({24, 16}, at::kDouble);
    double v = base;
    for (auto [l, h] : heads) s[l][h] = v, v -= 0.01;
    return s;
  };
  std::vector<std::pair<int, int>> a1{{9, 6}, {9, 9}, {10, 0}, {10, 7}, {11, 10}, {8, 6}, {7, 3}, {7, 9}};
  at::Tensor s1 = stage(a1, 1.0);
  CHECK(top_heads_of_stage(s1) == a1);  // by score, highest first
  s1[0][0] = -2.0;                      // a negative effect counts by its size: first, and the 8th head drops out
  auto top = top_heads_of_stage(s1);
  REQUIRE(top.size() == 8);
  CHECK(top[0] == std::pair<int, int>{0, 0});
  CHECK(std::find(top.begin(), top.end(), std::pair<int, int>{7, 9}) == top.end());
  // Ties: equal |score| -> the lower index first.
  at::Tensor tie = at::zeros({24, 16}, at::kDouble);
  for (int h = 0; h < 16; ++h) tie[5][h] = 1.0;
  auto tied = top_heads_of_stage(tie);
  REQUIRE(tied.size() == 8);
  for (int i = 0; i < 8; ++i) CHECK(tied[i] == std::pair<int, int>{5, i});
  // Overlap: two circuits (unions over stages) sharing 6 of 10 heads -> 0.6.
  std::vector<std::pair<int, int>> x{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {8, 8}};
  std::vector<std::pair<int, int>> y{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {9, 9}, {10, 10}};
  CHECK(head_overlap(x, y) == 0.6);
  CHECK(head_overlap(x, x) == 1.0);
  CHECK(head_overlap({}, {}) == 0.0);
}

TEST_CASE("IOI prompts: ABBA and BABA templates, ABC and flipped corrupt prompts of the same length, single-token names",
          "[patching][datasets]") {
  auto gpt2 = Tokenizer::from_gpt2_files(testutil::gpt2_tokenizer_dir() + "/encoder.json", testutil::gpt2_tokenizer_dir() + "/vocab.bpe");
  auto encode = [&](const std::string& s) { return gpt2->encode(s, false); };
  IoiOptions o;
  o.count = 40, o.seed = 3;
  const IoiSet abc = make_ioi(o, encode);
  REQUIRE(abc.prompts.size() == 40);
  CHECK(abc.names_kept + abc.names_dropped == 76);
  CHECK(abc.names_kept >= 60);  // common names are one GPT-2 token with their space
  for (size_t i = 0; i < abc.prompts.size(); ++i) {
    const IoiPrompt& p = abc.prompts[i];
    INFO(p.clean << " | " << p.corrupt);
    CHECK(p.order == (i % 2 ? "BABA" : "ABBA"));
    CHECK(p.io != p.s);
    CHECK(encode(" " + p.io).size() == 1);
    CHECK(encode(p.clean).size() == encode(p.corrupt).size());  // patching needs position-aligned pairs
    // The clean prompt names S twice and IO once; the ABC prompt three different names.
    auto count = [](const std::string& t, const std::string& w) {
      size_t n = 0;
      for (size_t at = t.find(w); at != std::string::npos; at = t.find(w, at + 1)) ++n;
      return n;
    };
    CHECK(count(p.clean, p.s) >= 2);
    CHECK(p.corrupt_names[0] != p.corrupt_names[1]);
    CHECK(p.corrupt_names[1] != p.corrupt_names[2]);
    CHECK(p.corrupt_names[0] != p.corrupt_names[2]);
  }
  // By hand: template 0 in both orders.
  const std::string t0 = ioi_templates_baba()[0];
  CHECK(t0 == "Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to");
  o.corrupt = "flip", o.order = "abba", o.count = 5;
  for (const IoiPrompt& p : make_ioi(o, encode).prompts) {
    CHECK(p.order == "ABBA");
    CHECK(p.clean.find(p.io + " and " + p.s) != std::string::npos);         // IO first
    CHECK(p.corrupt.find(p.io + " and " + p.s) != std::string::npos);
    CHECK(p.corrupt_names == std::vector<std::string>{p.io, p.s, p.io});  // S2 <-> IO
  }
  // A tokenizer without single-token names: one clear line.
  auto byte_level = [](const std::string& s) { return std::vector<int32_t>(s.size(), 0); };
  try {
    make_ioi(IoiOptions{}, byte_level);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "IOI: only 0 of 76 names are single tokens for this tokenizer; the task needs three");
  }
  o.corrupt = "abd";
  CHECK_THROWS_AS(make_ioi(o, encode), Error);
}

TEST_CASE("activation patching on the planted copier: only the copy head carries the answer (m = s = 1, 0 elsewhere)",
          "[patching][planted]") {
  namespace C = planted::copy;
  testutil::TempDir d;
  auto m = Model::load(planted::write_copy_model(d / "copy"));
  // Clean "ab #QZ cd #" continues with Q, the corrupt "ab #XZ cd #" with X: the copy head at the last position reads
  // the token after the earlier '#', and it alone writes the answer.
  const PatchPair p = char_pair(*m, "ab #QZ cd #", "ab #XZ cd #", 'Q', 'X');
  const int64_t T = static_cast<int64_t>(p.clean.size());
  for (bool noising : {false, true}) {
    HeadPatchingOptions o;
    o.noising = noising;
    const HeadPatchingResult r = patch_heads(*m, {p}, o);
    INFO((noising ? "noising" : "denoising") << ", LD clean " << r.ld_clean[0] << ", corrupt " << r.ld_corrupt[0]);
    REQUIRE(r.ld_clean[0] > 0.5);
    REQUIRE(r.ld_corrupt[0] < -0.5);
    CHECK(r.forwards == 2 + 8);
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < 4; ++h) {
        const double want = l == 1 && h == C::kCopyHead ? 1.0 : 0.0;
        CHECK(std::fabs(r.ratio_of_means[l][h].item<double>() - want) < 1e-6);
        CHECK(std::fabs(r.mean_of_ratios[l][h].item<double>() - want) < 1e-6);
      }
  }
  // One position at a time: only the last position of the copy head matters.
  HeadPatchingOptions o;
  o.per_position = true;
  const HeadPatchingResult r = patch_heads(*m, {p}, o);
  CHECK(r.forwards == 2 + 8 * T);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const double want = l == 1 && h == C::kCopyHead && t == T - 1 ? 1.0 : 0.0;
        CHECK(std::fabs(r.ratio_of_means[l][h][t].item<double>() - want) < 1e-6);
      }
  // Bad pair sets: one line each.
  try {
    patch_heads(*m, {}, HeadPatchingOptions{});
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "patching needs at least one clean/corrupt pair (the pair set is empty)");
  }
  PatchPair bad = p;
  bad.corrupt.push_back('a');
  try {
    patch_heads(*m, {p, bad}, HeadPatchingOptions{});
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "pair 2: the clean prompt has 11 tokens and the corrupt one 12; patching needs prompts of the same length");
  }
}

TEST_CASE("headscope patch refuses tasks without single-token names or colours and an unknown task in one line", "[patching][cli]") {
  const std::string model = testutil::shell_quote(testutil::unpacked("models/stories260K/stories260K.gguf"));
  auto r = testutil::run_cli("patch " + model + " --pairs 3");
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: IOI: only 0 of 76 names are single tokens for this tokenizer; the task needs three\n");
  r = testutil::run_cli("patch " + model + " --task sst2");
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: unknown task 'sst2' (known: ioi, colored-objects, or a pairs file FILE.jsonl)\n");
  r = testutil::run_cli("patch " + model + " --task colored-objects");
  CHECK(r.code == 1);
  CHECK(r.err.rfind("headscope: error: Colored Objects: ", 0) == 0);
  CHECK(r.err.find("single tokens for this tokenizer; the task needs three of each") != std::string::npos);
}

TEST_CASE("Colored Objects prompts: three colours and objects, the corrupt prompt asks for another, answers title case",
          "[patching][datasets]") {
  auto gpt2 = Tokenizer::from_gpt2_files(testutil::gpt2_tokenizer_dir() + "/encoder.json", testutil::gpt2_tokenizer_dir() + "/vocab.bpe");
  auto encode = [&](const std::string& s) { return gpt2->encode(s, false); };
  const ColoredObjectsSet set = make_colored_objects(30, 42, encode);
  REQUIRE(set.prompts.size() == 30);
  CHECK(set.colours_kept + set.colours_dropped == 8);
  CHECK(set.objects_kept + set.objects_dropped == 17);
  for (const ColoredObjectsPrompt& p : set.prompts) {
    INFO(p.clean);
    CHECK(p.clean.rfind("Q: On the ", 0) == 0);
    CHECK(p.clean.find("\nA: ") != std::string::npos);  // the solved example
    CHECK(p.clean.find("\n\nQ: On the ") != std::string::npos);
    CHECK(p.clean.size() >= 4);
    CHECK(p.clean.substr(p.clean.size() - 4) == "?\nA:");
    CHECK(p.answer != p.corrupt_answer);
    CHECK(std::isupper(static_cast<unsigned char>(p.answer[0])));
    CHECK(encode(p.clean).size() == encode(p.corrupt).size());
    // The answer's colour is the one written before the queried object.
    const size_t q = p.clean.rfind("is the ") + 7;
    const std::string object = p.clean.substr(q, p.clean.size() - 4 - q);
    const std::string asked = p.clean.substr(p.clean.rfind("\n\nQ: "));  // the question, not the example
    std::string lower = p.answer;
    lower[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[0])));
    CHECK(asked.find(" " + lower + " " + object) != std::string::npos);
  }
}

TEST_CASE("path patching on the planted two-step circuit: the mover to the logits, the duplicate head to the mover's keys, nothing else",
          "[patching][planted]") {
  namespace Mv = planted::mover;
  testutil::TempDir d;
  auto m = Model::load(planted::write_mover_model(d / "mover"));
  const PatchPair p = char_pair(*m, "xAByA.", "xAByC.", 'A', 'B');
  const PromptCache clean = cache_prompt(*m, p.clean, p.correct, p.incorrect);
  const PromptCache corrupt = cache_prompt(*m, p.corrupt, p.correct, p.incorrect);
  INFO("LD clean " << clean.ld << ", corrupt " << corrupt.ld);
  REQUIRE(clean.ld > 1.0);
  REQUIRE(std::fabs(corrupt.ld) < 1e-6);  // A and B tie when nothing is marked
  const std::pair<int, int> mover{1, Mv::kMoverHead}, dup{0, Mv::kDupHead};
  struct Case {
    PathTarget target;
    std::pair<int, int> carrier;  // the one head with s = 1 ({-1, -1}: none)
  };
  const Case cases[] = {{{PathInput::logits, {}}, mover},
                        {{PathInput::k, {mover}}, dup},
                        {{PathInput::q, {mover}}, {-1, -1}},
                        {{PathInput::v, {mover}}, {-1, -1}}};
  for (const Case& c : cases) {
    int64_t forwards = 0, passes = 0;
    const at::Tensor ld = path_patch_pair(*m, p, clean, corrupt, c.target, &forwards, &passes);
    const at::Tensor s = at::full({Mv::kLayers, Mv::kHeads}, NAN, at::kDouble);
    for (int l = 0; l < Mv::kLayers; ++l)
      for (int h = 0; h < Mv::kHeads; ++h) {
        const double x = ld[l][h].item<double>();
        INFO(path_input_name(c.target.input) << ": head " << l << "." << h << " LD " << x);
        const bool sender = c.target.input == PathInput::logits || l == 0;
        CHECK(std::isnan(x) == !sender);
        if (!sender) continue;
        s[l][h] = noising_score(x, clean.ld, corrupt.ld);
        CHECK(std::fabs(s[l][h].item<double>() - (std::make_pair(l, h) == c.carrier ? 1.0 : 0.0)) < 1e-6);
      }
    CHECK(forwards == (c.target.input == PathInput::logits ? 8 : 4));
    CHECK(passes == (c.target.input == PathInput::logits ? 2 : 2));
    // The top 2 % of 8 heads is one head: the planted one.
    if (c.carrier.first >= 0) CHECK(top_heads_of_stage(s, 0.02) == std::vector<std::pair<int, int>>{c.carrier});
  }
}

TEST_CASE("batched patched passes from a cached residual equal single forwards with the patch hook", "[patching][planted]") {
  testutil::TempDir d;
  auto m = Model::load(planted::write_mover_model(d / "mover"));
  const PatchPair p = char_pair(*m, "xAByA.", "xAByC.", 'A', 'B');
  HeadPatchingOptions o;
  o.per_position = true;
  const HeadPatchingResult r = patch_heads(*m, {p}, o);
  CHECK(r.passes == 2 * 6);  // per layer and position, its 4 heads in one pass over the rows from that position on
  const PromptCache clean = cache_prompt(*m, p.clean, p.correct, p.incorrect);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h)
      for (int64_t t = 0; t < 6; ++t) {
        Hooks hooks;
        hooks.add(Hooks::name(l, "attn.hook_z"), [&](const at::Tensor& z, const HookContext&) {
          at::Tensor out = z.clone();
          out[t][h].copy_(clean.z[static_cast<size_t>(l)][t][h]);
          return out;
        });
        const double ld = logit_diff(m->run(p.corrupt, AttnRecord{}, true, &hooks).logits[0], p.correct, p.incorrect);
        const double want = denoising_score(ld, r.ld_clean[0], r.ld_corrupt[0]);
        INFO("head " << l << "." << h << " position " << t);
        CHECK(std::fabs(r.ratio_of_means[l][h][t].item<double>() - want) < 1e-5);
      }
  // The mover at the last position carries it all; the duplicate head's clean mark alone makes the mover move the
  // corrupt prompt's C (position 4), which leaves A and B tied: 0.
  CHECK(std::fabs(r.ratio_of_means[0][planted::mover::kDupHead][4].item<double>()) < 1e-6);
  CHECK(std::fabs(r.ratio_of_means[1][planted::mover::kMoverHead][5].item<double>() - 1.0) < 1e-6);
}

TEST_CASE("headscope circuit on the planted two-step circuit: the mover is the circuit, resumable, and overlaps itself fully",
          "[patching][planted][cli]") {
  namespace Mv = planted::mover;
  testutil::TempDir d;
  const std::string model = planted::write_mover_model(d / "mover");
  const std::string pairs = d / "pairs.jsonl", run = d / "circuit.h5";
  std::ofstream(pairs) << R"({"clean": "xAByA.", "corrupt": "xAByC.", "correct": "A", "incorrect": "B"})" << "\n"
                       << R"({"clean": "xBAyB.", "corrupt": "xBAyD.", "correct": "B", "incorrect": "A"})" << "\n";
  auto r = testutil::run_cli("circuit " + model + " --task " + pairs + " -o " + run + " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["pairs"] == 2);
  CHECK(j["accuracy"] == 1.0);
  CHECK(std::fabs(j["logit_diff_corrupt"].get<double>()) < 1e-6);
  // ceil(0.02 x 8) = 1 head per stage: the logits stage finds the mover with s = 1; the movers' queries have no
  // sender with an effect (the query is a constant), so nothing further is selected.
  REQUIRE(j["circuit"].size() == 1);
  CHECK(j["circuit"][0]["head"] == "1." + std::to_string(Mv::kMoverHead));
  CHECK(j["circuit"][0]["class"] == "name mover");
  CHECK(std::fabs(j["circuit"][0]["effect"].get<double>() - 1.0) < 1e-6);
  CHECK(j["stages"][1]["summary"]["receivers"] == nlohmann::json::array({"1." + std::to_string(Mv::kMoverHead)}));
  CHECK(j["stages"][1]["summary"]["selected"].empty());
  // The run file holds it: inspect lists the stages, overlap with itself is complete.
  r = testutil::run_cli("inspect " + run);
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("circuit/logits") != std::string::npos);
  CHECK(r.out.find("name mover") != std::string::npos);
  r = testutil::run_cli("circuit overlap " + run + " " + run + " --json");
  REQUIRE(r.code == 0);
  const nlohmann::json o = nlohmann::json::parse(r.out);
  CHECK(o["all"] == nlohmann::json({{"shared", 1}, {"union", 1}, {"jaccard", 1.0}}));
  CHECK(o["per_class"]["name mover"]["jaccard"] == 1.0);
  // Bad input: one line each, nothing written.
  std::ofstream(d / "bad.jsonl") << R"({"clean": "xAByA.", "corrupt": "xAByCC.", "correct": "A", "incorrect": "B"})" << "\n";
  std::ofstream(d / "empty.jsonl") << "\n";
  std::ofstream(d / "broken.jsonl") << R"({"clean": "xAByA."})" << "\n";
  const std::pair<std::string, std::string> bad[] = {
      {"--task " + d / "bad.jsonl", "headscope: error: no " + d / "bad.jsonl" + " pair is left: all 1 clean and corrupt prompts tokenize to different lengths for this model\n"},
      {"--task " + d / "empty.jsonl", "headscope: error: the pairs file " + d / "empty.jsonl" + " holds no pair (the pair set is empty)\n"},
      {"--task " + d / "broken.jsonl", "headscope: error: " + d / "broken.jsonl" + " line 1: expected {\"clean\", \"corrupt\", \"correct\", \"incorrect\"} as non-empty strings\n"},
      {"--task ioi", "headscope: error: IOI: only 0 of 76 names are single tokens for this tokenizer; the task needs three\n"}};
  for (const auto& [args, err] : bad) {
    r = testutil::run_cli("circuit " + model + " " + args + " -o " + d / "x.h5");
    CHECK(r.code == 1);
    CHECK(r.err == err);
    CHECK(!std::filesystem::exists(d / "x.h5"));
  }
  r = testutil::run_cli("circuit overlap " + run + " " + d / "missing.h5");
  CHECK(r.code == 1);

  // Killed in a later stage (after the first stage's pairs and the second's) and resumed: the same stages,
  // bit for bit, as the job run in memory.
  auto m = Model::load(model);
  CircuitOptions co;
  co.task.task = pairs;
  const auto owned = circuit_probes(*m, co);
  std::vector<const Probe*> probes;
  for (auto& p : owned) probes.push_back(p.get());
  const std::vector<ProbeResult> memory = score_probes(*m, probes, ScoreOptions{});
  ScoreOptions so;
  so.output = d / "killed.h5", so.model_path = model;
  int seen = 0;
  CHECK_THROWS_AS(score_probes(*m, probes, so, [&](const ScoreProgress& p) { return p.phase != "circuit/mover_queries" || ++seen < 2; }), Cancelled);
  so.open = RunOpen::resume;
  int64_t kept = 0;
  const std::vector<ProbeResult> resumed = score_probes(*m, probes, so, [&](const ScoreProgress& p) {
    kept = p.kept;
    return true;
  });
  CHECK(kept == 10 + 2 + 2);  // the induction probe's items, the logits stage's pairs, both pairs of the next
  REQUIRE(resumed.size() == memory.size());
  for (size_t k = 0; k < memory.size(); ++k) {
    INFO(memory[k].name);
    CHECK(resumed[k].summary == memory[k].summary);
    for (auto& [name, t] : memory[k].scores) CHECK(at::equal(at::nan_to_num(resumed[k].scores.at(name), 7.0), at::nan_to_num(t, 7.0)));
  }
  RunReader back(so.output);
  CHECK(back.status() == "complete");
  CHECK(circuit_heads({back.probe("circuit/logits")}).size() == 1);
}
