// shuffle.h: the order in which an epoch visits the training images.
#pragma once

#include <cstdint>
#include <vector>

namespace mnistgan {

// The epoch's image order: a Fisher-Yates shuffle driven by Philox keyed by (seed, epoch),
// so any epoch's order can be recomputed on resume without replaying earlier ones.
std::vector<int32_t> epoch_permutation(uint64_t seed, int64_t epoch, int n_images);

}  // namespace mnistgan
