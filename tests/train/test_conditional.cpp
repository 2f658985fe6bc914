// test_conditional.cpp: `train --conditional` end to end: exact resume, the checkpoint's
// `conditional`/`classes` keys (and older files reading as unconditional), the one-row-per-
// digit progress grid, the resume flag check, and the emulated CUDA step against the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_test.h"  // CudaTest
#include "io/checkpoint.h"
#include "io/idx.h"
#include "io/image_io.h"    // read_png_gray
#include "model/sample.h"   // checkpoint_is_conditional, stored_model
#include "run_test_util.h"  // fresh_dir, test_data_dir, same_tensors
#include "train/disk_space.h"
#include "train/trainer.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

TrainConfig conditional_config(const fs::path& out) {
  TrainConfig c;
  c.data_dir = runtest::test_data_dir().string();
  c.out_dir = out.string();
  c.device = "cpu";
  c.batch_size = 32;
  c.mbd_kernels = 10;
  c.conditional = true;
  return c;
}

// Bitwise: 24 straight steps == 12 steps, checkpoint, restore into a fresh state, 12 more
// (the fake labels are Philox draws keyed by (seed, step), so they need no saved state).
TEST(TrainConditional, ResumeIsBitwiseIdenticalAndTheHeaderSaysConditional) {
  const TrainConfig config = conditional_config(runtest::fresh_dir("cond_resume"));
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState straight(*backend, config, train.images, train.labels);
  straight.initialize();
  for (int i = 0; i < 24; ++i) straight.step();
  Checkpoint mid;
  {
    TrainingState first(*backend, config, train.images, train.labels);
    first.initialize();
    for (int i = 0; i < 12; ++i) first.step();
    mid = parse_checkpoint(serialize_checkpoint(first.checkpoint()), "mem");
  }
  EXPECT_EQ(mid.header.at("conditional"), true);
  EXPECT_EQ(mid.header.at("classes"), kDigitClasses);
  EXPECT_TRUE(checkpoint_is_conditional(mid, "mem"));
  EXPECT_TRUE(stored_model(mid, "mem").config.conditional);
  EXPECT_EQ(mid.find("G.fc0.weight")->shape, (std::vector<int64_t>{256, 100 + 10}));
  EXPECT_EQ(mid.find("D.fc0.weight")->shape, (std::vector<int64_t>{1024, 784 + 10}));
  TrainingState resumed(*backend, config, train.images, train.labels);
  resumed.restore(mid, "mem");
  for (int i = 0; i < 12; ++i) resumed.step();
  runtest::same_tensors(straight.checkpoint(), resumed.checkpoint(), "conditional resume");
  const StepStats stats = resumed.take_stats();
  EXPECT_EQ(stats.nonfinite, 0);
}

TEST(TrainConditional, CheckpointsWithoutTheKeyAreUnconditionalAndBadValuesAreRefused) {
  TrainConfig config = conditional_config(runtest::fresh_dir("cond_keys"));
  config.conditional = false;
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState plain(*backend, config, train.images);
  plain.initialize();
  Checkpoint ck = plain.checkpoint();
  // An unconditional run writes neither key (its files are what older versions wrote).
  EXPECT_FALSE(ck.header.contains("conditional"));
  EXPECT_FALSE(ck.header.contains("classes"));
  EXPECT_FALSE(ck.header.at("config").contains("conditional"));
  EXPECT_FALSE(checkpoint_is_conditional(ck, "mem"));
  EXPECT_FALSE(stored_model(ck, "mem").config.conditional);
  ck.header["conditional"] = "yes";
  EXPECT_THROW(checkpoint_is_conditional(ck, "mem"), CheckpointError);
  ck.header["conditional"] = true;
  ck.header["classes"] = 26;
  EXPECT_THROW(checkpoint_is_conditional(ck, "mem"), CheckpointError);
}

TEST(TrainConditional, TheProgressGridHasOneRowPerDigitWithSharedColumnNoise) {
  const TrainConfig config = conditional_config(runtest::fresh_dir("cond_grid"));
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState state(*backend, config, train.images, train.labels);
  state.initialize();
  for (int i = 0; i < 5; ++i) state.step();
  ASSERT_EQ(state.grid_images(), kDigitClasses * TrainingState::kGridPerRow);
  const std::vector<float> grid = state.fixed_grid_images();
  const int pixels = state.image_pixels();
  ASSERT_EQ(grid.size(), static_cast<size_t>(state.grid_images()) * pixels);
  // Rows ask for different digits with the same noise: row 0 and row 1 differ in every column.
  for (int c = 0; c < TrainingState::kGridPerRow; ++c) {
    double diff = 0;
    for (int p = 0; p < pixels; ++p)
      diff += std::fabs(grid[static_cast<size_t>(c) * pixels + p] -
                        grid[static_cast<size_t>(TrainingState::kGridPerRow + c) * pixels + p]);
    EXPECT_GT(diff, 0.0) << "column " << c;
  }
}

TEST(TrainConditional, LabelsAreRequiredAndInRange) {
  const TrainConfig config = conditional_config(runtest::fresh_dir("cond_labels"));
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  EXPECT_THROW(TrainingState(*backend, config, train.images), std::invalid_argument);
  std::vector<uint8_t> bad = train.labels;
  bad[3] = 10;
  try {
    TrainingState state(*backend, config, train.images, bad);
    ADD_FAILURE() << "a label of 10 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--conditional"), std::string::npos) << e.what();
  }
}

// --conditional must match the checkpoint being resumed, both ways, with the flag named.
TEST(TrainConditional, ResumeRefusesAMismatchedConditionalFlag) {
  const fs::path dir = runtest::fresh_dir("cond_resume_flag");
  TrainConfig plain = conditional_config(dir / "plain");
  plain.conditional = false;
  plain.steps = 2;
  plain.final_eval = false;
  ASSERT_EQ(run_training(plain), 0);
  TrainConfig conditional = conditional_config(dir / "cond");
  conditional.steps = 2;
  conditional.final_eval = false;
  ASSERT_EQ(run_training(conditional), 0);

  TrainConfig wrong = conditional_config(dir / "wrong1");
  wrong.steps = 4;
  wrong.resume = (dir / "plain" / "latest.ckpt").string();
  try {
    run_training(wrong);
    ADD_FAILURE() << "--conditional resumed an unconditional checkpoint";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--conditional"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unconditional"), std::string::npos) << e.what();
  }
  wrong = plain;
  wrong.out_dir = (dir / "wrong2").string();
  wrong.steps = 4;
  wrong.resume = (dir / "cond" / "latest.ckpt").string();
  try {
    run_training(wrong);
    ADD_FAILURE() << "an unconditional run resumed a conditional checkpoint";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("with --conditional"), std::string::npos) << e.what();
  }
}

// `sample` on a conditional checkpoint: the default grid has one row per digit, --digit a
// grid of one digit; --digit on an unconditional checkpoint and outside 0-9 are refused
// with the flag named.
TEST(SampleConditional, DefaultGridHasARowPerDigitAndDigitIsChecked) {
  const fs::path dir = runtest::fresh_dir("cond_sample");
  TrainConfig conditional = conditional_config(dir / "cond");
  conditional.steps = 2;
  conditional.final_eval = false;
  ASSERT_EQ(run_training(conditional), 0);
  TrainConfig plain = conditional;
  plain.conditional = false;
  plain.out_dir = (dir / "plain").string();
  ASSERT_EQ(run_training(plain), 0);

  SampleOptions options;
  options.checkpoint = (dir / "cond" / "latest.ckpt").string();
  options.device = "cpu";
  options.out = (dir / "rows.png").string();
  run_sample(options);
  const GrayImage rows = read_png_gray(options.out);
  EXPECT_EQ(rows.width, 8 * (28 + 2) + 2);
  EXPECT_EQ(rows.height, 10 * (28 + 2) + 2) << "one row per digit";
  options.digit = 7;
  options.out = (dir / "sevens.png").string();
  run_sample(options);
  EXPECT_EQ(read_png_gray(options.out).height, 8 * (28 + 2) + 2) << "64 sevens, 8 per row";

  options.checkpoint = (dir / "plain" / "latest.ckpt").string();
  try {
    run_sample(options);
    ADD_FAILURE() << "--digit was accepted for an unconditional checkpoint";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--digit"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unconditional"), std::string::npos) << e.what();
  }
  options.digit = 10;
  try {
    options.validate();
    ADD_FAILURE() << "--digit 10 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--digit"), std::string::npos) << e.what();
  }
  const std::vector<int32_t> labels = sample_grid_labels(20, 8, -1);
  EXPECT_EQ(labels[7], 0);
  EXPECT_EQ(labels[8], 1);
  EXPECT_EQ(labels[19], 2);
  EXPECT_EQ(sample_grid_labels(3, 8, 4), (std::vector<int32_t>{4, 4, 4}));
}

TEST(TrainConditional, CheckpointSizeBoundCoversAConditionalCheckpoint) {
  const TrainConfig config = conditional_config(runtest::fresh_dir("cond_size"));
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState state(*backend, config, train.images, train.labels);
  state.initialize();
  const uint64_t real = serialize_checkpoint(state.checkpoint()).size();
  const uint64_t bound = checkpoint_size_bound(model_shape_of(config, state.image_pixels()));
  EXPECT_GE(bound, real);
  EXPECT_LT(bound - real, 80u << 10);
}

using TrainConditionalCuda = test::CudaTest;  // skipped without a device (tests/cuda_test.h)

// Two conditional steps on the (emulated or real) GPU and on the CPU from the same weights,
// data, labels and noise: the second step is captured as a graph and replayed. Tolerance as
// TrainCuda.OneStepMatchesCpu (test_train.cpp), per step: a gradient within rounding of
// zero may flip Adam's sign and move a weight by up to 2 lr.
TEST_F(TrainConditionalCuda, TwoStepsMatchCpu) {
  TrainConfig config = conditional_config(runtest::fresh_dir("cond_cuda"));
  config.batch_size = 32;
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  TrainingState a(*cpu, config, train.images, train.labels),
      b(*gpu, config, train.images, train.labels);
  a.initialize();
  b.initialize();
  for (int i = 0; i < 2; ++i) {
    a.step();
    b.step();
  }
  const Checkpoint ca = a.checkpoint(), cb = b.checkpoint();
  const double atol = 2 * 2.0 * config.lr + 1e-5;
  runtest::weights_close(ca, cb, atol);
  const StepStats sa = a.take_stats(), sb = b.take_stats();
  EXPECT_EQ(sb.nonfinite, 0);
  EXPECT_NEAR(sa.d_loss, sb.d_loss, 1e-3);
  EXPECT_NEAR(sa.g_loss, sb.g_loss, 1e-3);
}

}  // namespace
}  // namespace mnistgan
