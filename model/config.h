// ModelConfig: everything the generic decoder needs to know about an architecture, read either from an
// HF config.json or from GGUF metadata. One decoder (transformer.cpp) runs every supported family.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace headscope {

class GgufFile;

enum class Family { Llama, GPT2, GPTNeoX };  // Llama covers Llama 2/3, Mistral, Qwen2/2.5, Qwen3, SmolLM/SmolLM2
enum class NormType { RMSNorm, LayerNorm };
enum class Activation { SiLU, GELU, GELUTanh };

struct RopeConfig {
  int64_t rotary_dim = 0;  // 0: no rotary embedding (GPT-2)
  double theta = 10000.0;
  std::string scaling = "default";  // default | linear | dynamic | llama3 | yarn
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position = 0;                     // llama3, yarn, dynamic
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  double attention_factor = 0.0;                         // yarn; 0: derived from factor
  double mscale = 0.0, mscale_all_dim = 0.0;             // yarn (DeepSeek-style); 0: unused
  bool truncate = true;                                  // yarn: floor/ceil the correction range
};

struct ModelConfig {
  std::string architecture;  // as the checkpoint names it: "LlamaForCausalLM", "llama", "gpt2", ...
  Family family = Family::Llama;
  int64_t n_layers = 0, d_model = 0, n_heads = 0, n_kv_heads = 0, d_head = 0, d_ff = 0, vocab = 0, context = 0;
  double norm_eps = 1e-5;
  NormType norm = NormType::RMSNorm;
  Activation act = Activation::SiLU;
  bool gated_mlp = true;          // SwiGLU (Llama family) vs plain 2-layer MLP
  bool qkv_bias = false, o_bias = false, mlp_bias = false, norm_bias = false;
  bool qk_norm = false;           // Qwen3: RMSNorm over each head's q and k
  bool parallel_residual = false; // GPT-NeoX: x + attn(ln1 x) + mlp(ln2 x)
  bool tied_embeddings = false;
  bool learned_positions = false; // GPT-2
  int64_t sliding_window = 0;     // 0: full causal attention
  RopeConfig rope;
  int64_t bos_id = -1, eos_id = -1;

  std::string family_name() const;
  nlohmann::json to_json() const;
  void validate(const std::string& where) const;  // throws Error on inconsistent numbers
};

// `where` names the file in error messages. Unknown model types fail with the list of supported ones.
ModelConfig config_from_hf(const nlohmann::json& config, const std::string& where);
ModelConfig config_from_gguf(const GgufFile& gguf);

extern const char* const kSupportedArchitectures;

}  // namespace headscope
