// A loaded model: checkpoint + config + fp32 weights + tokenizer. This is the entry point the CLI, the GUI
// and the tests use: Model::load(path) then forward(ids) -> logits.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/device.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace headscope {

// How the next token is chosen: greedy (temperature 0, the default; ties go to the lowest id), or sampled from
// softmax(logits / temperature) cut to the smallest set of tokens whose probability reaches top_p, with a seeded
// generator (the same seed gives the same tokens on every machine).
struct Sampling {
  double temperature = 0.0;
  double top_p = 1.0;
  uint64_t seed = 0;
};

// The next token under `s` from one position's logits [vocab]; `rng_state` carries the generator between calls.
int32_t sample_token(const at::Tensor& logits, const Sampling& s, uint64_t& rng_state);

class Model {
 public:
  // path: a .gguf file, a .safetensors file (config.json beside it), a sharded index, or a folder. On a CUDA
  // device the weights and every activation live on the GPU and attention runs the CUDA kernel; Error (saying why)
  // when this build cannot compute there. Results (logits, statistics, patterns) are the same tensors either way.
  static std::unique_ptr<Model> load(const std::string& path, const ComputeDevice& device = {});

  const ModelConfig& config() const { return cfg_; }
  const ComputeDevice& device() const { return device_; }
  const Checkpoint& checkpoint() const { return *ck_; }
  const Weights& weights() const { return w_; }
  bool has_tokenizer() const { return tok_ != nullptr; }
  const Tokenizer& tokenizer() const;  // throws Error when the checkpoint ships none
  int64_t n_params() const;           // stored parameters (tied embeddings counted once)

  // Logits [T, vocab] float32; with last_only, [1, vocab] for the last position (skips T-1 unembeddings).
  at::Tensor forward(const std::vector<int32_t>& ids, bool last_only = false) const;
  // The same pass, also returning what `record` asks of the attention kernel (statistics, patterns). With a
  // cache, `ids` continue the cached tokens (transformer.h).
  ForwardResult run(const std::vector<int32_t>& ids, const AttnRecord& record, bool last_only = false,
                    const ForwardHooks* hooks = nullptr, KvCache* cache = nullptr) const;
  // The residual entering layer 0 for `ids`, and B same-length prompts run from the residual entering layer
  // first_layer to their last-position logits [B, vocab] (transformer.h forward_batch): what patching uses to
  // start a patched pass at the patched layer from a cached residual and to run many patched variants at once.
  at::Tensor embed(const std::vector<int32_t>& ids) const;
  at::Tensor forward_batch(const at::Tensor& resid, int64_t B, int64_t first_layer, const ForwardHooks* hooks = nullptr,
                           const std::vector<const KvCache*>& prefixes = {}, int64_t prefix_len = 0) const;
  // Decoding with a KV cache: the prompt in one pass, then one token per step; up to n tokens, stopping after EOS.
  // With `record`, steps[0] is the prompt pass and steps[i] the pass that read generated token i - 1 (the last
  // generated token is never read); their statistics equal the same rows of one forward over the whole sequence.
  struct Generation {
    std::vector<int32_t> tokens;      // the generated ids
    std::vector<ForwardResult> steps;  // with `record` only
    double prefill_seconds = 0, decode_seconds = 0;  // the prompt pass; every later step (one token each)
  };
  // `stop_after(token)` returning true ends the generation after that token (as EOS does).
  Generation generate(const std::vector<int32_t>& ids, int n, const Sampling& sampling = {}, const AttnRecord* record = nullptr,
                      const ForwardHooks* hooks = nullptr, const std::function<bool(int32_t)>& stop_after = nullptr) const;

 private:
  std::unique_ptr<Checkpoint> ck_;
  ModelConfig cfg_;
  Weights w_;
  std::unique_ptr<Tokenizer> tok_;
  ComputeDevice device_;
};

// What to do with a prompt longer than the model's context (its trained length: context_length in GGUF,
// max_position_embeddings in config.json).
struct ContextPolicy {
  int64_t max_tokens = 0;       // > 0: keep only the first max_tokens tokens of every prompt
  bool beyond_context = false;  // run past the context anyway (rotary models only: extrapolation studies)
};

// Applies `policy` to a prompt's ids: truncates to max_tokens, then refuses a prompt (or, with `extra`, a prompt
// plus tokens still to generate) longer than the context with a ChoiceError naming `what` and the numbers.
void fit_context(const ModelConfig& cfg, std::vector<int32_t>& ids, const ContextPolicy& policy, const std::string& what,
                 int64_t extra = 0);

// Sets LibTorch's intra-op threads (and with them OpenBLAS's OpenMP threads): 1 .. 4 x cores, else Error. n = 0:
// $HEADSCOPE_THREADS when it holds a number in that range, else all cores.
void set_threads(int n);
int get_threads();

}  // namespace headscope
