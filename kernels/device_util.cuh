// device_util.cuh: small helpers shared by several kernels (not an op of its own).
//   grid_blocks: a 1-D grid size for a grid-stride loop over n elements.
//   load_bypassing_l1: a global load served from L2, for data other blocks of the same
//     launch wrote (split-K partials), which this SM's L1 must not answer from a stale line.
// (The per-element formulas the kernels share with the CPU are in core/formulas.h.)
#pragma once

#include <cuda_runtime.h>  // __ldcg

#include <algorithm>  // std::min
#include <cstddef>    // size_t

namespace mnistgan {

// Enough blocks to give every thread about one element, capped so that huge n uses a
// grid-stride loop instead of an enormous grid (and never exceeds the 2^31-1 limit).
inline unsigned grid_blocks(size_t n, int threads, size_t cap = 65535) {
  const size_t blocks = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  return static_cast<unsigned>(std::min(std::max<size_t>(blocks, 1), cap));
}

#if defined(MNISTGAN_CUDA_EMU)
inline float load_bypassing_l1(const float* p) { return *p; }
#else
__device__ __forceinline__ float load_bypassing_l1(const float* p) { return __ldcg(p); }
#endif

}  // namespace mnistgan
