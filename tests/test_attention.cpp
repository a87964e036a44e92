// Parity of every attention implementation (CPU instrumented; CUDA instrumented where a device exists) with the
// plain materialising reference (float64 softmax(QK^T) + tensor reductions), over a grid of shapes: T from 1 to
// 4096, d_head 8/64/128, GQA ratios 1/2/4/8, causal with and without a window, fp32 and bf16-valued inputs,
// and with the in-kernel interventions. Also: hand-checked values, tie-breaking, and peak memory at T = 16384.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <fstream>
#include <functional>

#include "kernels/attention.h"
#include "kernels/attention_act.h"
#include "kernels/attention_reference.h"
#include "core/error.h"
#include "model/model.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {

struct Impl {
  const char* name;
  std::function<void(const AttnShape&, const float*, const float*, const float*, float*, const AttnStats&,
                     const AttnInterventions&)>
      run;
};

const Impl kCpu{"cpu", [](auto& sh, auto q, auto k, auto v, auto o, auto& st, auto& iv) { attention_cpu(sh, q, k, v, o, st, iv); }};
const Impl kCuda{"cuda", [](auto& sh, auto q, auto k, auto v, auto o, auto& st, auto& iv) {
                   char err[256];
                   if (!attention_cuda_from_host(sh, q, k, v, o, st, iv, err, sizeof err)) FAIL(err);
                 }};

// All statistics requested, with buffers owned here.
struct StatBufs {
  at::Tensor query[kStatCount];  // every per-query float statistic of the table (core/head_stats.h)
  at::Tensor argmax, topk_idx, topk_prob, key_recv, key_count;
  std::vector<int32_t> sinks, pattern_heads;
  at::Tensor pattern;
  AttnStats st;
  StatBufs(const AttnShape& sh, int topk, std::vector<int32_t> sink_pos, const uint8_t* qmask, int64_t lo, int64_t hi)
      : sinks(std::move(sink_pos)) {
    auto f = at::TensorOptions().dtype(at::kFloat), i = at::TensorOptions().dtype(at::kInt);
    for (int id = 0; id < kStatCount; ++id)
      if (head_stat_is_row_sum(id)) query[id] = at::full({sh.H, sh.T}, -7.f, f), st.query[id] = query[id].data_ptr<float>();
    argmax = at::full({sh.H, sh.T}, -7, i);
    topk_idx = at::full({sh.H, sh.T, topk}, -7, i), topk_prob = at::full({sh.H, sh.T, topk}, -7.f, f);
    key_recv = at::full({sh.H, sh.S}, -7.f, f), key_count = at::full({sh.S}, -7, i);
    st.argmax = argmax.data_ptr<int32_t>(), st.topk = topk;
    st.topk_idx = topk_idx.data_ptr<int32_t>(), st.topk_prob = topk_prob.data_ptr<float>();
    st.sink_pos = sinks.data(), st.n_sinks = static_cast<int>(sinks.size());
    st.key_recv = key_recv.data_ptr<float>(), st.key_count = key_count.data_ptr<int32_t>();
    st.recv_lo = lo, st.recv_hi = hi, st.query_mask = qmask;
  }
  // hook_pattern of `heads` over query rows [q0, q1) and keys [k0, k1).
  void want_pattern(std::vector<int32_t> heads, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
    pattern_heads = std::move(heads);
    pattern = at::full({static_cast<int64_t>(pattern_heads.size()), q1 - q0, k1 - k0}, -7.f);
    st.pattern_heads = pattern_heads.data(), st.n_pattern = static_cast<int>(pattern_heads.size());
    st.pattern_q0 = q0, st.pattern_q1 = q1, st.pattern_k0 = k0, st.pattern_k1 = k1, st.pattern = pattern.data_ptr<float>();
  }
};

// max |a - b| / max(1, |b|): absolute for probabilities, relative for distances and counts.
double rel_err(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0) return 0;
  at::Tensor bd = b.to(at::kDouble);
  return ((a.to(at::kDouble) - bd).abs() / at::clamp_min(bd.abs(), 1.0)).max().item<double>();
}

struct Case {
  int64_t T, S, H, H_kv, d, window, q_pos0;
  bool bf16;
};

void check_case(const Case& cs, const Impl& impl, uint64_t seed, bool interventions) {
  AttnShape sh;
  sh.T = cs.T, sh.S = cs.S, sh.H = cs.H, sh.H_kv = cs.H_kv, sh.d = cs.d, sh.window = cs.window, sh.q_pos0 = cs.q_pos0;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor q = at::randn({cs.T, cs.H, cs.d}, gen), k = at::randn({cs.S, cs.H_kv, cs.d}, gen),
             v = at::randn({cs.S, cs.H_kv, cs.d}, gen);
  q = q * 1.5;  // a spread of sharp and flat rows
  if (cs.bf16) q = q.to(at::kBFloat16).to(at::kFloat), k = k.to(at::kBFloat16).to(at::kFloat), v = v.to(at::kBFloat16).to(at::kFloat);
  std::vector<uint8_t> qmask(cs.T);
  for (int64_t t = 0; t < cs.T; ++t) qmask[t] = (t % 3) != 1;
  std::vector<float> head_scale(cs.H), bias(cs.H * cs.S);
  std::vector<uint8_t> uniform(cs.H, 0), padding(cs.S, 0), row_keys(cs.H * cs.S, 0);
  std::vector<float> row_bias(cs.H * cs.T);
  std::vector<int32_t> head_window(cs.H, 0);
  AttnInterventions iv;
  if (interventions) {
    for (int64_t h = 0; h < cs.H; ++h) head_scale[h] = h == 0 ? 0.f : 0.5f + 0.1f * h;
    at::Tensor b = at::randn({cs.H, cs.S}, gen);
    std::copy(b.data_ptr<float>(), b.data_ptr<float>() + b.numel(), bias.begin());
    uniform[cs.H - 1] = 1;
    for (int64_t s = 0; s < cs.S; ++s) padding[s] = s % 7 == 3;
    iv.head_scale = head_scale.data(), iv.logit_bias = bias.data(), iv.uniform = uniform.data(), iv.key_padding = padding.data();
    at::Tensor rb = at::randn({cs.H, cs.T}, gen) * 2;
    std::copy(rb.data_ptr<float>(), rb.data_ptr<float>() + rb.numel(), row_bias.begin());
    for (int64_t i = 0; i < cs.H * cs.S; ++i) row_keys[i] = (i * 5) % 11 < 3;
    iv.row_bias = row_bias.data(), iv.row_bias_keys = row_keys.data();
    // A key budget on every other head: the first 2 keys and a window of 3 + h recent ones.
    for (int64_t h = 0; h < cs.H; h += 2) head_window[h] = static_cast<int32_t>(3 + h);
    iv.head_window = head_window.data(), iv.sink_keys = 2;
  }
  std::vector<int32_t> sinks{0};
  if (cs.S > 5) sinks.push_back(static_cast<int32_t>(cs.S / 2));
  const int topk = static_cast<int>(std::min<int64_t>(8, cs.S));
  StatBufs sb(sh, topk, sinks, qmask.data(), 2, cs.T > 40 ? 30 : -1);
  // The pattern of the first and last heads (the last is the uniform one under interventions), over a window.
  const int64_t pq0 = cs.T / 3, pq1 = cs.T, pk0 = cs.S / 4, pk1 = cs.S - cs.S / 5;
  sb.want_pattern({0, static_cast<int32_t>(cs.H - 1)}, pq0, pq1, pk0, pk1);
  // Two key sets per query: {0, t/2, t} and {t + 1, 7t mod S} (absolute t; keys a row cannot see included, some
  // rows without any key).
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> keys;
  for (int c = 0; c < 2; ++c) {
    if (c == 1) offsets.push_back(offsets.back());
    for (int64_t t = 0; t < cs.T; ++t) {
      const int64_t ta = cs.q_pos0 + t;
      std::vector<int64_t> want = c == 0 ? std::vector<int64_t>{0, ta / 2, ta} : std::vector<int64_t>{ta + 1, (7 * ta) % cs.S};
      if (c == 1 && t % 5 == 4) want.clear();
      std::sort(want.begin(), want.end());
      want.erase(std::unique(want.begin(), want.end()), want.end());
      for (int64_t s : want)
        if (s < cs.S) keys.push_back(static_cast<int32_t>(s));
      offsets.push_back(static_cast<int64_t>(keys.size()));
    }
  }
  at::Tensor keyset_mass = at::full({2, cs.H, cs.T}, -7.f);
  sb.st.n_keysets = 2, sb.st.keyset_offsets = offsets.data(), sb.st.keyset_keys = keys.data(), sb.st.keyset_mass = keyset_mass.data_ptr<float>();
  at::Tensor out = at::full({cs.T, cs.H, cs.d}, -7.f);
  impl.run(sh, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(), sb.st, iv);
  ReferenceAttention ref = attention_reference(sh, q, k, v, iv);
  ReferenceStats rs = reference_stats(sh, ref.probs, sb.st, iv);
  INFO(impl.name << " T=" << cs.T << " S=" << cs.S << " H=" << cs.H << " H_kv=" << cs.H_kv << " d=" << cs.d
                 << " window=" << cs.window << " q_pos0=" << cs.q_pos0 << " bf16=" << cs.bf16 << " interventions=" << interventions);
  CHECK(rel_err(out, ref.out) <= 1e-5);
  for (int id = 0; id < kStatCount; ++id)
    if (head_stat_is_row_sum(id)) {
      INFO(head_stat(id).name);
      CHECK(rel_err(sb.query[id], rs.query[id]) <= 1e-5);
    }
  CHECK(at::equal(sb.argmax.to(at::kDouble), rs.argmax));
  CHECK(rel_err(sb.topk_prob, rs.topk_prob) <= 1e-5);
  // Top-k order: identical, except where two keys' probabilities are equal to float precision (a near-tie that
  // fp32 and fp64 scores order differently); exact ties go to the lower index in both.
  at::Tensor diff = sb.topk_idx.to(at::kDouble) != rs.topk_idx;
  if (diff.any().item<bool>()) {
    at::Tensor ki = sb.topk_idx.to(at::kLong).clamp_min(0), ri = rs.topk_idx.to(at::kLong).clamp_min(0);
    at::Tensor pk = ref.probs.gather(-1, ki), pr = ref.probs.gather(-1, ri);
    double worst = at::where(diff, (pk - pr).abs(), at::zeros_like(pk)).max().item<double>();
    INFO("top-k order differs at " << diff.sum().item<int64_t>() << " places; largest probability gap there " << worst);
    CHECK(worst <= 1e-6);
  }
  CHECK(rel_err(sb.key_recv, rs.key_recv) <= 1e-5);
  CHECK(at::equal(sb.key_count.to(at::kDouble), rs.key_count));
  for (int i = 0; i < 2; ++i) {
    const int64_t h = i ? cs.H - 1 : 0;
    CHECK(rel_err(sb.pattern[i], ref.probs[h].slice(0, pq0, pq1).slice(1, pk0, pk1)) <= 1e-5);
  }
  CHECK(rel_err(keyset_mass, rs.keyset_mass) <= 1e-5);
}

// T from 1 to 4096, d_head 8/64/128, GQA ratios 1/2/4/8, windows, decode offsets, bf16-valued inputs.
std::vector<Case> shape_grid() {
  std::vector<Case> grid;
  const int64_t Ts[] = {1, 2, 7, 31, 32, 33, 64, 65, 100, 257, 1000};
  const int64_t ds[] = {8, 64, 128};
  const int64_t ratios[] = {1, 2, 4, 8};
  int i = 0;
  for (int64_t T : Ts)
    for (int64_t d : ds)
      for (int64_t r : ratios) {
        const int64_t H_kv = 1 + (i % 2), H = H_kv * r;
        const int64_t window = (i % 3 == 1) ? 1 + (i * 7) % 50 : 0;
        grid.push_back({T, T, H, H_kv, d, window, 0, i % 4 == 3});
        ++i;
      }
  grid.push_back({4096, 4096, 2, 1, 64, 0, 0, false});
  grid.push_back({4096, 4096, 4, 2, 128, 500, 0, true});
  grid.push_back({3000, 3000, 2, 2, 8, 0, 0, true});
  grid.push_back({5, 40, 4, 2, 64, 0, 35, false});   // decoding 5 queries after a 35-token prefix
  grid.push_back({1, 300, 8, 1, 64, 100, 299, false});  // one decode step with a window
  // 65 queries after 65535 keys: a block's weights exceed what the first pass keeps, so key_recv takes the
  // second pass (every smaller case sums it in the first).
  grid.push_back({65, 65600, 2, 1, 8, 0, 65535, false});
  return grid;
}

void check_grid(const Impl& impl) {
  uint64_t seed = 1;
  const std::vector<Case> grid = shape_grid();
  for (const Case& cs : grid) check_case(cs, impl, seed++, false);
  for (size_t j = 0; j < grid.size(); j += 5) check_case(grid[j], impl, 1000 + j, true);
}

}  // namespace

TEST_CASE("the CPU attention kernel matches the materialising reference over the shape grid", "[attention][parity]") {
  check_grid(kCpu);
}

TEST_CASE("the CUDA attention kernel matches the materialising reference over the shape grid", "[attention][parity][cuda]") {
  if (!cuda_available()) HS_SKIP("CUDA parity: " << (cuda_built() ? "no usable CUDA device" : "headscope was built without CUDA"));
  check_grid(kCuda);
}

TEST_CASE("hand-computed attention statistics", "[attention]") {
  // T = S = 3, one head, d = 1, q = k = 0 except q[2] = k[1] = 1 with scale 1: row 2 scores (0, 1, 0).
  AttnShape sh;
  sh.T = sh.S = 3, sh.H = sh.H_kv = 1, sh.d = 1, sh.scale = 1.f;
  float q[3] = {0, 0, 1}, k[3] = {0, 1, 0}, v[3] = {1, 2, 3}, out[3];
  float maxp[3], ent[3], dist[3], sink[3], prev[3], recv[3];
  int32_t am[3], cnt[3];
  int32_t sink0 = 0;
  AttnStats st;
  st.query[kStatMaxProb] = maxp, st.argmax = am, st.query[kStatEntropy] = ent, st.query[kStatMeanDist] = dist;
  st.sink_pos = &sink0, st.n_sinks = 1, st.query[kStatSinkMass] = sink, st.query[kStatPrevMass] = prev;
  st.key_recv = recv, st.key_count = cnt, st.recv_lo = 1;
  attention_cpu(sh, q, k, v, out, st);
  const double e = std::exp(1.0), z = 2 + e;
  // Row 0 sees key 0 only; row 1 sees keys 0,1 with scores 0,0 (uniform); row 2 sees (0, 1, 0).
  CHECK(out[0] == Approx(1.0));
  CHECK(out[1] == Approx(1.5));
  CHECK(out[2] == Approx((1 + 2 * e + 3) / z));
  CHECK(maxp[1] == Approx(0.5));
  CHECK(am[1] == 0);  // tie between keys 0 and 1: the lowest index
  CHECK(am[2] == 1);
  CHECK(maxp[2] == Approx(e / z));
  CHECK(ent[0] == Approx(0.0).margin(1e-7));
  CHECK(ent[1] == Approx(std::log(2.0)));
  CHECK(dist[2] == Approx((2 * 1 + 1 * e + 0) / z));
  CHECK(sink[2] == Approx(1 / z));
  // Mass on the previous token: none for row 0, A[1, 0] = 0.5, A[2, 1] = e / z.
  CHECK(prev[0] == 0.f);
  CHECK(prev[1] == Approx(0.5));
  CHECK(prev[2] == Approx(e / z));
  // Key 0 receives from rows 1 and 2: 0.5 + 1/z; key 1 from row 2: e/z; key 2 from nobody later.
  CHECK(recv[0] == Approx(0.5 + 1 / z));
  CHECK(recv[1] == Approx(e / z));
  CHECK(recv[2] == Approx(0.0));
  CHECK(cnt[0] == 2);
  CHECK(cnt[1] == 1);
  CHECK(cnt[2] == 0);
}

TEST_CASE("ties in top-k and argmax go to the lowest key index", "[attention]") {
  AttnShape sh;
  sh.T = sh.S = 200, sh.H = 2, sh.H_kv = 1, sh.d = 4;
  at::Tensor q = at::ones({200, 2, 4}), k = at::ones({200, 1, 4}), v = at::randn({200, 1, 4});
  at::Tensor topi = at::empty({2, 200, 4}, at::kInt), am = at::empty({2, 200}, at::kInt), out = at::empty({200, 2, 4});
  AttnStats st;
  st.topk = 4, st.topk_idx = topi.data_ptr<int32_t>(), st.argmax = am.data_ptr<int32_t>();
  attention_cpu(sh, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(), st);
  CHECK(at::all(am == 0).item<bool>());
  CHECK(topi[0][150].equal(at::tensor({0, 1, 2, 3}, at::kInt)));
  CHECK(topi[1][2].equal(at::tensor({0, 1, 2, -1}, at::kInt)));
}

TEST_CASE("no statistics requested: the same output as with all of them", "[attention]") {
  AttnShape sh;
  sh.T = sh.S = 300, sh.H = 4, sh.H_kv = 2, sh.d = 64;
  at::Tensor q = at::randn({300, 4, 64}), k = at::randn({300, 2, 64}), v = at::randn({300, 2, 64});
  at::Tensor a = at::empty({300, 4, 64}), b = at::empty({300, 4, 64}), ent = at::empty({4, 300});
  attention_cpu(sh, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), a.data_ptr<float>());
  AttnStats st;
  st.query[kStatEntropy] = ent.data_ptr<float>();
  attention_cpu(sh, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), b.data_ptr<float>(), st);
  CHECK(at::equal(a, b));
}


TEST_CASE("the CPU kernel gives the same bits for 1, 2 and 3 threads: output and every statistic", "[attention][reproducible]") {
  const int prev_threads = at::get_num_threads();
  AttnShape sh;
  sh.T = sh.S = 300, sh.H = 5, sh.H_kv = 1, sh.d = 48;  // 5 heads x 5 query blocks: the split differs per count
  at::Tensor q = at::randn({300, 5, 48}), k = at::randn({300, 1, 48}), v = at::randn({300, 1, 48});
  std::vector<std::vector<at::Tensor>> runs;
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    StatBufs b(sh, 8, {0, 3}, nullptr, 0, -1);
    at::Tensor out = at::empty({300, 5, 48});
    attention_cpu(sh, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(), b.st);
    std::vector<at::Tensor> r{out, b.argmax, b.topk_idx, b.topk_prob, b.key_recv, b.key_count};
    for (int id = 0; id < kStatCount; ++id)
      if (b.query[id].defined()) r.push_back(b.query[id]);
    runs.push_back(r);
  }
  at::set_num_threads(prev_threads);
  for (size_t i = 0; i < runs[0].size(); ++i) {
    INFO("tensor " << i);
    CHECK(at::equal(runs[0][i], runs[1][i]));
    CHECK(at::equal(runs[0][i], runs[2][i]));
  }
}
namespace {
int64_t rss_peak_kib() {  // VmHWM: peak resident set since the last reset
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}
int64_t rss_now_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}
}  // namespace

TEST_CASE("T = 16384 with every statistic: no hidden T x T allocation", "[attention][memory]") {
  AttnShape sh;
  sh.T = sh.S = 16384, sh.H = 2, sh.H_kv = 1, sh.d = 64;
  at::Tensor q = at::randn({sh.T, 2, 64}), k = at::randn({sh.S, 1, 64}), v = at::randn({sh.S, 1, 64});
  at::Tensor out = at::zeros({sh.T, 2, 64});
  std::vector<uint8_t> qmask(sh.T, 1);
  StatBufs sb(sh, 16, {0, 1, 2, 3}, qmask.data(), 10, 50);
  for (auto* t : {&sb.argmax, &sb.topk_idx, &sb.topk_prob, &sb.key_recv, &sb.key_count}) t->zero_();
  for (at::Tensor& t : sb.query)
    if (t.defined()) t.zero_();  // touch every output page before measuring
  // Bytes of the [H, T]-shaped statistics themselves: 7 per-query scalars, 2 x 16 top-k, per-key mass and count.
  const double stats_bytes = static_cast<double>(sh.H * sh.T) * 4 * (7 + 2 * 16 + 1) + sh.S * 4;
  std::ofstream("/proc/self/clear_refs") << "5";  // reset VmHWM to the current RSS
  const int64_t before = rss_now_kib();
  attention_cpu(sh, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(), sb.st);
  const int64_t peak = rss_peak_kib();
  REQUIRE(before > 0);
  REQUIRE(peak >= before);
  const double growth = (peak - before) * 1024.0;
  const double tt_map = 4.0 * sh.T * sh.S;  // one head's float T x T map: 1 GiB
  INFO("peak growth " << growth / 1048576 << " MiB; statistics " << stats_bytes / 1048576 << " MiB; one T x T map "
                      << tt_map / 1048576 << " MiB");
  // Beside them, each thread keeps one query block's weights for the per-key mass: 64 rows x S floats (4 MiB here).
  const double kept_bytes = static_cast<double>(at::get_num_threads()) * 64 * sh.S * 4;
  INFO("per-thread kept weights " << kept_bytes / 1048576 << " MiB");
  CHECK(growth < 8 * stats_bytes + kept_bytes);
  // The statistics are real: row 16383's top-1 probability equals its max probability.
  CHECK(sb.topk_prob[1][16383][0].item<float>() == sb.query[kStatMaxProb][1][16383].item<float>());
}

TEST_CASE("the forward pass records kernel statistics that agree with the materialised hook_pattern", "[attention][model]") {
  auto model = Model::load(testutil::stories260k());
  std::vector<int32_t> ids = model->tokenizer().encode("Once upon a time, there was a little girl named Lily.");
  AttnRecord rec;
  rec.stats = true;
  rec.topk = 3;
  rec.pattern_heads = {{1, 2}, {4, 7}};
  ForwardResult r = model->run(ids, rec);
  REQUIRE(r.attn.size() == 5);
  REQUIRE(r.patterns.size() == 2);
  CHECK(at::allclose(r.logits, model->forward(ids), 0, 0));  // recording changes nothing
  for (auto& [lh, pat] : r.patterns) {
    auto [l, h] = lh;
    const int64_t T = static_cast<int64_t>(ids.size());
    REQUIRE(pat.sizes() == at::IntArrayRef({T, T}));
    const AttnLayerStats& a = r.attn[l];
    at::Tensor p = pat.to(at::kDouble);
    at::Tensor ent = at::where(p > 0, -p * at::log(p), at::zeros_like(p)).sum(-1);
    CHECK(rel_err(a[kStatEntropy][h], ent) <= 1e-5);
    CHECK(rel_err(a[kStatMaxProb][h], std::get<0>(p.max(-1))) <= 1e-5);
    CHECK(rel_err(a[kStatSinkMass][h], p.select(1, 0)) <= 1e-5);
    CHECK(rel_err(a[kStatPrevMass][h].slice(0, 1), p.diagonal(-1)) <= 1e-5);  // A[t, t-1]
    CHECK(rel_err(a[kStatKeyRecv][h], p.sum(0) - p.diagonal()) <= 1e-5);  // from strictly later queries
    CHECK(rel_err(a.topk_prob[h].select(1, 0), std::get<0>(p.max(-1))) <= 1e-5);
  }
  CHECK_THROWS_AS(model->run(ids, AttnRecord{true, 0, {0}, 10, 1, -1, {{5, 0}}}), Error);  // no layer 5
}

TEST_CASE("hook_pattern over a query and key window is the matching block of the full pattern", "[attention][model]") {
  auto model = Model::load(testutil::stories260k());
  std::vector<int32_t> ids = model->tokenizer().encode("Once upon a time, there was a little girl named Lily.");
  AttnRecord full, window;
  full.pattern_heads = window.pattern_heads = {{2, 6}};
  window.q_lo = 5, window.q_hi = 11, window.k_lo = 2, window.k_hi = 8;
  at::Tensor a = model->run(ids, full).patterns.at(0).second, b = model->run(ids, window).patterns.at(0).second;
  REQUIRE(b.sizes() == at::IntArrayRef({6, 6}));
  CHECK(at::equal(b, a.slice(0, 5, 11).slice(1, 2, 8)));
  CHECK(at::allclose(a.sum(1), at::ones({a.size(0)}), 0, 1e-6));  // full rows are distributions
}

TEST_CASE("ACT calibration reproduces the published fixture exactly (METRICS.md section 7)", "[attention][act]") {
  // A = [[1], [.6,.4], [.5,.3,.2], [.5,.1,.3,.1]] as a softmax: keys e_s, queries q_t[s] = log A[t,s], scale 1,
  // values e_s, so that the output rows are the attention rows themselves.
  const double A[4][4] = {{1, 0, 0, 0}, {.6, .4, 0, 0}, {.5, .3, .2, 0}, {.5, .1, .3, .1}};
  const double Ap[4][4] = {{1, 0, 0, 0}, {.84, .16, 0, 0}, {.80, .12, .08, 0}, {.70, .04, .12, .14}};
  AttnShape sh;
  sh.T = sh.S = 4, sh.H = sh.H_kv = 1, sh.d = 4, sh.scale = 1.f;
  std::vector<float> q(16, 0.f), kv(16, 0.f), out(16);
  for (int t = 0; t < 4; ++t)
    for (int s = 0; s <= t; ++s) q[t * 4 + s] = static_cast<float>(std::log(A[t][s]));
  for (int s = 0; s < 4; ++s) kv[s * 4 + s] = 1.f;
  ActCalibration c = act_calibration(sh, q.data(), kv.data(), kv.data(), 0, 0.1f, 0.4f);
  CHECK(c.keys == std::vector<int32_t>{1, 2});  // alpha = (.65, .2667, .25, .10): key 3 is not > 0.1; key 0 kept
  AttnInterventions iv;
  iv.row_bias = c.row_bias.data(), iv.row_bias_keys = c.key_mask.data();
  attention_cpu(sh, q.data(), kv.data(), kv.data(), out.data(), {}, iv);
  for (int t = 0; t < 4; ++t)
    for (int s = 0; s < 4; ++s) CHECK(out[t * 4 + s] == Approx(Ap[t][s]).margin(1e-6));
}
