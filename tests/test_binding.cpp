// Entity binding (METRICS.md §6): the task's counterfactual indices, the mechanism read from P, the causal model
// recovering distributions drawn from known parameters, and the interchange intervention on SmolLM2.
#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <set>

#include "analysis/binding.h"
#include "analysis/patching.h"
#include "core/error.h"
#include "core/random.h"
#include "datasets/binding.h"
#include "hooks/hooks.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "probes/binding.h"
#include "planted_model.h"
#include "probes/probe.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

TEST_CASE("binding items: four different indices, the counterfactual's query key at k and its answer at i", "[binding][datasets]") {
  auto gpt2 = Tokenizer::from_gpt2_files(testutil::gpt2_tokenizer_dir() + "/encoder.json", testutil::gpt2_tokenizer_dir() + "/vocab.bpe");
  auto encode = [&](const std::string& s) { return gpt2->encode(s, false); };
  for (const char* task : {"boxes", "owners"}) {
    BindingOptions o;
    o.task = task, o.groups = 6, o.items = 50, o.seed = 7;
    const BindingSet set = make_binding(o, encode);
    REQUIRE(set.items.size() == 50);
    CHECK(set.keys_kept + set.keys_dropped == 20);
    CHECK(set.answers_kept >= 6);
    std::map<int, int> p_seen;
    for (const BindingItem& b : set.items) {
      INFO(b.original.text << " | " << b.counterfactual.text);
      CHECK(std::set<int>{b.q, b.p, b.k, b.i}.size() == 4);
      CHECK(b.original.query == b.q);
      CHECK(b.counterfactual.query == b.p);
      REQUIRE(b.original.keys.size() == 6);
      const std::string& cf_key = b.counterfactual.keys[static_cast<size_t>(b.p)];
      const std::string& cf_answer = b.counterfactual.answers[static_cast<size_t>(b.p)];
      CHECK(b.original.keys[static_cast<size_t>(b.k)] == cf_key);        // lexical: the original's group of that key
      CHECK(b.original.answers[static_cast<size_t>(b.i)] == cf_answer);  // reflexive: the original's group of that answer
      CHECK(std::set<std::string>(b.original.keys.begin(), b.original.keys.end()) ==
            std::set<std::string>(b.counterfactual.keys.begin(), b.counterfactual.keys.end()));
      for (const std::string& a : b.original.answers) CHECK(encode(" " + a).size() == 1);
      ++p_seen[b.p];
    }
    CHECK(p_seen.size() == 6);  // every position gets queried
  }
  // By hand, the boxes template.
  BindingOptions o;
  o.groups = 4, o.items = 1;
  const BindingItem b = make_binding(o, encode).items[0];
  std::string want;
  for (size_t g = 0; g < 4; ++g) want += "The " + b.original.keys[g] + " is in box " + b.original.answers[g] + ". ";
  want += "The " + b.original.keys[static_cast<size_t>(b.q)] + " is in box";
  CHECK(b.original.text == want);
  // Bad options: one line each.
  auto refused = [&](BindingOptions bad, const std::string& msg) {
    try {
      make_binding(bad, encode);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(std::string(e.what()) == msg);
    }
  };
  BindingOptions bad;
  bad.groups = 3;
  refused(bad, "binding needs at least 4 groups (the four indices q, p, k and i must differ), not 3");
  bad = {};
  bad.task = "colours";
  refused(bad, "unknown binding task 'colours' (known: boxes, owners, letters)");
  bad = {};
  bad.groups = 21;
  refused(bad, "binding task boxes: " + std::to_string(make_binding(BindingOptions{}, encode).keys_kept) + " of 20 keys and 20 of 20 answers are single "
               "tokens for this tokenizer; 21 groups need 21 of each");
}

TEST_CASE("binding mechanisms from P's argmax", "[binding][metrics]") {
  BindingObservation b;
  b.q = 0, b.p = 1, b.k = 2, b.i = 3;
  auto with_peak = [&](int at) {
    b.P.assign(5, 0.05);
    b.P[static_cast<size_t>(at)] = 0.8;
    return binding_mechanism(b);
  };
  CHECK(with_peak(0) == "no_effect");
  CHECK(with_peak(1) == "positional");
  CHECK(with_peak(2) == "lexical");
  CHECK(with_peak(3) == "reflexive");
  CHECK(with_peak(4) == "mixed");
}

TEST_CASE("the causal model recovers distributions drawn from known parameters (JSS near 1), beats the positional term alone",
          "[binding][metrics]") {
  // P from the model itself with hand-set parameters: w = 3, sigma = 0.6 + 0.8 (p/A), lexical and reflexive gains.
  const int A = 6;
  const double w = 3.0, s0 = 0.6, s1 = 0.8;
  const double gk[A] = {2.0, 1.5, 1.0, 0.5, 0.0, -0.5}, gi[A] = {0.5, 0.5, 1.0, 1.0, 2.0, 2.5};
  std::vector<BindingObservation> obs;
  uint64_t st = 11;
  for (int n = 0; n < 300; ++n) {
    BindingObservation b;
    std::vector<int> idx{0, 1, 2, 3, 4, 5};
    for (int j = A; j > 1; --j) std::swap(idx[static_cast<size_t>(j - 1)], idx[static_cast<size_t>(splitmix64(st) % static_cast<uint64_t>(j))]);
    b.q = idx[0], b.p = idx[1], b.k = idx[2], b.i = idx[3];
    const double sigma = s0 + s1 * b.p / A;
    std::vector<double> logit(A);
    double z = 0;
    for (int a = 0; a < A; ++a) {
      logit[static_cast<size_t>(a)] = w * std::exp(-(a - b.p) * (a - b.p) / (2 * sigma * sigma)) + (a == b.k ? gk[b.k] : 0.0) + (a == b.i ? gi[b.i] : 0.0);
      z += std::exp(logit[static_cast<size_t>(a)]);
    }
    for (int a = 0; a < A; ++a) b.P.push_back(std::exp(logit[static_cast<size_t>(a)]) / z);
    obs.push_back(b);
  }
  const CausalModelFit f = fit_causal_model(obs);
  CHECK(f.train == 210);
  CHECK(f.validation == 45);
  CHECK(f.test == 45);
  INFO("JSS " << f.jss_test << ", positional only " << f.jss_positional << ", uniform " << f.jss_uniform << ", w " << f.w << ", epochs " << f.epochs);
  CHECK(f.jss_test > 0.999);
  CHECK(f.jss_positional < f.jss_test - 0.01);
  CHECK(std::fabs(f.w - w) < 0.1);
  // The uniform baseline by hand: the mean of 1 - JSD_2(U, P) over the test items (which ones: every item's value
  // lies between the smallest and largest over all items).
  double lo = 1, hi = 0;
  for (const BindingObservation& b : obs) {
    const double j = jss(std::vector<double>(A, 1.0 / A), b.P);
    lo = std::min(lo, j), hi = std::max(hi, j);
  }
  CHECK(f.jss_uniform >= lo);
  CHECK(f.jss_uniform <= hi);
  // Too few items for the split: one line.
  try {
    fit_causal_model(std::vector<BindingObservation>(obs.begin(), obs.begin() + 6));
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "the causal model needs at least 7 items (70/15/15 split), not 6");
  }
}

TEST_CASE("binding on the planted copier: its induction head binds lexically, so every item is lexical", "[binding][planted]") {
  // The copier's layer-1 head attends to the token after an earlier occurrence of the current token and writes it
  // out: "aC bA eE cB b" -> "A". The counterfactual's last row carries its own query key, which the head then finds
  // in the original context: the answer of the original's group k, at either layer.
  testutil::TempDir d;
  auto m = Model::load(planted::write_copy_model(d / "copy"));
  BindingOptions o;
  o.task = "letters", o.groups = 5, o.items = 40, o.seed = 3;
  for (int layer : {0, 1}) {
    const ProbeResult r = run_probe(*m, BindingProbe(o, layer));
    INFO("layer " << layer << ": " << r.summary.dump());
    CHECK(r.summary["accuracy_without"].get<double>() == 1.0);
    CHECK(r.summary["mechanisms"]["lexical"].get<double>() == 1.0);
    for (const ItemResult& it : r.items) CHECK(it.scalars.at("P" + std::to_string(static_cast<int>(it.scalars.at("k")))) > 0.9);
    // The causal model learns the lexical gain: held-out items agree almost fully, the positional term alone does not.
    const nlohmann::json& c = r.summary["causal_model"];
    CHECK(c["jss_test"].get<double>() > 0.95);
    CHECK(c["jss_positional_only"].get<double>() < c["jss_test"].get<double>() - 0.2);
  }
}

TEST_CASE("binding on SmolLM2: the interchange at layer 0 changes nothing, and P at a later layer equals a direct patched run",
          "[binding][real]") {
  const std::string path = testutil::smollm2();
  if (path.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  auto m = Model::load(path);
  BindingOptions o;
  o.items = 4, o.groups = 4;
  // Layer 0's residual at the last position is the last token's embedding: " box" in both prompts, so P is the
  // model's own distribution and the mechanism is no_effect exactly when the model answers right.
  const BindingProbe at0(o, 0);
  const ProbeResult r0 = run_probe(*m, at0);
  const std::vector<ProbeItem> items = at0.items(*m);
  for (size_t n = 0; n < items.size(); ++n) {
    const ItemResult& it = r0.items[n];
    const auto cand = items[n].meta.at("candidates").get<std::vector<int32_t>>();
    const at::Tensor logits = m->forward(items[n].tokens, true)[0].to(at::kDouble);
    const at::Tensor P = at::softmax(logits.index_select(0, at::tensor(std::vector<int64_t>(cand.begin(), cand.end()), at::kLong)), 0);
    for (int a = 0; a < 4; ++a) CHECK(std::fabs(it.scalars.at("P" + std::to_string(a)) - P[a].item<double>()) < 1e-6);
  }
  CHECK(r0.summary["mechanisms"]["no_effect"].get<double>() == r0.summary["accuracy_without"].get<double>());
  CHECK(r0.summary["mechanisms"]["positional"].get<double>() + r0.summary["mechanisms"]["lexical"].get<double>() +
            r0.summary["mechanisms"]["reflexive"].get<double>() + r0.summary["mechanisms"]["no_effect"].get<double>() +
            r0.summary["mechanisms"]["mixed"].get<double>() == Approx(1.0));
  // Layer 20: the first item by hand — the counterfactual's last row entering layer 20 written into the original.
  const int layer = 20;
  const ProbeResult r20 = run_probe(*m, BindingProbe(o, layer));
  const ProbeItem& item = items[0];
  const auto cf = item.meta.at("counterfactual").get<std::vector<int32_t>>();
  const auto cand = item.meta.at("candidates").get<std::vector<int32_t>>();
  at::Tensor row;
  Hooks take, put;
  take.add(Hooks::name(layer, "hook_resid_pre"), [&](const at::Tensor& x, const HookContext&) {
    row = x[x.size(0) - 1].clone();
    return x;
  });
  m->run(cf, AttnRecord{}, false, &take);
  put.add(Hooks::name(layer, "hook_resid_pre"), [&](const at::Tensor& x, const HookContext&) { return at::cat({x.narrow(0, 0, x.size(0) - 1), row.unsqueeze(0)}); });
  const at::Tensor logits = m->run(item.tokens, AttnRecord{}, false, &put).logits[static_cast<int64_t>(item.tokens.size()) - 1].to(at::kDouble);
  const at::Tensor P = at::softmax(logits.index_select(0, at::tensor(std::vector<int64_t>(cand.begin(), cand.end()), at::kLong)), 0);
  for (int a = 0; a < 4; ++a) CHECK(std::fabs(r20.items[0].scalars.at("P" + std::to_string(a)) - P[a].item<double>()) < 1e-5);
}
