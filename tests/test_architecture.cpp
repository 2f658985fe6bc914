// test_architecture.cpp: the layering README's "Architecture" section draws, checked on the
// sources: every host file sits in a subsystem folder, kernels/ includes nothing of host/ but
// core/, and each subsystem includes only the subsystems its CMake target links.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "test_paths.h"  // source_dir

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

// Subsystem -> the subsystems it may include (itself always). Mirrors the
// target_link_libraries of CMakeLists.txt's "host subsystems" section.
const std::map<std::string, std::set<std::string>>& allowed_includes() {
  static const std::map<std::string, std::set<std::string>> allowed = {
      {"core", {}},
      {"backends", {"core"}},
      {"io", {"core"}},
      {"plot", {"io", "core"}},
      {"model", {"io", "core"}},
      {"eval", {"model", "io", "core"}},
      {"train", {"model", "eval", "io", "plot", "core"}},
      {"toy", {"model", "plot", "io", "core"}},
      {"sweep", {"train", "model", "eval", "io", "plot", "core", "cli"}},
      // backends: bench_cuda.cu, the device half (mnistgan_bench_device links mnistgan_backends),
      // takes the CUDA backend's stream from backends/cuda_backend.h.
      {"bench", {"sweep", "train", "model", "eval", "io", "core", "cli", "backends"}},
      {"cli", {"sweep", "train", "eval", "toy", "model", "io", "plot", "core"}},
  };
  return allowed;
}

// The subsystem folder of every `#include "<folder>/..."` in `path`.
std::set<std::string> included_folders(const fs::path& path) {
  static const std::regex include_line(R"(^\s*#\s*include\s+"([a-z_]+)/[^"]+")");
  std::set<std::string> folders;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, include_line)) folders.insert(m[1].str());
  }
  return folders;
}

bool is_source(const fs::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".h" || ext == ".cpp" || ext == ".cu" || ext == ".cuh";
}

TEST(Architecture, EveryHostFileIsInASubsystemFolder) {
  const fs::path host = fs::path(testpaths::source_dir()) / "host";
  ASSERT_TRUE(fs::is_directory(host)) << host;
  int folders = 0;
  for (const auto& entry : fs::directory_iterator(host)) {
    if (entry.is_directory()) {
      ++folders;
      EXPECT_TRUE(allowed_includes().count(entry.path().filename().string()))
          << entry.path() << " is not a known subsystem: add it to README's Architecture section, "
          << "CMakeLists.txt and this test";
    } else {
      ADD_FAILURE() << entry.path() << " is outside every subsystem folder";
    }
  }
  EXPECT_EQ(folders, static_cast<int>(allowed_includes().size()));
}

TEST(Architecture, KernelsIncludeOnlyTheCore) {
  const fs::path kernels = fs::path(testpaths::source_dir()) / "kernels";
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kernels)) {  // kernels/dev/ too
    if (!is_source(entry.path())) continue;
    ++checked;
    for (const std::string& folder : included_folders(entry.path()))
      EXPECT_EQ(folder, "core") << entry.path().filename() << " includes from host/" << folder;
  }
  EXPECT_GT(checked, 10);
}

TEST(Architecture, SubsystemsIncludeOnlyWhatTheyLink) {
  const fs::path host = fs::path(testpaths::source_dir()) / "host";
  int checked = 0;
  for (const auto& [subsystem, allowed] : allowed_includes()) {
    for (const auto& entry : fs::recursive_directory_iterator(host / subsystem)) {
      if (!is_source(entry.path())) continue;
      ++checked;
      for (const std::string& folder : included_folders(entry.path())) {
        if (folder == subsystem || allowed.count(folder)) continue;
        ADD_FAILURE() << fs::relative(entry.path(), host).string() << " includes from " << folder
                      << "/, which the " << subsystem << " target does not link";
      }
    }
  }
  EXPECT_GT(checked, 40);
}

}  // namespace
}  // namespace mnistgan
