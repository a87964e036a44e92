// Binding mechanisms and their causal model (see binding.h).
#include "analysis/binding.h"

#include <ATen/ATen.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "analysis/patching.h"
#include "core/error.h"
#include "core/random.h"

namespace headscope {

std::string binding_mechanism(const BindingObservation& o) {
  const auto best = static_cast<int>(std::max_element(o.P.begin(), o.P.end()) - o.P.begin());
  if (best == o.p) return "positional";
  if (best == o.k) return "lexical";
  if (best == o.i) return "reflexive";
  if (best == o.q) return "no_effect";
  return "mixed";
}

namespace {

// Mean JSD_2 between rows of Q and P [N, A] (differentiable in Q).
at::Tensor mean_jsd(const at::Tensor& Q, const at::Tensor& P) {
  const at::Tensor M = 0.5 * (Q + P);
  auto kl = [&](const at::Tensor& X) { return (X * (at::log2(X.clamp_min(1e-12)) - at::log2(M.clamp_min(1e-12)))).sum(1); };
  return (0.5 * kl(Q) + 0.5 * kl(P)).mean();
}

struct Params {
  at::Tensor w, s, gk, gi;  // [1], [3], [A], [A]
};

at::Tensor predict(const Params& m, const at::Tensor& p, const at::Tensor& k, const at::Tensor& i, int64_t A, bool positional_only) {
  const at::Tensor a = at::arange(A, at::kDouble).unsqueeze(0);  // [1, A]
  const at::Tensor x = p.to(at::kDouble).unsqueeze(1) / static_cast<double>(A);
  const at::Tensor sigma = (m.s[0] + m.s[1] * x + m.s[2] * x * x).abs() + 1e-6;  // [N, 1]
  const at::Tensor d = a - p.to(at::kDouble).unsqueeze(1);
  at::Tensor logit = m.w * at::exp(-(d * d) / (2 * sigma * sigma));
  if (!positional_only) {
    logit = logit + at::one_hot(k, A).to(at::kDouble) * m.gk.index_select(0, k).unsqueeze(1);
    logit = logit + at::one_hot(i, A).to(at::kDouble) * m.gi.index_select(0, i).unsqueeze(1);
  }
  return at::softmax(logit, 1);
}

}  // namespace

CausalModelFit fit_causal_model(const std::vector<BindingObservation>& obs, const CausalModelOptions& o) {
  if (obs.size() < 7) throw Error("the causal model needs at least 7 items (70/15/15 split), not " + std::to_string(obs.size()));
  const int64_t A = static_cast<int64_t>(obs[0].P.size());
  for (const BindingObservation& b : obs)
    if (static_cast<int64_t>(b.P.size()) != A) throw Error("binding observations with different numbers of groups");
  // The seeded split.
  std::vector<size_t> order(obs.size());
  std::iota(order.begin(), order.end(), 0);
  uint64_t st = o.seed;
  for (size_t j = order.size(); j > 1; --j) std::swap(order[j - 1], order[static_cast<size_t>(splitmix64(st) % j)]);
  const size_t n = obs.size(), n_train = std::max<size_t>(1, n * 70 / 100), n_val = std::max<size_t>(1, n * 15 / 100);
  auto tensors = [&](size_t from, size_t to) {
    std::vector<int64_t> p, k, i;
    std::vector<double> P;
    for (size_t j = from; j < to; ++j) {
      const BindingObservation& b = obs[order[j]];
      p.push_back(b.p), k.push_back(b.k), i.push_back(b.i);
      P.insert(P.end(), b.P.begin(), b.P.end());
    }
    const int64_t N = static_cast<int64_t>(to - from);
    return std::make_tuple(at::tensor(p, at::kLong), at::tensor(k, at::kLong), at::tensor(i, at::kLong), at::tensor(P, at::kDouble).view({N, A}));
  };
  const auto [p_tr, k_tr, i_tr, P_tr] = tensors(0, n_train);
  const auto [p_va, k_va, i_va, P_va] = tensors(n_train, n_train + n_val);
  const auto [p_te, k_te, i_te, P_te] = tensors(n_train + n_val, n);
  CausalModelFit fit;
  fit.train = n_train, fit.validation = n_val, fit.test = n - n_train - n_val;
  auto train = [&](bool positional_only, int* epochs_run) {
    Params m{at::ones({1}, at::kDouble), at::tensor(std::vector<double>{1.0, 0.0, 0.0}, at::kDouble), at::zeros({A}, at::kDouble),
             at::zeros({A}, at::kDouble)};
    std::vector<at::Tensor> params{m.w, m.s};
    if (!positional_only) params.push_back(m.gk), params.push_back(m.gi);
    for (at::Tensor& t : params) t.set_requires_grad(true);
    torch::optim::Adam adam(params, torch::optim::AdamOptions(o.lr));
    double best = INFINITY;
    std::vector<at::Tensor> best_params;
    int since = 0, epoch = 0;
    for (; epoch < o.max_epochs && since < o.patience; ++epoch) {
      adam.zero_grad();
      at::Tensor loss = mean_jsd(predict(m, p_tr, k_tr, i_tr, A, positional_only), P_tr);
      loss.backward();
      adam.step();
      at::NoGradGuard no_grad;
      const double val = mean_jsd(predict(m, p_va, k_va, i_va, A, positional_only), P_va).item<double>();
      if (val < best - 1e-12) {
        best = val, since = 0, best_params.clear();
        for (const at::Tensor& t : params) best_params.push_back(t.detach().clone());
      } else {
        ++since;
      }
    }
    at::NoGradGuard no_grad;
    for (size_t j = 0; j < params.size(); ++j) params[j].detach().copy_(best_params[j]);
    if (epochs_run) *epochs_run = epoch;
    return Params{m.w.detach(), m.s.detach(), m.gk.detach(), m.gi.detach()};
  };
  const Params full = train(false, &fit.epochs);
  const Params positional = train(true, nullptr);
  at::NoGradGuard no_grad;
  fit.jss_test = 1.0 - mean_jsd(predict(full, p_te, k_te, i_te, A, false), P_te).item<double>();
  fit.jss_positional = 1.0 - mean_jsd(predict(positional, p_te, k_te, i_te, A, true), P_te).item<double>();
  fit.jss_uniform = 1.0 - mean_jsd(at::full_like(P_te, 1.0 / static_cast<double>(A)), P_te).item<double>();
  fit.w = full.w.item<double>(), fit.s0 = full.s[0].item<double>(), fit.s1 = full.s[1].item<double>(), fit.s2 = full.s[2].item<double>();
  for (int64_t a = 0; a < A; ++a) fit.g_k.push_back(full.gk[a].item<double>()), fit.g_i.push_back(full.gi[a].item<double>());
  return fit;
}

}  // namespace headscope
