// The HDF5 run file: what a batch job records about every head over many prompts, readable from C++ (RunReader)
// and from Python with plain h5py. Per-token arrays of all items are stored end to end ("ragged" layout);
// /items/offset and /items/length give each item's rows. run_writer.h writes it so that it survives SIGKILL.
//
// Schema (schema_version 3):
//   bytes 0..511        a checksum block (store/h5util.h): the length and SHA-256 of the rest of the file, which
//                       readers check before HDF5 reads anything; HDF5 and h5py see it as the file's userblock
//   /                   attrs schema_version, headscope_version, created, command_line, run_id,
//                       status ("recording": interrupted or in progress | "complete"),
//                       settings (JSON: checkpoint, items digest, arrays, intervention spec, …; --resume checks it),
//                       spec (the intervention spec, JSON; "[]" for none), items_per_part
//   /model              attrs path, family, architecture, config (JSON), checkpoint_sha256
//   /items/text         vlen UTF-8 string [N]      /items/meta  vlen string [N] (JSON)
//   /items/offset       int64 [N]  first row of the item in /tokens, /stats/*, /acts/*
//   /items/length       int32 [N]  its number of tokens
//   /items/recorded     uint8 [N]  1 once the item's arrays are in the file (0: not recorded yet)
//   /tokens             int32 [rows]                              attrs units="token id"
//   /stats/<name>       float32 or int32 [rows, L, H]             attrs units, shape="[token, layer, head]"
//   /acts/<hook name>   float32 [rows, ...] (e.g. blocks.3.attn.hook_z: [rows, H, d_head])   attrs units, shape
//   /probes/<name>/     written by `score`: attrs params, rank_by, summary (JSON each), items (JSON: the run's
//                       item numbers of this probe's items)
//     scores/<score>    float64 [L, H], combined over the probe's items
//     heads/<value>     float64 [N, L, H]  per item (attr rows="item"; NaN for other probes' items)
//     tokens/<value>    float64 [rows]     per token, like /stats (NaN outside this probe's items)
//     scalars/<value>   float64 [N]        per item
//   /parts/NNNNNN/...   the stored arrays of part N (consecutive items), chunked, shuffle + gzip
// /items/recorded, /stats/* and /acts/* are HDF5 virtual datasets over /parts (h5py and every HDF5 ≥ 1.10 reader
// see plain arrays); rows of items not recorded read as NaN (int32: -1). While a job runs, the parts are
// separate files in "<run>.parts/", each renamed into place when complete, and the virtual datasets point there;
// the finished job copies them into the run file (compressed chunks, copied raw) and removes the folder.
// Schema 2 files (no checksum block) are refused with their schema named: record them again.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/probe_result.h"

namespace headscope {

constexpr int kRunSchemaVersion = 3;  // 3: a checksum block before the HDF5 data (store/h5util.h)

class RunReader {
 public:
  // Every method throws one Error naming the file when it is not a run file or is damaged (truncated, changed
  // bytes): never HDF5's own stack, never a crash for the damage HDF5's checksums and the reader's checks catch.
  explicit RunReader(const std::string& path);  // throws Error when it is not a headscope run file
  ~RunReader();
  nlohmann::json header() const;                 // root and /model attributes
  std::string status() const;                    // "complete" or "recording"
  int64_t n_items() const;                       // items planned
  int64_t n_recorded() const;
  int64_t n_tokens() const;                      // rows of /tokens: all items' tokens
  bool recorded(int64_t item) const;
  std::vector<std::string> stat_names() const;   // under /stats
  std::vector<std::string> act_names() const;    // hook names under /acts
  std::string text(int64_t item) const;
  nlohmann::json meta(int64_t item) const;
  std::vector<int32_t> tokens(int64_t item) const;
  int64_t length(int64_t item) const;            // its number of tokens (/items/length), without reading them
  at::Tensor stat(const std::string& name, int64_t item) const;  // [T, L, H]
  at::Tensor act(const std::string& hook, int64_t item) const;   // [T, ...]
  // Any array by its path ("stats/entropy", "acts/blocks.0.hook_resid_post", "probes/sinks/heads/alpha"): the
  // item's rows of a per-token array, its one row of a per-item array (float32, int32 or float64 as stored);
  // Error for an item that is not recorded.
  at::Tensor array(const std::string& path, int64_t item) const;
  // Probe results (`score`), complete runs only: names under /probes, and one probe's combined results with
  // every item's values read back.
  std::vector<std::string> probe_names() const;
  ProbeResult probe(const std::string& name) const;

  struct Impl;

 private:
  nlohmann::json read_header() const;
  std::unique_ptr<Impl> impl_;
};

// sha256, hex: of a file's bytes (for /model checkpoint_sha256) and of a byte string.
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);

}  // namespace headscope
