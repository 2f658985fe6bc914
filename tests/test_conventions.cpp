// test_conventions.cpp: conventions of the CUDA code, checked on the sources, and the rule
// by which every GPU test's fixture (tests/cuda_test.h) checks its suite name.
#include <gtest/gtest.h>

#include <filesystem>  // directory_iterator
#include <fstream>     // std::ifstream
#include <regex>       // the calls and the waits
#include <string>
#include <vector>

#include "cuda_test.h"   // cuda_suite_name_problem
#include "test_paths.h"  // source_dir

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

// Our CUDA code runs on streams created cudaStreamNonBlocking, which are not ordered after the
// legacy default stream that plain cudaMemcpy / cudaMemset use; and a pageable host-to-device
// cudaMemcpy may return before its data reaches the device, so a kernel launched right after
// such a call can read a half-copied buffer (EmuCuda.LegacyStreamCopyIsNotOrderedWith-
// NonBlockingStreams shows it on the emulation). So a plain
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

// The rule tests/cuda_test.h's fixture applies to every GPU test's suite name (with
// TEST_P's "Instance/" prefix too).
TEST(Conventions, GpuFixtureAcceptsOnlySuitesNamedForTheGpuFilter) {
  EXPECT_EQ(test::cuda_suite_name_problem("CudaOps"), "");
  EXPECT_EQ(test::cuda_suite_name_problem("Versions/CudaLinearVersion"), "");
  EXPECT_EQ(test::cuda_suite_name_problem("NanGuardOpsCuda"), "");
  EXPECT_NE(test::cuda_suite_name_problem("NanGuardOps"), "");
  EXPECT_NE(test::cuda_suite_name_problem("cudaOps"), "");  // gtest filters are case-sensitive
}

}  // namespace
}  // namespace mnistgan
