// test_sweep_run.cpp: `mnistgan sweep` end to end on the CPU, with a tiny model on synthetic
// data (sweep_test_util.h), each test a few seconds:
//   - every run of a sweep equals `mnistgan train` with its flags, bitwise (checkpoint
//     tensors and header but for out_dir, every grid PNG, the evaluations); on CUDA
//     (SweepCuda: on a GPU or the CUDA emulation) within the CUDA-vs-CPU tolerance, the sweep
//     repeating bitwise;
//   - a sweep SIGKILLed mid-way and rerun with the same command ends bitwise equal to an
//     uninterrupted one;
//   - a run that diverges (a NaN planted by the test hook, --nan-policy stop) is failed in
//     the leaderboard, and the other runs finish as if it were not there;
//   - the leaderboard: every run, ranked by Frechet distance, every figure and its floor,
//     the settings; the picture;
//   - --shard I/N then --merge equals the one-process leaderboard, and so does
//     `mpirun -np 2` (when this build has MPI).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cuda_test.h"  // CudaTest
#include "io/image_io.h"
#include "sweep/comm.h"
#include "sweep/grid.h"
#include "sweep/leaderboard.h"
#include "sweep/sweep.h"
#include "sweep_test_util.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;
using sweeptest::expect_same_run;
using sweeptest::file_bytes;

// Four runs of one group: two seeds x two generator learning rates.
ordered_json four_run_grid() {
  return {{"train", sweeptest::tiny_train_flags()},
          {"axes", {{"seed", {1, 2}}, {"lr-g", {0.0002, 0.0004}}}}};
}

// Two runs of one group (the tests of bitwise equality: two are enough to interleave).
ordered_json two_run_grid() {
  return {{"train", sweeptest::tiny_train_flags()}, {"axes", {{"seed", {1, 2}}}}};
}

std::vector<std::string> sweep_args(const fs::path& grid, const fs::path& out) {
  return {"sweep", "--grid", grid.string(), "--out", out.string(), "--device", "cpu"};
}

json leaderboard_json(const fs::path& dir) {
  return json::parse(file_bytes(dir / "leaderboard.json"));
}

// The leaderboard without the folder of each run (which names the sweep's own folder).
json without_folders(json board) {
  for (json& run : board.at("runs")) run.erase("folder");
  return board;
}

// Every run of a 3-run sweep (two of one group, one more from the list) on `device` against
// `mnistgan train` with the run's flags: bitwise on the CPU (each run's ops as alone). On CUDA
// the group's ops are model-indexed launches over all three runs (another split of the GEMMs'
// sums than one run's), so each run is within the CUDA-vs-CPU tolerance of train, and a second
// sweep is bitwise the first.
void expect_runs_equal_train(const std::string& device) {
  const fs::path dir = runtest::fresh_dir("sweep_vs_train_" + device);
  ordered_json grid_json = two_run_grid();
  grid_json["runs"] = {{{"lr-g", 0.0004}, {"seed", 3}}};
  const fs::path grid = sweeptest::write_grid(dir, grid_json);
  const bool bitwise = device == "cpu";
  for (const char* name : {"sweep", "sweep_again"}) {
    if (bitwise && std::string(name) == "sweep_again") break;
    std::vector<std::string> sweep = sweep_args(grid, dir / name);
    sweep.back() = device;
    const runtest::BinaryResult r = runtest::run_binary(sweep);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  const std::vector<SweepRun> runs =
      parse_sweep_grid(grid.string(), (dir / "sweep").string(), device);
  ASSERT_EQ(runs.size(), 3u);
  for (const SweepRun& run : runs) {
    const fs::path train_dir = dir / ("train_" + std::to_string(run.index));
    std::vector<std::string> args = {"train", "--device", device, "--out", train_dir.string()};
    args.insert(args.end(), run.args.begin(), run.args.end());
    const runtest::BinaryResult t = runtest::run_binary(args);
    ASSERT_EQ(t.code, 0) << t.output;
    const fs::path swept = dir / "sweep" / "runs" / run.name;
    if (bitwise) {
      expect_same_run(train_dir, swept);
    } else {
      runtest::weights_rms_close(load_checkpoint((swept / "latest.ckpt").string()),
                                 load_checkpoint((train_dir / "latest.ckpt").string()), 1e-2,
                                 run.name + " vs train");
      expect_same_run(dir / "sweep_again" / "runs" / run.name, swept);
    }
  }
}

TEST(Sweep, EveryRunEqualsTrainWithItsFlagsBitwise) { expect_runs_equal_train("cpu"); }

// On a GPU (gpu.*) and on the CUDA emulation (emu.*); skipped without either.
using SweepCuda = test::CudaTest;

TEST_F(SweepCuda, EveryRunMatchesTrainAndTheSweepRepeatsBitwise) { expect_runs_equal_train("cuda"); }

TEST(Sweep, LeaderboardRanksEveryRunByFrechetWithFiguresFloorsAndSettings) {
  const fs::path dir = runtest::fresh_dir("sweep_leaderboard");
  const fs::path grid = sweeptest::write_grid(dir, four_run_grid());
  const runtest::BinaryResult r = runtest::run_binary(sweep_args(grid, dir / "sweep"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("runs: 0 training, 4 done, 0 failed | steps 48/48"), std::string::npos)
      << r.output;
  const json board = leaderboard_json(dir / "sweep");
  ASSERT_EQ(board.at("runs").size(), 4u);
  double previous = -1;
  int rank = 0;
  for (const json& run : board.at("runs")) {
    EXPECT_EQ(run.at("rank").get<int>(), ++rank);
    EXPECT_EQ(run.at("status"), "done");
    EXPECT_EQ(run.at("step"), 12);
    EXPECT_EQ(run.at("eval_step"), 12);
    const double frechet = run.at("model").at("frechet_distance").get<double>();
    EXPECT_GE(frechet, previous);
    previous = frechet;
    // The figures are the run's own final eval.json, beside its floor.
    const json eval = json::parse(file_bytes(fs::path(run.at("folder").get<std::string>()) / "eval.json"));
    for (const auto& [name, value] : run.at("model").items())
      if (eval.at("model").contains(name)) EXPECT_EQ(value, eval.at("model").at(name)) << name;
    EXPECT_EQ(run.at("floor").at("frechet_distance"), eval.at("floor").at("frechet_distance"));
    EXPECT_EQ(run.at("model").size(), board.at("figures").size() - 1);  // no digit accuracy
    EXPECT_TRUE(run.at("settings").contains("seed"));
    EXPECT_TRUE(run.at("settings").contains("lr-g"));
  }
  // The CSV has the same runs in the same order, run names quoted (they hold commas).
  const std::string csv = file_bytes(dir / "sweep" / "leaderboard.csv");
  EXPECT_EQ(csv.rfind("rank,run,status,step,total_steps,eval_step,frechet_distance,"
                      "frechet_distance_floor,",
                      0),
            0u)
      << csv;
  EXPECT_NE(csv.find(",seed,lr-g,folder,message\n"), std::string::npos) << csv;
  const std::string first = board.at("runs")[0].at("run").get<std::string>();
  EXPECT_NE(csv.find("\n1,\"" + first + "\",done,12,12,12,"), std::string::npos) << csv;
  // The picture: four grids side by side with their captions.
  const GrayImage png = read_png_gray((dir / "sweep" / "leaderboard.png").string());
  EXPECT_GT(png.width, 4 * 242);
  // Status files of every run.
  for (const json& run : board.at("runs"))
    EXPECT_TRUE(fs::exists(dir / "sweep" / "status" / (run.at("run").get<std::string>() + ".json")));
}

TEST(Sweep, RankingPutsFailedAndUnevaluatedRunsLastUnranked) {
  auto record = [](const std::string& name, const std::string& status, double frechet) {
    RunRecord r;
    r.name = name;
    r.status = status;
    if (frechet >= 0)
      r.eval = {{"step", 4}, {"model", {{"frechet_distance", frechet}}},
                {"floor", {{"frechet_distance", 0.5}}}};
    return r;
  };
  const std::vector<RunRecord> records = {record("a", "running", -1), record("b", "done", 9.0),
                                          record("c", "failed", 1.0), record("d", "running", 3.0),
                                          record("e", "done", 5.0)};
  const std::vector<RankedRecord> ranked = rank_records(records);
  std::string order;
  for (const RankedRecord& r : ranked) order += r.record->name + std::to_string(r.rank) + " ";
  EXPECT_EQ(order, "d1 e2 b3 c0 a0 ");
  // CBOR round trip of a record keeps everything, the settings' order too.
  RunRecord full = record("x", "done", 2.0);
  full.settings["seed"] = 3;
  full.settings["lr-g"] = 1e-4;
  full.grid_png = {1, 2, 3};
  full.message = "m";
  full.step = 7;
  const RunRecord back = decode_run_record(encode_run_record(full));
  EXPECT_EQ(back.settings.dump(), full.settings.dump());
  EXPECT_EQ(back.eval, full.eval);
  EXPECT_EQ(back.grid_png, full.grid_png);
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.message, "m");
  EXPECT_THROW(decode_run_record({0xff, 0x00}), std::invalid_argument);
}

TEST(Sweep, ADivergedRunIsFailedAndTheOthersFinishUnchanged) {
  const fs::path dir = runtest::fresh_dir("sweep_failed_run");
  ordered_json grid_json = four_run_grid();
  const fs::path grid = sweeptest::write_grid(dir, grid_json);
  SweepOptions options;
  options.grid = grid.string();
  options.out = (dir / "sweep").string();
  options.device = "cpu";
  SweepTestHooks hooks;
  hooks.runs["seed=1,lr-g=0.0004"].nonfinite_gradient_step = 5;
  ASSERT_EQ(run_sweep(options, hooks), 0);
  const json board = leaderboard_json(dir / "sweep");
  int failed = 0;
  for (const json& run : board.at("runs")) {
    if (run.at("run") == "seed=1,lr-g=0.0004") {
      ++failed;
      EXPECT_EQ(run.at("status"), "failed");
      EXPECT_TRUE(run.at("rank").is_null());
      EXPECT_NE(run.at("message").get<std::string>().find("diverged"), std::string::npos);
      EXPECT_LT(run.at("step").get<int>(), 12);  // stopped at the log row after the NaN
    } else {
      EXPECT_EQ(run.at("status"), "done");
      EXPECT_EQ(run.at("step"), 12);
    }
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(board.at("runs")[3].at("run"), "seed=1,lr-g=0.0004");  // failed runs come last
  // The others are what a sweep without the failure makes.
  const fs::path clean = dir / "clean";
  options.out = clean.string();
  ASSERT_EQ(run_sweep(options), 0);
  for (const std::string name : {"seed=1,lr-g=0.0002", "seed=2,lr-g=0.0002", "seed=2,lr-g=0.0004"})
    expect_same_run(clean / "runs" / name, dir / "sweep" / "runs" / name);
  // A rerun leaves the failed run failed and trains nothing.
  options.out = (dir / "sweep").string();
  ASSERT_EQ(run_sweep(options), 0);
  EXPECT_EQ(leaderboard_json(dir / "sweep").at("runs")[3].at("status"), "failed");
}

TEST(Sweep, KilledSweepResumesBitwise) {
  const fs::path dir = runtest::fresh_dir("sweep_kill");
  ordered_json grid_json = two_run_grid();
  grid_json["train"]["steps"] = 40;
  grid_json["train"]["checkpoint-every"] = 10;
  grid_json["train"]["eval-every"] = 20;  // an evaluation before the kill, one after
  const fs::path grid = sweeptest::write_grid(dir, grid_json);
  runtest::BinaryResult r = runtest::run_binary(sweep_args(grid, dir / "straight"));
  ASSERT_EQ(r.code, 0) << r.output;

  const fs::path out = dir / "killed";
  const std::vector<std::string> args = sweep_args(grid, out);
  const pid_t pid = runtest::spawn_binary(args, dir / "killed.log");
  // Killed once the last run of the group has its step-20 checkpoint (the runs step in
  // lock-step, so the others are there or one step further).
  const fs::path last = out / "runs" / "seed=2" / "checkpoints" / "step_00000020.ckpt";
  bool reached = false;
  for (int i = 0; i < 600000 && !reached; ++i) {
    reached = fs::exists(last);
    int status;
    if (!reached && waitpid(pid, &status, WNOHANG) == pid) break;
    if (!reached) usleep(200);
  }
  kill(pid, SIGKILL);
  runtest::wait_exit_code(pid);
  ASSERT_TRUE(reached) << "the sweep ended before the kill point: " << file_bytes(dir / "killed.log");
  EXPECT_FALSE(fs::exists(out / "leaderboard.json") &&
               leaderboard_json(out).at("runs")[0].at("status") == "done")
      << "killed after the end";
  r = runtest::run_binary(args);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("steps 80/80"), std::string::npos) << r.output;
  for (const SweepRun& run : parse_sweep_grid(grid.string(), out.string(), "cpu"))
    expect_same_run(dir / "straight" / "runs" / run.name, out / "runs" / run.name);
  EXPECT_EQ(without_folders(leaderboard_json(dir / "straight")), without_folders(leaderboard_json(out)));
  // Another grid into the same folder is refused.
  grid_json["axes"]["seed"] = {1, 3};
  const fs::path other = dir / "other";
  fs::create_directories(other);
  r = runtest::run_binary(sweep_args(sweeptest::write_grid(other, grid_json), out));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("holds a sweep of other runs"), std::string::npos) << r.output;
}

TEST(Sweep, ShardsThenMergeEqualOneProcess) {
  const fs::path dir = runtest::fresh_dir("sweep_shards");
  const fs::path grid = sweeptest::write_grid(dir, four_run_grid());
  runtest::BinaryResult r = runtest::run_binary(sweep_args(grid, dir / "whole"));
  ASSERT_EQ(r.code, 0) << r.output;
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> args = sweep_args(grid, dir / ("share" + std::to_string(i)));
    args.push_back("--shard");
    args.push_back(std::to_string(i) + "/3");
    r = runtest::run_binary(args);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  // Share 0 of 3 holds one run (4 * 1 / 3 = 1): its leaderboard lists only that one.
  EXPECT_EQ(leaderboard_json(dir / "share0").at("runs").size(), 1u);
  r = runtest::run_binary({"sweep", "--merge", (dir / "share0").string(),
                           (dir / "share1").string(), (dir / "share2").string(), "--out",
                           (dir / "merged").string()});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(without_folders(leaderboard_json(dir / "whole")),
            without_folders(leaderboard_json(dir / "merged")));
  EXPECT_TRUE(fs::exists(dir / "merged" / "leaderboard.png"));
  for (const SweepRun& run : parse_sweep_grid(grid.string(), "x", "cpu")) {
    const int share = fs::exists(dir / "share0" / "status" / (run.name + ".json"))   ? 0
                      : fs::exists(dir / "share1" / "status" / (run.name + ".json")) ? 1
                                                                                     : 2;
    expect_same_run(dir / "whole" / "runs" / run.name,
                    dir / ("share" + std::to_string(share)) / "runs" / run.name);
  }
  r = runtest::run_binary({"sweep", "--merge", dir.string(), "--out", (dir / "m2").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("is not a sweep folder"), std::string::npos) << r.output;
  r = runtest::run_binary({"sweep", "--grid", grid.string(), "--shard", "3/3"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("--shard: '3/3' is not a share"), std::string::npos) << r.output;
}

#ifdef MNISTGAN_MPIEXEC
// The sweep under `mpirun -np 2` (two ranks, each its share, rank 0 gathering the records
// over MPI) equals the one-process sweep: leaderboard and every run's outputs.
// OpenBLAS's results depend on its thread count, and mpirun binds each rank to a core by
// default (so OpenBLAS would pick one thread there): both sweeps use one thread.
TEST(SweepMpi, TwoRanksEqualOneProcess) {
  const fs::path dir = runtest::fresh_dir("sweep_mpi");
  ordered_json grid_json = two_run_grid();
  grid_json["runs"] = {{{"seed", 3}}};
  const fs::path grid = sweeptest::write_grid(dir, grid_json);
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  runtest::BinaryResult r = runtest::run_binary(sweep_args(grid, dir / "one"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string command = std::string(MNISTGAN_MPIEXEC) +
                              " -np 2 --oversubscribe --allow-run-as-root --bind-to none "
                              "-x OPENBLAS_NUM_THREADS " +
                              testpaths::mnistgan_binary() +
                              runtest::join_args(sweep_args(grid, dir / "two")) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << "\n" << output;
  EXPECT_NE(output.find("rank 1/2: 3 runs in the grid, 2 here"), std::string::npos) << output;
  EXPECT_EQ(without_folders(leaderboard_json(dir / "one")),
            without_folders(leaderboard_json(dir / "two")));
  for (const SweepRun& run : parse_sweep_grid(grid.string(), "x", "cpu"))
    expect_same_run(dir / "one" / "runs" / run.name, dir / "two" / "runs" / run.name);
}
#endif

}  // namespace
}  // namespace mnistgan
