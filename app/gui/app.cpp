// headscope-gui's live panels (see app.h): model and prompt, token chips, head grid, attention view,
// interventions, keyboard handling, and the window layout.
#include "app/gui/app.h"

#include <GL/gl.h>
#include <imgui_internal.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "app/gui/run_panels.h"
#include "core/error.h"
#include "core/text.h"
#include "hooks/intervention_spec.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace headscope::gui {

const char* const App::kModes[] = {"zero", "mean", "scale", "uniform", "act", "steer"};
const int App::kModeCount = 6;

std::string Settings::dir() {
  const char* x = std::getenv("XDG_CONFIG_HOME");
  const char* h = std::getenv("HOME");
  return (x && *x ? fs::path(x) / "headscope" : fs::path(h ? h : ".") / ".config" / "headscope").string();
}

void Settings::save() const { ImGui::MarkIniSettingsDirty(); }

void Settings::install() {
  ImGuiSettingsHandler h;
  h.TypeName = "Headscope";
  h.TypeHash = ImHashStr("Headscope");
  h.UserData = this;
  h.ReadOpenFn = [](ImGuiContext*, ImGuiSettingsHandler*, const char*) -> void* { return reinterpret_cast<void*>(1); };
  h.ReadLineFn = [](ImGuiContext*, ImGuiSettingsHandler* hh, void*, const char* line) {
    auto* st = static_cast<Settings*>(hh->UserData);
    int cm;
    if (std::sscanf(line, "Colormap=%d", &cm) == 1) st->colormap = cm == 1 ? 1 : 0;
    else if (std::strncmp(line, "LastModel=", 10) == 0) st->last_model = line + 10;
  };
  h.WriteAllFn = [](ImGuiContext*, ImGuiSettingsHandler* hh, ImGuiTextBuffer* buf) {
    auto* st = static_cast<Settings*>(hh->UserData);
    buf->appendf("[Headscope][Settings]\nLastModel=%s\nColormap=%d\n\n", st->last_model.c_str(), st->colormap);
  };
  ImGui::GetCurrentContext()->SettingsHandlers.push_back(h);
}

App::App() : runs(std::make_unique<RunPanels>()) {}
App::~App() = default;

void App::request_run() {
  if (!worker.model()) return;
  worker.run(prompt, sel_layer, sel_head);
}

void App::open(const std::string& path) {
  worker.load(path);
  settings.last_model = path;
  settings.save();
}

void App::select(int l, int h) {
  auto m = worker.model();
  if (m && (l < 0 || l >= m->config().n_layers || h < 0 || h >= m->config().n_heads))
    throw Error("head " + head_label(l, h) + " does not exist (layers 0.." + std::to_string(m->config().n_layers - 1) + ", heads 0.." +
                std::to_string(m->config().n_heads - 1) + ")");
  sel_layer = l, sel_head = h;
  if (shown) worker.pattern(l, h);  // one head's rows from the kept attention inputs: no forward pass
}

void App::hover(int token) {
  forced_hover = token, hover_token = -1;
  if (token >= 0) scroll_to_chip = token;
}

void App::toggle_chosen(int l, int h) {
  auto it = std::find(chosen.begin(), chosen.end(), std::make_pair(l, h));
  if (it == chosen.end()) chosen.push_back({l, h});
  else chosen.erase(it);
}

json App::intervention_spec() const {
  auto m = worker.model();
  if (!m) throw Error("open a model first");
  auto heads = chosen;
  if (heads.empty()) heads.push_back({sel_layer, sel_head});
  const std::string mode = kModes[iv_mode];
  if (mode == "steer") {
    std::vector<int> layers;
    for (auto [l, h] : heads)
      if (std::find(layers.begin(), layers.end(), l) == layers.end()) layers.push_back(l);
    if (iv_steer_vector.empty()) throw Error("steering needs a vector file (a JSON list of d_model numbers)");
    return steer_spec(layers, iv_steer_vector, iv_factor, m->config());
  }
  std::string list;
  for (auto [l, h] : heads) list += (list.empty() ? "" : ",") + head_label(l, h);
  char f[32];
  std::snprintf(f, sizeof f, "%g", iv_factor);
  return spec_for_heads(list, mode == "scale" ? "scale=" + std::string(f) : mode, m->config());
}

void App::run_intervention() {
  std::vector<std::string> targets;
  for (size_t a = 0; a <= iv_targets.size();) {
    size_t b = iv_targets.find('|', a);
    if (b == std::string::npos) b = iv_targets.size();
    if (b > a) targets.push_back(iv_targets.substr(a, b - a));
    a = b + 1;
  }
  worker.intervene(intervention_spec(), iv_mean_data, targets);
}

void App::on_key(const std::string& key) {
  auto m = worker.model();
  if (key == "ctrl+enter") return request_run();
  if (key == "/") return void(focus_search = true);
  if (key == "escape") return search.clear(), void(search_hit = -1);
  if (!m) return;
  const int L = static_cast<int>(m->config().n_layers), H = static_cast<int>(m->config().n_heads);
  int l = sel_layer, h = sel_head;
  if (key == "up") l = std::max(0, l - 1);
  else if (key == "down") l = std::min(L - 1, l + 1);
  else if (key == "left") h = std::max(0, h - 1);
  else if (key == "right") h = std::min(H - 1, h + 1);
  else throw Error("unknown key '" + key + "' (keys: up, down, left, right, ctrl+enter, /, escape)");
  if (l != sel_layer || h != sel_head) select(l, h);
}

void App::keyboard() {
  ImGuiIO& io = ImGui::GetIO();
  if (io.KeyCtrl && (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Enter)) || ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_KeyPadEnter))))
    return on_key("ctrl+enter");
  if (io.WantTextInput) {
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Escape))) on_key("escape");
    return;
  }
  const std::pair<ImGuiKey, const char*> keys[] = {
      {ImGuiKey_UpArrow, "up"}, {ImGuiKey_DownArrow, "down"}, {ImGuiKey_LeftArrow, "left"}, {ImGuiKey_RightArrow, "right"}, {ImGuiKey_Escape, "escape"}};
  for (auto [k, name] : keys)
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(k))) on_key(name);
  for (ImWchar c : io.InputQueueCharacters)
    if (c == '/') on_key("/");
}

void App::find_token(bool next) {
  if (!shown || search.empty()) return void(search_hit = -1);
  const int T = static_cast<int>(shown->tokens.size());
  for (int n = 0; n < T; ++n) {
    const int i = ((next ? search_hit + 1 : std::max(search_hit, 0)) + n) % T;
    if (shown->tokens[i].find(search) != std::string::npos) {
      search_hit = i, hover(i);
      return;
    }
  }
  search_hit = -1;
}

Figure App::live_figure(const std::string& what) const {
  if (!shown) throw Error("run a prompt first: there is nothing to export yet");
  const std::string model = fs::path(worker.model_path()).filename().string();
  const int cmap = settings.colormap;
  if (what == "grid") {
    HeadGridFigure g;
    g.title = model + ": " + head_stat(stat).label, g.label = head_stat(stat).label, g.units = head_stat(stat).units;
    g.layers = shown->summary.n_layers, g.heads = shown->summary.n_heads;
    g.values.assign(shown->summary.values[stat].begin(), shown->summary.values[stat].end());
    g.marked = {{sel_layer, sel_head}};
    g.scale = {cmap, grid.scale.lo, grid.scale.hi, grid.scale.log, false};
    if (grid.scale.log) g.scale.lo = grid.scale.floor;
    return g;
  }
  const bool have = pattern && pattern->run == shown.get();
  if (!have) throw Error("no pattern on screen yet");
  const int T = pattern->T;
  if (what == "attention") {
    AttentionFigure a;
    a.title = model + ": head " + head_label(pattern->layer, pattern->head);
    a.tokens = shown->tokens;
    a.probs.assign(pattern->p.begin(), pattern->p.end());
    a.scale.colormap = cmap;
    return a;
  }
  if (what == "tokens") {
    const int from = forced_hover >= 0 ? forced_hover : T - 1;
    TokenStripFigure t;
    t.title = model + ": attention of head " + head_label(pattern->layer, pattern->head) + " from token " + std::to_string(from);
    t.label = "attention", t.units = "probability", t.tokens = shown->tokens;
    for (int i = 0; i < T; ++i) t.values.push_back(i <= from ? pattern->p[static_cast<size_t>(from) * T + i] : NAN);
    t.scale = {cmap, 0.0, 1.0, false, false};
    return t;
  }
  throw Error("no live figure '" + what + "' (grid, attention, tokens)");
}

void App::export_figure(const std::string& what, const std::string& path) {
  if (what == "run" || what == "compare") {
    return runs->export_figure(path, std::nullopt, what == "run" ? 1 : 2);
  }
  runs->export_figure(path, live_figure(what));
}

void App::export_button(const char* what) {
  ImGui::PushID(what);
  ImGui::SetNextItemWidth(130);
  ImGui::InputText("##path", &export_path);
  ImGui::SameLine();
  if (ImGui::Button("Export")) {
    try {
      export_figure(what, export_path);
    } catch (const std::exception& e) {
      export_error = e.what();
    }
  }
  ImGui::PopID();
}

void App::draw_prompt() {
  // ImGui's multi-line input does not wrap: the prompt is shown wrapped, and edited in place on a click.
  if (editing_prompt) {
    ImGui::SetKeyboardFocusHere();
    ImGui::InputTextMultiline("##prompt", &prompt, ImVec2(-1, 120));
    if (ImGui::IsItemDeactivated()) editing_prompt = false;
    ImGui::TextDisabled("editing: click outside to finish; ctrl+enter runs");
    return;
  }
  ImGui::BeginChild("prompt_view", ImVec2(0, 96), true);
  ImGui::PushTextWrapPos(0);
  ImGui::TextUnformatted(prompt.empty() ? "(click to type a prompt)" : prompt.c_str());
  ImGui::PopTextWrapPos();
  if (ImGui::IsWindowHovered() && ImGui::IsMouseClicked(0)) editing_prompt = true;
  ImGui::EndChild();
}

void App::draw_model_panel() {
  auto m = worker.model();
  ImGui::Begin("Model");
  if (ImGui::Button("Open...")) show_open = true;
  ImGui::SameLine();
  ImGui::TextUnformatted(m ? worker.model_path().c_str() : "no model loaded");
  if (m) {
    const ModelConfig& c = m->config();
    ImGui::Text("family %s (%s)", c.family_name().c_str(), c.architecture.c_str());
    ImGui::Text("layers %lld  heads %lld  kv-heads %lld  d_model %lld  context %lld  %s", (long long)c.n_layers, (long long)c.n_heads,
                (long long)c.n_kv_heads, (long long)c.d_model, (long long)c.context, m->checkpoint().dominant_type().c_str());
  }
  ImGui::Separator();
  draw_prompt();
  if (ImGui::Button("Run (ctrl+enter)") && m) request_run();
  if (worker.busy()) {
    ImGui::SameLine();
    ImGui::ProgressBar(worker.progress(), ImVec2(160, 0), worker.status().c_str());
    ImGui::SameLine();
    if (ImGui::Button("Cancel")) worker.cancel();
  }
  if (ImGui::CollapsingHeader("Record a prompt set")) runs->draw_record(*this);
  std::string err = worker.error(), note = worker.note();
  if (!err.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", err.c_str());
  if (!ui_error.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", ui_error.c_str());
  if (!note.empty()) ImGui::TextUnformatted(note.c_str());
  if (shown) {
    ImGui::Separator();
    draw_chips();
    ImGui::Separator();
    ImGui::Text("next token (forward %.3f s, %zu tokens)", shown->seconds, shown->ids.size());
    for (size_t i = 0; i < shown->next.size(); ++i)
      ImGui::Text("%6.3f  %s", shown->next[i].prob, visible_token(shown->next[i].text).c_str());
  }
  ImGui::End();
}

// Token chips, wrapped and drawn directly (only the visible rows, so 8K tokens cost what 200 do), coloured by the
// selected head's attention from the hovered (or searched) token. Whitespace shows as · and ↵.
void App::draw_chips() {
  const RunResult& r = *shown;
  const int T = static_cast<int>(r.tokens.size());
  const bool have_pattern = pattern && pattern->run == shown.get();
  const int from = hover_token >= 0 ? hover_token : forced_hover;
  ImGui::SetNextItemWidth(180);
  if (focus_search) ImGui::SetKeyboardFocusHere(), focus_search = false;
  if (ImGui::InputTextWithHint("##search", "/ search tokens", &search, ImGuiInputTextFlags_EnterReturnsTrue)) find_token(true);
  else if (ImGui::IsItemEdited()) search_hit = -1, find_token(false);
  ImGui::SameLine();
  if (!search.empty()) ImGui::Text(search_hit >= 0 ? "token %d" : "no match", search_hit);
  else ImGui::TextDisabled(from >= 0 ? "coloured by attention from token %d" : "hover a token", from);
  ImGui::BeginChild("chips", ImVec2(0, std::min(300.f, ImGui::GetContentRegionAvail().y * 0.55f)), true);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float width = ImGui::GetContentRegionAvail().x, line_h = ImGui::GetTextLineHeight() + 6;
  const ImVec2 o = ImGui::GetCursorScreenPos();
  // Layout: x, y of every chip (cheap: text widths only).
  std::vector<ImVec4> box(T);
  float x = 0, y = 0;
  for (int i = 0; i < T; ++i) {
    const float w = ImGui::CalcTextSize(visible_token(r.tokens[i]).c_str()).x + 8;
    if (x > 0 && x + w > width) x = 0, y += line_h;
    box[i] = ImVec4(x, y, w, line_h - 2);
    x += w + 2;
  }
  const float scroll = ImGui::GetScrollY(), view_h = ImGui::GetWindowHeight();
  hover_token = -1;
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  const bool hovered = ImGui::IsWindowHovered();
  int first_visible = -1, last_visible = -1;
  for (int i = 0; i < T; ++i) {
    const ImVec2 a(o.x + box[i].x, o.y + box[i].y), b(a.x + box[i].z, a.y + box[i].w);
    if (box[i].y + box[i].w < scroll - line_h || box[i].y > scroll + view_h + line_h) continue;
    if (first_visible < 0) first_visible = i;
    last_visible = i;
    ImU32 col = IM_COL32(64, 64, 77, 255);
    if (from >= 0 && from < T && have_pattern) col = scale_colour(Scale{0, 1}, settings.colormap, i <= from ? pattern->p[static_cast<size_t>(from) * T + i] : 0.f);
    dl->AddRectFilled(a, b, col, 3);
    const ImVec4 c4 = ImGui::ColorConvertU32ToFloat4(col);
    const bool light = 0.3f * c4.x + 0.59f * c4.y + 0.11f * c4.z > 0.55f;  // dark text on light chips
    dl->AddText(ImVec2(a.x + 4, a.y + 2), light ? IM_COL32(0, 0, 0, 255) : IM_COL32(235, 235, 235, 255), visible_token(r.tokens[i]).c_str());
    if (i == from) dl->AddRect(a, b, IM_COL32(255, 80, 80, 255), 3, 0, 2.f);
    else if (i == search_hit) dl->AddRect(a, b, IM_COL32(255, 220, 80, 255), 3, 0, 2.f);
    if (hovered && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y) {
      hover_token = i;
      ImGui::BeginTooltip();
      ImGui::Text("token %d  id %d  '%s'", i, r.ids[i], visible_token(r.tokens[i]).c_str());
      if (have_pattern && from >= 0) ImGui::Text("attention %d.%d from token %d: %.4f", pattern->layer, pattern->head, from, i <= from ? pattern->p[static_cast<size_t>(from) * T + i] : 0.f);
      ImGui::EndTooltip();
    }
  }
  ImGui::Dummy(ImVec2(width, y + line_h));
  if (scroll_to_chip >= 0 && scroll_to_chip < T) ImGui::SetScrollY(std::max(0.f, box[scroll_to_chip].y - view_h / 2)), scroll_to_chip = -1;
  if (from >= 0 && from < T)
    chip_layout = {{"token", from}, {"x", o.x + box[from].x + box[from].z / 2}, {"y", o.y + box[from].y - scroll + box[from].w / 2},
                   {"visible", {first_visible, last_visible}}};
  ImGui::EndChild();
}

void App::draw_grid() {
  ImGui::Begin("Heads");
  const char* labels[kStatCount];
  int ids[kStatCount], n = 0, cur = 0;
  float widest = 0;
  for (int id = 0; id < kStatCount; ++id)
    if (head_stat_is_row_sum(id)) {
      if (id == stat) cur = n;
      labels[n] = head_stat(id).label, ids[n++] = id;
      widest = std::max(widest, ImGui::CalcTextSize(head_stat(id).label).x);
    }
  ImGui::SetNextItemWidth(widest + 40);  // the whole label, never cut
  if (ImGui::Combo("##statistic", &cur, labels, n)) stat = ids[cur];
  ImGui::SameLine();
  ImGui::SetNextItemWidth(150);
  const char* scales[] = {"fixed range", "this run's range", "log scale"};
  ImGui::Combo("##scale", &scale_mode, scales, 3);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(90);
  const char* cmaps[] = {"viridis", "cividis"};
  if (ImGui::Combo("##colours", &settings.colormap, cmaps, 2)) settings.save();
  if (!shown) {
    ImGui::TextUnformatted("run a prompt to fill the grid");
    ImGui::End();
    return;
  }
  const HeadSummary& hs = shown->summary;
  const std::vector<float>& v = hs.values[stat];
  Scale s = head_stat_range(stat, static_cast<int64_t>(shown->ids.size()));
  if (scale_mode == 1) s = {*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
  if (scale_mode == 2) s.log = true, s.floor = s.hi * 1e-4;
  ImGui::TextDisabled("click: select   ctrl+click: choose for an intervention   arrows: move");
  ImVec2 avail = ImGui::GetContentRegionAvail();
  // At most 55 % of the window, so that the intervention controls stay in view below.
  const float h = std::min(avail.y * 0.55f, std::max(200.f, avail.x * hs.n_layers / std::max(1, hs.n_heads)));
  HeatmapLayout lay;
  auto [hl, hh] = draw_heatmap(
      "grid", ImVec2(avail.x, h), hs.n_layers, hs.n_heads, [&](int l, int hd) { return hs.at(stat, l, hd); },
      [](int l) { return std::to_string(l); }, [](int hd) { return std::to_string(hd); }, s, settings.colormap, head_stat(stat).units, &lay);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  for (auto [l, hd] : chosen)
    dl->AddRect(ImVec2(lay.x0 + hd * lay.cell_w, lay.y0 + l * lay.cell_h), ImVec2(lay.x0 + (hd + 1) * lay.cell_w, lay.y0 + (l + 1) * lay.cell_h),
                IM_COL32(255, 255, 255, 255), 0, 0, 2.f);
  dl->AddRect(ImVec2(lay.x0 + sel_head * lay.cell_w, lay.y0 + sel_layer * lay.cell_h),
              ImVec2(lay.x0 + (sel_head + 1) * lay.cell_w, lay.y0 + (sel_layer + 1) * lay.cell_h), IM_COL32(255, 60, 60, 255), 0, 0, 2.f);
  dl->AddText(ImVec2(lay.x0 - 58, lay.y0 - 20), IM_COL32(160, 160, 160, 255), "layer");
  ImGui::TextDisabled("x: head   y: layer");
  ImGui::SameLine();
  export_button("grid");
  if (!export_error.empty()) ImGui::TextColored(ImVec4(1, 0.5f, 0.4f, 1), "%s", export_error.c_str());
  if (hl >= 0) {
    ImGui::BeginTooltip();
    ImGui::Text("head %d.%d\n%s = %.5g %s", hl, hh, head_stat(stat).label, hs.at(stat, hl, hh), head_stat(stat).units);
    ImGui::EndTooltip();
    if (ImGui::IsMouseClicked(0)) {
      if (ImGui::GetIO().KeyCtrl) toggle_chosen(hl, hh);
      else select(hl, hh);
    }
  }
  grid = {lay.x0, lay.y0, lay.cell_w, lay.cell_h, hs.n_layers, hs.n_heads, s, head_stat(stat).name};
  ImGui::Separator();
  draw_intervention();
  ImGui::End();
}

void App::draw_intervention() {
  ImGui::TextUnformatted("Intervention (the same library call as `headscope ablate`)");
  std::string heads;
  for (auto [l, h] : chosen) heads += (heads.empty() ? "" : ", ") + head_label(l, h);
  ImGui::Text("heads: %s", heads.empty() ? ("selected " + head_label(sel_layer, sel_head) + " (ctrl+click to choose several)").c_str() : heads.c_str());
  if (!chosen.empty()) {
    ImGui::SameLine();
    if (ImGui::SmallButton("clear")) chosen.clear();
  }
  ImGui::SetNextItemWidth(110);
  ImGui::Combo("mode", &iv_mode, kModes, kModeCount);
  const std::string mode = kModes[iv_mode];
  if (mode == "scale" || mode == "steer") ImGui::SameLine(), ImGui::SetNextItemWidth(90), ImGui::InputFloat(mode == "scale" ? "factor" : "scale", &iv_factor);
  if (mode == "mean") ImGui::InputTextWithHint("reference prompts", "file: one prompt per line or JSONL", &iv_mean_data);
  if (mode == "steer") ImGui::InputTextWithHint("vector", "file: JSON list of d_model numbers", &iv_steer_vector);
  ImGui::SetNextItemWidth(220);
  ImGui::InputTextWithHint("targets", "e.g.  Mary| John", &iv_targets);
  json spec;
  std::string spec_error;
  try {
    spec = intervention_spec();
  } catch (const std::exception& e) {
    spec_error = e.what();
  }
  if (ImGui::Button("Rerun with the intervention") && spec_error.empty() && shown) run_intervention();
  if (!spec_error.empty()) ImGui::TextColored(ImVec4(1, 0.5f, 0.4f, 1), "%s", spec_error.c_str());
  else {
    ImGui::SameLine();
    if (ImGui::Button("Copy spec")) ImGui::SetClipboardText(spec.dump(2).c_str());
    ImGui::TextDisabled("%s", spec.dump().substr(0, 160).c_str());
  }
  auto iv = worker.intervention();
  if (!iv) return;
  const InterventionEffect& e = iv->effect;
  ImGui::Text("KL(before || after) = %.6f nats   (%.2f s)", e.kl, iv->seconds);
  for (const TargetLogit& t : e.targets) ImGui::Text("logit '%s': %.4f -> %.4f", visible_token(t.text).c_str(), t.before, t.after);
  if (e.targets.size() >= 2)
    ImGui::Text("logit difference: %.4f -> %.4f", e.targets[0].before - e.targets[1].before, e.targets[0].after - e.targets[1].after);
  if (ImGui::BeginTable("effect", 4, ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_RowBg)) {
    ImGui::TableSetupColumn("before");
    ImGui::TableSetupColumn("p");
    ImGui::TableSetupColumn("after");
    ImGui::TableSetupColumn("p ");
    ImGui::TableHeadersRow();
    for (size_t i = 0; i < std::min(e.before.size(), e.after.size()); ++i) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn(), ImGui::TextUnformatted(visible_token(e.before[i].text).c_str());
      ImGui::TableNextColumn(), ImGui::Text("%.4f", e.before[i].prob);
      ImGui::TableNextColumn(), ImGui::TextUnformatted(visible_token(e.after[i].text).c_str());
      ImGui::TableNextColumn(), ImGui::Text("%.4f", e.after[i].prob);
    }
    ImGui::EndTable();
  }
}

// An RGBA image into a texture (created on first use), drawn with nearest-neighbour sampling.
static void upload_texture(unsigned& tex, int w, int h, const std::vector<uint32_t>& img) {
  if (!tex) glGenTextures(1, &tex);
  glBindTexture(GL_TEXTURE_2D, tex);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, img.data());
}

// The selected head's pattern: the visible window rendered into a texture when the view changes, sampled token
// labels on both axes at any zoom, a hover read-out, a colour bar and a minimap of the visible region.
void App::draw_attention() {
  if (!shown) return void(ImGui::TextUnformatted("select a head and run a prompt"));
  const bool current = pattern && pattern->run == shown.get();
  if (!current) return void(ImGui::TextUnformatted("computing the pattern..."));
  const HeadPattern& P = *pattern;
  const RunResult& r = *shown;
  const int T = P.T;
  ImGui::Text("head %d.%d  (%.1f ms)%s", P.layer, P.head, P.seconds * 1e3,
              (P.layer != sel_layer || P.head != sel_head) ? "  - updating" : "");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(150);
  const char* scales[] = {"probability [0, 1]", "this head's range", "log scale"};
  ImGui::Combo("##pscale", &pattern_scale, scales, 3);
  const int pscale = pattern_scale;
  ImGui::SameLine();
  export_button("attention");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(120);
  ImGui::SliderFloat("zoom", &zoom, 1.f, 400.f, "%.1f", ImGuiSliderFlags_Logarithmic);
  Scale s{0, 1};
  if (pscale == 1) s.hi = *std::max_element(P.p.begin(), P.p.end());
  if (pscale == 2) s.log = true;
  const ImVec2 o = ImGui::GetCursorScreenPos(), avail = ImGui::GetContentRegionAvail();
  const float left = 118, top = 36, below = 170;
  const float side = std::max(60.f, std::min(avail.x - left - 8, avail.y - top - below));
  ImGui::InvisibleButton("pattern", ImVec2(left + side, top + side));
  const bool hovered = ImGui::IsItemHovered();
  if (hovered) {
    const float wheel = ImGui::GetIO().MouseWheel;
    if (wheel != 0) {  // zoom about the mouse
      const ImVec2 m = ImGui::GetIO().MousePos;
      const float fx = (m.x - o.x - left + pan_x), fy = (m.y - o.y - top + pan_y), old = zoom;
      zoom = std::clamp(zoom * (wheel > 0 ? 1.25f : 0.8f), 1.f, 400.f);
      pan_x = fx * zoom / old - (m.x - o.x - left), pan_y = fy * zoom / old - (m.y - o.y - top);
    }
    if (ImGui::IsMouseDragging(0)) pan_x -= ImGui::GetIO().MouseDelta.x, pan_y -= ImGui::GetIO().MouseDelta.y;
  }
  const float cell = side / T * zoom;
  pan_x = std::clamp(pan_x, 0.f, std::max(0.f, T * cell - side));
  pan_y = std::clamp(pan_y, 0.f, std::max(0.f, T * cell - side));
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 g(o.x + left, o.y + top);
  view = {g.x - pan_x, g.y - pan_y, cell, P.layer, P.head, T, P.seconds};
  const int W = static_cast<int>(side), Hh = static_cast<int>(side);
  const auto key = std::make_tuple(&P, zoom, pan_x, pan_y, settings.colormap * 4 + pscale, W, Hh, 0);
  if (key != pattern_key) {
    pattern_key = key;
    std::vector<uint32_t> img(static_cast<size_t>(W) * Hh, IM_COL32(20, 20, 26, 255));
    // Each screen pixel shows the largest probability of the cells it covers; zoomed out past the pooling factor
    // the block maxima are read instead of every cell.
    const bool pooled = P.pool > 1 && 1.f / cell >= P.pool;
    const int F = pooled ? P.pool : 1, N = pooled ? P.pooled_n : T;
    const float* M = pooled ? P.pooled.data() : P.p.data();
    for (int py = 0; py < Hh; ++py) {
      const int qa = static_cast<int>((pan_y + py) / cell), qb = std::max(qa + 1, static_cast<int>((pan_y + py + 1) / cell));
      if (qa >= T) break;
      for (int px = 0; px < W; ++px) {
        const int ka = static_cast<int>((pan_x + px) / cell), kb = std::max(ka + 1, static_cast<int>((pan_x + px + 1) / cell));
        if (ka >= T || ka > std::min(qb, T) - 1) continue;  // right of the diagonal: never attended
        float p = 0;
        const int sq1 = std::min((std::min(qb, T) + F - 1) / F, N), sk1 = std::min((std::min(kb, T) + F - 1) / F, N);
        for (int q = qa / F; q < sq1; ++q)
          for (int k = ka / F; k < std::min(sk1, q + 1); ++k) p = std::max(p, M[static_cast<size_t>(q) * N + k]);
        img[static_cast<size_t>(py) * W + px] = scale_colour(s, settings.colormap, p);
      }
    }
    upload_texture(pattern_tex, W, Hh, img);
  }
  dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(pattern_tex)), g, ImVec2(g.x + W, g.y + Hh));
  dl->AddRect(g, ImVec2(g.x + W, g.y + Hh), IM_COL32(110, 110, 110, 255));
  // Axis labels at any zoom: every step-th token, step chosen so that labels never overlap.
  const int q0 = std::max(0, static_cast<int>(pan_y / cell)), q1 = std::min(T, static_cast<int>((pan_y + side) / cell) + 1);
  const int k0 = std::max(0, static_cast<int>(pan_x / cell)), k1 = std::min(T, static_cast<int>((pan_x + side) / cell) + 1);
  const ImU32 text = IM_COL32(215, 215, 215, 255), dim = IM_COL32(140, 140, 140, 255);
  dl->PushClipRect(ImVec2(o.x, g.y - 2), ImVec2(g.x, g.y + Hh + 8), true);
  const int qs = label_step(T, cell, 15);
  for (int q = (q0 + qs - 1) / qs * qs; q < q1; q += qs) {
    const float y = g.y + (q + 0.5f) * cell - pan_y;
    char b[64];
    std::snprintf(b, sizeof b, "%d %s", q, visible_token(r.tokens[q]).substr(0, 10).c_str());
    dl->AddText(ImVec2(g.x - 6 - ImGui::CalcTextSize(b).x, y - 7), text, b);
    dl->AddLine(ImVec2(g.x - 4, y), ImVec2(g.x, y), dim);
  }
  dl->PopClipRect();
  dl->PushClipRect(ImVec2(g.x - 30, o.y), ImVec2(g.x + W + 30, g.y), true);
  const int ks = label_step(T, cell, 64);
  for (int k = (k0 + ks - 1) / ks * ks; k < k1; k += ks) {
    const float x = g.x + (k + 0.5f) * cell - pan_x;
    const std::string tok = visible_token(r.tokens[k]).substr(0, 8), idx = std::to_string(k);
    dl->AddText(ImVec2(x - ImGui::CalcTextSize(tok.c_str()).x / 2, o.y), text, tok.c_str());
    dl->AddText(ImVec2(x - ImGui::CalcTextSize(idx.c_str()).x / 2, o.y + 16), dim, idx.c_str());
    dl->AddLine(ImVec2(x, g.y - 3), ImVec2(x, g.y), dim);
  }
  dl->PopClipRect();
  dl->AddText(ImVec2(o.x, o.y), dim, "query \\ key");
  // Below: minimap, colour bar, hover read-out.
  const ImVec2 b0(o.x + left, g.y + Hh + 12);
  const float mm = below - 24;
  if (minimap_of != &P || minimap_cmap != settings.colormap * 4 + pscale) {
    minimap_of = &P, minimap_cmap = settings.colormap * 4 + pscale;
    const int n = static_cast<int>(mm);
    std::vector<uint32_t> img(static_cast<size_t>(n) * n, IM_COL32(20, 20, 26, 255));
    const bool pooled = P.pool > 1;
    const int N = pooled ? P.pooled_n : T;
    const float* M = pooled ? P.pooled.data() : P.p.data();
    for (int py = 0; py < n; ++py)
      for (int px = 0; px < n; ++px) {
        const int qa = py * N / n, qb = std::max(qa + 1, (py + 1) * N / n), ka = px * N / n, kb = std::max(ka + 1, (px + 1) * N / n);
        if (ka >= qb) continue;
        float p = 0;
        for (int q = qa; q < qb; ++q)
          for (int k = ka; k < std::min(kb, q + 1); ++k) p = std::max(p, M[static_cast<size_t>(q) * N + k]);
        img[static_cast<size_t>(py) * n + px] = scale_colour(s, settings.colormap, p);
      }
    upload_texture(minimap_tex, n, n, img);
  }
  dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(minimap_tex)), b0, ImVec2(b0.x + mm, b0.y + mm));
  const float total = T * cell;
  const ImVec2 va(b0.x + mm * pan_x / total, b0.y + mm * pan_y / total),
      vb(b0.x + mm * std::min(1.f, (pan_x + side) / total), b0.y + mm * std::min(1.f, (pan_y + side) / total));
  dl->AddRect(va, vb, IM_COL32(255, 80, 80, 255), 0, 0, 1.5f);
  dl->AddRect(b0, ImVec2(b0.x + mm, b0.y + mm), dim);
  ImGui::SetCursorScreenPos(b0);
  ImGui::InvisibleButton("minimap", ImVec2(mm, mm));
  if (ImGui::IsItemActive()) {  // click or drag on the minimap: centre the view there
    const ImVec2 m = ImGui::GetIO().MousePos;
    pan_x = (m.x - b0.x) / mm * total - side / 2, pan_y = (m.y - b0.y) / mm * total - side / 2;
  }
  dl->AddText(ImVec2(b0.x, b0.y + mm + 2), dim, "whole pattern");
  draw_colour_bar(dl, ImVec2(b0.x + mm + 20, b0.y + 16), 14, mm - 16, s, settings.colormap, "probability");
  const float rx = b0.x + mm + 110;
  ImGui::SetCursorScreenPos(ImVec2(rx, b0.y));
  ImGui::BeginGroup();
  ImGui::Text("rows %d-%d, keys %d-%d of %d", q0, q1 - 1, k0, k1 - 1, T);
  ImGui::TextDisabled("wheel: zoom   drag: pan");
  if (hovered) {
    const ImVec2 m = ImGui::GetIO().MousePos;
    const int q = static_cast<int>((m.y - g.y + pan_y) / cell), k = static_cast<int>((m.x - g.x + pan_x) / cell);
    if (q >= 0 && q < T && k >= 0 && k < T) {
      ImGui::Text("query %d '%s'", q, visible_token(r.tokens[q]).substr(0, 24).c_str());
      ImGui::Text("key   %d '%s'", k, visible_token(r.tokens[k]).substr(0, 24).c_str());
      ImGui::Text("p = %.5f", k <= q ? P.p[static_cast<size_t>(q) * T + k] : 0.f);
    }
  }
  ImGui::EndGroup();
}

void App::draw_open_dialog() {
  if (!show_open) return;
  ImGui::OpenPopup("Open model");
  if (ImGui::BeginPopupModal("Open model", &show_open, ImGuiWindowFlags_AlwaysAutoResize)) {
    ImGui::TextUnformatted("A .gguf file, a .safetensors file, or a folder with config.json");
    ImGui::SetNextItemWidth(520);
    ImGui::InputText("##path", path_buf, sizeof path_buf);
    std::error_code ec;
    fs::path dir = fs::is_directory(path_buf, ec) ? fs::path(path_buf) : fs::path(path_buf).parent_path();
    if (dir.empty()) dir = ".";
    ImGui::BeginChild("files", ImVec2(520, 260), true);
    if (ImGui::Selectable("..")) std::snprintf(path_buf, sizeof path_buf, "%s", dir.parent_path().string().c_str());
    for (auto& e : fs::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string() + (e.is_directory() ? "/" : "");
      if (ImGui::Selectable(name.c_str())) std::snprintf(path_buf, sizeof path_buf, "%s", e.path().string().c_str());
    }
    ImGui::EndChild();
    if (ImGui::Button("Open")) open(path_buf), show_open = false;
    ImGui::EndPopup();
  }
}

void App::frame() {
  if (auto r = worker.result(); r && r != shown) shown = r, forced_hover = std::min(forced_hover, static_cast<int>(r->ids.size()) - 1);
  if (auto p = worker.head_pattern(); p != pattern) pattern = p;
  if (path_buf[0] == 0 && !settings.last_model.empty()) std::snprintf(path_buf, sizeof path_buf, "%s", settings.last_model.c_str());
  keyboard();
  ImGuiViewport* vp = ImGui::GetMainViewport();
  const float w = vp->WorkSize.x, h = vp->WorkSize.y;
  ImGui::SetNextWindowPos(ImVec2(0, 0), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowSize(ImVec2(w * 0.28f, h), ImGuiCond_FirstUseEver);
  draw_model_panel();
  ImGui::SetNextWindowPos(ImVec2(w * 0.28f, 0), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowSize(ImVec2(w * 0.30f, h), ImGuiCond_FirstUseEver);
  draw_grid();
  ImGui::SetNextWindowPos(ImVec2(w * 0.58f, 0), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowSize(ImVec2(w * 0.42f, h), ImGuiCond_FirstUseEver);
  ImGui::Begin("Views");
  if (ImGui::BeginTabBar("views")) {
    const char* names[] = {"Attention", "Run file", "Compare"};
    for (int i = 0; i < 3; ++i)
      if (ImGui::BeginTabItem(names[i], nullptr, runs->tab_request == i ? ImGuiTabItemFlags_SetSelected : 0)) {
        runs->tab = i;
        if (i == 0) draw_attention();
        else if (i == 1) runs->draw_run(*this);
        else runs->draw_compare(*this);
        ImGui::EndTabItem();
      }
    runs->tab_request = -1;
    ImGui::EndTabBar();
  }
  ImGui::End();
  draw_open_dialog();
}

json App::record() const {
  json j = {{"grid", {{"x0", grid.x0}, {"y0", grid.y0}, {"cell_w", grid.cell_w}, {"cell_h", grid.cell_h}, {"layers", grid.layers},
                      {"heads", grid.heads}, {"lo", grid.scale.lo}, {"hi", grid.scale.hi}, {"log", grid.scale.log}, {"stat", grid.stat}}},
            {"attention", {{"x0", view.x0}, {"y0", view.y0}, {"cell", view.cell}, {"layer", view.layer}, {"head", view.head},
                           {"tokens", view.tokens}, {"seconds", view.seconds}}},
            {"chips", chip_layout},
            {"selected", {sel_layer, sel_head}}, {"colormap", settings.colormap},
            {"error", worker.error()}, {"note", worker.note()}, {"search_hit", search_hit}};
  if (auto iv = worker.intervention()) {
    auto list = [](const std::vector<TokenScore>& v) {
      json a = json::array();
      for (const TokenScore& t : v) a.push_back({{"id", t.id}, {"text", t.text}, {"prob", t.prob}, {"logit", t.logit}});
      return a;
    };
    json tj = json::array();
    for (const TargetLogit& t : iv->effect.targets) tj.push_back({{"text", t.text}, {"id", t.id}, {"logit_before", t.before}, {"logit_after", t.after}});
    j["intervention"] = {{"spec", iv->spec}, {"kl", iv->effect.kl}, {"before", list(iv->effect.before)}, {"after", list(iv->effect.after)}, {"targets", tj}};
  }
  j["runs"] = runs->record();
  return j;
}

}  // namespace headscope::gui
