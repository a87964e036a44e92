// Pattern scores against mechanisms (see head_detect.h).
#include "analysis/head_detect.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"

namespace headscope {

bool KeySets::has(int64_t t, int64_t s) const {
  return std::binary_search(keys.begin() + offsets[t], keys.begin() + offsets[t + 1], static_cast<int32_t>(s));
}

void KeySets::add_row(const std::vector<int32_t>& row_keys) {
  keys.insert(keys.end(), row_keys.begin(), row_keys.end());
  offsets.push_back(static_cast<int64_t>(keys.size()));
}

KeySets detection_keys(DetectPattern kind, const std::vector<int32_t>& tokens) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  std::map<int32_t, std::vector<int32_t>> seen;  // token -> its earlier positions, ascending
  KeySets D;
  for (int64_t i = 0; i < T; ++i) {
    std::vector<int32_t> row;
    if (kind == DetectPattern::previous) {
      if (i >= 1) row.push_back(static_cast<int32_t>(i - 1));
    } else {
      auto it = seen.find(tokens[i]);
      if (it != seen.end())
        for (int32_t j : it->second) {
          if (kind == DetectPattern::duplicate) row.push_back(j);  // tok_j = tok_i, j < i
          else if (j + 1 <= i) row.push_back(j + 1);               // D_dup[i, j' - 1] with j' = j + 1 <= i
        }
    }
    D.add_row(row);
    seen[tokens[i]].push_back(static_cast<int32_t>(i));
  }
  return D;
}

at::Tensor detection_pattern(DetectPattern kind, const std::vector<int32_t>& tokens) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const KeySets D = detection_keys(kind, tokens);
  at::Tensor out = at::zeros({T, T}, at::kFloat);
  float* d = out.data_ptr<float>();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t k = D.offsets[i]; k < D.offsets[i + 1]; ++k) d[i * T + D.keys[k]] = 1.f;
  return out;
}

KeySets stripe_keys(int64_t T, int64_t offset) {
  KeySets S;
  for (int64_t i = 0; i < T; ++i)
    S.add_row(i >= offset ? std::vector<int32_t>{static_cast<int32_t>(i - offset)} : std::vector<int32_t>{});
  return S;
}

std::vector<double> row_mass(const at::Tensor& A_in, const KeySets& sets) {
  const at::Tensor A = A_in.to(at::kDouble).contiguous();
  const int64_t T = A.size(0), S = A.size(1);
  if (sets.rows() != T) throw Error("row_mass: the key sets have " + std::to_string(sets.rows()) + " rows for a pattern of " + std::to_string(T));
  const double* a = A.data_ptr<double>();
  std::vector<double> out(static_cast<size_t>(T), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = sets.offsets[t]; k < sets.offsets[t + 1]; ++k) out[t] += a[t * S + sets.keys[k]];
  return out;
}

DetectRows detect_rows(const at::Tensor& A_in, const KeySets& D) {
  const at::Tensor A = A_in.to(at::kDouble).contiguous();
  const int64_t T = A.size(0);
  DetectRows r;
  r.on_keys = row_mass(A, D);
  KeySets first, current;
  for (int64_t t = 0; t < T; ++t) first.add_row({0}), current.add_row({static_cast<int32_t>(t)});
  r.on_first = row_mass(A, first), r.on_current = row_mass(A, current);
  const at::Tensor sums = A.sum(1);
  r.sum.assign(sums.data_ptr<double>(), sums.data_ptr<double>() + T);
  return r;
}

double detect_score(const DetectRows& rows, const KeySets& D, const DetectOptions& o) {
  const int64_t T = D.rows();
  if (static_cast<int64_t>(rows.sum.size()) != T || static_cast<int64_t>(rows.on_keys.size()) != T ||
      static_cast<int64_t>(rows.on_first.size()) != T || static_cast<int64_t>(rows.on_current.size()) != T)
    throw Error("detect_score: row masses and detection keys disagree on the number of rows");
  // Zeroing the BOS column and/or the diagonal removes, per row, A[t, 0] and A[t, t] (once when t = 0) from the
  // pattern's total, and from the detected mass and D's count where those entries are detection keys.
  double total = 0, detected = 0, d_count = 0;
  for (int64_t t = 0; t < T; ++t) {
    const bool drop_first = o.exclude_bos, drop_current = o.exclude_current && !(t == 0 && drop_first);
    total += rows.sum[t] - (drop_first ? rows.on_first[t] : 0.0) - (drop_current ? rows.on_current[t] : 0.0);
    detected += rows.on_keys[t];
    d_count += static_cast<double>(D.offsets[t + 1] - D.offsets[t]);
    if (drop_first && D.has(t, 0)) detected -= rows.on_first[t], d_count -= 1;
    if (drop_current && D.has(t, t)) detected -= rows.on_current[t], d_count -= 1;
  }
  if (!o.abs) return total > 0 ? detected / total : 0.0;
  // |A - D| = A + D - 2 A D for A in [0, 1] and D in {0, 1}.
  const double abs_sum = total + d_count - 2.0 * detected;
  return 1.0 - std::round(abs_sum / static_cast<double>(T) * 1000.0) / 1000.0;
}

double detect_score(const at::Tensor& A, const std::vector<int32_t>& tokens, DetectPattern kind, const DetectOptions& o) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (A.dim() != 2 || A.size(0) != T || A.size(1) != T)
    throw Error("detect_score: the pattern must be [T, T] for the " + std::to_string(T) + " tokens");
  const KeySets D = detection_keys(kind, tokens);
  return detect_score(detect_rows(A, D), D, o);
}

double stripe_mean(const std::vector<double>& mass, int64_t first, int64_t last) {
  if (first < 0 || last >= static_cast<int64_t>(mass.size()) || last < first) throw Error("stripe_mean: rows outside the pattern");
  double sum = 0;
  for (int64_t i = first; i <= last; ++i) sum += mass[i];
  return sum / static_cast<double>(last - first + 1);
}

double stripe_mean(const at::Tensor& A, int64_t offset, int64_t first, int64_t last) {
  if (first < offset || last >= A.size(0) || last < first) throw Error("stripe_mean: rows outside the pattern");
  return stripe_mean(row_mass(A, stripe_keys(A.size(0), offset)), first, last);
}

double sink_alpha(const at::Tensor& A, int64_t k) {
  const int64_t T = A.size(0);
  if (k < 0 || k >= T) throw Error("sink_alpha: key outside the pattern");
  return A.to(at::kDouble).select(1, k).narrow(0, k, T - k).sum().item<double>() / static_cast<double>(T - k);
}

}  // namespace headscope
