// adam.cu: one Adam step over a flat buffer (see adam.cuh).
#include <cuda_runtime.h>  // __syncthreads

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "adam.cuh"
#include "core/formulas.h"  // adam_corrections, adam_update, ema_decay_at, ema_blend
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kAdamThreads)
    adam_kernel(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                float* __restrict__ v, size_t n, AdamHyper h, int64_t* __restrict__ step,
                unsigned* __restrict__ tickets, const float* __restrict__ skip_if_nonzero,
                float* __restrict__ ema, float ema_decay, AdamModelStrides ms,
                const AdamHyper* __restrict__ hypers, const float* __restrict__ ema_decays) {
  const long long z = blockIdx.y;
  if (hypers != nullptr) h = hypers[z];
  if (ema_decays != nullptr) ema_decay = ema_decays[z];
  // Uniform across the model's blocks (every thread reads the same word), so returning before
  // the barriers below is safe: no block is left waiting on threads that left.
  if (skip_if_nonzero != nullptr && skip_if_nonzero[z * ms.skip] != 0.0f) return;
  params += z * ms.params, grads += z * ms.grads, m += z * ms.m, v += z * ms.v;
  if (ema != nullptr) ema += z * ms.ema;
  step += z * ms.step;
  // The corrections in double (pow) once per block, shared.
  __shared__ AdamCorrections s_corrections;
  __shared__ int64_t s_step;
  if (threadIdx.x == 0) {
    s_step = *step;
    s_corrections = adam_corrections(h, s_step);
  }
  __syncthreads();  // s_step and s_corrections are set
  const AdamCorrections c = s_corrections;
  const float d = ema != nullptr ? ema_decay_at(s_step + 1, ema_decay) : 0.0f;
  const float one_minus_d = 1.0f - d;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float p = params[i], mi = m[i], vi = v[i];
    adam_update(grads[i], p, mi, vi, h, c);
    m[i] = mi;
    v[i] = vi;
    params[i] = p;
    if (ema != nullptr) ema[i] = ema_blend(ema[i], p, d, one_minus_d);
  }
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(&tickets[z], 1u) == gridDim.x - 1) {
      *step = s_step + 1;
      tickets[z] = 0;
    }
  }
}

}  // namespace

void adam_step(float* params, const float* grads, float* m, float* v, size_t n,
               const AdamHyper& hyper, int64_t* step, unsigned* tickets, cudaStream_t stream,
               const float* skip_if_nonzero, float* ema, float ema_decay, int models,
               const AdamModelStrides& ms, const AdamHyper* hypers, const float* ema_decays) {
  if (n == 0) return;
  if (params == nullptr || grads == nullptr || m == nullptr || v == nullptr || step == nullptr ||
      tickets == nullptr)
    throw std::invalid_argument(
        "adam_step: params, grads, m, v, step and tickets must all be non-null");
  if (models < 1 || models > 65535)
    throw std::invalid_argument("adam_step: models " + std::to_string(models) +
                                " is outside [1, 65535]");
  if (ema != nullptr && !(ema_decay >= 0.0f && ema_decay < 1.0f))
    throw std::invalid_argument("adam_step: EMA decay " + std::to_string(ema_decay) +
                                " is outside [0, 1)");
  // A few blocks per SM is enough for a bandwidth-bound loop; the grid-stride covers the rest.
  const dim3 grid(grid_blocks(n, kAdamThreads, 4096), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kAdamThreads, 0, stream, adam_kernel)
  (params, grads, m, v, n, hyper, step, tickets, skip_if_nonzero, ema, ema_decay, ms, hypers,
   ema_decays);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
