// Colour-map lookup (see colormap.h).
#include "app/gui/colormap.h"

#include <cmath>

#include "app/gui/colormaps.inc"

namespace headscope::gui {

void colormap_rgb(int which, float x, float rgb[3]) {
  if (!(x >= 0.f)) x = 0.f;  // NaN too
  if (x > 1.f) x = 1.f;
  const int i = static_cast<int>(x * 255.f + 0.5f);
  const float(*table)[3] = which == 1 ? kCividis : kViridis;
  rgb[0] = table[i][0], rgb[1] = table[i][1], rgb[2] = table[i][2];
}

}  // namespace headscope::gui
