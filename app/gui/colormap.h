// Perceptually uniform colour maps for the GUI (viridis, cividis: matplotlib's 256-entry tables, generated into
// colormaps.inc by tools/make_colormaps.py). x in [0, 1] maps to entry round(x * 255).
#pragma once

namespace headscope::gui {

// which: 0 viridis, 1 cividis. Writes rgb in [0, 1].
void colormap_rgb(int which, float x, float rgb[3]);

}  // namespace headscope::gui
