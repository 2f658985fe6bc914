// test_conventions.cpp: conventions that scripts rely on, checked on the test sources.
//
// scripts/gpu_session.sh runs "every test that needs a GPU" on a short GPU loan with
// --gtest_filter='*Cuda*'. A GPU test without "Cuda" in its suite or test name would be
// skipped here for want of a GPU and then silently left out there too.
#include <gtest/gtest.h>

#include <filesystem>  // directory_iterator
#include <fstream>     // std::ifstream
#include <regex>       // the TEST( line
#include <string>
#include <vector>

#include "test_paths.h"  // source_dir

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

TEST(Conventions, EveryTestThatNeedsAGpuHasCudaInItsName) {
  const fs::path tests = fs::path(testpaths::source_dir()) / "tests";
  ASSERT_TRUE(fs::is_directory(tests)) << tests;
  const std::regex test_line(R"(^TEST(_F|_P)?\((\w+),\s*(\w+)\))");
  int gpu_tests = 0;
  std::vector<std::string> misnamed;
  for (const auto& entry : fs::directory_iterator(tests)) {
    if (entry.path().extension() != ".cpp" || entry.path().filename() == "test_conventions.cpp")
      continue;
    std::ifstream in(entry.path());
    std::string line, current;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, test_line)) current = m[2].str() + "." + m[3].str();
      // The skip every GPU test starts with (tests/test_cuda_ops.cpp and the others), and a
      // test that makes a CUDA backend only when there is a GPU (it would pass here and then
      // be left out there).
      const bool skips_without_gpu = line.find("cuda_unavailable_reason()") != std::string::npos &&
                                     line.find("!why.empty()") != std::string::npos &&
                                     line.find("GTEST_SKIP") != std::string::npos;
      const bool uses_gpu = line.find("make_cuda_backend()") != std::string::npos;
      if (skips_without_gpu) ++gpu_tests;
      if ((skips_without_gpu || uses_gpu) && !current.empty() &&
          current.find("Cuda") == std::string::npos)
        misnamed.push_back(entry.path().filename().string() + ": " + current);
    }
  }
  EXPECT_GT(gpu_tests, 20) << "the GPU-skip line was not found: did its wording change?";
  for (const std::string& m : misnamed)
    ADD_FAILURE() << m << " needs a GPU but has no \"Cuda\" in its name";
}

}  // namespace
}  // namespace mnistgan
