// trainer.h: the training step on a Backend, and the whole run around it.
//
// TrainingState holds everything on the backend (dataset, model, optimiser state, batch
// buffers, the step counter) and issues one training step as a fixed sequence of ops:
//   for d in [0, d_steps):                       D update, real and fake as two groups
//     x[0:B]   = batch(step * d_steps + d)        x is (2B, 784)
//     z        = N(0,1) noise (seed, stream d, step)
//     x[B:2B]  = G(z)
//     loss_D   = BCE(D(x[0:B]), real_label) + BCE(D(x[B:2B]), 0);  D Adam step
//   loss_G = BCE(D(x[B:2B]), 1) (non-saturating);  G Adam step;  step += 1
// With --conditional each D update also gathers the real rows' labels (same batch index) and
// draws the fake rows' labels from Philox (stream kLabelStreamBase + d, the step), and G and
// D see them as one-hot columns (model.h).
// The sequence never reads a value back to the host, so on CUDA it is captured once as a
// graph and replayed. run_training() is the loop around it: logging, evaluation, grids,
// checkpoints.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"  // BackendBuffer
#include "core/config.h"
#include "core/op_recorder.h"  // OpRecorder
#include "core/shuffle.h"  // epoch_permutation
#include "io/checkpoint.h"
#include "io/idx.h"
#include "model/model.h"

namespace mnistgan {

// Averages over the steps since the last read.
struct StepStats {
  int64_t steps = 0;
  double d_loss = 0, g_loss = 0, d_x = 0, d_g_z = 0;
  double nonfinite = 0;  // count of NaN/Inf losses seen (divergence guard)
  // Updates skipped by --nan-policy skip-step (always 0 under stop); the loss averages
  // above are over the applied updates only.
  int64_t skipped_d = 0, skipped_g = 0;
};

// Which update a test-injected non-finite gradient goes into (TrainingState's test hook).
enum class NonfiniteTarget { kDiscriminator, kGenerator };

class TrainingState;

// Steps runs in lock-step: step s of every run before step s + 1 of any. Their steps' ops are
// recorded (core/op_recorder.h) and op i of every run is issued as one unit with
// Backend::run_models(): on CUDA one model-indexed launch where the kernels allow, on the CPU
// each run's op in turn, bitwise as the run alone. Where the backend has graphs the group's
// whole step is captured once (from the second step on, as a single run's) and replayed
// while the runs stay the same. A single run is the group of one (TrainingState::step()), so
// `train` and `sweep` step through this one path. Every run must be on the same backend.
class LockStepper {
 public:
  LockStepper() = default;
  ~LockStepper() { release_graph(); }
  LockStepper(const LockStepper&) = delete;
  LockStepper& operator=(const LockStepper&) = delete;

  void step(const std::vector<TrainingState*>& runs);
  // The runs changed (one left or joined): the next step records anew, eagerly, and the one
  // after it captures.
  void forget_graph() noexcept;

 private:
  void release_graph() noexcept;  // graph_ freed on its backend

  Backend* backend_ = nullptr;  // the runs' backend, which holds graph_
  int graph_ = -1;              // its id there, or -1
  bool ran_eager_step_ = false;
  std::vector<TrainingState*> captured_for_;  // the runs of graph_, in order
};

class TrainingState {
 public:
  // Uploads the dataset; images must outlive nothing (they are copied to the backend).
  // labels (images.count): the training labels, needed (and only uploaded) with
  // config.conditional; throws std::invalid_argument when they are missing or out of range.
  // slab: this run's share of its lock-step group's memory (core/op_recorder.h), or nullptr.
  TrainingState(Backend& backend, const TrainConfig& config, const IdxImages& images,
                const std::vector<uint8_t>& labels = {}, ModelSlab* slab = nullptr);
  // The bytes a fresh run of `config` on these images allocates on `backend` up to and
  // including initialize(): the ModelSlab size that holds every buffer of its step (measured
  // by making one).
  static size_t slab_bytes(Backend& backend, const TrainConfig& config, const IdxImages& images,
                           const std::vector<uint8_t>& labels = {});
  TrainingState(const TrainingState&) = delete;
  TrainingState& operator=(const TrainingState&) = delete;

  void initialize();  // fresh weights from config.seed, step 0
  // Loads weights, Adam state and the step from a checkpoint (shapes checked).
  void restore(const Checkpoint& checkpoint, const std::string& source);
  Checkpoint checkpoint() const;  // everything needed to continue the run

  void step();             // one D+G step: LockStepper on this run alone
  StepStats take_stats();  // reads the accumulated loss stats and resets them (syncs)
  // Generates the fixed progress batch: (grid_images(), pixels) floats in [-1, 1].
  std::vector<float> fixed_grid_images();
  int grid_images() const { return grid_image_count(config_); }
  bool weights_finite();

  // Test hook: the update of step `step` (counted from 1, as metrics.csv's step column;
  // -1 disarms) gets a NaN written into its parameter gradient just before the divergence
  // guard looks at it: D's first update of the step (kDiscriminator) or G's update
  // (kGenerator), as if the backward pass had produced one. While armed, steps are issued
  // eagerly (no graph replay), so it works on every backend. Used by the --nan-policy tests.
  void inject_nonfinite_gradient(int64_t step, NonfiniteTarget target) {
    inject_step_ = step;
    inject_target_ = target;
  }

  int64_t steps_done() const { return step_; }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  double epochs_done() const {
    return static_cast<double>(step_) * config_.d_steps / batches_per_epoch_;
  }
  Gan& gan() { return *gan_; }
  const TrainConfig& config() const { return config_; }
  // The Adam hyperparameters every update of the run uses (the step count comes from the
  // backend): the flags' lr, betas and eps, and with --lr-decay linear the decay's length in
  // that network's updates (D: total steps x --d-steps, G: total steps).
  AdamHyper discriminator_hyper() const;
  AdamHyper generator_hyper() const;
  int image_pixels() const { return pixels_; }
  int image_rows() const { return rows_; }
  int image_cols() const { return cols_; }

  // The progress grid: 64 images, 8 per row, 2 pixels of padding (the disk estimate too).
  // A conditional run's has one row per digit (row r asks for digit r), so 10 x 8 images;
  // column c has the same noise in every row.
  static constexpr int kGridImages = 64, kGridPerRow = 8, kGridPadding = 2;
  static int grid_image_count(const TrainConfig& config) {
    return config.conditional ? kDigitClasses * kGridPerRow : kGridImages;
  }

 private:
  friend class LockStepper;
  // LockStepper's three parts of a step: the host work before it (the permutations of the
  // epochs it reads), its ops recorded in order (not run), then the host's step count.
  void prepare_step() { ensure_permutations(); }
  std::vector<RecordedOp> record_step();
  void finish_step() {
    ++step_;
    ++stats_steps_;
  }
  Backend& target_backend() { return recorder_.target(); }
  bool step_needs_eager() const { return inject_step_ >= 0; }  // the test hook, per step

  void issue_step_ops();
  void ensure_permutations();  // the epochs this step reads are in the two perm slots
  void set_step(int64_t step);
  bool skip_nonfinite_updates() const { return config_.nan_policy == "skip-step"; }
  bool inject_now(NonfiniteTarget target) const;  // the test hook's update?

  // Every op of the run goes through recorder_ (backend_ is it) to the backend given.
  OpRecorder recorder_;
  Backend& backend_;
  TrainConfig config_;
  int n_images_, pixels_, rows_, cols_;
  int64_t batches_per_epoch_;
  std::unique_ptr<Gan> gan_;
  BackendBuffer<uint8_t> dataset_;  // (n_images, pixels)
  BackendBuffer<int32_t> perm_;     // (2, n_images): epoch e's order in slot e % 2
  // Conditional runs only (empty otherwise):
  BackendBuffer<uint8_t> labels_;        // (n_images)
  BackendBuffer<int32_t> batch_labels_;  // (2B): [real | fake] labels
  BackendBuffer<int32_t> grid_labels_;   // (grid_images()): row r of the grid is digit r
  int64_t perm_epoch_[2] = {-1, -1};
  BackendBuffer<float> x_;         // (2B, pixels): [real | fake]
  BackendBuffer<float> z_;         // (B, latent)
  BackendBuffer<float> d_logits_;  // (2B)
  BackendBuffer<float> d_fake_;    // (B, pixels)
  BackendBuffer<float> stats_;     // (kStatSlots) model.h's StatSlot sums, see take_stats()
  BackendBuffer<float> guard_;     // (kGuardSlots) the skip-step guard (StepBuffers::guard)
  BackendBuffer<int64_t> step_counter_;
  BackendBuffer<float> grid_z_;       // (grid_images(), latent), fixed noise
  BackendBuffer<float> grid_images_;  // (grid_images(), pixels)
  int64_t step_ = 0;                  // host mirror of *step_counter_
  int64_t stats_steps_ = 0;
  // Adam step counts at the last take_stats (read under skip-step only).
  int64_t d_updates_mark_ = 0, g_updates_mark_ = 0;
  int64_t inject_step_ = -1;
  NonfiniteTarget inject_target_ = NonfiniteTarget::kDiscriminator;
  LockStepper alone_;  // step(): this run as a group of one
};

// Total steps of a run: --steps if set, else epochs * batches_per_epoch / d_steps.
int64_t total_steps(const TrainConfig& config, int64_t batches_per_epoch);

// Test-only knobs of run_training (the CLI never sets them).
struct RunTestHooks {
  int64_t nonfinite_gradient_step = -1;  // see TrainingState::inject_nonfinite_gradient
  NonfiniteTarget nonfinite_target = NonfiniteTarget::kDiscriminator;
};

class Evaluator;  // eval/eval.h

// What a run borrows instead of making its own (`mnistgan sweep` runs many in one process);
// every field is optional, and a default RunEnvironment is `mnistgan train`'s.
struct RunEnvironment {
  Backend* backend = nullptr;         // null: make_backend(config.device)
  const MnistSplit* train = nullptr;  // null: load_mnist(config.data_dir, "train")
  ModelSlab* slab = nullptr;          // the run's share of its group's memory (TrainingState)
  // The evaluator for (backend, config) (the classifier, the test features and the floor of
  // config.seed); empty: the run builds its own.
  std::function<Evaluator&(Backend&, const TrainConfig&, const MnistSplit& train)> evaluator;
  // Where the run's console lines go (evaluations, skipped updates, divergence); empty:
  // above its own progress line.
  std::function<void(const std::string&)> message;
  // No start line, per-run progress line, final table or end-of-run notes (the sweep shows
  // one progress line and a leaderboard instead). Files written are the same.
  bool quiet = false;
  bool install_signal_handlers = true;  // SIGINT/SIGTERM request a stop
};

// Where a run stands after a step.
enum class RunStatus {
  kRunning,   // more steps to go
  kDone,      // the last step is done (final grid, checkpoint and evaluation written)
  kDiverged,  // the divergence guard stopped it (exit code 3); the last good checkpoint stays
  kStopped,   // SIGINT/SIGTERM: checkpoint written, exit code 128 + signal
};

// One `mnistgan train` run, driven step by step from outside: start(), then
// state().step() and after_step() until after_step() says anything but kRunning.
// run_training() is exactly this loop; `mnistgan sweep` interleaves many runs' steps.
class TrainingRun {
 public:
  explicit TrainingRun(const TrainConfig& config, const RunTestHooks& hooks = {},
                       RunEnvironment environment = {});
  ~TrainingRun();
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  // Checks and start-up (run_training's): false when the resumed checkpoint is already at
  // the last step (nothing to do). Throws as run_training does.
  bool start();
  TrainingState& state();
  // Logs, evaluations, grids and checkpoints due after the step just taken.
  RunStatus after_step();
  int64_t total_steps() const;
  int exit_code() const;           // run_training's exit code, once after_step() ended the run
  int64_t last_eval_step() const;  // step of the latest evaluation in this process (-1: none)
  // The advice to append to an IoError thrown mid-run (see run_training).
  std::string after_failed_write() const;

 private:
  class Impl;
  std::unique_ptr<Impl> run_;
};

// The whole `mnistgan train` run. Returns the process exit code (0; 130/143 after
// SIGINT/SIGTERM once the checkpoint is written; 3 when training diverged). Throws
// (DataError, IoError, CheckpointError, std::invalid_argument, std::runtime_error) with
// messages that name the file or flag at fault; before training starts, IoError when --out
// lacks the disk space the run needs; during training, IoError naming the file that could
// not be written and the intact checkpoint to resume from.
int run_training(const TrainConfig& config, const RunTestHooks& hooks = {});

// SIGINT and SIGTERM request a clean stop at the next step boundary of every run
// (TrainingRun::after_step checkpoints and returns kStopped).
void install_stop_signal_handlers();

}  // namespace mnistgan
