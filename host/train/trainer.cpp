// trainer.cpp: see trainer.h.
#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>  // std::move

#include "eval/eval.h"
#include "io/atomic_file.h"
#include "io/image_io.h"
#include "model/model_checkpoint.h"  // store_model, restore_model
#include "model/sample.h"            // generator_label
#include "train/disk_space.h"
#include "train/progress.h"

namespace mnistgan {

namespace fs = std::filesystem;

int64_t total_steps(const TrainConfig& config, int64_t batches_per_epoch) {
  if (config.steps > 0) return config.steps;
  return std::max<int64_t>(1, config.epochs * batches_per_epoch / config.d_steps);
}

TrainingState::TrainingState(Backend& backend, const TrainConfig& config, const IdxImages& images,
                             const std::vector<uint8_t>& labels, ModelSlab* slab)
    : recorder_(backend, slab), backend_(recorder_), config_(config) {
  config_.validate();
  n_images_ = static_cast<int>(images.count);
  rows_ = images.rows;
  cols_ = images.cols;
  pixels_ = rows_ * cols_;
  const int B = config_.batch_size;
  batches_per_epoch_ = n_images_ / B;
  if (batches_per_epoch_ < 1)
    throw std::invalid_argument("--batch-size: " + std::to_string(B) + " is larger than the " +
                                std::to_string(n_images_) + " training images");
  if (config_.conditional) {
    if (labels.size() != images.count)
      throw std::invalid_argument("--conditional: needs the " + std::to_string(images.count) +
                                  " training labels, got " + std::to_string(labels.size()));
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] >= kDigitClasses)
        throw std::invalid_argument("--conditional: training label " + std::to_string(i) + " is " +
                                    std::to_string(labels[i]) + ", outside 0-9");
  }
  const int grid = grid_images();
  gan_ = std::make_unique<Gan>(backend_, model_shape_of(config_, pixels_), std::max(B, grid), 2);
  gan_->sample_from_ema(!config_.raw_generator);
  dataset_ = BackendBuffer<uint8_t>(backend_, images.pixels.size());
  backend_.to_backend(dataset_.get(), images.pixels.data(), images.pixels.size());
  perm_ = BackendBuffer<int32_t>(backend_, 2 * static_cast<size_t>(n_images_));
  x_ = BackendBuffer<float>(backend_, 2 * static_cast<size_t>(B) * pixels_);
  z_ = BackendBuffer<float>(backend_, static_cast<size_t>(B) * config_.latent_dim);
  d_logits_ = BackendBuffer<float>(backend_, 2 * static_cast<size_t>(B));
  d_fake_ = BackendBuffer<float>(backend_, static_cast<size_t>(B) * pixels_);
  stats_ = BackendBuffer<float>(backend_, kStatSlots);
  guard_ = BackendBuffer<float>(backend_, kGuardSlots);
  step_counter_ = BackendBuffer<int64_t>(backend_, 1);
  gan_->set_discriminator_dropout(config_.d_dropout, config_.seed, step_counter_.get());
  grid_z_ = BackendBuffer<float>(backend_, static_cast<size_t>(grid) * config_.latent_dim);
  grid_images_ = BackendBuffer<float>(backend_, static_cast<size_t>(grid) * pixels_);
  if (!config_.conditional) {
    backend_.gaussian_noise(grid_z_.get(), grid_z_.size(), config_.seed, kNoiseStreamFixedGrid,
                            nullptr);
    return;
  }
  labels_ = BackendBuffer<uint8_t>(backend_, labels.size());
  backend_.to_backend(labels_.get(), labels.data(), labels.size());
  batch_labels_ = BackendBuffer<int32_t>(backend_, 2 * static_cast<size_t>(B));
  // The conditional grid: row r asks for digit r; column c's noise is the same in every row,
  // so a column shows one style written as each digit.
  const size_t row_floats = static_cast<size_t>(kGridPerRow) * config_.latent_dim;
  backend_.gaussian_noise(grid_z_.get(), row_floats, config_.seed, kNoiseStreamFixedGrid, nullptr);
  for (int r = 1; r < kDigitClasses; ++r)
    backend_.copy(grid_z_.get() + r * row_floats, grid_z_.get(), row_floats * sizeof(float));
  std::vector<int32_t> grid_labels(grid);
  for (int i = 0; i < grid; ++i) grid_labels[i] = i / kGridPerRow;
  grid_labels_ = BackendBuffer<int32_t>(backend_, grid);
  backend_.to_backend(grid_labels_.get(), grid_labels.data(), grid_labels_.bytes());
}

size_t TrainingState::slab_bytes(Backend& backend, const TrainConfig& config,
                                 const IdxImages& images, const std::vector<uint8_t>& labels) {
  ModelSlab measure;  // size 0: every allocation goes to the backend, and is counted
  TrainingState probe(backend, config, images, labels, &measure);
  probe.initialize();
  return measure.requested;
}

void TrainingState::initialize() {
  gan_->init_params(config_.seed);
  if (config_.ema_decay > 0.0f) gan_->enable_ema();  // the average starts at the init
  set_step(0);
}

void TrainingState::set_step(int64_t step) {
  step_ = step;
  backend_.to_backend(step_counter_.get(), &step_, sizeof(step_));
  backend_.fill_zero(stats_.get(), kStatSlots * sizeof(float));
  stats_steps_ = 0;
  if (skip_nonfinite_updates()) {
    backend_.to_host(&d_updates_mark_, gan_->discriminator().adam_step, sizeof(int64_t));
    backend_.to_host(&g_updates_mark_, gan_->generator().adam_step, sizeof(int64_t));
  }
}

void TrainingState::restore(const Checkpoint& ck, const std::string& source) {
  const bool had_ema = restore_model(backend_, *gan_, ck, source);
  const int64_t step = header_int(ck.header, "step", -1, source);
  if (step < 0) throw CheckpointError(source + ": header has no valid 'step'");
  if (config_.ema_decay > 0.0f && !had_ema) {
    gan_->enable_ema();
    std::fprintf(stderr,
                 "mnistgan: %s has no EMA generator (written without --ema-decay, or by an older "
                 "version); the average starts from its weights at step %" PRId64 "\n",
                 source.c_str(), step);
  } else if (config_.ema_decay == 0.0f && had_ema) {
    gan_->disable_ema();
    std::fprintf(stderr,
                 "mnistgan: --ema-decay 0: the EMA generator in %s is not continued; grids "
                 "and checkpoints use the raw generator\n",
                 source.c_str());
  }
  set_step(step);
}

Checkpoint TrainingState::checkpoint() const {
  Checkpoint ck;
  ck.header["format"] = "mnistgan checkpoint";
  ck.header["config"] = config_;
  ck.header["step"] = step_;
  ck.header["epoch"] = epochs_done();
  ck.header["seed"] = config_.seed;
  ck.header["image_rows"] = rows_;
  ck.header["image_cols"] = cols_;
  ck.header["backend"] = backend_.name();
  if (config_.conditional) {  // absent: unconditional (and unconditional files stay as before)
    ck.header["conditional"] = true;
    ck.header["classes"] = kDigitClasses;
  }
  // All randomness is counter-based, so (seed, step) is the whole generator state.
  ck.header["rng"] = {{"generator", "philox4x32-10"}, {"seed", config_.seed}, {"step", step_}};
  ck.header["shuffle"] = {{"method", "fisher-yates, philox keyed by (seed, epoch)"},
                          {"batches_done", step_ * config_.d_steps},
                          {"batches_per_epoch", batches_per_epoch_}};
  store_model(backend_, *gan_, ck);
  return ck;
}

void TrainingState::ensure_permutations() {
  const int64_t first_batch = step_ * config_.d_steps;
  const int64_t last_batch = first_batch + config_.d_steps - 1;
  for (int64_t epoch = first_batch / batches_per_epoch_; epoch <= last_batch / batches_per_epoch_;
       ++epoch) {
    const int slot = static_cast<int>(epoch % 2);
    if (perm_epoch_[slot] == epoch) continue;
    const std::vector<int32_t> perm = epoch_permutation(config_.seed, epoch, n_images_);
    backend_.to_backend(perm_.get() + static_cast<size_t>(slot) * n_images_, perm.data(),
                        perm.size() * sizeof(int32_t));
    perm_epoch_[slot] = epoch;
  }
}

// --lr-decay linear: each network decays over its own update count, D's d_steps per step.
AdamHyper TrainingState::discriminator_hyper() const {
  const int64_t updates =
      config_.lr_decay == "linear" ? total_steps(config_, batches_per_epoch_) * config_.d_steps : 0;
  return {config_.effective_lr_d(), config_.beta1, config_.beta2, config_.adam_eps, updates};
}

AdamHyper TrainingState::generator_hyper() const {
  const int64_t updates =
      config_.lr_decay == "linear" ? total_steps(config_, batches_per_epoch_) : 0;
  return {config_.effective_lr_g(), config_.beta1, config_.beta2, config_.adam_eps, updates};
}

void TrainingState::issue_step_ops() {
  const int B = config_.batch_size;
  const AdamHyper d_hyper = discriminator_hyper(), g_hyper = generator_hyper();
  float* guard =
      skip_nonfinite_updates() ? guard_.get() : nullptr;  // see Gan::update_discriminator
  const StepBuffers buffers{x_.get(),     z_.get(), d_logits_.get(),    d_fake_.get(),
                            stats_.get(), guard,    batch_labels_.get()};
  for (int d = 0; d < config_.d_steps; ++d) {
    backend_.gather_batch(dataset_.get(), perm_.get(), n_images_, pixels_, B, step_counter_.get(),
                          config_.d_steps, d, batches_per_epoch_, x_.get());
    backend_.gaussian_noise(z_.get(), static_cast<size_t>(B) * config_.latent_dim, config_.seed,
                            static_cast<uint32_t>(d), step_counter_.get());
    if (config_.conditional) {
      backend_.gather_labels(labels_.get(), perm_.get(), n_images_, B, step_counter_.get(),
                             config_.d_steps, d, batches_per_epoch_, batch_labels_.get());
      backend_.random_labels(batch_labels_.get() + B, static_cast<size_t>(B), kDigitClasses,
                             config_.seed, kLabelStreamBase + static_cast<uint32_t>(d),
                             step_counter_.get());
    }
    gan_->update_discriminator(buffers, B, config_.real_label, d_hyper,
                               d == 0 && inject_now(NonfiniteTarget::kDiscriminator), d);
  }
  // G step on the last fake batch, through the updated D.
  // With the EMA generator's update folded into G's Adam op.
  gan_->update_generator(buffers, B, g_hyper, inject_now(NonfiniteTarget::kGenerator),
                         config_.ema_decay);
  backend_.count_nonfinite(stats_.get(), kStatNonfinite, stats_.get() + kStatNonfinite);
  backend_.increment(step_counter_.get());
}

bool TrainingState::inject_now(NonfiniteTarget target) const {
  return inject_step_ == step_ + 1 && inject_target_ == target;
}

std::vector<RecordedOp> TrainingState::record_step() {
  recorder_.begin_recording();
  try {
    issue_step_ops();
  } catch (...) {
    (void)recorder_.take_recording();
    throw;
  }
  return recorder_.take_recording();
}

void TrainingState::step() { alone_.step({this}); }

void LockStepper::release_graph() noexcept {
  if (backend_ != nullptr) backend_->release_graph(graph_);
  graph_ = -1;
  captured_for_.clear();
}

void LockStepper::forget_graph() noexcept {
  release_graph();
  // The next step runs eagerly before a capture: a new set of runs may need the backend to
  // upload their per-run constants first (cuda_backend.cu), which a capture cannot.
  ran_eager_step_ = false;
}

void LockStepper::step(const std::vector<TrainingState*>& runs) {
  if (runs.empty()) return;
  Backend& backend = runs.front()->target_backend();
  if (backend_ != &backend) {
    forget_graph();
    backend_ = &backend;
  }
  bool eager = false, graphs = true;
  for (TrainingState* run : runs) {
    if (&run->target_backend() != &backend)
      throw std::logic_error("LockStepper: the runs of a group must share one backend");
    eager = eager || run->step_needs_eager();
    graphs = graphs && run->config().cuda_graph;
    run->prepare_step();
  }
  if (!eager && graph_ >= 0 && captured_for_ == runs) {
    backend.replay(graph_);
  } else {
    std::vector<std::vector<RecordedOp>> recorded;
    recorded.reserve(runs.size());
    for (TrainingState* run : runs) recorded.push_back(run->record_step());
    // The runs of a group issue the same op kinds in the same order (sweep/grid.h's key), but
    // for the test hook's injected NaN (an extra upload in one run's eagerly issued step).
    const size_t count = recorded.front().size();
    bool aligned = true;
    for (size_t r = 1; r < runs.size() && aligned; ++r) {
      aligned = recorded[r].size() == count;
      for (size_t i = 0; aligned && i < count; ++i)
        aligned = recorded[r][i].index() == recorded.front()[i].index();
    }
    // The first step runs eagerly, outside stream capture: it loads every kernel module (lazy
    // loading is what capture may refuse), as PyTorch warms up before capturing a graph.
    // Same ops, same results.
    const bool want_graph = !eager && graphs && ran_eager_step_;
    if (want_graph) release_graph();  // the old graph's runs or recording are stale
    const bool capture = want_graph && backend.begin_capture();
    if (aligned) {
      std::vector<const RecordedOp*> column(runs.size());
      for (size_t i = 0; i < count; ++i) {
        for (size_t r = 0; r < runs.size(); ++r) column[r] = &recorded[r][i];
        backend.run_models(column);
      }
    } else {  // run after run, each run's ops in its own order
      for (const std::vector<RecordedOp>& ops : recorded)
        for (const RecordedOp& op : ops) backend.run_models({&op});
    }
    if (capture) {
      graph_ = backend.end_capture();
      captured_for_ = runs;
      backend.replay(graph_);
    } else {
      ran_eager_step_ = true;
    }
  }
  for (TrainingState* run : runs) run->finish_step();
}

StepStats TrainingState::take_stats() {
  float s[kStatSlots];
  backend_.to_host(s, stats_.get(), sizeof(s));
  backend_.fill_zero(stats_.get(), sizeof(s));
  // Under skip-step, Adam's step counts say how many updates were applied (a skipped
  // update leaves them alone), so the averages are over applied updates only. Under stop
  // every update is applied: no reads needed.
  int64_t d_applied = stats_steps_ * config_.d_steps, g_applied = stats_steps_;
  if (skip_nonfinite_updates()) {
    int64_t d_done = 0, g_done = 0;
    backend_.to_host(&d_done, gan_->discriminator().adam_step, sizeof(d_done));
    backend_.to_host(&g_done, gan_->generator().adam_step, sizeof(g_done));
    d_applied = d_done - d_updates_mark_;
    g_applied = g_done - g_updates_mark_;
    d_updates_mark_ = d_done;
    g_updates_mark_ = g_done;
  }
  StepStats out;
  out.steps = stats_steps_;
  out.skipped_d = stats_steps_ * config_.d_steps - d_applied;
  out.skipped_g = stats_steps_ - g_applied;
  const double d_updates = std::max<int64_t>(1, d_applied);
  out.d_loss = (s[kStatRealLoss] + s[kStatFakeLoss]) / d_updates;
  out.d_x = s[kStatRealScore] / d_updates;
  out.d_g_z = s[kStatFakeScore] / d_updates;
  out.g_loss = s[kStatGeneratorLoss] / std::max<int64_t>(1, g_applied);
  out.nonfinite = s[kStatNonfinite];
  stats_steps_ = 0;
  return out;
}

std::vector<float> TrainingState::fixed_grid_images() {
  gan_->sample_forward(grid_z_.get(), grid_images_.get(), grid_images(), grid_labels_.get());
  std::vector<float> host(static_cast<size_t>(grid_images()) * pixels_);
  backend_.to_host(host.data(), grid_images_.get(), host.size() * sizeof(float));
  return host;
}

bool TrainingState::weights_finite() {
  float* count = d_logits_.get();  // scratch: free between steps
  backend_.fill_zero(count, sizeof(float));
  for (Network* net : {&gan_->generator(), &gan_->discriminator()})
    backend_.count_nonfinite(net->params, net->size, count);
  float host = 0;
  backend_.to_host(&host, count, sizeof(host));
  return host == 0.0f;
}

// ---------------------------------------------------------------------------------------
// The run around the step: start-up, logging, evaluation, grids, checkpoints, signals.

namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int signal_number) { g_stop_signal.store(signal_number); }

// For the start-up line: "EMA 0.999", "EMA 0.999 (grids and evals from the raw G)" or
// "EMA off".
std::string ema_summary(const TrainConfig& config) {
  if (config.ema_decay == 0.0f) return "EMA off";
  char text[64];
  std::snprintf(text, sizeof(text), "EMA %g%s", static_cast<double>(config.ema_decay),
                config.raw_generator ? " (grids and evals from the raw G)" : "");
  return text;
}

std::string step_name(const char* prefix, int64_t step, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%08" PRId64 "%s", prefix, step, ext);
  return buf;
}

// Keeps the newest `keep` step checkpoints in dir, deletes older ones.
void rotate_checkpoints(const fs::path& dir, int keep) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) == 0 && entry.path().extension() == ".ckpt")
      found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + keep < found.size(); ++i) fs::remove(found[i], ec);
}

// latest.ckpt -> checkpoints/step_N.ckpt, replaced atomically (symlink, then rename).
void point_latest(const fs::path& out_dir, const std::string& relative_target) {
  const fs::path link = out_dir / "latest.ckpt";
  const fs::path tmp = out_dir / (".latest.ckpt.tmp." + std::to_string(getpid()));
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(relative_target, tmp, ec);
  if (ec) throw IoError(tmp.string() + ": cannot create symlink: " + ec.message());
  fs::rename(tmp, link, ec);
  if (ec) throw IoError(link.string() + ": cannot replace: " + ec.message());
}

// Exit codes of run_training besides 0 (and 128 + signal after a stop).
constexpr int kExitDiverged = 3;

// What is due after one step. The stop signal is read once per step, so every decision at
// a step boundary sees the same value.
struct Boundary {
  int64_t step = 0;        // steps done
  bool finished = false;   // the run's last step
  int stop_signal = 0;     // SIGINT/SIGTERM received (0: none)
  bool epoch_end = false;  // this step finished an epoch
  bool eval = false;       // an evaluation is due (--eval-every, and at the end)
};

// One log interval, closed: the steps since the previous row and their averaged stats.
struct Interval {
  int64_t first_step = 0, last_step = 0;
  StepStats stats;
  double seconds = 0;    // wall time of the interval
  double elapsed_s = 0;  // wall time since the training loop started
};

class Run {
 public:
  Run(const TrainConfig& config, const RunTestHooks& hooks, RunEnvironment environment)
      : config_(config), hooks_(hooks), env_(std::move(environment)) {}

  // What to tell the user after a write failed mid-run: the outputs written so far are
  // whole (every write is atomic), so say which checkpoint to resume from. "" before the
  // training loop has started (start-up errors carry their own advice).
  std::string after_failed_write() const {
    if (!training_started_) return "";
    const fs::path latest = fs::path(config_.out_dir) / "latest.ckpt";
    std::error_code ec;
    if (!fs::exists(latest, ec))
      return "; no checkpoint had been written yet; free some space or choose another --out "
             "and start again";
    return "; files already written are intact, and " + latest.string() +
           " is the last good checkpoint: free some space or choose another --out (copy the "
           "checkpoint there), then continue with --resume " +
           latest.string();
  }

  // Everything before the first step: flags, --out, the checkpoint, data, disk space, the
  // state on the backend, the logs. false: the resumed checkpoint is already at the end.
  bool start() {
    config_.validate();
    prepare_out_dir();
    const Checkpoint resume_from = load_resume_checkpoint();
    if (env_.train == nullptr) {
      owned_train_ = std::make_unique<MnistSplit>(load_mnist(config_.data_dir, "train"));
      train_ = owned_train_.get();
    } else {
      train_ = env_.train;
    }
    check_disk_space(*train_, resume_from);
    start_training_state(*train_, resume_from);
    total_ = total_steps(config_, state_->batches_per_epoch());
    const int64_t start = state_->steps_done();
    if (!env_.quiet) print_start_line(*train_, total_);
    if (start >= total_) {
      if (!env_.quiet)
        std::fprintf(stderr,
                     "mnistgan: the checkpoint is already at step %" PRId64 " of %" PRId64
                     "; nothing to do (raise --steps or --epochs to go on)\n",
                     start, total_);
      return false;
    }

    start_logs(start, total_);
    start_grids(start);
    if (env_.install_signal_handlers) install_stop_signal_handlers();
    training_started_ = true;
    start_clock(start);
    return true;
  }

  // What is due after one step of state(): a metrics row, an evaluation, a grid, a
  // checkpoint; the run's end (kDone), its divergence (kDiverged, exit code 3) or a stop
  // signal (kStopped, after the checkpoint; exit code 128 + signal).
  RunStatus after_step() {
    const Boundary at = boundary(total_);
    if (log_due(at)) {
      const Interval interval = close_interval(at.step);
      if (diverged(interval)) {
        exit_code_ = kExitDiverged;
        return RunStatus::kDiverged;
      }
      log_interval(interval, at);
    }
    if (grid_due(at)) write_grid();
    if (checkpoint_due(at)) write_checkpoint();
    if (at.stop_signal != 0) {
      exit_code_ = stop(at);
      return RunStatus::kStopped;
    }
    if (at.finished) {
      finish(*train_, total_);
      exit_code_ = 0;
      return RunStatus::kDone;
    }
    return RunStatus::kRunning;
  }

  int go() {
    if (!start()) return 0;
    while (true) {
      state_->step();
      if (after_step() != RunStatus::kRunning) return exit_code_;
    }
  }

  TrainingState& state() { return *state_; }
  int64_t total() const { return total_; }
  int exit_code() const { return exit_code_; }
  int64_t last_eval_step() const { return last_eval_step_; }

 private:
  // ---- start-up: everything checked before the first step ------------------------------

  // Checked before loading anything, so a bad --out costs no time. A run killed mid-write
  // leaves partial temp files; the finished outputs are intact.
  void prepare_out_dir() {
    const fs::path out(config_.out_dir);
    ensure_writable_dir(config_.out_dir);
    ensure_writable_dir((out / "samples").string());
    ensure_writable_dir((out / "checkpoints").string());
    int stale = 0;
    for (const fs::path& dir : {out, out / "samples", out / "checkpoints"})
      stale += remove_stale_temp_files(dir.string());
    if (stale > 0)
      std::fprintf(stderr, "mnistgan: removed %d partial file(s) left by a killed run\n", stale);
  }

  // --resume's checkpoint, its shape flags checked; empty without --resume.
  Checkpoint load_resume_checkpoint() {
    Checkpoint resume_from;
    if (!config_.resume.empty()) {
      resume_from = load_checkpoint(config_.resume);
      check_resume_flags(resume_from);
    }
    return resume_from;
  }

  // Shape flags must match the checkpoint; the rest may change (with a note).
  void check_resume_flags(const Checkpoint& ck) {
    TrainConfig stored = config_;
    if (ck.header.contains("config")) from_json(ck.header.at("config"), stored);
    stored.conditional = checkpoint_is_conditional(ck, config_.resume);
    if (stored.conditional != config_.conditional)
      throw std::invalid_argument(std::string("--conditional: ") + config_.resume + " is " +
                                  (stored.conditional ? "a conditional" : "an unconditional") +
                                  " checkpoint; resume it " +
                                  (stored.conditional ? "with" : "without") + " --conditional");
    // Names both values and the flag to pass (e.g. checkpoints from before dropout became
    // the default were trained with --d-dropout 0).
    auto text = [](const auto& value) {
      using Value = std::decay_t<decltype(value)>;
      if constexpr (std::is_same_v<Value, std::string>) {
        return value;
      } else if constexpr (std::is_same_v<Value, std::vector<int>>) {
        std::string joined;
        for (size_t i = 0; i < value.size(); ++i)
          joined += (i ? "," : "") + std::to_string(value[i]);
        return joined;
      } else {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%g", static_cast<double>(value));
        return std::string(buffer);
      }
    };
    auto must_match = [&](const auto& stored_value, const auto& value, const char* flag) {
      if (stored_value != value)
        throw std::invalid_argument(std::string(flag) + ": " + text(value) +
                                    " differs from the checkpoint " + config_.resume +
                                    ", trained with " + text(stored_value) + "; resume with " +
                                    flag + " " + text(stored_value));
    };
    must_match(stored.latent_dim, config_.latent_dim, "--latent-dim");
    must_match(stored.hidden_g, config_.hidden_g, "--hidden-g");
    must_match(stored.hidden_d, config_.hidden_d, "--hidden-d");
    must_match(stored.mbd_kernels, config_.mbd_kernels, "--mbd-kernels");
    must_match(stored.mbd_dims, config_.mbd_dims, "--mbd-dims");
    must_match(stored.batch_size, config_.batch_size, "--batch-size");
    must_match(stored.d_steps, config_.d_steps, "--d-steps");
    must_match(stored.lr_decay, config_.lr_decay, "--lr-decay");
    must_match(stored.d_dropout, config_.d_dropout, "--d-dropout");
    // The run's length is the decay's T: a longer or shorter resumed run would jump the lr.
    if (config_.lr_decay != "none" &&
        (stored.epochs != config_.epochs || stored.steps != config_.steps))
      throw std::invalid_argument(
          "--epochs/--steps: differ from the checkpoint " + config_.resume + " (made with " +
          (stored.steps > 0 ? "--steps " + std::to_string(stored.steps)
                            : "--epochs " + std::to_string(stored.epochs)) +
          "); with --lr-decay " + config_.lr_decay +
          " the run's length sets the schedule, so resume with the same length");
    if (stored.seed != config_.seed)
      std::fprintf(stderr,
                   "mnistgan: note: --seed %" PRIu64 " differs from the checkpoint's %" PRIu64
                   "; the continued run will not match an uninterrupted one\n",
                   config_.seed, stored.seed);
  }

  // Before any step: refuse a run whose checkpoints, grids and metrics cannot fit.
  void check_disk_space(const MnistSplit& train, const Checkpoint& resume_from) {
    const int64_t bpe = static_cast<int64_t>(train.images.count) / config_.batch_size;
    const int64_t first =
        resume_from.tensors.empty() ? 0 : header_int(resume_from.header, "step", 0, config_.resume);
    const RunSpaceEstimate need = estimate_run_space(
        config_, train.images.rows, train.images.cols, first,
        total_steps(config_, std::max<int64_t>(1, bpe)), std::max<int64_t>(1, bpe));
    check_free_space(config_.out_dir, need, free_disk_bytes(config_.out_dir));
  }

  // The backend, the model on it (fresh or from the checkpoint) and, with --eval-every, the
  // evaluator.
  void start_training_state(const MnistSplit& train, const Checkpoint& resume_from) {
    if (env_.backend == nullptr) {
      owned_backend_ = make_backend(config_.device);
      backend_ = owned_backend_.get();
    } else {
      backend_ = env_.backend;
    }
    state_ =
        std::make_unique<TrainingState>(*backend_, config_, train.images, train.labels, env_.slab);
    if (config_.eval_every > 0) start_evaluator(train);
    state_->inject_nonfinite_gradient(hooks_.nonfinite_gradient_step, hooks_.nonfinite_target);
    if (!config_.resume.empty()) {
      state_->restore(resume_from, config_.resume);
    } else {
      state_->initialize();
    }
  }

  void print_start_line(const MnistSplit& train, int64_t total) {
    const int64_t start = state_->steps_done();
    std::fprintf(stderr,
                 "mnistgan: training on %s | %d images %dx%d | batch %d | %" PRId64
                 " steps (%.2f epochs of %" PRId64 " batches) | mbd %d | %s | seed %" PRIu64 "%s\n",
                 backend_->name().c_str(), static_cast<int>(train.images.count), train.images.rows,
                 train.images.cols, config_.batch_size, total,
                 static_cast<double>(total) * config_.d_steps / state_->batches_per_epoch(),
                 state_->batches_per_epoch(), config_.mbd_kernels, ema_summary(config_).c_str(),
                 config_.seed,
                 start > 0 ? (" | resuming at step " + std::to_string(start)).c_str() : "");
  }

  // ---- the step boundary ----------------------------------------------------------------

  Boundary boundary(int64_t total) {
    Boundary at;
    at.step = state_->steps_done();
    at.finished = at.step == total;
    at.stop_signal = g_stop_signal.load();
    at.epoch_end = crossed_epoch();
    at.eval = evaluator_ && (at.step % config_.eval_every == 0 || at.finished);
    return at;
  }

  bool log_due(const Boundary& at) const {
    return at.step % config_.log_every == 0 || at.finished || at.stop_signal != 0 || at.eval;
  }

  bool grid_due(const Boundary& at) const {
    return at.epoch_end || at.finished || at.stop_signal != 0 ||
           (config_.sample_every > 0 && at.step % config_.sample_every == 0);
  }

  bool checkpoint_due(const Boundary& at) const {
    return at.epoch_end || at.finished || at.stop_signal != 0 ||
           (config_.checkpoint_every > 0 && at.step % config_.checkpoint_every == 0);
  }

  // After SIGINT/SIGTERM, once this step's checkpoint is written: where to resume from, and
  // the exit code 128 + signal.
  int stop(const Boundary& at) {
    progress_->finish();
    if (!env_.quiet)
      std::fprintf(
          stderr, "mnistgan: stopped by signal %d at step %" PRId64 "; resume with --resume %s\n",
          at.stop_signal, at.step, (fs::path(config_.out_dir) / "latest.ckpt").string().c_str());
    return 128 + at.stop_signal;
  }

  // The end of a completed run: where its outputs are, the final quality, skipped updates.
  void finish(const MnistSplit& train, int64_t total) {
    const fs::path out(config_.out_dir);
    progress_->finish();
    if (!env_.quiet)
      std::fprintf(stderr, "mnistgan: done: %" PRId64 " steps; checkpoint %s, samples in %s\n",
                   total, (out / "latest.ckpt").string().c_str(),
                   (out / "samples").string().c_str());
    report_final_quality(train, total);
    if (skipped_total_ > 0 && !env_.quiet)
      std::fprintf(stderr,
                   "mnistgan: %" PRId64
                   " update(s) were skipped for a NaN/Inf loss or gradient (see the skipped column "
                   "of metrics.csv)\n",
                   skipped_total_);
  }

  // ---- logging: metrics.csv, curves.png, the console --------------------------------------

  void start_logs(int64_t start, int64_t total) {
    metrics_ = std::make_unique<MetricsLog>((fs::path(config_.out_dir) / "metrics.csv").string(),
                                            start, config_.eval_every > 0);
    progress_ = std::make_unique<ProgressLine>(total, isatty(STDERR_FILENO) != 0);
  }

  void start_clock(int64_t start) {
    loop_start_ = std::chrono::steady_clock::now();
    last_log_ = loop_start_;
    last_log_step_ = start;
  }

  // Ends the log interval at `step`: its stats (a sync) and its wall time.
  Interval close_interval(int64_t step) {
    const auto now = std::chrono::steady_clock::now();
    Interval interval;
    interval.stats = state_->take_stats();
    interval.first_step = last_log_step_ + 1;
    interval.last_step = step;
    interval.seconds = std::chrono::duration<double>(now - last_log_).count();
    interval.elapsed_s = std::chrono::duration<double>(now - loop_start_).count();
    last_log_ = now;
    last_log_step_ = step;
    return interval;
  }

  // "at step 7" or "in steps 5-8".
  static std::string steps_text(const Interval& interval) {
    return interval.first_step == interval.last_step
               ? "at step " + std::to_string(interval.last_step)
               : "in steps " + std::to_string(interval.first_step) + "-" +
                     std::to_string(interval.last_step);
  }

  // The divergence guard: a NaN/Inf loss or weight in the interval (or, under skip-step,
  // every update of a network skipped) ends the run; the last checkpoint stays the good one.
  bool diverged(const Interval& interval) {
    const StepStats& stats = interval.stats;
    // skip-step cannot help a network none of whose updates went through: stop then.
    const bool all_skipped = stats.steps > 0 && (stats.skipped_g == stats.steps ||
                                                 stats.skipped_d == stats.steps * config_.d_steps);
    const bool bad = stats.nonfinite > 0 || all_skipped || !weights_finite();
    if (!bad) return false;
    progress_->finish();
    char line[512];
    std::snprintf(line, sizeof(line),
                  "mnistgan: training diverged %s: %s; the last good checkpoint is kept "
                  "in %s (try a lower --lr%s)",
                  steps_text(interval).c_str(),
                  all_skipped ? "every update of a network had a NaN/Inf loss or gradient "
                                "and was skipped (--nan-policy skip-step)"
                              : "a loss or weight became NaN/Inf",
                  (fs::path(config_.out_dir) / "checkpoints").string().c_str(),
                  config_.nan_policy == "stop" ? ", or --nan-policy skip-step" : "");
    say(line);
    return true;
  }

  // A row of metrics.csv (with the evaluation when one is due), curves.png, the progress
  // line, and a console note when updates were skipped.
  void log_interval(const Interval& interval, const Boundary& at) {
    const StepStats& stats = interval.stats;
    MetricsRow row;
    row.step = at.step;
    row.epoch = state_->epochs_done();
    row.d_loss = stats.d_loss;
    row.g_loss = stats.g_loss;
    row.d_x = stats.d_x;
    row.d_g_z = stats.d_g_z;
    row.steps_per_s = interval.seconds > 0
                          ? (interval.last_step - interval.first_step + 1) / interval.seconds
                          : 0;
    row.images_per_s = row.steps_per_s * config_.batch_size * config_.d_steps;
    row.elapsed_s = interval.elapsed_s;
    row.skipped = stats.skipped_d + stats.skipped_g;
    skipped_total_ += row.skipped;
    if (row.skipped > 0)
      say("mnistgan: skipped " + std::to_string(row.skipped) +
          " update(s) with a NaN/Inf loss or gradient " + steps_text(interval) +
          " (--nan-policy skip-step; " + std::to_string(skipped_total_) + " so far)");
    if (at.eval) {
      row.eval = evaluate(at.step);
      last_eval_step_ = at.step;
      last_log_ = std::chrono::steady_clock::now();  // keeps eval time out of steps/s
    }
    metrics_->append(row);
    write_curves();
    if (!env_.quiet) progress_->update(row);
  }

  // curves.png beside metrics.csv, redrawn with every row.
  void write_curves() {
    const double floor = evaluator_ ? evaluator_->floor().frechet : NAN;
    write_png_rgb((fs::path(config_.out_dir) / "curves.png").string(),
                  plot_training_curves(metrics_->rows(), floor),
                  {{"Software", "mnistgan"}, {"seed", std::to_string(config_.seed)}});
  }

  // ---- evaluation: --eval-every and the final evaluation --------------------------------

  // The classifier and the real data's features, once. Under --eval-every this runs before
  // any step, so a missing classifier fails early, with the command that makes it.
  void start_evaluator(const MnistSplit& train) {
    const auto begin = std::chrono::steady_clock::now();
    if (env_.evaluator) {
      evaluator_ = &env_.evaluator(*backend_, config_, train);
      return;
    }
    const MnistSplit test = load_mnist(config_.data_dir, "t10k");
    owned_evaluator_ =
        std::make_unique<Evaluator>(*backend_, config_.classifier, train, test,
                                    config_.eval_samples, config_.seed, config_.conditional);
    evaluator_ = owned_evaluator_.get();
    std::fprintf(stderr,
                 "mnistgan: eval every %" PRId64 " steps and at the end: %" PRId64
                 " samples vs MNIST test | classifier %s (sha256 %.12s..., test accuracy %.4f) | "
                 "floor: Frechet %.3f, score %.3f, precision %.3f, recall %.3f (%.1fs)\n",
                 config_.eval_every, config_.eval_samples, config_.classifier.c_str(),
                 evaluator_->classifier_info().weights_sha256.c_str(),
                 evaluator_->classifier_info().test_accuracy, evaluator_->floor().frechet,
                 evaluator_->floor().score.mean, evaluator_->floor().prdc.precision,
                 evaluator_->floor().prdc.recall,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
  }
  // One evaluation of the current generator: its figures for metrics.csv, a line on the
  // console, and <out>/eval.json (the latest evaluation, with the floor beside it).
  std::vector<double> evaluate(int64_t step) {
    const auto begin = std::chrono::steady_clock::now();
    const EvalMetrics m = evaluator_->evaluate_generator(state_->gan());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    char line[256];
    std::snprintf(line, sizeof(line),
                  "mnistgan: eval at step %" PRId64
                  ": Frechet %.3f (floor %.3f) | score %.3f | classes %d | precision %.3f "
                  "recall %.3f | density %.3f coverage %.3f (%.1fs)",
                  step, m.frechet, evaluator_->floor().frechet, m.score.mean,
                  m.histogram.classes_half_share, m.prdc.precision, m.prdc.recall, m.prdc.density,
                  m.prdc.coverage, seconds);
    std::string message = line;
    if (m.conditional) {
      char digits[96];
      std::snprintf(digits, sizeof(digits), " | asked digit read back %.3f (worst digit %.3f)",
                    m.conditional->accuracy,
                    *std::min_element(m.conditional->class_accuracy.begin(),
                                      m.conditional->class_accuracy.end()));
      message += digits;
    }
    say(message);
    const nlohmann::json j = {{"step", step},
                              {"samples", config_.eval_samples},
                              {"seed", config_.seed},
                              {"classifier",
                               {{"path", config_.classifier},
                                {"sha256", evaluator_->classifier_info().weights_sha256},
                                {"test_accuracy", evaluator_->classifier_info().test_accuracy}}},
                              {"generator", generator_label(state_->gan())},
                              {"model", m},
                              {"floor", evaluator_->floor()},
                              {"seconds", seconds}};
    last_eval_ = m;
    write_file_atomic((fs::path(config_.out_dir) / "eval.json").string(), j.dump(2) + "\n");
    std::vector<double> figures;
    for (const auto& figure : eval_figures(m)) figures.push_back(figure.second);
    return figures;
  }

  // The quality of the final generator against the real-data floor, at the end of a run:
  // the last --eval-every evaluation, or one made now when the classifier exists (--no-final-eval
  // turns that off); a note naming the command that makes the classifier otherwise.
  void report_final_quality(const MnistSplit& train, int64_t step) {
    if (!evaluator_) {
      if (!config_.final_eval) return;
      if (!fs::exists(config_.classifier)) {
        if (env_.quiet) return;
        std::fprintf(stderr,
                     "mnistgan: no feature classifier at %s, so no quality figures; make one with "
                     "`mnistgan classifier --out %s` (under a minute) and run `mnistgan eval "
                     "--checkpoint %s`\n",
                     config_.classifier.c_str(), config_.classifier.c_str(),
                     (fs::path(config_.out_dir) / "latest.ckpt").string().c_str());
        return;
      }
      start_evaluator(train);
      evaluate(step);
    }
    if (!last_eval_ || env_.quiet) return;
    std::fprintf(stderr,
                 "mnistgan: the final %s at step %" PRId64 " against the real-data floor (%s):\n%s",
                 generator_label(state_->gan()), step,
                 (fs::path(config_.out_dir) / "eval.json").string().c_str(),
                 format_eval_table(*last_eval_, evaluator_->floor()).c_str());
  }

  // ---- epoch boundaries and grids: samples/step_N.png, progress.gif ---------------------

  // Whether the last step finished an epoch; called once per step.
  bool crossed_epoch() {
    const int64_t epoch = static_cast<int64_t>(state_->epochs_done());
    const bool crossed = epoch != last_epoch_;
    last_epoch_ = epoch;
    return crossed;
  }

  // progress.gif continues from the grids on disk; a fresh run's frame 0 is the untrained
  // generator.
  void start_grids(int64_t start) {
    last_epoch_ = static_cast<int64_t>(state_->epochs_done());
    reload_gif_frames(start);
    if (start == 0) write_grid();
  }

  void write_grid() {
    const std::vector<float> images = state_->fixed_grid_images();
    const GrayImage grid =
        make_grid(images.data(), state_->grid_images(), state_->image_rows(), state_->image_cols(),
                  TrainingState::kGridPerRow, TrainingState::kGridPadding);
    const fs::path path =
        fs::path(config_.out_dir) / "samples" / step_name("step_", state_->steps_done(), ".png");
    write_png(path.string(), grid,
              {{"Software", "mnistgan"},
               {"seed", std::to_string(config_.seed)},
               {"step", std::to_string(state_->steps_done())}});
    gif_.add_frame(grid);
    gif_.write((fs::path(config_.out_dir) / "progress.gif").string());
  }

  // On resume, progress.gif is rebuilt from the grids already on disk up to `step`.
  void reload_gif_frames(int64_t step) {
    if (step == 0) return;
    std::vector<fs::path> grids;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::path(config_.out_dir) / "samples", ec))
      if (entry.path().extension() == ".png" &&
          entry.path().filename().string() <= step_name("step_", step, ".png"))
        grids.push_back(entry.path());
    std::sort(grids.begin(), grids.end());
    for (const fs::path& p : grids) {
      try {
        gif_.add_frame(read_png_gray(p.string()));
      } catch (const std::exception&) {
        // A grid of another size or an unreadable one is skipped, not fatal.
      }
    }
  }

  // ---- checkpointing: checkpoints/step_N.ckpt, latest.ckpt ------------------------------

  // TrainingState::weights_finite (a pass over every weight and a sync) once per step: a
  // log row and a checkpoint at the same step share the answer.
  bool weights_finite() {
    const int64_t step = state_->steps_done();
    if (finite_checked_at_ != step) {
      weights_were_finite_ = state_->weights_finite();
      finite_checked_at_ = step;
    }
    return weights_were_finite_;
  }

  void write_checkpoint() {
    if (!weights_finite()) return;  // never replace a good checkpoint with NaNs
    const fs::path dir = fs::path(config_.out_dir) / "checkpoints";
    const std::string name = step_name("step_", state_->steps_done(), ".ckpt");
    save_checkpoint((dir / name).string(), state_->checkpoint());
    point_latest(config_.out_dir, "checkpoints/" + name);
    rotate_checkpoints(dir, config_.keep_checkpoints);
  }

  // A console line of this run: the environment's sink (the sweep's), else above the
  // progress line.
  void say(const std::string& line) {
    if (env_.message) {
      env_.message(line);
    } else {
      progress_->message(line);
    }
  }

  TrainConfig config_;
  RunTestHooks hooks_;
  RunEnvironment env_;
  bool training_started_ = false;
  int64_t total_ = 0;                        // the run's last step
  int exit_code_ = 0;                        // set when after_step() ends the run
  int64_t last_eval_step_ = -1;              // the step of this process's latest evaluation
  std::unique_ptr<MnistSplit> owned_train_;  // the training split, unless env_ lends one
  const MnistSplit* train_ = nullptr;
  int64_t skipped_total_ = 0;       // updates skipped by --nan-policy skip-step, whole run
  int64_t finite_checked_at_ = -1;  // the step of the last weights_finite() check
  bool weights_were_finite_ = true;
  std::unique_ptr<Backend> owned_backend_;  // unless env_ lends a backend
  Backend* backend_ = nullptr;
  std::unique_ptr<TrainingState> state_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<ProgressLine> progress_;
  std::unique_ptr<Evaluator> owned_evaluator_;  // unless env_ lends evaluators
  Evaluator* evaluator_ = nullptr;              // --eval-every > 0, or the final evaluation
  std::optional<EvalMetrics> last_eval_;        // the latest evaluation's figures
  GifWriter gif_{50};
  int64_t last_epoch_ = 0;  // epochs completed at the last crossed_epoch()
  // The log interval's clock: the loop's start, and the time and step of the last row.
  std::chrono::steady_clock::time_point loop_start_, last_log_;
  int64_t last_log_step_ = 0;
};

}  // namespace

class TrainingRun::Impl : public Run {
 public:
  using Run::Run;
};

void install_stop_signal_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

TrainingRun::TrainingRun(const TrainConfig& config, const RunTestHooks& hooks,
                         RunEnvironment environment)
    : run_(std::make_unique<Impl>(config, hooks, std::move(environment))) {}
TrainingRun::~TrainingRun() = default;
bool TrainingRun::start() { return run_->start(); }
TrainingState& TrainingRun::state() { return run_->state(); }
RunStatus TrainingRun::after_step() { return run_->after_step(); }
int64_t TrainingRun::total_steps() const { return run_->total(); }
int TrainingRun::exit_code() const { return run_->exit_code(); }
int64_t TrainingRun::last_eval_step() const { return run_->last_eval_step(); }
std::string TrainingRun::after_failed_write() const { return run_->after_failed_write(); }

int run_training(const TrainConfig& config, const RunTestHooks& hooks) {
  Run run(config, hooks, RunEnvironment{});
  try {
    return run.go();
  } catch (const IoError& e) {
    throw IoError(e.what() + run.after_failed_write());
  }
}

}  // namespace mnistgan
