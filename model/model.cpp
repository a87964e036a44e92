// Loading a Model from any supported checkpoint (see model.h).
#include "model/model.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <cmath>
#include <filesystem>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "core/random.h"

namespace headscope {

std::unique_ptr<Model> Model::load(const std::string& path, const ComputeDevice& device) {
  const std::string why = device_unavailable(device);
  if (!why.empty()) throw Error("cannot compute on " + device.name() + ": " + why);
  auto m = std::unique_ptr<Model>(new Model());
  m->device_ = device;
  m->ck_ = Checkpoint::open(path);
  const Checkpoint& ck = *m->ck_;
  if (ck.format() == Checkpoint::Format::GGUF) {
    m->cfg_ = config_from_gguf(*ck.gguf());
    if (ck.gguf()->has("tokenizer.ggml.model")) m->tok_ = Tokenizer::from_gguf(*ck.gguf());
  } else {
    m->cfg_ = config_from_hf(ck.hf_config(), ck.folder() + "/config.json");
    if (!ck.hf_tokenizer().is_null()) m->tok_ = Tokenizer::from_hf_json(ck.hf_tokenizer(), ck.folder() + "/tokenizer.json");
    // The chat template of an HF folder lives in tokenizer_config.json (a damaged one is ignored: it only names the
    // prompt format).
    std::ifstream tc(ck.folder() + "/tokenizer_config.json");
    if (m->tok_ && tc) {
      const nlohmann::json j = nlohmann::json::parse(tc, nullptr, false);
      if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string()) m->tok_->set_chat_template(j["chat_template"]);
    }
  }
  if (m->tok_ && m->tok_->vocab_size() > m->cfg_.vocab)
    throw Error(path + ": the tokenizer has " + std::to_string(m->tok_->vocab_size()) + " tokens but the model's vocabulary is " +
                std::to_string(m->cfg_.vocab));
  m->w_ = load_weights(ck, m->cfg_, device.bf16, device.keep_blocks && !device.cuda);
  if (device.cuda) m->w_ = weights_to(m->w_, at::Device(at::kCUDA, static_cast<at::DeviceIndex>(device.index)));
  return m;
}

const Tokenizer& Model::tokenizer() const {
  if (!tok_) throw Error(ck_->path() + ": this checkpoint has no tokenizer (put tokenizer.json beside it, or pass token ids)");
  return *tok_;
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (auto& t : ck_->tensors())
    if (t.name != "rope_freqs.weight") n += t.numel();
  return n;
}

at::Tensor Model::forward(const std::vector<int32_t>& ids, bool last_only) const {
  at::NoGradGuard no_grad;
  return headscope::forward(cfg_, w_, ids, last_only).logits;
}

at::Tensor Model::embed(const std::vector<int32_t>& ids) const {
  at::NoGradGuard no_grad;
  return headscope::embed(cfg_, w_, ids);
}

at::Tensor Model::forward_batch(const at::Tensor& resid, int64_t B, int64_t first_layer, const ForwardHooks* hooks,
                                const std::vector<const KvCache*>& prefixes, int64_t prefix_len) const {
  at::NoGradGuard no_grad;
  return headscope::forward_batch(cfg_, w_, resid, B, first_layer, hooks, prefixes, prefix_len);
}

ForwardResult Model::run(const std::vector<int32_t>& ids, const AttnRecord& record, bool last_only,
                         const ForwardHooks* hooks, KvCache* cache) const {
  at::NoGradGuard no_grad;
  return headscope::forward(cfg_, w_, ids, last_only, &record, hooks, cache);
}

int32_t sample_token(const at::Tensor& logits, const Sampling& s, uint64_t& state) {
  if (!(s.temperature >= 0.0) || !std::isfinite(s.temperature)) throw Error("temperature must be a finite number >= 0");
  if (!(s.top_p > 0.0 && s.top_p <= 1.0)) throw Error("top-p must be in (0, 1]");
  at::Tensor l = logits.to(at::kCPU).to(at::kDouble).contiguous();
  const double* x = l.data_ptr<double>();
  const int64_t V = l.numel();
  if (s.temperature == 0.0) return static_cast<int32_t>(std::max_element(x, x + V) - x);  // first maximum
  // Probabilities in fp64, sorted descending (ties by id), cut at top_p, then one uniform draw from splitmix64.
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  const double top = x[order[0]];
  std::vector<double> p(static_cast<size_t>(V));
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += p[i] = std::exp((x[order[i]] - top) / s.temperature);
  int64_t keep = 0;
  double mass = 0;
  while (keep < V && (keep == 0 || mass / sum < s.top_p)) mass += p[keep++];
  const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53 * mass;
  double acc = 0;
  for (int64_t i = 0; i < keep; ++i)
    if ((acc += p[i]) > u) return order[i];
  return order[keep - 1];
}

Model::Generation Model::generate(const std::vector<int32_t>& ids, int n, const Sampling& sampling, const AttnRecord* record,
                                  const ForwardHooks* hooks, const std::function<bool(int32_t)>& stop_after) const {
  at::NoGradGuard no_grad;
  Generation g;
  if (n <= 0) return g;
  KvCache cache;
  uint64_t rng = sampling.seed;
  const AttnRecord none;
  std::vector<int32_t> step = ids;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ForwardResult r = headscope::forward(cfg_, w_, step, /*last_only=*/true, record ? record : &none, hooks, &cache);
    const int32_t next = sample_token(r.logits[0], sampling, rng);
    (i == 0 ? g.prefill_seconds : g.decode_seconds) += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (record) g.steps.push_back(std::move(r));
    g.tokens.push_back(next);
    if (next == cfg_.eos_id || (stop_after && stop_after(next))) break;
    step.assign(1, next);
  }
  return g;
}

void fit_context(const ModelConfig& cfg, std::vector<int32_t>& ids, const ContextPolicy& policy, const std::string& what,
                 int64_t extra) {
  if (policy.max_tokens < 0) throw Error("max_tokens must be positive, not " + std::to_string(policy.max_tokens));
  if (policy.max_tokens > 0 && static_cast<int64_t>(ids.size()) > policy.max_tokens) ids.resize(static_cast<size_t>(policy.max_tokens));
  const int64_t T = static_cast<int64_t>(ids.size()) + extra;
  if (T <= cfg.context || (policy.beyond_context && !cfg.learned_positions)) return;
  const std::string n = extra ? std::to_string(ids.size()) + " tokens + " + std::to_string(extra) + " to generate"
                              : std::to_string(T) + " tokens";
  if (cfg.learned_positions)
    throw ChoiceError(what + " has " + n + ", more than this model's " + std::to_string(cfg.context) +
                          " learned positions (it cannot run past them)", ChoiceError::Remedy::truncate);
  throw ChoiceError(what + " has " + n + ", more than this model's context of " + std::to_string(cfg.context) + " tokens",
                    ChoiceError::Remedy::truncate_or_extrapolate);
}

void set_threads(int n) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (n < 0 || n > 4 * cores)
    throw Error("threads must be between 1 and " + std::to_string(4 * cores) + " (4 x the " + std::to_string(cores) +
                " cores of this machine), not " + std::to_string(n));
  if (n == 0) {
    const char* env = std::getenv("HEADSCOPE_THREADS");
    char* end = nullptr;
    const long e = env ? std::strtol(env, &end, 10) : 0;
    n = env && *env && *end == 0 && e > 0 && e <= 4 * cores ? static_cast<int>(e) : cores;
  }
  at::set_num_threads(n);
}

int get_threads() { return at::get_num_threads(); }

}  // namespace headscope
