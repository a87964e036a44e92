// The forward pass's adapter to the instrumented attention kernel (kernels/attention.h): turns a layer's hook
// edits (uniform heads, logit bias, ACT calibration) into kernel interventions, allocates the statistics the record
// asks for (one tensor per id of core/head_stats.h) and the requested hook_pattern windows, and runs the kernel.
#pragma once
#include <ATen/core/Tensor.h>

#include "model/config.h"
#include "model/forward_hooks.h"
#include "model/transformer.h"

namespace headscope {

// One layer's attention. q [T, H, d] at positions pos0 .. pos0 + T - 1, k/v [S, H_kv, d] (rotated; S = pos0 + T)
// -> [T, H * d]. Statistics, key counts and the layer's requested hook_pattern windows go into `res`: per-query
// statistics [H, T], per-key ones [H, S]; attn_bias keys and sink positions are absolute (negative keys count from
// the end of the S keys); pattern rows are the T new rows.
at::Tensor attend(const ModelConfig& c, int64_t layer, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  int64_t pos0, const AttnRecord* rec, ForwardResult& res, const KernelEdits* edits);

}  // namespace headscope
