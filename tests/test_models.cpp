// Logit parity with HF transformers: tiny random-config checkpoints of every supported family
// (tests/data/models/*, made by tests/reference/make_model_refs.py), stories260K (full logits), and
// SmolLM2-135M Q4_1 (top-1 at every position; skipped with a message when the model is not cached).
#include <ATen/ATen.h>

#include "testing.h"

#include "hooks/hooks.h"
#include "model/model.h"
#include "test_helpers.h"

using namespace headscope;

namespace {

at::Tensor ref_logits(const nlohmann::json& ref) {
  auto& rows = ref.at("logits");
  const int64_t T = rows.size(), V = rows[0].size();
  at::Tensor t = at::empty({T, V}, at::kFloat);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < V; ++j) t[i][j] = rows[i][j].get<float>();
  return t;
}

std::vector<int32_t> ref_ids(const nlohmann::json& ref) { return ref.at("input_ids").get<std::vector<int32_t>>(); }

}  // namespace

TEST_CASE("tiny random models match transformers logits at every position", "[model][parity]") {
  auto name = GENERATE(as<std::string>{}, "llama", "llama_tied_rope_llama3", "llama_rope_linear", "llama_rope_yarn",
                       "mistral", "qwen2", "qwen3", "gpt2", "gpt_neox", "gpt_neox_seq", "llama_sharded");
  DYNAMIC_SECTION(name) {
    std::string dir = testutil::data("models/" + name);
    auto ref = testutil::load_json(dir + "/reference.json");
    auto model = Model::load(dir);
    at::Tensor logits = model->forward(ref_ids(ref));
    at::Tensor expect = ref_logits(ref);
    REQUIRE(logits.sizes() == expect.sizes());
    double maxdiff = (logits - expect).abs().max().item<double>();
    INFO(name << " maxdiff " << maxdiff);
    CHECK(maxdiff <= 1e-3);
    // The reference's logits are not nearly constant: a wrong model could not pass by accident.
    CHECK(expect.std().item<double>() > 0.05);
  }
}

TEST_CASE("sharded safetensors load the same weights as the single file", "[model][safetensors]") {
  auto a = Model::load(testutil::data("models/llama"));
  auto b = Model::load(testutil::data("models/llama_sharded/model.safetensors.index.json"));
  CHECK(b->checkpoint().files().size() >= 2);
  std::vector<int32_t> ids{1, 2, 3, 4, 5};
  CHECK(at::equal(a->forward(ids), b->forward(ids)));
}

TEST_CASE("stories260K matches transformers' GGUF loading and its known greedy text", "[model][gguf][real]") {
  auto ref = testutil::load_json(testutil::data("models/stories260k_reference.json"));
  auto model = Model::load(testutil::stories260k());
  const auto& cfg = model->config();
  CHECK(cfg.n_layers == 5);
  CHECK(cfg.n_heads == 8);
  CHECK(cfg.n_kv_heads == 4);
  CHECK(cfg.vocab == 512);
  // Tokenizer: the reference ids of the prompt (with BOS) are the start of input_ids.
  auto prompt_ids = model->tokenizer().encode(ref.at("prompt").get<std::string>());
  auto ids = ref_ids(ref);
  REQUIRE(prompt_ids == std::vector<int32_t>(ids.begin(), ids.begin() + prompt_ids.size()));
  at::Tensor logits = model->forward(ids);
  double maxdiff = (logits - ref_logits(ref)).abs().max().item<double>();
  INFO("maxdiff " << maxdiff);
  CHECK(maxdiff <= 1e-3);
  auto gen = model->generate(prompt_ids, 30).tokens;
  std::vector<int32_t> all(prompt_ids.begin() + 1, prompt_ids.end());
  all.insert(all.end(), gen.begin(), gen.end());
  const std::string known = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
  CHECK(model->tokenizer().decode(all).substr(0, known.size()) == known);
}

TEST_CASE("SmolLM2-135M Q4_1 agrees with transformers on the top-1 token at every position", "[model][gguf][real]") {
  std::string path = testutil::smollm2();
  if (path.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  auto ref = testutil::load_json(testutil::data("models/smollm2_reference.json"));
  auto model = Model::load(path);
  auto ids = ref_ids(ref);
  CHECK(model->tokenizer().encode(ref.at("prompt").get<std::string>()) == ids);
  at::Tensor logits = model->forward(ids);
  auto top5 = ref.at("top5_ids");
  auto top5_logits = ref.at("top5_logits");
  REQUIRE(logits.size(0) == static_cast<int64_t>(top5.size()));
  int agree = 0;
  double maxdiff = 0;
  for (size_t t = 0; t < top5.size(); ++t) {
    int64_t ours = logits[t].argmax().item<int64_t>();
    agree += ours == top5[t][0].get<int64_t>();
    for (int k = 0; k < 5; ++k)
      maxdiff = std::max(maxdiff, std::abs(logits[t][top5[t][k].get<int64_t>()].item<double>() - top5_logits[t][k].get<double>()));
  }
  INFO("top-1 agreement " << agree << "/" << top5.size() << ", max |logit diff| on the reference top-5 " << maxdiff);
  CHECK(agree == static_cast<int>(top5.size()));
  CHECK(maxdiff < 1e-2);
}

TEST_CASE("SmolLM2-135M decode steps over the GGUF's own Q4_1/Q8_0 blocks give the dense forward's logits", "[model][gguf][real]") {
  std::string path = testutil::smollm2();
  if (path.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  auto ref = testutil::load_json(testutil::data("models/smollm2_reference.json"));
  ComputeDevice kept;
  kept.keep_blocks = true;
  auto model = Model::load(path, kept);
  const Weights& w = model->weights();
  CHECK(w.layers.at(0).k_qkv.bits == 4);  // attn_q/k/v are Q4_1 (q and k rows unpermuted like the dense ones)
  CHECK(w.layers.at(0).k_in.rows == 2 * model->config().d_ff);
  CHECK(w.k_unembed.bits == 8);  // token_embd is Q8_0 (tied)
  // The dense forward (checked against transformers above) is the reference: the same weights, sums in another order.
  auto ids = ref_ids(ref);
  at::Tensor whole = model->forward(ids);
  KvCache cache;
  model->run(std::vector<int32_t>(ids.begin(), ids.end() - 3), AttnRecord{}, true, nullptr, &cache);
  for (size_t i = ids.size() - 3; i < ids.size(); ++i) {
    at::Tensor step = model->run({ids[i]}, AttnRecord{}, true, nullptr, &cache).logits[0];
    const double diff = (step - whole[static_cast<int64_t>(i)]).abs().max().item<double>();
    INFO("position " << i << " max |logit diff| " << diff);
    CHECK(diff < 2e-3);
    CHECK(step.argmax().item<int64_t>() == whole[static_cast<int64_t>(i)].argmax().item<int64_t>());
  }
}

TEST_CASE("SmolLM2-135M decode steps on raw buffers equal the per-operation path: logits and statistics", "[model][gguf][real][decode]") {
  std::string path = testutil::smollm2();
  if (path.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  ComputeDevice kept;
  kept.keep_blocks = true;
  auto model = Model::load(path, kept);
  const auto ids = model->tokenizer().encode("The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is");
  // A hook that changes nothing sends every layer through the general path (one LibTorch operation per step of
  // the layer); without hooks a one-token step runs on raw buffers. Both read the same blocks.
  Hooks identity;
  identity.add("blocks.0.hook_resid_pre", [](const at::Tensor& v, const HookContext&) { return v; });
  AttnRecord rec;
  rec.stats = true;
  KvCache fast, general;
  const int64_t prefix = static_cast<int64_t>(ids.size()) - 4;
  model->run(std::vector<int32_t>(ids.begin(), ids.begin() + prefix), rec, true, nullptr, &fast);
  model->run(std::vector<int32_t>(ids.begin(), ids.begin() + prefix), rec, true, &identity, &general);
  double max_logit = 0, max_stat = 0;
  int64_t argmax_diff = 0;
  for (int64_t t = prefix; t < static_cast<int64_t>(ids.size()); ++t) {
    const ForwardResult a = model->run({ids[t]}, rec, true, nullptr, &fast), b = model->run({ids[t]}, rec, true, &identity, &general);
    max_logit = std::max(max_logit, (a.logits - b.logits).abs().max().item<double>());
    for (int64_t l = 0; l < model->config().n_layers; ++l)
      for (int id = 0; id < kStatCount; ++id) {
        if (!a.attn[l][id].defined()) continue;
        REQUIRE(b.attn[l][id].defined());
        if (id == kStatArgmax) argmax_diff += (a.attn[l][id] != b.attn[l][id]).sum().item<int64_t>();
        else max_stat = std::max(max_stat, ((a.attn[l][id].to(at::kDouble) - b.attn[l][id]).abs() / b.attn[l][id].abs().clamp_min(1)).max().item<double>());
      }
  }
  INFO("max |logit diff| " << max_logit << ", max statistic diff (relative above 1) " << max_stat);
  CHECK(max_logit < 5e-4);
  CHECK(max_stat < 5e-5);
  CHECK(argmax_diff == 0);
}

TEST_CASE("700-token sequences match transformers across attention-block edges", "[model][parity]") {
  auto name = GENERATE(as<std::string>{}, "llama_long", "mistral_window");
  DYNAMIC_SECTION(name) {
    std::string dir = testutil::data("models/" + name);
    auto ref = testutil::load_json(dir + "/reference_long.json");
    auto model = Model::load(dir);
    CHECK(model->config().sliding_window == (name == "mistral_window" ? 5 : 0));
    at::Tensor logits = model->forward(ref_ids(ref));
    auto positions = ref.at("positions").get<std::vector<int64_t>>();
    at::Tensor picked = logits.index_select(0, at::tensor(positions, at::kLong));
    double maxdiff = (picked - ref_logits(ref)).abs().max().item<double>();
    INFO(name << " maxdiff " << maxdiff);
    CHECK(maxdiff <= 1e-3);
  }
}

TEST_CASE("bf16 matmuls (--matmul bf16): weights in bf16, logits within bf16's error of transformers", "[model][gguf][real]") {
  auto ref = testutil::load_json(testutil::data("models/stories260k_reference.json"));
  ComputeDevice bf16;
  bf16.bf16 = true;
  auto model = Model::load(testutil::stories260k(), bf16);
  const LayerWeights& l0 = model->weights().layers.at(0);
  CHECK(l0.w_qkv.scalar_type() == at::kBFloat16);
  CHECK(l0.w_in.scalar_type() == at::kBFloat16);
  CHECK(model->weights().unembed.scalar_type() == at::kBFloat16);
  CHECK(model->weights().embed.scalar_type() == at::kBFloat16);  // looked-up rows are widened to fp32
  at::Tensor logits = model->forward(ref_ids(ref));
  const at::Tensor want = ref_logits(ref);
  const double maxdiff = (logits - want).abs().max().item<double>(), scale = want.abs().max().item<double>();
  INFO("max |logit diff| " << maxdiff << " of max |logit| " << scale);
  CHECK(maxdiff > 1e-4);            // it is not the fp32 path
  CHECK(maxdiff < 0.02 * scale);    // bf16 rounds each product input to 8 significant bits (~0.4 %)
  CHECK(at::equal(logits.argmax(1), want.argmax(1)));
  // A decode step (one row: the matrix-vector path) gives the last row of the whole forward, within bf16's error.
  auto ids = ref_ids(ref);
  KvCache cache;
  model->run(std::vector<int32_t>(ids.begin(), ids.end() - 1), AttnRecord{}, true, nullptr, &cache);
  at::Tensor step = model->run({ids.back()}, AttnRecord{}, true, nullptr, &cache).logits[0];
  CHECK((step - logits[logits.size(0) - 1]).abs().max().item<double>() < 0.02 * scale);
  CHECK(step.argmax().item<int64_t>() == want[want.size(0) - 1].argmax().item<int64_t>());
}
