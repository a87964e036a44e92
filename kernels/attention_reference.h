// The plain, materialising attention: softmax(QK^T) as a [H, T, S] map in float64 with LibTorch ops, and every
// statistic as a reduction over that map. Deliberately simple; used only by tests and benchmarks as the oracle
// that the instrumented kernels (attention_cpu, attention_cuda) are checked and timed against.
#pragma once
#include <ATen/core/Tensor.h>

#include "kernels/attention.h"

namespace headscope {

struct ReferenceAttention {
  at::Tensor out;    // [T, H, d] float64
  at::Tensor probs;  // [H, T, S] float64 (rows that see no key are all zero)
};

// q [T, H, d], k/v [S, H_kv, d] (any float dtype). Honours the window, padding and every intervention.
// Computed in float64 by default (the test oracle); benchmarks time it in float32.
ReferenceAttention attention_reference(const AttnShape& shape, const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, const AttnInterventions& iv = {},
                                       at::ScalarType dtype = at::kDouble);

struct ReferenceStats {
  at::Tensor query[kStatCount];  // [H, T] for every per-query float statistic (head_stat_is_row_sum)
  at::Tensor argmax, topk_idx, topk_prob;  // [H, T] ([H, T, k])
  at::Tensor key_recv;   // [H, S]
  at::Tensor key_count;  // [S]
  at::Tensor keyset_mass;  // [n_keysets, H, T]
};

// The statistics `request` asks for (its output pointers are ignored; its parameters are used), from probs.
ReferenceStats reference_stats(const AttnShape& shape, const at::Tensor& probs, const AttnStats& request,
                               const AttnInterventions& iv = {});

}  // namespace headscope
