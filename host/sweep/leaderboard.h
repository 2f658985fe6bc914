// leaderboard.h: where each run of a sweep stands, and the leaderboard built from that.
//
// A run's record is what its folder and the sweep's status file say: its settings, status,
// step, the latest evaluation (the run's eval.json: every figure and its real-data floor)
// and its latest progress grid. Records travel between processes (MPI ranks, shard folders)
// as CBOR, so the leaderboard needs no shared filesystem.
//
// The leaderboard, in the sweep's --out:
//   leaderboard.csv / .json  every run, ranked by the Frechet distance of its latest
//                            evaluation (lower first); failed runs and runs without an
//                            evaluation follow, unranked. Columns: rank, run, status, step,
//                            total_steps, eval_step, each eval figure and its floor
//                            (<figure>_floor), the varied settings, the run's folder.
//   leaderboard.png          the best runs' latest grids side by side, each captioned with
//                            its rank, name, Frechet distance and floor.
// All three are written atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/image_io.h"  // RgbImage
#include "sweep/grid.h"   // SweepRun

namespace mnistgan {

// A run's status: "pending" (not started), "running" (started, not at its last step: also a
// stopped or killed sweep's unfinished runs), "done", "failed" (diverged: the NaN guard).
struct RunRecord {
  std::string name;
  nlohmann::ordered_json settings = nlohmann::ordered_json::object();
  std::string status = "pending";
  int64_t step = 0, total_steps = 0;
  std::string message;  // why a failed run failed
  std::string folder;   // the run's folder (as the writing process saw it)
  nlohmann::json eval;  // the run's eval.json ({"step", "model", "floor", ...}); null: none yet
  std::vector<uint8_t> grid_png;  // its latest samples/step_N.png; empty: none yet
};

// CBOR bytes of a record and back (throws std::invalid_argument on malformed bytes).
std::vector<uint8_t> encode_run_record(const RunRecord& record);
RunRecord decode_run_record(const std::vector<uint8_t>& bytes);

// <sweep dir>/status/<name>.json: the status, step and failure message of a run, written
// atomically by the process that trains it.
std::filesystem::path run_status_path(const std::filesystem::path& sweep_dir,
                                      const std::string& name);
void write_run_status(const std::filesystem::path& sweep_dir, const SweepRun& run,
                      const std::string& status, int64_t step, int64_t total_steps,
                      const std::string& message = "");

// The record of a run from the files: its status file (none: pending) and its folder's
// eval.json and newest grid.
RunRecord read_run_record(const std::filesystem::path& sweep_dir, const SweepRun& run);

// Records in leaderboard order (see above); ranks are 1-based, 0 for unranked runs.
struct RankedRecord {
  int rank = 0;
  const RunRecord* record = nullptr;
};
std::vector<RankedRecord> rank_records(const std::vector<RunRecord>& records);

// Writes leaderboard.csv, leaderboard.json and (when some run has a grid) leaderboard.png
// into `dir`; the picture shows up to `best` runs.
void write_leaderboard(const std::filesystem::path& dir, const std::vector<RunRecord>& records,
                       int best = 8);

// The picture alone (for tests): up to `best` ranked runs that have a grid.
RgbImage leaderboard_picture(const std::vector<RunRecord>& records, int best);

}  // namespace mnistgan
