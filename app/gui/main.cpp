// headscope-gui: the desktop app. Open a model, type a prompt, see every head: a layers x heads grid of a kernel
// statistic, the selected head's attention pattern (zoom, pan, only the visible window drawn), and the prompt's
// tokens coloured by that head's attention from the hovered token. Thin: all model work goes through the library
// on a worker thread (worker.h). `--script FILE --screenshot-dir DIR` drives it for tests and demos.
#include <GLFW/glfw3.h>
#include <GL/gl.h>
#include <imgui.h>
#include <imgui_internal.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/colormap.h"
#include "app/gui/worker.h"
#include "core/text.h"

namespace fs = std::filesystem;
using namespace headscope;
using namespace headscope::gui;
using json = nlohmann::json;

namespace {

// Settings kept in the same ini file as ImGui's window layout (~/.config/headscope/imgui.ini), in a
// [Headscope][Settings] section: the last model and the colour map.
struct Settings {
  std::string last_model;
  int colormap = 0;  // 0 viridis, 1 cividis
  static fs::path dir() {
    const char* x = std::getenv("XDG_CONFIG_HOME");
    const char* h = std::getenv("HOME");
    return x && *x ? fs::path(x) / "headscope" : fs::path(h ? h : ".") / ".config" / "headscope";
  }
  void save() const { ImGui::MarkIniSettingsDirty(); }
  // Registers the ini section; call after ImGui::CreateContext and before the ini file is read.
  void install() {
    ImGuiSettingsHandler h;
    h.TypeName = "Headscope";
    h.TypeHash = ImHashStr("Headscope");
    h.UserData = this;
    h.ReadOpenFn = [](ImGuiContext*, ImGuiSettingsHandler*, const char*) -> void* { return reinterpret_cast<void*>(1); };
    h.ReadLineFn = [](ImGuiContext*, ImGuiSettingsHandler* hh, void*, const char* line) {
      auto* st = static_cast<Settings*>(hh->UserData);
      int cm;
      if (std::sscanf(line, "Colormap=%d", &cm) == 1) st->colormap = cm == 1 ? 1 : 0;
      else if (std::strncmp(line, "LastModel=", 10) == 0) st->last_model = line + 10;
    };
    h.WriteAllFn = [](ImGuiContext*, ImGuiSettingsHandler* hh, ImGuiTextBuffer* buf) {
      auto* st = static_cast<Settings*>(hh->UserData);
      buf->appendf("[Headscope][Settings]\nLastModel=%s\nColormap=%d\n\n", st->last_model.c_str(), st->colormap);
    };
    ImGui::GetCurrentContext()->SettingsHandlers.push_back(h);
  }
};

// What the scripted mode records: where each grid cell was drawn and with which value and colour.
struct GridLayout {
  float x0 = 0, y0 = 0, cell_w = 0, cell_h = 0;
  int layers = 0, heads = 0;
  float lo = 0, hi = 1;
  std::string stat;
};

struct App {
  Worker worker;
  Settings settings;
  char prompt[1 << 16] = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
  char path_buf[1024] = "";
  int stat = kStatEntropy;  // a per-query statistic of the table (core/head_stats.h)
  int sel_layer = 0, sel_head = 0;
  int hover_token = -1, forced_hover = -1;
  float zoom = 1.f, pan_x = 0.f, pan_y = 0.f;
  bool show_open = false;
  char record_prompts[1024] = "", record_output[1024] = "run.h5";
  GridLayout grid;
  struct { float x0 = 0, y0 = 0, cell = 0; int layer = -1, head = -1, tokens = 0; } view;  // attention view geometry
  GLuint pattern_tex = 0;
  std::tuple<const RunResult*, float, float, float, int, int, int> pattern_key{};
  std::shared_ptr<const RunResult> shown;  // the result on screen (the previous one while a new run is busy)

  void request_run() { worker.run(prompt, sel_layer, sel_head); }

  void draw_model_panel() {
    auto m = worker.model();
    ImGui::Begin("Model");
    if (ImGui::Button("Open...")) show_open = true;
    ImGui::SameLine();
    ImGui::TextUnformatted(m ? worker.model_path().c_str() : "no model loaded");
    if (m) {
      const ModelConfig& c = m->config();
      ImGui::Text("family %s (%s)", c.family_name().c_str(), c.architecture.c_str());
      ImGui::Text("layers %lld  heads %lld  kv-heads %lld", (long long)c.n_layers, (long long)c.n_heads, (long long)c.n_kv_heads);
      ImGui::Text("d_model %lld  context %lld  dtype %s", (long long)c.d_model, (long long)c.context,
                  m->checkpoint().dominant_type().c_str());
    }
    ImGui::Separator();
    ImGui::InputTextMultiline("##prompt", prompt, sizeof prompt, ImVec2(-1, 90));
    if (ImGui::Button("Run") && m) request_run();
    if (worker.busy()) {
      ImGui::SameLine();
      ImGui::ProgressBar(worker.progress(), ImVec2(160, 0), worker.status().c_str());
      ImGui::SameLine();
      if (ImGui::Button("Cancel")) worker.cancel();
    }
    if (ImGui::CollapsingHeader("Record a prompt set")) {
      ImGui::InputText("prompt file", record_prompts, sizeof record_prompts);
      ImGui::InputText("run file", record_output, sizeof record_output);
      if (ImGui::Button("Record") && m && !worker.busy()) worker.record(record_prompts, record_output);
    }
    std::string err = worker.error(), note = worker.note();
    if (!err.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", err.c_str());
    if (!note.empty()) ImGui::TextUnformatted(note.c_str());
    if (shown) {
      ImGui::Separator();
      draw_chips();
      ImGui::Separator();
      ImGui::Text("next token (forward %.3f s, %zu tokens)", shown->seconds, shown->ids.size());
      for (size_t i = 0; i < shown->next.size(); ++i)
        ImGui::Text("%6.3f  %s", shown->next[i].prob, escape_control(shown->next[i].text).c_str());
    }
    ImGui::End();
  }


  // Token chips, wrapped; coloured by the selected head's attention from the hovered token.
  void draw_chips() {
    const RunResult& r = *shown;
    const int T = static_cast<int>(r.tokens.size());
    const int from = forced_hover >= 0 ? forced_hover : hover_token;
    hover_token = -1;
    ImGui::TextUnformatted(from >= 0 ? "tokens (coloured by attention from the hovered token)" : "tokens (hover one)");
    ImGui::BeginChild("chips", ImVec2(0, std::min(320.f, ImGui::GetContentRegionAvail().y * 0.6f)), false);
    const float width = ImGui::GetContentRegionAvail().x;
    float x = 0;
    for (int i = 0; i < T; ++i) {
      std::string label = escape_control(r.tokens[i]) + "##" + std::to_string(i);
      ImVec2 sz = ImGui::CalcTextSize(escape_control(r.tokens[i]).c_str());
      if (x > 0 && x + sz.x + 12 < width) ImGui::SameLine(0, 2);
      else x = 0;
      ImVec4 col(0.25f, 0.25f, 0.3f, 1);
      if (from >= 0 && from < T && r.pattern_layer >= 0) {
        float p = i <= from ? r.pattern[static_cast<size_t>(from) * T + i] : 0.f;
        float rgb[3];
        colormap_rgb(settings.colormap, p, rgb);
        col = ImVec4(rgb[0], rgb[1], rgb[2], 1);
      }
      ImGui::PushStyleColor(ImGuiCol_Button, col);
      ImGui::SmallButton(label.c_str());
      ImGui::PopStyleColor();
      if (ImGui::IsItemHovered()) hover_token = i;
      if (i == from)  // the token the colours are read from
        ImGui::GetWindowDrawList()->AddRect(ImGui::GetItemRectMin(), ImGui::GetItemRectMax(), IM_COL32(255, 80, 80, 255), 0, 0, 2.f);
      x += sz.x + 12;
    }
    ImGui::EndChild();
  }

  void draw_grid() {
    ImGui::Begin("Heads");
    // The choices: every per-query statistic of the table.
    const char* labels[kStatCount];
    int ids[kStatCount], n = 0, cur = 0;
    for (int id = 0; id < kStatCount; ++id)
      if (head_stat_is_row_sum(id)) {
        if (id == stat) cur = n;
        labels[n] = head_stat(id).label, ids[n++] = id;
      }
    ImGui::SetNextItemWidth(230);
    if (ImGui::Combo("##statistic", &cur, labels, n)) stat = ids[cur];
    ImGui::SameLine();
    ImGui::SetNextItemWidth(110);
    const char* cmaps[] = {"viridis", "cividis"};
    if (ImGui::Combo("##colours", &settings.colormap, cmaps, 2)) settings.save();
    if (!shown) {
      ImGui::TextUnformatted("run a prompt to fill the grid");
      ImGui::End();
      return;
    }
    const HeadSummary& hs = shown->summary;
    const std::vector<float>& v = hs.values[stat];
    const float lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 avail = ImGui::GetContentRegionAvail();
    const float label_w = 28, bar_w = 70;
    const float cell = std::max(4.f, std::min((avail.x - label_w - bar_w) / hs.n_heads, (avail.y - 30) / hs.n_layers));
    ImVec2 o = ImGui::GetCursorScreenPos();
    o.x += label_w, o.y += 16;
    for (int h = 0; h < hs.n_heads; ++h)
      if (cell >= 14 || h % 4 == 0) dl->AddText(ImVec2(o.x + h * cell + 2, o.y - 15), IM_COL32(200, 200, 200, 255), std::to_string(h).c_str());
    int hov_l = -1, hov_h = -1;
    for (int l = 0; l < hs.n_layers; ++l) {
      if (cell >= 12 || l % 4 == 0) dl->AddText(ImVec2(o.x - label_w, o.y + l * cell), IM_COL32(200, 200, 200, 255), std::to_string(l).c_str());
      for (int h = 0; h < hs.n_heads; ++h) {
        float rgb[3];
        colormap_rgb(settings.colormap, hi > lo ? (v[l * hs.n_heads + h] - lo) / (hi - lo) : 0.f, rgb);
        ImVec2 a(o.x + h * cell, o.y + l * cell), b(a.x + cell, a.y + cell);
        dl->AddRectFilled(a, b, ImGui::ColorConvertFloat4ToU32(ImVec4(rgb[0], rgb[1], rgb[2], 1)));
        if (ImGui::IsMouseHoveringRect(a, b)) hov_l = l, hov_h = h;
      }
    }
    ImVec2 sel(o.x + sel_head * cell, o.y + sel_layer * cell);
    dl->AddRect(sel, ImVec2(sel.x + cell, sel.y + cell), IM_COL32(255, 60, 60, 255), 0, 0, 2.f);
    // Colour bar with its range.
    ImVec2 cb(o.x + hs.n_heads * cell + 12, o.y);
    const float cb_h = hs.n_layers * cell;
    for (int i = 0; i < 64; ++i) {
      float rgb[3];
      colormap_rgb(settings.colormap, 1.f - i / 63.f, rgb);
      dl->AddRectFilled(ImVec2(cb.x, cb.y + i * cb_h / 64), ImVec2(cb.x + 14, cb.y + (i + 1) * cb_h / 64 + 1),
                        ImGui::ColorConvertFloat4ToU32(ImVec4(rgb[0], rgb[1], rgb[2], 1)));
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", hi);
    dl->AddText(ImVec2(cb.x + 18, cb.y), IM_COL32(220, 220, 220, 255), buf);
    std::snprintf(buf, sizeof buf, "%.3g", lo);
    dl->AddText(ImVec2(cb.x + 18, cb.y + cb_h - 14), IM_COL32(220, 220, 220, 255), buf);
    ImGui::Dummy(ImVec2(label_w + hs.n_heads * cell + bar_w, 16 + hs.n_layers * cell));
    ImGui::TextUnformatted("x: head, y: layer");
    if (hov_l >= 0) {
      ImGui::BeginTooltip();
      ImGui::Text("head %d.%d\n%s = %.5g", hov_l, hov_h, head_stat(stat).label, hs.at(stat, hov_l, hov_h));
      ImGui::EndTooltip();
      if (ImGui::IsMouseClicked(0)) select(hov_l, hov_h);
    }
    grid = {o.x, o.y, cell, cell, hs.n_layers, hs.n_heads, lo, hi, head_stat(stat).name};
    ImGui::End();
  }

  void select(int l, int h) {
    sel_layer = l, sel_head = h;
    if (worker.model()) request_run();  // the pattern of the new head needs a pass of its own
  }

  // The selected head's pattern: only the cells inside the visible window are drawn.
  void draw_attention() {
    ImGui::Begin("Attention");
    if (!shown || shown->pattern_layer < 0) {
      ImGui::TextUnformatted("select a head and run a prompt");
      ImGui::End();
      return;
    }
    const RunResult& r = *shown;
    const int T = static_cast<int>(r.tokens.size());
    ImGui::Text("head %d.%d  (wheel: zoom, drag: pan)%s", r.pattern_layer, r.pattern_head,
                (r.pattern_layer != sel_layer || r.pattern_head != sel_head) ? "  - updating" : "");
    ImVec2 o = ImGui::GetCursorScreenPos(), avail = ImGui::GetContentRegionAvail();
    const float margin = 90;
    ImVec2 area(std::max(50.f, avail.x - margin), std::max(50.f, avail.y - margin));
    ImGui::InvisibleButton("pattern", ImVec2(area.x + margin, area.y + margin));
    if (ImGui::IsItemHovered()) {
      float wheel = ImGui::GetIO().MouseWheel;
      if (wheel != 0) zoom = std::clamp(zoom * (wheel > 0 ? 1.25f : 0.8f), 1.f, 400.f);
      if (ImGui::IsMouseDragging(0)) pan_x -= ImGui::GetIO().MouseDelta.x, pan_y -= ImGui::GetIO().MouseDelta.y;
    }
    const float cell = std::min(area.x, area.y) / T * zoom;
    pan_x = std::clamp(pan_x, 0.f, std::max(0.f, T * cell - area.x));
    pan_y = std::clamp(pan_y, 0.f, std::max(0.f, T * cell - area.y));
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 g(o.x + margin, o.y + margin);
    view = {g.x - pan_x, g.y - pan_y, cell, r.pattern_layer, r.pattern_head, T};
    const int q0 = std::max(0, static_cast<int>(pan_y / cell)), q1 = std::min(T, static_cast<int>((pan_y + area.y) / cell) + 1);
    const int k0 = std::max(0, static_cast<int>(pan_x / cell)), k1 = std::min(T, static_cast<int>((pan_x + area.x) / cell) + 1);
    const int W = static_cast<int>(area.x), Hh = static_cast<int>(area.y);
    // The visible window is rendered into a texture only when the view changes: each screen pixel shows the
    // largest probability of the cells it covers, so a pattern of thousands of tokens costs one quad per frame.
    const auto key = std::make_tuple(shown.get(), zoom, pan_x, pan_y, settings.colormap, W, Hh);
    if (key != pattern_key) {
      pattern_key = key;
      std::vector<uint32_t> img(static_cast<size_t>(W) * Hh, IM_COL32(20, 20, 26, 255));
      // Zoomed out past the pooling factor: read the block maxima instead of every cell.
      const bool pooled = r.pool > 1 && 1.f / cell >= r.pool;
      const int F = pooled ? r.pool : 1, N = pooled ? r.pooled_n : T;
      const float* M = pooled ? r.pooled.data() : r.pattern.data();
      for (int py = 0; py < Hh; ++py) {
        const int qa = static_cast<int>((pan_y + py) / cell), qb = std::max(qa + 1, static_cast<int>((pan_y + py + 1) / cell));
        if (qa >= T) break;
        for (int px = 0; px < W; ++px) {
          const int ka = static_cast<int>((pan_x + px) / cell), kb = std::max(ka + 1, static_cast<int>((pan_x + px + 1) / cell));
          if (ka >= T || ka > std::min(qb, T) - 1) continue;  // right of the diagonal: never attended
          float p = 0;
          const int sq1 = std::min((std::min(qb, T) + F - 1) / F, N), sk1 = std::min((std::min(kb, T) + F - 1) / F, N);
          for (int q = qa / F; q < sq1; ++q)
            for (int k = ka / F; k < std::min(sk1, q + 1); ++k) p = std::max(p, M[static_cast<size_t>(q) * N + k]);
          float rgb[3];
          colormap_rgb(settings.colormap, p, rgb);
          img[static_cast<size_t>(py) * W + px] = ImGui::ColorConvertFloat4ToU32(ImVec4(rgb[0], rgb[1], rgb[2], 1));
        }
      }
      if (!pattern_tex) glGenTextures(1, &pattern_tex);
      glBindTexture(GL_TEXTURE_2D, pattern_tex);
      glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
      glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
      glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
      glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, W, Hh, 0, GL_RGBA, GL_UNSIGNED_BYTE, img.data());
    }
    dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(pattern_tex)), g, ImVec2(g.x + W, g.y + Hh));
    // Token labels where there is room for them.
    if (cell >= 12) {
      for (int q = q0; q < q1; ++q)
        dl->AddText(ImVec2(o.x, g.y + q * cell - pan_y), IM_COL32(220, 220, 220, 255), escape_control(r.tokens[q]).substr(0, 10).c_str());
      for (int k = k0; k < k1; ++k)
        dl->AddText(ImVec2(g.x + k * cell - pan_x, o.y + (k % 4) * 14), IM_COL32(220, 220, 220, 255),
                    escape_control(r.tokens[k]).substr(0, 8).c_str());
    } else {
      dl->AddText(ImVec2(o.x, g.y), IM_COL32(200, 200, 200, 255), "query");
      dl->AddText(ImVec2(g.x, o.y + 60), IM_COL32(200, 200, 200, 255), "key ->");
    }
    ImGui::End();
  }

  void draw_open_dialog() {
    if (!show_open) return;
    ImGui::OpenPopup("Open model");
    if (ImGui::BeginPopupModal("Open model", &show_open, ImGuiWindowFlags_AlwaysAutoResize)) {
      ImGui::TextUnformatted("A .gguf file, a .safetensors file, or a folder with config.json");
      ImGui::SetNextItemWidth(520);
      ImGui::InputText("##path", path_buf, sizeof path_buf);
      std::error_code ec;
      fs::path dir = fs::is_directory(path_buf, ec) ? fs::path(path_buf) : fs::path(path_buf).parent_path();
      if (dir.empty()) dir = ".";
      ImGui::BeginChild("files", ImVec2(520, 260), true);
      if (ImGui::Selectable("..")) std::snprintf(path_buf, sizeof path_buf, "%s", dir.parent_path().string().c_str());
      for (auto& e : fs::directory_iterator(dir, ec)) {
        std::string name = e.path().filename().string() + (e.is_directory() ? "/" : "");
        if (ImGui::Selectable(name.c_str())) std::snprintf(path_buf, sizeof path_buf, "%s", e.path().string().c_str());
      }
      ImGui::EndChild();
      if (ImGui::Button("Open")) open(path_buf), show_open = false;
      ImGui::EndPopup();
    }
  }

  void open(const std::string& path) {
    worker.load(path);
    settings.last_model = path;
    settings.save();
  }

  void frame() {
    if (auto r = worker.result(); r && r != shown) shown = r;
    ImGuiViewport* vp = ImGui::GetMainViewport();
    const float w = vp->WorkSize.x, h = vp->WorkSize.y;
    ImGui::SetNextWindowPos(ImVec2(0, 0), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.34f, h), ImGuiCond_FirstUseEver);
    draw_model_panel();
    ImGui::SetNextWindowPos(ImVec2(w * 0.34f, 0), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.30f, h), ImGuiCond_FirstUseEver);
    draw_grid();
    ImGui::SetNextWindowPos(ImVec2(w * 0.64f, 0), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.36f, h), ImGuiCond_FirstUseEver);
    draw_attention();
    draw_open_dialog();
  }
};

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

// The scripted mode: one action per line (see README).
struct Script {
  std::vector<std::string> lines;
  size_t next = 0;
  int wait_frames = 0;
  bool waiting_worker = false;
  std::string shot_dir;
  std::vector<double> busy_frame_ms, all_frame_ms;
  bool took_screenshot = false;  // that frame's time is the PNG encoder's, not the UI's: not recorded
  bool failed = false;

  bool step(App& app, GLFWwindow* win) {  // false when finished
    if (wait_frames > 0) return --wait_frames, true;
    if (waiting_worker) {
      if (app.worker.busy()) return true;
      waiting_worker = false;
      wait_frames = 3;  // let the new result reach the screen
      return true;
    }
    if (next >= lines.size()) return false;
    std::istringstream in(lines[next++]);
    std::string cmd, rest;
    in >> cmd;
    std::getline(in, rest);
    rest.erase(0, rest.find_first_not_of(' '));
    if (cmd.empty() || cmd[0] == '#') return true;
    if ((cmd == "open" || cmd == "prompt-file") && rest.rfind("~/", 0) == 0 && std::getenv("HOME"))
      rest = std::string(std::getenv("HOME")) + rest.substr(1);
    if (cmd == "open") app.open(rest), waiting_worker = true;
    else if (cmd == "prompt") std::snprintf(app.prompt, sizeof app.prompt, "%s", rest.c_str());
    else if (cmd == "prompt-file") {
      std::ifstream f(rest);
      std::stringstream ss;
      ss << f.rdbuf();
      std::snprintf(app.prompt, sizeof app.prompt, "%s", ss.str().c_str());
    } else if (cmd == "run") app.request_run();
    else if (cmd == "record") {  // record PROMPTS_FILE RUN_FILE
      std::istringstream args(rest);
      std::string prompts, out;
      args >> prompts >> out;
      if (out.empty()) std::fprintf(stderr, "script: record needs a prompt file and a run file\n"), failed = true;
      else app.worker.record(prompts, out), waiting_worker = true;
    }
    else if (cmd == "wait") waiting_worker = true;
    else if (cmd == "select") {
      int l, h;
      if (std::sscanf(rest.c_str(), "%d.%d", &l, &h) == 2) app.select(l, h);
    } else if (cmd == "hover") app.forced_hover = std::atoi(rest.c_str());
    else if (cmd == "stat") {
      const int id = head_stat_find(rest.c_str());
      if (id >= 0 && head_stat_is_row_sum(id)) app.stat = id;
      else std::fprintf(stderr, "script: unknown statistic '%s'\n", rest.c_str()), failed = true;
    } else if (cmd == "colormap") app.settings.colormap = rest == "cividis" ? 1 : 0;
    else if (cmd == "zoom") app.zoom = static_cast<float>(std::atof(rest.c_str()));
    else if (cmd == "frames") wait_frames = std::atoi(rest.c_str());
    else if (cmd == "screenshot") {
      std::string path = shot_dir + "/" + rest + ".png";
      took_screenshot = true;
      if (!save_screenshot(win, path)) std::fprintf(stderr, "script: cannot write %s\n", path.c_str()), failed = true;
      const GridLayout& g = app.grid;
      std::ofstream(shot_dir + "/" + rest + ".json")
          << json{{"grid", {{"x0", g.x0}, {"y0", g.y0}, {"cell_w", g.cell_w}, {"cell_h", g.cell_h}, {"layers", g.layers},
                            {"heads", g.heads}, {"lo", g.lo}, {"hi", g.hi}, {"stat", g.stat}}},
                  {"attention", {{"x0", app.view.x0}, {"y0", app.view.y0}, {"cell", app.view.cell}, {"layer", app.view.layer},
                                 {"head", app.view.head}, {"tokens", app.view.tokens}}},
                  {"selected", {app.sel_layer, app.sel_head}}, {"colormap", app.settings.colormap},
                  {"error", app.worker.error()}, {"note", app.worker.note()}}
                 .dump(2);
    } else std::fprintf(stderr, "script: unknown action '%s'\n", cmd.c_str()), failed = true;
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_arg, script_path, shot_dir = ".";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--script" && i + 1 < argc) script_path = argv[++i];
    else if (a == "--screenshot-dir" && i + 1 < argc) shot_dir = argv[++i];
    else if (a == "--help" || a == "-h") {
      std::printf("usage: headscope-gui [MODEL] [--script FILE --screenshot-dir DIR]\n");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "headscope-gui: unknown option %s\n", a.c_str());
      return 2;
    } else model_arg = a;
  }
  if (!glfwInit()) {
    std::fprintf(stderr, "headscope-gui: error: cannot open a display (DISPLAY is unset or the X server is unreachable); "
                         "to run without a screen use a virtual one: xvfb-run -a headscope-gui ...\n");
    return 1;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  GLFWwindow* win = glfwCreateWindow(1600, 900, "headscope", nullptr, nullptr);
  if (!win) {
    std::fprintf(stderr, "headscope-gui: error: cannot create an OpenGL 3 window; under xvfb-run make sure Mesa's "
                         "software renderer is installed (libgl1-mesa-dri)\n");
    glfwTerminate();
    return 1;
  }
  glfwMakeContextCurrent(win);
  glfwSwapInterval(script_path.empty() ? 1 : 0);
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  static std::string ini = (Settings::dir() / "imgui.ini").string();
  {
    std::error_code ec;
    fs::create_directories(Settings::dir(), ec);
  }
  ImGui::GetIO().IniFilename = script_path.empty() ? ini.c_str() : nullptr;  // scripts start from the default layout
  ImGui::StyleColorsDark();
  ImGui_ImplGlfw_InitForOpenGL(win, true);
  ImGui_ImplOpenGL3_Init("#version 130");

  auto app = std::make_unique<App>();
  app->settings.install();
  if (script_path.empty() && fs::exists(ini)) ImGui::LoadIniSettingsFromDisk(ini.c_str());
  std::snprintf(app->path_buf, sizeof app->path_buf, "%s", app->settings.last_model.c_str());
  if (!model_arg.empty()) app->open(model_arg);
  Script script;
  script.shot_dir = shot_dir;
  if (!script_path.empty()) {
    std::ifstream in(script_path);
    if (!in) {
      std::fprintf(stderr, "headscope-gui: error: cannot read script %s\n", script_path.c_str());
      return 1;
    }
    for (std::string line; std::getline(in, line);) script.lines.push_back(line);
  }
  auto last = std::chrono::steady_clock::now();
  while (!glfwWindowShouldClose(win)) {
    glfwPollEvents();
    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
    app->frame();
    ImGui::Render();
    int w, h;
    glfwGetFramebufferSize(win, &w, &h);
    glViewport(0, 0, w, h);
    glClearColor(0.08f, 0.08f, 0.1f, 1.f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    if (!script_path.empty() && !script.step(*app, win)) break;
    glfwSwapBuffers(win);
    auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last).count();
    if (!script.took_screenshot) {
      if (app->worker.busy()) script.busy_frame_ms.push_back(ms);
      script.all_frame_ms.push_back(ms);
    }
    script.took_screenshot = false;
    last = now;
  }
  if (!script_path.empty()) {
    auto summary = [](std::vector<double> f) {
      std::sort(f.begin(), f.end());
      return json{{"frames", f.size()}, {"median_ms", f.empty() ? 0 : f[f.size() / 2]}, {"worst_ms", f.empty() ? 0 : f.back()}};
    };
    // Frames while the worker was loading or running, and all frames (the first frames of a new result included).
    json j = {{"while_busy", summary(script.busy_frame_ms)}, {"all", summary(script.all_frame_ms)}};
    std::ofstream(shot_dir + "/frame_times.json") << j.dump(2);
  }
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(win);
  glfwTerminate();
  return script.failed ? 1 : 0;
}
