// disk_space.h: how much disk a training run needs, checked against the free space of
// --out before the first step, so a full disk is reported at start-up with the numbers
// and the fix rather than as a failed checkpoint write hours later.
//
// The estimate is an upper bound built from the model shape and the flags:
//   checkpoints  (keep_checkpoints + 1) files: the kept ones plus the temp file of the next
//                one, which exists before rotation deletes the oldest. One file holds every
//                parameter three times (weights, Adam m and v) as float32, the generator's
//                once more (the EMA generator, counted whether or not the run keeps one), the
//                tensor names and shapes, and the JSON header (bounded by
//                kCheckpointHeaderBound).
//   grids        one 8x8 PNG per grid still to be written (bounded by its raw size)
//   progress.gif every grid as a frame, twice (the old file and its atomic replacement)
//   metrics.csv  one row per --log-every steps, twice (same reason)
//   curves.png   three 800x300 RGB panels at most, twice (same reason)
// Step checkpoints already in --out/checkpoints count as reclaimable: rotation deletes
// them as new ones arrive.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace mnistgan {

struct RunSpaceEstimate {
  uint64_t checkpoint_bytes = 0;  // one checkpoint file (upper bound)
  int64_t checkpoints_at_once = 0;
  uint64_t grid_bytes = 0;         // the PNG grids still to be written
  uint64_t gif_bytes = 0;          // progress.gif and its replacement
  uint64_t metrics_bytes = 0;      // metrics.csv, curves.png and their replacements
  uint64_t reclaimable_bytes = 0;  // step checkpoints already there (rotated away)
  uint64_t total() const;          // what must be free now
};

// Parameters of G and D together (weights and biases), from model.h's gan_layers.
uint64_t model_parameter_count(const ModelShape& shape);
uint64_t generator_parameter_count(const ModelShape& shape);  // G's alone
// Upper bound on the size of one checkpoint file of this model.
uint64_t checkpoint_size_bound(const ModelShape& shape);

// The run from step `start_step` to `total_steps` with `config`'s flags, on images of
// image_rows x image_cols pixels.
RunSpaceEstimate estimate_run_space(const TrainConfig& config, int image_rows, int image_cols,
                                    int64_t start_step, int64_t total_steps,
                                    int64_t batches_per_epoch);

// Bytes an unprivileged user may still write on the file system holding `dir` (statvfs
// f_bavail * f_frsize). Throws IoError naming dir when statvfs fails.
uint64_t free_disk_bytes(const std::string& dir);

// Throws IoError when need.total() > free_bytes, e.g. "runs/x: not enough free disk space
// for this run: it needs about 151.2 MiB (4 checkpoints of 37.2 MiB ...), 20.0 MiB is free;
// free some space, lower --keep-checkpoints (now 3), or choose another --out".
void check_free_space(const std::string& dir, const RunSpaceEstimate& need, uint64_t free_bytes);

// Deletes the temporary files "<name>.tmp.<pid>.<n>" that write_file_atomic leaves in `dir`
// when its process is killed mid-write (SIGKILL, power loss), unless process <pid> is still
// alive (another run writing there now). Returns the count removed. A killed run would
// otherwise leave one partial checkpoint per kill behind, uncounted by the estimate above.
int remove_stale_temp_files(const std::string& dir);

std::string format_bytes(uint64_t bytes);  // "512 B", "3.4 KiB", "37.2 MiB", "1.50 GiB"

}  // namespace mnistgan
