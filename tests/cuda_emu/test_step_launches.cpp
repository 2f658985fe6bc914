// test_step_launches.cpp: the launch budget of one training step, counted on the emulated CUDA
// backend (cuda_emu::stats(): kernels, cuBLAS GEMM calls, memsets and copies, each counted
// when it runs). The step is the default run's: batch 64, minibatch discrimination on,
// unconditional, d_steps 1, the EMA generator on, --nan-policy stop. Every launch of a step is
// a dependent one (one stream), so at batch 64 the step's time is about the launch count times
// the ~2 us each costs on a GPU plus the little work there is; README "The training step".
#include <gtest/gtest.h>

#include <cstdio>  // std::printf
#include <string>

#include "cuda_runtime.h"  // cuda_emu::stats
#include "io/idx.h"        // load_mnist
#include "run_test_util.h"
#include "train/trainer.h"

namespace mnistgan {
namespace {

// Issue 20's budget for the batch-64 step with minibatch discrimination.
constexpr unsigned long long kStepLaunchBudget = 40;

struct StepLaunches {
  unsigned long long kernels = 0, gemms = 0, memsets = 0, copies = 0;
  int64_t captured_nodes = -1;  // Backend::captured_nodes(), what the benchmark reports
  unsigned long long total() const { return kernels + gemms + memsets + copies; }
};

// The launches of the third step of a default run (the first runs eagerly, the second is
// captured and replayed, the third only replayed), or of a third eager step without graphs.
StepLaunches third_step_launches(bool cuda_graph, float d_dropout = 0.0f) {
  TrainConfig config;
  config.cuda_graph = cuda_graph;
  config.d_dropout = d_dropout;
  const MnistSplit train = load_mnist(runtest::test_data_dir().string(), "train");
  auto backend = make_cuda_backend();
  TrainingState state(*backend, config, train.images);
  state.initialize();
  state.step();
  state.step();
  backend->synchronize();
  const cuda_emu::Stats before = cuda_emu::stats();
  state.step();
  backend->synchronize();
  const cuda_emu::Stats& after = cuda_emu::stats();
  StepLaunches n;
  n.kernels = after.kernels - before.kernels;
  n.gemms = after.gemms - before.gemms;
  n.memsets = after.memsets - before.memsets;
  n.copies = after.copies - before.copies;
  n.captured_nodes = backend->captured_nodes();
  std::printf("[ launches ] %s: %llu kernels, %llu cuBLAS GEMMs, %llu memsets, %llu copies\n",
              cuda_graph ? "graph" : "eager", n.kernels, n.gemms, n.memsets, n.copies);
  for (const auto& [name, count] : after.kernels_by_name) {
    const auto it = before.kernels_by_name.find(name);
    const unsigned long long in_step = count - (it == before.kernels_by_name.end() ? 0 : it->second);
    if (in_step > 0) std::printf("[ launches ]   %3llu  %s\n", in_step, name.c_str());
  }
  return n;
}

// Also with --d-dropout: the same count.
TEST(StepLaunchesCuda, DefaultBatch64StepIsWithinTheLaunchBudgetWithAndWithoutGraph) {
  const StepLaunches graph = third_step_launches(true);
  const StepLaunches eager = third_step_launches(false);
  EXPECT_LE(graph.total(), kStepLaunchBudget);
  // The benchmark's kernels_per_step (the captured graph's node count) is this count.
  EXPECT_EQ(graph.captured_nodes, static_cast<int64_t>(graph.total()));
  EXPECT_EQ(eager.captured_nodes, -1);
  // A replayed graph runs what eager issue runs.
  EXPECT_EQ(graph.kernels, eager.kernels);
  EXPECT_EQ(graph.gemms, eager.gemms);
  EXPECT_EQ(graph.memsets, eager.memsets);
  EXPECT_EQ(graph.copies, eager.copies);
  // --d-dropout costs no launch: the mask is drawn inside the linear kernel's forward epilogue
  // and again where its backward loads dY.
  const StepLaunches dropout = third_step_launches(true, 0.5f);
  EXPECT_EQ(dropout.total(), graph.total()) << "--d-dropout 0.5";
  EXPECT_EQ(dropout.kernels, graph.kernels) << "--d-dropout 0.5";
}

}  // namespace
}  // namespace mnistgan
