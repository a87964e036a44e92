// One head's attention pattern for a prompt, the only T x T map headscope materialises on request (a run file
// stores none): blocks.L.attn.hook_pattern as the attention kernel writes it (kernels/attention.h), for the
// attention figure (`headscope figure --kind attention`) and the GUI's export of its attention view.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace headscope {

// The probabilities A[q, k] of head (layer, head) over `ids`, [T * T] row-major (row = query; keys after the query
// are 0), from one forward pass; interventions in `hooks` apply (the intervened pattern). Error for a head outside
// the model or an empty prompt.
std::vector<double> prompt_head_pattern(const Model& m, const std::vector<int32_t>& ids, int layer, int head, const ForwardHooks* hooks = nullptr);

}  // namespace headscope
