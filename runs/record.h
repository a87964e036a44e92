// Recording a run: a model over a list of prompts, with chosen head statistics, hook activations and
// interventions, streamed into a crash-safe HDF5 run file (store/run_writer.h). The CLI's `record` and the GUI's
// "Record…" both call record_run; the probes build on it. Progress and cancellation are values: a callback sees a
// RecordProgress after every committed item and returns false to stop (record_run then throws Cancelled, and the
// run file stays resumable).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/prompts.h"
#include "model/model.h"
#include "store/run_writer.h"

namespace headscope {

// A forward pass's statistics in the run file's layout: name -> [T, L, H] for every statistic of the table
// (core/head_stats.h) it computed (needs AttnRecord::stats), or only those named in `only` when it is not empty.
std::map<std::string, at::Tensor> run_item_stats(const ForwardResult& r, const std::vector<std::string>& only = {});

// The token ids of every item of an existing run file at `path` (or of its interrupted replacement, which wins), by
// item number; empty when there is none or it cannot be read. Jobs that make their items' tokens (continuations)
// read them back from here when resuming.
std::map<int64_t, std::vector<int32_t>> kept_item_tokens(const std::string& path);

// What a run file says of its model (/model): path, family, architecture, config, checkpoint_sha256.
nlohmann::json run_model_info(const Model& m, const std::string& model_path);

struct RecordOptions {
  std::string output;                     // the run file
  RunOpen open = RunOpen::create;         // create, overwrite or resume
  std::vector<std::string> stats;         // statistic names (core/head_stats.h); none and no hooks is an Error
  std::vector<std::string> hooks;         // hook points whose activations are stored per token
  nlohmann::json spec = nlohmann::json::array();  // interventions applied while recording (hooks/interventions.h)
  std::string mean_data;                  // prompts for mean ablation, when the spec has a mean-ablation entry
  ContextPolicy context;                  // prompts longer than the model's context: truncated, refused or run
  int64_t generate = 0;                   // > 0: each prompt is first continued greedily (KV cache, under the
                                          // interventions) by up to this many tokens; the item is prompt +
                                          // continuation (meta "response_start"), its statistics those of every
                                          // row, decode steps included (a resumed job reads the continuations back)
  int64_t items_per_part = 0;             // 0: the writer's default
  std::string command_line;               // stored in the file
};

struct RecordProgress {
  int64_t continued = 0, to_continue = 0;  // with RecordOptions::generate: continuations made so far, to make
                                          // (reported before recording starts, with done_now = 0)
  int64_t committed = 0, total = 0;       // items in the file (earlier jobs included), items planned
  int64_t done_now = 0, left_now = 0;     // items recorded by this call, still to record
  int64_t tokens = 0;                     // tokens recorded by this call
  int64_t planned_tokens = 0;             // tokens this call is to record (its items' tokens)
  double planned_bytes = 0;               // their arrays' bytes before compression (the file is smaller)
  double seconds = 0;                     // since recording started
  bool resumed = false;                   // an earlier job's items were kept
};

struct RecordSummary {
  int64_t items = 0, recorded_now = 0, tokens = 0;
  double seconds = 0;
  bool resumed = false;
  std::vector<std::vector<int32_t>> recorded_ids;  // the token ids of the items recorded by this call
};

// Validates everything (statistic names, hook points, the spec, every prompt's length against the context and
// the spec's positions) before anything is written, naming the prompt (1-based, in file order), then records. `progress` is called once before the first item (done_now = 0) and after each committed item.
RecordSummary record_run(const Model& model, const std::string& model_path, const std::vector<PromptItem>& prompts,
                         const RecordOptions& options,
                         const std::function<bool(const RecordProgress&)>& progress = nullptr);

}  // namespace headscope
