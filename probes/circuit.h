// Circuit discovery by path patching (Merullo et al., "Circuit Component Reuse Across Tasks", METRICS.md §5): a
// task's circuit is found stage by stage from the logits backwards, each stage's receivers being heads an earlier
// stage selected:
//   logits             senders: every head                      -> name movers (s > 0), negative movers (s < 0)
//   mover_queries      receivers: the movers' queries            -> S-inhibition heads
//   inhibition_values  receivers: the S-inhibition heads' values -> induction or duplicate-token heads (by the
//                                                                  induction probe's scores, each relative to the
//                                                                  model's strongest head of its kind)
//   induction_keys     receivers: the induction heads' keys      -> previous-token heads
// A stage selects the top 2 % of all heads by |s| among its senders (ceil(0.02 L H); ties by |s| then index; a head
// without any effect, |s| < 1e-6, is never selected), s
// the noising score of runs/patching.h, aggregated as the mean over batches of 25 pairs of the ratio of the batch
// means (the mean of per-pair ratios is stored beside it). Each stage is a probe ("circuit/<stage>") so a `circuit`
// job is a resumable run like `score`'s: per pair the patched logit differences [L, H] and the clean and corrupt
// ones; per stage its receivers, the selected heads with class and effect, and the task's accuracy and logit
// differences. The circuit is the union of the stages' heads; two circuits' overlap is |shared| / |union|.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "probes/probe.h"
#include "runs/patching.h"

namespace headscope {

struct CircuitStage {
  std::string name;
  PathInput input;
  std::string from;        // the stage whose selected heads are the receivers ("" for the logits)
  std::string from_class;  // only its heads of this class ("" for all)
};
const std::vector<CircuitStage>& circuit_stages();

struct CircuitOptions {
  TaskOptions task;
  double share = 0.02;  // of all heads, per stage
  int64_t batch = 25;   // pairs per batch of the ratio-of-means aggregation
};

class CircuitStageProbe : public Probe {
 public:
  CircuitStageProbe(std::vector<PatchPair> pairs, CircuitOptions o, size_t stage);
  std::string name() const override { return "circuit/" + stage_.name; }
  nlohmann::json params() const override;
  std::string rank_by() const override { return "effect"; }
  std::vector<std::string> head_values() const override { return {"ld_patch"}; }
  std::vector<std::string> scalar_values() const override { return {"ld_clean", "ld_corrupt"}; }
  std::vector<ProbeItem> items(const Model& m) const override;
  void prepare(const Model& m, const std::vector<ProbeResult>& earlier) const override;
  ItemResult run(const Model& m, const ProbeItem& item) const override;
  void combine(const Model& m, const std::vector<ProbeItem>& items, ProbeResult& r) const override;

 private:
  std::vector<PatchPair> pairs_;
  CircuitOptions o_;
  CircuitStage stage_;
  mutable PathTarget target_;                      // set by prepare
  mutable at::Tensor induction_, duplicate_;       // the induction probe's scores, when it ran first
};

// The probes of a circuit job: the induction probe (for the classes), then the stages in order.
std::vector<std::unique_ptr<Probe>> circuit_probes(const Model& m, const CircuitOptions& o);

struct CircuitHead {
  int layer = 0, head = 0;
  std::string cls, stage;
  double effect = 0;
};
// The union of the stages' selected heads (a head in several stages keeps its first), from a job's results or a
// run file's probes.
std::vector<CircuitHead> circuit_heads(const std::vector<ProbeResult>& results);

struct Overlap {
  int64_t shared = 0, in_union = 0;
  double jaccard = 0;  // shared / union (NaN when both are empty)
};
struct CircuitOverlap {
  Overlap all;
  std::map<std::string, Overlap> per_class;  // heads of that class in each circuit
};
CircuitOverlap circuit_overlap(const std::vector<CircuitHead>& a, const std::vector<CircuitHead>& b);

// The repair experiment of Merullo et al. on Colored Objects: chosen heads are made to attend, from the final token
// only, to the question's incorrect colours (an attention-bias intervention: every other key gets `bias`, so the
// softmax runs over those two tokens), and accuracy — the correct colour's logit above the two other colours of the
// question (title case, chance 1/3) — is compared before and after, and against the same number of random heads
// (seeded draws from the heads not chosen).
struct RepairOptions {
  int prompts = 100;
  uint64_t seed = 0;                           // of the prompts; draw d uses seed + 1 + d
  std::vector<std::pair<int, int>> heads;      // the heads made to attend
  int draws = 5;
  float bias = -1e4f;
};
struct RepairResult {
  int64_t prompts = 0;
  double before = 0, after = 0;                // accuracy
  double ld_before = 0, ld_after = 0;          // mean logit difference, correct minus the best incorrect colour
  std::vector<double> random_after;            // per draw
  std::vector<std::vector<std::pair<int, int>>> random_heads;
};
RepairResult repair_colored_objects(const Model& m, const RepairOptions& o, const std::function<bool(int64_t, int64_t)>& progress = nullptr);
// The heads Merullo et al. chose from a Colored Objects circuit: its three strongest S-inhibition heads and its
// strongest negative mover (by |effect|), those that exist.
std::vector<std::pair<int, int>> repair_heads(const std::vector<CircuitHead>& circuit);

}  // namespace headscope
