// Per-head summaries of a forward pass's attention statistics: the numbers the CLI's `attn --stats` table and the
// GUI's head grid show. For every per-query float statistic of the table (core/head_stats.h), its mean over the
// query positions of one prompt, [layer, head], layers first.
#pragma once
#include <vector>

#include "core/head_stats.h"
#include "model/transformer.h"

namespace headscope {

struct HeadSummary {
  int n_layers = 0, n_heads = 0;
  std::vector<float> values[kStatCount];  // [n_layers * n_heads] for each head_stat_is_row_sum id; empty otherwise
  float at(int stat, int layer, int head) const { return values[stat][layer * n_heads + head]; }
};

// Needs a ForwardResult recorded with AttnRecord::stats (sink mass is the mass on the record's sink set).
HeadSummary summarize_heads(const ForwardResult& r);

}  // namespace headscope
