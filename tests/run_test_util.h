// run_test_util.h: helpers for tests that train: a data folder (the real MNIST files when
// data/mnist has them, else a small synthetic IDX set written once per process), fresh
// output folders, and running the mnistgan binary as a child process.
//
//   fresh_dir(name)            an empty folder under the test temp dir, unique per process
//   test_data_dir()            data/mnist, or 512 synthetic 28x28 bar images
//   train_args(out, steps)     the arguments of a small `mnistgan train` run on the test data
//   run_binary(args)           runs `mnistgan args` through the shell, output captured
//   run_command("args")        the same with the arguments as one shell string
//   spawn_binary(args, log)    fork + exec of mnistgan with stderr to `log`; returns the pid
//   wait_for_file(f, pid, s)   polls until f exists, the child exits, or s seconds pass
//   same_tensors(a, b)         every tensor of two checkpoints bitwise equal (gtest failures)
//   weights_close(a, b, atol)  every non-Adam tensor within atol elementwise (gtest failures)
//   weights_rms_close(a, b, rtol, what)  every non-Adam tensor within rtol relative RMS
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>  // waitpid, WIFEXITED
#include <unistd.h>    // fork, execv, getpid, usleep

#include <algorithm>   // std::max
#include <cmath>       // std::fabs
#include <cstdio>      // popen, freopen
#include <cstring>     // std::memcmp
#include <filesystem>  // paths
#include <random>      // std::mt19937
#include <string>
#include <vector>

#include "io/checkpoint.h"  // Checkpoint
#include "io/idx.h"         // write_idx_images, write_idx_labels
#include "test_paths.h"     // source_dir, mnistgan_binary

namespace mnistgan {
namespace runtest {

namespace fs = std::filesystem;

inline fs::path fresh_dir(const std::string& name) {
  // The pid keeps tests that ctest runs in parallel processes out of each other's way.
  fs::path dir =
      fs::path(::testing::TempDir()) / ("mnistgan_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline fs::path test_data_dir() {
  const fs::path real = fs::path(testpaths::source_dir()) / "data" / "mnist";
  if (fs::exists(real / "train-images-idx3-ubyte") ||
      fs::exists(real / "train-images-idx3-ubyte.gz"))
    return real;
  static const fs::path synthetic = [] {
    fs::path d = fresh_dir("synthetic_mnist");
    IdxImages images;
    images.count = 512;
    images.rows = images.cols = 28;
    images.pixels.resize(512 * 784);
    std::vector<uint8_t> labels(512);
    std::mt19937 gen(3);
    for (int i = 0; i < 512; ++i) {
      const int x0 = 2 + gen() % 20, width = 2 + gen() % 5, y0 = 2 + gen() % 8, y1 = 18 + gen() % 8;
      labels[i] = static_cast<uint8_t>(i % 10);
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
          const bool on = x >= x0 && x < x0 + width && y >= y0 && y < y1;
          images.pixels[i * 784 + y * 28 + x] = on ? 150 + gen() % 106 : gen() % 20;
        }
    }
    write_idx_images((d / "train-images-idx3-ubyte").string(), images);
    write_idx_labels((d / "train-labels-idx1-ubyte").string(), labels);
    return d;
  }();
  return synthetic;
}

// `mnistgan train` of `steps` steps on `device` with test_data_dir() into `out`: batch 32,
// 10 MBD kernels, a metrics row every 5 steps, a checkpoint every `checkpoint_every`, then
// the `extra` flags (e.g. hidden widths).
inline std::vector<std::string> train_args(const fs::path& out, int steps,
                                           const std::vector<std::string>& extra = {},
                                           const std::string& device = "cpu",
                                           int checkpoint_every = 10) {
  std::vector<std::string> args = {"train",
                                   "--device",
                                   device,
                                   "--data",
                                   test_data_dir().string(),
                                   "--out",
                                   out.string(),
                                   "--batch-size",
                                   "32",
                                   "--mbd-kernels",
                                   "10",
                                   "--log-every",
                                   "5",
                                   "--checkpoint-every",
                                   std::to_string(checkpoint_every),
                                   "--steps",
                                   std::to_string(steps)};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

struct BinaryResult {
  int code = -1;  // exit status, or 128 + signal
  std::string output;
};

inline std::string join_args(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) s += " " + a;
  return s;
}

// `args` is pasted into a shell command line after the binary; stderr joins stdout.
inline BinaryResult run_command(const std::string& args) {
  const std::string cmd = testpaths::mnistgan_binary() + " " + args + " 2>&1";
  BinaryResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) r.output += buf;
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline BinaryResult run_binary(const std::vector<std::string>& args) {
  return run_command(join_args(args));
}

// `before_exec` runs in the child (e.g. to set resource limits) just before execv.
template <class BeforeExec>
pid_t spawn_binary(const std::vector<std::string>& args, const fs::path& log,
                   BeforeExec before_exec) {
  const std::string& binary = testpaths::mnistgan_binary();  // before fork: it may allocate
  const pid_t pid = fork();
  if (pid == 0) {
    if (std::freopen(log.c_str(), "w", stderr) == nullptr) _exit(126);
    before_exec();
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

inline pid_t spawn_binary(const std::vector<std::string>& args, const fs::path& log) {
  return spawn_binary(args, log, [] {});
}

// Exit status of a finished child: its code, or 128 + the signal that ended it.
inline int wait_exit_code(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline bool wait_for_file(const fs::path& file, pid_t pid, double seconds) {
  for (int i = 0; i < seconds * 1000; ++i) {
    std::error_code ec;
    if (fs::exists(file, ec)) return true;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return fs::exists(file, ec);
    usleep(1000);
  }
  return false;
}

inline std::string read_text(const fs::path& file) {
  std::string text;
  if (FILE* f = std::fopen(file.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

// True when both checkpoints hold the same tensors with the same bits; each difference is
// reported as a gtest failure naming the tensor and `what`.
inline bool same_tensors(const Checkpoint& a, const Checkpoint& b, const std::string& what) {
  if (a.tensors.size() != b.tensors.size()) {
    ADD_FAILURE() << what << ": " << a.tensors.size() << " vs " << b.tensors.size() << " tensors";
    return false;
  }
  bool same = true;
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    const auto& x = a.tensors[t].data;
    const auto& y = b.tensors[t].data;
    if (a.tensors[t].name != b.tensors[t].name || x.size() != y.size() ||
        std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": tensor " << a.tensors[t].name << " differs";
      same = false;
    }
  }
  return same;
}

// Every tensor but the Adam moments within atol elementwise (the moments of a CUDA step and a
// CPU step may differ by more: they square the gradient); each tensor beyond is a gtest failure.
inline void weights_close(const Checkpoint& a, const Checkpoint& b, double atol) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    if (a.tensors[t].name.find("@adam_") != std::string::npos) continue;
    double worst = 0;
    for (size_t i = 0; i < a.tensors[t].data.size(); ++i)
      worst = std::max(worst, std::fabs(double(a.tensors[t].data[i]) - b.tensors[t].data[i]));
    EXPECT_LE(worst, atol) << a.tensors[t].name;
  }
}

// Every non-Adam tensor's relative RMS difference, |a - b| / |b| over the tensor, within `rtol`
// (gtest failures): "the same computation with other rounding" between backends, or between
// one run's launches and a lock-step group's.
inline void weights_rms_close(const Checkpoint& a, const Checkpoint& b, double rtol,
                              const std::string& what) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << what;
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    const CheckpointTensor &x = a.tensors[t], &y = b.tensors[t];
    if (x.name.find('@') != std::string::npos) continue;  // Adam moments
    ASSERT_EQ(x.data.size(), y.data.size()) << what << " " << x.name;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < x.data.size(); ++i) {
      diff += (double(x.data[i]) - y.data[i]) * (double(x.data[i]) - y.data[i]);
      norm += double(y.data[i]) * y.data[i];
    }
    EXPECT_LE(std::sqrt(diff / std::max(norm, 1e-30)), rtol) << what << ": " << x.name;
  }
}

}  // namespace runtest
}  // namespace mnistgan
