// test_nan_guard.cpp: the divergence guard. Op level: adam_step, increment and accumulate
// do nothing when their skip flag is non-zero (CPU, and CUDA against the CPU). Training
// level, with TrainingState's test hook injecting a NaN gradient at a chosen step:
// --nan-policy skip-step skips exactly that update (weights, Adam moments and step count
// unchanged) and training goes on; --nan-policy stop ends the run with exit code 3 at that
// step, keeping the last good checkpoint; skip-step stops when every update of a log
// interval was skipped; without a bad value skip-step trains bitwise like stop.
#include <gtest/gtest.h>

#include <cmath>    // NAN, INFINITY, std::isfinite
#include <fstream>  // std::ifstream
#include <sstream>  // std::stringstream
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda_test.h"  // CudaTest
#include "io/checkpoint.h"
#include "run_test_util.h"
#include "test_util.h"
#include "train/progress.h"  // MetricsLog
#include "train/trainer.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using runtest::fresh_dir;
using runtest::same_tensors;
using runtest::test_data_dir;
using test::alloc;
using test::download;
using test::random_vector;
using test::upload;

// ---- ops --------------------------------------------------------------------------------

// Every flag value that must skip: a count, a huge count, NaN (a poisoned count).
const std::vector<float> kSkipFlags = {1.0f, 3e6f, NAN};

void check_guarded_ops_skip(Backend& be, const std::string& name) {
  const size_t n = 1001;
  const auto p0 = random_vector(n, 1), m0 = random_vector(n, 2), v0 = random_vector(n, 3, 0.1f, 1);
  const auto g = random_vector(n, 4);
  for (const float flag : kSkipFlags) {
    auto p = upload(be, p0), m = upload(be, m0), v = upload(be, v0), gr = upload(be, g);
    auto step = upload(be, std::vector<int64_t>{7});
    auto skip = upload(be, std::vector<float>{flag});
    be.adam_step(p.get(), gr.get(), m.get(), v.get(), n, AdamHyper{}, step.get(), skip.get());
    auto acc = upload(be, std::vector<float>{1, 2, 3});
    auto x = upload(be, std::vector<float>{NAN, 5, 6});
    be.accumulate(x.get(), acc.get(), 3, skip.get());
    const std::string what = name + " flag " + std::to_string(flag);
    test::expect_bitwise_equal(download(be, p.get(), n), p0, what + " params");
    test::expect_bitwise_equal(download(be, m.get(), n), m0, what + " m");
    test::expect_bitwise_equal(download(be, v.get(), n), v0, what + " v");
    EXPECT_EQ(download(be, step.get(), 1)[0], 7) << what;
    test::expect_bitwise_equal(download(be, acc.get(), 3), {1, 2, 3}, what + " accumulate");
  }
  // Flag 0: the same bits as the unguarded op.
  auto pa = upload(be, p0), ma = upload(be, m0), va = upload(be, v0), gr = upload(be, g);
  auto pb = upload(be, p0), mb = upload(be, m0), vb = upload(be, v0);
  auto step_a = upload(be, std::vector<int64_t>{7}), step_b = upload(be, std::vector<int64_t>{7});
  auto zero = upload(be, std::vector<float>{0.0f});
  be.adam_step(pa.get(), gr.get(), ma.get(), va.get(), n, AdamHyper{}, step_a.get());
  be.adam_step(pb.get(), gr.get(), mb.get(), vb.get(), n, AdamHyper{}, step_b.get(), zero.get());
  test::expect_bitwise_equal(download(be, pb.get(), n), download(be, pa.get(), n),
                             name + " flag 0 params");
  test::expect_bitwise_equal(download(be, vb.get(), n), download(be, va.get(), n),
                             name + " flag 0 v");
  EXPECT_EQ(download(be, step_b.get(), 1)[0], 8) << name;
  auto acc = upload(be, std::vector<float>{1, 2, 3});
  auto x = upload(be, std::vector<float>{0.5f, -2, 0.25f});
  be.accumulate(x.get(), acc.get(), 3, zero.get());
  be.accumulate(x.get(), acc.get(), 3, nullptr);
  test::expect_bitwise_equal(download(be, acc.get(), 3), {2.0f, -2.0f, 3.5f}, name + " accumulate");
}

TEST(NanGuardOps, CpuSkipsWhenTheFlagIsNonzero) {
  auto cpu = make_cpu_backend();
  check_guarded_ops_skip(*cpu, "cpu");
}

// GPU tests: skipped without a device (tests/cuda_test.h).
using NanGuardOpsCuda = test::CudaTest;
using NanGuardCuda = test::CudaTest;

TEST_F(NanGuardOpsCuda, SkipsWhenTheFlagIsNonzero) {
  auto gpu = make_cuda_backend();
  check_guarded_ops_skip(*gpu, "cuda");
}

// accumulate is one rounded add per element on both backends: bitwise equal.
TEST_F(NanGuardOpsCuda, AccumulateMatchesCpu) {
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  for (const size_t n : {size_t{1}, size_t{6}, size_t{300007}}) {
    const auto x = random_vector(n, 11), a = random_vector(n, 12, -100, 100);
    auto cx = upload(*cpu, x), ca = upload(*cpu, a), gx = upload(*gpu, x), ga = upload(*gpu, a);
    auto cz = upload(*cpu, std::vector<float>{0}), gz = upload(*gpu, std::vector<float>{0});
    for (int r = 0; r < 3; ++r) {
      cpu->accumulate(cx.get(), ca.get(), n, cz.get());
      gpu->accumulate(gx.get(), ga.get(), n, gz.get());
    }
    test::expect_bitwise_equal(download(*gpu, ga.get(), n), download(*cpu, ca.get(), n),
                               "accumulate n=" + std::to_string(n));
  }
}

// ---- training ---------------------------------------------------------------------------

// Small and fast: two hidden layers each side, 10 MBD kernels, batch 32.
TrainConfig guard_config(const fs::path& out, const std::string& policy) {
  TrainConfig c;
  c.data_dir = test_data_dir().string();
  c.out_dir = out.string();
  c.device = "cpu";
  c.batch_size = 32;
  c.hidden_g = {64, 128};
  c.hidden_d = {128, 64};
  c.mbd_kernels = 10;
  c.nan_policy = policy;
  return c;
}

int64_t adam_steps(const Checkpoint& ck, const char* net) {
  return ck.header.at("adam_step").at(net).get<int64_t>();
}

// Tensors of one network ("G." or "D." prefix, Adam moments included) equal bitwise?
bool network_unchanged(const Checkpoint& a, const Checkpoint& b, const std::string& prefix) {
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    if (a.tensors[t].name.rfind(prefix, 0) != 0) continue;
    if (a.tensors[t].data != b.tensors[t].data) return false;
  }
  return true;
}

bool all_finite(const Checkpoint& ck) {
  for (const CheckpointTensor& t : ck.tensors)
    for (float x : t.data)
      if (!std::isfinite(x)) return false;
  return true;
}

class SkipStepTarget : public ::testing::TestWithParam<NonfiniteTarget> {};

TEST_P(SkipStepTarget, SkipsExactlyTheInjectedUpdateAndGoesOn) {
  const NonfiniteTarget target = GetParam();
  const bool bad_g = target == NonfiniteTarget::kGenerator;
  const TrainConfig config = guard_config(fresh_dir("skip_exact"), "skip-step");
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cpu_backend();
  TrainingState state(*backend, config, train.images);
  state.initialize();
  for (int i = 0; i < 4; ++i) state.step();
  state.take_stats();
  const Checkpoint before = state.checkpoint();

  state.inject_nonfinite_gradient(5, target);
  state.step();  // step 5: this network's update sees a NaN gradient and is skipped
  const Checkpoint after = state.checkpoint();
  const StepStats stats = state.take_stats();
  const char* bad = bad_g ? "G" : "D";
  const char* good = bad_g ? "D" : "G";
  EXPECT_TRUE(network_unchanged(before, after, std::string(bad) + "."))
      << bad << "'s weights or Adam moments changed in the skipped update";
  EXPECT_FALSE(network_unchanged(before, after, std::string(good) + "."))
      << good << "'s update should have gone through";
  EXPECT_EQ(adam_steps(after, bad), adam_steps(before, bad)) << "Adam t moved";
  EXPECT_EQ(adam_steps(after, good), adam_steps(before, good) + 1);
  EXPECT_EQ(stats.steps, 1);
  EXPECT_EQ(stats.skipped_d, bad_g ? 0 : 1);
  EXPECT_EQ(stats.skipped_g, bad_g ? 1 : 0);
  EXPECT_EQ(stats.nonfinite, 0);
  EXPECT_TRUE(all_finite(after));
  if (bad_g) {  // D's update was applied: its losses are in the averages and finite
    EXPECT_TRUE(std::isfinite(stats.d_loss) && stats.d_loss > 0) << stats.d_loss;
  }

  for (int i = 0; i < 3; ++i) state.step();  // training goes on
  const Checkpoint later = state.checkpoint();
  const StepStats next = state.take_stats();
  EXPECT_EQ(next.skipped_d + next.skipped_g, 0);
  EXPECT_EQ(adam_steps(later, bad), adam_steps(after, bad) + 3);
  EXPECT_FALSE(network_unchanged(after, later, std::string(bad) + "."));
  EXPECT_TRUE(all_finite(later));
  EXPECT_TRUE(std::isfinite(next.d_loss) && std::isfinite(next.g_loss));
}

INSTANTIATE_TEST_SUITE_P(NanGuard, SkipStepTarget,
                         ::testing::Values(NonfiniteTarget::kDiscriminator,
                                           NonfiniteTarget::kGenerator),
                         [](const auto& info) {
                           return info.param == NonfiniteTarget::kGenerator ? "Generator"
                                                                            : "Discriminator";
                         });

// With nothing to skip, the guard changes no bit of the training.
TEST(NanGuard, SkipStepWithoutBadValuesTrainsBitwiseLikeStop) {
  const fs::path out = fresh_dir("skip_same");
  const MnistSplit train = load_mnist(test_data_dir().string(), "train");
  auto backend = make_cpu_backend();
  TrainingState a(*backend, guard_config(out, "stop"), train.images);
  TrainingState b(*backend, guard_config(out, "skip-step"), train.images);
  a.initialize();
  b.initialize();
  for (int i = 0; i < 12; ++i) a.step(), b.step();
  same_tensors(a.checkpoint(), b.checkpoint(), "stop vs skip-step");
  const StepStats sa = a.take_stats(), sb = b.take_stats();
  EXPECT_EQ(sb.skipped_d + sb.skipped_g, 0);
  // The loss averages agree too (same sums, accumulated through the guard slots).
  EXPECT_NEAR(sa.d_loss, sb.d_loss, 1e-6 * std::fabs(sa.d_loss));
  EXPECT_NEAR(sa.g_loss, sb.g_loss, 1e-6 * std::fabs(sa.g_loss));
}

// The last data row of metrics.csv with the given step, split on commas.
std::vector<std::string> metrics_row(const fs::path& csv, int64_t step) {
  std::ifstream in(csv);
  std::string line;
  std::vector<std::string> found;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!cells.empty() && cells[0] == std::to_string(step)) found = cells;
  }
  return found;
}

struct InjectedRun {
  int code = -1;
  std::string log;  // stderr
};

// run_training(config) with a NaN written into `target`'s gradient at step `bad_step`.
InjectedRun run_with_nan_at(const TrainConfig& config, int64_t bad_step, NonfiniteTarget target) {
  RunTestHooks hooks;
  hooks.nonfinite_gradient_step = bad_step;
  hooks.nonfinite_target = target;
  ::testing::internal::CaptureStderr();
  InjectedRun r;
  r.code = run_training(config, hooks);
  r.log = ::testing::internal::GetCapturedStderr();
  return r;
}

TEST(NanGuard, StopEndsTheRunAtThatStepAndKeepsTheLastGoodCheckpoint) {
  const fs::path out = fresh_dir("stop_run");
  TrainConfig config = guard_config(out, "stop");
  config.steps = 30;
  config.log_every = 1;
  config.checkpoint_every = 5;
  const InjectedRun r = run_with_nan_at(config, 12, NonfiniteTarget::kDiscriminator);
  EXPECT_EQ(r.code, 3) << r.log;
  EXPECT_NE(r.log.find("diverged at step 12"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("--nan-policy skip-step"), std::string::npos) << r.log;
  const Checkpoint ck = load_checkpoint((out / "latest.ckpt").string());
  EXPECT_EQ(ck.header.value("step", 0), 10);
  EXPECT_TRUE(all_finite(ck));
  EXPECT_TRUE(fs::exists(out / "checkpoints" / "step_00000010.ckpt"));
  EXPECT_FALSE(fs::exists(out / "checkpoints" / "step_00000015.ckpt"));
  EXPECT_EQ(metrics_row(out / "metrics.csv", 12).size(), 0u) << "the bad step was logged";
  EXPECT_EQ(metrics_row(out / "metrics.csv", 11).size(), 10u);
}

TEST(NanGuard, SkipStepSkipsOneUpdateReportsItAndFinishes) {
  const fs::path out = fresh_dir("skip_run");
  TrainConfig config = guard_config(out, "skip-step");
  config.steps = 20;
  config.log_every = 5;
  config.checkpoint_every = 10;
  const InjectedRun r = run_with_nan_at(config, 7, NonfiniteTarget::kGenerator);
  EXPECT_EQ(r.code, 0) << r.log;
  EXPECT_NE(r.log.find("skipped 1 update(s) with a NaN/Inf loss or gradient in steps 6-10"),
            std::string::npos)
      << r.log;
  const fs::path csv = out / "metrics.csv";
  const std::string text = runtest::read_text(csv);
  EXPECT_EQ(text.substr(0, text.find('\n') + 1), MetricsLog::header());
  for (const int64_t step : {5, 10, 15, 20}) {
    const std::vector<std::string> row = metrics_row(csv, step);
    ASSERT_EQ(row.size(), 10u) << "step " << step;
    EXPECT_EQ(row.back(), step == 10 ? "1" : "0") << "skipped column at step " << step;
    EXPECT_NE(row[2].find_first_of("123456789"), std::string::npos) << "d_loss " << row[2];
  }
  const Checkpoint ck = load_checkpoint((out / "latest.ckpt").string());
  EXPECT_EQ(ck.header.value("step", 0), 20);
  EXPECT_EQ(adam_steps(ck, "G"), 19);
  EXPECT_EQ(adam_steps(ck, "D"), 20);
  EXPECT_TRUE(all_finite(ck));
}

// A log interval in which every G update was skipped leaves nothing to skip to: stop.
TEST(NanGuard, SkipStepStopsWhenAWholeIntervalWasSkipped) {
  const fs::path out = fresh_dir("skip_all");
  TrainConfig config = guard_config(out, "skip-step");
  config.steps = 10;
  config.log_every = 1;
  config.checkpoint_every = 2;
  const InjectedRun r = run_with_nan_at(config, 3, NonfiniteTarget::kGenerator);
  EXPECT_EQ(r.code, 3) << r.log;
  EXPECT_NE(r.log.find("diverged at step 3"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("every update of a network"), std::string::npos) << r.log;
  EXPECT_EQ(load_checkpoint((out / "latest.ckpt").string()).header.value("step", 0), 2);
}

TEST(NanGuardCli, NanPolicyFlagIsValidatedAndRecorded) {
  const fs::path out = fresh_dir("nan_policy_cli");
  const std::vector<std::string> base = {
      "train",       "--device",   "cpu",          "--data",  test_data_dir().string(),
      "--out",       out.string(), "--batch-size", "32",      "--hidden-g",
      "64",          "--hidden-d", "64",           "--steps", "4",
      "--log-every", "2"};
  std::vector<std::string> args = base;
  args.insert(args.end(), {"--nan-policy", "ignore"});
  runtest::BinaryResult r = runtest::run_binary(args);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--nan-policy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stop or skip-step"), std::string::npos) << r.output;

  args = base;
  args.insert(args.end(), {"--nan-policy", "skip-step"});
  r = runtest::run_binary(args);
  ASSERT_EQ(r.code, 0) << r.output;
  const Checkpoint ck = load_checkpoint((out / "latest.ckpt").string());
  EXPECT_EQ(ck.header.at("config").at("nan_policy"), "skip-step");
  const std::vector<std::string> row = metrics_row(out / "metrics.csv", 4);
  ASSERT_EQ(row.size(), 10u);
  EXPECT_EQ(row.back(), "0");
}

// The same skip on the GPU (the hook issues the step eagerly; graphs off for that step).
TEST_F(NanGuardCuda, SkipStepSkipsTheInjectedUpdate) {
  TrainConfig config = guard_config(fresh_dir("skip_cuda"), "skip-step");
  config.device = "cuda";
  const MnistSplit train = load_mnist(config.data_dir, "train");
  auto backend = make_cuda_backend();
  TrainingState state(*backend, config, train.images);
  state.initialize();
  for (int i = 0; i < 4; ++i) state.step();  // graph captured and replayed
  state.take_stats();
  const Checkpoint before = state.checkpoint();
  state.inject_nonfinite_gradient(5, NonfiniteTarget::kGenerator);
  state.step();
  const Checkpoint after = state.checkpoint();
  const StepStats stats = state.take_stats();
  EXPECT_TRUE(network_unchanged(before, after, "G."));
  EXPECT_FALSE(network_unchanged(before, after, "D."));
  EXPECT_EQ(adam_steps(after, "G"), adam_steps(before, "G"));
  EXPECT_EQ(stats.skipped_g, 1);
  EXPECT_EQ(stats.skipped_d, 0);
  state.inject_nonfinite_gradient(-1, NonfiniteTarget::kGenerator);
  for (int i = 0; i < 3; ++i) state.step();  // back to graph replay
  const Checkpoint later = state.checkpoint();
  EXPECT_EQ(adam_steps(later, "G"), adam_steps(after, "G") + 3);
  EXPECT_TRUE(all_finite(later));
}

// On the GPU with graphs, the guard ops change no weight either.
TEST_F(NanGuardCuda, SkipStepWithoutBadValuesTrainsBitwiseLikeStop) {
  const fs::path out = fresh_dir("skip_same_cuda");
  const MnistSplit train = load_mnist(test_data_dir().string(), "train");
  auto ga = make_cuda_backend(), gb = make_cuda_backend();
  TrainConfig stop = guard_config(out, "stop"), skip = guard_config(out, "skip-step");
  stop.device = skip.device = "cuda";
  TrainingState a(*ga, stop, train.images), b(*gb, skip, train.images);
  a.initialize();
  b.initialize();
  for (int i = 0; i < 12; ++i) a.step(), b.step();
  same_tensors(a.checkpoint(), b.checkpoint(), "cuda stop vs skip-step");
}

}  // namespace
}  // namespace mnistgan
