// METRICS.md section 3's WAAD/FAI fixture on a model whose heads are planted by construction (planted_model.h),
// through the library forward (Model::run) and through `headscope record` into a run file: a head on t - 1 has
// WAAD 1, a head on the first token has WAAD min(t, 10), a head that puts 0.5 on key s* from every later row has
// FAI_{s*} = 0.5. The expected values come from the construction, not from a run.
#include <ATen/ATen.h>

#include <fstream>

#include "model/model.h"
#include "planted_model.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {

// One token per character (41).
const std::string kText = "Once upon a time a cat sat on a warm mat.";

// Checks one layer's statistics of a T-token item ([H, T] tensors) against the construction. `fai_lo`/`fai_hi`:
// the query window the per-key mass was taken over (FAI horizon), `waad_w` its W.
void check_planted_layer(const at::Tensor& waad, const at::Tensor& dist, const at::Tensor& sink, const at::Tensor& maxp,
                         const at::Tensor& key_recv, const at::Tensor& key_count, int64_t T, int64_t fai_lo, int64_t fai_hi) {
  using namespace planted;
  for (int64_t t = 0; t < T; ++t) {
    INFO("query " << t);
    // Previous-token head: all mass on t - 1 (row 0 on itself).
    CHECK(waad[kPrevHead][t].item<float>() == (t == 0 ? 0.f : 1.f));
    CHECK(dist[kPrevHead][t].item<float>() == (t == 0 ? 0.f : 1.f));
    // First-token head: all mass on key 0, so WAAD = min(t, 10) and the distance is t.
    CHECK(waad[kFirstHead][t].item<float>() == static_cast<float>(std::min<int64_t>(t, 10)));
    CHECK(dist[kFirstHead][t].item<float>() == static_cast<float>(t));
    CHECK(sink[kFirstHead][t].item<float>() == 1.f);
    // Pair head: 0.5 on key 0 and 0.5 on kStar once kStar is visible.
    CHECK(maxp[kPairHead][t].item<float>() == Approx(t >= kStar ? 0.5 : 1.0).margin(1e-6));
    // Uniform head: 1 / (t + 1) on every visible key.
    CHECK(maxp[kUniformHead][t].item<float>() == Approx(1.0 / (t + 1)).epsilon(1e-6));
  }
  // FAI_{s*}: mean of A[t, s*] over the counted queries t in [s* + lo, s* + hi].
  const int64_t n = std::min<int64_t>(T - 1, kStar + fai_hi) - (kStar + fai_lo) + 1;
  REQUIRE(key_count[kStar].item<int32_t>() == n);
  CHECK(key_recv[kPairHead][kStar].item<float>() / static_cast<float>(n) == Approx(0.5).margin(1e-6));
  // Keys other than 0 and s* receive nothing from the pair head; s* receives nothing from the first-token head.
  for (int64_t s = 1; s < T; ++s)
    if (s != kStar) CHECK(key_recv[kPairHead][s].item<float>() == 0.f);
  CHECK(key_recv[kFirstHead][kStar].item<float>() == 0.f);
}

}  // namespace

TEST_CASE("WAAD and FAI of planted heads through Model::run (METRICS.md section 3 fixture)", "[planted][metrics]") {
  testutil::TempDir d;
  auto m = Model::load(planted::write_model(d / "planted"));
  auto ids = m->tokenizer().encode(kText);
  const int64_t T = static_cast<int64_t>(ids.size());
  REQUIRE(T == static_cast<int64_t>(kText.size()));
  AttnRecord rec;
  rec.stats = true;
  rec.recv_lo = 10, rec.recv_hi = 50;  // the paper's FAI horizon [s + 10, s + 50]
  ForwardResult r = m->run(ids, rec);
  REQUIRE(r.attn.size() == planted::kLayers);
  for (int l = 0; l < planted::kLayers; ++l) {
    INFO("layer " << l);
    const AttnLayerStats& a = r.attn[l];
    check_planted_layer(a[kStatWaad], a[kStatMeanDist], a[kStatSinkMass], a[kStatMaxProb], a[kStatKeyRecv], r.key_count, T, 10, 50);
    // prev_mass = A[t, t - 1]: 1 for the previous-token head, and for the first-token head only on row 1.
    for (int64_t t = 0; t < T; ++t) {
      CHECK(a[kStatPrevMass][planted::kPrevHead][t].item<float>() == (t == 0 ? 0.f : 1.f));
      CHECK(a[kStatPrevMass][planted::kFirstHead][t].item<float>() == (t == 1 ? 1.f : 0.f));
    }
  }
}

TEST_CASE("WAAD and FAI of planted heads through headscope record into the run file", "[planted][metrics][store]") {
  testutil::TempDir d;
  const std::string model = planted::write_model(d / "planted");
  const std::vector<std::string> texts{kText, "A short one here.", "Twenty-five tokens long, ok?"};
  {
    std::ofstream out(d / "p.jsonl");
    for (size_t i = 0; i < texts.size(); ++i) out << nlohmann::json({{"text", texts[i]}, {"meta", {{"i", i}}}}).dump() << "\n";
  }
  auto r = testutil::run_cli("record " + testutil::shell_quote(model) + " --data " + (d / "p.jsonl") + " -o " + (d / "run.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  RunReader run(d / "run.h5");
  REQUIRE(run.n_items() == 3);
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t T = static_cast<int64_t>(texts[i].size());
    REQUIRE(static_cast<int64_t>(run.tokens(i).size()) == T);
    at::Tensor waad = run.stat("waad", i), dist = run.stat("mean_dist", i), sink = run.stat("sink_mass", i);
    at::Tensor maxp = run.stat("max_prob", i), recv = run.stat("key_recv", i);  // [T, L, H]
    // key_recv in the run file is the mass from every later token: its query count is T - 1 - s.
    at::Tensor count = (static_cast<int32_t>(T) - 1 - at::arange(T, at::kInt)).to(at::kInt);
    for (int l = 0; l < planted::kLayers; ++l) {
      INFO("item " << i << ", layer " << l);
      check_planted_layer(waad.select(1, l).t(), dist.select(1, l).t(), sink.select(1, l).t(), maxp.select(1, l).t(),
                          recv.select(1, l).t(), count, T, 1, T);
    }
  }
}
