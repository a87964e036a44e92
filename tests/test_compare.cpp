// Comparing run files (runs/compare.h, `headscope compare`, `headscope figure --kind compare`): a clean stories260K
// recording against one with a head zeroed, checked against means computed by hand from the reader's arrays; probe
// scores of two seeds against the stored scores; runs of models of different shapes refused in one line.
#include <ATen/ATen.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "analysis/figure.h"
#include "core/colormap.h"
#include "core/error.h"
#include "core/text.h"
#include "planted_model.h"
#include "probes/run_views.h"
#include "runs/compare.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {

std::string q(const std::string& s) { return testutil::shell_quote(s); }

// Per head: each item's mean over its tokens, then the mean over the items, in double, from the reader's arrays.
std::vector<double> by_hand(const RunReader& r, const std::string& stat, int64_t L, int64_t H) {
  std::vector<double> out(static_cast<size_t>(L * H), 0);
  const int64_t n = r.n_items();
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor x = r.stat(stat, i).to(at::kDouble);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        double s = 0;
        for (int64_t t = 0; t < x.size(0); ++t) s += x[t][l][h].item<double>();
        out[static_cast<size_t>(l * H + h)] += s / static_cast<double>(x.size(0)) / static_cast<double>(n);
      }
  }
  return out;
}

}  // namespace

TEST_CASE("compare a clean and a head-zeroed recording: earlier layers unchanged, differences equal the means by hand", "[compare][cli]") {
  testutil::TempDir d;
  const std::string M = q(testutil::stories260k());
  std::ofstream(d / "prompts.jsonl") << R"({"text": "Once upon a time, there was a little boy who liked to play with his red ball."})" << "\n"
                                     << R"({"text": "The sun was hot. Lily and Ben went to the park to see the ducks."})" << "\n"
                                     << R"({"text": "Tim had a big box. He opened it and found a toy car."})" << "\n";
  const std::string a = d / "clean.h5", b = d / "zeroed.h5";
  auto r = testutil::run_cli("record " + M + " --data " + q(d / "prompts.jsonl") + " -o " + q(a));
  INFO(r.err);
  REQUIRE(r.code == 0);
  r = testutil::run_cli("record " + M + " --data " + q(d / "prompts.jsonl") + " --heads 2.3 --mode zero -o " + q(b));
  INFO(r.err);
  REQUIRE(r.code == 0);

  const RunComparison c = compare_runs(a, b);
  CHECK(c.layers == 5);
  CHECK(c.heads == 8);
  const RunReader ra(a), rb(b);
  const std::vector<std::string> stats = ra.stat_names();
  REQUIRE(c.entries.size() == stats.size());  // a `record` run has no probe scores
  for (const CompareEntry& e : c.entries) {
    INFO(e.name);
    CHECK(e.kind == "stat");
    CHECK(e.items == 3);
    CHECK(e.items_with_other_tokens == 0);
    const std::vector<double> ha = by_hand(ra, e.name, 5, 8), hb = by_hand(rb, e.name, 5, 8);
    for (size_t k = 0; k < ha.size(); ++k) {
      CHECK(std::fabs(e.a[k] - ha[k]) <= 1e-9 * std::max(1.0, std::fabs(ha[k])));
      CHECK(std::fabs(e.b[k] - hb[k]) <= 1e-9 * std::max(1.0, std::fabs(hb[k])));
      CHECK(e.diff[k] == e.b[k] - e.a[k]);
    }
    // Zeroing head 2.3's output changes nothing up to its own layer: its own attention, and layers 0-2, are the
    // same bits; the layers after it see another residual stream.
    for (size_t k = 0; k < static_cast<size_t>(3 * 8); ++k) CHECK(e.diff[k] == 0);
    double later = 0;
    for (size_t k = 3 * 8; k < ha.size(); ++k) later = std::max(later, std::fabs(e.diff[k]));
    if (e.name != "argmax") CHECK(later > 0);
    // The ranking: the largest |b - a| first, found independently; relative changes against a.
    size_t best = 0;
    for (size_t k = 0; k < ha.size(); ++k)
      if (std::fabs(hb[k] - ha[k]) > std::fabs(hb[best] - ha[best]) + 1e-12) best = k;
    REQUIRE(e.ranked.size() == ha.size());
    CHECK(e.ranked[0].layer * 8 + e.ranked[0].head == static_cast<int>(best));
    CHECK(e.ranked[0].layer >= 3);
    for (size_t i = 1; i < e.ranked.size(); ++i) CHECK(std::fabs(e.ranked[i - 1].diff) >= std::fabs(e.ranked[i].diff));
    const HeadDiff& top = e.ranked[0];
    if (top.a != 0) CHECK(top.relative == top.diff / std::fabs(top.a));
  }
  // The CLI: ranked heads as text, everything as JSON.
  r = testutil::run_cli("compare " + q(a) + " " + q(b) + " --stat entropy --top 3");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("statistic entropy (nats)") != std::string::npos);
  const CompareEntry& ent = *std::find_if(c.entries.begin(), c.entries.end(), [](const CompareEntry& e) { return e.name == "entropy"; });
  CHECK(r.out.find("\n  " + head_label(ent.ranked[0].layer, ent.ranked[0].head) + " ") != std::string::npos);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2 + 1 + 1 + 3);  // title, blank, entry line, header, 3 heads
  r = testutil::run_cli("compare " + q(a) + " " + q(b) + " --json");
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["layers"] == 5);
  REQUIRE(j["entries"].size() == stats.size());
  for (const auto& e : j["entries"]) {
    CHECK(e["ranked"].size() == 40);
    CHECK(e["diff"].size() == 5);
    CHECK(e["diff"][0].size() == 8);
  }
  CHECK(j["entries"][0]["ranked"][0]["head"] == head_label(c.entries[0].ranked[0].layer, c.entries[0].ranked[0].head));

  // The comparison figure: the largest difference's cell has the diverging map's colour for it, the range symmetric.
  const CompareGridFigure g = compare_grid(c, "entropy", 3);
  CHECK(g.marked.size() == 3);
  const std::string png = d / "cmp.png";
  r = testutil::run_cli("figure " + q(a) + " --kind compare --other " + q(b) + " --stat entropy -o " + q(png));
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out == png + "\n");
  const FigureLayout L = figure_layout(g);
  double m = 0;
  for (double x : ent.diff) m = std::max(m, std::fabs(x));
  CHECK(L.lo == -m);
  CHECK(L.hi == m);
  cairo_surface_t* s = cairo_image_surface_create_from_png(png.c_str());
  REQUIRE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
  cairo_surface_flush(s);
  // A cell of a later layer that is not outlined (outlines sit on the three largest) and one of layer 0 (white).
  for (size_t k : {static_cast<size_t>(0), static_cast<size_t>(4 * 8 + 7)}) {
    const bool is_marked = std::any_of(g.marked.begin(), g.marked.end(), [&](const HeadMark& h) { return static_cast<size_t>(h.layer * 8 + h.head) == k; });
    if (is_marked) continue;
    const FigureRect& cell = L.cells[k];
    const int px = static_cast<int>((cell.x + cell.w / 2) * 2), py = static_cast<int>((cell.y + cell.h / 2) * 2);
    const uint32_t p = *reinterpret_cast<const uint32_t*>(cairo_image_surface_get_data(s) + py * cairo_image_surface_get_stride(s) + px * 4);
    float rgb[3];
    colormap_rgb(kColormapDiverging, static_cast<float>((ent.diff[k] + m) / (2 * m)), rgb);
    INFO("cell " << k << " diff " << ent.diff[k]);
    CHECK(std::abs(static_cast<int>((p >> 16) & 255) - static_cast<int>(std::lround(rgb[0] * 255))) <= 1);
    CHECK(std::abs(static_cast<int>((p >> 8) & 255) - static_cast<int>(std::lround(rgb[1] * 255))) <= 1);
    CHECK(std::abs(static_cast<int>(p & 255) - static_cast<int>(std::lround(rgb[2] * 255))) <= 1);
  }
  cairo_surface_destroy(s);

  // Different shapes: one line naming both.
  const std::string planted = planted::write_model(d / "planted"), pa = d / "planted.h5";
  std::ofstream(d / "short.txt") << "abcdefghij\n";
  r = testutil::run_cli("record " + q(planted) + " --data " + q(d / "short.txt") + " -o " + q(pa));
  REQUIRE(r.code == 0);
  r = testutil::run_cli("compare " + q(a) + " " + q(pa));
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: cannot compare " + a + " (5 layers x 8 heads) with " + pa + " (" + std::to_string(planted::kLayers) +
                     " layers x " + std::to_string(planted::kHeads) + " heads): the models differ in shape\n");
  CHECK(r.out.empty());
  r = testutil::run_cli("compare " + q(a) + " " + q(b) + " --stat nosuch");
  CHECK(r.code == 1);
  CHECK(r.err.rfind("headscope: error: 'nosuch' is not in both ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  r = testutil::run_cli("compare " + q(a) + " " + q(d / "missing.h5"));
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: " + d / "missing.h5" + ": no such file\n");
}

TEST_CASE("compare probe scores of two runs: b - a equals the stored scores' difference", "[compare]") {
  testutil::TempDir d;
  const std::string M = q(testutil::stories260k());
  const std::string a = d / "s0.h5", b = d / "s1.h5";
  for (const auto& [path, seed] : {std::pair<std::string, int>{a, 0}, {b, 1}}) {
    const auto r = testutil::run_cli("score " + M + " --probe induction --repeat-len 20 --rows 2 --seed " + std::to_string(seed) + " -o " + q(path));
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
  const RunComparison c = compare_runs(a, b, CompareOptions{{"induction"}});
  const ProbeResult pa = RunReader(a).probe("induction"), pb = RunReader(b).probe("induction");
  REQUIRE(c.entries.size() == pa.scores.size());
  for (const CompareEntry& e : c.entries) {
    INFO(e.name);
    CHECK(e.kind == "score");
    const std::string score = e.name.substr(std::string("induction/").size());
    const at::Tensor da = pa.scores.at(score), db = pb.scores.at(score);
    for (int64_t k = 0; k < 40; ++k) {
      const double x = da.view(-1)[k].item<double>(), y = db.view(-1)[k].item<double>();
      CHECK(e.a[static_cast<size_t>(k)] == x);
      CHECK(e.diff[static_cast<size_t>(k)] == y - x);
    }
  }
  // One score by its full name.
  const RunComparison one = compare_runs(a, b, CompareOptions{{"induction/previous"}});
  REQUIRE(one.entries.size() == 1);
  CHECK(one.entries[0].name == "induction/previous");
}
