// adam.cu: one Adam step over a flat buffer (see adam.cuh).
#include <cuda_runtime.h>  // __syncthreads

#include <stdexcept>  // std::invalid_argument

#include "adam.cuh"
#include "core/formulas.h"  // adam_corrections, adam_update
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kAdamThreads)
    adam_kernel(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                float* __restrict__ v, size_t n, AdamHyper h, const int64_t* __restrict__ step,
                const float* __restrict__ skip_if_nonzero) {
  // Uniform across the grid (every thread reads the same word), so returning before the
  // barrier below is safe: no block is left waiting on threads that left.
  if (skip_if_nonzero != nullptr && *skip_if_nonzero != 0.0f) return;
  // The corrections in double (pow) once per block, shared.
  __shared__ AdamCorrections s_corrections;
  if (threadIdx.x == 0) s_corrections = adam_corrections(h, *step);
  __syncthreads();
  const AdamCorrections c = s_corrections;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float p = params[i], mi = m[i], vi = v[i];
    adam_update(grads[i], p, mi, vi, h, c);
    m[i] = mi;
    v[i] = vi;
    params[i] = p;
  }
}

}  // namespace

void adam_step(float* params, const float* grads, float* m, float* v, size_t n,
               const AdamHyper& hyper, const int64_t* step, cudaStream_t stream,
               const float* skip_if_nonzero) {
  if (n == 0) return;
  if (params == nullptr || grads == nullptr || m == nullptr || v == nullptr || step == nullptr)
    throw std::invalid_argument("adam_step: params, grads, m, v and step must all be non-null");
  // A few blocks per SM is enough for a bandwidth-bound loop; the grid-stride covers the rest.
  MNISTGAN_LAUNCH(grid_blocks(n, kAdamThreads, 4096), kAdamThreads, 0, stream, adam_kernel)
  (params, grads, m, v, n, hyper, step, skip_if_nonzero);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
