// The HDF5 run file: `headscope record` writes it, RunReader reads back exactly what a direct forward computes,
// Debian's python3-h5py opens it with the same shapes, dtypes and values; a job killed with SIGKILL at random
// moments leaves a file that opens with every committed item, and --resume completes it bit for bit; a full
// disk (a file size limit) and bad paths give clear errors and lose nothing.
#include <ATen/ATen.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "hooks/hooks.h"
#include "core/error.h"
#include "model/model.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

namespace {

bool have_h5py() { return std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") == 0; }

std::string model_arg() { return testutil::shell_quote(testutil::stories260k()); }

// A prompt set of `n` items whose lengths vary from a few to ~200 tokens.
void write_prompts(const std::string& path, int n) {
  const char* sentences[] = {"Once upon a time there was a little cat.", "The dog ran to the park and played with a red ball.",
                             "Lily saw a big bird in the tree.", "Tom was sad because his toy was broken.",
                             "They went home and ate soup with mom."};
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int r = 0; r < 1 + (i * 7) % 19; ++r) text += std::string(r ? " " : "") + sentences[(i + r) % 5];
    out << "{\"text\": \"" << text << "\", \"meta\": {\"id\": " << i << "}}\n";
  }
}

// Every recorded item of `got` equals the same item of `ref` bit for bit (all items when `all`).
void require_same(const RunReader& got, const RunReader& ref, bool all) {
  REQUIRE(got.n_items() == ref.n_items());
  REQUIRE(got.stat_names() == ref.stat_names());
  REQUIRE(got.act_names() == ref.act_names());
  for (int64_t i = 0; i < ref.n_items(); ++i) {
    REQUIRE(got.text(i) == ref.text(i));
    REQUIRE(got.meta(i) == ref.meta(i));
    REQUIRE(got.tokens(i) == ref.tokens(i));
    if (!got.recorded(i)) {
      REQUIRE_FALSE(all);
      continue;
    }
    for (const std::string& s : ref.stat_names()) REQUIRE(at::equal(got.stat(s, i), ref.stat(s, i)));
    for (const std::string& h : ref.act_names()) REQUIRE(at::equal(got.act(h, i), ref.act(h, i)));
  }
}

// The largest "k" of the "[k/N items recorded]" and "k of N items already recorded" lines on stderr.
int64_t reported_committed(const std::string& err) {
  static const std::regex re(R"((\d+)(?:/\d+ items recorded| of \d+ items already recorded))");
  int64_t best = 0;
  for (auto it = std::sregex_iterator(err.begin(), err.end(), re); it != std::sregex_iterator(); ++it)
    best = std::max<int64_t>(best, std::stoll((*it)[1]));
  return best;
}

using testutil::slurp;

// Starts the CLI in the background (stdout discarded, stderr to `err_path`); the pid is the CLI's own.
pid_t spawn_cli(const std::string& args, const std::string& err_path) {
  const std::string cmd = "exec " + std::string(HEADSCOPE_CLI) + " " + args + " >/dev/null 2>" + err_path + " </dev/null";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Starts the CLI, sends SIGKILL after `delay`, returns its stderr (or lets it finish if it is faster).
std::string run_and_kill(const std::string& args, std::chrono::microseconds delay, const std::string& err_path) {
  const pid_t pid = spawn_cli(args, err_path);
  std::this_thread::sleep_for(delay);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return slurp(err_path);
}

// Starts the CLI and sends SIGKILL `extra` after its stderr first reports at least `target` committed items (or
// lets it finish, if it ends first); returns its stderr.
std::string run_and_kill_after(const std::string& args, int64_t target, std::chrono::microseconds extra, const std::string& err_path) {
  const pid_t pid = spawn_cli(args, err_path);
  while (reported_committed(slurp(err_path)) < target) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return slurp(err_path);
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  std::this_thread::sleep_for(extra);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return slurp(err_path);
}

}  // namespace

TEST_CASE("record writes a run file that the C++ reader and h5py both read back exactly", "[store]") {
  testutil::TempDir d;
  const std::string model = testutil::stories260k();
  // Every item has meta, the last one included; one has a non-ASCII text and nested meta.
  std::ofstream(d / "p.jsonl") << "{\"text\": \"Once upon a time there was a cat.\", \"meta\": {\"id\": 7}}\n"
                                  "{\"text\": \"The dog ran to the park and played with a ball.\", \"meta\": {\"id\": 8, \"tags\": [\"a\", 2]}}\n"
                                  "{\"text\": \"Lily saw a bird. Caf\\u00e9!\", \"meta\": {\"id\": 9, \"src\": {\"k\": null}}}\n";
  auto r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.jsonl") + " -o " + (d / "run.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_FALSE(std::filesystem::exists(d / "run.h5.parts"));  // copied into the run file, folder removed
  RunReader reader(d / "run.h5");
  REQUIRE(reader.n_items() == 3);
  CHECK(reader.n_recorded() == 3);
  CHECK(reader.status() == "complete");
  auto h = reader.header();
  CHECK(h["schema_version"] == 3);
  CHECK(h["model"]["checkpoint_sha256"].get<std::string>().size() == 64);
  // The file's items against the input file itself: text, meta (the last item's too) and the tokenizer's ids.
  auto m = Model::load(model);
  {
    std::ifstream in(d / "p.jsonl");
    std::string line;
    int64_t i = 0;
    for (; std::getline(in, line); ++i) {
      auto item = nlohmann::json::parse(line);
      INFO("item " << i);
      CHECK(reader.text(i) == item["text"].get<std::string>());
      CHECK(reader.meta(i) == item["meta"]);
      CHECK(reader.tokens(i) == m->tokenizer().encode(item["text"].get<std::string>()));
    }
    CHECK(i == reader.n_items());
  }
  // Independent path: the same forward through the library, statistics compared bit for bit.
  AttnRecord rec;
  rec.stats = true;
  auto ids = m->tokenizer().encode("The dog ran to the park and played with a ball.");
  CHECK(reader.tokens(1) == ids);
  ForwardResult fr = m->run(ids, rec, true);
  at::Tensor ent = reader.stat("entropy", 1), am = reader.stat("argmax", 1), kr = reader.stat("key_recv", 1);
  REQUIRE(ent.sizes() == at::IntArrayRef({static_cast<int64_t>(ids.size()), 5, 8}));
  for (int l = 0; l < 5; ++l) {
    CHECK(at::equal(ent.select(1, l).t(), fr.attn[l][kStatEntropy]));
    CHECK(at::equal(am.select(1, l).t(), fr.attn[l][kStatArgmax]));
    CHECK(at::equal(kr.select(1, l).t(), fr.attn[l][kStatKeyRecv]));
  }
  // h5py (Debian's python3-h5py; the product itself needs no Python).
  if (!have_h5py()) HS_SKIP("the h5py part: /usr/bin/python3 has no h5py (the README's setup command installs python3-h5py)");
  std::ofstream(d / "read.py") << "import h5py, hashlib, json, sys\n"
                                  "f = h5py.File(sys.argv[1], 'r')\n"
                                  "raw = open(sys.argv[1], 'rb').read()\n"
                                  "block = 'headscope checksum block\\nbytes %d\\nsha256 %s\\n' % (len(raw) - 512, hashlib.sha256(raw[512:]).hexdigest())\n"
                                  "e = f['stats/entropy']; off = int(f['items/offset'][1]); n = int(f['items/length'][1])\n"
                                  "p = f['parts/000001/stats/entropy']\n"
                                  "print(json.dumps({'shape': list(e.shape), 'dtype': str(e.dtype), 'argmax': str(f['stats/argmax'].dtype),\n"
                                  " 'virtual': e.is_virtual, 'compression': p.compression, 'shuffle': p.shuffle, 'part_rows': p.shape[0],\n"
                                  " 'n': int(f['items/length'].shape[0]), 'recorded': [int(x) for x in f['items/recorded'][:]],\n"
                                  " 'meta0': json.loads(f['items/meta'][0]), 'meta2': json.loads(f['items/meta'][2]),\n"
                                  " 'text2': f['items/text'][2].decode(),\n"
                                  " 'tokens1': [int(x) for x in f['tokens'][off:off+n]], 'units': e.attrs['units'],\n"
                                  " 'ent_1_3_2_5': float(e[off+3, 2, 5]), 'schema': int(f.attrs['schema_version']),\n"
                                  " 'status': f.attrs['status'], 'userblock': f.userblock_size,\n"
                                  " 'sealed': raw[:512] == block.encode().ljust(512, b'\\0')}))\n";
  std::string cmd = "/usr/bin/python3 " + (d / "read.py") + " " + (d / "run.h5") + " > " + (d / "out.json");
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto py = testutil::load_json(d / "out.json");
  CHECK(py["dtype"] == "float32");
  CHECK(py["argmax"] == "int32");
  CHECK(py["virtual"] == true);
  CHECK(py["compression"] == "gzip");
  CHECK(py["shuffle"] == true);
  CHECK(py["part_rows"] == ids.size());
  CHECK(py["n"] == 3);
  CHECK(py["recorded"] == nlohmann::json::array({1, 1, 1}));
  CHECK(py["schema"] == 3);
  CHECK(py["userblock"] == 512);  // the checksum block, computed again here with Python's hashlib
  CHECK(py["sealed"] == true);
  CHECK(py["status"] == "complete");
  CHECK(py["units"] == "nats");
  CHECK(py["meta0"]["id"] == 7);
  CHECK(py["meta2"] == nlohmann::json::parse(R"({"id": 9, "src": {"k": null}})"));
  CHECK(py["text2"] == "Lily saw a bird. Caf\u00e9!");
  CHECK(py["tokens1"].get<std::vector<int32_t>>() == ids);
  CHECK(py["ent_1_3_2_5"].get<float>() == ent[3][2][5].item<float>());
  int64_t total = 0;
  for (int64_t i = 0; i < 3; ++i) total += static_cast<int64_t>(reader.tokens(i).size());
  CHECK(py["shape"] == nlohmann::json::array({total, 5, 8}));
}

TEST_CASE("record --stats/--hooks/--heads: chosen statistics, activations after the intervention", "[store]") {
  testutil::TempDir d;
  std::ofstream(d / "p.txt") << "Once upon a time there was a cat.\nLily saw a bird in the big tree.\n";
  auto r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + (d / "run.h5") +
                             " --stats entropy,sink_mass --hooks blocks.1.attn.hook_z,blocks.4.hook_resid_post,unembed.hook_logits"
                             " --heads 1.2 --mode zero");
  INFO(r.err);
  REQUIRE(r.code == 0);
  RunReader reader(d / "run.h5");
  CHECK(reader.stat_names() == std::vector<std::string>{"entropy", "sink_mass"});
  CHECK(reader.act_names() == std::vector<std::string>{"blocks.1.attn.hook_z", "blocks.4.hook_resid_post", "unembed.hook_logits"});
  CHECK(reader.header()["spec"] == nlohmann::json::parse(R"([{"type":"ablate","heads":["1.2"]}])"));
  // Reference: the library forward with the head ablated through a hook written here, activations cached.
  auto m = Model::load(testutil::stories260k());
  auto ids = m->tokenizer().encode("Lily saw a bird in the big tree.");
  Hooks hooks;
  hooks.add("blocks.1.attn.hook_z", [](const at::Tensor& z, const HookContext&) {
    at::Tensor o = z.clone();
    o.select(1, 2).zero_();
    return o;
  });
  ActivationCache cache;
  cache.record(hooks, {"blocks.1.attn.hook_z", "blocks.4.hook_resid_post", "unembed.hook_logits"});
  AttnRecord rec;
  rec.stats = true;
  ForwardResult fr = m->run(ids, rec, false, &hooks);
  CHECK(at::equal(reader.act("blocks.1.attn.hook_z", 1), cache.get("blocks.1.attn.hook_z")));
  CHECK(reader.act("blocks.1.attn.hook_z", 1).select(1, 2).abs().max().item<float>() == 0.f);
  CHECK(at::equal(reader.act("blocks.4.hook_resid_post", 1), cache.get("blocks.4.hook_resid_post")));
  CHECK(at::equal(reader.act("unembed.hook_logits", 1), fr.logits));
  for (int l = 0; l < 5; ++l) CHECK(at::equal(reader.stat("sink_mass", 1).select(1, l).t(), fr.attn[l][kStatSinkMass]));
  r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + (d / "x.h5") + " --hooks blocks.9.hook_resid_post");
  CHECK(r.code == 1);
  CHECK(r.err.find("layers 0..4") != std::string::npos);
  r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + (d / "x.h5") + " --stats entropy,bogus");
  CHECK(r.code == 1);
  CHECK(r.err.find("unknown statistic 'bogus'") != std::string::npos);
}

TEST_CASE("record refuses to overwrite and reports unwritable paths in one line", "[store][cli]") {
  testutil::TempDir d;
  std::ofstream(d / "p.txt") << "Once upon a time\n";
  std::ofstream(d / "run.h5") << "precious";
  auto r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + (d / "run.h5"));
  CHECK(r.code == 1);
  CHECK(r.err.find("exists; pass --force to overwrite it, or --resume") != std::string::npos);
  r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + (d / "run.h5") + " --resume");
  CHECK(r.code == 1);
  CHECK(r.err.find("not an HDF5 file") != std::string::npos);
  CHECK(slurp(d / "run.h5") == "precious");  // nothing lost
  CHECK_FALSE(std::filesystem::exists(d / "run.h5.lock"));
  r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + (d / "no/such/dir/run.h5"));
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot create the run file") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  r = testutil::run_cli("inspect " + (d / "run.h5"));
  CHECK(r.code == 1);
  CHECK(r.err.find("not an HDF5 file") != std::string::npos);
}

TEST_CASE("record --resume checks the settings, and a complete run has nothing to resume", "[store][cli]") {
  testutil::TempDir d;
  write_prompts(d / "p.jsonl", 4);
  write_prompts(d / "q.jsonl", 5);
  const std::string base = "record " + model_arg() + " -o " + (d / "run.h5") + " --data ";
  REQUIRE(testutil::run_cli(base + (d / "p.jsonl")).code == 0);
  auto r = testutil::run_cli(base + (d / "p.jsonl") + " --resume");
  CHECK(r.code == 0);
  CHECK(r.out.find("is complete: nothing to record") != std::string::npos);
  r = testutil::run_cli(base + (d / "q.jsonl") + " --resume");  // other prompts: not silently "complete"
  CHECK(r.code == 1);
  CHECK(r.err.find("other settings") != std::string::npos);
  // An interrupted run: a file size limit of half the finished file stops the job before it completes.
  const std::string q = base + (d / "q.jsonl") + " --hooks blocks.0.hook_resid_post";
  REQUIRE(testutil::run_cli(q + " --force").code == 0);
  const auto half = std::filesystem::file_size(d / "run.h5") / 512 / 2;
  r = testutil::run_cli(q + " --force", "trap '' XFSZ; ulimit -f " + std::to_string(half) + "; exec ");
  INFO(r.err);
  REQUIRE(r.code == 1);
  CHECK(RunReader(d / "run.h5").status() == "complete");  // --force: the old run stays until the new one is complete
  REQUIRE(RunReader(d / "run.h5.replacement").status() == "recording");
  r = testutil::run_cli(base + (d / "p.jsonl") + " --resume --hooks blocks.0.hook_resid_post");
  CHECK(r.code == 1);
  CHECK(r.err.find("other settings (items, items_sha256 differ)") != std::string::npos);
  r = testutil::run_cli(base + (d / "q.jsonl") + " --resume");
  CHECK(r.code == 1);
  CHECK(r.err.find("arrays differ") != std::string::npos);
}

TEST_CASE("a full disk stops the job with a clear error, keeps every committed item, and --resume finishes", "[store][cli]") {
  testutil::TempDir d;
  // Items 0-4 are short, item 5 is long (its part is larger than the limit), items 6-7 short.
  {
    std::ofstream out(d / "p.txt");
    for (int i = 0; i < 8; ++i) {
      std::string t = "Lily saw a bird number " + std::to_string(i) + ".";
      if (i == 5)
        for (int r = 0; r < 40; ++r) t += " The dog ran to the park and played with a red ball.";
      out << t << "\n";
    }
  }
  const std::string args = "record " + model_arg() + " --data " + (d / "p.txt") + " --hooks blocks.0.hook_resid_post -o ";
  REQUIRE(testutil::run_cli(args + (d / "ref.h5")).code == 0);
  auto r = testutil::run_cli(args + (d / "run.h5"), "trap '' XFSZ; ulimit -f 400; exec ");  // 400 blocks of 512 bytes
  INFO(r.err);
  REQUIRE(r.code == 1);
  CHECK(r.err.rfind("headscope: error: ") == r.err.rfind('\n', r.err.size() - 2) + 1);  // one error line, the last
  CHECK(r.err.find("headscope: error: ") == r.err.rfind("headscope: error: "));
  CHECK(r.err.find("cannot write part 5") != std::string::npos);
  CHECK(r.err.find("File too large") != std::string::npos);  // the system's words (a full disk: "No space left on device")
  CHECK(r.err.find("keeps the 5 items recorded before it") != std::string::npos);
  CHECK(r.err.find("--resume") != std::string::npos);
  {
    RunReader got(d / "run.h5");
    CHECK(got.status() == "recording");
    CHECK(got.n_recorded() == 5);
    for (int i = 0; i < 5; ++i) CHECK(got.recorded(i));
    RunReader ref(d / "ref.h5");
    require_same(got, ref, false);
    std::string msg;
    try {
      got.stat("entropy", 6);
    } catch (const Error& e) {
      msg = e.what();
    }
    CHECK(msg.find("is not recorded yet") != std::string::npos);
  }
  r = testutil::run_cli(args + (d / "run.h5") + " --resume --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["recorded_now"] == 3);
  require_same(RunReader(d / "run.h5"), RunReader(d / "ref.h5"), true);

  // The limit between the largest part and the whole file: every part commits, the final copy fails.
  std::ofstream(d / "short.txt") << "Lily saw a bird.\nThe dog ran.\nTom was sad.\nThey went home.\nOnce upon a time.\n";
  const std::string sargs = "record " + model_arg() + " --data " + (d / "short.txt") + " -o ";
  REQUIRE(testutil::run_cli(sargs + (d / "sref.h5")).code == 0);
  const auto limit_blocks = std::filesystem::file_size(d / "sref.h5") / 512 / 2;
  r = testutil::run_cli(sargs + (d / "srun.h5"), "trap '' XFSZ; ulimit -f " + std::to_string(limit_blocks) + "; exec ");
  REQUIRE(r.code == 1);
  CHECK(r.err.find("every item is recorded, but copying the parts into one file failed") != std::string::npos);
  {
    RunReader got(d / "srun.h5");
    CHECK(got.status() == "recording");
    CHECK(got.n_recorded() == 5);
    require_same(got, RunReader(d / "sref.h5"), true);
  }
  r = testutil::run_cli(sargs + (d / "srun.h5") + " --resume --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["recorded_now"] == 0);
  CHECK(RunReader(d / "srun.h5").status() == "complete");
  CHECK_FALSE(std::filesystem::exists(d / "srun.h5.parts"));
  require_same(RunReader(d / "srun.h5"), RunReader(d / "sref.h5"), true);
}

TEST_CASE("SIGKILL at random moments: the file opens with every committed item, and --resume completes it bit for bit", "[store][cli]") {
  testutil::TempDir d;
  const int n_items = 120;
  write_prompts(d / "p.jsonl", n_items);
  const std::string args = "record " + model_arg() + " --data " + (d / "p.jsonl") + " --part-items 2 --hooks blocks.2.attn.hook_z -o ";
  // Start-up time (model load, tokenising, settings check): a resume of the complete file records nothing.
  auto r = testutil::run_cli(args + (d / "ref.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  RunReader ref(d / "ref.h5");
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(testutil::run_cli(args + (d / "ref.h5") + " --resume").code == 0);
  const auto startup = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  std::mt19937 rng(20261123);
  std::uniform_real_distribution<double> frac(0.0, 1.0);
  const bool py = have_h5py();
  int interrupted_mid_run = 0;
  int64_t before = 0;  // committed items seen so far
  for (int round = 0; round < 6; ++round) {
    // Round 0 dies at a random moment while starting (before or while the run file is created). The others die
    // while recording: a random number of items after the job has reported committing more than the file held
    // before, plus up to 3 ms (so that the kill lands in any phase of an item: forward, part write, rename).
    std::string err;
    std::string when;
    const std::string cmd = args + (d / "run.h5") + (round ? " --resume" : "");
    if (round == 0) {
      const auto delay = std::chrono::microseconds(static_cast<int64_t>(1.2 * startup.count() * frac(rng)));
      err = run_and_kill(cmd, delay, d / "err.txt");
      when = "after " + std::to_string(delay.count()) + " us";
    } else {
      const int64_t target = before + 1 + static_cast<int64_t>(frac(rng) * (n_items - before) / 4);
      const auto extra = std::chrono::microseconds(static_cast<int64_t>(3000 * frac(rng)));
      err = run_and_kill_after(cmd, target, extra, d / "err.txt");
      when = "once " + std::to_string(target) + " items were reported, plus " + std::to_string(extra.count()) + " us";
    }
    const int64_t reported = reported_committed(err);
    INFO("round " << round << ", killed " << when << "; stderr:\n" << err);
    if (!std::filesystem::exists(d / "run.h5")) {  // killed before the run file was in place: nothing committed
      REQUIRE(reported == 0);
      continue;
    }
    RunReader got(d / "run.h5");  // opens after any kill
    const int64_t n = got.n_recorded();
    CHECK(n >= reported);  // every item reported recorded is in the file
    CHECK(n >= before);    // and none committed earlier is lost
    require_same(got, ref, false);
    if (n > before && n < n_items) ++interrupted_mid_run;
    before = n;
    if (py) {
      const std::string cmd = "/usr/bin/python3 -c \"import h5py, sys; f = h5py.File(sys.argv[1], 'r'); "
                              "r = f['items/recorded'][:]; e = f['stats/entropy'][:]; print(int(r.sum()))\" " +
                              (d / "run.h5") + " > " + (d / "py.txt");
      REQUIRE(std::system(cmd.c_str()) == 0);
      CHECK(std::stoll(slurp(d / "py.txt")) == n);
    }
  }
  r = testutil::run_cli(args + (d / "run.h5") + " --resume --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  // Each item exactly once: this run recorded exactly the items the file lacked.
  CHECK(nlohmann::json::parse(r.out)["recorded_now"].get<int64_t>() == n_items - before);
  RunReader got(d / "run.h5");
  CHECK(got.status() == "complete");
  CHECK_FALSE(std::filesystem::exists(d / "run.h5.parts"));
  require_same(got, ref, true);
  CHECK_FALSE(std::filesystem::exists(d / "run.h5.lock"));
  INFO("SIGKILL rounds that interrupted a job with some but not all items committed: " << interrupted_mid_run << " of 5");
  CHECK(interrupted_mid_run >= 4);
}

TEST_CASE("a second job on the same run file is refused while the first runs", "[store][cli]") {
  testutil::TempDir d;
  write_prompts(d / "p.jsonl", 400);
  const std::string args = "record " + model_arg() + " --data " + (d / "p.jsonl") + " -o " + (d / "run.h5");
  const pid_t pid = spawn_cli(args, "/dev/null");
  // Wait until the first job has its run file, then start a second one.
  for (int i = 0; i < 3000 && !std::filesystem::exists(d / "run.h5"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  int status = 0;
  const bool still_running = waitpid(pid, &status, WNOHANG) == 0;
  auto r = testutil::run_cli(args + " --resume");
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  REQUIRE(still_running);  // 400 prompts take seconds; the run file appears at the start
  CHECK(r.code == 1);
  CHECK(r.err.find("another headscope job is writing this run file") != std::string::npos);
  // The killed job left its lock file behind, holding no lock: the job resumes, completes, and removes it.
  CHECK(std::filesystem::exists(d / "run.h5.lock"));
  r = testutil::run_cli(args + " --resume");
  CHECK(r.code == 0);
  CHECK(RunReader(d / "run.h5").status() == "complete");
  CHECK_FALSE(std::filesystem::exists(d / "run.h5.lock"));
}

TEST_CASE("record --force keeps the old run whole until the new one is complete, and a killed replacement resumes", "[store][cli]") {
  testutil::TempDir d;
  const int n_items = 120;
  write_prompts(d / "p.jsonl", n_items);
  const std::string base = "record " + model_arg() + " --data " + (d / "p.jsonl") + " --part-items 2 ";
  const std::string old_args = base + "--stats entropy -o ", new_args = base + "--stats max_prob,sink_mass -o ";
  REQUIRE(testutil::run_cli(old_args + (d / "run.h5")).code == 0);
  REQUIRE(testutil::run_cli(old_args + (d / "old.h5")).code == 0);  // the same run, to compare with
  REQUIRE(testutil::run_cli(new_args + (d / "new.h5")).code == 0);  // what the replacement must end as
  // Killed at once (while starting), then after some of its items are committed.
  for (int64_t target : {int64_t(0), int64_t(10)}) {
    const std::string err = target ? run_and_kill_after(new_args + (d / "run.h5") + " --force", target, std::chrono::microseconds(1500), d / "err.txt")
                                   : run_and_kill(new_args + (d / "run.h5") + " --force", std::chrono::milliseconds(150), d / "err.txt");
    INFO("killed once " << target << " items were reported; stderr:\n" << err);
    CHECK(reported_committed(err) >= target);
    RunReader run(d / "run.h5");
    CHECK(run.status() == "complete");
    CHECK(run.stat_names() == std::vector<std::string>{"entropy"});
    require_same(run, RunReader(d / "old.h5"), true);
  }
  CHECK(std::filesystem::exists(d / "run.h5.replacement"));
  // --resume with the new settings continues the replacement (not the old run), then puts it in place.
  auto r = testutil::run_cli(new_args + (d / "run.h5") + " --resume --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("resuming") != std::string::npos);
  CHECK(nlohmann::json::parse(r.out)["recorded_now"].get<int64_t>() <= n_items - 10);
  require_same(RunReader(d / "run.h5"), RunReader(d / "new.h5"), true);
  for (const char* left : {"run.h5.replacement", "run.h5.replacement.parts", "run.h5.replacement.new", "run.h5.parts", "run.h5.lock"})
    CHECK_FALSE(std::filesystem::exists(d / left));
  // A --force that completes replaces the run in one step.
  r = testutil::run_cli(old_args + (d / "run.h5") + " --force");
  REQUIRE(r.code == 0);
  require_same(RunReader(d / "run.h5"), RunReader(d / "old.h5"), true);
}

TEST_CASE("a job above a million tokens warns with its size before it starts", "[store][cli]") {
  testutil::TempDir d;
  std::string line;  // 1,996 tokens on stories260K
  for (int i = 0; i < 95; ++i) line += std::string(i ? " " : "") + "Once upon a time there was a little girl named Lily who liked to play.";
  {
    std::ofstream out(d / "p.txt");
    for (int i = 0; i < 505; ++i) out << line << "\n";
  }
  const pid_t pid = spawn_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + (d / "run.h5"), d / "err.txt");
  std::string err;
  for (int i = 0; i < 1200 && err.find("items recorded]") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    err = slurp(d / "err.txt");
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  INFO(err);
  // 505 x 1,996 tokens; each token holds 8 statistics x 5 layers x 8 heads x 4 bytes.
  char expect[200];
  std::snprintf(expect, sizeof expect, "headscope: warning: 505 items, 1007980 tokens to record, about %.1f GiB of arrays before compression",
                1007980.0 * 8 * 5 * 8 * 4 / (1 << 30));
  CHECK(err.rfind(expect, 0) == 0);
}

TEST_CASE("run file names with % work, and the last progress line says every item is recorded", "[store][cli]") {
  testutil::TempDir d;
  std::ofstream(d / "p.txt") << "Once upon a time there was a cat.\nLily saw a bird.\n";
  for (const std::string name : {"run%b.h5", "100%.h5", "a%%d%s.h5"}) {
    auto r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.txt") + " -o " + testutil::shell_quote(d / name));
    INFO(name << "\n" << r.err);
    REQUIRE(r.code == 0);
    RunReader run(d / name);
    CHECK(run.status() == "complete");
    CHECK(run.n_recorded() == 2);
    CHECK(run.stat("entropy", 1).size(0) == static_cast<int64_t>(run.tokens(1).size()));
    // Progress lines (stderr is not a terminal: one per line); the last one reports both items committed.
    const size_t last = r.err.rfind("items recorded]");
    REQUIRE(last != std::string::npos);
    CHECK(r.err.substr(r.err.rfind('[', last), last - r.err.rfind('[', last)) == "[2/2 ");
  }
}

TEST_CASE("inspect on HDF5 files that are not complete run files names the file and what is wrong", "[store][cli]") {
  if (!have_h5py()) HS_SKIP("/usr/bin/python3 has no h5py (the README's setup command installs python3-h5py)");
  testutil::TempDir d;
  const std::string py = "/usr/bin/python3 -c \"import h5py, sys; "
                         "f = h5py.File(sys.argv[1], 'w'); f.attrs['schema_version'] = 3; "
                         "g = h5py.File(sys.argv[2], 'w'); g.attrs['schema_version'] = 'two'\" " +
                         (d / "only.h5") + " " + (d / "two.h5");
  REQUIRE(std::system(py.c_str()) == 0);
  const std::pair<std::string, std::string> cases[] = {
      {"only.h5", "only.h5: not a headscope run file, or damaged (it has no checksum block"},
      {"two.h5", "two.h5: not a headscope run file (its schema_version is not an integer)"},
  };
  for (const auto& [file, expect] : cases) {
    auto r = testutil::run_cli("inspect " + (d / file));
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(r.err.rfind("headscope: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(expect) != std::string::npos);
  }
}

TEST_CASE("a damaged run file (truncated, bytes flipped) gives one line naming it, never a crash", "[store][corrupt]") {
  testutil::TempDir d;
  std::ofstream(d / "p.jsonl") << "{\"text\": \"Once upon a time there was a cat.\", \"meta\": {\"id\": 1}}\n"
                                  "{\"text\": \"Lily saw a big bird in the tree.\"}\n{\"text\": \"Tom was sad.\"}\n";
  auto r = testutil::run_cli("record " + model_arg() + " --data " + (d / "p.jsonl") + " -o " + (d / "run.h5") +
                             " --stats entropy,argmax --hooks blocks.1.hook_resid_post");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const std::string good = slurp(d / "run.h5");
  REQUIRE(good.size() > 10000);
  const std::string bad = d / "bad.h5";
  // Opens `bytes` as a run file and reads every part of it; returns "" or the error's message.
  auto read_all = [&](const std::string& bytes) -> std::string {
    std::ofstream(bad, std::ios::binary | std::ios::trunc) << bytes;
    try {
      RunReader run(bad);
      (void)run.header(), (void)run.status(), (void)run.n_tokens(), (void)run.n_recorded();
      for (const std::string& s : run.stat_names())
        for (int64_t i = 0; i < run.n_items(); ++i) (void)run.stat(s, i);
      for (const std::string& h : run.act_names())
        for (int64_t i = 0; i < run.n_items(); ++i) (void)run.act(h, i);
      for (int64_t i = 0; i < run.n_items(); ++i) (void)run.text(i), (void)run.meta(i), (void)run.tokens(i), (void)run.recorded(i);
    } catch (const headscope::Error& e) {
      return e.what();
    }
    return "";
  };
  int refused = 0, read = 0;
  auto check = [&](const std::string& bytes, const std::string& what) {
    const std::string msg = read_all(bytes);
    INFO(what << ": " << msg);
    if (msg.empty()) return void(++read);
    ++refused;
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(msg.find("bad.h5") != std::string::npos);
  };
  // Truncations: every 1/64 of the file, and the first bytes.
  for (size_t cut : {size_t(0), size_t(7), size_t(100), size_t(1000)}) check(good.substr(0, cut), "cut at " + std::to_string(cut));
  for (int k = 1; k < 64; ++k) check(good.substr(0, good.size() * k / 64), "cut at " + std::to_string(good.size() * k / 64));
  // Flipped bytes: 400 copies with 1 to 8 random bytes changed anywhere in the file.
  std::mt19937 rng(20261130);
  for (int n = 0; n < 400; ++n) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 8);
    std::string where;
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % b.size();
      b[at] = static_cast<char>(b[at] ^ (1 + rng() % 255));
      where += " " + std::to_string(at);
    }
    check(b, "bytes flipped at" + where);
  }
  // The checksum block catches every one of them before HDF5 reads the file (HDF5 1.10 crashed on some flips in
  // its global heap, which it does not checksum).
  INFO("read " << read << ", refused " << refused);
  CHECK(refused == 4 + 63 + 400);
  // Through the CLI: one headscope: error: line for a truncated file.
  std::ofstream(bad, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() / 2);
  r = testutil::run_cli("inspect " + bad);
  CHECK(r.code == 1);
  CHECK(r.err.rfind("headscope: error: " + bad, 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}
