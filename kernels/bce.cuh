// bce.cuh: binary cross-entropy with logits against a constant target, in one kernel.
//
//   x (n) logits, dx (n) or nullptr, stats (2) or nullptr:
//   loss_i = max(x_i, 0) - x_i t + log1p(exp(-|x_i|))        (stable for any |x_i|)
//   dx_i   = grad_scale * (sigmoid(x_i) - t) / n
//   stats[0] += mean loss, stats[1] += mean sigmoid(x)
//
// Version: one block of kBceThreads threads. Each thread accumulates a strided slice in
// double, then a fixed shared-memory tree adds the partials, so the sums are the same on
// every run (no atomics). n is the batch (a few thousand at most), so one block suffices.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

namespace mnistgan {

constexpr int kBceThreads = 256;

// Throws std::invalid_argument when n < 1 or x is null.
void bce_with_logits(const float* x, int n, float target, float grad_scale, float* dx, float* stats,
                     cudaStream_t stream);

}  // namespace mnistgan
