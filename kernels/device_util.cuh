// device_util.cuh: small helpers shared by several kernels (not an op of its own).
//   apply_activation: the forward activations of backend.h, on one value.
//   grid_blocks:      a 1-D grid size for a grid-stride loop over n elements.
#pragma once

#include <cuda_runtime.h>  // __device__, tanhf

#include <algorithm>  // std::min
#include <cstddef>    // size_t

#include "core/backend.h"  // Activation

namespace mnistgan {

// act(z) with the same comparisons as the CPU backend: LeakyReLU is z > 0 ? z : slope z.
__device__ __forceinline__ float apply_activation(float z, Activation act, float slope) {
  switch (act) {
    case Activation::kLeakyRelu:
      return z > 0.0f ? z : slope * z;
    case Activation::kTanh:
      return tanhf(z);
    default:
      return z;
  }
}

// Enough blocks to give every thread about one element, capped so that huge n uses a
// grid-stride loop instead of an enormous grid (and never exceeds the 2^31-1 limit).
inline unsigned grid_blocks(size_t n, int threads, size_t cap = 65535) {
  const size_t blocks = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  return static_cast<unsigned>(std::min(std::max<size_t>(blocks, 1), cap));
}

}  // namespace mnistgan
