// Per-head summaries of a forward pass's attention statistics: the numbers the CLI's `attn --stats` table and the
// GUI's head grid show. Means over the query positions of one prompt, [layer, head], layers first.
#pragma once
#include <string>
#include <vector>

#include "model/transformer.h"

namespace headscope {

enum class HeadStat { Entropy, SinkMass, MeanDistance, MaxProb };
constexpr int kHeadStatCount = 4;
const char* head_stat_name(HeadStat s);   // "entropy", "sink_mass", "mean_dist", "max_prob"
const char* head_stat_label(HeadStat s);  // "mean entropy (nats)", ...
bool head_stat_parse(const std::string& name, HeadStat* out);

struct HeadSummary {
  int n_layers = 0, n_heads = 0;
  std::vector<float> values[kHeadStatCount];  // each [n_layers * n_heads]
  float at(HeadStat s, int layer, int head) const { return values[static_cast<int>(s)][layer * n_heads + head]; }
};

// Needs a ForwardResult recorded with AttnRecord::stats (sink mass is the mass on the record's sink set).
HeadSummary summarize_heads(const ForwardResult& r);

}  // namespace headscope
