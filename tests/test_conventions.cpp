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
  for (const auto& entry : fs::recursive_directory_iterator(tests)) {
    if (entry.path().extension() != ".cpp" || entry.path().filename() == "test_conventions.cpp")
      continue;
    std::ifstream in(entry.path());
    std::string line, current;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, test_line)) current = m[2].str() + "." + m[3].str();
      // The skip every GPU test starts with (tests/backends/test_cuda_ops.cpp and the others), and a
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

// Our CUDA code runs on streams created cudaStreamNonBlocking, which are not ordered after the
// legacy default stream that plain cudaMemcpy / cudaMemset use; and a pageable host-to-device
// cudaMemcpy may return before its data reaches the device. A kernel launched right after such
// a call read a half-copied buffer on an H200 (host/bench/bench_cuda.cu, 2026-12-04). So a plain
// cudaMemcpy to the device or cudaMemset is followed, within three lines, by a wait for the
// legacy stream (or a device-wide synchronise); stream-ordered *Async calls are the rule.
TEST(Conventions, LegacyStreamCopiesAreWaitedFor) {
  const fs::path root = testpaths::source_dir();
  const std::regex legacy_call(R"(\bcuda(Memset|Memcpy)\s*\()");
  const std::regex to_host(R"(cudaMemcpyDeviceToHost)");
  const std::regex wait(
      R"(wait_for_legacy_stream\(\)|cudaDeviceSynchronize|cudaStreamSynchronize\(cudaStreamLegacy)");
  int checked_files = 0;
  for (const char* folder : {"host", "kernels"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".cu" && ext != ".cpp" && ext != ".cuh" && ext != ".h") continue;
      ++checked_files;
      std::ifstream in(entry.path());
      std::vector<std::string> lines;
      for (std::string line; std::getline(in, line);) lines.push_back(line);
      for (size_t i = 0; i < lines.size(); ++i) {
        if (!std::regex_search(lines[i], legacy_call)) continue;
        // The call may wrap: its direction is on this line or the next.
        const std::string call = lines[i] + (i + 1 < lines.size() ? lines[i + 1] : "");
        if (std::regex_search(call, to_host)) continue;  // blocks the host until done
        bool waited = false;
        for (size_t j = i; j < lines.size() && j <= i + 3; ++j)
          waited = waited || std::regex_search(lines[j], wait);
        if (!waited)
          ADD_FAILURE() << fs::relative(entry.path(), root).string() << ":" << i + 1 << ": "
                        << lines[i]
                        << "\n  a legacy-stream copy or memset with no wait for it: use the "
                           "*Async call on the stream that reads the memory, or wait";
      }
    }
  }
  EXPECT_GT(checked_files, 20) << "host/ and kernels/ not found under " << root;
}

}  // namespace
}  // namespace mnistgan
