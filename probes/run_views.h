// What a run file can show, as figure data (analysis/figure.h): the functions the GUI's run-file panels call to draw
// with ImGui and to export, and that `headscope figure` calls before save_figure. Everything is read through
// RunReader (store/run_file.h); nothing here runs a model except attention_view (a run file stores no pattern).
//
// Runs still being written ("recording"): per-token statistics, per-item probe values (heads/tokens/scalars of one
// item) and item texts are read for the items that have landed (RunReader reads the committed parts), so grids of a
// statistic, sink views, timelines and token strips work on them; combined probe scores, rankings, circuits and
// binding mixes are written when the job completes, and asking for them earlier is one Error that says so.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "analysis/figure.h"
#include "model/model.h"
#include "runs/compare.h"
#include "store/run_file.h"

namespace headscope {

// A token id as text (for chips and tick labels).
using TokenText = std::function<std::string(int32_t)>;
// The tokenizer of the checkpoint the run was made with (its /model path), or of `checkpoint` when given; when
// neither can be opened, ids are shown as "#id". Only the tokenizer is read, not the weights.
TokenText run_token_text(const RunReader& r, const std::string& checkpoint = "");

struct RunProbeInfo {
  std::string name, rank_by;
  bool complete = false;                     // combined scores and summary are in the file
  std::vector<std::string> scores;           // combined [layer, head] scores (complete runs)
  std::vector<std::string> head_values, token_values, scalar_values;  // per item (complete runs)
  std::vector<int64_t> items;                // the run items of this probe
};
struct RunItemInfo {
  int64_t index = 0, tokens = 0;
  bool recorded = false;
  std::string probe;                         // the probe it belongs to ("" in a `record` run)
  std::string text;                          // its prompt as recorded
};
struct RunContents {
  std::string status;                        // "complete" or "recording"
  int64_t layers = 0, heads = 0, n_items = 0, n_recorded = 0;
  std::vector<std::string> stats;            // recorded statistics (/stats)
  std::vector<RunProbeInfo> probes;
  std::vector<RunItemInfo> items;
  bool has_circuit = false;                  // circuit/<stage> probes
  std::vector<std::string> binding;          // binding/layer<L> probes
  std::vector<std::string> niah;             // NIAH conditions (niah/..., kv/...)
};
RunContents run_contents(const RunReader& r);
// The model's (layers, heads) as the run file records them.
std::pair<int64_t, int64_t> run_shape(const RunReader& r);

// A recorded statistic per head: item < 0, the mean over each recorded item's tokens, then over those items (every
// item weighs the same, whatever its length; NaN rows skipped); item >= 0, the mean over that item's tokens.
HeadGridFigure stat_grid(const RunReader& r, const std::string& stat, int64_t item = -1);
// A probe's value per head: item < 0, its combined score `score` (complete runs; "" = the probe's rank_by);
// item >= 0, that item's per-head value of that name (/probes/<probe>/heads/<score>), also while recording.
HeadGridFigure score_grid(const RunReader& r, const std::string& probe, const std::string& score = "", int64_t item = -1);
// The `top` heads of a grid by value, highest first (NaN left out; ties: lower layer, then head).
RankingFigure ranking(const HeadGridFigure& grid, int top = 20);

// Per-token values of one item as chips: "<probe>/<value>" (a probe's per-token value, e.g. "preplan/fai"), or a
// statistic by name for one head ("L.H"; empty: the mean over all heads).
TokenStripFigure token_strip(const RunReader& r, int64_t item, const std::string& value, const std::string& head, const TokenText& text);

// The sink view of one item. Sink score s_l(j) = the mean over heads of the mass token j receives from later rows,
// over the number of those rows (the secondary probe's definition), at every layer: for a secondary item, the
// probe's stored "sink_score_l<l>" values; for a recorded item, derived from the key_recv statistic with the run's
// received-mass window (a `record` run: every later row); for a secondary item of a run scored before the probe
// stored every layer, only its "sink_score" at l_start of each flagged token (the other cells NaN, grey). Marks
// (anchor, window, flagged tokens with l_start and lifetime, levels) come from the secondary probe's values of the
// item. The last token (no later row) is NaN. Error when the item has no sink scores.
SinkViewFigure sink_view(const RunReader& r, int64_t item, const TokenText& text);

// The preplan probe's timeline of one item: WAAD and FAI per token, preplan and anchor tokens, the response start.
TimelineFigure preplan_timeline(const RunReader& r, int64_t item, const TokenText& text);

// A circuit (`headscope circuit` runs: the circuit/<stage> probes' selected heads): nodes by layer and class, edges
// from each stage's selected heads to the receivers it was patched into (logits stage: to the logits).
CircuitFigure circuit_graph(const RunReader& r);

// The binding mechanisms by query position p of one binding/layer<L> probe ("" when the run holds one only).
BindingFigure binding_mix(const RunReader& r, const std::string& probe = "");

// The NIAH conditions of a retrieval-masking or KV-budget run (probes niah/... and kv/...), as a table.
struct NiahCondition {
  std::string name;          // "niah/none", "niah/top20", "niah/random20/0", "kv/full", "kv/retrieval/0.1", ...
  int64_t items = 0, heads_changed = 0;
  double rouge1 = 0;         // mean NIAH ROUGE-1 recall x 100
  double kv_fraction = 1;    // the share of the KV cache kept
};
std::vector<NiahCondition> niah_table(const RunReader& r);

// One entry of a comparison (runs/compare.h) as a b - a grid; the heads of its top `mark` differences outlined.
CompareGridFigure compare_grid(const RunComparison& c, const std::string& name, int mark = 0);

// A figure of a run file by request: what `headscope figure` and the GUI's run-file panel both ask for.
struct FigureRequest {
  std::string kind;                // grid | ranking | tokens | sinks | timeline | circuit | binding | compare
  std::string stat;                // grid, ranking, tokens, compare: a recorded statistic
  std::string probe, score;        // or a probe's score: --probe P [--score S], or score "P/S"
  int64_t item = -1;               // grid, ranking, tokens: that item (< 0: the mean over items); sinks, timeline:
                                   //   that item (< 0: the first recorded item the view can show)
  std::string head;                // tokens: colour by this head's statistic (empty: the mean over heads)
  std::string other;               // compare: run b (the figure shows b - this run)
  int top = 20;                    // ranking
  std::string checkpoint;          // whose tokenizer names the tokens (empty: the run's own checkpoint)
};
// Error (one line, naming what the run holds) when the run cannot show it. The colour scale is the figure's default.
Figure run_figure(const RunReader& r, const std::string& path, const FigureRequest& q);

// One head's attention pattern over a prompt (runs/pattern.h), with the tokens as labels.
AttentionFigure attention_view(const Model& m, const std::vector<int32_t>& ids, int layer, int head);

}  // namespace headscope
