// test_sweep_grid.cpp: the grid file of `mnistgan sweep` (grid.h): the cartesian product and
// the run list, run names, groups and shares, and the refusals (unknown key, bad value,
// sweep-owned flag, duplicate run, flags that clash) naming where in the file the fault is.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>

#include "sweep/grid.h"
#include "test_paths.h"  // source_dir

namespace mnistgan {
namespace {

using nlohmann::ordered_json;

std::vector<SweepRun> parse(const std::string& text) {
  return parse_sweep_grid_text(text, "grid.json", "out", "cpu");
}

// The message parse throws for `text` ("" when it parses).
std::string refusal(const std::string& text) {
  try {
    parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(SweepGrid, AxesAreACartesianProductLastAxisFastest) {
  const auto runs = parse(R"({"train": {"steps": 10, "batch-size": 32},
                              "axes": {"seed": [1, 2], "lr-g": [0.0002, 0.0001]}})");
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].name, "seed=1,lr-g=0.0002");
  EXPECT_EQ(runs[1].name, "seed=1,lr-g=0.0001");
  EXPECT_EQ(runs[2].name, "seed=2,lr-g=0.0002");
  EXPECT_EQ(runs[3].name, "seed=2,lr-g=0.0001");
  EXPECT_EQ(runs[3].config.seed, 2u);
  EXPECT_FLOAT_EQ(runs[3].config.lr_g, 1e-4f);
  EXPECT_EQ(runs[3].config.steps, 10);
  EXPECT_EQ(runs[3].config.batch_size, 32);
  EXPECT_EQ(runs[3].config.out_dir, "out/runs/seed=2,lr-g=0.0001");
  EXPECT_EQ(runs[3].config.device, "cpu");
  EXPECT_EQ(runs[3].index, 3);
  // Same shapes and schedule: one group.
  EXPECT_EQ(runs[0].group, runs[3].group);
}

TEST(SweepGrid, AnExplicitListFollowsTheProduct) {
  const auto runs = parse(R"({"train": {"steps": 10},
                              "axes": {"seed": [1, 2]},
                              "runs": [{"seed": 7, "real-label": 1}, {"conditional": true}]})");
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[2].name, "seed=7,real-label=1");
  EXPECT_FLOAT_EQ(runs[2].config.real_label, 1.0f);
  EXPECT_EQ(runs[3].name, "conditional=true");
  EXPECT_TRUE(runs[3].config.conditional);
  EXPECT_FALSE(runs[0].config.conditional);
  // A conditional model has other shapes: another group.
  EXPECT_NE(runs[3].group, runs[0].group);
  EXPECT_EQ(runs[2].group, runs[0].group);
}

TEST(SweepGrid, ListValuesFlagsAndNoAxes) {
  const auto runs =
      parse(R"({"train": {"steps": 5, "hidden-g": [64, 128], "no-cuda-graph": true}})");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].name, "base");
  EXPECT_EQ(runs[0].config.hidden_g, (std::vector<int>{64, 128}));
  EXPECT_FALSE(runs[0].config.cuda_graph);
  // Widths in a name; unsafe characters replaced.
  const auto named = parse(R"({"axes": {"hidden-d": [[128, 64]], "classifier": ["a/b c.bin"]}})");
  EXPECT_EQ(named[0].name, "hidden-d=128_64,classifier=a_b_c.bin");
  EXPECT_NE(named[0].group, parse("{}")[0].group);  // other D widths: another group
}

TEST(SweepGrid, RunNamesAreStableAndFilesystemSafe) {
  ordered_json settings = ordered_json::object();
  EXPECT_EQ(sweep_run_name(settings), "base");
  settings["seed"] = 2;
  settings["lr-g"] = 1e-4;
  settings["nan-policy"] = "skip-step";
  EXPECT_EQ(sweep_run_name(settings), "seed=2,lr-g=0.0001,nan-policy=skip-step");
  settings = ordered_json::object();
  settings["data"] = "../x";
  EXPECT_EQ(sweep_run_name(settings), "data=.._x");
  EXPECT_EQ(sweep_run_name(settings).find('/'), std::string::npos);
}

TEST(SweepGrid, UnknownKeyIsRefusedNamingIt) {
  std::string m = refusal(R"({"axes": {"seed": [1], "lr_g": [0.1]}})");
  EXPECT_NE(m.find("grid.json: axes.lr_g: unknown key \"lr_g\""), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean \"lr-g\""), std::string::npos) << m;
  m = refusal(R"({"train": {"learning-rate": 0.1}})");
  EXPECT_NE(m.find("grid.json: train.learning-rate: unknown key"), std::string::npos) << m;
  m = refusal(R"({"runs": [{"seed": 1}, {"sed": 2}]})");
  EXPECT_NE(m.find("grid.json: runs[1].sed: unknown key"), std::string::npos) << m;
  m = refusal(R"({"train": {}, "axis": {"seed": [1]}})");
  EXPECT_NE(m.find("grid.json: unknown key \"axis\""), std::string::npos) << m;
}

TEST(SweepGrid, BadValueGetsTrainsMessageWithTheKeysPlace) {
  // Out of range: TrainConfig::validate()'s message.
  std::string m = refusal(R"({"axes": {"lr-g": [0.0002, 0.0001, -0.5]}})");
  EXPECT_EQ(m, "grid.json: axes.lr-g[2]: --lr-g: must be a positive number");
  m = refusal(R"({"train": {"batch-size": 1}})");
  EXPECT_NE(m.find("grid.json: train.batch-size: --batch-size: must be between 2 and 4096"),
            std::string::npos)
      << m;
  // Not a number: CLI11's conversion message.
  m = refusal(R"({"runs": [{"seed": "two"}]})");
  EXPECT_NE(m.find("grid.json: runs[0].seed: "), std::string::npos) << m;
  EXPECT_NE(m.find("two"), std::string::npos) << m;
  m = refusal(R"({"axes": {"nan-policy": ["stop", "retry"]}})");
  EXPECT_NE(m.find("grid.json: axes.nan-policy[1]: --nan-policy: unknown policy 'retry'"),
            std::string::npos)
      << m;
  m = refusal(R"({"train": {"steps": {"n": 3}}})");
  EXPECT_NE(m.find("grid.json: train.steps: "), std::string::npos) << m;
  m = refusal(R"({"axes": {"seed": []}})");
  EXPECT_NE(m.find("grid.json: axes.seed: an axis is a non-empty list"), std::string::npos) << m;
  m = refusal("{\"train\": ");
  EXPECT_NE(m.find("grid.json: not valid JSON"), std::string::npos) << m;
}

TEST(SweepGrid, SweepOwnedClashingAndDuplicateRunsAreRefused) {
  std::string m = refusal(R"({"train": {"out": "x"}})");
  EXPECT_NE(m.find("grid.json: train.out: --out is set by the sweep"), std::string::npos) << m;
  m = refusal(R"({"axes": {"device": ["cpu"]}})");
  EXPECT_NE(m.find("grid.json: axes.device: --device is set by the sweep"), std::string::npos) << m;
  m = refusal(R"({"train": {"seed": 1}, "axes": {"seed": [1, 2]}})");
  EXPECT_NE(m.find("grid.json: axes.seed: also fixed in \"train\""), std::string::npos) << m;
  m = refusal(R"({"axes": {"seed": [1, 2]}, "runs": [{"seed": 2}]})");
  EXPECT_NE(m.find("grid.json: run seed=2: two runs of the grid have these same settings"),
            std::string::npos)
      << m;
  // --steps and --epochs exclude each other: the run is named.
  m = refusal(R"({"train": {"steps": 5}, "runs": [{"epochs": 2}]})");
  EXPECT_NE(m.find("grid.json: run epochs=2: "), std::string::npos) << m;
}

TEST(SweepGrid, SharesAreContiguousBalancedAndCoverEveryRunOnce) {
  const auto runs = parse(R"({"train": {"steps": 10},
                              "axes": {"seed": [1, 2, 3]},
                              "runs": [{"conditional": true}, {"seed": 9}]})");
  ASSERT_EQ(runs.size(), 5u);
  std::multiset<std::string> seen;
  for (int count : {1, 2, 3, 5, 7}) {
    seen.clear();
    size_t largest = 0, smallest = runs.size();
    for (int i = 0; i < count; ++i) {
      const auto share = sweep_share(runs, i, count);
      largest = std::max(largest, share.size());
      smallest = std::min(smallest, share.size());
      for (const SweepRun& r : share) seen.insert(r.name);
    }
    EXPECT_EQ(seen.size(), runs.size()) << count;
    for (const SweepRun& r : runs) EXPECT_EQ(seen.count(r.name), 1u) << r.name;
    EXPECT_LE(largest - smallest, 1u) << count;
  }
  // Groups stay together: in 2 shares the 4 unconditional runs come first.
  const auto first = sweep_share(runs, 0, 2), second = sweep_share(runs, 1, 2);
  for (const SweepRun& r : first) EXPECT_FALSE(r.config.conditional) << r.name;
  EXPECT_THROW(sweep_share(runs, 2, 2), std::invalid_argument);
}

// The grid files README points to parse as they are, and the worked sweep pins
// `"d-dropout": 0` (it documents runs made when that was the default), so rerunning it is
// still the computation its committed leaderboard shows.
TEST(SweepGrid, CommittedGridFilesParseAndTheWorkedSweepPinsItsDropout) {
  namespace fs = std::filesystem;
  int files = 0;
  const fs::path source = testpaths::source_dir();
  for (const char* folder : {"docs/sweep", "docs/study"})
    for (const fs::directory_entry& entry : fs::directory_iterator(source / folder))
      if (entry.path().extension() == ".json" && entry.path().stem() != "leaderboard") {
        ++files;
        std::vector<SweepRun> runs;
        ASSERT_NO_THROW(runs = parse_sweep_grid(entry.path().string(), "out", "cpu"))
            << entry.path();
        EXPECT_FALSE(runs.empty()) << entry.path();
      }
  EXPECT_GE(files, 2);
  const std::vector<SweepRun> worked =
      parse_sweep_grid(testpaths::source_dir() + "/docs/sweep/sweep_seeds.json", "out", "cpu");
  ASSERT_EQ(worked.size(), 4u);
  for (const SweepRun& run : worked) EXPECT_EQ(run.config.d_dropout, 0.0f) << run.name;
}

}  // namespace
}  // namespace mnistgan
