// sample.h: `mnistgan sample`: a PNG grid of digits from a checkpoint's generator.
#pragma once

#include <cstdint>
#include <string>

namespace mnistgan {

struct SampleOptions {
  std::string checkpoint;           // --checkpoint: a .ckpt written by `mnistgan train`
  std::string out = "samples.png";  // --out: PNG path (written atomically)
  int n = 64;                       // --n: images in the grid
  int nrow = 8;                     // --nrow: images per row
  uint64_t seed = 1;                // --seed: noise seed (same seed, same grid)
  std::string device = "auto";      // --device
  void validate() const;            // throws std::invalid_argument naming the flag
};

void run_sample(const SampleOptions& options);

}  // namespace mnistgan
