// sweep.h: `mnistgan sweep`, many training runs of one grid file (grid.h) in one process, or
// shared among MPI ranks (comm.h) or among --shard processes, with one leaderboard
// (leaderboard.h).
//
// The sweep's folder (--out DIR):
//   sweep.json              the grid's runs (name, varied settings, train flags); a rerun with
//                           another grid into the same folder is refused
//   runs/<name>/            exactly what `mnistgan train --out runs/<name>` writes: metrics.csv,
//                           curves.png, samples/, checkpoints/, latest.ckpt, eval.json
//   status/<name>.json      the run's status (running, done, failed), step and failure message
//   leaderboard.csv/.json/.png
// Each run trains as `mnistgan train` with its flags would (TrainingRun), on the CPU bitwise
// the same. Runs of one group (grid.h) step in lock-step through a RunGroup; a run that
// diverges is marked failed and leaves its group, the others go on. A rerun of the same
// command resumes every unfinished run from its latest checkpoint (bitwise, as train's
// --resume), leaves done and failed runs alone, and rebuilds the leaderboard.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "train/trainer.h"  // RunTestHooks

namespace mnistgan {

struct SweepOptions {
  std::string grid;                  // --grid: the grid file (JSON)
  std::string out = "runs/sweep";    // --out: the sweep's folder
  std::string device = "auto";       // --device: cpu | cuda | auto (a rank: its local GPU)
  std::string shard;                 // --shard I/N: train share I (0-based) of N; "" all
  std::vector<std::string> merge;    // --merge DIR...: build the leaderboard of shard folders
  int best = 8;                      // --best: runs shown in leaderboard.png
  // Throws std::invalid_argument naming the flag.
  void validate() const;
};

// Test-only knobs: a run's RunTestHooks by run name (e.g. a NaN planted in one run).
struct SweepTestHooks {
  std::map<std::string, RunTestHooks> runs;
};

// Trains this process's share of the grid. Returns the exit code: 0 when every run of the
// share ended (done or failed; failures are in the leaderboard), 128 + signal after
// SIGINT/SIGTERM (every running run checkpointed first). Throws with the file or flag at
// fault (a bad grid before anything trains).
int run_sweep(const SweepOptions& options, const SweepTestHooks& hooks = {});

// `mnistgan sweep --merge DIR... --out DIR`: the leaderboard of the runs in several sweep
// folders (the shares of --shard), written into --out. Returns 0; throws naming a folder
// that is not a sweep folder.
int merge_sweeps(const SweepOptions& options);

// "I/N" -> {I, N}; throws std::invalid_argument naming --shard unless 0 <= I < N.
std::pair<int, int> parse_shard(const std::string& text);

}  // namespace mnistgan
