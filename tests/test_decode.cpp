// Decoding with a KV cache: the prompt in one pass, then one token per step. Every decode step's logits and
// attention statistics must equal the same row of one forward over the whole sequence (rotary and learned
// positions, with interventions inside and outside the kernel); generation with the cache gives the tokens that
// recomputing the whole sequence each step gives; sampling is seeded and follows its distribution.
#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"
#include "hooks/hooks.h"
#include "hooks/interventions.h"
#include "model/model.h"
#include "planted_model.h"
#include "runs/record.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {

// Runs `ids` whole, and again as a prefill of `prefix` tokens plus one token per step with a cache; checks that
// every step's logits and per-query statistics equal the whole run's row.
void check_cached_rows(const Model& m, const std::vector<int32_t>& ids, int64_t prefix, const ForwardHooks* hooks) {
  AttnRecord rec;
  rec.stats = true;
  rec.key_recv = false;
  const ForwardResult whole = m.run(ids, rec, false, hooks);
  KvCache cache;
  const ForwardResult first = m.run(std::vector<int32_t>(ids.begin(), ids.begin() + prefix), rec, false, hooks, &cache);
  CHECK(cache.size() == prefix);
  double max_logit = (first.logits - whole.logits.narrow(0, 0, prefix)).abs().max().item<double>(), max_stat = 0;
  int64_t argmax_diff = 0;
  for (int64_t t = prefix; t < static_cast<int64_t>(ids.size()); ++t) {
    const ForwardResult step = m.run({ids[t]}, rec, false, hooks, &cache);
    REQUIRE(step.logits.size(0) == 1);
    max_logit = std::max(max_logit, (step.logits[0] - whole.logits[t]).abs().max().item<double>());
    for (int64_t l = 0; l < m.config().n_layers; ++l)
      for (int id = 0; id < kStatCount; ++id) {
        if (!head_stat_is_row_sum(id) && id != kStatArgmax) continue;
        const at::Tensor got = step.attn[l][id].select(1, 0), want = whole.attn[l][id].select(1, t);
        if (id == kStatArgmax) argmax_diff += (got != want).sum().item<int64_t>();
        else max_stat = std::max(max_stat, ((got - want).abs() / want.abs().clamp_min(1)).max().item<double>());  // distances are in tokens
      }
  }
  CHECK(cache.size() == static_cast<int64_t>(ids.size()));
  INFO("max logit diff " << max_logit << ", max statistic diff (relative above 1) " << max_stat);
  CHECK(max_logit <= 1e-4);
  CHECK(max_stat <= 1e-5);
  CHECK(argmax_diff == 0);
}

}  // namespace

TEST_CASE("a decode step's logits and statistics equal the same row of a whole forward (stories260K, RoPE, GQA)", "[decode]") {
  auto m = Model::load(testutil::stories260k());
  const auto ids = m->tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved to play outside.");
  REQUIRE(ids.size() > 20);
  check_cached_rows(*m, ids, 7, nullptr);
  // The same with interventions on every kind of point: a head's output, the residual stream, the kernel.
  Hooks hooks;
  install_interventions(nlohmann::json::parse(R"([{"type": "ablate", "heads": ["1.3"]},
      {"type": "uniform", "heads": ["2.5"]}, {"type": "attn_bias", "heads": ["3.1"], "keys": [0, 4], "bias": -2.5}])"),
                        m->config(), hooks);
  REQUIRE((m->run(ids, AttnRecord{}, false, &hooks).logits - m->forward(ids)).abs().max().item<double>() > 0.1);  // they act
  check_cached_rows(*m, ids, 7, &hooks);
}

TEST_CASE("a decode step equals a whole forward on learned positions (the planted GPT-2)", "[decode][planted]") {
  testutil::TempDir d;
  auto m = Model::load(planted::write_model(d / "planted"));
  const auto ids = m->tokenizer().encode("abcdefghijabcdefghij", false);
  check_cached_rows(*m, ids, 3, nullptr);
  // The planted previous-token head keeps its exact answer on decode steps: all its mass on t - 1.
  AttnRecord rec;
  rec.stats = true;
  KvCache cache;
  m->run(std::vector<int32_t>(ids.begin(), ids.begin() + 10), rec, true, nullptr, &cache);
  const ForwardResult step = m->run({ids[10]}, rec, true, nullptr, &cache);
  CHECK(step.attn[0][kStatPrevMass][planted::kPrevHead][0].item<float>() == 1.f);
  CHECK(step.attn[0][kStatArgmax][planted::kPrevHead][0].item<int32_t>() == 9);
  CHECK(step.attn[1][kStatArgmax][planted::kFirstHead][0].item<int32_t>() == 0);
}

TEST_CASE("generation with the KV cache gives the tokens of recomputing the whole sequence each step", "[decode]") {
  auto m = Model::load(testutil::stories260k());
  const auto prompt = m->tokenizer().encode("Lily and Tom went to the park");
  const auto gen = m->generate(prompt, 40).tokens;
  std::vector<int32_t> seq = prompt, slow;
  for (int i = 0; i < 40; ++i) {
    const int32_t next = static_cast<int32_t>(m->forward(seq, true)[0].argmax().item<int64_t>());
    slow.push_back(next);
    if (next == m->config().eos_id) break;
    seq.push_back(next);
  }
  CHECK(gen == slow);
  // With a record, one step per generated token, each with its one row of statistics.
  AttnRecord rec;
  rec.stats = true;
  const auto g = m->generate(prompt, 5, {}, &rec);
  REQUIRE(g.steps.size() == g.tokens.size());
  CHECK(g.steps[0].attn[0][kStatEntropy].size(1) == static_cast<int64_t>(prompt.size()));
  CHECK(g.steps[1].attn[0][kStatEntropy].size(1) == 1);
}

TEST_CASE("sampling: seeded, follows softmax(logits / temperature), cut by top-p", "[decode][sampling]") {
  // Two tokens with probabilities 1/4 and 3/4 at temperature 1; at temperature 2 they are 1/(1+sqrt 3) and
  // sqrt 3/(1+sqrt 3) = 0.366 / 0.634.
  const at::Tensor logits = at::tensor({0.0f, static_cast<float>(std::log(3.0)), -1e30f});
  auto share = [&](const Sampling& s) {
    uint64_t state = s.seed;
    int ones = 0;
    for (int i = 0; i < 20000; ++i) ones += sample_token(logits, s, state) == 1;
    return ones / 20000.0;
  };
  CHECK(std::fabs(share({1.0, 1.0, 7}) - 0.75) < 0.01);
  CHECK(std::fabs(share({2.0, 1.0, 8}) - std::sqrt(3.0) / (1 + std::sqrt(3.0))) < 0.01);
  CHECK(share({1.0, 0.7, 9}) == 1.0);  // top-p 0.7: token 1 (0.75) alone reaches it
  uint64_t s1 = 42, s2 = 42;
  std::vector<int32_t> a, b;
  for (int i = 0; i < 50; ++i) a.push_back(sample_token(logits, {1.0, 1.0, 42}, s1)), b.push_back(sample_token(logits, {1.0, 1.0, 42}, s2));
  CHECK(a == b);
  uint64_t g = 0;
  CHECK(sample_token(at::tensor({1.0f, 3.0f, 3.0f}), {}, g) == 1);  // greedy: the first maximum
  CHECK_THROWS_AS(sample_token(logits, {-1.0, 1.0, 0}, g), Error);
  CHECK_THROWS_AS(sample_token(logits, {1.0, 0.0, 0}, g), Error);
  // A seeded generation repeats itself.
  auto m = Model::load(testutil::stories260k());
  const auto prompt = m->tokenizer().encode("Once upon a time");
  CHECK(m->generate(prompt, 20, {0.8, 0.95, 123}).tokens == m->generate(prompt, 20, {0.8, 0.95, 123}).tokens);
}

TEST_CASE("record --generate keeps prompt + greedy continuation with the decode steps' statistics, and resumes", "[decode][store]") {
  testutil::TempDir d;
  const std::string model = testutil::stories260k();
  auto m = Model::load(model);
  const std::vector<PromptItem> prompts{{"Once upon a time", nullptr}, {"The little dog", nlohmann::json{{"id", 2}}}};
  RecordOptions o;
  o.output = d / "gen.h5";
  o.stats = {"entropy", "max_prob"};
  o.generate = 12;
  int64_t seen = 0;
  CHECK_THROWS_AS(record_run(*m, model, prompts, o, [&](const RecordProgress& p) { return p.to_continue > 0 || ++seen < 2; }), Cancelled);
  o.open = RunOpen::resume;
  record_run(*m, model, prompts, o);
  RunReader r(o.output);
  REQUIRE(r.status() == "complete");
  for (int64_t i = 0; i < 2; ++i) {
    const auto prompt = m->tokenizer().encode(prompts[i].text);
    AttnRecord rec;
    rec.stats = true;
    const auto g = m->generate(prompt, 12, {}, &rec);
    std::vector<int32_t> want = prompt;
    want.insert(want.end(), g.tokens.begin(), g.tokens.end());
    CHECK(r.tokens(i) == want);
    CHECK(r.meta(i)["response_start"] == static_cast<int64_t>(prompt.size()));
    // The stored row of each token the decoder read is that decode step's statistics.
    const at::Tensor ent = r.stat("entropy", i);  // [T, L, H]
    double worst = 0;
    for (size_t s = 1; s < g.steps.size(); ++s) {
      const int64_t row = static_cast<int64_t>(prompt.size() + s - 1);
      for (int64_t l = 0; l < m->config().n_layers; ++l)
        worst = std::max(worst, (ent[row][l] - g.steps[s].attn[l][kStatEntropy].select(1, 0)).abs().max().item<double>());
    }
    CHECK(worst < 1e-5);
  }
  CHECK(r.meta(1)["id"] == 2);  // the prompt's own meta, kept
}
