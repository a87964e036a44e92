// Patching attention heads between clean and corrupt prompts (METRICS.md §5, §8): the task prompt pairs
// (IOI, Colored Objects), activation patching of every head's output (blocks.L.attn.hook_z) at every position or one
// position at a time, and path patching from sender heads to receivers' queries, keys or values or to the logits.
//   activation patching  denoising (clean into corrupt): m = (LD_patch - LD_corr) / (LD_clean - LD_corr)
//                        noising (corrupt into clean):   s = (LD_patch - LD_clean) / (LD_corr - LD_clean)
//   path patching        (Merullo et al., after Wang et al.) run 1: the clean prompt with every head's output frozen
//                        to its clean value except the sender's, which is the corrupt one (MLPs recomputed); the
//                        receivers' inputs are cached from it. Run 2: the clean prompt with only the receivers' inputs
//                        replaced by run 1's. s from run 2's logit difference (for the logits, run 1's).
// Both aggregations over prompts (analysis/patching.h). Cost: each pair runs clean and corrupt once, caching every
// layer's residual and head inputs and outputs; a patched pass then starts at the patched layer from the cached
// residual (the layers below are the clean or corrupt run's), a patch at one position p recomputes only the rows
// from p on (the rows before it are the cached run's, keys and values included), and the variants of one layer
// (its heads at one position, the senders) run together as one batched pass (Model::forward_batch). `forwards`
// counts patched variants (each one full forward's worth of results).
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"

namespace headscope {

struct PatchPair {
  std::vector<int32_t> clean, corrupt;  // the same length
  int32_t correct = -1, incorrect = -1;  // answer tokens (the first token of each answer)
  std::string clean_text, corrupt_text;
};

// A task's prompt pairs for the model in use (datasets/ioi.h, datasets/colored_objects.h): the prompts with BOS as
// the model adds it, answers as their first token with the leading space.
struct TaskOptions {
  std::string task = "ioi";   // ioi, colored-objects, or a pairs file (JSONL, below)
  std::string corrupt = "abc";  // IOI only: abc, flip
  int pairs = 20;
  uint64_t seed = 0;
  bool same_length = false;   // up to `pairs` pairs of one length (the most common among 8 x pairs drawn): one
                              // position at a time needs one length
};
struct TaskPairs {
  std::vector<PatchPair> pairs;
  nlohmann::json vocabulary;   // what the single-token rule kept and dropped
  int64_t dropped_unequal = 0;  // pairs whose clean and corrupt prompts tokenize to different lengths
  int64_t dropped_length = 0;   // pairs drawn but not kept (same_length)
};
// A pairs file holds one pair per line: {"clean": "...", "corrupt": "...", "correct": "...", "incorrect": "..."};
// the answers' first tokens are used as written (put the leading space in where the tokenizer wants one).
// Error for an unknown task or corrupt distribution, a tokenizer without enough single-token names, colours or
// objects, a malformed pairs file (line named), or no pair left.
TaskPairs make_task_pairs(const Model& m, const TaskOptions& o);
// The same checks as every patching entry point: a non-empty pair set of equal-length pairs with answers in the
// vocabulary (Error naming the first bad pair).
void check_pairs(const ModelConfig& cfg, const std::vector<PatchPair>& pairs);

// One prompt's activations, per layer: the residual entering it [T, D], the head inputs q [T, H, d], k/v
// [T, H_kv, d] (before RoPE) and outputs z [T, H, d]; and the prompt's logit difference.
struct PromptCache {
  std::vector<at::Tensor> resid, q, k, v, z;
  KvCache kv;  // every layer's keys and values: a pass patched at position p reuses rows before p
  double ld = 0;
};
PromptCache cache_prompt(const Model& m, const std::vector<int32_t>& ids, int32_t correct, int32_t incorrect);

struct HeadPatchingOptions {
  bool noising = false;        // else denoising
  bool per_position = false;   // one position at a time ([L, H, T]), else every position at once ([L, H])
  int64_t batch = 25;          // prompts per batch of the ratio-of-means aggregation
};

struct HeadPatchingResult {
  at::Tensor ratio_of_means, mean_of_ratios;  // [L, H] or [L, H, T] float64 (NaN where no pair has signal)
  std::vector<double> ld_clean, ld_corrupt;   // per pair
  int64_t forwards = 0, passes = 0;           // patched variants; batched passes that ran them
  double seconds = 0;
  double plain_forward_seconds = 0;  // the baseline: one plain forward of the first clean prompt (median of 3), what a
                                     // patched variant costs when each is its own forward
};

// Error for an empty pair set, pairs of different lengths (named), answers outside the vocabulary.
// `progress(done, total)` after each pair; returning false stops (Cancelled).
HeadPatchingResult patch_heads(const Model& m, const std::vector<PatchPair>& pairs, const HeadPatchingOptions& o,
                               const std::function<bool(int64_t, int64_t)>& progress = nullptr);

// Where a path ends: the logits, or these receiver heads' queries, keys or values (at every position). With
// grouped-query attention a receiver's keys and values are its KV group's; the group's other heads keep their
// clean output, so only the receivers see the change.
enum class PathInput { logits, q, k, v };
const char* path_input_name(PathInput p);
struct PathTarget {
  PathInput input = PathInput::logits;
  std::vector<std::pair<int, int>> receivers;  // (layer, head); empty for the logits
};
// The senders of a target: every head below the lowest receiver's layer (all heads for the logits).
std::vector<std::pair<int, int>> path_senders(const ModelConfig& cfg, const PathTarget& t);

// The logit difference of one pair with each sender's corrupt output reaching the target only along the path:
// [L, H] float64, NaN for heads that are not senders (none when the target has no receivers or no sender).
// `forwards`, `passes` count the patched variants and batched passes.
at::Tensor path_patch_pair(const Model& m, const PatchPair& p, const PromptCache& clean, const PromptCache& corrupt,
                           const PathTarget& t, int64_t* forwards = nullptr, int64_t* passes = nullptr);

}  // namespace headscope
