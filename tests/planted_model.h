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

}  // namespace planted
