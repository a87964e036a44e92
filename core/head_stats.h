// The one table of per-head attention statistics. The kernel's outputs (kernels/attention.h AttnStats), the
// forward pass's per-layer tensors (AttnLayerStats), the run file's datasets and units (runs/record.h), the
// per-head summaries (analysis/head_summary.h), the CLI's --stats list and the GUI's choices are all derived from
// it. Adding a per-query statistic: a row here, its sum in kernels/attention_math.h (row_add_tile, row_finish),
// its reduction in the test oracle (kernels/attention_reference.cpp), and a test.
// No LibTorch or CUDA header here (nvcc includes it).
#pragma once
#include <cstring>

namespace headscope {

enum HeadStatId : int {
  kStatMaxProb,   // per query: largest probability of the row
  kStatArgmax,    // per query: its key (ties: the lowest index); int32
  kStatEntropy,   // per query: -sum p log p
  kStatSinkMass,  // per query: mass on the sink positions (the first token by default)
  kStatMeanDist,  // per query: sum p (t - s)
  kStatWaad,      // per query: sum p min(t - s, W)
  kStatPrevMass,  // per query: A[t, t-1], the mass on the previous token (0 for the first row)
  kStatKeyRecv,   // per key: mass received from later queries (in a relative window, under a mask)
  kStatCount
};

struct HeadStatInfo {
  const char* name;   // dataset name under /stats, --stats and GUI id
  const char* units;
  const char* label;  // what a per-head mean of it is called (GUI legend, CLI table)
  bool is_int;        // int32 (a key position), else float32
  bool per_key;       // one value per key (the kernel's second pass), else one per query
};

inline const HeadStatInfo& head_stat(int id) {
  static const HeadStatInfo table[kStatCount] = {
      {"max_prob", "probability", "mean max probability", false, false},
      {"argmax", "key position", "mean most-attended key", true, false},
      {"entropy", "nats", "mean entropy (nats)", false, false},
      {"sink_mass", "probability", "mass on the first token", false, false},
      {"mean_dist", "tokens", "mean attention distance (tokens)", false, false},
      {"waad", "tokens", "mean windowed distance (WAAD, tokens)", false, false},
      {"prev_mass", "probability", "mass on the previous token", false, false},
      {"key_recv", "probability", "mass received from later tokens", false, true},
  };
  return table[id];
}

// The id of a statistic by name, or -1.
inline int head_stat_find(const char* name) {
  for (int i = 0; i < kStatCount; ++i)
    if (std::strcmp(head_stat(i).name, name) == 0) return i;
  return -1;
}

// A per-query float statistic: computed by the row math, summarised as a per-head mean.
inline bool head_stat_is_row_sum(int id) { return !head_stat(id).is_int && !head_stat(id).per_key; }

}  // namespace headscope
