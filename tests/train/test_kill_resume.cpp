// test_kill_resume.cpp: exact resume after SIGKILL, at several kill points, on the CPU and
// (when a GPU is present) on the CUDA backend. Each killed run is resumed with the same
// flags from its latest.ckpt and must end with weights, Adam moments and step counts
// bitwise identical to one uninterrupted run. Kill points:
//   after_first_checkpoint  as soon as latest.ckpt exists (step 10)
//   between_checkpoints     once metrics.csv shows step 25 (checkpoints at 20 and 30)
//   during_checkpoint_write a run checkpointing every step, killed the moment a checkpoint
//                           temp file appears, so usually while it is being written
//                           (the test reports whether it caught one)
// The model is small (checkpoints of about 6 MiB) to keep the whole test to seconds.
#include <gtest/gtest.h>
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // usleep

#include <csignal>     // SIGKILL, kill
#include <filesystem>  // directory_iterator
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda_test.h"  // CudaTest
#include "io/checkpoint.h"
#include "run_test_util.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using runtest::fresh_dir;

constexpr int kTotalSteps = 40;

std::vector<std::string> kill_run_args(const fs::path& out, const std::string& device,
                                       int checkpoint_every) {
  return runtest::train_args(out, kTotalSteps, {"--hidden-g", "128,256", "--hidden-d", "256,128"},
                             device, checkpoint_every);
}

bool has_temp_checkpoint(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) return true;
  return false;
}

bool metrics_reached(const fs::path& csv, int step) {
  return runtest::read_text(csv).find("\n" + std::to_string(step) + ",") != std::string::npos;
}

// Polls `ready` every ~0.2 ms until it holds or the child exits; then SIGKILLs the child.
// Returns false when the child finished before the kill point was reached.
template <class Ready>
bool kill_when(pid_t pid, Ready ready, double seconds) {
  for (long i = 0; i < static_cast<long>(seconds * 5000); ++i) {
    if (ready()) {
      kill(pid, SIGKILL);
      return true;
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    usleep(200);
  }
  kill(pid, SIGKILL);
  return false;
}

void kill_and_resume_matches(const std::string& device) {
  const fs::path straight = fresh_dir("kill_straight_" + device);
  runtest::BinaryResult r = runtest::run_binary(kill_run_args(straight, device, 10));
  ASSERT_EQ(r.code, 0) << r.output;
  const Checkpoint want = load_checkpoint((straight / "latest.ckpt").string());
  ASSERT_EQ(want.header.value("step", 0), kTotalSteps);

  struct KillPoint {
    std::string name;
    int checkpoint_every;
  };
  int caught_mid_write = 0;
  for (const KillPoint& point :
       {KillPoint{"after_first_checkpoint", 10}, KillPoint{"between_checkpoints", 10},
        KillPoint{"during_checkpoint_write", 1}}) {
    SCOPED_TRACE(device + " kill point " + point.name);
    const fs::path out = fresh_dir("kill_" + point.name + "_" + device);
    const std::vector<std::string> args = kill_run_args(out, device, point.checkpoint_every);
    const pid_t pid =
        runtest::spawn_binary(args, out.parent_path() / (out.filename().string() + ".log"));
    bool killed = false;
    if (point.name == "after_first_checkpoint") {
      killed = kill_when(
          pid, [&] { return fs::exists(out / "latest.ckpt"); }, 120);
    } else if (point.name == "between_checkpoints") {
      killed = kill_when(
          pid, [&] { return metrics_reached(out / "metrics.csv", 25); }, 120);
    } else {
      // Wait for the first checkpoint to exist, so there is one to resume from.
      killed = kill_when(
          pid,
          [&] {
            return fs::exists(out / "latest.ckpt") && has_temp_checkpoint(out / "checkpoints");
          },
          120);
    }
    runtest::wait_exit_code(pid);
    ASSERT_TRUE(killed) << "the run finished before the kill point";
    ASSERT_TRUE(fs::exists(out / "latest.ckpt")) << "nothing to resume from";
    const int64_t resumed_from =
        load_checkpoint((out / "latest.ckpt").string()).header.value("step", int64_t{0});
    const bool mid_write = has_temp_checkpoint(out / "checkpoints");
    caught_mid_write += mid_write ? 1 : 0;
    std::vector<std::string> resume = args;
    resume.push_back("--resume");
    resume.push_back((out / "latest.ckpt").string());
    r = runtest::run_binary(resume);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_FALSE(has_temp_checkpoint(out / "checkpoints")) << "a partial checkpoint was kept";
    const Checkpoint got = load_checkpoint((out / "latest.ckpt").string());
    EXPECT_EQ(got.header.value("step", 0), kTotalSteps);
    EXPECT_EQ(got.header.at("adam_step"), want.header.at("adam_step"));
    runtest::same_tensors(want, got,
                          point.name + " (resumed from step " + std::to_string(resumed_from) + ")");
    std::printf("[ kill ] %s %s: killed%s, resumed from step %lld, bitwise equal at step %d\n",
                device.c_str(), point.name.c_str(), mid_write ? " mid-write" : "",
                static_cast<long long>(resumed_from), kTotalSteps);
  }
  std::printf("[ kill ] %s: %d of 3 kills left a checkpoint temp file (killed mid-write)\n",
              device.c_str(), caught_mid_write);
}

TEST(KillResume, CpuSigkillAtThreePointsThenResumeIsBitwiseIdentical) {
  kill_and_resume_matches("cpu");
}

// GPU tests: skipped without a device (tests/cuda_test.h).
using KillResumeCuda = test::CudaTest;

TEST_F(KillResumeCuda, SigkillAtThreePointsThenResumeIsBitwiseIdentical) {
  kill_and_resume_matches("cuda");
}

}  // namespace
}  // namespace mnistgan
