// Malformed checkpoints must give one clear error (headscope::Error), never a crash, hang or huge allocation:
// truncated files, header lengths past the end, unknown dtypes, shape mismatches, missing tensors, wrong magic,
// huge declared counts, pickle files, unknown architectures, tensors the configuration does not use. The CLI turns each into one line and exit code 1.
#include "testing.h"
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kernels/device.h"
#include "model/checkpoint.h"
#include "core/error.h"
#include "model/model.h"
#include "store/run_file.h"
#include "test_helpers.h"

using namespace headscope;
namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A minimal GGUF writer for hand-made test files.
struct GgufBuilder {
  std::string b;
  void u32(uint32_t v) { b.append(reinterpret_cast<char*>(&v), 4); }
  void u64(uint64_t v) { b.append(reinterpret_cast<char*>(&v), 8); }
  void str(const std::string& s) { u64(s.size()), b += s; }
  void kv_str(const std::string& k, const std::string& v) { str(k), u32(8), str(v); }
  void kv_u32(const std::string& k, uint32_t v) { str(k), u32(4), u32(v); }
};

// One F32 tensor "t" of shape [4] with 16 data bytes; fields can be overridden to break it.
std::string small_gguf(uint32_t magic = 0x46554747, uint32_t version = 3, uint64_t n_tensors = 1, uint64_t n_kv = 1,
                       uint32_t type = 0, uint64_t dim = 4, uint64_t offset = 0, uint64_t name_len = 1) {
  GgufBuilder g;
  g.u32(magic), g.u32(version), g.u64(n_tensors), g.u64(n_kv);
  g.kv_str("general.architecture", "llama");
  g.u64(name_len), g.b += "t";
  g.u32(1), g.u64(dim), g.u32(type), g.u64(offset);
  while (g.b.size() % 32) g.b += '\0';
  g.b += std::string(16, '\x01');
  return g.b;
}

std::string safetensors_file(const std::string& header, size_t data_bytes, int64_t declared_len = -1) {
  uint64_t n = declared_len >= 0 ? static_cast<uint64_t>(declared_len) : header.size();
  std::string s(reinterpret_cast<char*>(&n), 8);
  return s + header + std::string(data_bytes, '\0');
}

// Opens `path` as a model; returns the error message (fails the test if it loads).
std::string load_error(const std::string& path) {
  try {
    Model::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("expected an error loading " << path);
  return "";
}

}  // namespace

TEST_CASE("a valid hand-made GGUF parses", "[malformed][gguf]") {
  testutil::TempDir d;
  write_file(d / "ok.gguf", small_gguf());
  auto ck = Checkpoint::open(d / "ok.gguf");
  REQUIRE(ck->tensors().size() == 1);
  CHECK(ck->get("t").shape == std::vector<int64_t>{4});
}

TEST_CASE("malformed GGUF files give clear errors", "[malformed][gguf]") {
  testutil::TempDir d;
  auto check = [&](const std::string& bytes, const std::string& expect) {
    write_file(d / "bad.gguf", bytes);
    std::string msg = load_error(d / "bad.gguf");
    INFO(msg);
    CHECK(msg.find(expect) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  };
  SECTION("wrong magic") { check(small_gguf(0x12345678), "not a GGUF file"); }
  SECTION("unsupported version") { check(small_gguf(0x46554747, 1), "version 1 is not supported"); }
  SECTION("huge tensor count") { check(small_gguf(0x46554747, 3, 1ull << 60), "more than the file can hold"); }
  SECTION("huge metadata count") { check(small_gguf(0x46554747, 3, 1, 1ull << 62), "more than the file can hold"); }
  SECTION("string length past the end") { check(small_gguf(0x46554747, 3, 1, 1, 0, 4, 0, 1ull << 40), "runs past the end"); }
  SECTION("unknown tensor type") { check(small_gguf(0x46554747, 3, 1, 1, 99), "GGML type 99"); }
  SECTION("tensor data past the end") { check(small_gguf(0x46554747, 3, 1, 1, 0, 4000), "runs past the end"); }
  SECTION("huge tensor shape") { check(small_gguf(0x46554747, 3, 1, 1, 0, 1ull << 62), "implausibly large"); }
  SECTION("misaligned data offset") { check(small_gguf(0x46554747, 3, 1, 1, 0, 4, 3), "not aligned"); }
  SECTION("empty file") { check("", "truncated"); }
  SECTION("unknown architecture") {
    std::string s = small_gguf();
    s.replace(s.find("llama"), 5, "bertx");
    check(s, "unknown architecture 'bertx'");
  }
  SECTION("truncated real model at every region") {
    std::string full = read_file(testutil::stories260k());
    REQUIRE(full.size() > 100000);
    for (size_t cut : {size_t(3), size_t(20), size_t(200), size_t(5000), size_t(20000), full.size() / 2, full.size() - 1}) {
      write_file(d / "bad.gguf", full.substr(0, cut));
      std::string msg = load_error(d / "bad.gguf");
      INFO("cut at " << cut << ": " << msg);
      CHECK(msg.find("truncated") != std::string::npos);
    }
  }
}

TEST_CASE("missing metadata in a real GGUF is named", "[malformed][gguf]") {
  testutil::TempDir d;
  std::string full = read_file(testutil::stories260k());
  // Rename the key llama.block_count so the loader cannot find it.
  size_t p = full.find("llama.block_count");
  REQUIRE(p != std::string::npos);
  full[p + 6] = 'X';
  write_file(d / "m.gguf", full);
  CHECK(load_error(d / "m.gguf").find("llama.block_count") != std::string::npos);
}

TEST_CASE("malformed safetensors files give clear errors", "[malformed][safetensors]") {
  testutil::TempDir d;
  write_file(d / "config.json", read_file(testutil::data("models/llama/config.json")));
  auto check = [&](const std::string& bytes, const std::string& expect) {
    write_file(d / "model.safetensors", bytes);
    std::string msg = load_error(d / "model.safetensors");
    INFO(msg);
    CHECK(msg.find(expect) != std::string::npos);
  };
  SECTION("header length past the end") { check(safetensors_file("{}", 0, 1000), "runs past the end"); }
  SECTION("implausible header length") { check(safetensors_file("{}", 0, 1ll << 50), "implausible"); }
  SECTION("header not JSON") { check(safetensors_file("{not json", 0), "not a JSON object"); }
  SECTION("unknown dtype") {
    check(safetensors_file(R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", 16), "unsupported dtype I64");
  }
  SECTION("shape and size disagree") {
    check(safetensors_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12 bytes");
  }
  SECTION("data offsets past the end") {
    check(safetensors_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "outside the file");
  }
  SECTION("missing fields") { check(safetensors_file(R"({"a":{"dtype":"F32"}})", 0), "malformed entry"); }
  SECTION("truncated real checkpoint") {
    std::string full = read_file(testutil::data("models/llama/model.safetensors"));
    check(full.substr(0, full.size() - 100), "outside the file");
  }
}

TEST_CASE("config and weights that disagree are reported by tensor name", "[malformed][safetensors]") {
  testutil::TempDir d;
  fs::copy_file(testutil::data("models/llama/model.safetensors"), d / "model.safetensors");
  auto cfg = testutil::load_json(testutil::data("models/llama/config.json"));
  SECTION("missing tensor") {
    cfg["num_hidden_layers"] = 3;
    write_file(d / "config.json", cfg.dump());
    CHECK(load_error(d.path.string()).find("missing tensor 'model.layers.2.") != std::string::npos);
  }
  SECTION("tensors the configuration does not use") {
    cfg["num_hidden_layers"] = 1;  // the file holds two layers
    write_file(d / "config.json", cfg.dump());
    std::string msg = load_error(d.path.string());
    INFO(msg);
    CHECK(msg.find("tensor(s) not part of the llama architecture as configured: model.layers.1.") != std::string::npos);
  }
  SECTION("a bias the configuration does not have") {
    cfg["attention_bias"] = true;  // asks for q/k/v/o biases the file lacks
    write_file(d / "config.json", cfg.dump());
    CHECK(load_error(d.path.string()).find("missing tensor 'model.layers.0.self_attn.q_proj.bias'") != std::string::npos);
  }
  SECTION("shape mismatch") {
    cfg["intermediate_size"] = 65;
    write_file(d / "config.json", cfg.dump());
    std::string msg = load_error(d.path.string());
    INFO(msg);
    CHECK(msg.find("has shape [64, 32], the config implies [65, 32]") != std::string::npos);
  }
  SECTION("unknown architecture") {
    cfg["model_type"] = "bert";
    write_file(d / "config.json", cfg.dump());
    std::string msg = load_error(d.path.string());
    CHECK(msg.find("unknown architecture 'bert'") != std::string::npos);
    CHECK(msg.find("gpt_neox") != std::string::npos);  // names what is supported
  }
  SECTION("config missing a field") {
    cfg.erase("hidden_size");
    write_file(d / "config.json", cfg.dump());
    CHECK(load_error(d.path.string()).find("missing a field") != std::string::npos);
  }
  SECTION("no config.json") {
    CHECK(load_error(d / "model.safetensors").find("needs its HF config.json") != std::string::npos);
  }
}

TEST_CASE("pickle checkpoints are refused without being read", "[malformed]") {
  testutil::TempDir d;
  write_file(d / "pytorch_model.bin", "\x80\x02}q\x00.");
  std::string msg = load_error(d / "pytorch_model.bin");
  CHECK(msg.find("pickle-based checkpoints are refused") != std::string::npos);
  CHECK(msg.find("safetensors") != std::string::npos);
  CHECK(load_error(d.path.string()).find("pickle-based") != std::string::npos);  // a folder holding only a .bin
}

TEST_CASE("the CLI reports bad input in one line with a non-zero exit code", "[malformed][cli]") {
  testutil::TempDir d;
  write_file(d / "bad.gguf", read_file(testutil::stories260k()).substr(0, 1000));
  for (const std::string& args :
       {"info " + testutil::shell_quote(d / "bad.gguf"), "info " + testutil::shell_quote(d / "nope.gguf"),
        "predict " + testutil::shell_quote(testutil::stories260k()) + " --ids 1,99999",
        "predict " + testutil::shell_quote(testutil::stories260k()) + " --ids 1,x",
        "predict " + testutil::shell_quote(testutil::stories260k()) + " --prompt ''",
        "predict " + testutil::shell_quote(testutil::stories260k()) + " --prompt \"$(printf '\\377\\376')\"",
        "tokenize " + testutil::shell_quote(testutil::data("models/llama")) + " hello"}) {
    auto r = testutil::run_cli(args);
    INFO(args << "\nstderr: " << r.err);
    CHECK(r.code == 1);
    CHECK(r.err.rfind("headscope: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.empty());
  }
}

TEST_CASE("an unknown --device, or CUDA where this build cannot use it, is one clear line", "[malformed][cli][device]") {
  const std::string model = testutil::shell_quote(testutil::stories260k());
  auto r = testutil::run_cli("predict " + model + " --ids 1,2 --device tpu");
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: unknown device 'tpu' (known: cpu, cuda, cuda:N)\n");
  const std::string why = headscope::device_unavailable(headscope::parse_device("cuda"));
  if (!why.empty()) {
    r = testutil::run_cli("predict " + model + " --ids 1,2 --device cuda");
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(r.err == "headscope: error: cannot compute on cuda:0: " + why + "\n");
    CHECK(r.out.empty());
  }
  r = testutil::run_cli("predict " + model + " --ids 1,2 --device cpu --json");
  CHECK(r.code == 0);
}

TEST_CASE("bad options, specs and prompt files give one headscope: error: line naming what is wrong", "[malformed][cli]") {
  testutil::TempDir d;
  const std::string m = testutil::shell_quote(testutil::stories260k());
  auto spec = [&](const std::string& name, const std::string& json) {
    write_file(d / name, json);
    return "ablate " + m + " --prompt 'Once upon a time' --spec " + (d / name);
  };
  write_file(d / "nul.json", "{\"text\": \"before\\u0000after\"}\n");
  write_file(d / "bad.txt", "a fine line\n\xff not UTF-8\n");
  write_file(d / "ok.txt", "Once upon a time\n");
  write_file(d / "nul.txt", std::string("fine\nbefore\0after\n", 19));
  write_file(d / "deep.json", std::string(100000, '[') + std::string(100000, ']'));
  // A line of about 3,000 tokens (stories260K's context is 2,048) after a short one, and one line of 1 MB.
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "Once upon a time there was a cat. ";
  write_file(d / "long.txt", "Hi\n" + long_text + "\n");
  std::string megabyte;
  while (megabyte.size() < (1 << 20)) megabyte += "the cat sat on a mat and then went home ";
  write_file(d / "mega.txt", megabyte + "\n");
  // A steer at position 7 and a logit bias on key 9, against a 9-token prompt and "Hi" (3 tokens).
  write_file(d / "three.txt", "Once upon a time there was a cat\nHi\n");
  nlohmann::json steer = nlohmann::json::array({{{"type", "steer"}, {"layers", {1}}, {"positions", {7}}, {"vector", std::vector<float>(64, 0.1f)}}});
  write_file(d / "steer.json", steer.dump());
  write_file(d / "bias.json", R"([{"type": "attn_bias", "heads": ["1.1"], "keys": [0, 9], "bias": -2}])");
  const std::string rec = "record " + m + " -o " + (d / "r.h5") + " --data ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"info " + m + " --threads abc", "Could not convert: --threads = abc"},
      {"info " + m + " --threads 100000", "threads must be between 1 and "},
      {"info " + m + " --threads -2", "threads must be between 1 and "},
      {"record " + m + " -o " + (d / "r.h5"), "--data is required"},
      {"record " + m + " --data " + (d / "ok.txt") + " -o " + (d / "r.h5") + " --part-items abc", "--part-items"},
      {"ablate " + m + " --prompt 'Once' --heads 1.2 --mode scale=nan", "scale=F needs a finite number, not 'nan'"},
      {"ablate " + m + " --prompt 'Once' --heads 1.2 --mode scale=0.5x", "scale=F needs a finite number, not '0.5x'"},
      {"ablate " + m + " --prompt 'Once' --heads ' 1.2'", "' 1.2' is not a head"},
      {"ablate " + m + " --prompt 'Once' --heads '1.2 '", "'1.2 ' is not a head"},
      {spec("s1.json", "[5]"), "intervention 0: expected an object with a \"type\", got a number"},
      {spec("s2.json", "[\"ablate\"]"), "intervention 0: expected an object with a \"type\", got a string"},
      {spec("s3.json", "[{\"type\": 5}]"), "intervention 0: needs a \"type\" string"},
      {spec("s4.json", "[{\"type\": \"uniform\", \"heads\": [\"1.1\"]}, {\"type\": \"ablate\", \"heads\": {\"a\": 1}}]"),
       "intervention 1 (ablate): needs \"heads\", a list of \"L.H\" strings"},
      {spec("s5.json", "[{\"type\": \"uniform\", \"heads\": \"1.1\"}]"), "intervention 0 (uniform): needs \"heads\""},
      {spec("s6.json", "[{\"type\": \"attn_bias\", \"heads\": [\"1.1\"], \"keys\": [0], \"bias\": 1e39}]"),
       "intervention 0 (attn_bias): \"bias\" must be a finite number"},
      {spec("s7.json", "[{\"type\": \"scale\", \"heads\": [\"1.1\"], \"factor\": \"x\"}]"),
       "intervention 0 (scale): \"factor\" must be a finite number, not \"x\""},
      {"record " + m + " --data " + (d / "nul.json") + " -o " + (d / "r.h5"), "nul.json:1: the text holds a NUL character"},
      {"record " + m + " --data " + (d / "bad.txt") + " -o " + (d / "r.h5"), "bad.txt:2: the text is not valid UTF-8"},
      {"record " + m + " --data " + d.path.string() + " -o " + (d / "r.h5"), ": is a folder; give a prompt file"},
      {"record " + m + " --data " + (d / "ok.txt") + " -o " + (d / "r.h5") + " --hooks blocks.1.hook_resid_post,blocks.1.hook_resid_post",
       "hook blocks.1.hook_resid_post is listed twice"},
      {rec + (d / "ok.txt") + " --threads 100000", "threads must be between 1 and "},
      {rec + (d / "nul.txt"), "nul.txt:2: the text holds a NUL character"},
      {"ablate " + m + " --prompt 'Once upon a time' --spec " + (d / "deep.json"), "intervention 0: expected an object with a \"type\", got an array"},
      {rec + (d / "nope.txt"), "nope.txt: cannot open"},
      {"ablate " + m + " --prompt 'Once' --heads 1.2 --mode scale=inf", "scale=F needs a finite number, not 'inf'"},
      {"ablate " + m + " --prompt 'Once' --heads 1.2 --mode scale=1e30", "scale=F needs a factor within ±1e6, not '1e30'"},
      // Lenient parsing, now strict.
      {rec + (d / "ok.txt") + " --heads ''", "--heads: no heads given"},
      {rec + (d / "ok.txt") + " --part-items 0", "--part-items: must be a positive integer, not '0'"},
      {rec + (d / "ok.txt") + " --part-items -5", "--part-items: must be a positive integer, not '-5'"},
      {rec + (d / "ok.txt") + " --heads 1.1 --spec " + (d / "bias.json"), "excludes"},
      {rec + (d / "ok.txt") + " --mode mean", "--mode requires --heads"},
      {rec + (d / "ok.txt") + " --force --resume", "--force excludes --resume"},
      {"predict " + m + " --ids 1,2 --prompt Hi", "--prompt excludes --ids"},
      {"predict " + m + " --ids 1,2 --max-tokens 0", "--max-tokens: must be a positive integer, not '0'"},
      // Positions are checked against every prompt before the run file is created, naming the prompt.
      {rec + (d / "three.txt") + " --spec " + (d / "steer.json"),
       "prompt 2: intervention 0 (steer): position 7 is outside the prompt's 3 tokens (valid: -3..2)"},
      {rec + (d / "three.txt") + " --spec " + (d / "bias.json"),
       "prompt 2: intervention 0 (attn_bias): key 9 is outside the prompt's 3 tokens (valid: -3..2)"},
      {"ablate " + m + " --prompt Hi --spec " + (d / "bias.json"), "intervention 0 (attn_bias): key 9 is outside the prompt's 3 tokens"},
      // Prompts longer than the context: the numbers and the two ways on.
      {rec + (d / "long.txt"), "prompt 2 has 3"},
      {rec + (d / "long.txt"), " tokens, more than this model's context of 2048 tokens; pass --max-tokens N to keep the first N "
                               "tokens, or --allow-beyond-context to run past the context (extrapolation)"},
      {rec + (d / "mega.txt"), "prompt 1 has 445657 tokens, more than this model's context of 2048 tokens"},
      {"attn " + m + " --stats --prompt '" + long_text + "'", "the prompt has 3"},
      {"ablate " + m + " --heads 1.1 --prompt '" + long_text + "'", "more than this model's context of 2048 tokens"},
      {"generate " + m + " --prompt 'Once upon a time' -n 2044", "the prompt has 5 tokens + 2044 to generate, more than this model's context of 2048"},
  };
  for (const auto& [args, expect] : cases) {
    auto r = testutil::run_cli(args);
    INFO(args << "\nstderr: " << r.err);
    CHECK(r.code == 1);
    CHECK(r.err.rfind("headscope: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(expect) != std::string::npos);
    CHECK(r.out.empty());
  }
  CHECK_FALSE(fs::exists(d / "r.h5"));  // nothing was written by any of them
}

TEST_CASE("a .json prompt file is read as JSONL, as the docs say", "[malformed][datasets]") {
  testutil::TempDir d;
  write_file(d / "p.json", "{\"text\": \"Once upon a time\", \"meta\": {\"i\": 1}}\n{\"text\": \"Lily saw a bird.\"}\n");
  auto r = testutil::run_cli("record " + testutil::shell_quote(testutil::stories260k()) + " --data " + (d / "p.json") + " -o " +
                             (d / "r.h5") + " --stats entropy --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  headscope::RunReader run(d / "r.h5");
  REQUIRE(run.n_items() == 2);
  CHECK(run.text(0) == "Once upon a time");
  CHECK(run.meta(0)["i"] == 1);
  CHECK(run.text(1) == "Lily saw a bird.");
}

TEST_CASE("prompts longer than the context: --max-tokens keeps the first N, --allow-beyond-context runs them", "[malformed][context]") {
  testutil::TempDir d;
  const std::string m = testutil::shell_quote(testutil::stories260k());
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "Once upon a time there was a cat. ";
  write_file(d / "p.txt", "Hi\n" + long_text + "\n");
  auto model = Model::load(testutil::stories260k());
  const std::vector<int32_t> full = model->tokenizer().encode(long_text);
  REQUIRE(full.size() > 2048);
  auto r = testutil::run_cli("record " + m + " --data " + (d / "p.txt") + " -o " + (d / "r.h5") + " --max-tokens 100 --stats entropy");
  INFO(r.err);
  REQUIRE(r.code == 0);
  RunReader run(d / "r.h5");
  CHECK(run.tokens(0) == model->tokenizer().encode("Hi"));  // shorter prompts are left alone
  CHECK(run.tokens(1) == std::vector<int32_t>(full.begin(), full.begin() + 100));
  CHECK(run.stat("entropy", 1).size(0) == 100);
  CHECK(run.text(1) == long_text);  // the text as given; its first 100 tokens were recorded
  // Past the context on a rotary model: it runs, and its first 2,048 positions match the truncated run exactly
  // (causal attention: later tokens cannot change earlier rows).
  r = testutil::run_cli("predict " + m + " --prompt '" + long_text + "' --allow-beyond-context --all-positions --top-k 1 --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto beyond = nlohmann::json::parse(r.out);
  CHECK(beyond["positions"].size() == full.size());
  r = testutil::run_cli("predict " + m + " --prompt '" + long_text + "' --max-tokens 2048 --all-positions --top-k 1 --json");
  REQUIRE(r.code == 0);
  auto within = nlohmann::json::parse(r.out);
  REQUIRE(within["positions"].size() == 2048);
  for (size_t t : {size_t(0), size_t(1000), size_t(2047)})
    CHECK(within["positions"][t]["top"][0]["id"] == beyond["positions"][t]["top"][0]["id"]);

  // Learned positions (GPT-2) cannot run past the context: only truncation is offered.
  ModelConfig gpt2;
  gpt2.context = 8, gpt2.learned_positions = true;
  std::vector<int32_t> ids(10, 1);
  try {
    fit_context(gpt2, ids, ContextPolicy{0, true}, "prompt 4");
    FAIL("a GPT-2 prompt past its learned positions was accepted");
  } catch (const ChoiceError& e) {
    CHECK(std::string(e.what()) == "prompt 4 has 10 tokens, more than this model's 8 learned positions (it cannot run past them)");
    CHECK(e.remedy == ChoiceError::Remedy::truncate);
  }
  fit_context(gpt2, ids, ContextPolicy{8, false}, "prompt 4");
  CHECK(ids.size() == 8);
}

TEST_CASE("SmolLM2 refuses a 9,000-token prompt with its context of 8,192", "[malformed][context]") {
  const std::string smol = testutil::smollm2();
  if (smol.empty()) HS_SKIP(testutil::not_downloaded("SmolLM2-135M-Instruct.Q4_1.gguf"));
  auto r = testutil::run_cli("attn " + testutil::shell_quote(smol) + " --stats --random-tokens 9000");
  CHECK(r.code == 1);
  CHECK(r.err == "headscope: error: the random prompt has 9000 tokens, more than this model's context of 8192 tokens; pass "
                 "--max-tokens N to keep the first N tokens, or --allow-beyond-context to run past the context (extrapolation)\n");
}
