// test_lock_step.cpp: runs stepped together (train/trainer.h's LockStepper, the sweep's
// RunGroup) against the same runs stepped alone, and the op recording under it
// (core/op_recorder.h).
//   - CPU: a group of three runs (other seeds, another learning rate) is bitwise each run
//     alone, in its own allocations or in slabs;
//   - CUDA (a GPU or the emulation): with equal slabs (one model stride) op i of the runs is
//     one model-indexed launch, each run's seed, step and learning rates read from device
//     arrays, so the group's graph has as many launches as one run's; each run stays within the
//     CUDA-vs-CPU tolerance of itself alone, and the group repeats bitwise. With no common
//     stride every op goes run by run, bitwise as alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"
#include "core/op_recorder.h"
#include "cuda_test.h"            // CudaTest
#include "eval/eval_test_util.h"  // synthetic_split
#include "run_test_util.h"        // same_tensors
#include "sweep/run_group.h"
#include "train/trainer.h"

namespace mnistgan {
namespace {

// Narrow layers and a small batch: a step is milliseconds, also on the emulation.
TrainConfig small_config(uint64_t seed, float lr_g = 2e-4f) {
  TrainConfig c;
  c.device = "cpu";
  c.batch_size = 16;
  c.hidden_g = {32, 64};
  c.hidden_d = {64, 32};
  c.mbd_kernels = 8;
  c.mbd_dims = 4;
  c.seed = seed;
  c.lr_g = lr_g;
  c.ema_decay = 0.99f;
  return c;
}

const MnistSplit& data() {
  static const MnistSplit split = evaltest::synthetic_split(256, 5);
  return split;
}

constexpr int kSteps = 6;

// Three runs: seeds 1 and 2, and seed 3 with another G learning rate (so G's Adam cannot be
// one launch for all three, D's can).
std::vector<TrainConfig> three_configs() {
  return {small_config(1), small_config(2), small_config(3, 4e-4f)};
}

// Each config trained kSteps alone on `backend`; the checkpoints.
std::vector<Checkpoint> alone(Backend& backend, const std::vector<TrainConfig>& configs) {
  std::vector<Checkpoint> out;
  for (const TrainConfig& config : configs) {
    TrainingState state(backend, config, data().images, data().labels);
    state.initialize();
    for (int s = 0; s < kSteps; ++s) state.step();
    out.push_back(state.checkpoint());
  }
  return out;
}

struct GroupResult {
  std::vector<Checkpoint> checkpoints;
  int64_t captured_nodes = -1;  // the group step's graph, where the backend has graphs
};

// Where the runs' memory lies: each run's own allocations, equal slabs of one allocation (as
// a sweep gives a group on a backend that launches a group's op once), or slabs of one
// allocation at growing gaps, so that no buffer of the runs lies a constant stride apart.
enum class Layout { kOwn, kEqualSlabs, kUnevenSlabs };

// The configs trained kSteps together as one RunGroup on `backend`.
GroupResult together(Backend& backend, const std::vector<TrainConfig>& configs, Layout layout) {
  const bool slabs = layout != Layout::kOwn;
  const size_t bytes =
      slabs ? TrainingState::slab_bytes(backend, configs[0], data().images, data().labels) : 0;
  auto gap = [&](size_t i) { return layout == Layout::kUnevenSlabs ? 256 * i * (i + 1) / 2 : 0; };
  BackendBuffer<uint8_t> arena;
  if (slabs)
    arena = BackendBuffer<uint8_t>(backend, (bytes + gap(configs.size())) * configs.size());
  std::vector<ModelSlab> slab(configs.size());
  std::vector<std::unique_ptr<TrainingState>> states;
  GroupResult result;
  {
    RunGroup group;
    for (size_t i = 0; i < configs.size(); ++i) {
      if (slabs) slab[i] = {arena.get() + i * bytes + gap(i), bytes};
      states.push_back(std::make_unique<TrainingState>(
          backend, configs[i], data().images, data().labels, slabs ? &slab[i] : nullptr));
      states.back()->initialize();
      group.add(*states.back());
    }
    for (int s = 0; s < kSteps; ++s) group.step();
    result.captured_nodes = backend.captured_nodes();
  }
  for (auto& state : states) {
    EXPECT_EQ(state->steps_done(), kSteps);
    result.checkpoints.push_back(state->checkpoint());
  }
  if (slabs)
    for (const ModelSlab& s : slab) EXPECT_LE(s.used, s.size);
  return result;
}

TEST(LockStepCpu, AGroupIsBitwiseEachRunAlone) {
  auto cpu = make_cpu_backend();
  const std::vector<TrainConfig> configs = three_configs();
  const std::vector<Checkpoint> want = alone(*cpu, configs);
  const GroupResult got = together(*cpu, configs, Layout::kOwn);
  for (size_t i = 0; i < configs.size(); ++i)
    runtest::same_tensors(want[i], got.checkpoints[i], "run " + std::to_string(i));
  // Slabs change where buffers lie, not what is computed.
  const GroupResult in_slabs = together(*cpu, configs, Layout::kEqualSlabs);
  for (size_t i = 0; i < configs.size(); ++i)
    runtest::same_tensors(want[i], in_slabs.checkpoints[i], "slabs, run " + std::to_string(i));
}

TEST(OpRecorder, RecordsTheStepInsteadOfRunningItAndForwardsTheRest) {
  auto cpu = make_cpu_backend();
  OpRecorder recorder(*cpu);
  BackendBuffer<float> x(recorder, 4), acc = BackendBuffer<float>::zeroed(recorder, 4);
  const std::vector<float> ones(4, 1.0f);
  recorder.to_backend(x.get(), ones.data(), x.bytes());  // forwarded
  recorder.begin_recording();
  recorder.accumulate(x.get(), acc.get(), 4, nullptr);
  recorder.accumulate(x.get(), acc.get(), 4, nullptr);
  std::vector<float> host(4, -1.0f);
  EXPECT_THROW(recorder.to_host(host.data(), acc.get(), acc.bytes()), std::logic_error);
  EXPECT_THROW(recorder.begin_capture(), std::logic_error);
  const std::vector<RecordedOp> ops = recorder.take_recording();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_STREQ(recorded_op_name(ops[0]), "accumulate");
  recorder.to_host(host.data(), acc.get(), acc.bytes());
  EXPECT_EQ(host, std::vector<float>(4, 0.0f));  // recorded, not run
  cpu->run_models({&ops[0], &ops[1]});
  recorder.to_host(host.data(), acc.get(), acc.bytes());
  EXPECT_EQ(host, std::vector<float>(4, 2.0f));
}

TEST(OpRecorder, SlabCutsAllocationsInOrderThenFallsBackWhenFull) {
  auto cpu = make_cpu_backend();
  BackendBuffer<uint8_t> arena(*cpu, 1024);
  ModelSlab slab{arena.get(), 1024};
  OpRecorder recorder(*cpu, &slab);
  float* a = recorder.alloc_f32(10);    // 40 bytes: one 256-byte granule
  int64_t* b = recorder.alloc_i64(96);  // 768 bytes: three
  EXPECT_EQ(reinterpret_cast<uint8_t*>(a), arena.get());
  EXPECT_EQ(reinterpret_cast<uint8_t*>(b), arena.get() + 256);
  EXPECT_EQ(slab.used, 1024u);
  float* c = recorder.alloc_f32(1);  // full: from the backend
  EXPECT_TRUE(reinterpret_cast<uint8_t*>(c) < arena.get() ||
              reinterpret_cast<uint8_t*>(c) >= arena.get() + 1024);
  EXPECT_EQ(slab.requested, 1024u + 256u);
  recorder.free(a);  // in the slab: nothing to free
  recorder.free(c);
}

using LockStepCuda = test::CudaTest;

TEST_F(LockStepCuda, InSlabsOneLaunchServesTheGroupMatchesAloneAndRepeatsBitwise) {
  std::vector<TrainConfig> configs = three_configs();
  for (TrainConfig& c : configs) c.device = "cuda";
  auto cuda = make_cuda_backend();
  auto cpu = make_cpu_backend();
  std::vector<TrainConfig> cpu_configs = three_configs();
  const std::vector<Checkpoint> want = alone(*cpu, cpu_configs);
  // One run's step graph, for the launch count.
  int64_t single_nodes = -1;
  {
    TrainingState state(*cuda, configs[0], data().images);
    state.initialize();
    for (int s = 0; s < 2; ++s) state.step();
    single_nodes = cuda->captured_nodes();
  }
  const GroupResult got = together(*cuda, configs, Layout::kEqualSlabs);
  const GroupResult again = together(*cuda, configs, Layout::kEqualSlabs);
  std::printf("[ lock-step ] launches per step: one run %lld, three runs together %lld\n",
              static_cast<long long>(single_nodes), static_cast<long long>(got.captured_nodes));
  ASSERT_GT(single_nodes, 0);
  // Every op of the step is one launch for all three (run 3's own G learning rate included):
  // the group's graph has one run's launches.
  EXPECT_EQ(got.captured_nodes, single_nodes);
  // The CUDA-vs-CPU tolerance of a single run over a few steps (test_emu_training.cpp's).
  for (size_t i = 0; i < configs.size(); ++i) {
    runtest::weights_rms_close(got.checkpoints[i], want[i], 1e-2,
                               "run " + std::to_string(i) + " vs cpu");
    runtest::same_tensors(got.checkpoints[i], again.checkpoints[i],
                          "run " + std::to_string(i) + " twice");
  }
}

// Every lever whose ops a default run does not issue, in one group: conditional (the label
// gather, random labels, one-hot and column ops), dropout in D (each run's own mask seed and
// step), --nan-policy skip-step (the guarded counters and sums), two D steps, lr decay, and
// each run's own real label. Still one launch per op for the group; each run within tolerance
// of itself alone on the CPU.
TEST_F(LockStepCuda, EveryLeverKeepsOneLaunchPerOpForTheGroup) {
  std::vector<TrainConfig> configs = {small_config(4), small_config(5)};
  configs[1].real_label = 1.0f;
  for (TrainConfig& c : configs) {
    c.conditional = true;
    c.d_dropout = 0.3f;
    c.nan_policy = "skip-step";
    c.d_steps = 2;
    c.lr_decay = "linear";
    c.steps = 40;
  }
  std::vector<TrainConfig> cpu_configs = configs;
  for (TrainConfig& c : configs) c.device = "cuda";
  auto cuda = make_cuda_backend();
  auto cpu = make_cpu_backend();
  const std::vector<Checkpoint> want = alone(*cpu, cpu_configs);
  int64_t single_nodes = -1;
  {
    TrainingState state(*cuda, configs[0], data().images, data().labels);
    state.initialize();
    for (int s = 0; s < 2; ++s) state.step();
    single_nodes = cuda->captured_nodes();
  }
  const GroupResult got = together(*cuda, configs, Layout::kEqualSlabs);
  std::printf("[ lock-step ] every lever: one run %lld launches per step, two together %lld\n",
              static_cast<long long>(single_nodes), static_cast<long long>(got.captured_nodes));
  EXPECT_EQ(got.captured_nodes, single_nodes);
  for (size_t i = 0; i < configs.size(); ++i)
    runtest::weights_rms_close(got.checkpoints[i], want[i], 1e-2,
                               "levers, run " + std::to_string(i) + " vs cpu");
}

TEST_F(LockStepCuda, WithoutACommonStrideEveryOpGoesRunByRunBitwiseAsAlone) {
  std::vector<TrainConfig> configs = three_configs();
  for (TrainConfig& c : configs) c.device = "cuda";
  auto cuda = make_cuda_backend();
  const std::vector<Checkpoint> want = alone(*cuda, configs);
  int64_t single_nodes = cuda->captured_nodes();
  const GroupResult got = together(*cuda, configs, Layout::kUnevenSlabs);
  EXPECT_EQ(got.captured_nodes, 3 * single_nodes);
  for (size_t i = 0; i < configs.size(); ++i)
    runtest::same_tensors(want[i], got.checkpoints[i], "run " + std::to_string(i));
}

}  // namespace
}  // namespace mnistgan
