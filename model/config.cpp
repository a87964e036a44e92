// Reading ModelConfig from HF config.json and from GGUF metadata (see config.h).
#include "model/config.h"

#include "core/error.h"
#include "model/gguf.h"

namespace headscope {

const char* const kSupportedArchitectures =
    "llama, mistral, qwen2, qwen3 (incl. SmolLM/SmolLM2, Qwen2.5), gpt2, gpt_neox (Pythia)";

std::string ModelConfig::family_name() const {
  switch (family) {
    case Family::Llama: return "llama";
    case Family::GPT2: return "gpt2";
    case Family::GPTNeoX: return "gpt_neox";
  }
  return "?";
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j = {{"architecture", architecture}, {"family", family_name()}, {"n_layers", n_layers},
                      {"d_model", d_model}, {"n_heads", n_heads}, {"n_kv_heads", n_kv_heads}, {"d_head", d_head},
                      {"d_ff", d_ff}, {"vocab", vocab}, {"context", context}, {"norm_eps", norm_eps},
                      {"norm", norm == NormType::RMSNorm ? "rmsnorm" : "layernorm"},
                      {"activation", act == Activation::SiLU ? "silu" : act == Activation::GELU ? "gelu" : "gelu_tanh"},
                      {"gated_mlp", gated_mlp}, {"qkv_bias", qkv_bias}, {"o_bias", o_bias}, {"mlp_bias", mlp_bias},
                      {"qk_norm", qk_norm}, {"parallel_residual", parallel_residual},
                      {"tied_embeddings", tied_embeddings}, {"sliding_window", sliding_window}};
  if (rope.rotary_dim > 0)
    j["rope"] = {{"rotary_dim", rope.rotary_dim}, {"theta", rope.theta}, {"scaling", rope.scaling}, {"factor", rope.factor}};
  return j;
}

void ModelConfig::validate(const std::string& where) const {
  auto bad = [&](const std::string& what) { throw Error(where + ": inconsistent config: " + what); };
  if (n_layers <= 0 || n_layers > 1000) bad("layer count " + std::to_string(n_layers));
  if (d_model <= 0 || d_model > (1 << 17)) bad("d_model " + std::to_string(d_model));
  if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    bad("heads " + std::to_string(n_heads) + " must be a positive multiple of kv-heads " + std::to_string(n_kv_heads));
  if (d_head <= 0 || d_head > 1024) bad("d_head " + std::to_string(d_head));
  if (d_ff <= 0 || vocab <= 0 || vocab > (1 << 22)) bad("d_ff/vocab out of range");
  if (rope.rotary_dim % 2 || rope.rotary_dim > d_head) bad("rotary dimension " + std::to_string(rope.rotary_dim));
}

namespace {

template <class T>
T get_or(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}

void read_hf_rope(const nlohmann::json& j, ModelConfig& c, const std::string& where) {
  // transformers <5 writes rope_theta + rope_scaling; 5.x writes rope_parameters holding both.
  nlohmann::json rs = nlohmann::json::object();
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) rs = j["rope_parameters"];
  else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) rs = j["rope_scaling"];
  c.rope.theta = get_or<double>(rs, "rope_theta", get_or<double>(j, "rope_theta", get_or<double>(j, "rotary_emb_base", 10000.0)));
  std::string type = get_or<std::string>(rs, "rope_type", get_or<std::string>(rs, "type", "default"));
  if (type == "mrope") type = "default";
  c.rope.scaling = type;
  c.rope.factor = get_or<double>(rs, "factor", 1.0);
  c.rope.low_freq_factor = get_or<double>(rs, "low_freq_factor", 1.0);
  c.rope.high_freq_factor = get_or<double>(rs, "high_freq_factor", 4.0);
  c.rope.original_max_position = get_or<int64_t>(rs, "original_max_position_embeddings",
                                                 get_or<int64_t>(j, "original_max_position_embeddings", c.context));
  c.rope.beta_fast = get_or<double>(rs, "beta_fast", 32.0);
  c.rope.beta_slow = get_or<double>(rs, "beta_slow", 1.0);
  c.rope.attention_factor = get_or<double>(rs, "attention_factor", 0.0);
  c.rope.mscale = get_or<double>(rs, "mscale", 0.0);
  c.rope.mscale_all_dim = get_or<double>(rs, "mscale_all_dim", 0.0);
  c.rope.truncate = get_or<bool>(rs, "truncate", true);
  if (type != "default" && type != "linear" && type != "dynamic" && type != "llama3" && type != "yarn")
    throw Error(where + ": rope scaling '" + type + "' is not supported (supported: default, linear, dynamic, llama3, yarn)");
  double partial = get_or<double>(rs, "partial_rotary_factor", get_or<double>(j, "partial_rotary_factor", 1.0));
  c.rope.rotary_dim = static_cast<int64_t>(c.d_head * partial);
}

}  // namespace

ModelConfig config_from_hf(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": config.json is not a JSON object");
  ModelConfig c;
  std::string mt = get_or<std::string>(j, "model_type", "");
  if (mt.empty() && j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
    mt = j["architectures"][0].get<std::string>();
  c.architecture = mt;
  try {
    if (mt == "llama" || mt == "mistral" || mt == "qwen2" || mt == "qwen3" || mt == "smollm" || mt == "smollm2") {
      c.family = Family::Llama;
      c.d_model = j.at("hidden_size");
      c.n_layers = j.at("num_hidden_layers");
      c.n_heads = j.at("num_attention_heads");
      c.n_kv_heads = get_or<int64_t>(j, "num_key_value_heads", c.n_heads);
      c.d_head = get_or<int64_t>(j, "head_dim", c.d_model / c.n_heads);
      c.d_ff = j.at("intermediate_size");
      c.vocab = j.at("vocab_size");
      c.context = get_or<int64_t>(j, "max_position_embeddings", 2048);
      c.norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6);
      std::string act = get_or<std::string>(j, "hidden_act", "silu");
      if (act != "silu" && act != "swish") throw Error(where + ": hidden_act '" + act + "' is not supported for " + mt);
      c.act = Activation::SiLU;
      c.tied_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
      c.qkv_bias = mt == "qwen2" ? true : get_or<bool>(j, "attention_bias", false);
      c.o_bias = mt == "qwen2" ? false : c.qkv_bias;
      c.mlp_bias = get_or<bool>(j, "mlp_bias", false);
      c.qk_norm = mt == "qwen3";
      bool sliding = mt == "mistral" || get_or<bool>(j, "use_sliding_window", false);
      if (sliding) c.sliding_window = get_or<int64_t>(j, "sliding_window", 0);
      read_hf_rope(j, c, where);
    } else if (mt == "gpt2") {
      c.family = Family::GPT2;
      c.d_model = j.at("n_embd");
      c.n_layers = j.at("n_layer");
      c.n_heads = c.n_kv_heads = j.at("n_head");
      c.d_head = c.d_model / c.n_heads;
      c.d_ff = get_or<int64_t>(j, "n_inner", 4 * c.d_model);
      c.vocab = j.at("vocab_size");
      c.context = get_or<int64_t>(j, "n_positions", 1024);
      c.norm_eps = get_or<double>(j, "layer_norm_epsilon", 1e-5);
      c.norm = NormType::LayerNorm;
      c.norm_bias = true;
      std::string act = get_or<std::string>(j, "activation_function", "gelu_new");
      if (act == "gelu_new" || act == "gelu_pytorch_tanh") c.act = Activation::GELUTanh;
      else if (act == "gelu") c.act = Activation::GELU;
      else throw Error(where + ": activation_function '" + act + "' is not supported for gpt2");
      c.gated_mlp = false;
      c.qkv_bias = c.o_bias = c.mlp_bias = true;
      c.tied_embeddings = true;
      c.learned_positions = true;
      if (get_or<bool>(j, "scale_attn_by_inverse_layer_idx", false) || get_or<bool>(j, "reorder_and_upcast_attn", false))
        throw Error(where + ": gpt2 options scale_attn_by_inverse_layer_idx/reorder_and_upcast_attn are not supported");
    } else if (mt == "gpt_neox") {
      c.family = Family::GPTNeoX;
      c.d_model = j.at("hidden_size");
      c.n_layers = j.at("num_hidden_layers");
      c.n_heads = c.n_kv_heads = j.at("num_attention_heads");
      c.d_head = c.d_model / c.n_heads;
      c.d_ff = j.at("intermediate_size");
      c.vocab = j.at("vocab_size");
      c.context = get_or<int64_t>(j, "max_position_embeddings", 2048);
      c.norm_eps = get_or<double>(j, "layer_norm_eps", 1e-5);
      c.norm = NormType::LayerNorm;
      c.norm_bias = true;
      std::string act = get_or<std::string>(j, "hidden_act", "gelu");
      if (act == "gelu") c.act = Activation::GELU;
      else if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") c.act = Activation::GELUTanh;
      else throw Error(where + ": hidden_act '" + act + "' is not supported for gpt_neox");
      c.gated_mlp = false;
      c.qkv_bias = c.o_bias = get_or<bool>(j, "attention_bias", true);
      c.mlp_bias = true;
      c.parallel_residual = get_or<bool>(j, "use_parallel_residual", true);
      c.tied_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
      read_hf_rope(j, c, where);
      if (j.contains("rotary_pct")) c.rope.rotary_dim = static_cast<int64_t>(c.d_head * j["rotary_pct"].get<double>());
    } else {
      throw Error(where + ": unknown architecture '" + (mt.empty() ? std::string("(no model_type)") : mt) +
                  "'; supported: " + kSupportedArchitectures);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": config.json is missing a field or has a wrong type (" + e.what() + ")");
  }
  c.bos_id = get_or<int64_t>(j, "bos_token_id", -1);
  c.eos_id = j.contains("eos_token_id") && j["eos_token_id"].is_number_integer() ? j["eos_token_id"].get<int64_t>() : -1;
  c.validate(where);
  return c;
}

ModelConfig config_from_gguf(const GgufFile& g) {
  ModelConfig c;
  const std::string arch = g.get_str("general.architecture");
  c.architecture = arch;
  auto key = [&](const std::string& k) { return arch + "." + k; };
  if (arch == "llama" || arch == "mistral" || arch == "qwen2" || arch == "qwen3") c.family = Family::Llama;
  else if (arch == "gpt2") c.family = Family::GPT2;
  else if (arch == "gptneox") c.family = Family::GPTNeoX;
  else
    throw Error(g.name + ": unknown architecture '" + arch + "' (GGUF architectures supported: llama, mistral, qwen2, qwen3, gpt2, gptneox)");
  c.n_layers = g.get_int(key("block_count"));
  c.d_model = g.get_int(key("embedding_length"));
  c.d_ff = g.get_int(key("feed_forward_length"));
  c.n_heads = g.get_int(key("attention.head_count"));
  c.n_kv_heads = g.get_int(key("attention.head_count_kv"), c.n_heads);
  c.d_head = g.get_int(key("attention.key_length"), c.n_heads ? c.d_model / c.n_heads : 0);
  c.context = g.get_int(key("context_length"), 2048);
  if (g.has("tokenizer.ggml.tokens") && g.metadata["tokenizer.ggml.tokens"].is_array())
    c.vocab = static_cast<int64_t>(g.metadata["tokenizer.ggml.tokens"].size());
  c.vocab = g.get_int(key("vocab_size"), c.vocab);
  c.bos_id = g.get_int("tokenizer.ggml.bos_token_id", -1);
  c.eos_id = g.get_int("tokenizer.ggml.eos_token_id", -1);
  if (c.family == Family::Llama) {
    c.norm_eps = g.get_float(key("attention.layer_norm_rms_epsilon"), 1e-5);
    c.qk_norm = arch == "qwen3";
    c.qkv_bias = arch == "qwen2";
  } else {
    c.norm = NormType::LayerNorm;
    c.norm_bias = true;
    c.norm_eps = g.get_float(key("attention.layer_norm_epsilon"), 1e-5);
    c.gated_mlp = false;
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
    if (c.family == Family::GPT2) {
      c.act = Activation::GELUTanh;
      c.learned_positions = true;
    } else {
      c.act = Activation::GELU;
      c.parallel_residual = g.get_bool(key("use_parallel_residual"), true);
    }
  }
  if (c.family != Family::GPT2) {
    c.rope.rotary_dim = g.get_int(key("rope.dimension_count"), c.d_head);
    c.rope.theta = g.get_float(key("rope.freq_base"), 10000.0);
    std::string st = g.has(key("rope.scaling.type")) ? g.get_str(key("rope.scaling.type")) : "none";
    if (st == "none") st = "default";
    if (st != "default" && st != "linear" && st != "yarn")
      throw Error(g.name + ": rope scaling '" + st + "' is not supported (supported in GGUF: none, linear, yarn)");
    c.rope.scaling = st;
    c.rope.factor = g.get_float(key("rope.scaling.factor"), 1.0);
    c.rope.original_max_position = g.get_int(key("rope.scaling.original_context_length"), c.context);
  }
  c.validate(g.name);
  return c;
}

}  // namespace headscope
