// headscope-gui's run-file panels: record a prompt set, open a run file written by record / score / circuit /
// binding (also one another process is still writing: it is re-read as parts land), browse its items and show
// per-head statistics and every probe's plots; compare two runs. The data come from probes/run_views.h and
// runs/compare.h, the same functions `headscope figure` and `headscope compare` call; "Export" writes the panel's
// figure through analysis/figure.h.
#pragma once
#include <imgui.h>

#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/figure.h"

namespace headscope::gui {

class App;

struct RunPanels {
  RunPanels();
  ~RunPanels();
  int tab = 0, tab_request = -1;  // the Views window's tab: 0 attention, 1 run file, 2 compare
  void draw_record(App& app);
  void draw_run(App& app);
  void draw_compare(App& app);
  // Scripted actions.
  void open_run(const std::string& path);
  void open_compare(const std::string& a, const std::string& b);
  void show(const std::string& what);    // "stat:NAME", "probe:NAME[:SCORE]", "view:sinks|timeline|circuit|binding|retrieval"
  void set_item(int item);               // -1: averaged over items
  // Writes a figure (PNG, SVG or PDF by the extension) on the background thread: `live` when given (the live
  // panels' grid, pattern or chips), else the figure of `panel` (1 run file, 2 comparison; -1: the Views tab on
  // screen). Error at once for a bad extension or nothing to export; export_or_say shows the error instead.
  void export_figure(const std::string& path, std::optional<Figure> live = std::nullopt, int panel = -1);
  void export_or_say(const std::string& path, std::optional<Figure> live = std::nullopt);
  nlohmann::json record() const;

  struct State;
  std::unique_ptr<State> st;
};

}  // namespace headscope::gui
