// random_labels.cuh: uniform class labels from the shared Philox4x32-10 generator
// (host/core/philox.h), exactly as backend.h's random_labels:
//
//   out[i] = philox_label(seed, stream, i, *step, classes)     out (n) int32 in [0, classes)
//   step == nullptr means 0. The same function the CPU backend calls, so both backends draw
//   the identical labels (a conditional run's fake labels) for a (seed, stream, step).
//
// Version: one thread per label (one Philox call each) in a grid-stride loop; the step is
// read on the device, so a replayed CUDA graph draws the current step's labels.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t
#include <cstdint>  // int32_t, int64_t, uint32_t, uint64_t

namespace mnistgan {

constexpr int kRandomLabelThreads = 256;

// n == 0 does nothing. Throws std::invalid_argument when out is null or classes < 1.
// models (the grid's y): model z writes out + z * out_stride from its step
// step[z * step_stride], keyed by seeds[z] (a device array of `models`) or, with seeds ==
// nullptr, by seed.
void random_labels(int32_t* out, size_t n, int classes, uint64_t seed, uint32_t stream,
                   const int64_t* step, cudaStream_t cuda_stream, int models = 1,
                   long long out_stride = 0, long long step_stride = 0,
                   const uint64_t* seeds = nullptr);

}  // namespace mnistgan
