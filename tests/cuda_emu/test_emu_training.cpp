// test_emu_training.cpp: the whole program on the CUDA emulation. mnistgan_emu (the real
// host/backends/cuda_backend.cu and kernels/ on tests/cuda_emu) trains 100 steps with --device
// cuda, with the CUDA graph on and off, and must match the CPU backend's run; the same run twice
// must be bitwise identical; and a device fault mid-run ends in its message and exit code 1.
// (The kill-and-resume test runs on it too:
// KillResume.CudaSigkillAtThreePointsThenResumeIsBitwiseIdentical in the emulated binary.)
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::fabs, std::sqrt
#include <cstdlib>    // setenv, unsetenv
#include <sstream>    // std::istringstream
#include <string>
#include <vector>

#include "io/checkpoint.h"  // load_checkpoint
#include "run_test_util.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

constexpr int kSteps = 100;

// Tolerance: the backends differ in summation order (GEMM blocking, reductions) and in the
// last bits of expf/tanhf, ~1e-7 relative per op. Training amplifies that (Adam turns a
// gradient within rounding of zero into a full +-lr step), but over these 100 smooth steps
// the losses stay within ~1e-3 relative and the weights within 5e-3 relative RMS (measured
// worst: 4.6e-3, G's first bias, which starts at 0). 1e-2 relative, per
// weight tensor (RMS) and per metrics value, separates "same computation, other rounding"
// from a wrong op, which moves every affected weight by ~lr every step.
constexpr double kRelRmsTolerance = 1e-2;

struct TrainingRun {
  Checkpoint checkpoint;
  std::vector<std::vector<double>> metrics;  // metrics.csv rows (every 5 steps)
};

// 100 steps at batch 32 with minibatch discrimination (10 kernels) and the narrower layers
// of the kill-and-resume test (G 128-256, D 256-128): a quarter of the emulation time of the
// full widths. At the full widths the GAN's first sharp transition (around step 40 there)
// amplifies rounding differences chaotically, so runs on different backends part ways
// after it; at these widths all 100 steps stay in the smooth regime.
// levers: further flags (the training levers' test), steps: the run's length.
TrainingRun train(const std::string& name, const std::string& device, const std::string& graph_flag,
                  const std::vector<std::string>& levers = {}, int steps = kSteps) {
  const fs::path out = runtest::fresh_dir(name);
  std::vector<std::string> extra = {"--hidden-g", "128,256", "--hidden-d", "256,128", graph_flag};
  extra.insert(extra.end(), levers.begin(), levers.end());
  const runtest::BinaryResult r =
      runtest::run_binary(runtest::train_args(out, steps, extra, device, steps));
  EXPECT_EQ(r.code, 0) << r.output;
  TrainingRun run{load_checkpoint((out / "latest.ckpt").string()), {}};
  std::istringstream csv(runtest::read_text(out / "metrics.csv"));
  std::string line;
  std::getline(csv, line);  // header
  while (std::getline(csv, line)) {
    std::vector<double> row;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, ',')) row.push_back(std::stod(field));
    run.metrics.push_back(row);
  }
  return run;
}

// d_loss, g_loss, d_x, d_g_z (columns 2-5) of every metrics row within kRelRmsTolerance.
void expect_metrics_close(const TrainingRun& a, const TrainingRun& b, const std::string& what) {
  ASSERT_EQ(a.metrics.size(), b.metrics.size()) << what;
  for (size_t r = 0; r < a.metrics.size(); ++r)
    for (size_t c = 2; c <= 5; ++c)
      EXPECT_NEAR(a.metrics[r][c], b.metrics[r][c], kRelRmsTolerance * std::fabs(b.metrics[r][c]))
          << what << ": metrics row of step " << a.metrics[r][0] << ", column " << c;
}

void expect_weights_close(const Checkpoint& a, const Checkpoint& b, const std::string& what) {
  runtest::weights_rms_close(a, b, kRelRmsTolerance, what);
}

TEST(EmuCudaTraining, HundredStepsMatchCpuWithAndWithoutGraphAndRepeatBitwise) {
  const TrainingRun cpu = train("emu_train_cpu", "cpu", "--no-cuda-graph");
  const TrainingRun graph = train("emu_train_graph", "cuda", "--cuda-graph");
  const TrainingRun eager = train("emu_train_eager", "cuda", "--no-cuda-graph");
  const TrainingRun again = train("emu_train_graph_again", "cuda", "--cuda-graph");
  EXPECT_EQ(graph.checkpoint.header.value("step", int64_t{0}), kSteps);
  expect_weights_close(graph.checkpoint, cpu.checkpoint, "cuda graph vs cpu");
  expect_weights_close(eager.checkpoint, cpu.checkpoint, "cuda no-graph vs cpu");
  expect_metrics_close(graph, cpu, "cuda graph vs cpu");
  expect_metrics_close(eager, cpu, "cuda no-graph vs cpu");
  // Graph replay runs the same kernels in the same order as eager issue: the same bits.
  runtest::same_tensors(graph.checkpoint, eager.checkpoint, "cuda graph vs no-graph");
  runtest::same_tensors(graph.checkpoint, again.checkpoint, "cuda graph, same seed twice");
}

// The training levers (--lr-decay linear, --d-dropout) on the emulation: the schedule in the
// Adam kernel and the dropout masks in the linear kernel, both keyed by step counts read on the
// device and replayed from the graph, match the CPU at the same tolerance over a shorter run;
// --d-steps 2 gives D its own T and two dropout passes per step.
TEST(EmuCudaTraining, LeversMatchCpu) {
  const std::vector<std::string> levers = {"--lr-decay", "linear",      "--d-steps",
                                           "2",          "--d-dropout", "0.3"};
  constexpr int kLeverSteps = 40;
  const TrainingRun cpu = train("emu_levers_cpu", "cpu", "--no-cuda-graph", levers, kLeverSteps);
  const TrainingRun graph = train("emu_levers_graph", "cuda", "--cuda-graph", levers, kLeverSteps);
  EXPECT_EQ(graph.checkpoint.header.value("step", int64_t{0}), kLeverSteps);
  expect_weights_close(graph.checkpoint, cpu.checkpoint, "levers, cuda graph vs cpu");
  expect_metrics_close(graph, cpu, "levers, cuda graph vs cpu");
}

// A device fault mid-run (the emulator's injected fault at the 200th kernel launch, inside
// the first steps) ends the program with the fault's message and exit code 1: as the stack
// unwinds, freeing the backend's buffers fails with the same sticky error, and that is
// reported once instead of throwing from a destructor (std::terminate, exit 134).
TEST(EmuTrainingCuda, ADeviceFaultEndsInItsMessageAndExitCode1) {
  const fs::path out = runtest::fresh_dir("emu_fault");
  ASSERT_EQ(setenv("MNISTGAN_EMU_FAULT_AT_KERNEL", "200", 1), 0);
  const runtest::BinaryResult r = runtest::run_binary(
      runtest::train_args(out, 20, {"--hidden-g", "64", "--hidden-d", "64"}, "cuda", 20));
  unsetenv("MNISTGAN_EMU_FAULT_AT_KERNEL");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("injected fault"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mnistgan: error:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cudaErrorLaunchFailure"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("terminate"), std::string::npos) << r.output;
  // The backend's own report (backends/cuda_backend.cu's free), exactly once.
  const std::string freeing = "mnistgan: cudaFree failed: cudaErrorLaunchFailure";
  const size_t first = r.output.find(freeing);
  ASSERT_NE(first, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(freeing, first + 1), std::string::npos) << "reported more than once:\n"
                                                                  << r.output;
}

}  // namespace
}  // namespace mnistgan
