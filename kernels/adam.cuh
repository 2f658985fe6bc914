// adam.cuh: one Adam step over a flat parameter buffer, as torch.optim.Adam (no weight
// decay), in a single launch.
//
//   params, grads, m, v (n); step: device int64, Adam's t - 1 (read on the device so the
//   launch can be replayed from a CUDA graph).
//   t = *step + 1;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   skip_if_nonzero (optional, device float): the whole update is a no-op when it is != 0
//   (the divergence guard's skip-step policy).
//
// Version: grid-stride, one element per thread per iteration. The bias corrections are
// computed in double once per block (thread 0, shared memory), then rounded to float as
// the CPU reference does. The element update uses explicitly rounded intrinsics (no FMA
// contraction), so it matches the CPU reference bit for bit given the same corrections.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t
#include <cstdint>  // int64_t

#include "core/backend.h"  // AdamHyper

namespace mnistgan {

constexpr int kAdamThreads = 256;

// n == 0 does nothing. Throws std::invalid_argument on null pointers.
// skip_if_nonzero: optional device float; when *skip_if_nonzero != 0 (read by the kernel, so
// graph replays see the current value) every thread returns at once and nothing changes.
void adam_step(float* params, const float* grads, float* m, float* v, size_t n,
               const AdamHyper& hyper, const int64_t* step, cudaStream_t stream,
               const float* skip_if_nonzero = nullptr);

}  // namespace mnistgan
