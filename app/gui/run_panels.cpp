// headscope-gui's run-file panels (see run_panels.h).
#include "app/gui/run_panels.h"

#include <imgui_stdlib.h>

#include "app/gui/app.h"

namespace headscope::gui {

struct RunPanels::State {
  std::string record_prompts, record_output = "run.h5";
};

RunPanels::RunPanels() : st(std::make_unique<State>()) {}
RunPanels::~RunPanels() = default;

void RunPanels::draw_record(App& app) {
  ImGui::InputText("prompt file", &st->record_prompts);
  ImGui::InputText("run file", &st->record_output);
  if (ImGui::Button("Record") && app.worker.model() && !app.worker.busy()) app.worker.record(st->record_prompts, st->record_output);
}
void RunPanels::draw_run(App&) { ImGui::TextUnformatted("run files: in progress"); }
void RunPanels::draw_compare(App&) { ImGui::TextUnformatted("compare: in progress"); }
void RunPanels::open_run(const std::string&) {}
void RunPanels::open_compare(const std::string&, const std::string&) {}
void RunPanels::show(const std::string&) {}
void RunPanels::set_item(int) {}
void RunPanels::export_figure(const std::string&) {}
nlohmann::json RunPanels::record() const { return nlohmann::json::object(); }

}  // namespace headscope::gui
