// Binding mechanisms (METRICS.md §6; "Mixing Mechanisms", arXiv 2510.06182, code yoavgur/mixing-mechs): after an
// interchange intervention, the model's distribution P over the original context's A candidate answers is read as
// one of the mechanisms by its argmax — the counterfactual query's position p (positional), the group bound to the
// counterfactual's query key k (lexical), the group holding the counterfactual's answer i (reflexive), the
// original's own query q (no effect), or any other group (mixed). The causal model predicts P from (p, k, i):
//   logit(a) = w exp(-(a - p)^2 / (2 sigma(p)^2)) + g_K[k] 1[a = k] + g_I[i] 1[a = i],
//   sigma(p) = |s0 + s1 (p / A) + s2 (p / A)^2| + 1e-6,   Q = softmax over the A groups,
// fitted with LibTorch autograd and Adam (full batch) minimising the mean JSD between Q and P on a seeded 70 % of
// the items, early-stopped on the next 15 % (at most 5000 epochs, patience 500), and scored on the last 15 % as
// JSS = 1 - JSD_2 (base-2 logs, in [0, 1]); beside it the positional term alone and the uniform distribution.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace headscope {

struct BindingObservation {
  int q = 0, p = 0, k = 0, i = 0;
  std::vector<double> P;  // over the A groups, summing to 1
};

// "positional", "lexical", "reflexive", "no_effect" or "mixed" (ties go to the first in that order).
std::string binding_mechanism(const BindingObservation& o);

struct CausalModelOptions {
  uint64_t seed = 0;           // of the split
  int max_epochs = 5000, patience = 500;
  double lr = 0.05;
};

struct CausalModelFit {
  size_t train = 0, validation = 0, test = 0;
  int epochs = 0;               // run before stopping
  double jss_test = 0;          // the full model on the test items
  double jss_positional = 0;    // the positional term alone (g_K = g_I = 0, fitted the same way)
  double jss_uniform = 0;       // Q uniform
  double w = 0, s0 = 0, s1 = 0, s2 = 0;
  std::vector<double> g_k, g_i;  // per group index
};

// Error when fewer than 7 observations (every split needs one) or their distributions differ in size.
CausalModelFit fit_causal_model(const std::vector<BindingObservation>& obs, const CausalModelOptions& o = {});

}  // namespace headscope
