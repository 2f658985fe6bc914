// noise.cuh: N(0,1) noise from the shared Philox4x32-10 generator (host/core/philox.h).
//
//   out (n); element i = value (i % 4) of philox_gaussian4(seed, stream, group = i / 4,
//   *step), step == nullptr meaning 0. The same function the CPU backend calls, so both
//   backends produce bitwise identical noise (including the tail when n % 4 != 0).
//
// Version: one thread per group of 4 (one Philox call), float4 store when the group is
// whole and out is 16-byte aligned.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t
#include <cstdint>  // uint64_t, uint32_t, int64_t

namespace mnistgan {

constexpr int kNoiseThreads = 256;

// Element strides between consecutive models' buffers (gaussian_noise's `models`).
struct NoiseModelStrides {
  long long out = 0, step = 0;
};

// n == 0 does nothing. Throws std::invalid_argument when out is null.
// models (blockIdx.y): model z writes out + z * ms.out from its counter step + z * ms.step, keyed
// by seeds[z] (a device array of `models`) or, with seeds == nullptr, by seed.
void gaussian_noise(float* out, size_t n, uint64_t seed, uint32_t stream, const int64_t* step,
                    cudaStream_t cuda_stream, int models = 1, const NoiseModelStrides& ms = {},
                    const uint64_t* seeds = nullptr);

}  // namespace mnistgan
