// logit_bce.cuh: the discriminator's logit layer (one output) fused with its BCE loss and its
// backward pass, in one launch of one block per model.
//
// For each model m (blockIdx.x) with rows = groups * B and X packed (rows, in):
//   logit[r]  = X[r, :] . w + b                                         logits (rows)
//   group g's rows [g B, (g+1) B) against target[g]:
//     dlogit[r] = grad_scale * (sigmoid(logit[r]) - target[g]) / B      dlogits (rows)
//     stats[2g] += mean BCE, stats[2g + 1] += mean sigmoid             (as bce_with_logits)
//   dX[r, c] = dlogit[r] * w[c]   (rows, in), or nullptr
//   dw[c] = sum_r dlogit[r] X[r, c]  (in), db = sum_r dlogit[r]  (1), both or neither
// Every sum runs in a fixed order (rows in index order per thread, then a fixed tree across
// threads), so the result repeats bitwise; the loss sums are in double, as the CPU's.
// Why one block: the layer is rows x in = 2048 x 356 at most (batch 1024, two groups), a few
// microseconds of work; one block keeps the BCE's cross-row mean inside the launch.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

namespace mnistgan {

constexpr int kLogitBceThreads = 256;
constexpr int kLogitBceMaxGroups = 4;

// How far each tensor of model m is from model 0's, in floats.
struct LogitBceModelStrides {
  long long x = 0, w = 0, b = 0, logits = 0, dlogits = 0, dx = 0, dw = 0, db = 0, stats = 0;
};

// targets: one per group (groups <= kLogitBceMaxGroups), a host array. model_targets: nullptr,
// or a device array (models, groups) of each model's own targets, used instead. stats (2 groups
// floats) may be nullptr. Throws std::invalid_argument on bad sizes or pointers.
void logit_bce(const float* X, const float* w, const float* b, int groups, int B, int in,
               const float* targets, float grad_scale, float* logits, float* dlogits, float* dX,
               float* dw, float* db, float* stats, int models, const LogitBceModelStrides& ms,
               cudaStream_t stream, const float* model_targets = nullptr);

}  // namespace mnistgan
