// Scoring heads with several probes in one job (the CLI's `score`): every probe's items are checked first, the
// continuations the probes need are made once per distinct prompt (greedy, KV cache), then the items run one by
// one. With an output file the job is a run like `record`'s (store/run_writer.h): each item's values are committed
// as they come (per-head, per-token and scalar arrays under /probes/<name>/), a killed job resumes where it
// stopped (continuations are read back from the file, not made again), and the combined scores are written when
// every item is in. Without one, everything stays in memory.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datasets/prompts.h"
#include "model/model.h"
#include "probes/probe.h"
#include "store/run_writer.h"

namespace headscope {

struct ScoreOptions {
  std::string output;                // the run file; empty: in memory only
  RunOpen open = RunOpen::create;
  std::string model_path, command_line;
};

struct ScoreProgress {
  std::string phase;       // "continuations" or a probe's name
  int64_t done = 0, total = 0;
  bool resumed = false;    // items of an earlier job were kept
  int64_t kept = 0;        // how many
};

// Prompts as items the model continues with `response` greedy tokens (preplan, secondary); 0: the texts as they are.
std::vector<ProbeItem> prompt_items(const Model& m, const std::vector<PromptItem>& prompts, int64_t response);

std::vector<ProbeResult> score_probes(const Model& m, const std::vector<const Probe*>& probes, const ScoreOptions& o,
                                      const std::function<bool(const ScoreProgress&)>& progress = nullptr);

}  // namespace headscope
