// A probe scores every head over a set of items (METRICS.md §2–4): it declares its items (token ids, or a prompt
// the model continues greedily with the KV cache), what one item gives (ItemResult: per-head, per-token and scalar
// values), and how the items combine into [layer, head] scores (store/probe_result.h). probes/score.h runs several
// probes in one job, in memory or into a crash-safe, resumable run file under /probes/<name>/. The probes
// themselves are in this folder, one file each.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "store/probe_result.h"

namespace headscope {

struct ProbeItem {
  std::vector<int32_t> tokens;   // the ids the probe runs (a prompt, before its continuation is added)
  std::string text;              // what they are (the prompt, or a description of generated data)
  nlohmann::json meta = nlohmann::json::object();
  int64_t continue_tokens = 0;   // > 0: the model's greedy continuation of up to this many tokens is appended first
  bool stop_at_newline = false;  // the continuation also ends after a token holding a newline
  int64_t response_start = 0;    // set when continued: the first token of the continuation
};

class Probe {
 public:
  virtual ~Probe() = default;
  virtual std::string name() const = 0;
  virtual nlohmann::json params() const = 0;
  virtual std::string rank_by() const = 0;
  // The names of the values one item gives; every ItemResult has exactly these.
  virtual std::vector<std::string> head_values() const = 0;
  virtual std::vector<std::string> token_values() const { return {}; }
  virtual std::vector<std::string> scalar_values() const { return {}; }
  // The items, checked against the model (Error naming the first bad one): called before anything runs.
  virtual std::vector<ProbeItem> items(const Model& m) const = 0;
  // Called once before the probe's first item runs (and before combine) with the results of the probes before it
  // in the job, complete and combined: a probe that builds on them (a circuit stage's receivers are the heads an
  // earlier stage selected) takes what it needs here. Its params() must not depend on them.
  virtual void prepare(const Model&, const std::vector<ProbeResult>& /*earlier*/) const {}
  virtual ItemResult run(const Model& m, const ProbeItem& item) const = 0;
  // scores and summary from every item's values (items and values in item order).
  virtual void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const = 0;
};

// Called after each item with (items done, items in all); returning false stops the probe (it throws Cancelled).
using ProbeProgress = std::function<bool(int64_t, int64_t)>;

// The mean over items of a per-head value.
at::Tensor mean_over_items(const ProbeResult& r, const std::string& value);

// Runs one probe over its items in memory (continuations made here): the result with every item's values.
ProbeResult run_probe(const Model& m, const Probe& p, const ProbeProgress& progress = nullptr);

}  // namespace headscope
