// sample.h: `mnistgan sample`: a PNG grid of digits from a checkpoint's generator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"    // TrainConfig
#include "io/checkpoint.h"  // Checkpoint
#include "model/model.h"    // Gan

namespace mnistgan {

struct SampleOptions {
  std::string checkpoint;           // --checkpoint: a .ckpt written by `mnistgan train`
  std::string out = "samples.png";  // --out: PNG path (written atomically)
  // --n: images in the grid; 0: 64, or for a conditional checkpoint without --digit one row
  // of --nrow per digit (10 rows).
  int n = 0;
  int nrow = 8;                 // --nrow: images per row
  uint64_t seed = 1;            // --seed: noise seed (same seed, same grid)
  std::string device = "auto";  // --device
  bool raw_generator = false;   // --raw-generator: G's own weights, not the EMA's
  // --digit: 0-9, every image asks a conditional checkpoint's generator for that digit;
  // -1 (not given): row r of the grid asks for digit r % 10. Unconditional checkpoints
  // take no --digit.
  int digit = -1;
  void validate() const;  // throws std::invalid_argument naming the flag
};

// Throws std::invalid_argument naming --digit when it is given for an unconditional checkpoint.
void run_sample(const SampleOptions& options);

// The digit each image of a conditional sample grid asks for: `digit` for all n when it is
// 0-9; otherwise row r (images [r nrow, (r + 1) nrow)) asks for r % 10.
std::vector<int32_t> sample_grid_labels(int n, int nrow, int digit);

// What a checkpoint says about the model it holds, checked before anything is built from
// it: every command that rebuilds a generator from a checkpoint (sample, eval) reads it here.
struct StoredModel {
  TrainConfig config;        // passed TrainConfig::validate() (a negative width would otherwise
                             // become a huge allocation)
  int rows = 28, cols = 28;  // image size, each in [1, kIdxMaxSide]
  int64_t step = 0;
};
// Throws CheckpointError naming `source` when the config is missing or invalid or the
// header's image size or step is not a plausible integer. config.conditional is the
// header's `conditional` (checkpoint_is_conditional).
StoredModel stored_model(const Checkpoint& checkpoint, const std::string& source);

// Whether a checkpoint holds a conditional model: its header's `conditional` (a bool, with
// `classes` 10 beside it); a checkpoint without the key (every one before --conditional,
// and every unconditional run's) is unconditional. Throws CheckpointError naming `source`
// for a value of the wrong type or another class count.
bool checkpoint_is_conditional(const Checkpoint& checkpoint, const std::string& source);

// "EMA generator" or "raw generator": which weights gan.sample_forward() uses, for logs and
// the PNG text chunks.
const char* generator_label(const Gan& gan);

}  // namespace mnistgan
