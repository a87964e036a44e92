// Writes the planted GPT-2 checkpoint described in planted_model.h, byte by byte as the safetensors format and
// HF's GPT-2 config define them (independent of headscope's readers).
#include "planted_model.h"

#include <cmath>
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

// One token per printable ASCII character and newline (id = code); the others are placeholders, the last is <|endoftext|>.
void write_tokenizer(const std::string& dir) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int id = 0; id < kVocab - 1; ++id)
    vocab[(id >= 32 && id < 127) || id == '\n' ? std::string(1, static_cast<char>(id)) : "<unused" + std::to_string(id) + ">"] = id;
  const nlohmann::json tok = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
      {"added_tokens", {{{"id", kVocab - 1}, {"content", "<|endoftext|>"}, {"special", true}}}}};
  std::ofstream(dir + "/tokenizer.json") << tok.dump();
}

void write_config(const std::string& dir, int d_model, int heads, int layers, int inner = kInner) {
  const nlohmann::json config = {
      {"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"n_embd", d_model}, {"n_head", heads},
      {"n_layer", layers}, {"n_positions", kPositions}, {"n_inner", inner}, {"vocab_size", kVocab},
      {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5}, {"tie_word_embeddings", true},
      {"bos_token_id", kVocab - 1}, {"eos_token_id", kVocab - 1}};
  std::ofstream(dir + "/config.json") << config.dump(2);
}

}  // namespace

std::string write_model(const std::string& dir) {
  std::filesystem::create_directories(dir);
  write_config(dir, kModel, kHeads, kLayers);

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
  write_tokenizer(dir);
  return dir;
}

std::string write_circuit_model(const std::string& dir, bool copier);
std::string write_induction_model(const std::string& dir) { return write_circuit_model(dir, false); }
std::string write_copy_model(const std::string& dir) { return write_circuit_model(dir, true); }

std::string write_circuit_model(const std::string& dir, bool copier) {
  namespace I = induction;
  std::filesystem::create_directories(dir);
  write_config(dir, I::kModel, I::kHeads, I::kLayers);
  constexpr int P = 0, V = kPositions, R = kPositions + kVocab;  // where each code starts in the residual stream
  std::map<std::string, Tensor> t;
  Tensor wte = zeros({kVocab, I::kModel}), wpe = zeros({kPositions, I::kModel});
  for (int id = 0; id < kVocab; ++id) wte.data[id * I::kModel + V + id] = 1.f;
  for (int p = 0; p < kPositions; ++p) wpe.data[p * I::kModel + P + p] = 1.f;
  t["wte.weight"] = wte, t["wpe.weight"] = wpe;
  Tensor ones = zeros({I::kModel});
  std::fill(ones.data.begin(), ones.data.end(), 1.f);
  t["ln_f.weight"] = ones, t["ln_f.bias"] = zeros({I::kModel});
  auto q_col = [](int h, int i) { return h * I::kHeadDim + i; };
  auto k_col = [](int h, int i) { return I::kModel + h * I::kHeadDim + i; };
  auto v_col = [](int h, int i) { return 2 * I::kModel + h * I::kHeadDim + i; };
  const float a = 10.f, b = 5.f, a_const = 100.f;
  for (int l = 0; l < I::kLayers; ++l) {
    const std::string pre = "h." + std::to_string(l) + ".";
    Tensor w = zeros({I::kModel, 3 * I::kModel}), bias = zeros({3 * I::kModel}), proj = zeros({I::kModel, I::kModel}), proj_b = zeros({I::kModel});
    auto W = [&](int in, int out) -> float& { return w.data[static_cast<size_t>(in) * 3 * I::kModel + out]; };
    // Previous token (both layers): q_t = a P_t, k_s = P_s shifted by one.
    for (int i = 0; i < kPositions; ++i) W(P + i, q_col(I::kPrevHead, i)) = a;
    for (int i = 0; i + 1 < kPositions; ++i) W(P + i, k_col(I::kPrevHead, i + 1)) = 1.f;
    // First token: a constant query against k_s = P_s[0]; uniform: q = k = 0.
    bias.data[q_col(I::kFirstHead, 0)] = a_const;
    W(P, k_col(I::kFirstHead, 0)) = 1.f;
    if (l == 0) {
      // Duplicate token: q = a V_t - b P_t against k = V_s + P_s: a for an earlier equal token, a - b for itself.
      for (int c = 0; c < kVocab; ++c) W(V + c, q_col(I::kDupHead, c)) = a, W(V + c, k_col(I::kDupHead, c)) = 1.f;
      for (int p = 0; p < kPositions; ++p) W(P + p, q_col(I::kDupHead, kVocab + p)) = -b, W(P + p, k_col(I::kDupHead, kVocab + p)) = 1.f;
      // The previous-token head's value is the attended token's code after LayerNorm, (V_s - mu) / sigma; c_proj
      // scales it by sigma and adds mu back, so R_t = V_{t-1} exactly (every stream here has two ones: the same mu
      // and sigma for every token).
      const double D = I::kModel, mu = 2.0 / D, sigma = std::sqrt(2.0 / D - mu * mu + 1e-5);
      for (int c = 0; c < kVocab; ++c) {
        W(V + c, v_col(I::kPrevHead, c)) = 1.f;
        proj.data[static_cast<size_t>(I::kPrevHead * I::kHeadDim + c) * I::kModel + R + c] = static_cast<float>(sigma);
        proj_b.data[R + c] = static_cast<float>(mu);
      }
    } else {
      // Induction: q = a V_t against k = R_s (the key's previous token).
      for (int c = 0; c < kVocab; ++c) W(V + c, q_col(I::kInductionHead, c)) = a, W(R + c, k_col(I::kInductionHead, c)) = 1.f;
      if (copier) {
        // Its value is the key's token code, (V_s - mu) / sigma; c_proj writes it back at 2 sigma: the unembedding
        // (tied: the V code) then prefers the attended token to the current one.
        const double D = I::kModel, mu = 3.0 / D, sigma = std::sqrt(3.0 / D - mu * mu + 1e-5);
        for (int c = 0; c < kVocab; ++c) {
          W(V + c, v_col(I::kInductionHead, c)) = 1.f;
          proj.data[static_cast<size_t>(I::kInductionHead * I::kHeadDim + c) * I::kModel + V + c] = static_cast<float>(2 * sigma);
        }
        // The half head: the induction match, plus 2a on key 0 for odd query positions (a column reading the odd
        // positions' codes against one reading position 0).
        constexpr int kHalf = copy::kHalfHead;
        for (int c = 0; c < kVocab; ++c) W(V + c, q_col(kHalf, c)) = a, W(R + c, k_col(kHalf, c)) = 1.f;
        for (int p = 1; p < kPositions; p += 2) W(P + p, q_col(kHalf, kVocab)) = 2 * a;
        W(P, k_col(kHalf, kVocab)) = 1.f;
      }
    }
    t[pre + "attn.c_attn.weight"] = w, t[pre + "attn.c_attn.bias"] = bias;
    t[pre + "attn.c_proj.weight"] = proj, t[pre + "attn.c_proj.bias"] = proj_b;
    t[pre + "ln_1.weight"] = ones, t[pre + "ln_1.bias"] = zeros({I::kModel});
    t[pre + "ln_2.weight"] = ones, t[pre + "ln_2.bias"] = zeros({I::kModel});
    t[pre + "mlp.c_fc.weight"] = zeros({I::kModel, kInner}), t[pre + "mlp.c_fc.bias"] = zeros({kInner});
    t[pre + "mlp.c_proj.weight"] = zeros({kInner, I::kModel}), t[pre + "mlp.c_proj.bias"] = zeros({I::kModel});
  }
  write_safetensors(dir + "/model.safetensors", t);
  write_tokenizer(dir);
  return dir;
}

std::string write_mover_model(const std::string& dir) {
  namespace Mv = mover;
  constexpr int D = Mv::kModel, K = kPositions;
  std::filesystem::create_directories(dir);
  write_config(dir, D, Mv::kHeads, Mv::kLayers);
  constexpr int P = 0, V = K, U = K + kVocab, Mk = U + 1;  // where each code lives in the residual stream
  std::map<std::string, Tensor> t;
  Tensor wte = zeros({kVocab, D}), wpe = zeros({K, D});
  for (int id = 0; id < kVocab; ++id) wte.data[id * D + V + id] = 1.f;
  for (int p = 0; p < K; ++p) wpe.data[p * D + P + p] = 1.f, wpe.data[p * D + U] = 1.f;
  t["wte.weight"] = wte, t["wpe.weight"] = wpe;
  Tensor ones = zeros({D});
  std::fill(ones.data.begin(), ones.data.end(), 1.f);
  t["ln_f.weight"] = ones, t["ln_f.bias"] = zeros({D});
  // Every stream holds three ones: after LayerNorm a one reads s1 and a zero s0.
  const double mu = 3.0 / D, sigma = std::sqrt(3.0 / D - mu * mu + 1e-5), s1 = (1 - mu) / sigma, s0 = -mu / sigma;
  auto q_col = [](int h, int i) { return h * Mv::kHeadDim + i; };
  auto k_col = [](int h, int i) { return D + h * Mv::kHeadDim + i; };
  auto v_col = [](int h, int i) { return 2 * D + h * Mv::kHeadDim + i; };
  const float a = 10.f, b = 5.f;
  for (int l = 0; l < Mv::kLayers; ++l) {
    const std::string pre = "h." + std::to_string(l) + ".";
    Tensor w = zeros({D, 3 * D}), bias = zeros({3 * D}), proj = zeros({D, D}), proj_b = zeros({D});
    auto W = [&](int in, int out) -> float& { return w.data[static_cast<size_t>(in) * 3 * D + out]; };
    auto Proj = [&](int in, int out) -> float& { return proj.data[static_cast<size_t>(in) * D + out]; };
    if (l == 0) {
      // q = a V_t - b P_t against k = V_s + P_s: a s1^2 for an earlier equal token, (a - b) s1^2 for itself; key 0
      // gets (a - b/2) s1^2 more from a constant query column against P_0, so it wins when no earlier token is equal.
      const int h = Mv::kDupHead;
      for (int c = 0; c < kVocab; ++c) W(V + c, q_col(h, c)) = a, W(V + c, k_col(h, c)) = 1.f;
      for (int p = 0; p < K; ++p) W(P + p, q_col(h, kVocab + p)) = -b, W(P + p, k_col(h, kVocab + p)) = 1.f;
      bias.data[q_col(h, kVocab + K)] = static_cast<float>((a - b / 2) * s1 * s1 / (s1 - s0));
      W(P, k_col(h, kVocab + K)) = 1.f;
      // Its value: the sum of the position codes 1..K-1, which reads 1/sigma more at any position but 0; c_proj
      // turns that into exactly 1 (0 for position 0) and writes it as M = +1, U = -1.
      for (int p = 1; p < K; ++p) W(P + p, v_col(h, 0)) = 1.f;
      const double v0 = (K - 1) * s0;  // the value read at position 0
      Proj(h * Mv::kHeadDim, Mk) = static_cast<float>(sigma), Proj(h * Mv::kHeadDim, U) = static_cast<float>(-sigma);
      proj_b.data[Mk] = static_cast<float>(-sigma * v0), proj_b.data[U] = static_cast<float>(sigma * v0);
    } else {
      // The mover: a constant query against k = M (a gap of (s1 - s0) 100 for a marked key) and against P_0 (half
      // that for key 0, where it looks when nothing is marked); its value is the key's token code, written back at
      // sigma.
      const int h = Mv::kMoverHead;
      bias.data[q_col(h, 0)] = 100.f, bias.data[q_col(h, 1)] = 50.f;
      W(Mk, k_col(h, 0)) = 1.f, W(P, k_col(h, 1)) = 1.f;
      for (int c = 0; c < kVocab; ++c) W(V + c, v_col(h, c)) = 1.f, Proj(h * Mv::kHeadDim + c, V + c) = static_cast<float>(sigma);
    }
    t[pre + "attn.c_attn.weight"] = w, t[pre + "attn.c_attn.bias"] = bias;
    t[pre + "attn.c_proj.weight"] = proj, t[pre + "attn.c_proj.bias"] = proj_b;
    t[pre + "ln_1.weight"] = ones, t[pre + "ln_1.bias"] = zeros({D});
    t[pre + "ln_2.weight"] = ones, t[pre + "ln_2.bias"] = zeros({D});
    t[pre + "mlp.c_fc.weight"] = zeros({D, kInner}), t[pre + "mlp.c_fc.bias"] = zeros({kInner});
    t[pre + "mlp.c_proj.weight"] = zeros({kInner, D}), t[pre + "mlp.c_proj.bias"] = zeros({D});
  }
  write_safetensors(dir + "/model.safetensors", t);
  write_tokenizer(dir);
  return dir;
}

std::string write_sink_model(const std::string& dir) {
  namespace S = sinks;
  constexpr int P = 0, V = kPositions, kS = kPositions + kVocab, kNeurons = 2;
  std::filesystem::create_directories(dir);
  write_config(dir, S::kModel, S::kHeads, S::kLayers, kNeurons);
  std::map<std::string, Tensor> t;
  Tensor wte = zeros({kVocab, S::kModel}), wpe = zeros({kPositions, S::kModel});
  for (int id = 0; id < kVocab; ++id) wte.data[id * S::kModel + V + id] = 1.f;
  wte.data[(kVocab - 1) * S::kModel + kS] = 20.f;  // BOS starts with 20 S
  for (int p = 0; p < kPositions; ++p) wpe.data[p * S::kModel + P + p] = 1.f;
  t["wte.weight"] = wte, t["wpe.weight"] = wpe;
  Tensor ones = zeros({S::kModel});
  std::fill(ones.data.begin(), ones.data.end(), 1.f);
  t["ln_f.weight"] = ones, t["ln_f.bias"] = zeros({S::kModel});
  // One event: at `block`, the neuron reading token `id`'s code adds `amount` S. The neuron's input is LayerNorm's
  // value of that code, (1 - mu) / sigma for a stream of two ones plus `s_before` S; 100 x that - 40 fires only
  // for this token (every other token reads -mu / sigma < 0.4 there, so its GELU input is below -40 and its
  // output exactly 0), and c_proj scales the output to `amount`.
  struct Event {
    int block, id;
    double s_before, amount;
  };
  const Event events[] = {{2, kVocab - 1, 20, 20}, {2, '@', 0, 20}, {4, '#', 0, 20}, {7, '#', 20, -20}, {5, '!', 0, 20}, {6, '!', 20, -20}};
  auto gelu = [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); };
  for (int l = 0; l < S::kLayers; ++l) {
    const std::string pre = "h." + std::to_string(l) + ".";
    Tensor fc = zeros({S::kModel, kNeurons}), fc_b = zeros({kNeurons}), proj = zeros({kNeurons, S::kModel});
    int neuron = 0;
    for (const Event& e : events) {
      if (e.block != l) continue;
      const double D = S::kModel, sum = 2 + e.s_before, mu = sum / D, sigma = std::sqrt((2 + e.s_before * e.s_before) / D - mu * mu + 1e-5);
      const double input = 100 * (1 - mu) / sigma - 40;
      fc.data[(V + e.id) * kNeurons + neuron] = 100.f;
      fc_b.data[neuron] = -40.f;
      proj.data[neuron * S::kModel + kS] = static_cast<float>(e.amount / gelu(input));
      ++neuron;
    }
    t[pre + "attn.c_attn.weight"] = zeros({S::kModel, 3 * S::kModel}), t[pre + "attn.c_attn.bias"] = zeros({3 * S::kModel});
    t[pre + "attn.c_proj.weight"] = zeros({S::kModel, S::kModel}), t[pre + "attn.c_proj.bias"] = zeros({S::kModel});
    t[pre + "ln_1.weight"] = ones, t[pre + "ln_1.bias"] = zeros({S::kModel});
    t[pre + "ln_2.weight"] = ones, t[pre + "ln_2.bias"] = zeros({S::kModel});
    t[pre + "mlp.c_fc.weight"] = fc, t[pre + "mlp.c_fc.bias"] = fc_b;
    t[pre + "mlp.c_proj.weight"] = proj, t[pre + "mlp.c_proj.bias"] = zeros({S::kModel});
  }
  write_safetensors(dir + "/model.safetensors", t);
  write_tokenizer(dir);
  return dir;
}

}  // namespace planted
