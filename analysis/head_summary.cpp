// Per-head means of the kernel statistics (see head_summary.h).
#include "analysis/head_summary.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace headscope {

HeadSummary summarize_heads(const ForwardResult& r) {
  if (r.attn.empty()) throw Error("summarize_heads: the forward pass recorded no attention statistics");
  HeadSummary s;
  s.n_layers = static_cast<int>(r.attn.size());
  s.n_heads = static_cast<int>(r.attn[0][kStatEntropy].size(0));
  for (const AttnLayerStats& a : r.attn)
    for (int id = 0; id < kStatCount; ++id) {
      if (!head_stat_is_row_sum(id)) continue;
      at::Tensor m = a[id].mean(1).contiguous();
      s.values[id].insert(s.values[id].end(), m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
    }
  return s;
}

}  // namespace headscope
