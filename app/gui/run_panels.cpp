// headscope-gui's run-file panels (see run_panels.h). Reading a run file, building a figure's data and exporting
// run on one background thread, so a large file never stalls a frame; the panel draws the last finished result.
#include "app/gui/run_panels.h"

#include <imgui_stdlib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "app/gui/app.h"
#include "core/error.h"
#include "core/text.h"
#include "probes/run_views.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace headscope::gui {
namespace {

// A figure's colour scale as core/scale.h's Scale (the bounds the figure code resolved from the data).
Scale scale_of(const FigureLayout& l) { return Scale{l.lo, l.hi, l.log, l.log ? l.lo : 1e-4}; }

const ImU32 kText = IM_COL32(215, 215, 215, 255), kDim = IM_COL32(140, 140, 140, 255);

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// The circuit classes' colours (the figure renderer's are its own; these only need to tell classes apart on screen).
ImU32 class_colour(const std::string& cls) {
  if (cls == "name mover") return IM_COL32(230, 85, 13, 255);
  if (cls == "negative mover") return IM_COL32(49, 130, 189, 255);
  if (cls == "S-inhibition") return IM_COL32(117, 107, 177, 255);
  if (cls == "induction") return IM_COL32(49, 163, 84, 255);
  if (cls == "duplicate-token") return IM_COL32(214, 39, 40, 255);
  if (cls == "previous-token") return IM_COL32(188, 189, 34, 255);
  return IM_COL32(150, 150, 150, 255);
}

}  // namespace

struct RunPanels::State {
  std::string record_prompts, record_output = "run.h5";
  // Background work: one task at a time.
  std::thread thread;
  std::atomic<bool> loading{false};
  std::mutex mu;  // guards everything below that the task writes
  // The run file.
  std::string run_input, path, checkpoint, what, error, export_note;
  std::string export_path = "figure.pdf", compare_export_path = "compare.pdf";
  int64_t item = -1;
  std::optional<RunContents> contents;
  std::optional<Figure> fig;
  std::optional<RankingFigure> rank;
  FigureLayout fig_layout, rank_layout;
  std::vector<NiahCondition> niah;
  fs::file_time_type mtime{};
  std::chrono::steady_clock::time_point last_check{};
  // Comparison.
  std::string cmp_a, cmp_b, cmp_error;
  std::optional<RunComparison> cmp;
  int cmp_entry = 0;
  // Where the panel drew things (for the scripted mode's records).
  json drawn = json::object();

  ~State() {
    if (thread.joinable()) thread.join();
  }
  // Runs `task` on the background thread (after the previous one); its Error goes to `err`.
  void background(std::function<void()> task, std::string* err) {
    if (thread.joinable()) thread.join();
    loading = true;
    thread = std::thread([this, task = std::move(task), err] {
      try {
        task();
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lk(mu);
        *err = e.what();
      }
      loading = false;
    });
  }
};

RunPanels::RunPanels() : st(std::make_unique<State>()) {}
RunPanels::~RunPanels() = default;

void RunPanels::draw_record(App& app) {
  ImGui::InputText("prompt file", &st->record_prompts);
  ImGui::InputText("run file", &st->record_output);
  if (ImGui::Button("Record") && app.worker.model() && !app.worker.busy()) app.worker.record(st->record_prompts, st->record_output);
  ImGui::SameLine();
  if (ImGui::Button("Open the run file")) open_run(st->record_output), tab_request = 1;
}

// (Re)reads the open run file and builds the chosen figure. A new `what` or item, a reload, or a watch tick.
static void load(RunPanels::State& s, const std::string& path, std::string what, int64_t item) {
  RunReader r(path);
  RunContents c = run_contents(r);
  if (what.empty()) {  // a first look: the first complete probe's ranking, else a statistic, else a circuit
    for (const RunProbeInfo& p : c.probes)
      if (p.complete && !p.scores.empty() && p.name.find('/') == std::string::npos) {
        what = "probe:" + p.name;
        break;
      }
    if (what.empty() && c.has_circuit && c.status == "complete") what = "view:circuit";
    if (what.empty() && !c.binding.empty() && c.status == "complete") what = "view:binding";
    if (what.empty() && !c.stats.empty()) what = "stat:" + (std::find(c.stats.begin(), c.stats.end(), "entropy") != c.stats.end() ? "entropy" : c.stats[0]);
  }
  std::optional<Figure> fig;
  std::optional<RankingFigure> rank;
  std::vector<NiahCondition> niah;
  std::string error;
  try {
    // "stat:NAME", "probe:NAME[:SCORE]" (a grid and its ranking) or "view:KIND": the request `headscope figure` makes.
    const size_t colon = what.find(':');
    const std::string kind = what.substr(0, colon), name = colon == std::string::npos ? "" : what.substr(colon + 1);
    FigureRequest q;
    q.item = item, q.checkpoint = s.checkpoint;
    if (kind == "stat" || kind == "probe") {
      q.kind = "grid";
      if (kind == "stat") q.stat = name;
      else q.probe = name.substr(0, name.find(':')), q.score = name.find(':') == std::string::npos ? "" : name.substr(name.find(':') + 1);
      HeadGridFigure g = std::get<HeadGridFigure>(run_figure(r, path, q));
      rank = ranking(g, 20);
      fig = std::move(g);
    } else if (what == "view:retrieval") {
      niah = niah_table(r);
      for (auto& p : c.probes)
        if (p.name == "retrieval" && p.complete) {
          HeadGridFigure g = score_grid(r, "retrieval", "", -1);
          rank = ranking(g, 20);
          fig = std::move(g);
        }
      if (niah.empty() && !fig) throw Error("this run has no retrieval scores and no masking or KV-budget conditions");
    } else if (kind == "view") {
      q.kind = name;
      fig = run_figure(r, path, q);
    } else {
      throw Error("cannot show '" + what + "' (stat:NAME, probe:NAME[:SCORE], view:sinks|timeline|circuit|binding|retrieval)");
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  FigureLayout fl, rl;
  if (fig) fl = figure_layout(*fig);
  if (rank && !rank->heads.empty()) rl = figure_layout(*rank);
  std::error_code ec;
  const auto mtime = fs::last_write_time(path, ec);
  std::lock_guard<std::mutex> lk(s.mu);
  s.contents = std::move(c), s.fig = std::move(fig), s.rank = std::move(rank), s.niah = std::move(niah), s.error = error;
  s.fig_layout = fl, s.rank_layout = rl, s.what = what, s.mtime = mtime;
}

void RunPanels::open_run(const std::string& path) {
  {
    std::lock_guard<std::mutex> lk(st->mu);
    st->path = st->run_input = path, st->what.clear(), st->item = -1, st->error.clear();
    st->contents.reset(), st->fig.reset(), st->rank.reset(), st->niah.clear();
  }
  State* s = st.get();
  st->background([s, path] { load(*s, path, "", -1); }, &st->error);
}

void RunPanels::show(const std::string& what) {
  State* s = st.get();
  const std::string path = s->path;
  const int64_t item = s->item;
  st->background([s, path, what, item] { load(*s, path, what, item); }, &st->error);
}

void RunPanels::set_item(int item) {
  State* s = st.get();
  s->item = item;
  const std::string path = s->path, what = s->what;
  st->background([s, path, what, item] { load(*s, path, what, item); }, &st->error);
}

void RunPanels::open_compare(const std::string& a, const std::string& b) {
  State* s = st.get();
  s->cmp_a = a, s->cmp_b = b;
  {
    std::lock_guard<std::mutex> lk(s->mu);
    s->cmp_error.clear(), s->cmp.reset(), s->cmp_entry = 0;
  }
  st->background([s, a, b] {
    RunComparison c = compare_runs(a, b);
    std::lock_guard<std::mutex> lk(s->mu);
    s->cmp = std::move(c);
  }, &st->cmp_error);
}

// The figure of the panel on screen (the Views tab): the live attention view, the run file's, or the comparison.
void RunPanels::export_figure(const std::string& path, std::optional<Figure> live, int panel) {
  check_figure_path(path);
  std::optional<Figure> f = std::move(live);
  if (panel < 0) panel = tab;
  {
    std::lock_guard<std::mutex> lk(st->mu);
    if (!f && panel == 1) f = st->fig;
    if (!f && panel == 2 && st->cmp && st->cmp_entry < static_cast<int>(st->cmp->entries.size()))
      f = compare_grid(*st->cmp, st->cmp->entries[st->cmp_entry].name, 5);
  }
  if (!f) throw Error("nothing to export in this panel yet");
  State* s = st.get();
  auto fig = std::make_shared<Figure>(std::move(*f));
  st->background([s, fig, path] {
    const auto t0 = std::chrono::steady_clock::now();
    save_figure(*fig, path);
    std::lock_guard<std::mutex> lk(s->mu);
    s->export_note = "wrote " + path + " (" + fmt("%.2f", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) + " s)";
  }, &st->export_note);
}

void RunPanels::export_or_say(const std::string& path, std::optional<Figure> live) {
  try {
    export_figure(path, std::move(live));
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lk(st->mu);
    st->export_note = e.what();
  }
}

// One figure drawn with ImGui: the same data the exported figure draws.
static void draw_figure(RunPanels::State& s, const Figure& fig, const FigureLayout& fl, int cmap, json& drawn) {
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const Scale sc = scale_of(fl);
  const int fcmap = fl.colormap == kColormapViridis ? cmap : fl.colormap;
  if (auto* g = std::get_if<HeadGridFigure>(&fig)) {
    HeatmapLayout lay;
    const float h = std::min(avail.y * 0.5f, std::max(160.f, avail.x * g->layers / std::max<int64_t>(1, g->heads) * 0.6f));
    ImGui::TextUnformatted(g->title.c_str());
    auto [hl, hh] = draw_heatmap("rgrid", ImVec2(avail.x, h), static_cast<int>(g->layers), static_cast<int>(g->heads),
                                 [&](int l, int hd) { return g->values[l * g->heads + hd]; }, [](int l) { return std::to_string(l); },
                                 [](int hd) { return std::to_string(hd); }, sc, fcmap, g->units.empty() ? g->label : g->units, &lay);
    if (hl >= 0) ImGui::SetTooltip("head %d.%d\n%s = %.5g", hl, hh, g->label.c_str(), g->values[hl * g->heads + hh]);
    drawn["grid"] = {{"x0", lay.x0}, {"y0", lay.y0}, {"cell_w", lay.cell_w}, {"cell_h", lay.cell_h}, {"lo", sc.lo}, {"hi", sc.hi}, {"log", sc.log}, {"colormap", fcmap}};
  } else if (auto* sv = std::get_if<SinkViewFigure>(&fig)) {
    const int T = static_cast<int>(sv->tokens.size());
    ImGui::TextUnformatted(sv->title.c_str());
    HeatmapLayout lay;
    auto [hl, ht] = draw_heatmap("sinks", ImVec2(avail.x, std::min(avail.y * 0.6f, std::max(200.f, sv->layers * 12.f))), static_cast<int>(sv->layers), T,
                                 [&](int l, int t) { return sv->score[static_cast<size_t>(l) * T + t]; }, [](int l) { return std::to_string(l); },
                                 [&](int t) { return visible_token(sv->tokens[t]); }, sc, fcmap, sv->label, &lay);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    for (const SinkMark& m : sv->sinks) {  // each flagged token's layers [l_start, l_start + lifetime)
      const ImU32 col = m.kind == "primary" ? IM_COL32(255, 60, 60, 255) : m.kind == "secondary" ? IM_COL32(255, 170, 0, 255) : IM_COL32(200, 200, 200, 255);
      dl->AddRect(ImVec2(lay.x0 + m.position * lay.cell_w, lay.y0 + m.l_start * lay.cell_h),
                  ImVec2(lay.x0 + (m.position + 1) * lay.cell_w, lay.y0 + (m.l_start + m.lifetime) * lay.cell_h), col, 0, 0, 2.f);
    }
    if (sv->anchor >= 0) dl->AddTriangleFilled(ImVec2(lay.x0 + (sv->anchor + 0.5f) * lay.cell_w, lay.y0 + lay.rows * lay.cell_h + 2),
                                               ImVec2(lay.x0 + (sv->anchor + 0.5f) * lay.cell_w - 5, lay.y0 + lay.rows * lay.cell_h + 10),
                                               ImVec2(lay.x0 + (sv->anchor + 0.5f) * lay.cell_w + 5, lay.y0 + lay.rows * lay.cell_h + 10), kText);
    if (hl >= 0) ImGui::SetTooltip("layer %d, token %d '%s'\nsink score %.4g", hl, ht, visible_token(sv->tokens[ht]).c_str(), sv->score[static_cast<size_t>(hl) * T + ht]);
    ImGui::TextDisabled("outlined: primary (red), secondary (orange), other (grey) sinks over their lifetime; triangle: anchor");
    for (const SinkMark& m : sv->sinks)
      ImGui::Text("%s sink at token %lld '%s': layers %lld-%lld", m.kind.c_str(), (long long)m.position, visible_token(sv->tokens[m.position]).c_str(),
                  (long long)m.l_start, (long long)(m.l_start + m.lifetime - 1));
    for (const SinkLevel& l : sv->levels) ImGui::Text("level: from layer %lld for %lld layers, %lld tokens", (long long)l.l_start, (long long)l.lifetime, (long long)l.tokens);
    drawn["sinks"] = {{"x0", lay.x0}, {"y0", lay.y0}, {"cell_w", lay.cell_w}, {"cell_h", lay.cell_h}, {"rows", lay.rows}, {"cols", lay.cols},
                      {"lo", sc.lo}, {"hi", sc.hi}, {"log", sc.log}, {"colormap", fcmap}};
  } else if (auto* tl = std::get_if<TimelineFigure>(&fig)) {
    ImGui::TextUnformatted(tl->title.c_str());
    const int T = static_cast<int>(tl->tokens.size());
    ImDrawList* dl = ImGui::GetWindowDrawList();
    for (int panel = 0; panel < 2; ++panel) {
      const std::vector<double>& v = panel == 0 ? tl->waad : tl->fai;
      ImGui::TextUnformatted(panel == 0 ? "WAAD (tokens)" : "FAI");
      const ImVec2 o = ImGui::GetCursorScreenPos(), sz(avail.x - 60, std::min(180.f, avail.y * 0.3f));
      ImGui::InvisibleButton(panel == 0 ? "waad" : "fai", ImVec2(avail.x, sz.y + 8));
      double lo = 1e300, hi = -1e300;
      for (double x : v)
        if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
      if (!(hi > lo)) hi = lo + 1;
      const auto ticks = nice_ticks(lo, hi, 4);
      auto X = [&](int t) { return o.x + 50 + sz.x * (t + 0.5f) / std::max(1, T); };
      auto Y = [&](double y) { return o.y + sz.y - sz.y * static_cast<float>((y - lo) / (hi - lo)); };
      dl->AddRect(ImVec2(o.x + 50, o.y), ImVec2(o.x + 50 + sz.x, o.y + sz.y), kDim);
      for (double t : ticks) dl->AddText(ImVec2(o.x, Y(t) - 7), kDim, tick_label(t, ticks).c_str());
      if (tl->response_start >= 0) dl->AddLine(ImVec2(X(static_cast<int>(tl->response_start)), o.y), ImVec2(X(static_cast<int>(tl->response_start)), o.y + sz.y), kDim);
      for (int t = 1; t < T; ++t)
        if (std::isfinite(v[t - 1]) && std::isfinite(v[t])) dl->AddLine(ImVec2(X(t - 1), Y(v[t - 1])), ImVec2(X(t), Y(v[t])), IM_COL32(100, 170, 255, 255), 1.5f);
      for (int64_t t : panel == 0 ? tl->preplan : tl->anchor)
        if (t >= 0 && t < T && std::isfinite(v[t])) dl->AddCircleFilled(ImVec2(X(static_cast<int>(t)), Y(v[t])), 4, panel == 0 ? IM_COL32(255, 150, 0, 255) : IM_COL32(255, 60, 60, 255));
      if (ImGui::IsItemHovered()) {
        const int t = static_cast<int>((ImGui::GetIO().MousePos.x - o.x - 50) / sz.x * T);
        if (t >= 0 && t < T) ImGui::SetTooltip("token %d '%s'\n%s = %.4g", t, visible_token(tl->tokens[t]).c_str(), panel == 0 ? "WAAD" : "FAI", v[t]);
      }
    }
    ImGui::TextDisabled("orange: preplan tokens (WAAD)   red: anchor tokens (FAI)   line: the response's first token");
  } else if (auto* cf = std::get_if<CircuitFigure>(&fig)) {
    ImGui::TextUnformatted(cf->title.c_str());
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 o = ImGui::GetCursorScreenPos(), sz(avail.x - 40, std::min(avail.y * 0.7f, 520.f));
    ImGui::InvisibleButton("circuit", ImVec2(avail.x, sz.y + 20));
    const float L = static_cast<float>(std::max<int64_t>(1, cf->layers)), H = static_cast<float>(std::max<int64_t>(1, cf->heads));
    auto pos = [&](int64_t i) {  // x: layer, y: head; -1: the logits at the right
      if (i < 0) return ImVec2(o.x + 20 + sz.x, o.y + sz.y / 2);
      return ImVec2(o.x + 20 + sz.x * (cf->nodes[i].layer + 0.5f) / (L + 1), o.y + sz.y * (cf->nodes[i].head + 0.5f) / H);
    };
    for (const CircuitEdge& e : cf->edges) dl->AddLine(pos(e.from), pos(e.to), IM_COL32(120, 120, 120, 160), 1.f);
    json nodes = json::array();
    for (size_t i = 0; i < cf->nodes.size(); ++i) {
      const ImVec2 p = pos(static_cast<int64_t>(i));
      nodes.push_back({{"head", head_label(cf->nodes[i].layer, cf->nodes[i].head)}, {"class", cf->nodes[i].cls}, {"x", p.x}, {"y", p.y},
                       {"effect", cf->nodes[i].effect}});
      dl->AddCircleFilled(p, 7, class_colour(cf->nodes[i].cls));
      const std::string l = head_label(cf->nodes[i].layer, cf->nodes[i].head);
      dl->AddText(ImVec2(p.x + 9, p.y - 7), kText, l.c_str());
      if (ImGui::IsItemHovered() && std::hypot(ImGui::GetIO().MousePos.x - p.x, ImGui::GetIO().MousePos.y - p.y) < 8)
        ImGui::SetTooltip("%s  %s\nstage %s, effect %+.3f", l.c_str(), cf->nodes[i].cls.c_str(), cf->nodes[i].stage.c_str(), cf->nodes[i].effect);
    }
    dl->AddText(ImVec2(pos(-1).x - 20, pos(-1).y - 7), kText, "logits");
    drawn["circuit"] = nodes;
    dl->AddText(ImVec2(o.x + 20, o.y + sz.y + 4), kDim, "x: layer   y: head");
    for (const char* cls : {"name mover", "negative mover", "S-inhibition", "induction", "duplicate-token", "previous-token"}) {
      ImGui::ColorButton(cls, ImGui::ColorConvertU32ToFloat4(class_colour(cls)), ImGuiColorEditFlags_NoTooltip, ImVec2(10, 10));
      ImGui::SameLine();
      ImGui::TextUnformatted(cls);
      ImGui::SameLine();
    }
    ImGui::NewLine();
  } else if (auto* bf = std::get_if<BindingFigure>(&fig)) {
    ImGui::TextUnformatted(bf->title.c_str());
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImU32 cols[] = {IM_COL32(31, 119, 180, 255), IM_COL32(255, 127, 14, 255), IM_COL32(44, 160, 44, 255), IM_COL32(150, 150, 150, 255), IM_COL32(148, 103, 189, 255)};
    const ImVec2 o = ImGui::GetCursorScreenPos();
    const float bar_h = 22, w = avail.x - 120;
    ImGui::InvisibleButton("binding", ImVec2(avail.x, bar_h * bf->rows.size() + 10));
    json segs = json::array();
    for (size_t r = 0; r < bf->rows.size(); ++r) {
      float x = o.x + 80;
      dl->AddText(ImVec2(o.x, o.y + r * bar_h + 3), kText, ("p = " + std::to_string(bf->rows[r].p)).c_str());
      for (size_t m = 0; m < bf->rows[r].shares.size(); ++m) {
        const float dx = static_cast<float>(bf->rows[r].shares[m]) * w;
        dl->AddRectFilled(ImVec2(x, o.y + r * bar_h), ImVec2(x + dx, o.y + (r + 1) * bar_h - 3), cols[m % 5]);
        segs.push_back({{"row", r}, {"mechanism", bf->mechanisms[m]}, {"x", x}, {"w", dx}});
        x += dx;
      }
    }
    drawn["binding"] = segs;
    for (size_t m = 0; m < bf->mechanisms.size(); ++m) {
      ImGui::ColorButton(bf->mechanisms[m].c_str(), ImGui::ColorConvertU32ToFloat4(cols[m % 5]), ImGuiColorEditFlags_NoTooltip, ImVec2(10, 10));
      ImGui::SameLine();
      ImGui::TextUnformatted(bf->mechanisms[m].c_str());
      ImGui::SameLine();
    }
    ImGui::NewLine();
  }
  (void)s;
}

// Horizontal bars of the top heads, coloured by value on the figure's scale.
static void draw_ranking(const RankingFigure& rf, const FigureLayout& fl, int cmap, json& drawn) {
  ImGui::TextUnformatted(rf.title.c_str());
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const Scale sc = scale_of(fl);
  const int fcmap = fl.colormap == kColormapViridis ? cmap : fl.colormap;
  const ImVec2 o = ImGui::GetCursorScreenPos();
  const float avail = ImGui::GetContentRegionAvail().x, bar_h = 16, w = avail - 140;
  ImGui::Dummy(ImVec2(avail, bar_h * rf.heads.size() + 4));
  double vmax = 0;
  for (const RankedHead& h : rf.heads) vmax = std::max(vmax, std::abs(h.value));
  json bars = json::array();
  for (size_t i = 0; i < rf.heads.size(); ++i) {
    const RankedHead& h = rf.heads[i];
    const float y = o.y + i * bar_h, len = vmax > 0 ? static_cast<float>(std::abs(h.value) / vmax) * w : 0;
    dl->AddText(ImVec2(o.x, y), kText, head_label(h.layer, h.head).c_str());
    dl->AddRectFilled(ImVec2(o.x + 50, y + 1), ImVec2(o.x + 50 + len, y + bar_h - 2), scale_colour(sc, fcmap, h.value));
    dl->AddText(ImVec2(o.x + 56 + len, y), kText, fmt("%.4g", h.value).c_str());
    bars.push_back({{"layer", h.layer}, {"head", h.head}, {"value", h.value}, {"x", o.x + 50}, {"y", y + 1}, {"w", len}, {"h", bar_h - 3}});
  }
  drawn["ranking"] = {{"bars", bars}, {"lo", sc.lo}, {"hi", sc.hi}, {"log", sc.log}, {"colormap", fcmap}};
}

void RunPanels::draw_run(App& app) {
  State& s = *st;
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - 150);
  ImGui::InputTextWithHint("##runfile", "a run file (record, score, circuit, binding, experiment)", &s.run_input);
  ImGui::SameLine();
  if (ImGui::Button("Open") && !s.run_input.empty()) open_run(s.run_input);
  if (s.loading) ImGui::SameLine(), ImGui::TextUnformatted("reading...");
  std::function<void()> pending;  // started after the lock is released (a background task may be waiting for it)
  std::unique_lock<std::mutex> lk(s.mu);
  auto reload = [&](std::string what, int64_t item) {
    State* sp = &s;
    const std::string path = s.path;
    pending = [this, sp, path, what, item] { st->background([sp, path, what, item] { load(*sp, path, what, item); }, &sp->error); };
  };
  if (!s.contents) {
    if (!s.error.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", s.error.c_str());
    else ImGui::TextDisabled("no run file open");
    return;
  }
  const RunContents& c = *s.contents;
  // Watch a run another process is still writing: re-read it every 2 s while it records, or when it changes.
  const auto now = std::chrono::steady_clock::now();
  if (!s.loading && now - s.last_check > std::chrono::seconds(2)) {
    s.last_check = now;
    std::error_code ec;
    const auto mt = fs::last_write_time(s.path, ec);
    if (c.status == "recording" || (!ec && mt != s.mtime)) reload(s.what, s.item);
  }
  ImGui::Text("%s: %s, %lld of %lld items recorded, %lld layers x %lld heads", fs::path(s.path).filename().c_str(), c.status.c_str(),
              (long long)c.n_recorded, (long long)c.n_items, (long long)c.layers, (long long)c.heads);
  // What to show.
  std::vector<std::pair<std::string, std::string>> choices;  // (what, label)
  for (const std::string& n : c.stats) choices.push_back({"stat:" + n, "statistic: " + n});
  for (const RunProbeInfo& p : c.probes)
    if (p.name.find('/') == std::string::npos)
      for (const std::string& sc : p.scores) choices.push_back({"probe:" + p.name + ":" + sc, "probe " + p.name + ": " + sc});
  bool secondary = false, preplan = false, retrieval = !c.niah.empty();
  for (const RunProbeInfo& p : c.probes) secondary |= p.name == "secondary", preplan |= p.name == "preplan", retrieval |= p.name == "retrieval";
  if (secondary || std::find(c.stats.begin(), c.stats.end(), "key_recv") != c.stats.end()) choices.push_back({"view:sinks", "sink view (per layer, per token)"});
  if (preplan) choices.push_back({"view:timeline", "preplan / anchor timeline"});
  if (retrieval) choices.push_back({"view:retrieval", "retrieval scores and NIAH conditions"});
  if (c.has_circuit) choices.push_back({"view:circuit", "circuit graph"});
  if (!c.binding.empty()) choices.push_back({"view:binding", "binding mechanisms by position"});
  std::string cur_label = s.what;
  for (auto& [w, l] : choices)
    if (w == s.what || w.rfind(s.what + ":", 0) == 0) cur_label = l;  // "probe:P" shows as its first score
  ImGui::SetNextItemWidth(320);
  if (ImGui::BeginCombo("show", cur_label.c_str())) {
    for (auto& [w, l] : choices)
      if (ImGui::Selectable(l.c_str(), w == s.what)) reload(w, s.item);
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(200);
  const std::string item_label = s.item < 0 ? "all items (mean)" : "item " + std::to_string(s.item);
  if (ImGui::BeginCombo("item", item_label.c_str())) {
    if (ImGui::Selectable("all items (mean)", s.item < 0)) s.item = -1, reload(s.what, -1);
    for (const RunItemInfo& it : c.items) {
      const std::string l = std::to_string(it.index) + (it.probe.empty() ? "" : " [" + it.probe + "]") + (it.recorded ? "  " : "  (not yet)  ") +
                            visible_token(it.text.substr(0, 40));
      if (ImGui::Selectable(l.c_str(), s.item == it.index)) s.item = it.index, reload(s.what, it.index);
    }
    ImGui::EndCombo();
  }
  ImGui::SetNextItemWidth(200);
  ImGui::InputText("##export", &s.export_path);
  ImGui::SameLine();
  if (ImGui::Button("Export")) pending = [this] { export_or_say(st->export_path); };
  ImGui::SameLine();
  ImGui::TextDisabled("%s", s.export_note.empty() ? "PNG, SVG or PDF by the extension" : s.export_note.c_str());
  if (!s.error.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", s.error.c_str());
  s.drawn = json::object();
  ImGui::BeginChild("runfig");
  if (s.fig) draw_figure(s, *s.fig, s.fig_layout, app.settings.colormap, s.drawn);
  if (!s.niah.empty() && ImGui::BeginTable("niah", 4, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit)) {
    for (const char* h : {"condition", "items", "ROUGE-1 x 100", "KV kept"}) ImGui::TableSetupColumn(h);
    ImGui::TableHeadersRow();
    for (const NiahCondition& n : s.niah) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn(), ImGui::TextUnformatted(n.name.c_str());
      ImGui::TableNextColumn(), ImGui::Text("%lld", (long long)n.items);
      ImGui::TableNextColumn(), ImGui::Text("%.1f", n.rouge1);
      // the ROUGE as a bar too
      ImGui::SameLine(70), ImGui::ProgressBar(static_cast<float>(n.rouge1 / 100), ImVec2(120, 0), "");
      ImGui::TableNextColumn(), ImGui::Text("%.0f %%", n.kv_fraction * 100);
    }
    ImGui::EndTable();
  }
  if (s.rank && !s.rank->heads.empty()) draw_ranking(*s.rank, s.rank_layout, app.settings.colormap, s.drawn);
  ImGui::EndChild();
  lk.unlock();
  if (pending) pending();
}

void RunPanels::draw_compare(App& app) {
  State& s = *st;
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x * 0.4f);
  ImGui::InputTextWithHint("##a", "run a (e.g. clean)", &s.cmp_a);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x * 0.6f);
  ImGui::InputTextWithHint("##b", "run b (e.g. ablated)", &s.cmp_b);
  ImGui::SameLine();
  if (ImGui::Button("Compare")) open_compare(s.cmp_a, s.cmp_b);
  bool want_export = false;
  {
  std::lock_guard<std::mutex> lk(s.mu);
  if (!s.cmp_error.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", s.cmp_error.c_str());
  if (!s.cmp) return void(ImGui::TextDisabled(s.loading ? "comparing..." : "two run files of models with the same shape"));
  const RunComparison& c = *s.cmp;
  if (c.entries.empty()) return;
  s.cmp_entry = std::clamp(s.cmp_entry, 0, static_cast<int>(c.entries.size()) - 1);
  ImGui::SetNextItemWidth(300);
  if (ImGui::BeginCombo("value", c.entries[s.cmp_entry].name.c_str())) {
    for (size_t i = 0; i < c.entries.size(); ++i)
      if (ImGui::Selectable((c.entries[i].kind + " " + c.entries[i].name).c_str(), static_cast<int>(i) == s.cmp_entry)) s.cmp_entry = static_cast<int>(i);
    ImGui::EndCombo();
  }
  const CompareEntry& e = c.entries[s.cmp_entry];
  ImGui::SameLine();
  ImGui::SetNextItemWidth(120);
  ImGui::InputText("##cexport", &s.compare_export_path);
  ImGui::SameLine();
  if (ImGui::Button("Export")) want_export = true;
  if (!s.export_note.empty()) ImGui::TextDisabled("%s", s.export_note.c_str());
  if (e.kind == "stat") ImGui::Text("%lld items in both runs%s", (long long)e.items, e.items_with_other_tokens ? " (some with other tokens)" : "");
  const float w = ImGui::GetContentRegionAvail().x;
  const int L = static_cast<int>(c.layers), H = static_cast<int>(c.heads);
  double lo = 1e300, hi = -1e300, m = 0;
  for (size_t i = 0; i < e.a.size(); ++i)
    for (double v : {e.a[i], e.b[i]})
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  for (double d : e.diff)
    if (std::isfinite(d)) m = std::max(m, std::abs(d));
  const float small_h = std::max(120.f, std::min(260.f, w / 2 * L / std::max(1, H)));
  // Side by side on one scale, then the difference on the diverging map centred at 0.
  for (int side = 0; side < 2; ++side) {
    ImGui::BeginGroup();
    ImGui::TextUnformatted(fs::path(side == 0 ? c.path_a : c.path_b).filename().c_str());
    const std::vector<double>& v = side == 0 ? e.a : e.b;
    draw_heatmap(side == 0 ? "ca" : "cb", ImVec2(w / 2 - 8, small_h), L, H, [&](int l, int h) { return v[l * H + h]; },
                 [](int l) { return std::to_string(l); }, [](int h) { return std::to_string(h); }, Scale{lo, hi}, app.settings.colormap, e.units);
    ImGui::EndGroup();
    if (side == 0) ImGui::SameLine();
  }
  ImGui::Text("b - a");
  HeatmapLayout lay;
  auto [hl, hh] = draw_heatmap("cdiff", ImVec2(w, std::max(160.f, std::min(ImGui::GetContentRegionAvail().y * 0.5f, w * L / std::max(1, H) * 0.5f))), L, H,
                               [&](int l, int h) { return e.diff[l * H + h]; }, [](int l) { return std::to_string(l); },
                               [](int h) { return std::to_string(h); }, Scale{-m, m > 0 ? m : 1}, kColormapDiverging, "b - a");
  if (hl >= 0) ImGui::SetTooltip("head %d.%d\na %.5g  b %.5g\nb - a %+.5g", hl, hh, e.a[hl * H + hh], e.b[hl * H + hh], e.diff[hl * H + hh]);
  s.drawn["compare"] = {{"entry", e.name}, {"m", m}};
  ImGui::TextUnformatted("heads that changed most");
  if (ImGui::BeginTable("ranked", 5, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_ScrollY, ImVec2(0, ImGui::GetContentRegionAvail().y))) {
    for (const char* h : {"head", "a", "b", "b - a", "relative"}) ImGui::TableSetupColumn(h);
    ImGui::TableHeadersRow();
    for (size_t i = 0; i < std::min<size_t>(e.ranked.size(), 30); ++i) {
      const HeadDiff& d = e.ranked[i];
      ImGui::TableNextRow();
      ImGui::TableNextColumn(), ImGui::TextUnformatted(head_label(d.layer, d.head).c_str());
      ImGui::TableNextColumn(), ImGui::Text("%.5g", d.a);
      ImGui::TableNextColumn(), ImGui::Text("%.5g", d.b);
      ImGui::TableNextColumn(), ImGui::Text("%+.5g", d.diff);
      ImGui::TableNextColumn(), ImGui::Text(std::isnan(d.relative) ? "-" : "%+.1f %%", d.relative * 100);
    }
    ImGui::EndTable();
  }
  }
  if (want_export) export_or_say(s.compare_export_path);
}

json RunPanels::record() const {
  std::lock_guard<std::mutex> lk(st->mu);
  json j = st->drawn;
  j["loading"] = st->loading.load();
  j["path"] = st->path, j["what"] = st->what, j["item"] = st->item, j["error"] = st->error, j["export"] = st->export_note;
  j["compare_error"] = st->cmp_error;
  if (st->contents) j["status"] = st->contents->status, j["recorded"] = st->contents->n_recorded;
  if (st->cmp && !st->cmp->entries.empty()) {
    const CompareEntry& e = st->cmp->entries[std::clamp(st->cmp_entry, 0, static_cast<int>(st->cmp->entries.size()) - 1)];
    json top = json::array();
    for (size_t i = 0; i < std::min<size_t>(e.ranked.size(), 5); ++i) top.push_back({{"layer", e.ranked[i].layer}, {"head", e.ranked[i].head}, {"diff", e.ranked[i].diff}});
    j["compare"]["top"] = top, j["compare"]["entry"] = e.name;
  }
  return j;
}

}  // namespace headscope::gui
