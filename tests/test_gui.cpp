// headscope-gui end to end: starts the real app under xvfb-run on stories260K, drives it with a script, and checks
// the screenshots against independent expectations: a head-grid cell has the colour the colour map gives the value
// the CLI's --json reports for that head; the attention view's first cell (query 0 can only attend to itself:
// probability 1) has the colour map's top colour; the screenshots are not blank. The GUI's "record" writes the run
// file the CLI writes for the same prompts. Skips only without xvfb-run.
#include <stb/stb_image.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

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

TEST_CASE("headscope-gui draws the head grid, the attention view and the chips under Xvfb", "[gui]") {
  if (!have_xvfb()) HS_SKIP("xvfb-run is not installed (the README's setup command installs it)");
  const std::string prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
  testutil::TempDir d;
  std::ofstream(d / "script.txt") << "open " << testutil::stories260k() << "\nprompt " << prompt
                                  << "\nrun\nwait\nselect 3.5\nwait\nhover 10\nframes 3\nscreenshot grid\n"
                                     "stat max_prob\nframes 3\nscreenshot maxprob\n";
  const std::string cmd = "HOME=" + d.path.string() + " xvfb-run -a -s '-screen 0 1600x900x24' " + HEADSCOPE_GUI +
                          " --script " + (d / "script.txt") + " --screenshot-dir " + d.path.string() + " > " +
                          (d / "log") + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);

  // The CLI's numbers for the same prompt, computed independently of the GUI process.
  auto r = testutil::run_cli("attn " + testutil::shell_quote(testutil::stories260k()) + " --prompt " +
                             testutil::shell_quote(prompt) + " --stats --json");
  REQUIRE(r.code == 0);
  auto table = nlohmann::json::parse(r.out)["heads_table"];
  for (const char* shot : {"grid", "maxprob"}) {
    const std::string stat = std::string(shot) == "grid" ? "entropy" : "max_prob";
    Png png(d / (std::string(shot) + ".png"));
    auto layout = testutil::load_json(d / (std::string(shot) + ".json"));
    REQUIRE(png.w == 1600);
    REQUIRE(layout["grid"]["stat"] == stat);
    double lo = 1e30, hi = -1e30;
    for (auto& e : table) lo = std::min(lo, e[stat].get<double>()), hi = std::max(hi, e[stat].get<double>());
    auto& g = layout["grid"];
    int checked = 0;
    for (auto& e : table) {
      const int l = e["layer"], h = e["head"];
      if (l == 3 && h == 5) continue;  // the selected cell has a red outline; its centre is still checked below
      const int x = static_cast<int>(g["x0"].get<double>() + (h + 0.5) * g["cell_w"].get<double>());
      const int y = static_cast<int>(g["y0"].get<double>() + (l + 0.5) * g["cell_h"].get<double>());
      auto want = expected_colour((e[stat].get<double>() - lo) / (hi - lo));
      auto got = png.at(x, y);
      INFO(shot << " head " << l << "." << h << " value " << e[stat] << " pixel (" << x << "," << y << ")");
      for (int c = 0; c < 3; ++c) CHECK(std::abs(got[c] - want[c]) <= 1);
      ++checked;
    }
    CHECK(checked == 5 * 8 - 1);
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
