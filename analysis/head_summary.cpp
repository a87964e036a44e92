// Per-head means of the kernel statistics (see head_summary.h).
#include "analysis/head_summary.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace headscope {

const char* head_stat_name(HeadStat s) {
  static const char* names[] = {"entropy", "sink_mass", "mean_dist", "max_prob"};
  return names[static_cast<int>(s)];
}

const char* head_stat_label(HeadStat s) {
  static const char* labels[] = {"mean entropy (nats)", "mass on the first token", "mean attention distance (tokens)",
                                 "mean max probability"};
  return labels[static_cast<int>(s)];
}

bool head_stat_parse(const std::string& name, HeadStat* out) {
  for (int i = 0; i < kHeadStatCount; ++i)
    if (name == head_stat_name(static_cast<HeadStat>(i))) return *out = static_cast<HeadStat>(i), true;
  return false;
}

HeadSummary summarize_heads(const ForwardResult& r) {
  if (r.attn.empty()) throw Error("summarize_heads: the forward pass recorded no attention statistics");
  HeadSummary s;
  s.n_layers = static_cast<int>(r.attn.size());
  s.n_heads = static_cast<int>(r.attn[0].entropy.size(0));
  for (const AttnLayerStats& a : r.attn) {
    const at::Tensor* src[kHeadStatCount] = {&a.entropy, &a.sink_mass, &a.mean_dist, &a.max_prob};
    for (int k = 0; k < kHeadStatCount; ++k) {
      at::Tensor m = src[k]->mean(1).contiguous();
      s.values[k].insert(s.values[k].end(), m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
    }
  }
  return s;
}

}  // namespace headscope
