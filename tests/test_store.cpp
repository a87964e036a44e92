// The HDF5 run file: `headscope record` writes it, RunReader reads back exactly the statistics a direct forward
// computes, Debian's python3-h5py opens it with the same shapes, dtypes and values, and bad output paths give
// clear errors.
#include <ATen/ATen.h>

#include <fstream>

#include "model/model.h"
#include "store/run_file.h"
#include "test_helpers.h"
#include "testing.h"

using namespace headscope;

TEST_CASE("record writes a run file that the C++ reader and h5py both read back exactly", "[store]") {
  testutil::TempDir d;
  const std::string model = testutil::stories260k();
  std::ofstream(d / "p.jsonl") << "{\"text\": \"Once upon a time there was a cat.\", \"meta\": {\"id\": 7}}\n"
                                  "{\"text\": \"The dog ran to the park and played with a ball.\"}\n"
                                  "{\"text\": \"Lily saw a bird.\"}\n";
  auto r = testutil::run_cli("record " + testutil::shell_quote(model) + " --data " + (d / "p.jsonl") + " -o " + (d / "run.h5"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  RunReader reader(d / "run.h5");
  REQUIRE(reader.n_items() == 3);
  auto h = reader.header();
  CHECK(h["schema_version"] == 1);
  CHECK(h["model"]["checkpoint_sha256"].get<std::string>().size() == 64);
  // Independent path: the same forward through the library, statistics compared bit for bit.
  auto m = Model::load(model);
  AttnRecord rec;
  rec.stats = true;
  auto ids = m->tokenizer().encode("The dog ran to the park and played with a ball.");
  CHECK(reader.tokens(1) == ids);
  CHECK(reader.text(1) == "The dog ran to the park and played with a ball.");
  ForwardResult fr = m->run(ids, rec, true);
  at::Tensor ent = reader.stat("entropy", 1), am = reader.stat("argmax", 1);
  REQUIRE(ent.sizes() == at::IntArrayRef({static_cast<int64_t>(ids.size()), 5, 8}));
  for (int l = 0; l < 5; ++l) {
    CHECK(at::equal(ent.select(1, l).t(), fr.attn[l].entropy));
    CHECK(at::equal(am.select(1, l).t(), fr.attn[l].argmax));
  }
  // h5py (Debian's python3-h5py; the product itself needs no Python).
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) {
    WARN("SKIPPED h5py part: /usr/bin/python3 has no h5py (the README's setup command installs python3-h5py)");
    return;
  }
  std::ofstream(d / "read.py") << "import h5py, json, sys\n"
                                  "f = h5py.File(sys.argv[1], 'r')\n"
                                  "e = f['stats/entropy']; off = int(f['items/offset'][1]); n = int(f['items/length'][1])\n"
                                  "print(json.dumps({'shape': list(e.shape), 'dtype': str(e.dtype), 'argmax': str(f['stats/argmax'].dtype),\n"
                                  " 'compression': e.compression, 'shuffle': e.shuffle, 'n': int(f['items/length'].shape[0]),\n"
                                  " 'meta0': json.loads(f['items/meta'][0]), 'text2': f['items/text'][2].decode(),\n"
                                  " 'tokens1': [int(x) for x in f['tokens'][off:off+n]],\n"
                                  " 'ent_1_3_2_5': float(e[off+3, 2, 5]), 'schema': int(f.attrs['schema_version'])}))\n";
  std::string cmd = "/usr/bin/python3 " + (d / "read.py") + " " + (d / "run.h5") + " > " + (d / "out.json");
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto py = testutil::load_json(d / "out.json");
  CHECK(py["dtype"] == "float32");
  CHECK(py["argmax"] == "int32");
  CHECK(py["compression"] == "gzip");
  CHECK(py["shuffle"] == true);
  CHECK(py["n"] == 3);
  CHECK(py["schema"] == 1);
  CHECK(py["meta0"]["id"] == 7);
  CHECK(py["text2"] == "Lily saw a bird.");
  CHECK(py["tokens1"].get<std::vector<int32_t>>() == ids);
  CHECK(py["ent_1_3_2_5"].get<float>() == ent[3][2][5].item<float>());
  int64_t total = 0;
  for (int64_t i = 0; i < 3; ++i) total += static_cast<int64_t>(reader.tokens(i).size());
  CHECK(py["shape"] == nlohmann::json::array({total, 5, 8}));
}

TEST_CASE("record refuses to overwrite and reports unwritable paths in one line", "[store][cli]") {
  testutil::TempDir d;
  const std::string model = testutil::shell_quote(testutil::stories260k());
  std::ofstream(d / "p.txt") << "Once upon a time\n";
  std::ofstream(d / "run.h5") << "precious";
  auto r = testutil::run_cli("record " + model + " --data " + (d / "p.txt") + " -o " + (d / "run.h5"));
  CHECK(r.code == 1);
  CHECK(r.err.find("exists; pass --force") != std::string::npos);
  std::ifstream in(d / "run.h5");
  std::string kept((std::istreambuf_iterator<char>(in)), {});
  CHECK(kept == "precious");  // nothing lost
  r = testutil::run_cli("record " + model + " --data " + (d / "p.txt") + " -o " + (d / "no/such/dir/run.h5"));
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot create the run file") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  r = testutil::run_cli("inspect " + (d / "run.h5"));
  CHECK(r.code == 1);
  CHECK(r.err.find("not an HDF5 file") != std::string::npos);
}
