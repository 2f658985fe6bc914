// ema.cuh: one exponential-moving-average update of a flat parameter buffer (the EMA
// generator), in a single launch.
//
//   ema, params (n); updates: device int64, the optimiser updates done so far, read on the
//   device so the launch can be replayed from a CUDA graph.
//   t = *updates;  d = min(decay, (1 + t) / (10 + t))   (in double, rounded to float)
//   ema = d ema + (1 - d) params
//   The warm-up (1 + t) / (10 + t) is TensorFlow's ExponentialMovingAverage with
//   num_updates: early on the average follows the fast-moving weights instead of holding on
//   to the random initialisation for ~1 / (1 - decay) updates.
//   skip_if_nonzero (optional, device float): no-op when != 0 (the divergence guard skipped
//   this update, so the weights did not move and the average must not either).
//
// Version: grid-stride, one element per thread per iteration; explicitly rounded
// intrinsics (no FMA contraction), so it matches the CPU reference bit for bit.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t
#include <cstdint>  // int64_t

namespace mnistgan {

constexpr int kEmaThreads = 256;

// n == 0 does nothing. Throws std::invalid_argument on null pointers or a decay outside
// [0, 1).
void ema_update(float* ema, const float* params, size_t n, float decay, const int64_t* updates,
                cudaStream_t stream, const float* skip_if_nonzero = nullptr);

}  // namespace mnistgan
