// Perceptually uniform colour maps shared by the GUI and the figure renderer (viridis, cividis: matplotlib's
// 256-entry tables, generated into colormaps.inc by tools/make_colormaps.py; a diverging blue-white-red map for
// signed values). x in [0, 1] maps to entry round(x * 255).
#pragma once

namespace headscope {

#include "core/colormaps.inc"

enum Colormap { kColormapViridis = 0, kColormapCividis = 1, kColormapDiverging = 2 };

// Writes rgb in [0, 1]; x outside [0, 1] (and NaN) is clamped (NaN to 0).
inline void colormap_rgb(int which, float x, float rgb[3]) {
  if (!(x >= 0.f)) x = 0.f;
  if (x > 1.f) x = 1.f;
  if (which == kColormapDiverging) {  // 0 blue (0.23, 0.30, 0.75), 0.5 white, 1 red (0.71, 0.02, 0.15)
    const float t = x < 0.5f ? 1.f - 2.f * x : 2.f * x - 1.f;
    const float end[3] = {x < 0.5f ? 0.230f : 0.706f, x < 0.5f ? 0.299f : 0.016f, x < 0.5f ? 0.754f : 0.150f};
    for (int c = 0; c < 3; ++c) rgb[c] = 1.f + (end[c] - 1.f) * t;
    return;
  }
  const int i = static_cast<int>(x * 255.f + 0.5f);
  const float(*table)[3] = which == kColormapCividis ? kCividis : kViridis;
  rgb[0] = table[i][0], rgb[1] = table[i][1], rgb[2] = table[i][2];
}

}  // namespace headscope
