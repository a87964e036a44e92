// Writes the planted GPT-2 checkpoint described in planted_model.h, byte by byte as the safetensors format and
// HF's GPT-2 config define them (independent of headscope's readers).
#include "planted_model.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

namespace planted {
namespace {

constexpr int kHeadDim = kPositions;          // a head holds every position code
constexpr int kModel = kHeads * kHeadDim;    // d_model = 288
constexpr int kInner = 4;                    // MLP width (its weights are zero)

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

Tensor zeros(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return {shape, std::vector<float>(static_cast<size_t>(n), 0.f)};
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  nlohmann::json header = {{"__metadata__", {{"format", "pt"}}}};
  uint64_t off = 0;
  for (auto& [name, t] : tensors) {
    const uint64_t bytes = t.data.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));  // little-endian u64
  out.write(reinterpret_cast<const char*>(len), 8);
  out << h;
  for (auto& [name, t] : tensors) out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
}

}  // namespace

std::string write_model(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const nlohmann::json config = {
      {"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"n_embd", kModel}, {"n_head", kHeads},
      {"n_layer", kLayers}, {"n_positions", kPositions}, {"n_inner", kInner}, {"vocab_size", kVocab},
      {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5}, {"tie_word_embeddings", true},
      {"bos_token_id", kVocab - 1}, {"eos_token_id", kVocab - 1}};
  std::ofstream(dir + "/config.json") << config.dump(2);

  std::map<std::string, Tensor> t;
  t["wte.weight"] = zeros({kVocab, kModel});
  Tensor wpe = zeros({kPositions, kModel});
  for (int p = 0; p < kPositions; ++p) wpe.data[p * kModel + p] = 1.f;  // position p -> e_p
  t["wpe.weight"] = wpe;
  Tensor ones = zeros({kModel});
  std::fill(ones.data.begin(), ones.data.end(), 1.f);
  t["ln_f.weight"] = ones, t["ln_f.bias"] = zeros({kModel});
  // Conv1D layout [in, out]: columns [0, D) are q, [D, 2D) k, [2D, 3D) v; head h owns kHeadDim of each.
  auto q_col = [](int h, int i) { return h * kHeadDim + i; };
  auto k_col = [](int h, int i) { return kModel + h * kHeadDim + i; };
  const float a_prev = 10.f, a_const = 100.f;
  for (int l = 0; l < kLayers; ++l) {
    const std::string b = "h." + std::to_string(l) + ".";
    Tensor w = zeros({kModel, 3 * kModel}), bias = zeros({3 * kModel});
    auto W = [&](int in, int out) -> float& { return w.data[static_cast<size_t>(in) * 3 * kModel + out]; };
    // Previous token: q_t = a u_t, k_s = shift(u_s) so that q_t . k_s = a [t = s + 1] / sigma^2 + (terms equal for
    // every key s of row t, as long as s < kPositions - 1).
    for (int i = 0; i < kHeadDim; ++i) W(i, q_col(kPrevHead, i)) = a_prev;
    for (int i = 0; i + 1 < kHeadDim; ++i) W(i, k_col(kPrevHead, i + 1)) = 1.f;
    // First token: a constant query (the bias) against k_s = u_s[0].
    bias.data[q_col(kFirstHead, 0)] = a_const;
    W(0, k_col(kFirstHead, 0)) = 1.f;
    // Pair: a constant query against k_s = u_s[0] + u_s[kStar].
    bias.data[q_col(kPairHead, 0)] = a_const;
    W(0, k_col(kPairHead, 0)) = 1.f;
    W(kStar, k_col(kPairHead, 0)) = 1.f;
    // kUniformHead: q = k = 0.
    t[b + "attn.c_attn.weight"] = w, t[b + "attn.c_attn.bias"] = bias;
    t[b + "attn.c_proj.weight"] = zeros({kModel, kModel}), t[b + "attn.c_proj.bias"] = zeros({kModel});
    t[b + "ln_1.weight"] = ones, t[b + "ln_1.bias"] = zeros({kModel});
    t[b + "ln_2.weight"] = ones, t[b + "ln_2.bias"] = zeros({kModel});
    t[b + "mlp.c_fc.weight"] = zeros({kModel, kInner}), t[b + "mlp.c_fc.bias"] = zeros({kInner});
    t[b + "mlp.c_proj.weight"] = zeros({kInner, kModel}), t[b + "mlp.c_proj.bias"] = zeros({kModel});
  }
  write_safetensors(dir + "/model.safetensors", t);

  // One token per printable ASCII character (id = code); the others are placeholders, the last is <|endoftext|>.
  nlohmann::json vocab = nlohmann::json::object();
  for (int id = 0; id < kVocab - 1; ++id) vocab[id >= 32 && id < 127 ? std::string(1, static_cast<char>(id)) : "<unused" + std::to_string(id) + ">"] = id;
  const nlohmann::json tok = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
      {"added_tokens", {{{"id", kVocab - 1}, {"content", "<|endoftext|>"}, {"special", true}}}}};
  std::ofstream(dir + "/tokenizer.json") << tok.dump();
  return dir;
}

}  // namespace planted
