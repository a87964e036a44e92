// ImGui drawing helpers (see plot.h).
#include "app/gui/plot.h"

#include <algorithm>
#include <cmath>

namespace headscope::gui {

ImU32 scale_colour(const Scale& s, int cmap, double v) {
  const double u = s.unit(v);
  if (std::isnan(u)) return IM_COL32(60, 60, 66, 255);
  float rgb[3];
  colormap_rgb(cmap, static_cast<float>(u), rgb);
  return ImGui::ColorConvertFloat4ToU32(ImVec4(rgb[0], rgb[1], rgb[2], 1));
}

void draw_colour_bar(ImDrawList* dl, ImVec2 pos, float w, float h, const Scale& s, int cmap, const std::string& units) {
  const ImU32 text = IM_COL32(220, 220, 220, 255);
  dl->AddText(ImVec2(pos.x, pos.y - 16), text, units.c_str());
  const int n = std::max(2, static_cast<int>(h / 2));
  for (int i = 0; i < n; ++i) {
    float rgb[3];
    colormap_rgb(cmap, 1.f - static_cast<float>(i) / static_cast<float>(n - 1), rgb);
    dl->AddRectFilled(ImVec2(pos.x, pos.y + i * h / n), ImVec2(pos.x + w, pos.y + (i + 1) * h / n + 1),
                      ImGui::ColorConvertFloat4ToU32(ImVec4(rgb[0], rgb[1], rgb[2], 1)));
  }
  dl->AddRect(pos, ImVec2(pos.x + w, pos.y + h), IM_COL32(150, 150, 150, 255));
  const auto ticks = nice_ticks(s.lo, s.hi, std::clamp(static_cast<int>(h / 40), 2, 8), s.log, s.floor);
  for (double t : ticks) {
    const float y = pos.y + h * (1.f - static_cast<float>(s.unit(t)));
    dl->AddLine(ImVec2(pos.x + w, y), ImVec2(pos.x + w + 4, y), text);
    dl->AddText(ImVec2(pos.x + w + 6, y - 7), text, tick_label(t, ticks, s.log).c_str());
  }
}

int label_step(int n, float cell, float extent) {
  if (n <= 0 || cell <= 0) return 1;
  int step = std::max(1, static_cast<int>(std::ceil(extent / cell)));
  // round up to 1, 2, 5 x 10^k so the labelled indices are easy to read
  for (int mag = 1;; mag *= 10)
    for (int m : {1, 2, 5})
      if (m * mag >= step) return m * mag;
}

std::pair<int, int> draw_heatmap(const char* id, ImVec2 size, int rows, int cols, const std::function<double(int, int)>& value,
                                 const std::function<std::string(int)>& row_label, const std::function<std::string(int)>& col_label,
                                 const Scale& s, int cmap, const std::string& units, HeatmapLayout* layout) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 o = ImGui::GetCursorScreenPos();
  ImGui::InvisibleButton(id, ImVec2(std::max(size.x, 60.f), std::max(size.y, 60.f)));
  const bool hovered = ImGui::IsItemHovered();
  if (rows <= 0 || cols <= 0) return {-1, -1};
  const float left = 60, top = 22, bar = 90;
  const float cw = std::max(1.f, (size.x - left - bar) / cols), ch = std::max(1.f, (size.y - top - 4) / rows);
  const ImVec2 g(o.x + left, o.y + top);
  const ImU32 text = IM_COL32(210, 210, 210, 255);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      dl->AddRectFilled(ImVec2(g.x + c * cw, g.y + r * ch), ImVec2(g.x + (c + 1) * cw, g.y + (r + 1) * ch), scale_colour(s, cmap, value(r, c)));
  // Labels centred on their cells, sampled so that they never overlap.
  const int rs = label_step(rows, ch, 15), cs = label_step(cols, cw, 44);
  for (int r = 0; r < rows; r += rs) {
    const std::string l = row_label(r).substr(0, 9);
    dl->AddText(ImVec2(o.x + left - 4 - ImGui::CalcTextSize(l.c_str()).x, g.y + (r + 0.5f) * ch - 7), text, l.c_str());
  }
  for (int c = 0; c < cols; c += cs) {
    const std::string l = col_label(c).substr(0, 7);
    dl->AddText(ImVec2(g.x + (c + 0.5f) * cw - ImGui::CalcTextSize(l.c_str()).x / 2, o.y + 2), text, l.c_str());
  }
  draw_colour_bar(dl, ImVec2(g.x + cols * cw + 12, g.y + 14), 14, std::max(40.f, rows * ch - 14), s, cmap, units);
  if (layout) *layout = {g.x, g.y, cw, ch, rows, cols};
  if (!hovered) return {-1, -1};
  const ImVec2 m = ImGui::GetIO().MousePos;
  const int r = static_cast<int>(std::floor((m.y - g.y) / ch)), c = static_cast<int>(std::floor((m.x - g.x) / cw));
  if (r < 0 || r >= rows || c < 0 || c >= cols) return {-1, -1};
  dl->AddRect(ImVec2(g.x + c * cw, g.y + r * ch), ImVec2(g.x + (c + 1) * cw, g.y + (r + 1) * ch), IM_COL32(255, 255, 255, 255));
  return {r, c};
}

}  // namespace headscope::gui
