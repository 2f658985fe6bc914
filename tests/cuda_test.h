// cuda_test.h: the fixture of every test that needs a CUDA device (or the CUDA emulation).
//
//   using CudaOps = test::CudaTest;            TEST_F(CudaOps, GatherBatchBitwiseEqualsCpu)
//   class CudaLinearVersion : public test::CudaTestWithParam<Case> {};   (TEST_P)
//
// SetUp skips the test, with the reason, where there is no usable device. It fails a test
// whose suite name lacks "Cuda" first, device or not: ctest and scripts/gpu_session.sh pick
// the GPU tests by that name (*Cuda*: gpu.* in a CUDA build, emu.* on the emulation), so a
// GPU test named otherwise would be skipped here and never run there either.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/backend.h"  // cuda_unavailable_reason

namespace mnistgan {
namespace test {

// "" when `suite` may hold GPU tests, else why not.
inline std::string cuda_suite_name_problem(const std::string& suite) {
  if (suite.find("Cuda") != std::string::npos) return "";
  return "suite " + suite + " uses the CUDA fixture but has no \"Cuda\" in its name: ctest and " +
         "scripts/gpu_session.sh select the GPU tests by *Cuda*";
}

// Fails (suite name) or skips (no device) the running test; see the header comment.
inline void require_cuda_test() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string problem =
      cuda_suite_name_problem(info != nullptr ? info->test_suite_name() : "");
  if (!problem.empty()) GTEST_FAIL() << problem;
  if (const std::string why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
}

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override { require_cuda_test(); }
};

template <class Param>
class CudaTestWithParam : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override { require_cuda_test(); }
};

}  // namespace test
}  // namespace mnistgan
