// sample.h: `mnistgan sample`: a PNG grid of digits from a checkpoint's generator.
#pragma once

#include <cstdint>
#include <string>

#include "io/checkpoint.h"  // Checkpoint
#include "core/config.h"      // TrainConfig
#include "model/model.h"       // Gan

namespace mnistgan {

struct SampleOptions {
  std::string checkpoint;           // --checkpoint: a .ckpt written by `mnistgan train`
  std::string out = "samples.png";  // --out: PNG path (written atomically)
  int n = 64;                       // --n: images in the grid
  int nrow = 8;                     // --nrow: images per row
  uint64_t seed = 1;                // --seed: noise seed (same seed, same grid)
  std::string device = "auto";      // --device
  bool raw_generator = false;       // --raw-generator: G's own weights, not the EMA's
  void validate() const;            // throws std::invalid_argument naming the flag
};

void run_sample(const SampleOptions& options);

// What a checkpoint says about the model it holds, checked before anything is built from
// it: every command that rebuilds a generator from a checkpoint (sample, eval) reads it here.
struct StoredModel {
  TrainConfig config;        // passed TrainConfig::validate() (a negative width would otherwise
                             // become a huge allocation; found by fuzz_checkpoint)
  int rows = 28, cols = 28;  // image size, each in [1, kIdxMaxSide]
  int64_t step = 0;
};
// Throws CheckpointError naming `source` when the config is missing or invalid or the
// header's image size or step is not a plausible integer.
StoredModel stored_model(const Checkpoint& checkpoint, const std::string& source);

// "EMA generator" or "raw generator": which weights gan.sample_forward() uses, for logs and
// the PNG text chunks.
const char* generator_label(const Gan& gan);

}  // namespace mnistgan
