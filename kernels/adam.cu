// adam.cu: one Adam step over a flat buffer (see adam.cuh).
#include <cuda_runtime.h>  // __fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn, pow, sqrt

#include <stdexcept>  // std::invalid_argument

#include "adam.cuh"
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
  __shared__ float s_step_size, s_bc2_sqrt;
  if (threadIdx.x == 0) {
    // As the CPU: in double from the float hyperparameters, then rounded to float.
    const double t = static_cast<double>(*step + 1);
    s_step_size = static_cast<float>(static_cast<double>(h.lr) /
                                     (1.0 - pow(static_cast<double>(h.beta1), t)));
    s_bc2_sqrt = static_cast<float>(sqrt(1.0 - pow(static_cast<double>(h.beta2), t)));
  }
  __syncthreads();
  const float step_size = s_step_size, bc2_sqrt = s_bc2_sqrt;
  const float one_minus_b1 = 1.0f - h.beta1, one_minus_b2 = 1.0f - h.beta2;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = grads[i];
    // m = b1 m + (1 - b1) g;  v = b2 v + ((1 - b2) g) g   (CPU evaluation order, no FMA)
    const float mi = __fadd_rn(__fmul_rn(h.beta1, m[i]), __fmul_rn(one_minus_b1, g));
    const float vi = __fadd_rn(__fmul_rn(h.beta2, v[i]), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
    m[i] = mi;
    v[i] = vi;
    // p -= (step_size m) / (sqrt(v) / sqrt(1 - b2^t) + eps)
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), h.eps);
    params[i] = __fsub_rn(params[i], __fdiv_rn(__fmul_rn(step_size, mi), denom));
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
