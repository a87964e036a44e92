// ACT attention calibration (Yu et al., ICML 2024, arXiv 2406.15765; METRICS.md §7) for one head of a prefill
// pass, computed from the head's attention without materialising it:
//   α_k = Σ_t A[t,k] / (T − k)         (pass 1: per-key received mass, including the key's own row)
//   S   = {k : α_k > τ} minus its smallest element (normally the first token, which keeps its sink); an α_k equal
//         to τ up to float rounding (relative 1e-6) is not above it
//   P_S(t) = Σ_{k∈S} A[t,k]            (pass 2: sink mass on S)
//   A'[t,k] = β·A[t,k] for k ∈ S,  A'[t,j] = A[t,j]·(1 − β·P_S)/(1 − P_S) otherwise.
// A' is exactly the softmax of the scores plus b_t = log(β(1 − P_S(t)) / (1 − β·P_S(t))) on the keys of S
// (rows with P_S = 0 or 1 are left as they are), so the calibrated pass is the kernel itself with
// AttnInterventions::row_bias; its statistics then describe the calibrated attention.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/attention.h"

namespace headscope {

struct ActCalibration {
  std::vector<int32_t> keys;    // S, ascending
  std::vector<float> row_bias;  // [T] b_t
  std::vector<uint8_t> key_mask;  // [S] 1 for keys in S
};

// q [T, H, d], k/v [S, H_kv, d] as attention_cpu, prefill only (q_pos0 = 0, S = T). `iv` holds the layer's other
// in-kernel edits (logit bias, uniform, padding), which the calibration sees. τ > 0, 0 ≤ β ≤ 1.
ActCalibration act_calibration(const AttnShape& sh, const float* q, const float* k, const float* v, int64_t head, float tau,
                               float beta, const AttnInterventions& iv = {});

}  // namespace headscope
