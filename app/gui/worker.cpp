// Background worker of headscope-gui (see worker.h).
#include "app/gui/worker.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <chrono>

#include "core/error.h"
#include "datasets/prompts.h"
#include "runs/record.h"

namespace headscope::gui {

Worker::Worker() : thread_([this] { loop(); }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
    cancel_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Worker::load(const std::string& path) {
  std::lock_guard<std::mutex> lk(mu_);
  jobs_.push_back({Job::Load, path});
  busy_ = true;
  cv_.notify_all();
}

void Worker::run(const std::string& prompt, int layer, int head) {
  std::lock_guard<std::mutex> lk(mu_);
  // A newer run replaces queued ones; the running one is cancelled.
  for (auto it = jobs_.begin(); it != jobs_.end();) it = it->kind == Job::Run ? jobs_.erase(it) : it + 1;
  jobs_.push_back({Job::Run, prompt, layer, head});
  cancel_ = true;
  busy_ = true;
  cv_.notify_all();
}

void Worker::record(const std::string& prompts_path, const std::string& run_path) {
  std::lock_guard<std::mutex> lk(mu_);
  jobs_.push_back({Job::Record, prompts_path, 0, 0, run_path});
  busy_ = true;
  cv_.notify_all();
}

std::string Worker::note() const { std::lock_guard<std::mutex> lk(mu_); return note_; }
std::string Worker::status() const { std::lock_guard<std::mutex> lk(mu_); return status_; }
std::string Worker::error() const { std::lock_guard<std::mutex> lk(mu_); return error_; }
std::string Worker::model_path() const { std::lock_guard<std::mutex> lk(mu_); return model_path_; }
std::shared_ptr<const Model> Worker::model() const { std::lock_guard<std::mutex> lk(mu_); return model_; }
std::shared_ptr<const RunResult> Worker::result() const { std::lock_guard<std::mutex> lk(mu_); return result_; }

void Worker::loop() {
  set_threads(0);  // this thread's compute threads: $HEADSCOPE_THREADS or all cores, as in the CLI
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return quit_ || !jobs_.empty(); });
      if (quit_) return;
      job = jobs_.front();
      jobs_.pop_front();
      cancel_ = false;
      progress_ = 0.f;
      error_.clear();
      note_.clear();
    }
    try {
      if (job.kind == Job::Load) do_load(job.text);
      else if (job.kind == Job::Record) do_record(job);
      else do_run(job);
    } catch (const Cancelled&) {
      // the user asked for it: no error to show
    } catch (const headscope::Error& e) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = e.what();
    } catch (const c10::Error& e) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = e.what_without_backtrace();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = e.what();
    }
    std::lock_guard<std::mutex> lk(mu_);
    status_.clear();
    if (jobs_.empty()) busy_ = false;
  }
}

void Worker::do_load(const std::string& path) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    status_ = "loading " + path;
  }
  std::shared_ptr<const Model> m(Model::load(path).release());
  std::lock_guard<std::mutex> lk(mu_);
  model_ = m;
  model_path_ = path;
  result_.reset();
}

void Worker::do_run(const Job& job) {
  std::shared_ptr<const Model> m = model();
  if (!m) throw Error("open a model first");
  {
    std::lock_guard<std::mutex> lk(mu_);
    status_ = "running";
  }
  auto res = std::make_shared<RunResult>();
  res->ids = m->tokenizer().encode(job.text);
  if (res->ids.empty()) throw Error("the prompt is empty");
  fit_context(m->config(), res->ids, ContextPolicy{}, "the prompt");  // the GUI stays within the context
  for (int32_t id : res->ids) res->tokens.push_back(m->tokenizer().token_text(id));
  AttnRecord rec;
  rec.stats = true;
  rec.pattern_heads = {{job.layer, job.head}};
  rec.on_layer = [this](int64_t l, int64_t n) {
    progress_ = static_cast<float>(l) / static_cast<float>(n);
    return !cancel_.load();
  };
  auto t0 = std::chrono::steady_clock::now();
  ForwardResult fr = m->run(res->ids, rec, /*last_only=*/true);
  res->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res->summary = summarize_heads(fr);
  res->next = top_tokens(*m, fr.logits[0], 10);
  res->pattern_layer = job.layer, res->pattern_head = job.head;
  at::Tensor pat = fr.patterns.at(0).second.contiguous();
  res->pattern.assign(pat.data_ptr<float>(), pat.data_ptr<float>() + pat.numel());
  const int64_t T = pat.size(0);
  if (T > 1024) {  // block maxima for the zoomed-out view, computed here rather than in a frame
    res->pool = static_cast<int>((T + 1023) / 1024);
    const int64_t padded = (T + res->pool - 1) / res->pool * res->pool;
    at::Tensor p = at::zeros({padded, padded}, at::kFloat);
    p.narrow(0, 0, T).narrow(1, 0, T).copy_(pat);
    at::Tensor pooled = p.view({padded / res->pool, res->pool, padded / res->pool, res->pool}).amax({1, 3}).contiguous();
    res->pooled_n = static_cast<int>(pooled.size(0));
    res->pooled.assign(pooled.data_ptr<float>(), pooled.data_ptr<float>() + pooled.numel());
  }
  progress_ = 1.f;
  std::lock_guard<std::mutex> lk(mu_);
  result_ = res;
}

void Worker::do_record(const Job& job) {
  std::shared_ptr<const Model> m = model();
  if (!m) throw Error("open a model first");
  {
    std::lock_guard<std::mutex> lk(mu_);
    status_ = "recording";
  }
  RecordOptions o;
  o.output = job.output;
  o.open = RunOpen::resume;  // an interrupted recording continues; a complete one is left as it is
  for (int id = 0; id < kStatCount; ++id) o.stats.push_back(head_stat(id).name);
  o.command_line = "headscope-gui: record " + job.text;
  const RecordSummary r = record_run(*m, model_path(), load_prompts(job.text), o, [this](const RecordProgress& p) {
    progress_ = p.total ? static_cast<float>(p.committed) / static_cast<float>(p.total) : 1.f;
    std::lock_guard<std::mutex> lk(mu_);
    status_ = "recording " + std::to_string(p.committed) + "/" + std::to_string(p.total);
    return !cancel_.load();
  });
  std::lock_guard<std::mutex> lk(mu_);
  note_ = "recorded " + std::to_string(r.recorded_now) + " of " + std::to_string(r.items) + " items into " + job.output;
}

}  // namespace headscope::gui
