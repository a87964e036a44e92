// The one drawing code path of analysis/figure.h: every kind of figure drawn with cairo onto a PNG, SVG or PDF
// surface (the same calls for all three), after a first pass on a recording surface that measures the text and fixes
// the page size and the layout.
#include "analysis/figure.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "core/error.h"
#include "core/text.h"

namespace headscope {

namespace {

constexpr const char* kFont = "DejaVu Sans";
constexpr int64_t kRasterAbove = 200000;    // heatmap cells drawn as rectangles up to this many
constexpr int64_t kLayoutCellsMax = 1000000;
const float kNanGrey[3] = {0.85f, 0.85f, 0.85f};
const float kInk[3] = {0.13f, 0.13f, 0.13f};
const float kAxisGrey[3] = {0.45f, 0.45f, 0.45f};
// Categorical colours (Tableau 10).
const float kPalette[][3] = {{0.122f, 0.467f, 0.706f}, {1.000f, 0.498f, 0.055f}, {0.173f, 0.627f, 0.173f}, {0.839f, 0.153f, 0.157f},
                             {0.580f, 0.404f, 0.741f}, {0.549f, 0.337f, 0.294f}, {0.890f, 0.467f, 0.761f}, {0.498f, 0.498f, 0.498f},
                             {0.737f, 0.741f, 0.133f}, {0.090f, 0.745f, 0.812f}};

// --- values to colours ---------------------------------------------------------------------------------------------

void resolve(const ColorScale& s, const std::vector<double>& v, FigureLayout& out) {
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, amax = 0, minpos = mn;
  for (double x : v)
    if (std::isfinite(x)) {
      mn = std::min(mn, x), mx = std::max(mx, x), amax = std::max(amax, std::fabs(x));
      if (x > 0) minpos = std::min(minpos, x);
    }
  if (!std::isfinite(mn)) mn = 0, mx = 1, minpos = 1;  // no finite value: an all-grey figure with a [0, 1] bar
  double lo = s.lo, hi = s.hi;
  if (s.symmetric) {
    const double m = std::isfinite(hi) ? std::fabs(hi) : std::isfinite(lo) ? std::fabs(lo) : (amax > 0 ? amax : 1);
    lo = -m, hi = m;
  }
  if (s.log) {
    if (!std::isfinite(lo)) lo = std::isfinite(minpos) ? std::max(minpos, 1e-8) : 1e-4;
    if (!std::isfinite(hi)) hi = mx > 0 ? mx : 1;
    if (!(lo > 0)) throw Error("a log colour scale needs a lower bound above 0, not " + std::to_string(lo));
  }
  if (!std::isfinite(lo)) lo = mn;
  if (!std::isfinite(hi)) hi = mx;
  if (!(hi > lo)) {  // one value everywhere: a range around it
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.5;
    if (s.log) hi = lo * 10;
    else if (std::isfinite(s.lo) && !std::isfinite(s.hi)) hi = lo + pad;
    else if (std::isfinite(s.hi) && !std::isfinite(s.lo)) lo = hi - pad;
    else if (std::isfinite(s.lo) && std::isfinite(s.hi)) throw Error("the colour range needs LO < HI, not " + std::to_string(s.lo) + " .. " + std::to_string(s.hi));
    else lo -= pad, hi += pad;
  }
  out.colormap = s.colormap, out.lo = lo, out.hi = hi, out.log = s.log;
}

double unit_of(const FigureLayout& L, double v) {
  if (L.log) {
    const double a = std::log10(L.lo), b = std::log10(L.hi);
    return ((v > L.lo ? std::log10(v) : a) - a) / (b - a);
  }
  return (v - L.lo) / (L.hi - L.lo);
}

// --- text ------------------------------------------------------------------------------------------------------------

// A token as it is drawn: a space is '·', a newline '⏎', a tab '→', other control bytes and bytes that are not UTF-8
// as \xNN (cairo refuses invalid UTF-8); at most `max_chars` characters, then '…'.
std::string visible(const std::string& s, size_t max_chars = 14) {
  std::string o;
  size_t chars = 0, i = 0;
  for (; i < s.size() && chars < max_chars; ++chars) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len > 1 && (i + len > s.size() || utf8_error_offset(s.substr(i, len)) != std::string::npos)) len = 0;
    if (len == 0 || c < 0x20 || c == 0x7F) {
      if (c == '\n') o += "\xE2\x8F\x8E";
      else if (c == '\t') o += "\xE2\x86\x92";
      else {
        char b[8];
        std::snprintf(b, sizeof b, "\\x%02X", c);
        o += b;
      }
      ++i;
      continue;
    }
    if (c == ' ') o += "\xC2\xB7";
    else o += s.substr(i, len);
    i += len;
  }
  if (i < s.size()) o += "\xE2\x80\xA6";  // cut: more characters follow
  return o;
}

// Plain text for titles and labels: anything that is not valid UTF-8 is replaced, control bytes dropped.
std::string clean(const std::string& s) {
  std::string o;
  for (unsigned char c : s)
    if (c >= 0x20 || c == '\t') o += static_cast<char>(c == '\t' ? ' ' : c);
  if (utf8_error_offset(o) != std::string::npos) return visible(o, 200);
  return o;
}

std::string num(double v, int sig = 3) {
  if (std::isnan(v)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.*g", sig, v);
  std::string s = b;
  if (!s.empty() && s[0] == '-') s = "\xE2\x88\x92" + s.substr(1);  // a typographic minus
  return s;
}

// Tick values for [lo, hi]: 1-2-5 steps, at most about `n` ticks; with their decimals.
std::vector<double> nice_ticks(double lo, double hi, int n, int* decimals) {
  const double range = hi - lo;
  double step = std::pow(10.0, std::floor(std::log10(range / n)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (range / (step * m) <= n) {
      step *= m;
      break;
    }
  *decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  std::vector<double> t;
  for (double x = std::ceil(lo / step - 1e-9) * step; x <= hi + step * 1e-9; x += step) t.push_back(std::fabs(x) < step * 1e-9 ? 0 : x);
  return t;
}

std::string tick_label(double v, int decimals) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  std::string s = b;
  if (!s.empty() && s[0] == '-') s = "\xE2\x88\x92" + s.substr(1);
  return s;
}

double snap(double x) { return std::round(x * 2) / 2; }  // to a whole PNG pixel (png_scale 2)

// --- the canvas: cairo calls the kinds share --------------------------------------------------------------------------

struct Canvas {
  cairo_t* cr;
  FigureLayout* L;

  void font(double size, bool bold = false) {
    cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
  }
  double width(const std::string& s, double size, bool bold = false) {
    font(size, bold);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.c_str(), &e);
    return e.x_advance;
  }
  void color(const float c[3], double alpha = 1) { cairo_set_source_rgba(cr, c[0], c[1], c[2], alpha); }
  // Text with its anchor at (x, y): ax 0 left, 0.5 centre, 1 right; ay 0 top, 0.5 middle, 1 baseline-ish bottom;
  // angle in radians (counter-clockwise labels use -pi/2).
  void text(double x, double y, const std::string& s, double size, double ax = 0, double ay = 0.5, bool bold = false,
            double angle = 0, const float* c = kInk) {
    if (s.empty()) return;
    const double w = width(s, size, bold);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    color(c);
    cairo_move_to(cr, -ax * w, -ay * size * 1.0 + size * 0.78);
    cairo_show_text(cr, s.c_str());
    cairo_restore(cr);
  }
  void fill(const FigureRect& r, const float c[3]) {
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    color(c);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_fill(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
  }
  void stroke_rect(const FigureRect& r, const float c[3], double lw) {
    color(c);
    cairo_set_line_width(cr, lw);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_stroke(cr);
  }
  void line(double x0, double y0, double x1, double y1, const float c[3], double lw = 1, bool dashed = false) {
    color(c);
    cairo_set_line_width(cr, lw);
    if (dashed) {
      const double d[2] = {4, 3};
      cairo_set_dash(cr, d, 2, 0);
    }
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
  }
  void page(double w, double h) {
    L->width = std::ceil(w), L->height = std::ceil(h);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
  }
  void title(const std::string& t) { text(L->width / 2, 16, clean(t), 13, 0.5, 0.5, true); }
  void value_color(double v, float rgb[3]) { figure_color(*L, v, rgb); }

  // A vertical colour bar at (x, y) of height h with ticks and the label (units) beside; returns its total width.
  double colorbar_width(const std::string& label) {
    int dec = 0;
    double tw = 0;
    for (double t : ticks(&dec)) tw = std::max(tw, width(tick_text(t, dec), 8));
    return 14 + 4 + tw + 8 + (label.empty() ? 0 : 12);
  }
  std::vector<double> ticks(int* dec) {
    if (L->log) {
      std::vector<double> t;
      const int a = static_cast<int>(std::ceil(std::log10(L->lo) - 1e-9)), b = static_cast<int>(std::floor(std::log10(L->hi) + 1e-9));
      if (b - a >= 1) {
        const int stride = std::max(1, (b - a + 5) / 6);
        for (int e = a; e <= b; e += stride) t.push_back(std::pow(10.0, e));
        *dec = -1;
        return t;
      }
      return nice_ticks(L->lo, L->hi, 5, dec);
    }
    return nice_ticks(L->lo, L->hi, 6, dec);
  }
  std::string tick_text(double v, int dec) { return dec < 0 ? num(v, 2) : tick_label(v, dec); }
  void colorbar(double x, double y, double h, const std::string& label) {
    const double w = 14;
    const int n = 128;
    for (int i = 0; i < n; ++i) {  // top = hi
      const double u0 = static_cast<double>(i) / n, u1 = static_cast<double>(i + 1) / n;
      float c[3];
      colormap_rgb(L->colormap, static_cast<float>(1 - (u0 + u1) / 2), c);
      color(c);
      cairo_rectangle(cr, x, y + u0 * h, w, h / n + 0.3);
      cairo_fill(cr);
    }
    stroke_rect({x, y, w, h}, kAxisGrey, 0.6);
    int dec = 0;
    double tw = 0;
    for (double t : ticks(&dec)) {
      const double u = unit_of(*L, t);
      if (u < -1e-9 || u > 1 + 1e-9) continue;
      const double ty = y + (1 - u) * h;
      line(x + w, ty, x + w + 3, ty, kAxisGrey, 0.6);
      const std::string s = tick_text(t, dec);
      text(x + w + 5, ty, s, 8, 0, 0.5);
      tw = std::max(tw, width(s, 8));
    }
    if (!label.empty()) text(x + w + 5 + tw + 8, y + h / 2, clean(label), 9, 0.5, 0.5, false, -M_PI / 2);
  }

  // A heatmap of rows x cols cells at (x, y), each cw x ch, value(r, c) (skip(r, c): the cell is not drawn); cells
  // are rectangles, or one embedded image above kRasterAbove cells.
  template <class V, class S>
  void heatmap(double x, double y, double cw, double ch, int64_t rows, int64_t cols, V value, S skip) {
    int64_t drawn = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) drawn += !skip(r, c);
    L->raster = drawn > kRasterAbove;
    const bool keep = rows * cols <= kLayoutCellsMax;
    if (keep) L->cells.assign(static_cast<size_t>(rows * cols), FigureRect{});
    if (L->raster) {
      cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(cols), static_cast<int>(rows));
      if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(img);
        throw Error("the heatmap of " + std::to_string(rows) + " x " + std::to_string(cols) + " cells is too large to draw");
      }
      cairo_surface_flush(img);
      unsigned char* data = cairo_image_surface_get_data(img);
      const int stride = cairo_image_surface_get_stride(img);
      for (int64_t r = 0; r < rows; ++r) {
        auto* row = reinterpret_cast<uint32_t*>(data + r * stride);
        for (int64_t c = 0; c < cols; ++c) {
          float rgb[3] = {1, 1, 1};
          if (!skip(r, c)) value_color(value(r, c), rgb);
          auto b = [](float v) { return static_cast<uint32_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255)); };
          row[c] = 0xFF000000u | (b(rgb[0]) << 16) | (b(rgb[1]) << 8) | b(rgb[2]);
        }
      }
      cairo_surface_mark_dirty(img);
      cairo_save(cr);
      cairo_translate(cr, x, y);
      cairo_scale(cr, cw, ch);
      cairo_set_source_surface(cr, img, 0, 0);
      cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
      cairo_rectangle(cr, 0, 0, static_cast<double>(cols), static_cast<double>(rows));
      cairo_fill(cr);
      cairo_restore(cr);
      cairo_surface_destroy(img);
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        if (skip(r, c)) continue;
        const FigureRect cell{x + static_cast<double>(c) * cw, y + static_cast<double>(r) * ch, cw, ch};
        if (keep) L->cells[static_cast<size_t>(r * cols + c)] = cell;
        if (L->raster) continue;
        float rgb[3];
        value_color(value(r, c), rgb);
        fill(cell, rgb);
      }
    stroke_rect({x, y, cw * static_cast<double>(cols), ch * static_cast<double>(rows)}, kAxisGrey, 0.6);
  }

  // Tick labels along an axis every `stride` items, centred on the items: horizontal (left of a column of rows) or
  // vertical (under a row of columns, rotated).
  void row_labels(double x_right, double y0, double step, int64_t n, const std::vector<std::string>& labels, double size) {
    const int64_t stride = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((size + 2) / step)));
    for (int64_t i = 0; i < n; i += stride) {
      line(x_right + 1, y0 + (static_cast<double>(i) + 0.5) * step, x_right + 4, y0 + (static_cast<double>(i) + 0.5) * step, kAxisGrey, 0.6);
      text(x_right - 1, y0 + (static_cast<double>(i) + 0.5) * step, labels[static_cast<size_t>(i)], size, 1, 0.5);
    }
  }
  void col_labels(double x0, double y_top, double step, int64_t n, const std::vector<std::string>& labels, double size, bool rotate) {
    double widest = 0;
    for (auto& s : labels) widest = std::max(widest, width(s, size));
    const double need = rotate ? size + 2 : widest + 4;
    const int64_t stride = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(need / step)));
    for (int64_t i = 0; i < n; i += stride) {
      const double cx = x0 + (static_cast<double>(i) + 0.5) * step;
      line(cx, y_top - 4, cx, y_top - 1, kAxisGrey, 0.6);
      if (rotate) text(cx, y_top + 1, labels[static_cast<size_t>(i)], size, 1, 0.5, false, -M_PI / 2);
      else text(cx, y_top + 1, labels[static_cast<size_t>(i)], size, 0.5, 0);
    }
  }
  double widest(const std::vector<std::string>& labels, double size) {
    double w = 0;
    for (auto& s : labels) w = std::max(w, width(s, size));
    return w;
  }
};

std::vector<std::string> numbers(int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

std::vector<std::string> token_labels(const std::vector<std::string>& tokens, size_t max_chars = 12) {
  std::vector<std::string> out;
  for (const auto& t : tokens) out.push_back(visible(t, max_chars));
  return out;
}

std::string with_units(const std::string& label, const std::string& units) {
  // "mean entropy (nats)" already says its units
  return units.empty() || label.find(units) != std::string::npos ? label : label + " (" + units + ")";
}

void need(bool ok, const std::string& what) {
  if (!ok) throw Error("figure: " + what);
}

// --- the kinds -------------------------------------------------------------------------------------------------------

// A layers x heads grid (head grid and comparison).
void draw_grid(Canvas& cv, const std::string& title, int64_t Ly, int64_t H, const std::vector<double>& v, const std::vector<HeadMark>& marked,
               const std::string& bar_label, const std::string& subtitle) {
  need(Ly > 0 && H > 0, "a head grid needs layers and heads");
  need(static_cast<int64_t>(v.size()) == Ly * H, "the grid has " + std::to_string(v.size()) + " values for " + std::to_string(Ly) + " x " +
                                                     std::to_string(H) + " heads");
  const double cw = snap(std::clamp(420.0 / static_cast<double>(H), 6.0, 40.0)), ch = snap(std::clamp(460.0 / static_cast<double>(Ly), 4.0, 28.0));
  const std::vector<std::string> ll = numbers(Ly), hl = numbers(H);
  const double left = snap(18 + 12 + cv.widest(ll, 8) + 6), top = subtitle.empty() ? 34 : 48;
  const double gw = cw * static_cast<double>(H), gh = ch * static_cast<double>(Ly);
  const double bar_w = cv.colorbar_width(bar_label);
  const double W = left + gw + 18 + bar_w + 14, Hh = top + gh + 44;
  cv.page(std::max(W, cv.width(clean(title), 13, true) + 40), Hh);
  cv.title(title);
  if (!subtitle.empty()) cv.text(cv.L->width / 2, 32, clean(subtitle), 9, 0.5, 0.5, false, 0, kAxisGrey);
  cv.heatmap(left, top, cw, ch, Ly, H, [&](int64_t l, int64_t h) { return v[static_cast<size_t>(l * H + h)]; },
             [](int64_t, int64_t) { return false; });
  for (const HeadMark& m : marked) {
    if (m.layer < 0 || m.layer >= Ly || m.head < 0 || m.head >= H) continue;
    const float black[3] = {0, 0, 0}, white[3] = {1, 1, 1};
    const FigureRect r{left + m.head * cw, top + m.layer * ch, cw, ch};
    cv.stroke_rect({r.x + 0.75, r.y + 0.75, r.w - 1.5, r.h - 1.5}, black, 1.5);
    if (cw > 8 && ch > 8) cv.stroke_rect({r.x + 2, r.y + 2, r.w - 4, r.h - 4}, white, 0.6);
  }
  cv.row_labels(left - 4, top, ch, Ly, ll, 8);
  cv.col_labels(left, top + gh + 4, cw, H, hl, 8, false);
  cv.text(12, top + gh / 2, "layer", 10, 0.5, 0.5, false, -M_PI / 2);
  cv.text(left + gw / 2, top + gh + 28, "head", 10, 0.5, 0.5);
  cv.colorbar(left + gw + 18, top, std::max(gh, 60.0), bar_label);
}

void draw(Canvas& cv, const HeadGridFigure& f) {
  resolve(f.scale, f.values, *cv.L);
  draw_grid(cv, f.title, f.layers, f.heads, f.values, f.marked, with_units(f.label, f.units), "");
}

void draw(Canvas& cv, const CompareGridFigure& f) {
  resolve(f.scale, f.diff, *cv.L);
  const std::string sub = f.name_a.empty() ? "" : "b = " + f.name_b + "   a = " + f.name_a;
  draw_grid(cv, f.title, f.layers, f.heads, f.diff, f.marked, with_units("\xCE\x94 " + f.label + " (b \xE2\x88\x92 a)", f.units), sub);
}

void draw(Canvas& cv, const AttentionFigure& f) {
  const int64_t T = static_cast<int64_t>(f.tokens.size());
  need(T > 0, "the attention pattern has no tokens");
  need(static_cast<int64_t>(f.probs.size()) == T * T, "the attention pattern has " + std::to_string(f.probs.size()) + " values for " +
                                                          std::to_string(T) + " x " + std::to_string(T) + " tokens");
  std::vector<double> lower;
  for (int64_t q = 0; q < T; ++q)
    for (int64_t k = 0; k <= q; ++k) lower.push_back(f.probs[static_cast<size_t>(q * T + k)]);
  resolve(f.scale, lower, *cv.L);
  const double cell = T * T > 4 * kRasterAbove ? 560.0 / static_cast<double>(T) : snap(std::max(0.5, std::min(24.0, 560.0 / static_cast<double>(T))));
  const std::vector<std::string> labels = token_labels(f.tokens);
  const double lw = cv.widest(labels, 7);
  const double left = snap(18 + 12 + lw + 6), top = 34, side = cell * static_cast<double>(T);
  const std::string bar_label = f.scale.log ? "attention probability (log)" : "attention probability";
  const double W = left + side + 18 + cv.colorbar_width(bar_label) + 14, Hh = top + side + 6 + lw + 28;
  cv.page(std::max(W, cv.width(clean(f.title), 13, true) + 40), Hh);
  cv.title(f.title);
  cv.heatmap(left, top, cell, cell, T, T, [&](int64_t q, int64_t k) { return f.probs[static_cast<size_t>(q * T + k)]; },
             [](int64_t q, int64_t k) { return k > q; });
  cv.row_labels(left - 4, top, cell, T, labels, 7);
  cv.col_labels(left, top + side + 4, cell, T, labels, 7, true);
  cv.text(12, top + side / 2, "query", 10, 0.5, 0.5, false, -M_PI / 2);
  cv.text(left + side / 2, Hh - 12, "key", 10, 0.5, 0.5);
  cv.colorbar(left + side + 18, top, std::max(std::min(side, 360.0), 60.0), bar_label);
}

void draw(Canvas& cv, const TokenStripFigure& f) {
  const size_t T = f.tokens.size();
  need(T > 0, "the token strip has no tokens");
  need(f.values.size() == T, "the token strip has " + std::to_string(f.values.size()) + " values for " + std::to_string(T) + " tokens");
  resolve(f.scale, f.values, *cv.L);
  const double max_w = 620, chip_h = 18, gap = 3, top = 36, left = 20;
  std::vector<FigureRect> chips;
  std::vector<std::string> texts;
  double x = left, y = top, right = left;
  for (size_t t = 0; t < T; ++t) {
    const std::string s = visible(f.tokens[t], 24);
    const double w = snap(std::max(10.0, cv.width(s, 9) + 8));
    if (x + w > left + max_w && x > left) x = left, y += chip_h + gap;
    chips.push_back({snap(x), snap(y), w, chip_h});
    texts.push_back(s);
    right = std::max(right, x + w);
    x += w + gap;
    if (f.tokens[t].find('\n') != std::string::npos) x = left, y += chip_h + gap;  // a newline ends the line
  }
  const double bottom = chips.back().y + chip_h, bar_h = std::max(bottom - top, 80.0);
  const std::string bar_label = with_units(f.label, f.units);
  cv.page(std::max(right + 24 + cv.colorbar_width(bar_label) + 14, cv.width(clean(f.title), 13, true) + 40), top + bar_h + 24);
  cv.title(f.title);
  cv.L->cells = chips;
  for (size_t t = 0; t < T; ++t) {
    float rgb[3];
    cv.value_color(f.values[t], rgb);
    cv.fill(chips[t], rgb);
    const double lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    const float white[3] = {1, 1, 1};
    cv.text(chips[t].x + chips[t].w / 2, chips[t].y + chip_h / 2, texts[t], 9, 0.5, 0.5, false, 0, lum < 0.5 ? white : kInk);
  }
  cv.text(left, cv.L->height - 12, "tokens in reading order; \xC2\xB7 is a space, \xE2\x8F\x8E a newline", 8, 0, 0.5, false, 0, kAxisGrey);
  cv.colorbar(right + 24, top, bar_h, bar_label);
}

const float* kind_color(const std::string& kind) {
  static const float primary[3] = {0.839f, 0.153f, 0.157f}, secondary[3] = {1.0f, 0.498f, 0.055f}, noise[3] = {0.55f, 0.55f, 0.55f};
  return kind == "primary" ? primary : kind == "secondary" ? secondary : noise;
}

void draw(Canvas& cv, const SinkViewFigure& f) {
  const int64_t T = static_cast<int64_t>(f.tokens.size()), Ly = f.layers;
  need(T > 0 && Ly > 0, "the sink view needs tokens and layers");
  need(static_cast<int64_t>(f.score.size()) == Ly * T, "the sink view has " + std::to_string(f.score.size()) + " scores for " +
                                                          std::to_string(Ly) + " layers x " + std::to_string(T) + " tokens");
  resolve(f.scale, f.score, *cv.L);
  const double cw = Ly * T > kRasterAbove ? 680.0 / static_cast<double>(T) : snap(std::clamp(680.0 / static_cast<double>(T), 0.5, 20.0));
  const double ch = snap(std::clamp(340.0 / static_cast<double>(Ly), 2.0, 18.0));
  const std::vector<std::string> labels = token_labels(f.tokens), ll = numbers(Ly);
  const double lw = cv.widest(labels, 7);
  const double left = snap(18 + 12 + cv.widest(ll, 8) + 10), top = 46, gw = cw * static_cast<double>(T), gh = ch * static_cast<double>(Ly);
  const std::string bar_label = with_units(f.label, f.units);
  // The legend lines under the plot.
  std::vector<std::string> legend;
  if (f.anchor >= 0) legend.push_back("\xE2\x96\xBC anchor: token " + std::to_string(f.anchor));
  if (f.l_s >= 0) legend.push_back("dashed: scanned layers [" + std::to_string(f.l_s) + ", " + std::to_string(f.l_e) + ")");
  int counts[3] = {0, 0, 0};
  for (const SinkMark& s : f.sinks) ++counts[s.kind == "primary" ? 0 : s.kind == "secondary" ? 1 : 2];
  std::string lv = "levels (l_start, lifetime): ";
  for (size_t i = 0; i < f.levels.size(); ++i)
    lv += (i ? ", " : "") + std::string("(") + std::to_string(f.levels[i].l_start) + ", " + std::to_string(f.levels[i].lifetime) + ") \xC3\x97 " +
          std::to_string(f.levels[i].tokens);
  if (f.levels.empty()) lv += "none";
  const double legend_y = top + gh + 8 + lw + 30;
  const double W = left + gw + 18 + cv.colorbar_width(bar_label) + 14, Hh = legend_y + 40;
  cv.page(std::max({W, cv.width(clean(f.title), 13, true) + 40, 560.0}), Hh);
  cv.title(f.title);
  cv.heatmap(left, top, cw, ch, Ly, T, [&](int64_t l, int64_t t) { return f.score[static_cast<size_t>(l * T + t)]; },
             [](int64_t, int64_t) { return false; });
  const float dark[3] = {0.1f, 0.1f, 0.1f};
  if (f.l_s >= 0 && f.l_e >= f.l_s) {
    for (int64_t l : {f.l_s, f.l_e})
      if (l >= 0 && l <= Ly) cv.line(left - 6, top + static_cast<double>(l) * ch, left + gw + 6, top + static_cast<double>(l) * ch, dark, 1, true);
  }
  for (const SinkMark& s : f.sinks) {
    if (s.position < 0 || s.position >= T) continue;
    const int64_t l0 = std::clamp<int64_t>(s.l_start, 0, Ly), l1 = std::clamp<int64_t>(s.l_start + s.lifetime, 0, Ly);
    cv.stroke_rect({left + static_cast<double>(s.position) * cw - 1, top + static_cast<double>(l0) * ch, cw + 2, static_cast<double>(l1 - l0) * ch},
                   kind_color(s.kind), 1.5);
    cv.line(left + (static_cast<double>(s.position) + 0.5) * cw, top - 12, left + (static_cast<double>(s.position) + 0.5) * cw, top - 4, kind_color(s.kind), 2);
  }
  if (f.anchor >= 0 && f.anchor < T) {
    const double ax = left + (static_cast<double>(f.anchor) + 0.5) * cw;
    cv.color(dark);
    cairo_move_to(cv.cr, ax - 4, top - 10);
    cairo_line_to(cv.cr, ax + 4, top - 10);
    cairo_line_to(cv.cr, ax, top - 3);
    cairo_close_path(cv.cr);
    cairo_fill(cv.cr);
  }
  cv.row_labels(left - 8, top, ch, Ly, ll, 8);
  cv.col_labels(left, top + gh + 4, cw, T, labels, 7, true);
  cv.text(12, top + gh / 2, "layer", 10, 0.5, 0.5, false, -M_PI / 2);
  cv.text(left + gw / 2, top + gh + 8 + lw + 14, "token", 10, 0.5, 0.5);
  cv.colorbar(left + gw + 18, top, std::max(gh, 60.0), bar_label);
  // Legend: the anchor and window, then the kinds with their counts, then the levels.
  double x = left;
  for (const std::string& s : legend) {
    cv.text(x, legend_y, s, 8, 0, 0.5);
    x += cv.width(s, 8) + 16;
  }
  const char* kinds[3] = {"primary", "secondary", "noise"};
  for (int k = 0; k < 3; ++k) {
    cv.stroke_rect({x, legend_y - 4, 10, 8}, kind_color(kinds[k]), 1.5);
    const std::string s = std::string(kinds[k]) + " " + std::to_string(counts[k]);
    cv.text(x + 14, legend_y, s, 8, 0, 0.5);
    x += 14 + cv.width(s, 8) + 12;
  }
  cv.text(left, legend_y + 16, lv, 8, 0, 0.5);
}

void draw(Canvas& cv, const TimelineFigure& f) {
  const int64_t T = static_cast<int64_t>(f.tokens.size());
  need(T > 0, "the timeline has no tokens");
  need(static_cast<int64_t>(f.waad.size()) == T && static_cast<int64_t>(f.fai.size()) == T,
       "the timeline's WAAD and FAI need one value per token (" + std::to_string(T) + ")");
  cv.L->lo = 0, cv.L->hi = 1;
  const std::vector<std::string> labels = token_labels(f.tokens);
  const double lw = cv.widest(labels, 7);
  const double dx = std::clamp(760.0 / static_cast<double>(T), 0.2, 16.0), pw = dx * static_cast<double>(T);
  const double left = 70, top = 52, ph = 140, gap = 26;
  const double W = left + pw + 30, Hh = top + 2 * ph + gap + 8 + lw + 30;
  cv.page(std::max(W, 520.0), Hh);
  cv.title(f.title);
  const float waad_c[3] = {0.122f, 0.467f, 0.706f}, fai_c[3] = {0.173f, 0.627f, 0.173f}, pre_c[3] = {1.0f, 0.498f, 0.055f},
              anc_c[3] = {0.580f, 0.404f, 0.741f};
  auto panel = [&](double y0, const std::vector<double>& v, const float* c, const std::string& axis, const std::vector<int64_t>& marks,
                   const float* mc, bool triangle) {
    double mx = 0;
    for (double x : v)
      if (std::isfinite(x)) mx = std::max(mx, x);
    if (mx <= 0) mx = 1;
    int dec = 0;
    const std::vector<double> ticks = nice_ticks(0, mx * 1.05, 4, &dec);
    const double top_v = std::max(ticks.back(), mx);
    auto Y = [&](double x) { return y0 + ph - x / top_v * ph; };
    cv.stroke_rect({left, y0, pw, ph}, kAxisGrey, 0.6);
    for (double t : ticks) {
      const float light[3] = {0.9f, 0.9f, 0.9f};
      if (t > 0 && t < top_v) cv.line(left, Y(t), left + pw, Y(t), light, 0.5);
      cv.line(left - 3, Y(t), left, Y(t), kAxisGrey, 0.6);
      cv.text(left - 5, Y(t), tick_label(t, dec), 8, 1, 0.5);
    }
    cv.text(18, y0 + ph / 2, axis, 10, 0.5, 0.5, false, -M_PI / 2);
    if (f.response_start >= 0 && f.response_start < T) {
      const double rx = left + static_cast<double>(f.response_start) * dx;
      cv.line(rx, y0, rx, y0 + ph, kAxisGrey, 0.8, true);
    }
    for (int64_t m : marks) {
      if (m < 0 || m >= T) continue;
      const double mxp = left + (static_cast<double>(m) + 0.5) * dx;
      cv.color(mc, 0.16);
      cairo_rectangle(cv.cr, mxp - std::max(dx, 1.0) / 2, y0, std::max(dx, 1.0), ph);
      cairo_fill(cv.cr);
    }
    cv.color(c);
    cairo_set_line_width(cv.cr, 1.3);
    bool pen = false;
    for (int64_t t = 0; t < T; ++t) {
      const double x = v[static_cast<size_t>(t)];
      if (!std::isfinite(x)) {
        pen = false;
        continue;
      }
      const double px = left + (static_cast<double>(t) + 0.5) * dx;
      if (pen) cairo_line_to(cv.cr, px, Y(x));
      else cairo_move_to(cv.cr, px, Y(x));
      pen = true;
    }
    cairo_stroke(cv.cr);
    for (int64_t m : marks) {
      if (m < 0 || m >= T) continue;
      const double x = v[static_cast<size_t>(m)], px = left + (static_cast<double>(m) + 0.5) * dx, py = std::isfinite(x) ? Y(x) : y0 + ph;
      cv.color(mc);
      if (triangle) {
        cairo_move_to(cv.cr, px, py - 4);
        cairo_line_to(cv.cr, px + 3.5, py + 2.5);
        cairo_line_to(cv.cr, px - 3.5, py + 2.5);
        cairo_close_path(cv.cr);
      } else {
        cairo_arc(cv.cr, px, py, 2.6, 0, 2 * M_PI);
      }
      cairo_fill(cv.cr);
    }
  };
  panel(top, f.waad, waad_c, "WAAD (tokens)", f.preplan, pre_c, false);
  panel(top + ph + gap, f.fai, fai_c, "FAI", f.anchor, anc_c, true);
  cv.col_labels(left, top + 2 * ph + gap + 4, dx, T, labels, 7, true);
  cv.text(left + pw / 2, Hh - 12, "token", 10, 0.5, 0.5);
  // Legend above the plots.
  double x = left;
  auto entry = [&](const float* c, const std::string& s, int shape) {
    cv.color(c);
    if (shape == 0) cv.line(x, 36, x + 14, 36, c, 1.6);
    else if (shape == 1) cairo_arc(cv.cr, x + 7, 36, 2.6, 0, 2 * M_PI), cairo_fill(cv.cr);
    else if (shape == 2) {
      cairo_move_to(cv.cr, x + 7, 32), cairo_line_to(cv.cr, x + 10.5, 38.5), cairo_line_to(cv.cr, x + 3.5, 38.5), cairo_close_path(cv.cr);
      cairo_fill(cv.cr);
    } else {
      cv.line(x, 36, x + 14, 36, c, 0.8, true);
    }
    cv.text(x + 18, 36, s, 8, 0, 0.5);
    x += 18 + cv.width(s, 8) + 14;
  };
  entry(waad_c, "WAAD of the local heads", 0);
  entry(pre_c, "preplan tokens (" + std::to_string(f.preplan.size()) + ")", 1);
  entry(fai_c, "FAI of the global heads", 0);
  entry(anc_c, "anchor tokens (" + std::to_string(f.anchor.size()) + ")", 2);
  if (f.response_start >= 0) entry(kAxisGrey, "response starts", 3);
}

void draw(Canvas& cv, const RankingFigure& f) {
  const size_t N = f.heads.size();
  need(N > 0, "the ranking has no heads");
  std::vector<double> v;
  for (const RankedHead& h : f.heads) v.push_back(h.value);
  resolve(f.scale, v, *cv.L);
  const double bar = 14, gap = 4, top = 40, pw = 360;
  std::vector<std::string> names;
  for (const RankedHead& h : f.heads) names.push_back(head_label(h.layer, h.head));
  double lo = 0, hi = 0;
  for (double x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  if (hi <= lo) hi = lo + 1;
  int dec = 0;
  const std::vector<double> ticks = nice_ticks(lo, hi, 5, &dec);
  lo = std::min(lo, ticks.front()), hi = std::max(hi, ticks.back());
  std::vector<std::string> values;
  for (double x : v) values.push_back(num(x, 3));
  const double vw = cv.widest(values, 8);
  const double left = snap(18 + cv.widest(names, 9) + 10 + (lo < 0 ? vw + 4 : 0)), ph = static_cast<double>(N) * (bar + gap) + gap;
  auto X = [&](double x) { return left + (x - lo) / (hi - lo) * pw; };
  const std::string bar_label = with_units(f.label, f.units);
  const double W = left + pw + vw + 24 + cv.colorbar_width(bar_label) + 14;
  cv.page(std::max(W, cv.width(clean(f.title), 13, true) + 40), top + ph + 44);
  cv.title(f.title);
  cv.L->cells.clear();
  for (double t : ticks) {
    const float light[3] = {0.92f, 0.92f, 0.92f};
    cv.line(X(t), top, X(t), top + ph, t == 0 ? kAxisGrey : light, t == 0 ? 0.8 : 0.5);
    cv.line(X(t), top + ph, X(t), top + ph + 3, kAxisGrey, 0.6);
    cv.text(X(t), top + ph + 5, tick_label(t, dec), 8, 0.5, 0);
  }
  for (size_t i = 0; i < N; ++i) {
    const double y = snap(top + gap + static_cast<double>(i) * (bar + gap));
    const double x = std::isfinite(v[i]) ? v[i] : 0;
    const double x0 = snap(X(std::min(0.0, x))), x1 = snap(X(std::max(0.0, x)));
    const FigureRect r{x0, y, std::max(x1 - x0, 0.5), bar};
    cv.L->cells.push_back(r);
    float rgb[3];
    cv.value_color(v[i], rgb);
    cv.fill(r, rgb);
    cv.text(left - 6 - (lo < 0 ? vw + 4 : 0), y + bar / 2, names[i], 9, 1, 0.5);
    if (x >= 0) cv.text(x1 + 4, y + bar / 2, values[i], 8, 0, 0.5);
    else cv.text(x0 - 4, y + bar / 2, values[i], 8, 1, 0.5);
  }
  cv.stroke_rect({left, top, pw, ph}, kAxisGrey, 0.6);
  cv.text(left + pw / 2, top + ph + 28, bar_label, 10, 0.5, 0.5);
  cv.text(10, top + ph / 2, "head (layer.head)", 10, 0.5, 0.5, false, -M_PI / 2);
  cv.colorbar(left + pw + vw + 24, top, std::max(std::min(ph, 300.0), 60.0), bar_label);
}

const std::vector<std::string>& circuit_classes() {
  static const std::vector<std::string> c{"name mover", "negative mover", "S-inhibition", "induction", "duplicate-token", "previous-token"};
  return c;
}
const float* class_color(const std::string& cls) {
  static const float colors[7][3] = {{0.839f, 0.153f, 0.157f}, {0.122f, 0.467f, 0.706f}, {1.0f, 0.498f, 0.055f}, {0.173f, 0.627f, 0.173f},
                                     {0.580f, 0.404f, 0.741f}, {0.549f, 0.337f, 0.294f}, {0.6f, 0.6f, 0.6f}};
  const auto& c = circuit_classes();
  const size_t i = static_cast<size_t>(std::find(c.begin(), c.end(), cls) - c.begin());
  return colors[std::min<size_t>(i, 6)];
}

void draw(Canvas& cv, const CircuitFigure& f) {
  need(f.layers > 0 && f.heads > 0, "the circuit needs the model's layers and heads");
  need(!f.nodes.empty(), "the circuit has no heads");
  for (const CircuitEdge& e : f.edges)
    need(e.from >= 0 && e.from < static_cast<int64_t>(f.nodes.size()) && e.to >= -1 && e.to < static_cast<int64_t>(f.nodes.size()),
         "a circuit edge names a node that is not there");
  std::set<int> used;
  for (const CircuitNode& n : f.nodes) used.insert(n.layer);
  const std::vector<int> cols(used.begin(), used.end());
  std::map<int, std::vector<size_t>> in_col;
  for (size_t i = 0; i < f.nodes.size(); ++i) in_col[f.nodes[i].layer].push_back(i);
  size_t deepest = 0;
  for (auto& [l, v] : in_col) {
    std::sort(v.begin(), v.end(), [&](size_t a, size_t b) { return f.nodes[a].head < f.nodes[b].head; });
    deepest = std::max(deepest, v.size());
  }
  const double node_w = 40, node_h = 18, colw = 70, rowh = 38, top = 44, left = 50;
  const double ph = std::max(static_cast<double>(deepest) * rowh, 3 * rowh), pw = static_cast<double>(cols.size()) * colw;
  const double logits_x = left + pw + 30;
  cv.page(std::max(logits_x + 70 + 20, 560.0), top + ph + 96);
  cv.title(f.title);
  std::vector<FigureRect> rects(f.nodes.size());
  for (size_t c = 0; c < cols.size(); ++c) {
    const auto& v = in_col[cols[c]];
    const double y0 = top + (ph - static_cast<double>(v.size()) * rowh) / 2;
    for (size_t k = 0; k < v.size(); ++k)
      rects[v[k]] = {snap(left + static_cast<double>(c) * colw + (colw - node_w) / 2), snap(y0 + static_cast<double>(k) * rowh + 4), node_w, node_h};
  }
  const FigureRect logits{logits_x, top + ph / 2 - 12, 56, 24};
  // Edges first (under the nodes): sender's right edge to the receiver's left edge.
  const float edge_c[3] = {0.55f, 0.55f, 0.55f};
  for (const CircuitEdge& e : f.edges) {
    const FigureRect& a = rects[static_cast<size_t>(e.from)];
    const FigureRect& b = e.to < 0 ? logits : rects[static_cast<size_t>(e.to)];
    const double x0 = a.x + a.w, y0 = a.y + a.h / 2, x1 = b.x, y1 = b.y + b.h / 2;
    cv.color(edge_c, 0.8);
    cairo_set_line_width(cv.cr, 0.9);
    const double mid = (x0 + x1) / 2;
    cairo_move_to(cv.cr, x0, y0);
    cairo_curve_to(cv.cr, mid, y0, mid, y1, x1 - 4, y1);
    cairo_stroke(cv.cr);
    cairo_move_to(cv.cr, x1, y1);
    cairo_line_to(cv.cr, x1 - 5, y1 - 2.5);
    cairo_line_to(cv.cr, x1 - 5, y1 + 2.5);
    cairo_close_path(cv.cr);
    cairo_fill(cv.cr);
  }
  cv.L->cells = rects;
  const float white_bg[3] = {1, 1, 1};
  for (size_t i = 0; i < f.nodes.size(); ++i) {
    const CircuitNode& n = f.nodes[i];
    const float* c = class_color(n.cls);
    cv.fill(rects[i], c);
    const float white[3] = {1, 1, 1};
    cv.text(rects[i].x + node_w / 2, rects[i].y + node_h / 2, head_label(n.layer, n.head), 9, 0.5, 0.5, true, 0, white);
    const std::string eff = (n.effect >= 0 ? "+" : "") + num(n.effect, 2);
    const double ew = cv.width(eff, 7.5) + 4;
    cv.color(white_bg, 0.85);
    cairo_rectangle(cv.cr, rects[i].x + node_w / 2 - ew / 2, rects[i].y + node_h + 2, ew, 10);
    cairo_fill(cv.cr);
    cv.text(rects[i].x + node_w / 2, rects[i].y + node_h + 7, eff, 7.5, 0.5, 0.5);
  }
  const float dark[3] = {0.25f, 0.25f, 0.25f};
  cv.fill(logits, dark);
  const float white[3] = {1, 1, 1};
  cv.text(logits.x + logits.w / 2, logits.y + logits.h / 2, "logits", 9, 0.5, 0.5, true, 0, white);
  // The layer axis: the layers that hold heads of the circuit.
  cv.line(left, top + ph + 6, left + pw, top + ph + 6, kAxisGrey, 0.6);
  for (size_t c = 0; c < cols.size(); ++c) {
    const double cx = left + (static_cast<double>(c) + 0.5) * colw;
    cv.line(cx, top + ph + 6, cx, top + ph + 9, kAxisGrey, 0.6);
    cv.text(cx, top + ph + 11, std::to_string(cols[c]), 8, 0.5, 0);
  }
  cv.text(left + pw / 2, top + ph + 30, "layer (of " + std::to_string(f.layers) + "; heads: layer.head, effect below)", 10, 0.5, 0.5);
  // Legend: the classes present.
  double x = left;
  std::set<std::string> present;
  for (const CircuitNode& n : f.nodes) present.insert(n.cls);
  std::vector<std::string> order = circuit_classes();
  for (const auto& p : present)
    if (std::find(order.begin(), order.end(), p) == order.end()) order.push_back(p);
  double y = top + ph + 52;
  for (const std::string& cls : order) {
    if (!present.count(cls)) continue;
    const double w = 14 + cv.width(cls, 8) + 14;
    if (x + w > cv.L->width - 10) x = left, y += 16;
    cv.fill({x, y - 5, 10, 10}, class_color(cls));
    cv.text(x + 14, y, cls, 8, 0, 0.5);
    x += w;
  }
}

void draw(Canvas& cv, const BindingFigure& f) {
  const size_t M = f.mechanisms.size(), N = f.rows.size();
  need(M > 0 && N > 0, "the binding mix has no mechanisms or positions");
  for (const BindingRow& r : f.rows) need(r.shares.size() == M, "a binding row has " + std::to_string(r.shares.size()) + " shares for " + std::to_string(M) + " mechanisms");
  const double bw = 34, gap = 16, top = 40, ph = 240, left = 64, pw = static_cast<double>(N) * (bw + gap) + gap;
  double lw = 0;
  for (const auto& m : f.mechanisms) lw = std::max(lw, cv.width(m, 9));
  cv.page(std::max(left + pw + 24 + 14 + lw + 20, cv.width(clean(f.title), 13, true) + 40), top + ph + 56);
  cv.title(f.title);
  auto Y = [&](double s) { return top + ph - s * ph; };
  for (double t : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    const float light[3] = {0.92f, 0.92f, 0.92f};
    if (t > 0 && t < 1) cv.line(left, Y(t), left + pw, Y(t), light, 0.5);
    cv.line(left - 3, Y(t), left, Y(t), kAxisGrey, 0.6);
    cv.text(left - 5, Y(t), tick_label(t, 2), 8, 1, 0.5);
  }
  cv.L->cells.clear();
  for (size_t i = 0; i < N; ++i) {
    const double x = snap(left + gap + static_cast<double>(i) * (bw + gap));
    double acc = 0;
    for (size_t k = 0; k < M; ++k) {
      const double s = std::isfinite(f.rows[i].shares[k]) ? std::max(0.0, f.rows[i].shares[k]) : 0;
      const double y0 = snap(Y(acc + s)), y1 = snap(Y(acc));
      const FigureRect r{x, y0, bw, y1 - y0};
      cv.L->cells.push_back(r);
      if (r.h > 0) cv.fill(r, kPalette[k % 10]);
      acc += s;
    }
    cv.text(x + bw / 2, Y(std::min(acc, 1.0)) - 7, "n=" + std::to_string(f.rows[i].items), 7.5, 0.5, 0.5, false, 0, kAxisGrey);
    cv.text(x + bw / 2, top + ph + 5, std::to_string(f.rows[i].p), 8, 0.5, 0);
  }
  cv.stroke_rect({left, top, pw, ph}, kAxisGrey, 0.6);
  cv.text(18, top + ph / 2, "share of items", 10, 0.5, 0.5, false, -M_PI / 2);
  cv.text(left + pw / 2, top + ph + 30, "query position p (group of the counterfactual's query)", 10, 0.5, 0.5);
  for (size_t k = 0; k < M; ++k) {
    const double y = top + 10 + static_cast<double>(M - 1 - k) * 16;  // legend in stacking order, top = last
    cv.fill({left + pw + 24, y - 5, 10, 10}, kPalette[k % 10]);
    cv.text(left + pw + 24 + 14, y, f.mechanisms[k], 9, 0, 0.5);
  }
}

FigureLayout render(cairo_t* cr, const Figure& f) {
  // Unhinted metrics: text measures the same on every surface and scale, so the layout pass and the drawing agree.
  cairo_font_options_t* fo = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
  cairo_set_font_options(cr, fo);
  cairo_font_options_destroy(fo);
  FigureLayout L;
  Canvas cv{cr, &L};
  std::visit([&](const auto& x) { draw(cv, x); }, f);
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) throw Error(std::string("figure: drawing failed: ") + cairo_status_to_string(cairo_status(cr)));
  return L;
}

std::string lower_ext(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

struct SurfaceGuard {
  cairo_surface_t* s = nullptr;
  cairo_t* cr = nullptr;
  ~SurfaceGuard() {
    if (cr) cairo_destroy(cr);
    if (s) cairo_surface_destroy(s);
  }
};

}  // namespace

void figure_color(const FigureLayout& layout, double v, float rgb[3]) {
  if (std::isnan(v)) {
    rgb[0] = kNanGrey[0], rgb[1] = kNanGrey[1], rgb[2] = kNanGrey[2];
    return;
  }
  colormap_rgb(layout.colormap, static_cast<float>(unit_of(layout, v)), rgb);
}

std::string figure_kind(const Figure& f) {
  static const char* names[] = {"grid", "attention", "tokens", "sinks", "timeline", "ranking", "circuit", "binding", "compare"};
  return names[f.index()];
}

FigureLayout figure_layout(const Figure& f) {
  SurfaceGuard g;
  g.s = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, nullptr);
  g.cr = cairo_create(g.s);
  return render(g.cr, f);
}

void check_figure_path(const std::string& path) {
  const std::string ext = lower_ext(path);
  if (ext != ".png" && ext != ".svg" && ext != ".pdf")
    throw Error("cannot write a figure as '" + (ext.empty() ? path : ext) + "': the file name must end in .png, .svg or .pdf");
}

FigureLayout save_figure(const Figure& f, const std::string& path) {
  check_figure_path(path);
  const std::string ext = lower_ext(path);
  const FigureLayout L = figure_layout(f);  // checks the data and fixes the page size before anything is written
  const std::string part = path + ".part";
  try {
    SurfaceGuard g;
    if (ext == ".png") {
      g.s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(std::ceil(L.width * L.png_scale)),
                                       static_cast<int>(std::ceil(L.height * L.png_scale)));
    } else if (ext == ".svg") {
      g.s = cairo_svg_surface_create(part.c_str(), L.width, L.height);
    } else {
      g.s = cairo_pdf_surface_create(part.c_str(), L.width, L.height);
      cairo_pdf_surface_set_metadata(g.s, CAIRO_PDF_METADATA_CREATOR, "headscope");
    }
    if (cairo_surface_status(g.s) != CAIRO_STATUS_SUCCESS)
      throw Error("cannot write " + path + ": " + cairo_status_to_string(cairo_surface_status(g.s)));
    g.cr = cairo_create(g.s);
    if (ext == ".png") cairo_scale(g.cr, L.png_scale, L.png_scale);
    const FigureLayout drawn = render(g.cr, f);
    if (drawn.width != L.width || drawn.height != L.height || drawn.cells.size() != L.cells.size())
      throw Error("figure: the drawing pass disagrees with the layout pass (" + std::to_string(drawn.width) + " x " + std::to_string(drawn.height) +
                  " vs " + std::to_string(L.width) + " x " + std::to_string(L.height) + ")");
    for (size_t i = 0; i < L.cells.size(); ++i)
      if (std::fabs(drawn.cells[i].x - L.cells[i].x) > 1e-9 || std::fabs(drawn.cells[i].y - L.cells[i].y) > 1e-9)
        throw Error("figure: the drawing pass put cell " + std::to_string(i) + " elsewhere than the layout pass");
    cairo_show_page(g.cr);
    if (ext == ".png") {
      const cairo_status_t st = cairo_surface_write_to_png(g.s, part.c_str());
      if (st != CAIRO_STATUS_SUCCESS) throw Error("cannot write " + path + ": " + cairo_status_to_string(st));
    }
    cairo_destroy(g.cr), g.cr = nullptr;
    cairo_surface_finish(g.s);
    const cairo_status_t st = cairo_surface_status(g.s);
    if (st != CAIRO_STATUS_SUCCESS) throw Error("cannot write " + path + ": " + cairo_status_to_string(st));
    std::error_code ec;
    if (!std::filesystem::exists(part, ec)) throw Error("cannot write " + path + ": nothing was written (is the folder there?)");
    std::filesystem::rename(part, path, ec);
    if (ec) throw Error("cannot write " + path + ": " + ec.message());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(part, ec);
    throw;
  }
  return L;
}

}  // namespace headscope
