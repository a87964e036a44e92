// headscope-gui's scripted mode (`--script FILE --screenshot-dir DIR`): one action per line, every line parsed and
// checked (action, argument count and syntax, files that must exist, the screenshot folder) before the window
// opens, so a bad script fails at once naming its line. Actions that depend on the model (a head that does not
// exist) fail when they run, also naming the line, and the app exits 1 instead of waiting. The virtual mouse sits
// outside the window unless the script moves it, so screenshots carry no stray tooltip. Actions are listed in
// README "Desktop app".
#pragma once
#include <chrono>
#include <string>
#include <vector>

struct GLFWwindow;

namespace headscope::gui {

class App;

struct ScriptAction {
  int line = 0;
  std::string cmd;
  std::vector<std::string> args;  // whitespace-separated, or one argument holding the rest of the line
};

class Script {
 public:
  // Parses and checks the whole file; Error naming the first bad line.
  Script(const std::string& path, const std::string& shot_dir);
  bool step(App& app, GLFWwindow* win);  // false when finished (or failed)
  void frame_done(App& app, double ms);  // frame-time bookkeeping, after each swap
  void write_report() const;             // frame_times.json in the screenshot folder
  bool failed = false;
  float mouse_x = -1e7f, mouse_y = -1e7f;  // the virtual mouse (outside the window by default)
  bool click = false;

 private:
  std::vector<ScriptAction> actions_;
  std::string dir_;
  size_t next_ = 0;
  int wait_frames_ = 0;
  bool waiting_ = false, waiting_run_ = false, took_screenshot_ = false;
  std::chrono::steady_clock::time_point wait_until_, select_t0_;
  bool select_pending_ = false;
  std::vector<double> busy_ms_, all_ms_, select_ms_;
  void fail(const ScriptAction& a, const std::string& why);
  void run(App& app, GLFWwindow* win, const ScriptAction& a);
};

}  // namespace headscope::gui
