// The HDF5 run file: what a batch job records about every head over many prompts, readable from C++ (RunReader)
// and from Python with plain h5py. Items are appended by a background writer thread; per-token arrays of all
// items are stored end to end ("ragged" layout) with /items/offset and /items/length giving each item's rows.
//
// Schema (schema_version 1):
//   /                 attrs schema_version, headscope_version, created, command_line
//   /model            attrs path, family, architecture, config (JSON), checkpoint_sha256
//   /items/text       vlen UTF-8 string [N]        /items/meta  vlen string [N] (JSON)
//   /items/offset     int64 [N]   first row of the item in /tokens and /stats/*
//   /items/length     int32 [N]   its number of tokens
//   /tokens           int32 [rows]                  attrs units="token id"
//   /stats/<name>     float32 or int32 [rows, L, H] attrs units, shape="[token, layer, head]"
// Every dataset is chunked and extendable, compressed with shuffle + gzip (filters h5py reads as is).
#pragma once
#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "model/transformer.h"

namespace headscope {

struct RunHeader {
  std::string command_line;
  nlohmann::json model;  // path, family, architecture, config, checkpoint_sha256
};

struct RunItem {
  std::string text;
  nlohmann::json meta;
  std::vector<int32_t> tokens;
  std::map<std::string, at::Tensor> stats;  // each [T, L, H], float32 or int32
};

class RunWriter {
 public:
  // Creates `path`; an existing file is an Error unless `overwrite`.
  RunWriter(const std::string& path, const RunHeader& header, bool overwrite);
  ~RunWriter();  // waits for queued items, closes the file
  void append(RunItem item);  // queued; the writer thread writes it (errors surface on the next call or close)
  void close();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class RunReader {
 public:
  explicit RunReader(const std::string& path);  // throws Error when it is not a headscope run file
  ~RunReader();
  nlohmann::json header() const;                 // root and /model attributes
  int64_t n_items() const;
  std::vector<std::string> stat_names() const;
  std::string text(int64_t item) const;
  std::vector<int32_t> tokens(int64_t item) const;
  at::Tensor stat(const std::string& name, int64_t item) const;  // [T, L, H]

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A forward pass's per-head statistics in the run file's layout: name -> [T, L, H] (needs AttnRecord::stats).
std::map<std::string, at::Tensor> run_item_stats(const ForwardResult& r);

// sha256 of a file's bytes, hex (for /model checkpoint_sha256).
std::string sha256_file(const std::string& path);

}  // namespace headscope
