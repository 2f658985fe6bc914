// test_op_cases.cpp: the case table of bench/op_cases.h on the CPU backend alone (its CUDA
// use: tests/backends/test_cuda_ops.cpp and the benchmark): every case makes the same inputs
// on every call, runs, and passes against itself; a changed output fails the comparison; the
// benchmark's cases are one training step's calls.
#include <gtest/gtest.h>

#include <cmath>  // std::isnan
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bench/op_cases.h"
#include "core/backend.h"
#include "core/op_checks.h"

namespace mnistgan {
namespace {

// Two CPU backends run every op's test cases (the non-emulated set, the larger one) and
// agree bitwise: the inputs are seeded, so a case is the same on every backend.
TEST(OpCases, EveryTestCaseRunsAndRepeatsOnTheCpu) {
  auto a = make_cpu_backend(), b = make_cpu_backend();
  for (const OpCheck& check : op_checks()) {
    const std::vector<OpCase> cases = op_test_cases(check.op, false);
    ASSERT_FALSE(cases.empty()) << check.name;
    for (const OpCase& c : cases) {
      EXPECT_EQ(c.op, check.op) << c.name();
      EXPECT_GT(c.work.bytes, 0) << c.name();
      const std::unique_ptr<CaseRun> ra = c.make(*a), rb = c.make(*b);
      ra->run();
      rb->run();
      const std::vector<CaseOutput> oa = ra->outputs(), ob = rb->outputs();
      ASSERT_EQ(oa.size(), ob.size()) << c.name();
      for (size_t i = 0; i < oa.size(); ++i) {
        ASSERT_EQ(oa[i].values.size(), ob[i].values.size()) << c.name() << " " << oa[i].name;
        const std::string why = check_close(oa[i].values, ob[i].values, Tolerance{0, 0, true},
                                            c.name() + " " + oa[i].name, nullptr);
        EXPECT_TRUE(why.empty()) << why;
      }
    }
  }
}

// One element off by more than the tolerance fails, naming the case and the output.
TEST(OpCases, ComparisonFailsOnAChangedOutput) {
  auto cpu = make_cpu_backend();
  const OpCase c = op_test_cases(Op::kLinearForward, false).at(0);
  const std::unique_ptr<CaseRun> run = c.make(*cpu);
  run->run();
  const std::vector<CaseOutput> want = run->outputs();
  EXPECT_EQ(compare_case_outputs(c, want, want, nullptr), "");
  std::vector<CaseOutput> got = want;
  ASSERT_FALSE(got[0].values.empty());
  got[0].values[0] += 0.5f;
  double max_err = 0;
  const std::string why = compare_case_outputs(c, got, want, &max_err);
  EXPECT_NE(why.find(c.name() + ": Y"), std::string::npos) << why;
  EXPECT_NEAR(max_err, 0.5, 1e-6);
}

// The outputs an op must overwrite start as NaN: a case whose op is never run fails.
TEST(OpCases, OutputsArePoisonedBeforeTheRun) {
  auto cpu = make_cpu_backend();
  const OpCase c = op_test_cases(Op::kMbdForward, false).at(0);
  const std::vector<CaseOutput> before = c.make(*cpu)->outputs();
  ASSERT_FALSE(before.at(0).values.empty());
  for (float v : before[0].values) EXPECT_TRUE(std::isnan(v));
  const std::unique_ptr<CaseRun> ran = c.make(*cpu);
  ran->run();
  EXPECT_NE(compare_case_outputs(c, before, ran->outputs(), nullptr), "");
}

// The benchmark's cases at one batch: per layer forward, backward and (hidden layers with an
// activation) activation backward, then MBD, BCE, the logit layer, Adam for G and D.
TEST(OpCases, BenchCasesAreOneTrainingStep) {
  const ModelShape shape;
  const std::vector<OpCase> cases = op_bench_cases(shape, 8);
  ASSERT_EQ(cases.size(), 18u + 7 + 2 + 1 + 1 + 2);
  std::set<std::string> layers;
  for (const OpCase& c : cases) {
    EXPECT_FALSE(c.layer.empty()) << c.name();
    EXPECT_GT(c.work.bytes, 0) << c.name();
    layers.insert(c.layer);
  }
  for (const char* want : {"G.fc0", "G.fc3", "D.fc0", "D.mbd", "D.out", "D.loss", "G.params",
                           "D.params"})
    EXPECT_TRUE(layers.count(want)) << want;
  EXPECT_EQ(cases[0].kernel, "linear_forward");
  EXPECT_EQ(cases[0].rows, 8);  // G at the batch
  EXPECT_EQ(cases.back().kernel, "adam");
  ModelShape no_mbd;
  no_mbd.mbd_kernels = 0;
  // 8 layers (no T), 2 fewer rows of each linear op, no MBD rows.
  EXPECT_EQ(op_bench_cases(no_mbd, 8).size(), cases.size() - 2 - 2);
}

}  // namespace
}  // namespace mnistgan
