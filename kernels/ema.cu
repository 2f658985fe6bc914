// ema.cu: one EMA update over a flat buffer (see ema.cuh).
#include <cuda_runtime.h>  // blockIdx, threadIdx

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // ema_decay_at, ema_blend
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks
#include "ema.cuh"

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kEmaThreads)
    ema_kernel(float* __restrict__ ema, const float* __restrict__ params, size_t n, float decay,
               const int64_t* __restrict__ updates, const float* __restrict__ skip_if_nonzero) {
  if (skip_if_nonzero != nullptr && *skip_if_nonzero != 0.0f) return;
  // Every thread computes the same warmed-up decay.
  const float d = ema_decay_at(*updates, decay);
  const float one_minus_d = 1.0f - d;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    ema[i] = ema_blend(ema[i], params[i], d, one_minus_d);
}

}  // namespace

void ema_update(float* ema, const float* params, size_t n, float decay, const int64_t* updates,
                cudaStream_t stream, const float* skip_if_nonzero) {
  if (n == 0) return;
  if (ema == nullptr || params == nullptr || updates == nullptr)
    throw std::invalid_argument("ema_update: ema, params and updates must all be non-null");
  if (!(decay >= 0.0f && decay < 1.0f))
    throw std::invalid_argument("ema_update: decay " + std::to_string(decay) +
                                " is outside [0, 1)");
  // Bandwidth-bound like Adam: a few blocks per SM, the grid-stride covers the rest.
  MNISTGAN_LAUNCH(grid_blocks(n, kEmaThreads, 4096), kEmaThreads, 0, stream, ema_kernel)
  (ema, params, n, decay, updates, skip_if_nonzero);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
