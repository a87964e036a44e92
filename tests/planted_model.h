// A tiny GPT-2-architecture checkpoint with attention heads planted by construction, written by the tests
// themselves (config.json, model.safetensors, tokenizer.json), for checks whose answer is known before the model
// runs (METRICS.md's WAAD/FAI fixture and the like).
//
// The residual stream of token t is the one-hot position vector e_t (token embeddings are zero; attention and MLP
// outputs are zero, so every layer sees the same stream). After LayerNorm, query and key weights make these heads,
// in every layer, with score gaps so large (> 140 after scaling) that the losing keys get probability exactly 0:
//   kPrevHead     attends to t - 1 (row 0 to itself)          WAAD_t = 1 (t >= 1), mean distance 1
//   kFirstHead    attends to key 0                            WAAD_t = min(t, W), sink mass 1
//   kPairHead     splits 0.5 / 0.5 between key 0 and kStar    (rows t >= kStar; earlier rows: key 0 only)
//   kUniformHead  all scores equal                            p = 1 / (t + 1)
// The tokenizer maps each printable ASCII character to one token (id = its code); prompts up to kPositions tokens.
#pragma once
#include <string>

namespace planted {

constexpr int kPositions = 72, kHeads = 4, kLayers = 2, kVocab = 128;
constexpr int kPrevHead = 0, kFirstHead = 1, kPairHead = 2, kUniformHead = 3;
constexpr int kStar = 5;

// Writes the model into `dir` (created if needed) and returns `dir`.
std::string write_model(const std::string& dir);

// A second planted GPT-2 with the induction circuit: the residual stream holds one-hot position (P), token (V)
// and, after layer 0, previous-token (R) codes. Layer 0's previous-token head copies the previous token's code
// into R (through c_proj, exactly); then, with score gaps of >= 140 after scaling,
//   layer 0  kPrevHead       t - 1 (row 0 to itself)
//            kDupHead        every earlier position of the same token, equally; itself when there is none
//            kFirstHead      key 0;   kUniformHead: 1 / (t + 1)
//   layer 1  kInductionHead  every key s whose previous token is the current token (R_s = V_t), equally;
//                            uniform over 0..t when there is none
//            kPrevHead, kFirstHead, kUniformHead as in layer 0
// d_head = 200 (token and position codes side by side), d_model = 800; the same ASCII tokenizer, BOS = 127.
namespace induction {
constexpr int kHeads = 4, kLayers = 2, kHeadDim = 200, kModel = kHeads * kHeadDim;
constexpr int kPrevHead = 0, kFirstHead = 2, kUniformHead = 3;
constexpr int kDupHead = 1, kInductionHead = 1;  // layer 0, layer 1
}  // namespace induction
std::string write_induction_model(const std::string& dir);

// The induction model made a copier (for retrieval heads, METRICS.md §1): layer 1's induction head also writes the
// attended token's code, twice as strong as the current one, so greedy decoding continues a sequence seen before
// ("#QZ7W3X" after a second "#"), each step's argmax key being the token it emits. Layer 1's uniform head becomes
// kHalfHead: the induction match on even query positions, key 0 (BOS) on odd ones.
namespace copy {
constexpr int kCopyHead = 1, kBosHead = 2, kHalfHead = 3;  // layer 1
}
std::string write_copy_model(const std::string& dir);

// A third planted GPT-2 whose residual stream holds planted attention sinks (Wong et al., METRICS.md §2b) in a
// sink direction S beside the one-hot position and token codes; attention writes nothing, one MLP neuron per event
// adds or removes 20 S for one token:
//   BOS (id 127)   20 S from its embedding, +20 S at block 2    (the anchor; its norm steps up at block 2 and down
//                                                                at the final norm: the window is [2, 9))
//   '@'            +20 S at block 2, never removed              primary:   l_start 2, lifetime 7
//   '#'            +20 S at block 4, removed at block 7         secondary: l_start 4, lifetime 3 (a level when twice)
//   '!'            +20 S at block 5, removed at block 6         noise:     l_start 5, lifetime 1
// 10 layers (thresholds scaled: primary >= 5.5, secondary > 1), d_model 256.
namespace sinks {
constexpr int kLayers = 10, kModel = 256, kHeads = 4;
}
std::string write_sink_model(const std::string& dir);

// A fourth planted GPT-2 with a two-step circuit for path patching (METRICS.md §5): a name mover that moves a name
// only when a duplicate-token head has marked it. The residual holds one-hot position (P) and token (V) codes and a
// marker pair: U = 1 (unmarked) from every position's embedding, or M = 1 (marked) instead, so every stream holds
// exactly three ones and LayerNorm treats marked and unmarked tokens alike.
//   layer 0  kDupHead    attends to an earlier position holding the same token (position 0 when there is none)
//                        and, when that position is not 0, writes M = +1, U = -1 (exactly, through c_proj)
//   layer 1  kMoverHead  a constant query against k = M: attends to the marked positions (position 0 when none
//                        is marked) and writes the attended token codes back, so the unembedding (tied: the V
//                        code) prefers the marked name
// Every other head has zero weights (uniform attention, zero output); the MLPs are zero. Clean "xAByA." marks the
// second A: the answer A beats B; corrupt "xAByC." marks nothing: the mover moves x, and A and B tie (logit
// difference 0). Path patching: logits <- kMoverHead (s = 1), the mover's keys <- kDupHead (s = 1), every
// other head and every other path (the mover's queries and values) 0.
namespace mover {
constexpr int kLayers = 2, kHeads = 4, kHeadDim = 208, kModel = kHeads * kHeadDim;
constexpr int kDupHead = 1, kMoverHead = 2;  // layer 0, layer 1
}  // namespace mover
std::string write_mover_model(const std::string& dir);

}  // namespace planted
