// grid.h: the grid file of `mnistgan sweep` and the runs it names.
//
// The file is JSON with up to three keys, each optional:
//   {
//     "train": {"steps": 2000, "eval-every": 1000},       fixed flags of every run
//     "axes":  {"seed": [1, 2, 3], "lr-g": [2e-4, 1e-4]}, varied: their cartesian product
//     "runs":  [{"seed": 7, "real-label": 1}]             and/or an explicit list
//   }
// Keys are `mnistgan train` flag names without the dashes, parsed by the train command's own
// flag parser (cli/flags.h) and checked by TrainConfig::validate(), so every train flag works
// and a bad value gets train's message, prefixed with the file and where the key sits
// ("grid.json: axes.lr-g[2]: --lr-g: must be a positive number"). Values: numbers, strings,
// true/false (flags), or lists (comma-separated flags such as hidden-g). --out, --resume and
// --device belong to the sweep and are refused.
//
// The cartesian product varies the last axis fastest (nested loops in file order); the list
// follows it. Each run is named by the settings it varies, in file order, as
// `key=value,key=value` (e.g. `seed=2,lr-g=0.0001`; characters outside [A-Za-z0-9._+-]
// become '_'), and trains in DIR/runs/<name>. A file with neither axes nor runs is one run
// named "base".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config.h"

namespace mnistgan {

struct SweepRun {
  int index = 0;                     // position in the grid (product first, then the list)
  std::string name;                  // from the varied settings (see above)
  nlohmann::ordered_json settings;   // the varied keys and their values, in file order
  std::vector<std::string> args;     // every train flag of the run, as on a command line
  TrainConfig config;                // the parsed flags; out_dir and device set by the sweep
  std::string group;                 // runs with equal keys can step as one batch
};

// Reads and checks the whole grid before anything trains. Each run's config gets
// out_dir = <out>/runs/<name> and device = `device`. Throws std::invalid_argument naming
// the file and the key (or the run) at fault; IoError when the file cannot be read.
std::vector<SweepRun> parse_sweep_grid(const std::string& path, const std::string& out,
                                       const std::string& device);
// The same from the file's text (`source` names it in messages).
std::vector<SweepRun> parse_sweep_grid_text(const std::string& text, const std::string& source,
                                            const std::string& out, const std::string& device);

// A run's folder name from its varied settings.
std::string sweep_run_name(const nlohmann::ordered_json& settings);

// The group of a run: what a batched step needs equal across its members (the model's
// shapes, batch size, D steps per G step, the run's length, the dataset, the backend knobs).
std::string sweep_group_key(const TrainConfig& config);

// The share `index` of `count` (0-based): runs ordered by group, then grid position, cut into
// `count` contiguous pieces whose sizes differ by at most one (so groups stay together).
std::vector<SweepRun> sweep_share(const std::vector<SweepRun>& runs, int index, int count);

}  // namespace mnistgan
