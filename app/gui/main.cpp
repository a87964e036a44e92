// headscope-gui: the desktop app. Open a model, type a prompt, see every head (app.h: the panels); open run files
// and compare them (run_panels.h). Thin: all model work goes through the library on a worker thread (worker.h).
// `--script FILE --screenshot-dir DIR` drives it for tests and demos (script.h).
#include <GLFW/glfw3.h>
#include <GL/gl.h>
#include <imgui.h>
#include <imgui_internal.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "app/gui/app.h"
#include "app/gui/script.h"
#include "kernels/device.h"
#include "core/error.h"

namespace fs = std::filesystem;
using namespace headscope;
using namespace headscope::gui;

namespace {

// DejaVu Sans when installed (tokens' · ↵ → and most scripts), else ImGui's built-in font (ASCII only).
void load_font() {
  ImGuiIO& io = ImGui::GetIO();
  for (const char* path : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"}) {
    if (!fs::exists(path)) continue;
    static ImVector<ImWchar> ranges;
    ImFontGlyphRangesBuilder b;
    b.AddRanges(io.Fonts->GetGlyphRangesDefault());
    b.AddRanges(io.Fonts->GetGlyphRangesCyrillic());
    static const ImWchar extra[] = {0x0100, 0x024F, 0x0370, 0x03FF, 0x2000, 0x206F, 0x2190, 0x21FF, 0x2400, 0x243F, 0};
    b.AddRanges(extra);
    b.BuildRanges(&ranges);
    if (io.Fonts->AddFontFromFileTTF(path, 14.f, nullptr, ranges.Data)) return;
  }
  io.Fonts->AddFontDefault();
}

}  // namespace

int main(int argc, char** argv) {
  use_fast_blas_kernels(argv);
  std::string model_arg, script_path, shot_dir = ".";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--script" && i + 1 < argc) script_path = argv[++i];
    else if (a == "--screenshot-dir" && i + 1 < argc) shot_dir = argv[++i];
    else if (a == "--help" || a == "-h") {
      std::printf("usage: headscope-gui [MODEL] [--script FILE --screenshot-dir DIR]\n");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "headscope-gui: unknown option %s\n", a.c_str());
      return 2;
    } else model_arg = a;
  }
  std::unique_ptr<Script> script;
  if (!script_path.empty()) {
    try {
      script = std::make_unique<Script>(script_path, shot_dir);  // every line checked before a window opens
    } catch (const Error& e) {
      std::fprintf(stderr, "headscope-gui: error: %s\n", e.what());
      return 2;
    }
  }
  if (!glfwInit()) {
    std::fprintf(stderr, "headscope-gui: error: cannot open a display (DISPLAY is unset or the X server is unreachable); "
                         "to run without a screen use a virtual one: xvfb-run -a headscope-gui ...\n");
    return 1;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  GLFWwindow* win = glfwCreateWindow(1600, 900, "headscope", nullptr, nullptr);
  if (!win) {
    std::fprintf(stderr, "headscope-gui: error: cannot create an OpenGL 3 window; under xvfb-run make sure Mesa's "
                         "software renderer is installed (libgl1-mesa-dri)\n");
    glfwTerminate();
    return 1;
  }
  glfwMakeContextCurrent(win);
  glfwSwapInterval(script ? 0 : 1);
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  static std::string ini = (fs::path(Settings::dir()) / "imgui.ini").string();
  {
    std::error_code ec;
    fs::create_directories(Settings::dir(), ec);
  }
  ImGui::GetIO().IniFilename = script ? nullptr : ini.c_str();  // scripts start from the default layout
  ImGui::StyleColorsDark();
  load_font();
  ImGui_ImplGlfw_InitForOpenGL(win, true);
  ImGui_ImplOpenGL3_Init("#version 130");

  auto app = std::make_unique<App>();
  app->settings.install();
  if (!script && fs::exists(ini)) ImGui::LoadIniSettingsFromDisk(ini.c_str());
  if (!model_arg.empty()) app->open(model_arg);
  auto last = std::chrono::steady_clock::now();
  while (!glfwWindowShouldClose(win)) {
    glfwPollEvents();
    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    if (script) {  // the script's virtual mouse, not the X pointer (which sits mid-screen under Xvfb)
      ImGuiIO& io = ImGui::GetIO();
      io.MousePos = ImVec2(script->mouse_x, script->mouse_y);
      for (bool& b : io.MouseDown) b = false;
      io.MouseDown[0] = script->click;
    }
    ImGui::NewFrame();
    try {
      app->frame();
    } catch (const std::exception& e) {  // a bad click never takes the app down: the message shows in the window
      app->ui_error = e.what();
      ImGui::ErrorCheckEndFrameRecover(nullptr);  // close the windows the interrupted frame left open
    }
    ImGui::Render();
    int w, h;
    glfwGetFramebufferSize(win, &w, &h);
    glViewport(0, 0, w, h);
    glClearColor(0.08f, 0.08f, 0.1f, 1.f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    if (script && !script->step(*app, win)) break;
    glfwSwapBuffers(win);
    // A display's vsync paces frames at 60 Hz; Xvfb has none, so a script paces itself the same way (an unpaced
    // loop would spend a core on frames nobody sees, and take it from the worker).
    if (script) std::this_thread::sleep_until(last + std::chrono::microseconds(16667));
    auto now = std::chrono::steady_clock::now();
    if (script) script->frame_done(*app, std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  }
  if (script) script->write_report();
  const bool failed = script && script->failed;
  app.reset();
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(win);
  glfwTerminate();
  return failed ? 1 : 0;
}
