// The GUI's background worker: loads models and runs forward passes on its own thread so that the frame never
// blocks. The UI thread posts jobs and polls for finished results; it keeps drawing the previous result until
// a new one is complete. Cancel stops a running forward at the next layer.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "analysis/head_summary.h"
#include "model/model.h"
#include "runs/predict.h"

namespace headscope::gui {

// Everything the window shows about one run of one prompt.
struct RunResult {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;     // token texts
  HeadSummary summary;                 // per-head means (grid)
  std::vector<TokenScore> next;        // top next tokens
  int pattern_layer = -1, pattern_head = -1;
  std::vector<float> pattern;          // [T, T] probabilities of the selected head (row = query)
  int pool = 1, pooled_n = 0;          // for long prompts: max over pool x pool blocks, [pooled_n, pooled_n],
  std::vector<float> pooled;           // so the zoomed-out view reads ~1M values instead of T^2
  double seconds = 0;
};

class Worker {
 public:
  Worker();
  ~Worker();
  void load(const std::string& path);
  // Runs the prompt, recording statistics and the pattern of head (layer, head).
  void run(const std::string& prompt, int layer, int head);
  // Records every head's statistics over a prompt file into a run file (runs/record.h, as the CLI's `record`;
  // an existing run file is resumed).
  void record(const std::string& prompts_path, const std::string& run_path);

  bool busy() const { return busy_; }
  float progress() const { return progress_; }
  std::string status() const;
  void cancel() { cancel_ = true; }
  // The latest finished things; null until there are any.
  std::shared_ptr<const Model> model() const;
  std::shared_ptr<const RunResult> result() const;
  std::string error() const;
  std::string note() const;  // the last finished job's one-line report (e.g. "recorded 3 items into run.h5")
  std::string model_path() const;

 private:
  struct Job {
    enum Kind { Load, Run, Record } kind;
    std::string text;  // model path, prompt, or prompt file
    int layer = 0, head = 0;
    std::string output;  // Record: the run file
  };
  void loop();
  void do_load(const std::string& path);
  void do_run(const Job& job);
  void do_record(const Job& job);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool quit_ = false;
  std::atomic<bool> busy_{false}, cancel_{false};
  std::atomic<float> progress_{0.f};
  std::string status_, error_, note_, model_path_;
  std::shared_ptr<const Model> model_;
  std::shared_ptr<const RunResult> result_;
  std::thread thread_;
};

}  // namespace headscope::gui
