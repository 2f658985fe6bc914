// test_disk_checks.cpp: the output-directory checks. The run's disk needs are estimated
// from the model shape and flags and refused up front when --out lacks the space (with the
// path, the bytes needed and free, and the fix); an --out that cannot be a folder is
// refused before anything is loaded; and a write that fails mid-run (a real one: the
// binary runs under RLIMIT_FSIZE, so its next checkpoint write fails with EFBIG) ends the
// run with a message naming the file, a non-zero exit, and the previous checkpoint and
// latest.ckpt intact and loadable.
#include <gtest/gtest.h>
#include <sys/resource.h>  // setrlimit, RLIMIT_FSIZE

#include <csignal>     // SIGXFSZ
#include <filesystem>  // paths
#include <fstream>     // std::ofstream
#include <string>
#include <vector>

#include "io/atomic_file.h"  // IoError
#include "io/checkpoint.h"
#include "train/disk_space.h"
#include "run_test_util.h"
#include "train/trainer.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using runtest::fresh_dir;
using runtest::test_data_dir;

// The bound is above the real file and not far above it (the slack is the header bound).
TEST(DiskSpace, CheckpointSizeBoundCoversARealCheckpoint) {
  for (const int mbd : {100, 0}) {
    TrainConfig config;
    config.mbd_kernels = mbd;
    const MnistSplit train = load_mnist(test_data_dir().string(), "train");
    auto backend = make_cpu_backend();
    TrainingState state(*backend, config, train.images);
    state.initialize();
    const ModelShape shape = model_shape_of(config, state.image_pixels());
    EXPECT_EQ(model_parameter_count(shape),
              state.gan().generator().size + state.gan().discriminator().size);
    const uint64_t real = serialize_checkpoint(state.checkpoint()).size();
    const uint64_t bound = checkpoint_size_bound(shape);
    EXPECT_GE(bound, real) << "mbd " << mbd;
    EXPECT_LT(bound - real, 80u << 10) << "mbd " << mbd;
  }
}

TEST(DiskSpace, EstimateScalesWithKeptCheckpointsAndRefusesWithTheFix) {
  TrainConfig config;
  config.out_dir = fresh_dir("space_estimate").string();
  config.keep_checkpoints = 3;
  const RunSpaceEstimate three = estimate_run_space(config, 28, 28, 0, 18740, 937);
  config.keep_checkpoints = 9;
  const RunSpaceEstimate nine = estimate_run_space(config, 28, 28, 0, 18740, 937);
  EXPECT_EQ(three.checkpoints_at_once, 4);
  EXPECT_EQ(nine.total() - three.total(), 6 * three.checkpoint_bytes);
  // Grids, GIF and metrics of a 20-epoch run are small next to the checkpoints.
  EXPECT_LT(three.grid_bytes + three.gif_bytes + three.metrics_bytes, three.checkpoint_bytes);

  EXPECT_NO_THROW(check_free_space(config.out_dir, three, three.total()));
  try {
    check_free_space(config.out_dir, three, three.total() - 1);
    FAIL() << "no error";
  } catch (const IoError& e) {
    const std::string what = e.what();
    for (const std::string& part :
         {config.out_dir, std::string("not enough free disk space"), format_bytes(three.total()),
          format_bytes(three.total() - 1), std::string("--keep-checkpoints"), std::string("--out")})
      EXPECT_NE(what.find(part), std::string::npos) << part << " missing in: " << what;
  }
}

TEST(DiskSpace, ExistingStepCheckpointsCountAsReclaimable) {
  TrainConfig config;
  config.out_dir = fresh_dir("space_reclaim").string();
  const RunSpaceEstimate empty = estimate_run_space(config, 28, 28, 100, 200, 937);
  fs::create_directories(fs::path(config.out_dir) / "checkpoints");
  std::ofstream(fs::path(config.out_dir) / "checkpoints" / "step_00000100.ckpt")
      << std::string(5000, 'x');
  std::ofstream(fs::path(config.out_dir) / "checkpoints" / "notes.txt") << std::string(7000, 'x');
  const RunSpaceEstimate with_old = estimate_run_space(config, 28, 28, 100, 200, 937);
  EXPECT_EQ(with_old.reclaimable_bytes, 5000u);
  EXPECT_EQ(empty.total() - with_old.total(), 5000u);
}

TEST(DiskSpace, FreeBytesOfAMissingFolderNamesIt) {
  EXPECT_GT(free_disk_bytes(::testing::TempDir()), 0u);
  try {
    free_disk_bytes("/nonexistent/mnistgan/dir");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mnistgan/dir"), std::string::npos);
  }
}

TEST(DiskSpace, RemovesOnlyTempFilesOfDeadProcesses) {
  const fs::path dir = fresh_dir("stale_temps");
  const std::string mine = std::to_string(getpid());
  // pid 999999999 is above Linux's pid_max (4194304), so that process cannot be alive.
  for (const std::string& name : std::vector<std::string>{
           "step_00000010.ckpt.tmp.999999999.0", "metrics.csv.tmp.999999999.3",
           "step_00000020.ckpt.tmp." + mine + ".1", "notes.tmp.txt", "step_00000010.ckpt"})
    std::ofstream(dir / name) << "x";
  EXPECT_EQ(remove_stale_temp_files(dir.string()), 2);
  EXPECT_FALSE(fs::exists(dir / "step_00000010.ckpt.tmp.999999999.0"));
  EXPECT_FALSE(fs::exists(dir / "metrics.csv.tmp.999999999.3"));
  EXPECT_TRUE(fs::exists(dir / ("step_00000020.ckpt.tmp." + mine + ".1"))) << "a live writer's";
  EXPECT_TRUE(fs::exists(dir / "notes.tmp.txt"));
  EXPECT_TRUE(fs::exists(dir / "step_00000010.ckpt"));
  EXPECT_EQ(remove_stale_temp_files((dir / "missing").string()), 0);
}

std::vector<std::string> small_run(const fs::path& out, int steps) {
  return runtest::train_args(out, steps, {"--hidden-g", "256", "--hidden-d", "256"});
}

// The real statvfs path: a billion kept checkpoints cannot fit anywhere.
TEST(DiskChecksCli, RefusesARunThatCannotFitBeforeTraining) {
  const fs::path out = fresh_dir("space_cli");
  std::vector<std::string> args = small_run(out, 10);
  args.push_back("--keep-checkpoints");
  args.push_back("1000000000");
  const runtest::BinaryResult r = runtest::run_binary(args);
  EXPECT_EQ(r.code, 1) << r.output;
  for (const std::string& part : {out.string(), std::string("not enough free disk space"),
                                  std::string("is free"), std::string("--keep-checkpoints")})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << " missing in: " << r.output;
  EXPECT_FALSE(fs::exists(out / "samples" / "step_00000000.png")) << "training started";
  EXPECT_FALSE(fs::exists(out / "metrics.csv"));
}

// Tests may run as root, where permission bits do not stop writes; a path below a regular
// file cannot be a folder for anyone.
TEST(DiskChecksCli, RefusesAnOutUnderARegularFile) {
  const fs::path dir = fresh_dir("out_file");
  std::ofstream(dir / "plain_file") << "x";
  const fs::path out = dir / "plain_file" / "run";
  const runtest::BinaryResult r = runtest::run_binary(small_run(out, 10));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find((dir / "plain_file").string()), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("training on"), std::string::npos) << "it went on to train";
}

// A write that fails mid-run: the first run leaves checkpoints at steps 10 and 20; the
// resumed run runs with files limited to 2 MiB (SIGXFSZ ignored, so write() fails with
// EFBIG instead of the process dying), so its checkpoint at step 30 (about 5 MiB) cannot be
// written. Metrics, grids and the GIF stay below the limit and are written normally.
TEST(DiskChecksCli, FailedCheckpointWriteLeavesTheLastCheckpointIntact) {
  const fs::path out = fresh_dir("efbig");
  runtest::BinaryResult r = runtest::run_binary(small_run(out, 20));
  ASSERT_EQ(r.code, 0) << r.output;
  const uint64_t ckpt_size = fs::file_size(out / "checkpoints" / "step_00000020.ckpt");
  constexpr rlim_t kLimit = 2u << 20;
  ASSERT_GT(ckpt_size, kLimit) << "the model is too small for this test";

  std::vector<std::string> args = small_run(out, 40);
  args.push_back("--resume");
  args.push_back((out / "latest.ckpt").string());
  const fs::path log = out.parent_path() / (out.filename().string() + ".log");
  const pid_t pid = runtest::spawn_binary(args, log, [] {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{kLimit, kLimit};
    setrlimit(RLIMIT_FSIZE, &limit);
  });
  const int code = runtest::wait_exit_code(pid);
  const std::string output = runtest::read_text(log);
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find((out / "checkpoints" / "step_00000030.ckpt").string()), std::string::npos)
      << output;
  EXPECT_NE(output.find("File too large"), std::string::npos) << output;
  EXPECT_NE(output.find("--resume " + (out / "latest.ckpt").string()), std::string::npos) << output;

  const Checkpoint latest = load_checkpoint((out / "latest.ckpt").string());
  EXPECT_EQ(latest.header.value("step", 0), 20);
  EXPECT_EQ(fs::file_size(out / "checkpoints" / "step_00000020.ckpt"), ckpt_size);
  EXPECT_NO_THROW(load_checkpoint((out / "checkpoints" / "step_00000010.ckpt").string()));
  EXPECT_FALSE(fs::exists(out / "checkpoints" / "step_00000030.ckpt"));
  for (const auto& entry : fs::directory_iterator(out / "checkpoints"))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << "temporary file left behind: " << entry.path();
  // The run can go on from there once there is room.
  r = runtest::run_binary(args);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(load_checkpoint((out / "latest.ckpt").string()).header.value("step", 0), 40);
}

}  // namespace
}  // namespace mnistgan
