// shuffle.cpp: see shuffle.h.
#include "core/shuffle.h"

#include <utility>  // std::swap

#include "core/philox.h"

namespace mnistgan {

namespace {
constexpr uint32_t kShuffleStream = 0x30000u;  // Philox stream of the epoch shuffles
}  // namespace

std::vector<int32_t> epoch_permutation(uint64_t seed, int64_t epoch, int n_images) {
  std::vector<int32_t> perm(n_images);
  for (int i = 0; i < n_images; ++i) perm[i] = i;
  for (int i = n_images - 1; i > 0; --i) {
    const Philox4 r =
        philox_draw(seed, kShuffleStream, static_cast<uint64_t>(i), static_cast<uint64_t>(epoch));
    // Lemire's multiply-shift maps 32 random bits onto [0, i] without a division.
    const int j = static_cast<int>((static_cast<uint64_t>(r.v[0]) * (i + 1)) >> 32);
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

}  // namespace mnistgan
