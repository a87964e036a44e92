// headscope-gui's window state and panels. Live panels (app.cpp): the model and prompt, the token chips, the
// layers x heads grid, the selected head's attention view, and interventions on chosen heads. Run-file panels
// (run_panels.cpp): a run file's items, statistics and every probe's plots, comparison of two runs. All model
// work goes through the library on the worker thread (worker.h); run files are read through store/'s reader.
#pragma once
#include <imgui.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "analysis/figure.h"
#include "app/gui/plot.h"
#include "app/gui/worker.h"

namespace headscope::gui {

// Settings kept in the same ini file as ImGui's window layout (~/.config/headscope/imgui.ini), in a
// [Headscope][Settings] section: the last model and the colour map.
struct Settings {
  std::string last_model;
  int colormap = 0;  // 0 viridis, 1 cividis
  static std::string dir();
  void save() const;
  void install();  // registers the ini section; call after ImGui::CreateContext and before the ini file is read
};

// Where things were drawn, with the values they show, for the scripted mode's screenshot records.
struct GridLayout {
  float x0 = 0, y0 = 0, cell_w = 0, cell_h = 0;
  int layers = 0, heads = 0;
  Scale scale;
  std::string stat;
};

struct RunPanels;  // run_panels.cpp

class App {
 public:
  App();
  ~App();
  Worker worker;
  Settings settings;

  // Live state.
  std::string prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
  int stat = kStatEntropy;  // a per-query statistic of the table (core/head_stats.h)
  int pattern_scale = 0;    // attention view: 0 probability [0, 1], 1 the head's range, 2 log
  int scale_mode = 0;       // 0 fixed (the statistic's natural range; [0, 1] for probabilities), 1 this run's range, 2 log
  int sel_layer = 0, sel_head = 0;
  int hover_token = -1, forced_hover = -1;  // forced: set by the script or the keyboard, stays until cleared
  float zoom = 1.f, pan_x = 0.f, pan_y = 0.f;
  std::vector<std::pair<int, int>> chosen;  // heads chosen for an intervention (ctrl+click on the grid)
  int iv_mode = 0;                          // index into kModes
  float iv_factor = 0.5f;
  std::string iv_mean_data, iv_targets, iv_steer_vector;
  std::string search;                       // token search ('/')
  int search_hit = -1;
  bool focus_search = false, editing_prompt = false;
  std::shared_ptr<const RunResult> shown;       // the result on screen (the previous one while a new run is busy)
  std::shared_ptr<const HeadPattern> pattern;   // the pattern on screen
  std::unique_ptr<RunPanels> runs;

  // What the screenshots record.
  GridLayout grid;
  struct {
    float x0 = 0, y0 = 0, cell = 0;
    int layer = -1, head = -1, tokens = 0;
    double seconds = 0;
  } view;
  nlohmann::json chip_layout = nlohmann::json::object();

  void frame();
  void open(const std::string& path);
  void request_run();
  void select(int layer, int head);  // a head's pattern without a new forward
  void toggle_chosen(int layer, int head);
  void hover(int token);             // colour the chips by attention from `token` and scroll to it (-1: none)
  nlohmann::json intervention_spec() const;  // Error when the choice is incomplete
  void run_intervention();
  // Keyboard: arrows move the selected head, ctrl+enter runs, '/' searches tokens, escape clears the search.
  void on_key(const std::string& key);
  void find_token(bool next);
  nlohmann::json record() const;  // what a scripted screenshot stores beside its PNG
  // The live panels as figures (analysis/figure.h): "grid", "attention" or "tokens"; Error when there is none yet.
  Figure live_figure(const std::string& what) const;
  // Exports "grid", "attention", "tokens" (live panels) or "run", "compare" (the Views tab's run file or comparison).
  void export_figure(const std::string& what, const std::string& path);

  static const char* const kModes[];
  static const int kModeCount;

 private:
  void draw_model_panel();
  void draw_prompt();
  void draw_chips();
  void draw_grid();
  void draw_attention();
  void draw_intervention();
  void draw_open_dialog();
  void export_button(const char* what);  // a path box and an Export button for a live panel
  std::string export_path = "figure.pdf", export_error;
 public:
  std::string ui_error;  // the last action that failed in the window (a bad click, a head outside the model)
 private:
  void keyboard();
  bool show_open = false;
  char path_buf[1024] = "";
  unsigned pattern_tex = 0, minimap_tex = 0;
  std::tuple<const HeadPattern*, float, float, float, int, int, int, int> pattern_key{};
  const HeadPattern* minimap_of = nullptr;
  int minimap_cmap = -1;
  int scroll_to_chip = -1;
};

}  // namespace headscope::gui
