// ImGui drawing helpers shared by the GUI's panels: a value's colour under a scale, a vertical colour bar with
// nice ticks and units, a heat map of a small matrix with sampled axis labels and a hover read-out. The scales
// and ticks are core/scale.h's, the same the figure renderer uses, so a panel and its exported figure agree.
#pragma once
#include <imgui.h>

#include <functional>
#include <string>
#include <vector>

#include "core/colormap.h"
#include "core/scale.h"

namespace headscope::gui {

ImU32 scale_colour(const Scale& s, int cmap, double v);  // NaN: dark grey ("no value")

// A vertical colour bar at `pos` (w x h), ticks and their labels to its right, `units` above it.
void draw_colour_bar(ImDrawList* dl, ImVec2 pos, float w, float h, const Scale& s, int cmap, const std::string& units);

// A rows x cols heat map drawn into the next `size` of the window: row labels left (sampled so they never overlap),
// column labels on top (sampled), a colour bar right. Returns the hovered cell (row, col) or (-1, -1); `rect`
// receives the cells' origin and cell size for scripted checks.
struct HeatmapLayout {
  float x0 = 0, y0 = 0, cell_w = 0, cell_h = 0;
  int rows = 0, cols = 0;
};
std::pair<int, int> draw_heatmap(const char* id, ImVec2 size, int rows, int cols, const std::function<double(int, int)>& value,
                                 const std::function<std::string(int)>& row_label, const std::function<std::string(int)>& col_label,
                                 const Scale& s, int cmap, const std::string& units, HeatmapLayout* layout = nullptr);

// Sampled label positions: every `step`-th of n items so that labels `extent` pixels long fit `cell` apart.
int label_step(int n, float cell, float extent);

}  // namespace headscope::gui
