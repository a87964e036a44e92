// Retrieval heads (Wu et al., METRICS.md §1): needle-in-a-haystack items (datasets/niah.h) over a grid of context
// lengths and depths, each continued greedily by the model (KV cache, at most `max_new` tokens, stopping after a
// newline), then one forward over prompt + answer gives every decode step's argmax key per head (a decode step's
// statistics are those rows of the whole forward). Per item: the copy score r [L, H] (analysis/retrieval.h), the
// ROUGE-1 recall of the answer, and whether the item counts (recall > 50 and the needle located: failed items are
// dropped, not zeroed). Scores: "retrieval" R = mean r over kept items; "activation" = share of kept items with r > 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/niah.h"
#include "probes/probe.h"

namespace headscope {

struct RetrievalOptions {
  std::vector<int64_t> lengths;     // empty: round(linspace(1000, min(50000, context), 20))
  std::vector<double> depths;       // empty: round(linspace(0, 100, 10))
  std::vector<Needle> needles;      // empty: the reference's three
  std::string haystack;             // the haystack text (the caller reads the file)
  std::string haystack_name;        // where it came from, for the parameters
  std::string format = "auto";      // plain, chatml, llama2, llama3; auto: from the model's chat template
  int max_new = 50;
  bool set_mode = false;            // mode "set" instead of "step"
  double rouge_threshold = 50;      // items with ROUGE-1 recall x 100 above it count
  int64_t reserve = 200;            // tokens kept free for the question and the answer
  // Items of the caller's instead of the NIAH grid (other tasks, fixtures): prompts whose meta holds the "answer".
  std::vector<ProbeItem> given_items;
};

class RetrievalProbe : public Probe {
 public:
  explicit RetrievalProbe(RetrievalOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "retrieval"; }
  nlohmann::json params() const override;
  std::string rank_by() const override { return "retrieval"; }
  std::vector<std::string> head_values() const override { return {"r"}; }
  std::vector<std::string> scalar_values() const override { return {"rouge1", "kept", "needle_start", "needle_end"}; }
  std::vector<ProbeItem> items(const Model& m) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

  // The grid actually used with this model (defaults filled in, lengths capped at its context).
  std::vector<int64_t> lengths_for(const Model& m) const;
  std::vector<double> depths() const;
  const RetrievalOptions& options() const { return o_; }

 private:
  RetrievalOptions o_;
};

// The prompt format of a model: its chat template's ("chatml", "llama2", "llama3") or "plain".
std::string prompt_format(const Model& m);

// The needle-in-a-haystack items of a grid (needles x lengths x depths, lengths capped at the model's context), with
// meta {needle, length, depth, answer, insertion}; given_items when set. Nothing decoded yet.
std::vector<ProbeItem> niah_items(const Model& m, const RetrievalOptions& o);
// The reference's masking evaluation needle (needle_in_haystack_with_mask.py): San Francisco, Dolores Park.
Needle eval_needle();

}  // namespace headscope
