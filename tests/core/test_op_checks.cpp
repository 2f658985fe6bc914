// test_op_checks.cpp: the op-check table (host/core/op_checks.h) that the CUDA-vs-CPU tests
// and the benchmark read: complete, in order, and its comparison says what failed.
#include <gtest/gtest.h>

#include <cmath>  // NAN
#include <string>
#include <vector>

#include "core/op_checks.h"

namespace mnistgan {
namespace {

TEST(OpChecks, EveryOpIsListedInOrderWithShapesAndATolerance) {
  const std::vector<OpCheck>& table = op_checks();
  ASSERT_EQ(table.size(), static_cast<size_t>(Op::kLogitBce) + 1);
  for (size_t i = 0; i < table.size(); ++i) {
    const OpCheck& c = table[i];
    EXPECT_EQ(static_cast<size_t>(c.op), i) << c.name;
    EXPECT_EQ(&op_check(c.op), &c) << c.name;
    EXPECT_FALSE(c.shapes.empty()) << c.name;
    const Tolerance t = op_tolerance(c.op, 64, 1.0);
    EXPECT_TRUE(t.bitwise || (t.atol > 0 && t.rtol > 0)) << c.name;
    EXPECT_GT(op_work(c.op, c.shapes.back()).bytes, 0) << c.name;
  }
}

// The GEMM model: atol grows like sqrt(K) and the output scale; TF32 is looser.
TEST(OpChecks, GemmToleranceFollowsTheReductionAndTheScale) {
  const Tolerance k64 = op_tolerance(Op::kLinearForward, 64, 1.0);
  EXPECT_DOUBLE_EQ(op_tolerance(Op::kLinearForward, 256, 1.0).atol, 2 * k64.atol);
  EXPECT_DOUBLE_EQ(op_tolerance(Op::kLinearForward, 64, 3.0).atol, 2 * k64.atol);
  EXPECT_GT(op_tolerance(Op::kLinearForward, 64, 1.0, true).atol, k64.atol);
  EXPECT_DOUBLE_EQ(op_tolerance(Op::kMbdBackward, 100).atol,
                   100 * op_tolerance(Op::kMbdBackward, 1).atol);
  EXPECT_DOUBLE_EQ(op_work(Op::kLinearForward, OpShape{2, 3, 4}).flops,
                   linear_forward_work(2, 3, 4, true).flops);
}

TEST(OpChecks, CheckCloseNamesTheWorstElementAndTracksTheLargestError) {
  const Tolerance t{0.1, 0.0};
  double max_error = 0;
  EXPECT_EQ(check_close({1.0f, NAN}, {1.05f, NAN}, t, "ok", &max_error), "");
  EXPECT_NEAR(max_error, 0.05, 1e-6);
  const std::string why = check_close({1.0f, 2.0f, 9.0f}, {1.0f, 2.5f, 3.0f}, t, "y", &max_error);
  EXPECT_NE(why.find("y: 2 of 3"), std::string::npos) << why;
  EXPECT_NE(why.find("worst [2]"), std::string::npos) << why;
  EXPECT_DOUBLE_EQ(max_error, 6.0);
  // Bitwise: -0 and 0 differ, the same NaN does not.
  const Tolerance exact{0, 0, true};
  EXPECT_NE(check_close({-0.0f}, {0.0f}, exact, "z", nullptr), "");
  EXPECT_EQ(check_close({NAN}, {NAN}, exact, "nan", nullptr), "");
  EXPECT_NE(check_close({1.0f}, {1.0f, 2.0f}, t, "sizes", nullptr), "");
}

}  // namespace
}  // namespace mnistgan
