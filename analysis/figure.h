// Publication figures of heads, tokens and circuits: plain data (one struct per kind, std::vector/std::string only)
// and one drawing code path (cairo, in figure.cpp) that writes PNG, SVG or PDF by the file's extension. The CLI's
// `headscope figure` and the GUI's export fill these structs from a run file through probes/run_views.h; the GUI
// draws the same data on screen itself. Colours come from core/colormap.h (viridis by default, the diverging map
// for signed differences), so a figure's cell has exactly the colour the GUI gives that value.
//
// Output: a white page, DejaVu Sans, a title, axis labels and a colour bar (with ticks and units) on every
// heatmap. SVG and PDF stay vector: every cell is a rectangle, except a heatmap of more than 200,000 cells, which is
// embedded as one image (nearest-neighbour) with the axes, labels and colour bar still vector; cairo embeds the
// (subset) fonts in a PDF. A figure is written to PATH.part and renamed to PATH when complete, so a failed export
// leaves nothing behind.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/colormap.h"

namespace headscope {

// How values become colours: a colour map of core/colormap.h over [lo, hi] (NaN bounds: the data's finite minimum
// and maximum), linear or log10 (lo > 0; values at or below lo take lo's colour), or symmetric [-m, m] with m the
// largest |value| (for signed values on the diverging map).
struct ColorScale {
  int colormap = kColormapViridis;
  double lo = NAN, hi = NAN;
  bool log = false;
  bool symmetric = false;
};

struct HeadMark {
  int layer = 0, head = 0;
};

// A layers x heads matrix of one value (rows: layer 0 at the top; columns: heads); marked heads are outlined.
struct HeadGridFigure {
  std::string title, label, units;  // label: what the value is ("entropy"); units ("nats", "" for none)
  int64_t layers = 0, heads = 0;
  std::vector<double> values;       // [layers * heads] row-major; NaN: no value (grey)
  std::vector<HeadMark> marked;
  ColorScale scale;
};

// One head's attention pattern: T x T probabilities, row = query, lower triangle (keys after the query are not drawn);
// fixed [0, 1] unless the scale says otherwise. Token tick labels are thinned so that they never overlap.
struct AttentionFigure {
  std::string title;
  std::vector<std::string> tokens;  // T token texts (spaces and newlines are drawn as '·' and '⏎')
  std::vector<double> probs;        // [T * T]
  ColorScale scale{kColormapViridis, 0.0, 1.0, false, false};
};

// Tokens as chips in reading order, each coloured by a value (NaN: grey); spaces are '·', a newline is '⏎' and
// ends the line of chips.
struct TokenStripFigure {
  std::string title, label, units;
  std::vector<std::string> tokens;
  std::vector<double> values;
  ColorScale scale;
};

struct SinkMark {
  int64_t position = 0, l_start = 0, lifetime = 0;
  std::string kind;  // "primary", "secondary" or "noise"
};
struct SinkLevel {
  int64_t l_start = 0, lifetime = 0, tokens = 0;
};
// The sink score per layer (rows) and token (columns), with the anchor token, the scanned layer window
// [l_s, l_e), and each flagged token's layers [l_start, l_start + lifetime) outlined by kind; the recurring levels
// are listed under the plot.
struct SinkViewFigure {
  std::string title, label = "sink score", units;
  std::vector<std::string> tokens;
  int64_t layers = 0;
  std::vector<double> score;  // [layers * T]; NaN: not known (grey)
  int64_t anchor = -1, l_s = -1, l_e = -1;  // -1: not known
  std::vector<SinkMark> sinks;
  std::vector<SinkLevel> levels;
  ColorScale scale;
};

// The preplan probe per token: WAAD (top panel) and FAI (bottom panel) as lines, preplan and anchor tokens marked,
// the response's first token as a dashed line.
struct TimelineFigure {
  std::string title;
  std::vector<std::string> tokens;
  std::vector<double> waad, fai;  // [T] each; NaN outside their domain (not drawn)
  std::vector<int64_t> preplan, anchor;
  int64_t response_start = -1;
};

struct RankedHead {
  int layer = 0, head = 0;
  double value = 0;
};
// Horizontal bars of heads by a score, best first, labelled "L.H" with their values, coloured by value.
struct RankingFigure {
  std::string title, label, units;
  std::vector<RankedHead> heads;
  ColorScale scale;
};

struct CircuitNode {
  int layer = 0, head = 0;
  std::string cls;    // "name mover", "negative mover", "S-inhibition", "induction", "duplicate-token", "previous-token"
  std::string stage;  // the circuit stage that selected it
  double effect = 0;
};
struct CircuitEdge {
  int64_t from = 0, to = 0;  // node indices: the sender, and the receiver whose input it changes (-1: the logits)
};
// A circuit: heads placed by layer (x) and head (y), coloured by class, edges from each stage's senders to its
// receivers, the effect under every node.
struct CircuitFigure {
  std::string title;
  int64_t layers = 0, heads = 0;
  std::vector<CircuitNode> nodes;
  std::vector<CircuitEdge> edges;
};

struct BindingRow {
  int64_t p = 0, items = 0;
  std::vector<double> shares;  // one per BindingFigure::mechanisms, summing to 1
};
// The binding mechanisms' mix per query position p as stacked bars.
struct BindingFigure {
  std::string title;
  std::vector<std::string> mechanisms;  // "positional", "lexical", "reflexive", "no effect", "mixed"
  std::vector<BindingRow> rows;
};

// Two runs' [layer, head] values compared: b - a on the diverging map centred at 0 (symmetric range by default).
struct CompareGridFigure {
  std::string title, label, units, name_a, name_b;
  int64_t layers = 0, heads = 0;
  std::vector<double> diff;  // [layers * heads]
  std::vector<HeadMark> marked;
  ColorScale scale{kColormapDiverging, NAN, NAN, false, true};
};

using Figure = std::variant<HeadGridFigure, AttentionFigure, TokenStripFigure, SinkViewFigure, TimelineFigure, RankingFigure,
                            CircuitFigure, BindingFigure, CompareGridFigure>;

struct FigureRect {
  double x = 0, y = 0, w = 0, h = 0;  // points from the top left
};

// Where a figure put things, in points (SVG and PDF units); a PNG has png_scale pixels per point. cells: the
// coloured value cells — head grid and comparison [layer * heads + head], attention [query * T + key] (keys after
// the query: empty), token strip [token], sink view [layer * T + token], ranking bars in order, circuit nodes in
// order, binding segments [row * mechanisms + mechanism]; empty above 1,000,000 cells.
struct FigureLayout {
  double width = 0, height = 0;
  double png_scale = 2;
  std::vector<FigureRect> cells;
  // The colour scale as resolved from the data (lo, hi after NaN bounds, symmetry and log were applied).
  int colormap = kColormapViridis;
  double lo = 0, hi = 1;
  bool log = false;
  bool raster = false;  // the heatmap is one embedded image (> 200,000 cells)
};

// The layout of a figure without writing it. Error when the data is inconsistent (sizes that do not match, no value).
FigureLayout figure_layout(const Figure& f);
// Writes the figure to `path`: .png, .svg or .pdf (by the extension, case-insensitive; anything else: Error naming
// the accepted ones). Written to path + ".part", then renamed; on failure nothing is left. Returns the layout.
FigureLayout save_figure(const Figure& f, const std::string& path);
// Error (naming the accepted extensions) unless `path` ends in .png, .svg or .pdf: what save_figure checks first,
// for callers that want to refuse a bad name before any work.
void check_figure_path(const std::string& path);
// The colour [0, 1] a value gets under a resolved layout's scale (what figure cells are filled with).
void figure_color(const FigureLayout& layout, double value, float rgb[3]);
// The name of a figure's kind ("grid", "attention", "tokens", "sinks", "timeline", "ranking", "circuit", "binding",
// "compare").
std::string figure_kind(const Figure& f);

}  // namespace headscope
