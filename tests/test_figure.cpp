// Figures (analysis/figure.h) of run files (probes/run_views.h) and `headscope figure`: every kind in PNG, SVG and
// PDF checked with the tools people would use (pdfinfo, pdffonts, xmllint), the figure data checked against values
// read from the run file with the plain reader, and PNG cells checked against the colour map's table at the cell
// centres the layout reports; bad input gives one line and writes nothing.
#include <ATen/ATen.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <chrono>
#include <thread>
#include <array>

#include "analysis/figure.h"
#include "core/colormap.h"
#include "core/error.h"
#include "model/model.h"
#include "planted_model.h"
#include "probes/preplan.h"
#include "probes/run_views.h"
#include "probes/score.h"
#include "runs/compare.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {

struct Shell {
  int code;
  std::string out;
};
Shell sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}
// The value of "Key:   value" in pdfinfo's output.
std::string field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) {
      const size_t v = line.find_first_not_of(' ', key.size() + 1);
      return v == std::string::npos ? "" : line.substr(v);
    }
  return "";
}
bool have(const char* tool) { return sh(std::string("command -v ") + tool).code == 0; }

std::string q(const std::string& s) { return testutil::shell_quote(s); }

// The run files every test here reads, made once per test process: a `score` run of four probes and a `record` run
// (every statistic) on stories260K, a circuit of the planted mover, a binding run of the planted copier.
struct Runs {
  testutil::TempDir d;
  std::string probes, rec, circuit, binding, error;
};
const Runs& runs() {
  static Runs* r = [] {
    auto* x = new Runs;
    const std::string M = q(testutil::stories260k());
    x->probes = x->d / "probes.h5", x->rec = x->d / "rec.h5", x->circuit = x->d / "circuit.h5", x->binding = x->d / "binding.h5";
    auto run = [&](const std::string& args) {
      const auto res = testutil::run_cli(args);
      if (res.code != 0 && x->error.empty()) x->error = args + ": " + res.err;
    };
    run("score " + M + " --probe induction,sinks,preplan,secondary --sink-input random --sink-items 4 --repeat-len 20 --rows 2 " +
        "--prompt 'Once upon a time there was a little girl named Lily.' --response 24 -o " + q(x->probes));
    std::ofstream(x->d / "prompts.jsonl") << R"({"text": "Once upon a time, there was a big dog. The dog liked to run in the park."})" << "\n"
                                          << R"({"text": "Tom and Sue went to the shop.\nThey got a red ball and a blue hat."})" << "\n";
    run("record " + M + " --data " + q(x->d / "prompts.jsonl") + " -o " + q(x->rec));
    const std::string mover = planted::write_mover_model(x->d / "mover");
    std::ofstream(x->d / "pairs.jsonl") << R"({"clean": "xAByA.", "corrupt": "xAByC.", "correct": "A", "incorrect": "B"})" << "\n"
                                        << R"({"clean": "xBAyB.", "corrupt": "xBAyD.", "correct": "B", "incorrect": "A"})" << "\n";
    run("circuit " + q(mover) + " --task " + q(x->d / "pairs.jsonl") + " -o " + q(x->circuit));
    const std::string copy = planted::write_copy_model(x->d / "copy");
    run("binding " + q(copy) + " --task letters --groups 5 --items 40 --seed 3 -o " + q(x->binding));
    return x;
  }();
  return *r;
}

struct Png {
  int w = 0, h = 0, stride = 0;
  std::vector<unsigned char> data;
  // (r, g, b) bytes at pixel (x, y)
  std::array<int, 3> at(int x, int y) const {
    const uint32_t p = *reinterpret_cast<const uint32_t*>(data.data() + static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 4);
    return {static_cast<int>((p >> 16) & 255), static_cast<int>((p >> 8) & 255), static_cast<int>(p & 255)};
  }
  size_t distinct() const {
    std::set<uint32_t> s;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) s.insert(*reinterpret_cast<const uint32_t*>(data.data() + static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 4) & 0xFFFFFF);
    return s.size();
  }
};
Png read_png(const std::string& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  Png p;
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(s);
    p.w = cairo_image_surface_get_width(s), p.h = cairo_image_surface_get_height(s), p.stride = cairo_image_surface_get_stride(s);
    const unsigned char* d = cairo_image_surface_get_data(s);
    p.data.assign(d, d + static_cast<size_t>(p.stride) * p.h);
  }
  cairo_surface_destroy(s);
  return p;
}

// The pixel at a layout cell's centre has the colour map's colour for x in [0, 1] (±1 per channel).
void check_cell(const Png& png, const FigureLayout& L, const FigureRect& r, int colormap, double x, const std::string& what) {
  float rgb[3];
  colormap_rgb(colormap, static_cast<float>(x), rgb);
  const int px = static_cast<int>((r.x + r.w / 2) * L.png_scale), py = static_cast<int>((r.y + r.h / 2) * L.png_scale);
  const auto got = png.at(px, py);
  INFO(what << " at pixel (" << px << ", " << py << "): x = " << x << ", got " << got[0] << " " << got[1] << " " << got[2] << ", want "
            << rgb[0] * 255 << " " << rgb[1] * 255 << " " << rgb[2] * 255);
  for (int c = 0; c < 3; ++c) CHECK(std::abs(got[static_cast<size_t>(c)] - static_cast<int>(std::lround(rgb[c] * 255))) <= 1);
}

// Each item's mean over its tokens of stat[:, l, h], then the mean over items: by hand, in double.
std::vector<double> hand_mean(const RunReader& r, const std::string& stat, const std::vector<int64_t>& items, int64_t L, int64_t H) {
  std::vector<double> out(static_cast<size_t>(L * H), 0);
  for (int64_t i : items) {
    const at::Tensor x = r.stat(stat, i).to(at::kDouble).contiguous();
    const int64_t T = x.size(0);
    const double* p = x.data_ptr<double>();
    for (int64_t k = 0; k < L * H; ++k) {
      double s = 0;
      for (int64_t t = 0; t < T; ++t) s += p[t * L * H + k];
      out[static_cast<size_t>(k)] += s / static_cast<double>(T) / static_cast<double>(items.size());
    }
  }
  return out;
}

}  // namespace

TEST_CASE("headscope figure writes every kind as PNG, SVG and PDF: one page, fonts embedded, vector, not blank", "[figure][cli]") {
  if (!have("pdfinfo") || !have("pdffonts") || !have("xmllint")) HS_SKIP("pdfinfo, pdffonts or xmllint is not installed (poppler-utils, libxml2-utils)");
  const Runs& R = runs();
  INFO(R.error);
  REQUIRE(R.error.empty());
  testutil::TempDir out;
  // preplan items follow the induction and sinks items in the probes run: find the first of each probe.
  const RunReader pr(R.probes);
  int64_t preplan_item = -1, secondary_item = -1;
  for (int64_t i = 0; i < pr.n_items(); ++i) {
    const std::string p = pr.meta(i)["probe"];
    if (p == "preplan" && preplan_item < 0) preplan_item = i;
    if (p == "secondary" && secondary_item < 0) secondary_item = i;
  }
  REQUIRE(preplan_item >= 0);
  REQUIRE(secondary_item >= 0);
  const std::pair<std::string, std::string> cases[] = {
      {"grid", q(R.rec) + " --kind grid --stat entropy"},
      {"grid-probe", q(R.probes) + " --kind grid --probe induction --score induction"},
      {"attention", "--kind attention --model " + q(testutil::stories260k()) + " --prompt 'Once upon a time there was a cat' --head 1.2"},
      {"tokens", q(R.probes) + " --kind tokens --item " + std::to_string(preplan_item) + " --score preplan/fai"},
      {"tokens-stat", q(R.rec) + " --kind tokens --item 1 --stat sink_mass --head 0.1"},
      {"sinks", q(R.rec) + " --kind sinks --item 0"},
      {"sinks-secondary", q(R.probes) + " --kind sinks --item " + std::to_string(secondary_item)},
      {"timeline", q(R.probes) + " --kind timeline --item " + std::to_string(preplan_item)},
      {"ranking", q(R.probes) + " --kind ranking --score induction/previous --top 12"},
      {"circuit", q(R.circuit) + " --kind circuit"},
      {"binding", q(R.binding) + " --kind binding"},
      {"compare", q(R.rec) + " --kind compare --other " + q(R.rec) + " --stat max_prob"},
  };
  for (const auto& [name, args] : cases)
    for (const std::string ext : {"png", "svg", "pdf"}) {
      const std::string path = out / (name + "." + ext);
      const auto r = testutil::run_cli("figure " + args + " -o " + q(path) + " --json");
      INFO(name << "." << ext << ": " << r.err);
      REQUIRE(r.code == 0);
      const auto j = nlohmann::json::parse(r.out);
      CHECK(j["path"] == path);
      REQUIRE(std::filesystem::exists(path));
      CHECK(!std::filesystem::exists(path + ".part"));
      const double w = j["width_pt"], h = j["height_pt"];
      CHECK(w > 100);
      CHECK(h > 100);
      if (ext == "png") {
        const Png png = read_png(path);
        CHECK(png.w == static_cast<int>(std::ceil(w * 2)));
        CHECK(png.h == static_cast<int>(std::ceil(h * 2)));
        CHECK(png.distinct() > 40);  // colours, antialiased text: not blank
        CHECK(png.at(1, 1) == std::array<int, 3>{255, 255, 255});  // white page
      } else if (ext == "svg") {
        CHECK(sh("xmllint --noout " + q(path)).code == 0);
        const std::string svg = testutil::slurp(path);
        CHECK((svg.find("<rect") != std::string::npos || svg.find("<path") != std::string::npos));
        CHECK(svg.find("<image") == std::string::npos);  // no embedded raster: every cell is a shape (< 200k cells)
      } else {
        const Shell info = sh("pdfinfo " + q(path));
        REQUIRE(info.code == 0);
        CHECK(field(info.out, "Pages") == "1");
        char size[96];
        std::snprintf(size, sizeof size, "%g x %g pts", w, h);
        CHECK(field(info.out, "Page size") == size);
        const Shell fonts = sh("pdffonts " + q(path));
        REQUIRE(fonts.code == 0);
        // name type encoding emb sub uni object ID: after the two header lines, one line per font, each embedded
        std::istringstream lines(fonts.out);
        std::string line;
        int n = 0;
        for (int k = 0; std::getline(lines, line); ++k) {
          if (k < 2 || line.empty()) continue;
          ++n;
          INFO(line);
          std::istringstream words(line);
          std::vector<std::string> w;
          for (std::string x; words >> x;) w.push_back(x);
          REQUIRE(w.size() >= 7);
          CHECK(line.find("DejaVu") != std::string::npos);
          CHECK(w[w.size() - 5] == "yes");  // the "emb" column (then sub, uni, object, ID)
        }
        CHECK(n >= 1);
      }
    }
  // The PDF's text is the tokens' visible form: a space is '·', a newline '⏎'.
  if (have("pdftotext")) {
    TokenStripFigure t;
    t.title = "chips";
    t.tokens = {"Hello", " world", "\n", "x\ty", std::string("\xff", 1)};
    t.values = {0, 0.25, 0.5, 0.75, 1};
    save_figure(t, out / "chips.pdf");
    const Shell text = sh("pdftotext " + q(out / "chips.pdf") + " -");
    CHECK(text.out.find("\xC2\xB7world") != std::string::npos);
    CHECK(text.out.find("\xE2\x8F\x8E") != std::string::npos);
    CHECK(text.out.find("\\xFF") != std::string::npos);
  }
}

TEST_CASE("head grid, ranking, sink and comparison cells have the colour of the values in the run file", "[figure]") {
  const Runs& R = runs();
  INFO(R.error);
  REQUIRE(R.error.empty());
  testutil::TempDir out;
  const RunReader rec(R.rec);
  const auto [L, H] = run_shape(rec);
  CHECK(L == 5);
  CHECK(H == 8);
  // Head grid of entropy: the mean over each item's tokens, then over the items, by hand from the reader's arrays.
  const std::vector<double> want = hand_mean(rec, "entropy", {0, 1}, L, H);
  const HeadGridFigure g = stat_grid(rec, "entropy");
  REQUIRE(g.values.size() == want.size());
  for (size_t k = 0; k < want.size(); ++k) CHECK(std::fabs(g.values[k] - want[k]) < 1e-9);
  const double lo = *std::min_element(want.begin(), want.end()), hi = *std::max_element(want.begin(), want.end());
  HeadGridFigure marked = g;
  marked.marked = {{1, 2}};
  FigureLayout lay = save_figure(marked, out / "grid.png");
  CHECK(lay.lo == lo);
  CHECK(lay.hi == hi);
  Png png = read_png(out / "grid.png");
  REQUIRE(lay.cells.size() == static_cast<size_t>(L * H));
  for (size_t k = 0; k < want.size(); ++k) check_cell(png, lay, lay.cells[k], kColormapViridis, (want[k] - lo) / (hi - lo), "entropy cell " + std::to_string(k));
  // One item only: that item's token mean.
  const HeadGridFigure g1 = stat_grid(rec, "entropy", 1);
  const std::vector<double> want1 = hand_mean(rec, "entropy", {1}, L, H);
  for (size_t k = 0; k < want1.size(); ++k) CHECK(std::fabs(g1.values[k] - want1[k]) < 1e-9);
  // A probability statistic is drawn on [0, 1] (the GUI's range), so a cell's colour is its value.
  const HeadGridFigure sm = stat_grid(rec, "sink_mass");
  lay = save_figure(sm, out / "sink_mass.png");
  png = read_png(out / "sink_mass.png");
  const std::vector<double> want_sm = hand_mean(rec, "sink_mass", {0, 1}, L, H);
  for (size_t k = 0; k < want_sm.size(); k += 3) check_cell(png, lay, lay.cells[k], kColormapViridis, want_sm[k], "sink_mass cell " + std::to_string(k));

  // Probe ranking: the induction probe's previous-token score, sorted by hand from the stored scores.
  const RunReader pr(R.probes);
  const at::Tensor prev = pr.probe("induction").scores.at("previous");
  std::vector<std::pair<double, int64_t>> order;
  for (int64_t k = 0; k < L * H; ++k) order.emplace_back(-prev.view(-1)[k].item<double>(), k);
  std::stable_sort(order.begin(), order.end());
  const RankingFigure rk = ranking(score_grid(pr, "induction", "previous"), 10);
  REQUIRE(rk.heads.size() == 10);
  for (size_t i = 0; i < 10; ++i) {
    CHECK(rk.heads[i].layer * H + rk.heads[i].head == order[i].second);
    CHECK(rk.heads[i].value == -order[i].first);
  }
  lay = save_figure(rk, out / "ranking.png");
  png = read_png(out / "ranking.png");
  REQUIRE(lay.cells.size() == 10);
  const double rlo = rk.heads.back().value, rhi = rk.heads.front().value;
  for (size_t i = 0; i < 10; ++i)
    if (lay.cells[i].w >= 2) check_cell(png, lay, lay.cells[i], kColormapViridis, (rk.heads[i].value - rlo) / (rhi - rlo), "bar " + std::to_string(i));

  // Sink view of a recorded item: s_l(j) = mean over heads of key_recv[j, l, :] / (T - 1 - j), by hand.
  const SinkViewFigure sv = sink_view(rec, 0, run_token_text(rec));
  const at::Tensor kr = rec.stat("key_recv", 0).to(at::kDouble);
  const int64_t T = kr.size(0);
  REQUIRE(static_cast<int64_t>(sv.tokens.size()) == T);
  std::vector<double> s(static_cast<size_t>(L * T), NAN);
  double smin = INFINITY, smax = -INFINITY;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j + 1 < T; ++j) {
      double sum = 0;
      for (int64_t h = 0; h < H; ++h) sum += kr[j][l][h].item<double>();
      const double v = sum / static_cast<double>(H) / static_cast<double>(T - 1 - j);
      s[static_cast<size_t>(l * T + j)] = v, smin = std::min(smin, v), smax = std::max(smax, v);
    }
  for (size_t k = 0; k < s.size(); ++k) {
    if (std::isnan(s[k])) CHECK(std::isnan(sv.score[k]));
    else CHECK(std::fabs(sv.score[k] - s[k]) < 1e-9);
  }
  CHECK(rec.tokens(0)[0] == 1);  // BOS: the first token of stories260K's prompts is the sink
  lay = save_figure(sv, out / "sinks.png");
  png = read_png(out / "sinks.png");
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j + 1 < T; j += 5) {
      const size_t k = static_cast<size_t>(l * T + j);
      if (lay.cells[k].w >= 2 && lay.cells[k].h >= 2) check_cell(png, lay, lay.cells[k], kColormapViridis, (s[k] - smin) / (smax - smin), "sink cell");
    }

  // Comparison: the same run against itself is 0 everywhere, white on the diverging map.
  const RunComparison same = compare_runs(R.rec, R.rec);
  const CompareGridFigure cg = compare_grid(same, "entropy");
  for (double d : cg.diff) CHECK(d == 0);
  lay = save_figure(cg, out / "same.png");
  png = read_png(out / "same.png");
  check_cell(png, lay, lay.cells[7], kColormapDiverging, 0.5, "zero difference");
  CHECK(png.at(static_cast<int>((lay.cells[7].x + lay.cells[7].w / 2) * 2), static_cast<int>((lay.cells[7].y + lay.cells[7].h / 2) * 2)) ==
        std::array<int, 3>{255, 255, 255});
}

TEST_CASE("timeline, token strip, secondary sinks, circuit and binding figures hold the run file's values", "[figure]") {
  const Runs& R = runs();
  INFO(R.error);
  REQUIRE(R.error.empty());
  const RunReader pr(R.probes);
  const RunContents c = run_contents(pr);
  CHECK(c.status == "complete");
  CHECK(c.layers == 5);
  std::set<std::string> names;
  for (const auto& p : c.probes) names.insert(p.name);
  CHECK(names == std::set<std::string>{"induction", "preplan", "secondary", "sinks"});
  int64_t item = -1, sec = -1;
  for (const RunItemInfo& it : c.items) {
    if (it.probe == "preplan" && item < 0) item = it.index;
    if (it.probe == "secondary" && sec < 0) sec = it.index;
  }
  REQUIRE(item >= 0);
  const TimelineFigure tl = preplan_timeline(pr, item, run_token_text(pr));
  const at::Tensor waad = pr.array("probes/preplan/tokens/waad", item), pre = pr.array("probes/preplan/tokens/preplan", item),
                   anc = pr.array("probes/preplan/tokens/anchor", item);
  REQUIRE(static_cast<int64_t>(tl.waad.size()) == waad.size(0));
  std::vector<int64_t> want_pre, want_anc;
  for (int64_t t = 0; t < waad.size(0); ++t) {
    const double w = waad[t].item<double>();
    CHECK(((std::isnan(w) && std::isnan(tl.waad[static_cast<size_t>(t)])) || w == tl.waad[static_cast<size_t>(t)]));
    if (pre[t].item<double>() == 1) want_pre.push_back(t);
    if (anc[t].item<double>() == 1) want_anc.push_back(t);
  }
  CHECK(tl.preplan == want_pre);
  CHECK(tl.anchor == want_anc);
  CHECK(!tl.preplan.empty());
  CHECK(tl.response_start == pr.meta(item)["response_start"].get<int64_t>());
  // Tokens are the stories260K tokenizer's texts (the run names its checkpoint).
  CHECK(tl.tokens[1] == " Once");
  // A token strip of the FAI values.
  const TokenStripFigure ts = token_strip(pr, item, "preplan/fai", "", run_token_text(pr));
  CHECK(ts.values.size() == tl.fai.size());
  // Secondary item: the anchor and window from its scalars.
  REQUIRE(sec >= 0);
  const SinkViewFigure sv = sink_view(pr, sec, run_token_text(pr));
  CHECK(sv.anchor == static_cast<int64_t>(pr.array("probes/secondary/scalars/anchor", sec).item<double>()));
  CHECK(sv.l_s == static_cast<int64_t>(pr.array("probes/secondary/scalars/l_s", sec).item<double>()));
  // Its heatmap is the probe's own s_l(j) at every layer: the anchor's column by hand from the stored anchor mass
  // (the mean over heads of each head's mass on the anchor), the last token NaN (no later row).
  const int64_t T = static_cast<int64_t>(sv.tokens.size());
  const at::Tensor am = pr.array("probes/secondary/heads/anchor_mass", sec);  // [L, H]
  for (int64_t l = 0; l < sv.layers; ++l) {
    CHECK(std::fabs(sv.score[static_cast<size_t>(l * T + sv.anchor)] - am[l].mean().item<double>()) < 1e-12);
    CHECK(std::isnan(sv.score[static_cast<size_t>(l * T + T - 1)]));
    const at::Tensor stored = pr.array("probes/secondary/tokens/sink_score_l" + std::to_string(l), sec);
    for (int64_t j = 0; j + 1 < T; ++j) CHECK(sv.score[static_cast<size_t>(l * T + j)] == stored[j].item<double>());
  }
  // Flagged tokens' stored sink_score at l_start is the same number.
  const at::Tensor kind = pr.array("probes/secondary/tokens/kind", sec), ls = pr.array("probes/secondary/tokens/l_start", sec),
                   ss = pr.array("probes/secondary/tokens/sink_score", sec);
  for (int64_t j = 0; j < T; ++j)
    if (!std::isnan(kind[j].item<double>()))
      CHECK(std::fabs(sv.score[static_cast<size_t>(static_cast<int64_t>(ls[j].item<double>()) * T + j)] - ss[j].item<double>()) < 1e-12);

  // Circuit of the planted mover: its one head, a name mover with effect 1, feeding the logits.
  const RunReader cr(R.circuit);
  const CircuitFigure cf = circuit_graph(cr);
  REQUIRE(cf.nodes.size() == 1);
  CHECK(cf.nodes[0].layer == 1);
  CHECK(cf.nodes[0].head == planted::mover::kMoverHead);
  CHECK(cf.nodes[0].cls == "name mover");
  CHECK(std::fabs(cf.nodes[0].effect - 1.0) < 1e-6);
  REQUIRE(cf.edges.size() == 1);
  CHECK(cf.edges[0].from == 0);
  CHECK(cf.edges[0].to == -1);
  const FigureLayout cl = figure_layout(cf);
  CHECK(cl.cells.size() == 1);

  // Binding on the planted copier: every item lexical, at every position p.
  const RunReader br(R.binding);
  const BindingFigure bf = binding_mix(br);
  REQUIRE(!bf.rows.empty());
  int64_t items = 0;
  for (const BindingRow& row : bf.rows) {
    CHECK(row.shares[1] == 1.0);  // lexical
    double sum = 0;
    for (double x : row.shares) sum += x;
    CHECK(std::fabs(sum - 1) < 1e-12);
    items += row.items;
  }
  CHECK(items == 40);
  CHECK(figure_layout(bf).cells.size() == bf.rows.size() * 5);
  // Every mechanism's share is the stored summary's, "no_effect" included (the label is "no effect").
  const nlohmann::json by_position = br.probe(br.probe_names().at(0)).summary.at("by_position");
  REQUIRE(by_position.size() == bf.rows.size());
  const char* keys[] = {"positional", "lexical", "reflexive", "no_effect", "mixed"};
  for (size_t r = 0; r < bf.rows.size(); ++r)
    for (int m = 0; m < 5; ++m) CHECK(bf.rows[r].shares[m] == by_position[r].value(keys[m], -1.0));
  // A run without what a view needs: one line saying so.
  CHECK_THROWS_WITH(circuit_graph(pr), Catch::Contains("holds no circuit"));
  CHECK_THROWS_WITH(binding_mix(pr), Catch::Contains("holds no binding probe"));
  CHECK_THROWS_WITH(niah_table(pr), Catch::Contains("no NIAH conditions"));
  CHECK_THROWS_WITH(preplan_timeline(pr, 0, nullptr), Catch::Contains("item 0 is not a preplan item"));
  CHECK_THROWS_WITH(sink_view(pr, 0, nullptr), Catch::Contains("item 0 has no sink scores"));
}

TEST_CASE("a run still being written shows the items that have landed, and combined scores wait for the end", "[figure][store]") {
  testutil::TempDir d;
  auto m = Model::load(testutil::stories260k());
  const PreplanProbe pre(prompt_items(*m, {{"Once upon a time", nullptr}, {"The cat sat on the mat", nullptr}, {"Lily had a red ball", nullptr}}, 12),
                         PreplanOptions{});
  ScoreOptions o;
  o.output = d / "partial.h5", o.model_path = testutil::stories260k();
  int64_t seen = 0;
  CHECK_THROWS_AS(score_probes(*m, {&pre}, o, [&](const ScoreProgress& p) { return p.phase == "continuations" || ++seen < 2; }), Cancelled);
  const RunReader r(o.output);
  REQUIRE(r.status() == "recording");
  REQUIRE(r.recorded(0));
  const TimelineFigure tl = preplan_timeline(r, 0, run_token_text(r));
  CHECK(tl.waad.size() == r.tokens(0).size());
  const HeadGridFigure span = score_grid(r, "preplan", "span", 0);
  const at::Tensor want = r.array("probes/preplan/heads/span", 0);
  CHECK(span.values[3] == want.view(-1)[3].item<double>());
  CHECK_THROWS_WITH(score_grid(r, "preplan", "span"), Catch::Contains("still recording"));
  CHECK_THROWS_WITH(preplan_timeline(r, 2, nullptr), Catch::Contains("item 2 is not recorded yet"));
  const RunContents c = run_contents(r);
  CHECK(c.status == "recording");
  CHECK(c.n_recorded < c.n_items);
}

TEST_CASE("headscope figure refuses bad input in one line and writes nothing", "[figure][cli]") {
  const Runs& R = runs();
  INFO(R.error);
  REQUIRE(R.error.empty());
  testutil::TempDir d;
  const std::string rec = q(R.rec), pr = q(R.probes);
  const std::pair<std::string, std::string> cases[] = {
      {"figure " + rec + " --kind pie --stat entropy -o " + q(d / "f.png"),
       "headscope: error: unknown figure kind 'pie' (kinds: grid, attention, tokens, sinks, timeline, ranking, circuit, binding, compare)\n"},
      {"figure " + rec + " --kind sinks -o " + q(d / "f.png"), "headscope: error: --kind sinks shows one item: give --item I (the run has items 0..1)\n"},
      {"figure " + rec + " --kind sinks --item 7 -o " + q(d / "f.png"), "headscope: error: no item 7 in the run (it has items 0..1)\n"},
      {"figure " + pr + " --kind grid --probe nosuch -o " + q(d / "f.png"),
       "headscope: error: the run holds no probe 'nosuch' (it holds: induction, preplan, secondary, sinks)\n"},
      {"figure " + rec + " --kind grid --stat entropy -o " + q(d / "f.jpg"),
       "headscope: error: cannot write a figure as '.jpg': the file name must end in .png, .svg or .pdf\n"},
      {"figure " + rec + " --kind grid --stat entropy --range 1 0 -o " + q(d / "f.png"), "headscope: error: --range takes two numbers LO HI with LO < HI\n"},
      {"figure " + rec + " --kind grid --stat nosuch -o " + q(d / "f.png"),
       "headscope: error: the run records no statistic 'nosuch' (it records: argmax, entropy, key_recv, max_prob, mean_dist, prev_mass, sink_mass, waad)\n"},
      {"figure --kind attention --prompt hi --head 0.0 -o " + q(d / "f.png"),
       "headscope: error: --kind attention draws one head's pattern over a prompt (a run file stores none): give --model MODEL --prompt TEXT --head L.H\n"},
      {"figure " + rec + " --kind compare --stat entropy -o " + q(d / "f.png"), "headscope: error: the compare figure needs the second run (--other B.h5; the figure shows B - RUN)\n"},
      {"figure " + rec + " --kind timeline --item 0 -o " + q(d / "f.png"), "headscope: error: item 0 is not a preplan item (the run's preplan items: none)\n"},
      {"figure " + rec + " --kind grid --stat entropy -o " + q(d / "no/such/dir/f.png"), ""},
  };
  for (const auto& [args, expect] : cases) {
    const auto r = testutil::run_cli(args);
    INFO(args);
    CHECK(r.code == 1);
    if (!expect.empty()) CHECK(r.err == expect);
    CHECK(r.err.rfind("headscope: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.empty());
  }
  CHECK(std::filesystem::is_empty(d.path));  // nothing written, not even a .part
  // The library refuses inconsistent data in one line.
  HeadGridFigure g;
  g.layers = 2, g.heads = 2, g.values = {1, 2, 3};
  CHECK_THROWS_WITH(figure_layout(g), "figure: the grid has 3 values for 2 x 2 heads");
  CHECK_THROWS_WITH(save_figure(g, d / "x.svg"), "figure: the grid has 3 values for 2 x 2 heads");
  CHECK(std::filesystem::is_empty(d.path));
}

TEST_CASE("an attention heatmap above 200,000 cells is one embedded image, below it rectangles, with log scale and range", "[figure]") {
  testutil::TempDir d;
  auto uniform = [](int T) {
    AttentionFigure a;
    a.title = "uniform causal attention, T = " + std::to_string(T);
    for (int i = 0; i < T; ++i) a.tokens.push_back(i % 7 == 0 ? "\n" : " w" + std::to_string(i));
    a.probs.assign(static_cast<size_t>(T) * T, 0);
    for (int q = 0; q < T; ++q)
      for (int k = 0; k <= q; ++k) a.probs[static_cast<size_t>(q) * T + k] = 1.0 / (q + 1);
    return a;
  };
  AttentionFigure small = uniform(300), big = uniform(640);  // 45,150 and 205,120 cells drawn
  FigureLayout ls = save_figure(small, d / "small.svg"), lb = save_figure(big, d / "big.svg");
  CHECK(!ls.raster);
  CHECK(lb.raster);
  CHECK(ls.lo == 0);  // the fixed [0, 1] scale
  CHECK(ls.hi == 1);
  CHECK(testutil::slurp(d / "small.svg").find("<image") == std::string::npos);
  const std::string svg = testutil::slurp(d / "big.svg");
  CHECK(svg.find("<image") != std::string::npos);
  CHECK(svg.find("<path") != std::string::npos);  // axes, labels, colour bar stay vector
  // The raster cells have the colours of their values too (row 400: 1/401 on keys 0..400, white after).
  lb = save_figure(big, d / "big.png");
  const Png png = read_png(d / "big.png");
  const FigureRect& cell = lb.cells[static_cast<size_t>(400) * 640 + 10];
  check_cell(png, lb, cell, kColormapViridis, 1.0 / 401, "raster cell");
  // Log scale between the smallest probability and 1; an explicit range overrides the data.
  small.scale.log = true, small.scale.lo = NAN;
  const FigureLayout lg = figure_layout(small);
  CHECK(lg.log);
  CHECK(std::fabs(lg.lo - 1.0 / 300) < 1e-15);
  float rgb[3], want[3];
  figure_color(lg, 0.1, rgb);
  colormap_rgb(kColormapViridis, static_cast<float>((std::log10(0.1) - std::log10(1.0 / 300)) / (0 - std::log10(1.0 / 300))), want);
  for (int c = 0; c < 3; ++c) CHECK(rgb[c] == want[c]);
  small.scale = ColorScale{kColormapCividis, 0.0, 0.5, false, false};
  const FigureLayout lr = figure_layout(small);
  CHECK(lr.hi == 0.5);
  figure_color(lr, 0.25, rgb);
  colormap_rgb(kColormapCividis, 0.5f, want);
  for (int c = 0; c < 3; ++c) CHECK(rgb[c] == want[c]);
  small.scale.log = true, small.scale.lo = -1;
  CHECK_THROWS_WITH(figure_layout(small), Catch::Contains("a log colour scale needs a lower bound above 0"));
}

TEST_CASE("retrieval scores and the masking conditions of a NIAH run read back as grid and table", "[figure][retrieval]") {
  testutil::TempDir d;
  const std::string M = q(testutil::stories260k()), grid = " --lengths 400 --depths 50 --max-new 8";
  auto r = testutil::run_cli("score " + M + " --probe retrieval --repeat-len 20 --rows 2" + grid + " -o " + q(d / "ret.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  r = testutil::run_cli("experiment retrieval-masking " + M + " --scores " + q(d / "ret.h5") + " --top 3 --draws 1" + grid + " -o " +
                        q(d / "mask.h5") + " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const RunReader ret(d / "ret.h5"), mask(d / "mask.h5");
  const HeadGridFigure g = score_grid(ret, "retrieval", "retrieval");
  const at::Tensor want = ret.probe("retrieval").scores.at("retrieval");
  for (int64_t k = 0; k < 40; ++k) {
    const double w = want.view(-1)[k].item<double>();
    CHECK(((std::isnan(w) && std::isnan(g.values[static_cast<size_t>(k)])) || g.values[static_cast<size_t>(k)] == w));
  }
  const std::vector<NiahCondition> table = niah_table(mask);
  REQUIRE(table.size() == j["conditions"].size());
  for (const auto& c : j["conditions"]) {
    const auto it = std::find_if(table.begin(), table.end(), [&](const NiahCondition& x) { return x.name == c["condition"]; });
    REQUIRE(it != table.end());
    CHECK(it->rouge1 == c["summary"]["niah_rouge1"].get<double>());
    CHECK(it->kv_fraction == c["summary"]["kv_fraction"].get<double>());
    CHECK(it->heads_changed == static_cast<int64_t>(c["params"]["heads"].size()));
  }
  const RunContents rc = run_contents(mask);
  CHECK(rc.niah.size() == table.size());
}

TEST_CASE("a run file another process is writing reads back the items that have landed", "[figure][store]") {
  testutil::TempDir d;
  const std::string run = d / "live.h5";
  // A long job in the background (its pid kept, killed at the end if it still runs).
  const std::string cmd = std::string(HEADSCOPE_CLI) + " score " + q(testutil::stories260k()) + " --probe sinks --sink-input random --sink-items 400 -o " +
                          q(run) + " >/dev/null 2>&1 & echo $! > " + q(d / "pid");
  REQUIRE(std::system(cmd.c_str()) == 0);
  bool seen_recording = false;
  for (int k = 0; k < 6000 && !seen_recording; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!std::filesystem::exists(run)) continue;
    try {
      const RunReader r(run);
      if (r.status() != "recording" || r.n_recorded() < 1) continue;
      seen_recording = true;
      const RunContents c = run_contents(r);
      CHECK(c.n_recorded >= 1);
      int64_t item = 0;
      while (!r.recorded(item)) ++item;
      const HeadGridFigure g = score_grid(r, "sinks", "alpha", item);
      const at::Tensor want = r.array("probes/sinks/heads/alpha", item);
      for (int64_t i = 0; i < 40; ++i) CHECK(g.values[static_cast<size_t>(i)] == want.view(-1)[i].item<double>());
      save_figure(g, d / "live.png");
      CHECK_THROWS_WITH(score_grid(r, "sinks", "alpha"), Catch::Contains("still recording"));
    } catch (const Error& e) {
      // A part renamed into place between the reader's checks: try again.
      WARN("retrying: " << e.what());
    }
  }
  const std::string pid = testutil::slurp(d / "pid");
  if (!pid.empty()) std::system(("kill " + pid.substr(0, pid.find('\n')) + " 2>/dev/null; sleep 0.2").c_str());
  if (!seen_recording) HS_SKIP("the background job finished before a partial run file could be read");
  CHECK(std::filesystem::exists(d / "live.png"));
}

TEST_CASE("the binding mix of SmolLM2 (items of every mechanism): each position's shares sum to one", "[figure][binding]") {
  const std::string path = testutil::smollm2();
  if (path.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  testutil::TempDir d;
  auto r = testutil::run_cli("binding " + testutil::shell_quote(path) + " --task boxes --groups 5 --items 8 --seed 1 -o " + (d / "b.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  const BindingFigure bf = binding_mix(RunReader(d / "b.h5"));
  int64_t items = 0;
  for (const BindingRow& row : bf.rows) {
    double sum = 0;
    for (double x : row.shares) sum += x;
    INFO("p = " << row.p);
    CHECK(std::fabs(sum - 1) < 1e-9);  // every item has one mechanism, "no effect" included
    items += row.items;
  }
  CHECK(items == 8);
}
