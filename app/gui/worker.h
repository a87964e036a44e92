// The GUI's background worker: loads models, runs forward passes, computes a selected head's pattern and runs
// interventions on its own thread so that the frame never blocks. The UI thread posts jobs and polls for finished
// results; it keeps drawing the previous result until a new one is complete. Cancel stops a running forward at
// the next layer. The worker runs at a lower scheduling priority (nice +10, its compute threads too) so that the
// UI thread gets the core it needs for every frame while a long forward runs.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "analysis/head_summary.h"
#include "model/model.h"
#include "runs/predict.h"

namespace headscope::gui {

// Everything the window shows about one run of one prompt (the selected head's pattern is a HeadPattern).
struct RunResult {
  std::string prompt;
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;     // token texts
  HeadSummary summary;                 // per-head means (grid)
  std::vector<TokenScore> next;        // top next tokens
  double seconds = 0;                  // the forward pass
};

// One head's attention pattern over a run's prompt, computed from the run's kept attention inputs.
struct HeadPattern {
  const RunResult* run = nullptr;      // the run it belongs to
  int layer = -1, head = -1, T = 0;
  std::vector<float> p;                // [T, T] probabilities (row = query)
  int pool = 1, pooled_n = 0;          // for long prompts: max over pool x pool blocks, [pooled_n, pooled_n],
  std::vector<float> pooled;           // so the zoomed-out view reads ~1M values instead of T^2
  double seconds = 0;                  // from the request to the finished pattern
};

// An intervention from the UI: the spec (the JSON `headscope ablate --spec` takes) and its effect on the last
// position, from the library call `ablate` makes (runs/predict.h intervention_effect).
struct InterventionRun {
  nlohmann::json spec;
  InterventionEffect effect;
  std::vector<std::string> targets;
  double seconds = 0;
};

class Worker {
 public:
  Worker();
  ~Worker();
  void load(const std::string& path);
  // Runs the prompt (statistics of every head, attention inputs kept), then the pattern of head (layer, head).
  void run(const std::string& prompt, int layer, int head);
  // The pattern of another head of the current run: one head's attention rows, no forward pass.
  void pattern(int layer, int head);
  // Runs the current prompt with and without `spec` (mean ablation reads mean_data).
  void intervene(const nlohmann::json& spec, const std::string& mean_data, const std::vector<std::string>& targets);
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
  std::shared_ptr<const HeadPattern> head_pattern() const;
  std::shared_ptr<const InterventionRun> intervention() const;
  std::string error() const;
  std::string note() const;  // the last finished job's one-line report (e.g. "recorded 3 items into run.h5")
  std::string model_path() const;

 private:
  struct Job {
    enum Kind { Load, Run, Pattern, Intervene, Record } kind;
    std::string text;  // model path, prompt, prompt file, or mean-ablation data
    int layer = 0, head = 0;
    std::string output;  // Record: the run file
    nlohmann::json spec;
    std::vector<std::string> targets;
    std::chrono::steady_clock::time_point posted = std::chrono::steady_clock::now();
  };
  void post(Job job);
  void loop();
  void do_load(const std::string& path);
  void do_run(const Job& job);
  void do_pattern(const Job& job);
  void do_intervene(const Job& job);
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
  std::shared_ptr<AttnInputs> inputs_;  // the current run's queries and keys (worker thread only)
  std::shared_ptr<const HeadPattern> pattern_;
  std::shared_ptr<const InterventionRun> intervention_;
  std::thread thread_;
};

}  // namespace headscope::gui
