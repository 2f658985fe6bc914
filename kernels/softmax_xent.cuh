// softmax_xent.cuh: softmax cross-entropy with integer labels, loss + gradient + stats in
// one deterministic kernel (the feature classifier's loss; see backend.h).
//
//   logits (rows, classes), labels (rows) int32, dlogits (rows, classes) or nullptr,
//   stats (2) or nullptr:
//   loss_r       = log(sum_c exp(x_rc - max_r)) - (x_r,label_r - max_r)   (never overflows)
//   dlogits[r,c] = grad_scale * (softmax(x_r)_c - [c == label_r]) / rows
//   stats[0] += mean loss, stats[1] += fraction of rows whose first argmax is the label
//   A label outside [0, classes) gives NaN for its row (no out-of-bounds read).
//
// Version 1 (shipped): one block of kSoftmaxXentThreads threads, one row per thread at a
// time (classes is small: 10 for MNIST), per-thread partial sums in double, then a fixed
// shared-memory tree, so the stats are identical on every run (no atomics). rows is a
// batch or an evaluation chunk (thousands), so one block is enough.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstdint>  // int32_t

namespace mnistgan {

constexpr int kSoftmaxXentThreads = 256;

// Throws std::invalid_argument when rows < 1, classes < 1 or a pointer that must be
// valid is null.
void softmax_cross_entropy(const float* logits, const int32_t* labels, int rows, int classes,
                           float grad_scale, float* dlogits, float* stats, cudaStream_t stream);

}  // namespace mnistgan
