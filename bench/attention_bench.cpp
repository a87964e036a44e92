// Attention kernel benchmark (Google Benchmark). For SmolLM2-135M-shaped (H 9, H_kv 3, d 64) and Llama-7B-shaped
// (H 32, H_kv 32, d 128) layers at T = 1K, 4K, 16K it times, on the same inputs in one process:
//   plain         the instrumented kernel with no statistics requested (plain attention)
//   statistics    the same kernel computing every statistic that `record` and `--stats` keep (the per-query sums,
//                 argmax, sink mass over four sinks, per-key received mass and counts)
//   top-16        those and each row's 16 largest weights (asked for by `attn --head` only)
//   reference     materialising softmax(QK^T) in float32 with LibTorch + the same statistics by reductions
// and prints the ratios statistics/plain, top-16/plain and reference/top-16 (fastest of the repetitions). The reference is skipped where its
// [H, T, T] map would not fit in memory. On a CUDA device it also times the CUDA kernel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "kernels/attention.h"
#include "kernels/attention_reference.h"

using namespace headscope;

namespace {

struct Layer {
  const char* name;
  int64_t H, H_kv, d;
};
const Layer kLayers[] = {{"smollm2", 9, 3, 64}, {"llama7b", 32, 32, 128}};

struct Inputs {
  AttnShape sh;
  at::Tensor q, k, v, out;
  at::Tensor query[kStatCount];  // every per-query float statistic of the table
  at::Tensor argmax, topk_idx, topk_prob, key_recv, key_count;
  std::vector<int32_t> sinks{0, 1, 2, 3};
  AttnStats all;
  Inputs(const Layer& L, int64_t T) {
    sh.T = sh.S = T, sh.H = L.H, sh.H_kv = L.H_kv, sh.d = L.d;
    q = at::randn({T, L.H, L.d}), k = at::randn({T, L.H_kv, L.d}), v = at::randn({T, L.H_kv, L.d});
    out = at::empty({T, L.H, L.d});
    auto f = at::kFloat;
    for (int id = 0; id < kStatCount; ++id)
      if (head_stat_is_row_sum(id)) query[id] = at::empty({L.H, T}, f), all.query[id] = query[id].data_ptr<float>();
    argmax = at::empty({L.H, T}, at::kInt);
    topk_idx = at::empty({L.H, T, 16}, at::kInt), topk_prob = at::empty({L.H, T, 16}, f);
    key_recv = at::empty({L.H, T}, f), key_count = at::empty({T}, at::kInt);
    all.argmax = argmax.data_ptr<int32_t>(), all.topk = 16, all.topk_idx = topk_idx.data_ptr<int32_t>();
    all.topk_prob = topk_prob.data_ptr<float>(), all.sink_pos = sinks.data(), all.n_sinks = 4;
    all.key_recv = key_recv.data_ptr<float>(), all.key_count = key_count.data_ptr<int32_t>();
  }
};

std::map<std::string, double> g_seconds;  // "layer/T/variant" -> seconds per iteration, the fastest repetition

Inputs& inputs(const Layer& L, int64_t T) {
  static std::map<std::string, std::unique_ptr<Inputs>> cache;
  auto key = std::string(L.name) + std::to_string(T);
  auto& p = cache[key];
  if (!p) p = std::make_unique<Inputs>(L, T);
  return *p;
}

void BM_attention(benchmark::State& st, const char* variant) {
  const Layer& L = kLayers[st.range(0)];
  const int64_t T = st.range(1);
  const std::string v = variant;
  const double map_bytes = 4.0 * L.H * T * T;
  if (v == "reference" && map_bytes * 3 > 20e9) {
    st.SkipWithError("reference [H,T,T] map does not fit in memory");
    return;
  }
  Inputs& in = inputs(L, T);
  char err[256];
  for (auto _ : st) {
    if (v == "plain") attention_cpu(in.sh, in.q.data_ptr<float>(), in.k.data_ptr<float>(), in.v.data_ptr<float>(), in.out.data_ptr<float>());
    else if (v == "top-16")
      attention_cpu(in.sh, in.q.data_ptr<float>(), in.k.data_ptr<float>(), in.v.data_ptr<float>(), in.out.data_ptr<float>(), in.all);
    else if (v == "statistics") {
      AttnStats st = in.all;
      st.topk = 0, st.topk_idx = nullptr, st.topk_prob = nullptr;
      attention_cpu(in.sh, in.q.data_ptr<float>(), in.k.data_ptr<float>(), in.v.data_ptr<float>(), in.out.data_ptr<float>(), st);
    }
    else if (v == "cuda") {
      if (!attention_cuda_from_host(in.sh, in.q.data_ptr<float>(), in.k.data_ptr<float>(), in.v.data_ptr<float>(),
                                    in.out.data_ptr<float>(), in.all, {}, err, sizeof err)) {
        st.SkipWithError(err);
        break;
      }
    } else {
      ReferenceAttention r = attention_reference(in.sh, in.q, in.k, in.v, {}, at::kFloat);
      ReferenceStats s = reference_stats(in.sh, r.probs, in.all);
      benchmark::DoNotOptimize(s.key_recv.data_ptr());
    }
  }
  st.SetLabel(std::string(L.name) + "/" + v + "/" + std::to_string(T));
}

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)  // the fastest repetition: a shared machine's slow spells only ever add time
      if (!r.error_occurred && r.run_type == Run::RT_Iteration) {
        const double t = r.GetAdjustedRealTime() / 1e3;  // the unit is ms
        auto it = g_seconds.find(r.report_label);
        if (it == g_seconds.end() || t < it->second) g_seconds[r.report_label] = t;
      }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  std::vector<int64_t> lengths{1024, 4096, 16384};
  const char* variants[] = {"plain", "statistics", "top-16", "reference", "cuda"};
  // Shape by shape, each variant repeated (5 times, 3 at 16K) in random order across the whole run, so that a slow
  // spell of a shared machine does not fall on one variant alone; the table gives each variant's fastest repetition.
  for (int64_t li = 0; li < 2; ++li)
    for (int64_t T : lengths)
      for (const char* v : variants) {
        if (std::string(v) == "cuda" && !cuda_available()) continue;
        benchmark::RegisterBenchmark(("attention/" + std::string(kLayers[li].name) + "/" + v).c_str(), BM_attention, v)
            ->Args({li, T})
            ->Unit(benchmark::kMillisecond)
            ->Iterations(T >= 16384 ? 1 : 2)
            ->Repetitions(T >= 16384 ? 3 : 5)
            ->UseRealTime();
      }
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.insert(args.begin() + 1, interleave.data());  // (a later flag on the command line wins)
  argc = static_cast<int>(args.size()), argv = args.data();
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\n%-8s %6s %10s %10s %10s %10s %12s %12s %14s\n", "layer", "T", "plain ms", "stats ms", "top-16 ms",
              "ref. ms", "stats/plain", "top-16/plain", "ref./top-16");
  for (const Layer& L : kLayers)
    for (int64_t T : lengths) {
      auto get = [&](const char* v) {
        auto it = g_seconds.find(std::string(L.name) + "/" + v + "/" + std::to_string(T));
        return it == g_seconds.end() ? -1.0 : it->second;
      };
      double p = get("plain"), pq = get("statistics"), i = get("top-16"), r = get("reference");
      if (p < 0) continue;  // not run (--benchmark_filter)
      char ref[32] = "skipped", ratio[32] = "n/a (OOM)";
      if (r > 0) std::snprintf(ref, sizeof ref, "%.1f", r * 1e3), std::snprintf(ratio, sizeof ratio, "%.2fx", r / i);
      std::printf("%-8s %6lld %10.1f %10.1f %10.1f %10s %11.2fx %11.2fx %14s\n", L.name, static_cast<long long>(T), p * 1e3,
                  pq * 1e3, i * 1e3, ref, pq / p, i / p, ratio);
    }
  benchmark::Shutdown();
  return 0;
}
