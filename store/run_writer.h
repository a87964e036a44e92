// Writes a run file (schema in run_file.h) so that a job killed at any instant, SIGKILL included, leaves a file
// that opens and holds every committed item, and `--resume` records the rest, each item exactly once:
//   * the run file is first written whole (items, tokens, settings; arrays as virtual datasets over parts that do
//     not exist yet) under a temporary name and renamed into place: it never exists half-written;
//   * the items are cut into parts of consecutive items; a background thread writes each part into its own file
//     under a temporary name in "<run>.parts/" and renames it when closed: a part is there whole or not at all;
//   * at the end every part is copied into "<run>.new", which is renamed over the run file; then the folder goes.
// Resume compares the settings (checkpoint, items, arrays, interventions) with the file's, keeps every valid part
// of this run and records the missing ones. A write error (disk full) removes only the part being written.
// Replacing an existing run (RunOpen::overwrite) records into "<run>.replacement" (with its own parts folder) and
// renames it over the run only when it is complete: until then the old run stays whole, and a killed replacement
// is resumed (RunOpen::resume with the same settings) from where it stopped.
// One job per run: "<run>.lock" is held (flock) while a job writes and removed when it ends; a lock file a killed
// job left behind holds no lock and is reused.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/probe_result.h"

namespace headscope {

// One array of the run: rows of shape `inner`, stored at `path` ("stats/entropy", "acts/<hook>"), one row per
// token (items end to end, like /tokens) or, with per_item, one row per item (a probe's per-item scores).
struct ArraySpec {
  std::string path;
  bool is_int = false;  // int32
  std::vector<int64_t> inner;
  std::string units, shape;  // attributes
  bool per_item = false;
  bool is_double = false;  // float64; neither: float32
};

struct PlannedItem {
  std::string text;
  nlohmann::json meta;
  std::vector<int32_t> tokens;
};

struct RunPlan {
  std::string command_line;
  nlohmann::json model;     // path, family, architecture, config, checkpoint_sha256
  nlohmann::json spec = nlohmann::json::array();  // interventions applied while recording
  nlohmann::json settings;  // anything else a resumed job must share (analysis options); items and arrays are added
  std::vector<PlannedItem> items;
  std::vector<ArraySpec> arrays;
  int64_t items_per_part = 0;  // 0: ceil(items / 4096), so a run has at most 4096 parts
};

enum class RunOpen {
  create,     // the run file must not exist
  overwrite,  // replace it (the old one stays until the new one is complete)
  resume,     // continue it, or an interrupted replacement of it (or start it when absent)
};

class RunWriter {
 public:
  RunWriter(const std::string& path, RunPlan plan, RunOpen mode);
  ~RunWriter();  // without finish(): commits every complete part queued, leaves the run resumable
  const std::vector<int64_t>& pending() const;  // items still to record, ascending
  int64_t n_items() const;
  int64_t committed() const;  // items in committed parts (any thread)
  bool resumed() const;       // parts of an earlier job were kept
  // Queues an item's arrays (keys = ArraySpec::path, each [T, inner...]); Error if the writer failed.
  void append(int64_t item, std::map<std::string, at::Tensor> arrays);
  // Waits until every queued item is in its part file: afterwards a RunReader on work_path() reads every recorded
  // item (this job's and earlier ones'). Error if an item is missing or the writer failed.
  void flush();
  // The file this job writes: the run file, or "<run>.replacement" while replacing one.
  const std::string& work_path() const;
  // Waits for every part, then copies the parts into the run file, with the probes' combined results under
  // /probes/<name>/ (their per-item arrays are the plan's). A no-op on a complete file.
  void finish(const std::vector<ProbeResult>& probe_results = {});

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace headscope
