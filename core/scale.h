// Axis and colour scales shared by the GUI and the figure renderer (analysis/figure.h): "nice" tick positions
// (1, 2, 5 times a power of ten) and their labels with just the decimals the step needs, the colour-map position
// of a value under a linear or a log scale, and each head statistic's natural range, so that colour scales can be
// fixed and comparable across runs and models instead of stretched to each run's min and max.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/head_stats.h"

namespace headscope {

struct Scale {
  double lo = 0, hi = 1;
  bool log = false;      // log10 between max(lo, floor) and hi
  double floor = 1e-4;   // the smallest value a log scale shows (values below take its colour)
  // The colour-map position in [0, 1] of v (NaN stays NaN: callers draw it as "no value").
  double unit(double v) const {
    if (std::isnan(v)) return v;
    double a = lo, b = hi;
    if (log) a = std::log10(std::max(lo, floor)), b = std::log10(std::max(hi, floor * 10)), v = std::log10(std::max(v, floor));
    return b > a ? std::clamp((v - a) / (b - a), 0.0, 1.0) : 0.0;
  }
};

// Tick positions within [lo, hi]: multiples of 1, 2 or 5 x 10^k, at most max_ticks of them (at least the two ends
// when the range is empty of nice numbers). For a log scale: the powers of ten in the range.
inline std::vector<double> nice_ticks(double lo, double hi, int max_ticks, bool log = false, double floor = 1e-4) {
  std::vector<double> t;
  if (!(hi > lo) || max_ticks < 2) return {lo, hi};
  if (log) {
    for (int e = static_cast<int>(std::ceil(std::log10(std::max(lo, floor)))); e <= std::floor(std::log10(hi)); ++e) t.push_back(std::pow(10.0, e));
    return t.size() >= 2 ? t : std::vector<double>{std::max(lo, floor), hi};
  }
  const double raw = (hi - lo) / (max_ticks - 1), mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t.size() >= 2 ? t : std::vector<double>{lo, hi};
}

// A tick's label with as many decimals as the spacing of the ticks needs ("0.25", "1000", "1e-03" for log ticks).
inline std::string tick_label(double v, const std::vector<double>& ticks, bool log = false) {
  char b[32];
  if (log) {
    if (v >= 1 && v < 1e5) std::snprintf(b, sizeof b, "%.0f", v);
    else std::snprintf(b, sizeof b, "1e%d", static_cast<int>(std::round(std::log10(v))));
    return b;
  }
  const double step = ticks.size() >= 2 ? std::abs(ticks[1] - ticks[0]) : std::abs(v);
  const int dec = step > 0 ? std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 6) : 3;
  std::snprintf(b, sizeof b, "%.*f", dec, v);
  return b;
}

// The range a head statistic can take over a prompt of T tokens: probabilities [0, 1], entropy [0, ln T] nats,
// distances and key positions [0, T - 1] tokens, the windowed distance [0, W].
inline Scale head_stat_range(int id, int64_t T, int waad_window = 10) {
  const std::string units = head_stat(id).units;
  const double n = static_cast<double>(std::max<int64_t>(T, 2));
  if (units == "probability") return {0, 1};
  if (id == kStatEntropy) return {0, std::log(n)};
  if (id == kStatWaad) return {0, static_cast<double>(waad_window)};
  return {0, n - 1};
}

}  // namespace headscope
