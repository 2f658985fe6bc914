// test_train.cpp: end-to-end training on the CPU backend, exact resume, and the CLI's
// handling of good runs and bad input.
//
// Uses the real MNIST files when data/mnist has them, otherwise a small synthetic IDX set
// (bars and blobs, so there is structure to learn) that the test writes itself.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/backend_buffer.h"  // BackendBuffer
#include "cuda_test.h"            // CudaTest
#include "io/checkpoint.h"        // load_checkpoint, save_checkpoint
#include "io/idx.h"
#include "model/model_checkpoint.h"
#include "run_test_util.h"  // fresh_dir, run_command
#include "test_util.h"      // random_vector
#include "train/trainer.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

using runtest::fresh_dir;

// The real MNIST files when data/mnist has them, else 512 synthetic bar images.
fs::path data_dir() { return runtest::test_data_dir(); }

TrainConfig small_config(const fs::path& out) {
  TrainConfig c;
  c.data_dir = data_dir().string();
  c.out_dir = out.string();
  c.device = "cpu";
  c.batch_size = 32;
  return c;
}

TEST(TrainCpu, LossesMoveAndGeneratedBatchIsNotConstant) {
  const TrainConfig config = small_config(fresh_dir("e2e"));
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState state(*backend, config, train.images);
  state.initialize();
  const std::vector<float> before = state.fixed_grid_images();
  state.step();
  const StepStats early = state.take_stats();  // the untrained networks' losses
  for (int i = 0; i < 199; ++i) state.step();
  state.take_stats();
  for (int i = 0; i < 100; ++i) state.step();
  const StepStats late = state.take_stats();  // averaged over steps 201-300
  EXPECT_EQ(state.steps_done(), 300);
  EXPECT_EQ(early.nonfinite, 0);
  EXPECT_EQ(late.nonfinite, 0);
  EXPECT_TRUE(std::isfinite(late.d_loss) && std::isfinite(late.g_loss));
  // Both losses leave their step-1 values (D learns fast; G's loss follows D).
  EXPECT_GT(std::fabs(late.d_loss - early.d_loss), 0.05) << early.d_loss << " -> " << late.d_loss;
  EXPECT_GT(std::fabs(late.g_loss - early.g_loss), 0.05) << early.g_loss << " -> " << late.g_loss;

  const std::vector<float> after = state.fixed_grid_images();
  double change = 0, mean = 0, var = 0;
  for (size_t i = 0; i < after.size(); ++i)
    change += std::fabs(after[i] - before[i]) / after.size();
  EXPECT_GT(change, 0.05) << "the generator did not move";
  // Not constant across the batch: per-pixel std over the 64 images, averaged.
  const int pixels = state.image_pixels();
  double spread = 0;
  for (int p = 0; p < pixels; ++p) {
    mean = var = 0;
    for (int k = 0; k < 64; ++k) mean += after[k * pixels + p] / 64;
    for (int k = 0; k < 64; ++k) var += std::pow(after[k * pixels + p] - mean, 2) / 64;
    spread += std::sqrt(var) / pixels;
  }
  EXPECT_GT(spread, 0.01) << "every generated image is the same";
}

// Every tensor of two checkpoints (weights, Adam state, the EMA) bitwise equal.
void expect_same_tensors(const Checkpoint& a, const Checkpoint& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t t = 0; t < a.tensors.size(); ++t)
    EXPECT_EQ(0, std::memcmp(a.tensors[t].data.data(), b.tensors[t].data.data(),
                             a.tensors[t].data.size() * sizeof(float)))
        << a.tensors[t].name;
}

// Bitwise: 2n straight steps == n steps, checkpoint, restore into a fresh state, n more.
void expect_resume_bitwise(const TrainConfig& config, int n) {
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState straight(*backend, config, train.images);
  straight.initialize();
  for (int i = 0; i < 2 * n; ++i) straight.step();

  Checkpoint mid;
  {
    TrainingState first(*backend, config, train.images);
    first.initialize();
    for (int i = 0; i < n; ++i) first.step();
    mid = parse_checkpoint(serialize_checkpoint(first.checkpoint()), "mem");
  }
  TrainingState resumed(*backend, config, train.images);
  resumed.restore(mid, "mem");
  EXPECT_EQ(resumed.steps_done(), n);
  for (int i = 0; i < n; ++i) resumed.step();
  expect_same_tensors(straight.checkpoint(), resumed.checkpoint());
}

TEST(TrainCpu, ResumeFromCheckpointIsBitwiseIdentical) {
  TrainConfig config = small_config(fresh_dir("resume_inproc"));
  config.mbd_kernels = 10;
  config.ema_decay = 0.99f;  // the EMA generator resumes bitwise too (its "@ema" tensors)
  expect_resume_bitwise(config, 20);
}

// --lr-decay linear: the schedule's position is Adam's step count, restored from the
// checkpoint, so a resumed run continues the decay where it was (T = 40 steps; resumed at 20,
// lr half way down), with --d-steps 2 so D's T (80) differs from G's.
TEST(TrainCpu, ResumeWithLinearLrDecayIsBitwiseIdentical) {
  TrainConfig config = small_config(fresh_dir("resume_lr_decay"));
  config.mbd_kernels = 10;
  config.lr_decay = "linear";
  config.d_steps = 2;
  config.steps = 40;
  expect_resume_bitwise(config, 20);
}

// --d-dropout: the masks are keyed by (seed, step, pass, layer), and the step is restored from
// the checkpoint, so a resumed run draws the masks the straight run drew (--d-steps 2: two D
// passes per step with masks of their own).
TEST(TrainCpu, ResumeWithDDropoutIsBitwiseIdentical) {
  TrainConfig config = small_config(fresh_dir("resume_d_dropout"));
  config.mbd_kernels = 10;
  config.d_dropout = 0.5f;
  config.d_steps = 2;
  expect_resume_bitwise(config, 20);
}

// Checkpoints from before dropout became the default (0.3) have no d_dropout key and were
// trained without it: they read as 0, a resume with the default is refused with the value to
// pass, and with --d-dropout 0 it resumes. New checkpoints store the value, 0 included.
TEST(TrainCpu, CheckpointWithoutDDropoutKeyReadsAsNoDropout) {
  const fs::path dir = fresh_dir("d_dropout_old_checkpoint");
  TrainConfig config = small_config(dir / "first");
  config.d_dropout = 0.0f;
  config.steps = 2;
  config.final_eval = false;
  ASSERT_EQ(run_training(config), 0);
  Checkpoint ck = load_checkpoint((dir / "first" / "latest.ckpt").string());
  ASSERT_EQ(ck.header.at("config").at("d_dropout"), 0.0f);
  ck.header["config"].erase("d_dropout");
  const std::string old_path = (dir / "old.ckpt").string();
  save_checkpoint(old_path, ck);

  TrainConfig resumed = small_config(dir / "resumed_default");
  ASSERT_EQ(resumed.d_dropout, 0.3f);
  resumed.steps = 4;
  resumed.final_eval = false;
  resumed.resume = old_path;
  try {
    run_training(resumed);
    ADD_FAILURE() << "the default --d-dropout resumed a checkpoint trained without dropout";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("trained with 0; resume with --d-dropout 0"),
              std::string::npos)
        << e.what();
  }
  resumed.out_dir = (dir / "resumed_without").string();
  resumed.d_dropout = 0.0f;
  EXPECT_EQ(run_training(resumed), 0);
}

// Dropout acts in training only: after D and G updates with --d-dropout, the logits of
// discriminator_forward (evaluation) are those of the same weights without dropout, and they
// repeat; a training step with dropout gives other weights than one without.
TEST(TrainCpu, DDropoutChangesTrainingButNotEvaluation) {
  TrainConfig config = small_config(fresh_dir("d_dropout"));
  config.mbd_kernels = 10;
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  config.d_dropout = 0.0f;
  TrainingState plain(*backend, config, train.images);
  config.d_dropout = 0.5f;
  TrainingState dropped(*backend, config, train.images);
  plain.initialize();
  dropped.initialize();
  plain.step();
  dropped.step();
  const Checkpoint a = plain.checkpoint(), b = dropped.checkpoint();
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    if (a.tensors[t].name != "D.fc0.weight" && a.tensors[t].name != "G.fc0.weight") continue;
    EXPECT_NE(0, std::memcmp(a.tensors[t].data.data(), b.tensors[t].data.data(),
                             a.tensors[t].data.size() * sizeof(float)))
        << a.tensors[t].name << ": dropout did not act in the training step";
  }

  // Evaluation: D of `dropped`'s weights on a batch, with its dropout set and with it off.
  Gan& gan = dropped.gan();
  const int B = 8, pixels = dropped.image_pixels();
  const auto x = test::random_vector(static_cast<size_t>(B) * pixels, 5);
  BackendBuffer<float> xb(*backend, x.size());
  backend->to_backend(xb.get(), x.data(), x.size() * sizeof(float));
  auto logits = [&] {
    std::vector<float> out(B);
    backend->to_host(out.data(), gan.discriminator_forward(xb.get(), 1, B), B * sizeof(float));
    return out;
  };
  const std::vector<float> with_dropout_set = logits(), again = logits();
  gan.set_discriminator_dropout(0.0f, 0, nullptr);
  const std::vector<float> off = logits();
  EXPECT_EQ(0, std::memcmp(with_dropout_set.data(), off.data(), B * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(with_dropout_set.data(), again.data(), B * sizeof(float)));
}

// --lr-decay's T per network, and the schedule's first update: step 1 of a linear run is
// bitwise the constant run's (full lr), step 2 is not (lr (1 - 1/T)).
TEST(TrainCpu, LinearLrDecayCountsEachNetworksUpdatesAndStartsAtTheFullLr) {
  TrainConfig config = small_config(fresh_dir("lr_decay"));
  config.mbd_kernels = 10;
  config.steps = 30;
  config.d_steps = 2;
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState constant(*backend, config, train.images);
  EXPECT_EQ(constant.discriminator_hyper().lr_decay_updates, 0);
  EXPECT_EQ(constant.generator_hyper().lr_decay_updates, 0);
  config.lr_decay = "linear";
  TrainingState linear(*backend, config, train.images);
  EXPECT_EQ(linear.discriminator_hyper().lr_decay_updates, 60);  // 30 steps x 2 D updates
  EXPECT_EQ(linear.generator_hyper().lr_decay_updates, 30);
  EXPECT_EQ(linear.generator_hyper().lr, config.lr);
  config.steps = 0;  // from --epochs: 20 epochs of batches_per_epoch / d_steps steps
  TrainingState by_epochs(*backend, config, train.images);
  EXPECT_EQ(by_epochs.generator_hyper().lr_decay_updates, 20 * by_epochs.batches_per_epoch() / 2);

  // One D update per step, so step 1 is every network's update 1.
  config.d_steps = 1;
  config.steps = 30;
  TrainingState linear1(*backend, config, train.images);
  config.lr_decay = "none";
  TrainingState constant1(*backend, config, train.images);
  constant1.initialize();
  linear1.initialize();
  constant1.step();
  linear1.step();
  expect_same_tensors(constant1.checkpoint(), linear1.checkpoint());
  constant1.step();
  linear1.step();
  const Checkpoint a = constant1.checkpoint(), b = linear1.checkpoint();
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    if (a.tensors[t].name != "G.fc0.weight" && a.tensors[t].name != "D.fc0.weight") continue;
    EXPECT_NE(0, std::memcmp(a.tensors[t].data.data(), b.tensors[t].data.data(),
                             a.tensors[t].data.size() * sizeof(float)))
        << a.tensors[t].name << " after the second (decayed) update";
  }
}

// The EMA generator: after every step, ema = d ema + (1 - d) G with d = min(decay,
// (1 + t) / (10 + t)) and t the G updates done, starting from the initial weights; grids
// come from it unless --raw-generator.
TEST(TrainCpu, EmaGeneratorFollowsTheWarmedUpRecursionAndFeedsTheGrid) {
  TrainConfig config = small_config(fresh_dir("ema"));
  config.mbd_kernels = 10;
  config.ema_decay = 0.9f;
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState state(*backend, config, train.images);
  state.initialize();
  Network& g = state.gan().generator();
  ASSERT_TRUE(state.gan().has_ema());
  std::vector<float> expected(g.params, g.params + g.size);
  EXPECT_EQ(0, std::memcmp(expected.data(), state.gan().generator_ema(), g.size * sizeof(float)))
      << "the average starts at the initial weights";
  for (int64_t t = 1; t <= 30; ++t) {
    state.step();
    const float d = static_cast<float>(std::min(0.9, (1.0 + t) / (10.0 + t)));
    for (size_t i = 0; i < g.size; ++i) expected[i] = d * expected[i] + (1.0f - d) * g.params[i];
  }
  const float* ema = state.gan().generator_ema();
  EXPECT_EQ(0, std::memcmp(expected.data(), ema, g.size * sizeof(float)));
  double moved = 0;
  for (size_t i = 0; i < g.size; ++i)
    moved = std::max(moved, double(std::fabs(ema[i] - g.params[i])));
  EXPECT_GT(moved, 1e-4) << "the average should lag the raw weights";

  const std::vector<float> from_ema = state.fixed_grid_images();
  state.gan().sample_from_ema(false);
  const std::vector<float> from_raw = state.fixed_grid_images();
  EXPECT_NE(from_ema, from_raw) << "the grid did not come from the EMA generator";
  std::vector<float> direct(from_raw.size());
  std::vector<float> grid_z(TrainingState::kGridImages * static_cast<size_t>(config.latent_dim));
  backend->gaussian_noise(grid_z.data(), grid_z.size(), config.seed, kNoiseStreamFixedGrid,
                          nullptr);
  state.gan().generator_forward(grid_z.data(), direct.data(), TrainingState::kGridImages);
  EXPECT_EQ(from_raw, direct) << "--raw-generator grids are G's own";
}

// --ema-decay 0 means off: no EMA buffer, no "@ema" tensors; and a checkpoint without them
// resumes into a run with --ema-decay, the average starting there.
TEST(TrainCpu, EmaOffWritesNoEmaAndResumesIntoEmaFromTheWeights) {
  TrainConfig config = small_config(fresh_dir("ema_off"));
  config.mbd_kernels = 10;
  config.ema_decay = 0.0f;
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState plain(*backend, config, train.images);
  plain.initialize();
  for (int i = 0; i < 3; ++i) plain.step();
  EXPECT_FALSE(plain.gan().has_ema());
  const Checkpoint ck = parse_checkpoint(serialize_checkpoint(plain.checkpoint()), "mem");
  EXPECT_FALSE(checkpoint_has_ema(ck));

  config.ema_decay = 0.999f;
  TrainingState resumed(*backend, config, train.images);
  resumed.restore(ck, "mem");
  ASSERT_TRUE(resumed.gan().has_ema());
  const Network& g = resumed.gan().generator();
  EXPECT_EQ(0, std::memcmp(g.params, resumed.gan().generator_ema(), g.size * sizeof(float)));
  resumed.step();
  EXPECT_TRUE(checkpoint_has_ema(resumed.checkpoint()));
}

TEST(Shuffle, EpochPermutationIsAPermutationAndDiffersPerEpoch) {
  const auto p0 = epoch_permutation(1, 0, 1000), p1 = epoch_permutation(1, 1, 1000);
  EXPECT_NE(p0, p1);
  EXPECT_EQ(p0, epoch_permutation(1, 0, 1000));
  std::vector<int32_t> sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
}

// ---- the CLI ----------------------------------------------------------------------------

std::string last_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

TEST(Cli, TrainSampleResume) {
  const fs::path out = fresh_dir("cli_run");
  const std::string common = "train --device cpu --data " + data_dir().string() + " --out " +
                             out.string() + " --batch-size 32 --log-every 20 --mbd-kernels 20";
  runtest::BinaryResult r = runtest::run_command(common + " --steps 60");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out / "metrics.csv"));
  EXPECT_EQ(last_line(out / "metrics.csv").rfind("60,", 0), 0u) << last_line(out / "metrics.csv");
  EXPECT_TRUE(fs::exists(out / "samples" / "step_00000000.png"));
  EXPECT_TRUE(fs::exists(out / "samples" / "step_00000060.png"));
  EXPECT_TRUE(fs::exists(out / "progress.gif"));
  ASSERT_TRUE(fs::exists(out / "latest.ckpt"));

  const fs::path png = out / "grid.png";
  r = runtest::run_command("sample --device cpu --checkpoint " + (out / "latest.ckpt").string() +
                           " --out " + png.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_GT(fs::file_size(png), 1000u);

  r = runtest::run_command(common + " --steps 80 --resume " + (out / "latest.ckpt").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming at step 60"), std::string::npos) << r.output;
  EXPECT_EQ(last_line(out / "metrics.csv").rfind("80,", 0), 0u);
  const Checkpoint ck = load_checkpoint((out / "latest.ckpt").string());
  EXPECT_EQ(ck.header.value("step", 0), 80);
}

TEST(Cli, BadFlagsNameTheFlag) {
  const std::string base = "train --device cpu --data " + data_dir().string() + " --out " +
                           fresh_dir("cli_bad").string();
  for (const auto& [flag, value] :
       std::vector<std::pair<std::string, std::string>>{{"--batch-size", "0"},
                                                        {"--lr", "-1"},
                                                        {"--device", "tpu"},
                                                        {"--b1", "1.5"},
                                                        {"--mbd-dims", "0"},
                                                        {"--real-label", "0"},
                                                        {"--log-every", "0"},
                                                        {"--lr-d", "-5"},
                                                        {"--ema-decay", "1"},
                                                        {"--ema-decay", "-0.5"},
                                                        {"--lr-decay", "cosine"},
                                                        {"--d-dropout", "1"},
                                                        {"--d-dropout", "-0.1"},
                                                        {"--epochs", "0"}}) {
    const runtest::BinaryResult r = runtest::run_command(base + " " + flag + " " + value +
                                                         (flag == "--epochs" ? "" : " --steps 1"));
    EXPECT_NE(r.code, 0) << flag;
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag << ": " << r.output;
  }
  for (const std::string args : {"train --batch-size abc", "train --steps 0"}) {
    const runtest::BinaryResult r = runtest::run_command(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.output.find(args.substr(6, args.find(' ', 6) - 6)), std::string::npos)
        << args << ": " << r.output;
  }
}

// --resume refuses a checkpoint whose --lr-decay or --d-dropout differs, and with linear decay
// a different run length (the decay's T), naming the flag.
TEST(Cli, ResumeRefusesAnotherLrSchedule) {
  const fs::path out = fresh_dir("cli_resume_levers");
  const std::string common = "train --device cpu --data " + data_dir().string() + " --out " +
                             out.string() +
                             " --batch-size 16 --hidden-g 16 --hidden-d 16 --mbd-kernels 0 "
                             "--no-final-eval --checkpoint-every 2";
  runtest::BinaryResult r =
      runtest::run_command(common + " --steps 2 --lr-decay linear --d-dropout 0.5");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string resume = " --resume " + (out / "latest.ckpt").string();
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {" --steps 2 --lr-decay none --d-dropout 0.5",
            "--lr-decay: none differs from the checkpoint"},
           {" --steps 2 --lr-decay linear --d-dropout 0.25",
            "--d-dropout: 0.25 differs from the checkpoint"},
           {" --steps 4 --lr-decay linear --d-dropout 0.5", "--epochs/--steps: differ"}}) {
    r = runtest::run_command(common + args + resume);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << ": " << r.output;
  }
}

TEST(Cli, BadDataAndCheckpointNameTheFile) {
  const fs::path dir = fresh_dir("cli_bad_data");
  {
    std::ofstream f(dir / "train-images-idx3-ubyte", std::ios::binary);
    f << "not an idx file";
  }
  write_idx_labels((dir / "train-labels-idx1-ubyte").string(), std::vector<uint8_t>(10, 1));
  runtest::BinaryResult r = runtest::run_command("train --device cpu --steps 1 --data " +
                                                 dir.string() + " --out " + (dir / "out").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("train-images-idx3-ubyte"), std::string::npos) << r.output;

  r = runtest::run_command("train --device cpu --steps 1 --data " + (dir / "missing").string() +
                           " --out " + (dir / "out").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("missing"), std::string::npos) << r.output;

  const fs::path bad_ckpt = dir / "bad.ckpt";
  {
    std::ofstream f(bad_ckpt, std::ios::binary);
    f << "MNGANCKP garbage";
  }
  r = runtest::run_command("sample --device cpu --checkpoint " + bad_ckpt.string() + " --out " +
                           (dir / "x.png").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("bad.ckpt"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "x.png"));
}

TEST(Cli, CudaWithoutAGpuSaysSo) {
  if (cuda_unavailable_reason().empty()) GTEST_SKIP() << "a GPU is present";
  const runtest::BinaryResult r =
      runtest::run_command("train --device cuda --steps 1 --data " + data_dir().string() +
                           " --out " + fresh_dir("cli_cuda").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("cuda"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mnistgan

namespace mnistgan {
namespace {

// GPU tests: skipped without a device (tests/cuda_test.h).
using TrainCuda = test::CudaTest;

// One full training step on the GPU and on the CPU from the same weights, data and noise
// (all three come from Philox keyed by the seed, so both backends start identical).
// Tolerance: Adam's first step moves each weight by about lr * sign(g), so a gradient
// within float rounding of zero may flip sign between backends and move that weight by up
// to 2 lr; everything else agrees to GEMM rounding (~1e-6 relative).
TEST_F(TrainCuda, OneStepMatchesCpu) {
  TrainConfig config;
  config.data_dir = data_dir().string();
  config.batch_size = 64;
  config.ema_decay = 0.999f;  // the EMA generator's update is part of the step
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  TrainingState a(*cpu, config, train.images), b(*gpu, config, train.images);
  a.initialize();
  b.initialize();
  a.step();
  b.step();
  const Checkpoint ca = a.checkpoint(), cb = b.checkpoint();
  const double atol = 2.0 * config.lr + 1e-5;
  runtest::weights_close(ca, cb, atol);
}

}  // namespace
}  // namespace mnistgan

namespace mnistgan {
namespace {

// SIGTERM: the step in flight finishes, a checkpoint and a grid are written, exit 143.
TEST(Signals, SigtermWritesACheckpointAndExits143) {
  const fs::path out = fresh_dir("sigterm");
  const pid_t pid =
      runtest::spawn_binary(runtest::train_args(out, 100000), out.parent_path() / "sigterm.log");
  ASSERT_TRUE(runtest::wait_for_file(out / "metrics.csv", pid, 60)) << "training never logged";
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 143);
  const Checkpoint ck = load_checkpoint((out / "latest.ckpt").string());
  const int64_t step = ck.header.value("step", int64_t{0});
  EXPECT_GT(step, 0);
  EXPECT_TRUE(fs::exists(out / "samples" /
                         ("step_" + std::string(8 - std::to_string(step).size(), '0') +
                          std::to_string(step) + ".png")));
}

// SIGKILL then --resume, at several kill points and on both backends: test_kill_resume.cpp.

}  // namespace
}  // namespace mnistgan
