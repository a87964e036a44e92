// Background worker of headscope-gui (see worker.h).
#include "app/gui/worker.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "datasets/prompts.h"
#include "runs/means.h"
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

void Worker::post(Job job) {
  std::lock_guard<std::mutex> lk(mu_);
  // A newer request of the same kind replaces queued ones; a newer run also cancels the running one (the
  // patterns and interventions of the old prompt would be stale).
  auto replaces = [&](const Job& j) {
    if (job.kind == Job::Run) return j.kind == Job::Run || j.kind == Job::Pattern || j.kind == Job::Intervene;
    return j.kind == job.kind && job.kind == Job::Pattern;
  };
  for (auto it = jobs_.begin(); it != jobs_.end();) it = replaces(*it) ? jobs_.erase(it) : it + 1;
  if (job.kind == Job::Run) cancel_ = true;
  jobs_.push_back(std::move(job));
  busy_ = true;
  cv_.notify_all();
}

void Worker::load(const std::string& path) { post({Job::Load, path}); }
void Worker::run(const std::string& prompt, int layer, int head) { post({Job::Run, prompt, layer, head}); }
void Worker::pattern(int layer, int head) { post({Job::Pattern, "", layer, head}); }
void Worker::intervene(const nlohmann::json& spec, const std::string& mean_data, const std::vector<std::string>& targets) {
  Job j{Job::Intervene, mean_data};
  j.spec = spec, j.targets = targets;
  post(std::move(j));
}
void Worker::record(const std::string& prompts_path, const std::string& run_path) { post({Job::Record, prompts_path, 0, 0, run_path}); }

std::string Worker::note() const { std::lock_guard<std::mutex> lk(mu_); return note_; }
std::string Worker::status() const { std::lock_guard<std::mutex> lk(mu_); return status_; }
std::string Worker::error() const { std::lock_guard<std::mutex> lk(mu_); return error_; }
std::string Worker::model_path() const { std::lock_guard<std::mutex> lk(mu_); return model_path_; }
std::shared_ptr<const Model> Worker::model() const { std::lock_guard<std::mutex> lk(mu_); return model_; }
std::shared_ptr<const RunResult> Worker::result() const { std::lock_guard<std::mutex> lk(mu_); return result_; }
std::shared_ptr<const HeadPattern> Worker::head_pattern() const { std::lock_guard<std::mutex> lk(mu_); return pattern_; }
std::shared_ptr<const InterventionRun> Worker::intervention() const { std::lock_guard<std::mutex> lk(mu_); return intervention_; }

void Worker::loop() {
  // This thread and the compute threads it starts (they inherit it) yield to the UI thread: nice +10.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
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
      switch (job.kind) {
        case Job::Load: do_load(job.text); break;
        case Job::Run: do_run(job); break;
        case Job::Pattern: do_pattern(job); break;
        case Job::Intervene: do_intervene(job); break;
        case Job::Record: do_record(job); break;
      }
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
  inputs_.reset();
  std::lock_guard<std::mutex> lk(mu_);
  model_ = m;
  model_path_ = path;
  result_.reset(), pattern_.reset(), intervention_.reset();
}

void Worker::do_run(const Job& job) {
  std::shared_ptr<const Model> m = model();
  if (!m) throw Error("open a model first");
  {
    std::lock_guard<std::mutex> lk(mu_);
    status_ = "running";
  }
  auto res = std::make_shared<RunResult>();
  res->prompt = job.text;
  res->ids = m->tokenizer().encode(job.text);
  if (res->ids.empty()) throw Error("the prompt is empty");
  fit_context(m->config(), res->ids, ContextPolicy{}, "the prompt");  // the GUI stays within the context
  for (int32_t id : res->ids) res->tokens.push_back(m->tokenizer().token_text(id));
  auto inputs = std::make_shared<AttnInputs>();
  AttnRecord rec;
  rec.stats = true;
  rec.keep_inputs = inputs.get();
  rec.on_layer = [this](int64_t l, int64_t n) {
    progress_ = static_cast<float>(l) / static_cast<float>(n);
    return !cancel_.load();
  };
  auto t0 = std::chrono::steady_clock::now();
  ForwardResult fr = m->run(res->ids, rec, /*last_only=*/true);
  res->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res->summary = summarize_heads(fr);
  res->next = top_tokens(*m, fr.logits[0], 10);
  inputs_ = inputs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    result_ = res;
    intervention_.reset();
  }
  do_pattern(job);
}

void Worker::do_pattern(const Job& job) {
  std::shared_ptr<const Model> m = model();
  std::shared_ptr<const RunResult> run = result();
  if (!m || !run || !inputs_) return;  // nothing run yet: the next run computes the selected head's pattern
  auto hp = std::make_shared<HeadPattern>();
  hp->run = run.get(), hp->layer = job.layer, hp->head = job.head;
  const int64_t T = static_cast<int64_t>(run->ids.size());
  hp->T = static_cast<int>(T);
  at::Tensor pat = headscope::head_pattern(m->config(), *inputs_, job.layer, job.head, 0, T).to(at::kCPU).contiguous();
  hp->p.assign(pat.data_ptr<float>(), pat.data_ptr<float>() + pat.numel());
  if (T > 1024) {  // block maxima for the zoomed-out view, computed here rather than in a frame
    hp->pool = static_cast<int>((T + 1023) / 1024);
    const int64_t padded = (T + hp->pool - 1) / hp->pool * hp->pool;
    at::Tensor p = at::zeros({padded, padded}, at::kFloat);
    p.narrow(0, 0, T).narrow(1, 0, T).copy_(pat);
    at::Tensor pooled = p.view({padded / hp->pool, hp->pool, padded / hp->pool, hp->pool}).amax({1, 3}).contiguous();
    hp->pooled_n = static_cast<int>(pooled.size(0));
    hp->pooled.assign(pooled.data_ptr<float>(), pooled.data_ptr<float>() + pooled.numel());
  }
  hp->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - job.posted).count();
  progress_ = 1.f;
  std::lock_guard<std::mutex> lk(mu_);
  pattern_ = hp;
}

void Worker::do_intervene(const Job& job) {
  std::shared_ptr<const Model> m = model();
  std::shared_ptr<const RunResult> run = result();
  if (!m) throw Error("open a model first");
  if (!run) throw Error("run a prompt first: the intervention acts on it");
  {
    std::lock_guard<std::mutex> lk(mu_);
    status_ = "intervening";
  }
  if (spec_needs_means(job.spec) && job.text.empty())
    throw Error("mean ablation needs a file of reference prompts (one per line, or JSONL with \"text\")");
  auto out = std::make_shared<InterventionRun>();
  out->spec = job.spec, out->targets = job.targets;
  const auto t0 = std::chrono::steady_clock::now();
  const HeadMeans means = means_for_spec(job.spec, *m, job.text);
  out->effect = intervention_effect(*m, run->ids, job.spec, means, job.targets, 10);
  out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard<std::mutex> lk(mu_);
  intervention_ = out;
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
