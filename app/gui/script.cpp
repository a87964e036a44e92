// The scripted mode of headscope-gui (see script.h).
#include "app/gui/script.h"

#include <GLFW/glfw3.h>
#include <GL/gl.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "app/gui/app.h"
#include "app/gui/run_panels.h"
#include "core/error.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace headscope::gui {
namespace {

// name -> (min args, max args; -1: the rest of the line is one argument)
const std::map<std::string, std::pair<int, int>> kActions = {
    {"open", {1, -1}}, {"prompt", {0, -1}}, {"prompt-file", {1, -1}}, {"run", {0, 0}}, {"wait", {0, 1}}, {"wait-run", {0, 1}},
    {"select", {1, 1}}, {"hover", {1, 1}}, {"stat", {1, 1}}, {"scale", {1, 1}}, {"colormap", {1, 1}},
    {"zoom", {1, 1}}, {"pan", {2, 2}}, {"frames", {1, 1}}, {"screenshot", {1, 1}}, {"key", {1, 1}},
    {"search", {1, -1}}, {"heads", {1, 1}}, {"mode", {1, 1}}, {"targets", {1, -1}}, {"mean-data", {1, -1}},
    {"steer-vector", {1, -1}}, {"intervene", {0, 0}}, {"record", {2, 2}}, {"open-run", {1, -1}}, {"compare", {2, 2}},
    {"tab", {1, 1}}, {"show", {1, 1}}, {"item", {1, 1}}, {"export", {2, 2}}, {"mouse", {2, 2}}, {"click", {2, 2}},
};

bool parse_int(const std::string& s, int& v) {
  size_t used = 0;
  try {
    v = std::stoi(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size();
}

bool parse_float(const std::string& s, float& v) {
  size_t used = 0;
  try {
    v = std::stof(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size() && std::isfinite(v);
}

bool parse_head(const std::string& s, int& l, int& h) {
  const size_t dot = s.find('.');
  return dot != std::string::npos && parse_int(s.substr(0, dot), l) && parse_int(s.substr(dot + 1), h) && l >= 0 && h >= 0;
}

std::string expand_home(const std::string& p) {
  const char* home = std::getenv("HOME");
  return p.rfind("~/", 0) == 0 && home ? std::string(home) + p.substr(1) : p;
}

bool save_screenshot(GLFWwindow* win, const std::string& path) {
  int w, h;
  glfwGetFramebufferSize(win, &w, &h);
  std::vector<unsigned char> px(static_cast<size_t>(w) * h * 4);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, px.data());
  std::vector<unsigned char> flipped(px.size());
  for (int y = 0; y < h; ++y) std::copy_n(&px[static_cast<size_t>(h - 1 - y) * w * 4], w * 4, &flipped[static_cast<size_t>(y) * w * 4]);
  return stbi_write_png(path.c_str(), w, h, 4, flipped.data(), w * 4) != 0;
}

}  // namespace

Script::Script(const std::string& path, const std::string& shot_dir) : dir_(shot_dir) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read the script " + path);
  std::error_code ec;
  if (!fs::is_directory(shot_dir, ec)) throw Error("the screenshot folder " + shot_dir + " does not exist");
  std::set<std::string> written;  // files earlier actions write (a run file `record` makes, then opens)
  int n = 0;
  for (std::string text; std::getline(in, text);) {
    ++n;
    std::istringstream ls(text);
    ScriptAction a;
    a.line = n;
    if (!(ls >> a.cmd) || a.cmd[0] == '#') continue;
    auto it = kActions.find(a.cmd);
    auto bad = [&](const std::string& why) { throw Error("script line " + std::to_string(n) + " (" + a.cmd + "): " + why); };
    if (it == kActions.end()) {
      std::string known;
      for (auto& [k, v] : kActions) known += (known.empty() ? "" : ", ") + k;
      bad("unknown action (known: " + known + ")");
    }
    const auto [lo, hi] = it->second;
    if (hi < 0) {
      std::string rest;
      std::getline(ls, rest);
      rest.erase(0, rest.find_first_not_of(" \t"));
      if (!rest.empty() || lo > 0) a.args.push_back(rest);
      if (lo > 0 && rest.empty()) bad("needs an argument");
    } else {
      for (std::string w; ls >> w;) a.args.push_back(w);
      if (static_cast<int>(a.args.size()) < lo || static_cast<int>(a.args.size()) > hi)
        bad("takes " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) + " arguments, not " + std::to_string(a.args.size()));
    }
    const std::string arg = a.args.empty() ? "" : a.args[0];
    int i, l, h;
    float f;
    if (a.cmd == "open" || a.cmd == "prompt-file" || a.cmd == "mean-data" || a.cmd == "steer-vector" || a.cmd == "open-run") {
      a.args[0] = expand_home(arg);
      if (!fs::exists(a.args[0], ec) && !written.count(a.args[0])) bad(a.args[0] + " does not exist");
    } else if (a.cmd == "compare") {
      for (auto& p : a.args)
        if (p = expand_home(p); !fs::exists(p, ec) && !written.count(p)) bad(p + " does not exist");
    } else if (a.cmd == "record") {
      a.args[0] = expand_home(a.args[0]), a.args[1] = expand_home(a.args[1]);
      if (!fs::exists(a.args[0], ec)) bad(a.args[0] + " does not exist");
      written.insert(a.args[1]);
    } else if (a.cmd == "wait" || a.cmd == "wait-run") {
      if (!a.args.empty() && (!parse_float(arg, f) || f <= 0)) bad("the timeout must be a number of seconds > 0, not '" + arg + "'");
    } else if (a.cmd == "select") {
      if (!parse_head(arg, l, h)) bad("needs a head as LAYER.HEAD (e.g. 3.5), not '" + arg + "'");
    } else if (a.cmd == "heads") {
      std::stringstream hs(arg);
      for (std::string x; std::getline(hs, x, ',');)
        if (!parse_head(x, l, h)) bad("needs heads as L.H,L.H, not '" + arg + "'");
    } else if (a.cmd == "hover" || a.cmd == "item") {
      if (!parse_int(arg, i) || i < -1) bad("needs a token or item index (>= 0, or -1 for none), not '" + arg + "'");
    } else if (a.cmd == "frames") {
      if (!parse_int(arg, i) || i < 0 || i > 100000) bad("needs a number of frames (0 to 100000), not '" + arg + "'");
    } else if (a.cmd == "zoom") {
      if (!parse_float(arg, f) || f < 1 || f > 400) bad("needs a zoom factor between 1 and 400, not '" + arg + "'");
    } else if (a.cmd == "pan" || a.cmd == "mouse" || a.cmd == "click") {
      for (auto& x : a.args)
        if (!parse_float(x, f)) bad("needs two numbers (pixels), not '" + x + "'");
    } else if (a.cmd == "stat") {
      const int id = head_stat_find(arg.c_str());
      if (id < 0 || !head_stat_is_row_sum(id)) bad("unknown statistic '" + arg + "' (entropy, max_prob, sink_mass, mean_dist, waad, prev_mass)");
    } else if (a.cmd == "scale") {
      if (arg != "fixed" && arg != "run" && arg != "log") bad("needs fixed, run or log, not '" + arg + "'");
    } else if (a.cmd == "colormap") {
      if (arg != "viridis" && arg != "cividis") bad("needs viridis or cividis, not '" + arg + "'");
    } else if (a.cmd == "key") {
      static const std::set<std::string> keys = {"up", "down", "left", "right", "ctrl+enter", "/", "escape"};
      if (!keys.count(arg)) bad("unknown key '" + arg + "' (up, down, left, right, ctrl+enter, /, escape)");
    } else if (a.cmd == "mode") {
      const std::string m = arg.rfind("scale=", 0) == 0 ? "scale" : arg;
      if (m == "scale" && (arg.size() < 7 || !parse_float(arg.substr(6), f))) bad("needs scale=F with a number F, not '" + arg + "'");
      if (std::find(App::kModes, App::kModes + App::kModeCount, m) == App::kModes + App::kModeCount)
        bad("unknown mode '" + arg + "' (zero, mean, scale=F, uniform, act, steer)");
    } else if (a.cmd == "tab") {
      if (arg != "attention" && arg != "run" && arg != "compare") bad("needs attention, run or compare, not '" + arg + "'");
    } else if (a.cmd == "show") {
      if (arg.find(':') == std::string::npos) bad("needs stat:NAME, probe:NAME[:SCORE] or view:sinks|timeline|circuit|binding|retrieval, not '" + arg + "'");
    } else if (a.cmd == "screenshot") {
      if (arg.find('/') != std::string::npos) bad("takes a name, not a path (the files go into the screenshot folder)");
    } else if (a.cmd == "export") {
      static const std::set<std::string> what = {"grid", "attention", "tokens", "run", "compare"};
      if (!what.count(arg)) bad("exports grid, attention, tokens, run or compare, not '" + arg + "'");
      a.args[1] = expand_home(a.args[1]);
      const std::string ext = fs::path(a.args[1]).extension().string();
      if (ext != ".png" && ext != ".svg" && ext != ".pdf") bad("the figure must be .png, .svg or .pdf, not '" + a.args[1] + "'");
      const fs::path parent = fs::path(a.args[1]).parent_path();
      if (!parent.empty() && !fs::is_directory(parent, ec)) bad("the folder " + parent.string() + " does not exist");
    }
    actions_.push_back(std::move(a));
  }
}

void Script::fail(const ScriptAction& a, const std::string& why) {
  std::fprintf(stderr, "headscope-gui: script line %d (%s): %s\n", a.line, a.cmd.c_str(), why.c_str());
  failed = true;
}

void Script::run(App& app, GLFWwindow* win, const ScriptAction& a) {
  const std::string arg = a.args.empty() ? "" : a.args[0];
  const std::string& c = a.cmd;
  if (c == "open") app.open(arg), waiting_ = true;
  else if (c == "prompt") app.prompt = arg;
  else if (c == "prompt-file") {
    std::ifstream f(arg);
    std::stringstream ss;
    ss << f.rdbuf();
    app.prompt = ss.str();
  } else if (c == "run") app.request_run();
  else if (c == "record") app.worker.record(a.args[0], a.args[1]), waiting_ = true;
  else if (c == "wait") waiting_ = true;
  else if (c == "wait-run") waiting_ = waiting_run_ = true;
  else if (c == "select") {
    int l, h;
    parse_head(arg, l, h);
    app.select(l, h);
    select_t0_ = std::chrono::steady_clock::now(), select_pending_ = true;
  } else if (c == "hover") app.hover(std::stoi(arg));
  else if (c == "stat") app.stat = head_stat_find(arg.c_str());
  else if (c == "scale") app.scale_mode = arg == "fixed" ? 0 : arg == "run" ? 1 : 2;
  else if (c == "colormap") app.settings.colormap = arg == "cividis" ? 1 : 0;
  else if (c == "zoom") app.zoom = std::stof(arg);
  else if (c == "pan") app.pan_x = std::stof(a.args[0]), app.pan_y = std::stof(a.args[1]);
  else if (c == "frames") wait_frames_ = std::stoi(arg);
  else if (c == "key") app.on_key(arg);
  else if (c == "search") app.search = arg, app.search_hit = -1, app.find_token(false);
  else if (c == "heads") {
    app.chosen.clear();
    std::stringstream hs(arg);
    for (std::string x; std::getline(hs, x, ',');) {
      int l, h;
      parse_head(x, l, h);
      auto m = app.worker.model();
      if (m && (l >= m->config().n_layers || h >= m->config().n_heads)) throw Error("head " + x + " does not exist");
      app.chosen.push_back({l, h});
    }
  } else if (c == "mode") {
    const std::string m = arg.rfind("scale=", 0) == 0 ? "scale" : arg;
    app.iv_mode = static_cast<int>(std::find(App::kModes, App::kModes + App::kModeCount, m) - App::kModes);
    if (m == "scale") app.iv_factor = std::stof(arg.substr(6));
  } else if (c == "targets") app.iv_targets = arg;
  else if (c == "mean-data") app.iv_mean_data = arg;
  else if (c == "steer-vector") app.iv_steer_vector = arg;
  else if (c == "intervene") app.run_intervention(), waiting_ = true;
  else if (c == "open-run") app.runs->open_run(arg), app.runs->tab_request = 1, waiting_ = true;
  else if (c == "compare") app.runs->open_compare(a.args[0], a.args[1]), app.runs->tab_request = 2, waiting_ = true;
  else if (c == "tab") app.runs->tab_request = arg == "attention" ? 0 : arg == "run" ? 1 : 2;
  else if (c == "show") app.runs->show(arg), waiting_ = true;
  else if (c == "item") app.runs->set_item(std::stoi(arg)), waiting_ = true;
  else if (c == "export") app.export_figure(arg, a.args[1]), waiting_ = true;
  else if (c == "mouse" || c == "click") mouse_x = std::stof(a.args[0]), mouse_y = std::stof(a.args[1]), click = c == "click";
  else if (c == "screenshot") {
    const std::string path = dir_ + "/" + arg + ".png";
    took_screenshot_ = true;
    if (!save_screenshot(win, path)) return fail(a, "cannot write " + path);
    std::ofstream(dir_ + "/" + arg + ".json") << app.record().dump(2);
  }
  if (waiting_) {
    float secs = 600;
    if ((c == "wait" || c == "wait-run") && !a.args.empty()) secs = std::stof(arg);
    wait_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
  }
}

bool Script::step(App& app, GLFWwindow* win) {
  if (failed) return false;
  if (wait_frames_ > 0) return --wait_frames_, true;
  const ScriptAction* cur = next_ > 0 ? &actions_[next_ - 1] : nullptr;
  if (waiting_) {
    const json runs = app.runs->record();
    // wait-run: until the open run file (re-read every 2 s while another process writes it) is complete
    const bool busy = app.worker.busy() || runs.value("loading", false) || (waiting_run_ && runs.value("status", "") != "complete");
    if (busy) {
      if (std::chrono::steady_clock::now() > wait_until_) return fail(*cur, "timed out waiting for the worker"), false;
      return true;
    }
    waiting_ = waiting_run_ = false;
    wait_frames_ = 3;  // let the new result reach the screen
    return true;
  }
  if (next_ >= actions_.size()) return false;
  const ScriptAction& a = actions_[next_++];
  try {
    run(app, win, a);
  } catch (const std::exception& e) {
    fail(a, e.what());
  }
  return !failed;
}

void Script::frame_done(App& app, double ms) {
  if (select_pending_ && app.pattern && app.pattern->layer == app.sel_layer && app.pattern->head == app.sel_head && app.pattern->run == app.shown.get()) {
    select_ms_.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - select_t0_).count());
    select_pending_ = false;
  }
  if (!took_screenshot_) {
    if (app.worker.busy()) busy_ms_.push_back(ms);
    all_ms_.push_back(ms);
  }
  took_screenshot_ = false;
  click = false;
}

void Script::write_report() const {
  auto summary = [](std::vector<double> f) {
    std::sort(f.begin(), f.end());
    auto q = [&](double p) { return f.empty() ? 0.0 : f[std::min(f.size() - 1, static_cast<size_t>(p * f.size()))]; };
    return json{{"frames", f.size()}, {"median_ms", q(0.5)}, {"p99_ms", q(0.99)}, {"worst_ms", f.empty() ? 0 : f.back()}};
  };
  // Frames while the worker was loading or running, all frames (a new result's first frames included), and the
  // time from each `select` to its pattern on screen.
  json j = {{"while_busy", summary(busy_ms_)}, {"all", summary(all_ms_)}, {"select_to_pattern_ms", select_ms_}};
  std::ofstream(dir_ + "/frame_times.json") << j.dump(2);
}

}  // namespace headscope::gui
