// Hook points and interventions: an ablation changes exactly the named head (every other head's output is
// bit-identical), patching every head's output from a clean run into a corrupted run restores the clean logits
// exactly, per-head hook_result sums to the attention output, and steering adds exactly the vector.
#include <ATen/ATen.h>

#include <fstream>

#include "datasets/prompts.h"
#include "hooks/hooks.h"
#include "hooks/interventions.h"
#include "runs/means.h"
#include "core/error.h"
#include "model/model.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {
std::vector<std::string> z_names(int64_t n_layers) {
  std::vector<std::string> n;
  for (int64_t l = 0; l < n_layers; ++l) n.push_back(Hooks::name(l, "attn.hook_z"));
  return n;
}
}  // namespace

TEST_CASE("ablating a head changes that head's output and no other", "[hooks]") {
  auto model = Model::load(testutil::stories260k());
  const auto& cfg = model->config();
  auto ids = model->tokenizer().encode("Once upon a time, there was a little girl named Lily.");
  Hooks clean_hooks, abl_hooks;
  ActivationCache clean, ablated;
  clean.record(clean_hooks, z_names(cfg.n_layers));
  install_interventions({{"interventions", {{{"type", "ablate"}, {"heads", {"2.3"}}}}}}, cfg, abl_hooks);
  ablated.record(abl_hooks, z_names(cfg.n_layers));  // recorded after the ablation ran on the same point
  ForwardResult a = model->run(ids, AttnRecord{}, false, &clean_hooks);
  ForwardResult b = model->run(ids, AttnRecord{}, false, &abl_hooks);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    const at::Tensor &za = clean.get(Hooks::name(l, "attn.hook_z")), &zb = ablated.get(Hooks::name(l, "attn.hook_z"));
    for (int64_t h = 0; h < cfg.n_heads; ++h) {
      INFO("head " << l << "." << h);
      if (l < 2 || (l == 2 && h != 3)) CHECK(at::equal(za.select(1, h), zb.select(1, h)));  // bit for bit
      if (l == 2 && h == 3) {
        CHECK(at::all(zb.select(1, h) == 0).item<bool>());
        CHECK(!at::all(za.select(1, h) == 0).item<bool>());
      }
    }
  }
  CHECK(!at::equal(a.logits, b.logits));  // the ablation mattered downstream
}

TEST_CASE("patching every head's output from the clean run restores the clean logits exactly", "[hooks]") {
  auto model = Model::load(testutil::stories260k());
  const auto& cfg = model->config();
  auto ids = model->tokenizer().encode("Once upon a time, there was a little girl named Lily.");
  Hooks rec_hooks;
  ActivationCache clean;
  clean.record(rec_hooks, z_names(cfg.n_layers));
  at::Tensor clean_logits = model->run(ids, AttnRecord{}, false, &rec_hooks).logits;
  // Corrupt every head's output with noise, then patch all heads of all layers back from the clean cache.
  Hooks corrupt, patched;
  for (Hooks* hk : {&corrupt, &patched})
    for (const auto& n : z_names(cfg.n_layers))
      hk->add(n, [](const at::Tensor& z, const HookContext&) { return z + at::randn(z.sizes()) * 0.5; });
  nlohmann::json spec = nlohmann::json::array();
  for (const auto& n : z_names(cfg.n_layers)) spec.push_back({{"type", "patch"}, {"hook", n}});
  install_interventions(spec, cfg, patched, &clean);
  at::Tensor corrupt_logits = model->run(ids, AttnRecord{}, false, &corrupt).logits;
  at::Tensor patched_logits = model->run(ids, AttnRecord{}, false, &patched).logits;
  CHECK((corrupt_logits - clean_logits).abs().max().item<double>() > 0.1);
  CHECK(at::equal(patched_logits, clean_logits));
  // Patching only some positions of one head leaves the run corrupted.
  Hooks partial;
  for (const auto& n : z_names(cfg.n_layers))
    partial.add(n, [](const at::Tensor& z, const HookContext&) { return z + at::randn(z.sizes()) * 0.5; });
  install_interventions({{{"type", "patch"}, {"hook", "blocks.4.attn.hook_z"}, {"heads", {"4.1"}}, {"positions", {-1}}}},
                        cfg, partial, &clean);
  CHECK(!at::equal(model->run(ids, AttnRecord{}, false, &partial).logits, clean_logits));
}

TEST_CASE("hook_result sums to the attention output, and steering adds exactly the vector", "[hooks]") {
  auto model = Model::load(testutil::data("models/qwen2"));  // q/k/v biases, GQA
  const auto& cfg = model->config();
  std::vector<int32_t> ids{5, 9, 17, 3, 44, 9, 17};
  at::Tensor plain = model->forward(ids);
  Hooks h;
  for (int64_t l = 0; l < cfg.n_layers; ++l)
    h.add(Hooks::name(l, "attn.hook_result"), [&](const at::Tensor& r, const HookContext&) {
      CHECK(r.sizes() == at::IntArrayRef({7, cfg.n_heads, cfg.d_model}));
      return r;
    });
  CHECK(at::allclose(model->run(ids, AttnRecord{}, false, &h).logits, plain, 1e-5, 1e-5));
  // Steering: resid_pre at layer 1, position 2, gets exactly the vector added.
  std::vector<float> vec(cfg.d_model);
  for (int64_t i = 0; i < cfg.d_model; ++i) vec[i] = 0.01f * static_cast<float>(i);
  Hooks before, after;
  ActivationCache cb, ca;
  cb.record(before, {"blocks.1.hook_resid_pre"});
  install_interventions({{{"type", "steer"}, {"layers", {1}}, {"positions", {2}}, {"vector", vec}}}, cfg, after);
  ca.record(after, {"blocks.1.hook_resid_pre"});
  model->run(ids, AttnRecord{}, false, &before);
  model->run(ids, AttnRecord{}, false, &after);
  at::Tensor diff = ca.get("blocks.1.hook_resid_pre") - cb.get("blocks.1.hook_resid_pre");
  CHECK(at::allclose(diff[2], at::tensor(vec), 0, 1e-6));
  CHECK(at::all(diff[0] == 0).item<bool>());
  CHECK_THROWS_AS(install_interventions({{{"type", "ablate"}, {"heads", {"9.0"}}}}, cfg, after), Error);
  CHECK_THROWS_AS(install_interventions({{{"type", "nonsense"}}}, cfg, after), Error);
}

TEST_CASE("headscope ablate prints before/after predictions, KL and logit differences", "[hooks][cli]") {
  const std::string m = testutil::shell_quote(testutil::stories260k());
  auto r = testutil::run_cli("ablate " + m + " --prompt 'Once upon a time, there was a little' --heads 4.0,4.1 --targets ' girl',' boy' --json");
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["kl"].get<double>() > 0);
  CHECK(j["targets"].size() == 2);
  CHECK(j["logit_diff_before"].get<double>() ==
        Approx(j["targets"][0]["logit_before"].get<double>() - j["targets"][1]["logit_before"].get<double>()));
  // Scaling by 1 changes nothing: KL exactly 0 and the same top tokens.
  auto same = nlohmann::json::parse(testutil::run_cli("ablate " + m + " --prompt 'Once upon a time' --heads 2.2 --mode scale=1 --json").out);
  CHECK(same["kl"].get<double>() == 0.0);
  CHECK(same["before"] == same["after"]);
  // ACT from the command line: the spec it stands for, and a change of the prediction.
  auto act = nlohmann::json::parse(testutil::run_cli("ablate " + m + " --prompt 'Once upon a time, there was a little girl named Lily. "
                                                     "She liked' --heads 2.3,3.1 --mode act --json").out);
  CHECK(act["spec"] == nlohmann::json::parse(R"([{"type": "act", "heads": ["2.3", "3.1"]}])"));
  CHECK(act["kl"].get<double>() > 0);
  auto bad = testutil::run_cli("ablate " + m + " --prompt 'Once' --heads 7.0");
  CHECK(bad.code == 1);
  CHECK(bad.err.find("does not exist") != std::string::npos);
}

TEST_CASE("in-kernel interventions: uniform attention and logit bias on chosen keys, in the statistics and in hook_pattern", "[hooks][attention]") {
  auto model = Model::load(testutil::stories260k());
  const auto& cfg = model->config();
  auto ids = model->tokenizer().encode("Once upon a time, there was a little girl named Lily.");
  const int64_t T = static_cast<int64_t>(ids.size());
  Hooks h;
  install_interventions({{{"type", "uniform"}, {"heads", {"1.2"}}}, {{"type", "attn_bias"}, {"heads", {"3.0"}}, {"keys", {0}}, {"bias", -40.0}}},
                        cfg, h);
  AttnRecord rec;
  rec.stats = true;
  rec.pattern_heads = {{1, 2}, {3, 0}};
  ForwardResult r = model->run(ids, rec, false, &h);
  ForwardResult plain = model->run(ids, rec, false);
  // hook_pattern is the attention the kernel used: the uniform head's rows are exactly 1 / (t + 1) on keys <= t...
  REQUIRE(r.patterns.size() == 2);
  at::Tensor uni = r.patterns[0].second;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < T; ++s) CHECK(uni[t][s].item<float>() == (s <= t ? 1.f / static_cast<float>(t + 1) : 0.f));
  // ... and the biased head's rows are its rows without the bias (with 1.2 still uniform, as it feeds layer 3)
  // reweighted by exp(bias) and renormalised.
  Hooks uniform_only;
  install_interventions({{{"type", "uniform"}, {"heads", {"1.2"}}}}, cfg, uniform_only);
  at::Tensor A = model->run(ids, rec, false, &uniform_only).patterns[1].second.to(at::kDouble), w = at::ones({T}, at::kDouble);
  w[0] = std::exp(-40.0);
  at::Tensor biased = A * w / (A * w).sum(1, true);
  CHECK((r.patterns[1].second.to(at::kDouble) - biased).abs().max().item<double>() < 1e-6);
  CHECK((plain.patterns[0].second.to(at::kDouble) - uni.to(at::kDouble)).abs().max().item<double>() > 0.1);  // not uniform before
  for (int64_t t = 0; t < T; ++t) {
    // Uniform over the t + 1 visible keys: entropy log(t + 1), max probability 1 / (t + 1).
    CHECK(r.attn[1][kStatEntropy][2][t].item<double>() == Approx(std::log(static_cast<double>(t + 1))).margin(1e-5));
    CHECK(r.attn[1][kStatMaxProb][2][t].item<double>() == Approx(1.0 / (t + 1)).epsilon(1e-5));
    if (t > 0) CHECK(r.attn[3][kStatSinkMass][0][t].item<double>() < 1e-12);  // key 0 biased away
  }
  CHECK(plain.attn[3][kStatSinkMass][0].slice(0, 1).max().item<double>() > 1e-3);  // it was attended before
  CHECK(at::equal(r.attn[0][kStatEntropy], plain.attn[0][kStatEntropy]));               // layers before are untouched
}

TEST_CASE("mean ablation replaces a head's output with its mean over a reference dataset", "[hooks][datasets]") {
  auto model = Model::load(testutil::stories260k());
  const auto& cfg = model->config();
  testutil::TempDir d;
  std::ofstream(d / "ref.jsonl") << "{\"text\": \"Once upon a time there was a cat.\", \"meta\": {\"i\": 0}}\n\n"
                                    "{\"text\": \"The dog ran to the park and played.\"}\n";
  auto items = load_prompts(d / "ref.jsonl");
  REQUIRE(items.size() == 2);
  CHECK(items[0].meta["i"] == 0);
  // Independent mean: cache hook_z of layer 2 for each reference prompt and average by hand.
  at::Tensor sum = at::zeros({cfg.n_heads, cfg.d_head}, at::kDouble);
  int64_t n = 0;
  for (auto& it : items) {
    Hooks h;
    ActivationCache c;
    c.record(h, {"blocks.2.attn.hook_z"});
    auto ids = model->tokenizer().encode(it.text);
    model->run(ids, AttnRecord{}, false, &h);
    sum += c.get("blocks.2.attn.hook_z").to(at::kDouble).sum(0);
    n += static_cast<int64_t>(ids.size());
  }
  at::Tensor want = (sum / static_cast<double>(n)).select(0, 5);
  std::vector<std::string> texts{items[0].text, items[1].text};
  HeadMeans means = compute_head_means(*model, texts);
  CHECK(means.n_tokens == n);
  Hooks h;
  ActivationCache after;
  install_interventions({{{"type", "ablate"}, {"heads", {"2.5"}}, {"mode", "mean"}}}, cfg, h, nullptr, &means);
  after.record(h, {"blocks.2.attn.hook_z"});
  model->run(model->tokenizer().encode("Lily loved to play outside."), AttnRecord{}, false, &h);
  at::Tensor z = after.get("blocks.2.attn.hook_z");
  for (int64_t t = 0; t < z.size(0); ++t) CHECK(at::allclose(z[t][5].to(at::kDouble), want, 0, 1e-6));
  CHECK_THROWS_AS(install_interventions({{{"type", "ablate"}, {"heads", {"2.5"}}, {"mode", "mean"}}}, cfg, h), Error);
  std::ofstream(d / "bad.jsonl") << "{\"txt\": 1}\n";
  CHECK_THROWS_WITH(load_prompts(d / "bad.jsonl"), Catch::Contains("bad.jsonl:1"));
}

TEST_CASE("ACT calibration of a head: the paper's formula on the materialised pattern, in the output and in hook_pattern, every other head untouched", "[hooks][act]") {
  auto model = Model::load(testutil::stories260k());
  const auto& cfg = model->config();
  auto ids = model->tokenizer().encode(
      "Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog. One day the dog ran "
      "after a big red ball and Lily ran after the dog.");
  const int64_t T = static_cast<int64_t>(ids.size()), L = 2, H = 3;
  const double tau = 0.1, beta = 0.4;
  // Reference from the uncalibrated run: the head's full pattern A and its values V, then METRICS.md §7 in doubles.
  Hooks plain_hooks;
  ActivationCache plain;
  plain.record(plain_hooks, z_names(cfg.n_layers));
  plain.record(plain_hooks, {Hooks::name(L, "attn.hook_v")});
  AttnRecord rec;
  rec.pattern_heads = {{static_cast<int>(L), static_cast<int>(H)}};
  ForwardResult pr = model->run(ids, rec, false, &plain_hooks);
  at::Tensor A = pr.patterns.at(0).second.to(at::kDouble);  // [T, T]
  REQUIRE(A.sizes() == at::IntArrayRef({T, T}));
  const int64_t hk = H / (cfg.n_heads / cfg.n_kv_heads);
  at::Tensor V = plain.get(Hooks::name(L, "attn.hook_v")).select(1, hk).to(at::kDouble);  // [T, d]
  std::vector<int64_t> S;
  for (int64_t k = 0; k < T; ++k)
    if (A.select(1, k).sum().item<double>() / static_cast<double>(T - k) > tau) S.push_back(k);
  REQUIRE(S.size() >= 2);  // the test needs a non-empty calibrated set
  S.erase(S.begin());
  at::Tensor inS = at::zeros({T}, at::kDouble);
  for (int64_t k : S) inS[k] = 1.0;
  at::Tensor P = (A * inS).sum(1, true);  // [T, 1]
  at::Tensor scale_rest = at::where(P < 1, (1 - beta * P) / (1 - P), at::ones_like(P));
  at::Tensor Ap = at::where(inS.unsqueeze(0) > 0, beta * A, A * scale_rest);
  Ap = at::where(P >= 1, A, Ap);
  at::Tensor z_ref = at::matmul(Ap, V);  // [T, d]
  // The calibrated run, with the mass on S among its statistics.
  Hooks act_hooks;
  install_interventions({{{"type", "act"}, {"heads", {"2.3"}}, {"tau", tau}, {"beta", beta}}}, cfg, act_hooks);
  ActivationCache calibrated;
  calibrated.record(act_hooks, z_names(cfg.n_layers));
  AttnRecord rec2;
  rec2.stats = true, rec2.sinks.assign(S.begin(), S.end());
  rec2.pattern_heads = {{static_cast<int>(L), static_cast<int>(H)}};
  ForwardResult cs = model->run(ids, rec2, false, &act_hooks);
  // hook_pattern under ACT is the calibrated pattern itself.
  CHECK((cs.patterns.at(0).second.to(at::kDouble) - Ap).abs().max().item<double>() < 1e-6);
  at::Tensor z = calibrated.get(Hooks::name(L, "attn.hook_z")).select(1, H).to(at::kDouble);
  INFO("calibrated set of 2.3: " << S.size() << " keys; max |z - z_ref| = " << (z - z_ref).abs().max().item<double>());
  CHECK((z - z_ref).abs().max().item<double>() < 1e-5);
  CHECK((plain.get(Hooks::name(L, "attn.hook_z")).select(1, H).to(at::kDouble) - z_ref).abs().max().item<double>() > 1e-3);
  for (int64_t l = 0; l <= L; ++l)
    for (int64_t h = 0; h < cfg.n_heads; ++h)
      if (!(l == L && h == H))
        CHECK(at::equal(plain.get(Hooks::name(l, "attn.hook_z")).select(1, h), calibrated.get(Hooks::name(l, "attn.hook_z")).select(1, h)));
  // The kernel's statistics describe the calibrated attention: mass on S is beta times what it was.
  at::Tensor ps_after = cs.attn[L][kStatSinkMass][H].to(at::kDouble);
  at::Tensor ps_expect = at::where(P.squeeze(1) >= 1, P.squeeze(1), beta * P.squeeze(1));
  CHECK((ps_after - ps_expect).abs().max().item<double>() < 1e-5);
}

TEST_CASE("intervention specs are checked entry by entry, and positions against each prompt's length", "[hooks][spec]") {
  ModelConfig cfg;
  cfg.n_layers = 4, cfg.n_heads = 6, cfg.d_model = 3, cfg.d_head = 2;
  auto error_of = [&](const std::string& text) {
    try {
      parse_spec(nlohmann::json::parse(text), cfg);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CHECK(error_of("{\"interventions\": 3}") == "an intervention spec is a list, or an object with an \"interventions\" list");
  CHECK(error_of("[{\"type\": \"ablate\", \"heads\": [\"1.1\"]}, {\"type\": \"ablate\", \"heads\": []}]") ==
        "intervention 1 (ablate): \"heads\" is empty");
  CHECK(error_of("[{\"type\": \"ablate\", \"heads\": [\"4.0\"]}]") ==
        "intervention 0 (ablate): head 4.0 does not exist: this model has layers 0..3 and heads 0..5");
  CHECK(error_of("[{\"type\": \"ablate\", \"heads\": [\"1.1\"], \"mode\": \"half\"}]") ==
        "intervention 0 (ablate): \"mode\" must be zero or mean, not 'half'");
  CHECK(error_of("[{\"type\": \"scale\", \"heads\": [\"1.1\"], \"factor\": 1e39}]") ==
        "intervention 0 (scale): \"factor\" must be a finite number, not 1e+39");
  CHECK(error_of("[{\"type\": \"steer\", \"layers\": [1], \"vector\": [1, 2, 3], \"positions\": [1.5]}]") ==
        "intervention 0 (steer): \"positions\" holds 1.5, not an integer token index");
  CHECK(error_of("[{\"type\": \"steer\", \"layers\": [4], \"vector\": [1, 2, 3]}]") ==
        "intervention 0 (steer): layer 4 does not exist (layers 0..3)");
  CHECK(error_of("[{\"type\": \"steer\", \"layers\": [0], \"vector\": [1, 2]}]") ==
        "intervention 0 (steer): the vector has 2 entries, d_model is 3");
  CHECK(error_of("[{\"type\": \"steer\", \"layers\": [0], \"vector\": [1, 2, 3e38], \"scale\": 10}]") ==
        "intervention 0 (steer): \"vector\" holds 3e+38, not a number within ±1e6 (after \"scale\")");
  CHECK(error_of("[{\"type\": \"scale\", \"heads\": [\"1.1\"], \"factor\": -2e6}]") ==
        "intervention 0 (scale): \"factor\" must be within ±1e6 (larger factors overflow float32 in the next norm), not -2000000.0");
  CHECK(error_of("[{\"type\": \"attn_bias\", \"heads\": [\"0.0\"], \"bias\": 1}]") ==
        "intervention 0 (attn_bias): needs \"keys\", a list of integers");
  CHECK(error_of("[{\"type\": \"attn_bias\", \"heads\": [\"0.0\"], \"bias\": 1, \"keys\": [99999999999]}]") ==
        "intervention 0 (attn_bias): \"keys\" holds 99999999999, not an integer token index");
  CHECK(error_of("[{\"type\": \"patch\", \"hook\": 3}]") == "intervention 0 (patch): \"hook\" must be a string, not 3");
  CHECK(error_of("[{\"type\": \"act\", \"heads\": [\"0.0\"], \"beta\": 2}]") == "intervention 0 (act): needs tau > 0 and 0 <= beta <= 1");
  CHECK(error_of("[{\"type\": \"kv_window\", \"heads\": [\"0.0\"], \"window\": 0}]") ==
        "intervention 0 (kv_window): \"window\" must be a whole number of keys >= 1");
  CHECK(error_of("[{\"type\": \"kv_window\", \"heads\": [\"0.0\"], \"sink\": 2.5}]") ==
        "intervention 0 (kv_window): \"sink\" must be a whole number of keys >= 0");
  CHECK(error_of("[{\"type\": \"kv_widow\", \"heads\": [\"0.0\"]}]") ==
        "intervention 0: unknown type 'kv_widow' (known: ablate, scale, patch, steer, uniform, attn_bias, act, kv_window)");
  // 100,000 nested lists: parsed without recursion trouble and refused as an entry that is not an object.
  CHECK(error_of(std::string(100000, '[') + std::string(100000, ']')) ==
        "intervention 0: expected an object with a \"type\", got an array");

  // Positions: -T <= p < T for a prompt of T tokens, for steer/patch positions and attn_bias keys alike.
  const auto spec = parse_spec(nlohmann::json::parse(R"([{"type": "uniform", "heads": ["0.1"]},
      {"type": "steer", "layers": [1], "vector": [1, 2, 3], "positions": [0, -3]},
      {"type": "attn_bias", "heads": ["2.2"], "keys": [2], "bias": -1}])"), cfg);
  CHECK(spec[1].vector == std::vector<float>{1, 2, 3});
  CHECK_NOTHROW(check_spec_positions(spec, 3));
  try {
    check_spec_positions(spec, 2);
    FAIL("a position past the prompt was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "intervention 1 (steer): position -3 is outside the prompt's 2 tokens (valid: -2..1)");
  }
}

TEST_CASE("an attn_bias key outside the forward's tokens is refused, not ignored", "[hooks][attention]") {
  auto model = Model::load(testutil::stories260k());
  Hooks hooks;
  install_interventions(nlohmann::json::parse(R"([{"type": "attn_bias", "heads": ["1.1"], "keys": [5], "bias": -3}])"),
                        model->config(), hooks);
  CHECK_NOTHROW(model->run({1, 2, 3, 4, 5, 6}, AttnRecord{}, true, &hooks));
  try {
    model->run({1, 2, 3}, AttnRecord{}, true, &hooks);
    FAIL("the out-of-range key was ignored");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "attn_bias key 5 is outside the 3 tokens of this forward");
  }
}

TEST_CASE("a head's pattern from the kept attention inputs equals the forward's hook_pattern and a hand softmax", "[hooks][attention]") {
  auto model = Model::load(testutil::stories260k());
  const auto& cfg = model->config();
  auto ids = model->tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved to play outside.");
  const int64_t T = static_cast<int64_t>(ids.size());
  AttnInputs kept;
  AttnRecord rec;
  rec.keep_inputs = &kept;
  rec.pattern_heads = {{0, 1}, {3, 5}, {4, 7}};
  ForwardResult fr = model->run(ids, rec);
  REQUIRE(kept.q.size() == static_cast<size_t>(cfg.n_layers));
  for (auto& [lh, want] : fr.patterns) {
    const auto [l, h] = lh;
    INFO("head " << l << "." << h);
    at::Tensor got = head_pattern(cfg, kept, l, h, 0, T);
    REQUIRE(got.sizes() == at::IntArrayRef({T, T}));
    CHECK((got - want).abs().max().item<double>() < 1e-6);
    // By hand: softmax(q k^T / sqrt(d)) over the visible keys, in float64, from the kept (rotated) q and k.
    at::Tensor q = kept.q[l].select(1, h).to(at::kDouble), k = kept.k[l].select(1, h / (cfg.n_heads / cfg.n_kv_heads)).to(at::kDouble);
    at::Tensor s = at::matmul(q, k.t()) / std::sqrt(static_cast<double>(cfg.d_head));
    s = s.masked_fill(at::ones({T, T}, at::kBool).triu(1), -INFINITY);
    CHECK((got.to(at::kDouble) - at::softmax(s, 1)).abs().max().item<double>() < 1e-5);
    // A window of query rows is the same rows of the whole.
    at::Tensor rows = head_pattern(cfg, kept, l, h, 5, 9);
    CHECK(at::equal(rows, got.narrow(0, 5, 4).narrow(1, 0, 9)));
  }
  CHECK_THROWS_WITH(head_pattern(cfg, kept, 0, cfg.n_heads, 0, T), Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(head_pattern(cfg, kept, 0, 0, 0, T + 1), Catch::Contains("outside"));
}
