// test_emu_training.cpp: the whole program on the CUDA emulation. mnistgan_emu (the real
// host/cuda_backend.cu and kernels/ on tests/cuda_emu) trains 100 steps with --device cuda,
// with the CUDA graph on and off, and must match the CPU backend's run; the same run twice
// must be bitwise identical. (The kill-and-resume test runs on it too:
// KillResume.CudaSigkillAtThreePointsThenResumeIsBitwiseIdentical in the emulated binary.)
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::fabs, std::sqrt
#include <string>
#include <vector>

#include "checkpoint.h"  // load_checkpoint
#include "run_test_util.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

constexpr int kSteps = 100;

Checkpoint train(const std::string& name, const std::string& device,
                 const std::vector<std::string>& extra) {
  const fs::path out = runtest::fresh_dir(name);
  const runtest::BinaryResult r =
      runtest::run_binary(runtest::train_args(out, kSteps, extra, device, kSteps));
  EXPECT_EQ(r.code, 0) << r.output;
  return load_checkpoint((out / "latest.ckpt").string());
}

// Weights (not Adam moments) of two runs: the relative RMS difference of each tensor.
// Tolerance: the backends differ in summation order (GEMM blocking, reductions) by float
// rounding, ~1e-7 relative per op; GAN training amplifies such differences over steps, but
// after 100 steps from identical initial weights and data they stay far below the size of
// one Adam step over the run (lr * steps = 2e-2 absolute, a relative change of order 1).
// 1e-2 relative RMS per tensor separates "same computation, other rounding" from a wrong
// op (a wrong gradient moves every weight by ~lr every step: a relative change near 1).
constexpr double kRelRmsTolerance = 1e-2;

void expect_weights_close(const Checkpoint& a, const Checkpoint& b, const std::string& what) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << what;
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    const CheckpointTensor &x = a.tensors[t], &y = b.tensors[t];
    if (x.name.find('@') != std::string::npos) continue;  // Adam moments
    ASSERT_EQ(x.data.size(), y.data.size()) << what << " " << x.name;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < x.data.size(); ++i) {
      diff += (double(x.data[i]) - y.data[i]) * (double(x.data[i]) - y.data[i]);
      norm += double(x.data[i]) * x.data[i];
    }
    const double rel = std::sqrt(diff / std::max(norm, 1e-30));
    EXPECT_LE(rel, kRelRmsTolerance) << what << ": tensor " << x.name;
    std::printf("[ emu ] %s %s: relative RMS difference %.3g\n", what.c_str(), x.name.c_str(), rel);
  }
}

TEST(EmuCudaTraining, HundredStepsMatchCpuWithAndWithoutGraphAndRepeatBitwise) {
  const Checkpoint cpu = train("emu_train_cpu", "cpu", {});
  const Checkpoint graph = train("emu_train_graph", "cuda", {"--cuda-graph"});
  const Checkpoint eager = train("emu_train_eager", "cuda", {"--no-cuda-graph"});
  const Checkpoint again = train("emu_train_graph_again", "cuda", {"--cuda-graph"});
  EXPECT_EQ(graph.header.value("step", int64_t{0}), kSteps);
  expect_weights_close(graph, cpu, "cuda graph vs cpu");
  expect_weights_close(eager, cpu, "cuda no-graph vs cpu");
  // Graph replay runs the same kernels in the same order as eager issue: the same bits.
  runtest::same_tensors(graph, eager, "cuda graph vs no-graph");
  runtest::same_tensors(graph, again, "cuda graph, same seed twice");
}

}  // namespace
}  // namespace mnistgan
