// headscope-gui end to end: starts the real app under xvfb-run on stories260K, drives it with a script, and checks
// the screenshots against independent expectations: a head-grid cell has the colour the colour map gives the value
// the CLI's --json reports for that head, on the statistic's fixed scale (entropy [0, ln T], probabilities [0, 1])
// and on the run's own range; the attention view's first cell (query 0 can only attend to itself: probability 1) has
// the colour map's top colour; the screenshots are not blank. The keyboard moves the selection, the token search
// finds the token the tokenizer made, an intervention run from the UI gives the numbers `headscope ablate --json`
// gives, bad scripts fail at once naming their line (the cases that used to crash or hang). The GUI's "record" writes
// the run file the CLI writes for the same prompts. Skips only without xvfb-run.
#include <stb/stb_image.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <tuple>
#include <sys/wait.h>

#include "planted_model.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

namespace {
#include "core/colormaps.inc"

struct Png {
  int w = 0, h = 0;
  std::vector<unsigned char> px;
  explicit Png(const std::string& path) {
    int n;
    unsigned char* d = stbi_load(path.c_str(), &w, &h, &n, 3);
    if (d) px.assign(d, d + static_cast<size_t>(w) * h * 3), stbi_image_free(d);
  }
  std::array<int, 3> at(int x, int y) const {
    const unsigned char* p = &px[(static_cast<size_t>(y) * w + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

// The 8-bit colour ImGui draws for colour-map position x (its float-to-byte rule: trunc(v * 255 + 0.5)).
std::array<int, 3> expected_colour(double x) {
  x = std::clamp(x, 0.0, 1.0);
  const float* c = kViridis[static_cast<int>(static_cast<float>(x) * 255.f + 0.5f)];
  return {static_cast<int>(c[0] * 255.f + 0.5f), static_cast<int>(c[1] * 255.f + 0.5f), static_cast<int>(c[2] * 255.f + 0.5f)};
}

bool have_xvfb() { return std::system("command -v xvfb-run >/dev/null 2>&1") == 0; }
}  // namespace

// Runs the GUI on a script; returns its exit code (stderr and stdout into d/log).
static int run_gui(const testutil::TempDir& d, const std::string& script, const std::string& shot_dir = "") {
  std::ofstream(d / "script.txt") << script;
  const std::string cmd = "HOME=" + d.path.string() + " timeout 300 xvfb-run -a -s '-screen 0 1600x900x24' " + HEADSCOPE_GUI +
                          " --script " + (d / "script.txt") + " --screenshot-dir " + (shot_dir.empty() ? d.path.string() : shot_dir) +
                          " > " + (d / "log") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

const std::string kPrompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

TEST_CASE("headscope-gui draws the head grid, the attention view and the chips under Xvfb", "[gui]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  const int rc = run_gui(d, "open " + testutil::stories260k() + "\nprompt " + kPrompt +
                                "\nrun\nwait\nselect 3.5\nwait\nhover 10\nframes 3\nscreenshot grid\n"
                                "stat max_prob\nframes 3\nscreenshot maxprob\nscale run\nframes 3\nscreenshot maxprob_run\n");
  INFO(testutil::slurp(d / "log"));
  REQUIRE(rc == 0);
  // The CLI's numbers for the same prompt, computed independently of the GUI process.
  auto r = testutil::run_cli("attn " + testutil::shell_quote(testutil::stories260k()) + " --prompt " + testutil::shell_quote(kPrompt) +
                             " --stats --json");
  REQUIRE(r.code == 0);
  auto cli = nlohmann::json::parse(r.out);
  auto table = cli["heads_table"];
  const double T = cli["tokens"].get<double>();  // the prompt's token count
  for (const char* shot : {"grid", "maxprob", "maxprob_run"}) {
    const std::string name = shot, stat = name == "grid" ? "entropy" : "max_prob";
    Png png(d / (name + ".png"));
    auto layout = testutil::load_json(d / (name + ".json"));
    REQUIRE(png.w == 1600);
    REQUIRE(layout["grid"]["stat"] == stat);
    // The fixed scales: entropy over [0, ln T] nats, a probability over [0, 1]; "scale run": the run's min and max.
    double lo = 0, hi = stat == "entropy" ? std::log(T) : 1.0;
    if (name == "maxprob_run") {
      lo = 1e30, hi = -1e30;
      for (auto& e : table) lo = std::min(lo, e[stat].get<double>()), hi = std::max(hi, e[stat].get<double>());
    }
    auto& g = layout["grid"];
    int checked = 0;
    for (auto& e : table) {
      const int l = e["layer"], h = e["head"];
      const int x = static_cast<int>(g["x0"].get<double>() + (h + 0.5) * g["cell_w"].get<double>());
      const int y = static_cast<int>(g["y0"].get<double>() + (l + 0.5) * g["cell_h"].get<double>());
      auto want = expected_colour((e[stat].get<double>() - lo) / (hi - lo));
      auto got = png.at(x, y);
      INFO(shot << " head " << l << "." << h << " value " << e[stat] << " pixel (" << x << "," << y << ")");
      for (int c = 0; c < 3; ++c) CHECK(std::abs(got[c] - want[c]) <= 1);
      ++checked;
    }
    CHECK(checked == 5 * 8);
    // The attention view of head 3.5: cell (0, 0) is probability 1, the top of the colour map.
    auto& a = layout["attention"];
    REQUIRE(a["layer"] == 3);
    REQUIRE(a["head"] == 5);
    const double cell = a["cell"];
    auto top = png.at(static_cast<int>(a["x0"].get<double>() + cell / 2), static_cast<int>(a["y0"].get<double>() + cell / 2));
    auto want = expected_colour(1.0);
    for (int c = 0; c < 3; ++c) CHECK(std::abs(top[c] - want[c]) <= 1);
    // Not blank: many distinct colours.
    std::set<int> colours;
    for (size_t i = 0; i < png.px.size(); i += 3) colours.insert(png.px[i] << 16 | png.px[i + 1] << 8 | png.px[i + 2]);
    CHECK(colours.size() > 50);
  }
}

TEST_CASE("headscope-gui: keyboard, token search, and the pattern of a newly selected head without a forward", "[gui]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  const int rc = run_gui(d, "open " + testutil::stories260k() + "\nprompt " + kPrompt +
                                "\nkey ctrl+enter\nwait\nselect 0.0\nwait\nkey up\nkey left\nkey down\nkey down\nkey right\nwait\n"
                                "search Lily\nframes 3\nscreenshot keys\n");
  INFO(testutil::slurp(d / "log"));
  REQUIRE(rc == 0);
  auto j = testutil::load_json(d / "keys.json");
  CHECK(j["selected"] == nlohmann::json::array({2, 1}));  // up and left stop at 0; down, down, right
  CHECK(j["attention"]["layer"] == 2);                     // the pattern shown is the selected head's
  CHECK(j["attention"]["head"] == 1);
  // The search lands on the token the CLI's tokenizer made for " Lily".
  auto r = testutil::run_cli("tokenize " + testutil::shell_quote(testutil::stories260k()) + " " + testutil::shell_quote(kPrompt) + " --json");
  auto toks = nlohmann::json::parse(r.out)["tokens"];
  int want = -1;
  for (size_t i = 0; i < toks.size() && want < 0; ++i)
    if (toks[i].get<std::string>().find("Lily") != std::string::npos) want = static_cast<int>(i);
  REQUIRE(want > 0);
  CHECK(j["search_hit"] == want);
  CHECK(j["chips"]["token"] == want);
  auto times = testutil::load_json(d / "frame_times.json");
  REQUIRE(times["select_to_pattern_ms"].size() == 1);  // the `select` action's time to its pattern on screen
  CHECK(times["select_to_pattern_ms"][0].get<double>() > 0);
}

TEST_CASE("headscope-gui runs an intervention with the numbers headscope ablate --json gives", "[gui][hooks]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  for (const std::string mode : {"zero", "scale=0.25", "uniform"}) {
    const int rc = run_gui(d, "open " + testutil::stories260k() + "\nprompt " + kPrompt + "\nrun\nwait\nheads 3.5,2.1\nmode " + mode +
                                  "\ntargets  park| garden\nintervene\nframes 3\nscreenshot iv\n");
    INFO(mode << "\n" << testutil::slurp(d / "log"));
    REQUIRE(rc == 0);
    auto gui = testutil::load_json(d / "iv.json")["intervention"];
    auto r = testutil::run_cli("ablate " + testutil::shell_quote(testutil::stories260k()) + " --prompt " + testutil::shell_quote(kPrompt) +
                               " --heads 3.5,2.1 --mode " + mode + " --targets park --targets ' garden' --top-k 10 --json");
    REQUIRE(r.code == 0);
    auto cli = nlohmann::json::parse(r.out);
    CHECK(gui["spec"] == cli["spec"]);
    CHECK(gui["kl"].get<double>() == Approx(cli["kl"].get<double>()).epsilon(1e-9));
    CHECK(cli["kl"].get<double>() > 0);
    for (const char* side : {"before", "after"}) {
      REQUIRE(gui[side].size() == cli[side].size());
      for (size_t i = 0; i < cli[side].size(); ++i) {
        CHECK(gui[side][i]["id"] == cli[side][i]["id"]);
        CHECK(gui[side][i]["prob"].get<double>() == cli[side][i]["prob"].get<double>());
      }
    }
    REQUIRE(gui["targets"].size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(gui["targets"][i]["logit_before"].get<double>() == cli["targets"][i]["logit_before"].get<double>());
      CHECK(gui["targets"][i]["logit_after"].get<double>() == cli["targets"][i]["logit_after"].get<double>());
    }
  }
}

TEST_CASE("headscope-gui scripts: bad actions fail at once naming their line, never crash or hang", "[gui][errors]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  const std::string open = "open " + testutil::stories260k() + "\n";
  struct Case {
    std::string script, message;
    int code;
  };
  const Case cases[] = {
      {open + "zoom 0\n", "line 2 (zoom): needs a zoom factor between 1 and 400, not '0'", 2},
      {open + "zoom abc\n", "line 2 (zoom): needs a zoom factor between 1 and 400, not 'abc'", 2},
      {open + "frames -1\n", "line 2 (frames)", 2},
      {"jump 3\n", "line 1 (jump): unknown action", 2},
      {open + "select 3\n", "needs a head as LAYER.HEAD", 2},
      {open + "export grid fig.txt\n", "must be .png, .svg or .pdf", 2},
      {open + "export heads fig.pdf\n", "exports grid, attention, tokens, run or compare", 2},
      {"open /nonexistent/model.gguf\n", "/nonexistent/model.gguf does not exist", 2},
      // Known only once the model is loaded: fails when it runs, at once (it used to leave the view "updating").
      {open + "prompt Once upon a time\nrun\nwait\nselect 99.0\nwait\nscreenshot never\n", "line 5 (select): head 99.0 does not exist", 1},
  };
  for (const Case& c : cases) {
    INFO(c.script);
    const int rc = run_gui(d, c.script);
    const std::string log = testutil::slurp(d / "log");
    INFO(log);
    CHECK(rc == c.code);
    CHECK(log.find(c.message) != std::string::npos);
  }
  CHECK(!std::filesystem::exists(d / "never.png"));
  // A screenshot folder that does not exist is reported before anything runs.
  const int rc = run_gui(d, open + "screenshot x\n", d / "missing");
  CHECK(rc == 2);
  CHECK(testutil::slurp(d / "log").find("the screenshot folder " + (d / "missing") + " does not exist") != std::string::npos);
}

TEST_CASE("headscope-gui records a prompt set into a run file through the library call the CLI uses", "[gui][store]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  std::ofstream(d / "p.jsonl") << "{\"text\": \"Once upon a time there was a cat.\", \"meta\": {\"id\": 1}}\n"
                                  "{\"text\": \"Lily saw a big bird in the tree.\", \"meta\": {\"id\": 2}}\n";
  std::ofstream(d / "script.txt") << "open " << testutil::stories260k() << "\nrecord " << (d / "p.jsonl") << " " << (d / "gui.h5")
                                  << "\nframes 3\nscreenshot recorded\n";
  const std::string cmd = "HOME=" + d.path.string() + " xvfb-run -a -s '-screen 0 1600x900x24' " + HEADSCOPE_GUI +
                          " --script " + (d / "script.txt") + " --screenshot-dir " + d.path.string() + " > " + (d / "log") + " 2>&1";
  INFO(testutil::slurp(d / "log"));
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto shot = testutil::load_json(d / "recorded.json");
  CHECK(shot["error"] == "");
  CHECK(shot["note"] == "recorded 2 of 2 items into " + (d / "gui.h5"));
  // The same prompts through the CLI: the same file contents, statistic for statistic, bit for bit.
  auto r = testutil::run_cli("record " + testutil::shell_quote(testutil::stories260k()) + " --data " + (d / "p.jsonl") + " -o " + (d / "cli.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  headscope::RunReader gui(d / "gui.h5"), cli(d / "cli.h5");
  CHECK(gui.status() == "complete");
  REQUIRE(gui.n_items() == 2);
  CHECK(gui.stat_names() == cli.stat_names());
  for (int64_t i = 0; i < 2; ++i) {
    CHECK(gui.text(i) == cli.text(i));
    CHECK(gui.meta(i) == cli.meta(i));
    CHECK(gui.tokens(i) == cli.tokens(i));
    for (const std::string& s : cli.stat_names()) CHECK(at::equal(gui.stat(s, i), cli.stat(s, i)));
  }
}

namespace {
// Pixel checks of a heat map drawn by the GUI: the cell centres' colours against the colour map at the values the
// test reads from the run file itself, on the [lo, hi] the test computes from those values.
int check_cells(const Png& png, const nlohmann::json& lay, const std::vector<std::vector<double>>& values, double lo, double hi) {
  int checked = 0;
  for (size_t r = 0; r < values.size(); ++r)
    for (size_t c = 0; c < values[r].size(); ++c) {
      const int x = static_cast<int>(lay["x0"].get<double>() + (c + 0.5) * lay["cell_w"].get<double>());
      const int y = static_cast<int>(lay["y0"].get<double>() + (r + 0.5) * lay["cell_h"].get<double>());
      const double v = values[r][c];
      const std::array<int, 3> want = std::isnan(v) ? std::array<int, 3>{60, 60, 66} : expected_colour((v - lo) / (hi - lo));
      auto got = png.at(x, y);
      INFO("cell " << r << "," << c << " value " << v << " pixel (" << x << "," << y << ")");
      for (int k = 0; k < 3; ++k) CHECK(std::abs(got[k] - want[k]) <= 1);
      ++checked;
    }
  return checked;
}

bool valid_figure(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".pdf") return std::system(("pdfinfo " + path + " 2>/dev/null | grep -q '^Pages: *1$'").c_str()) == 0;
  if (ext == ".svg") return std::system(("xmllint --noout " + path + " && grep -q '<path\\|<rect' " + path).c_str()) == 0;
  Png png(path);
  std::set<int> colours;
  for (size_t i = 0; i < png.px.size(); i += 3) colours.insert(png.px[i] << 16 | png.px[i + 1] << 8 | png.px[i + 2]);
  return png.w > 100 && png.h > 100 && colours.size() > 10;
}
}  // namespace

TEST_CASE("headscope-gui opens a probe run file: the sink view and a probe ranking have the file's values, and figures export", "[gui][store]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  const std::string run = d / "probes.h5";
  auto r = testutil::run_cli("score " + testutil::shell_quote(testutil::stories260k()) + " --probe induction,sinks,preplan,secondary --sink-input random "
                             "--prompt " + testutil::shell_quote(kPrompt) + " --response 16 -o " + run);
  INFO(r.err);
  REQUIRE(r.code == 0);
  headscope::RunReader file(run);
  int64_t item = -1;
  for (int64_t i = 0; i < file.n_items() && item < 0; ++i)
    if (file.meta(i).value("probe", "") == "secondary") item = i;
  REQUIRE(item >= 0);
  std::string script = "open " + testutil::stories260k() + "\nprompt " + kPrompt + "\nrun\nwait\nselect 2.6\nwait\nhover 12\n"
                       "open-run " + run + "\nitem " + std::to_string(item) + "\nshow view:sinks\nframes 3\nscreenshot sinks\n";
  std::vector<std::string> figures;
  for (const char* ext : {"png", "svg", "pdf"}) {
    for (const char* what : {"grid", "attention", "tokens"}) figures.push_back("fig-" + std::string(what) + "." + ext), script += "export " + std::string(what) + " " + (d / figures.back()) + "\n";
    figures.push_back(std::string("fig-sinks.") + ext), script += "export run " + (d / figures.back()) + "\n";
  }
  script += "item -1\nshow view:timeline\n";
  for (const char* ext : {"png", "svg", "pdf"}) figures.push_back(std::string("fig-timeline.") + ext), script += "export run " + (d / figures.back()) + "\n";
  script += "show probe:induction:induction\nframes 3\nscreenshot ranking\n";
  for (const char* ext : {"png", "svg", "pdf"}) figures.push_back(std::string("fig-induction.") + ext), script += "export run " + (d / figures.back()) + "\n";
  const int rc = run_gui(d, script);
  INFO(testutil::slurp(d / "log"));
  REQUIRE(rc == 0);

  // The sink view: s_l(j) per layer and token as the secondary probe stored it.
  auto lay = testutil::load_json(d / "sinks.json")["runs"];
  REQUIRE(lay["what"] == "view:sinks");
  REQUIRE(lay["error"] == "");
  const int64_t L = 5, T = static_cast<int64_t>(file.tokens(item).size());
  std::vector<std::vector<double>> score(L);
  double lo = 1e300, hi = -1e300;
  for (int64_t l = 0; l < L; ++l) {
    at::Tensor s = file.array("probes/secondary/tokens/sink_score_l" + std::to_string(l), item).to(at::kDouble);
    for (int64_t t = 0; t < T; ++t) {
      score[l].push_back(s[t].item<double>());
      if (std::isfinite(score[l].back())) lo = std::min(lo, score[l].back()), hi = std::max(hi, score[l].back());
    }
  }
  REQUIRE(hi > lo);
  CHECK(lay["sinks"]["lo"].get<double>() == Approx(lo));
  CHECK(lay["sinks"]["hi"].get<double>() == Approx(hi));
  CHECK(check_cells(Png(d / "sinks.png"), lay["sinks"], score, lo, hi) == L * T);

  // The induction ranking: the top 20 heads of the file's combined score, best first, each bar in its value's colour.
  auto rk = testutil::load_json(d / "ranking.json")["runs"]["ranking"];
  at::Tensor ind = file.probe("induction").scores.at("induction");
  std::vector<std::tuple<double, int, int>> heads;
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < 8; ++h) heads.push_back({ind[l][h].item<double>(), l, h});
  std::stable_sort(heads.begin(), heads.end(), [](auto& a, auto& b) { return std::get<0>(a) > std::get<0>(b); });
  heads.resize(20);
  REQUIRE(rk["bars"].size() == 20);
  const double rlo = std::get<0>(heads.back()), rhi = std::get<0>(heads.front());
  Png png(d / "ranking.png");
  for (size_t i = 0; i < 20; ++i) {
    auto& b = rk["bars"][i];
    INFO("bar " << i);
    CHECK(b["layer"] == std::get<1>(heads[i]));
    CHECK(b["head"] == std::get<2>(heads[i]));
    CHECK(b["value"].get<double>() == std::get<0>(heads[i]));
    if (b["w"].get<double>() < 3) continue;
    auto got = png.at(static_cast<int>(b["x"].get<double>() + b["w"].get<double>() / 2), static_cast<int>(b["y"].get<double>() + b["h"].get<double>() / 2));
    auto want = expected_colour((std::get<0>(heads[i]) - rlo) / (rhi - rlo));
    for (int k = 0; k < 3; ++k) CHECK(std::abs(got[k] - want[k]) <= 1);
  }
  // Every export is a valid one-page PDF, well-formed vector SVG, or a non-blank PNG.
  for (const std::string& f : figures) {
    INFO(f);
    CHECK(valid_figure(d / f));
  }
}

TEST_CASE("headscope-gui watches a run file another process is writing, and compares two runs as headscope compare does", "[gui][store]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  {
    std::ofstream p(d / "many.jsonl");
    for (int i = 0; i < 300; ++i) p << "{\"text\": \"Once upon a time there was a cat number " << i << " who liked to play in the park.\"}\n";
  }
  const std::string run = d / "live.h5", model = testutil::shell_quote(testutil::stories260k());
  // The writer: another process, in the background.
  REQUIRE(std::system((std::string(HEADSCOPE_CLI) + " record " + model + " --data " + (d / "many.jsonl") + " --part-items 10 -o " + run +
                       " > " + (d / "writer.log") + " 2>&1 &").c_str()) == 0);
  for (int i = 0; i < 600 && !std::filesystem::exists(run); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // Two small runs to compare: clean, and with head 3.5 zeroed.
  std::ofstream(d / "few.jsonl") << "{\"text\": \"Once upon a time there was a cat.\"}\n{\"text\": \"Lily saw a big bird in the tree.\"}\n";
  REQUIRE(testutil::run_cli("record " + model + " --data " + (d / "few.jsonl") + " -o " + (d / "clean.h5")).code == 0);
  REQUIRE(testutil::run_cli("record " + model + " --data " + (d / "few.jsonl") + " --heads 3.5 --mode zero -o " + (d / "ablated.h5")).code == 0);
  const int rc = run_gui(d, "open-run " + run + "\nframes 2\nscreenshot early\nwait-run 120\nscreenshot late\ncompare " + (d / "clean.h5") + " " +
                                (d / "ablated.h5") + "\nframes 3\nscreenshot compare\n");
  INFO(testutil::slurp(d / "log") << testutil::slurp(d / "writer.log"));
  REQUIRE(rc == 0);
  auto early = testutil::load_json(d / "early.json")["runs"], late = testutil::load_json(d / "late.json")["runs"];
  CHECK(early["status"] == "recording");
  CHECK(early["recorded"].get<int>() < 300);
  CHECK(late["status"] == "complete");
  CHECK(late["recorded"] == 300);
  CHECK(late["error"] == "");
  // The comparison's most-changed heads are the ones `headscope compare --json` ranks first, with the same numbers.
  auto cmp = testutil::load_json(d / "compare.json")["runs"]["compare"];
  auto r = testutil::run_cli("compare " + (d / "clean.h5") + " " + (d / "ablated.h5") + " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto cli = nlohmann::json::parse(r.out);
  nlohmann::json entry;
  for (auto& e : cli["entries"])
    if (e["name"] == cmp["entry"]) entry = e;
  REQUIRE(!entry.is_null());
  REQUIRE(cmp["top"].size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(cmp["top"][i]["layer"] == entry["ranked"][i]["layer"]);
    CHECK(cmp["top"][i]["head"] == entry["ranked"][i]["head_index"]);
    CHECK(cmp["top"][i]["diff"].get<double>() == Approx(entry["ranked"][i]["diff"].get<double>()));
  }
}

TEST_CASE("headscope-gui draws the planted two-step circuit: one node, the mover, a name mover with effect 1", "[gui][planted]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  testutil::TempDir d;
  const std::string model = planted::write_mover_model(d / "mover"), run = d / "circuit.h5";
  std::ofstream(d / "pairs.jsonl") << R"({"clean": "xAByA.", "corrupt": "xAByC.", "correct": "A", "incorrect": "B"})" << "\n"
                                   << R"({"clean": "xBAyB.", "corrupt": "xBAyD.", "correct": "B", "incorrect": "A"})" << "\n";
  auto r = testutil::run_cli("circuit " + model + " --task " + (d / "pairs.jsonl") + " -o " + run);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const int rc = run_gui(d, "open-run " + run + "\nshow view:circuit\nframes 3\nscreenshot circuit\n");
  INFO(testutil::slurp(d / "log"));
  REQUIRE(rc == 0);
  auto nodes = testutil::load_json(d / "circuit.json")["runs"]["circuit"];
  // The planted mechanism (tests/planted_model.h): the layer-1 mover carries the whole logit difference.
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0]["head"] == "1." + std::to_string(planted::mover::kMoverHead));
  CHECK(nodes[0]["class"] == "name mover");
  CHECK(std::fabs(nodes[0]["effect"].get<double>() - 1.0) < 1e-6);
  // Drawn where the record says, in the name movers' colour (230, 85, 13).
  Png png(d / "circuit.png");
  auto px = png.at(static_cast<int>(nodes[0]["x"].get<double>()), static_cast<int>(nodes[0]["y"].get<double>()));
  CHECK(std::abs(px[0] - 230) <= 1);
  CHECK(std::abs(px[1] - 85) <= 1);
  CHECK(std::abs(px[2] - 13) <= 1);
}
