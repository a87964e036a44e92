// Next-token predictions and what an intervention does to them: the numbers `predict`, `ablate` and the GUI's
// "next tokens" panel show, computed once here.
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hooks/interventions.h"
#include "model/model.h"

namespace headscope {

struct TokenScore {
  int32_t id;
  std::string text;  // the token's text, or "#id" without a tokenizer
  float logit, prob;
};

// A token's text, or "#id" when the model has no tokenizer (or the id is outside it).
std::string token_label(const Model& m, int32_t id);

// The k most likely tokens of one position's logits [vocab], most likely first.
std::vector<TokenScore> top_tokens(const Model& m, const at::Tensor& logits, int k);

struct TargetLogit {
  std::string text;  // the answer as given
  int32_t id;        // its first token (as logit-difference metrics use)
  float before, after;
};

struct InterventionEffect {
  std::vector<TokenScore> before, after;  // top next tokens at the last position
  double kl = 0;                          // KL(before || after) in nats, fp64 log-softmax
  std::vector<TargetLogit> targets;
};

// Runs `ids` without and with the interventions of `spec` and compares the last position.
InterventionEffect intervention_effect(const Model& m, const std::vector<int32_t>& ids, const nlohmann::json& spec,
                                       const HeadMeans& means, const std::vector<std::string>& targets, int top_k);

}  // namespace headscope
