// bce.cu: BCE with logits, loss + gradient + stats in one deterministic kernel (see bce.cuh).
#include <cuda_runtime.h>  // __syncthreads

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "bce.cuh"
#include "core/formulas.h"  // bce_with_logits_terms, bce_with_logits_grad
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kBceThreads)
    bce_kernel(const float* __restrict__ x, int n, float target, float grad_scale,
               float* __restrict__ dx, float* __restrict__ stats) {
  static_assert((kBceThreads & (kBceThreads - 1)) == 0, "the tree needs a power of two");
  __shared__ double s_loss[kBceThreads], s_prob[kBceThreads];
  double loss_sum = 0.0, prob_sum = 0.0;
  for (int i = threadIdx.x; i < n; i += kBceThreads) {
    const BceTerms e = bce_with_logits_terms(x[i], target);
    loss_sum += e.loss;
    prob_sum += e.prob;
    if (dx != nullptr) dx[i] = bce_with_logits_grad(e.prob, target, grad_scale, n);
  }
  s_loss[threadIdx.x] = loss_sum;
  s_prob[threadIdx.x] = prob_sum;
  __syncthreads();
  for (int stride = kBceThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      s_loss[threadIdx.x] += s_loss[threadIdx.x + stride];
      s_prob[threadIdx.x] += s_prob[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0 && stats != nullptr) {
    stats[0] += static_cast<float>(s_loss[0] / n);
    stats[1] += static_cast<float>(s_prob[0] / n);
  }
}

}  // namespace

void bce_with_logits(const float* x, int n, float target, float grad_scale, float* dx, float* stats,
                     cudaStream_t stream) {
  if (n < 1 || x == nullptr)
    throw std::invalid_argument("bce_with_logits: n = " + std::to_string(n) + " logits at " +
                                (x ? "a valid pointer" : "nullptr") + "; pass at least one logit");
  MNISTGAN_LAUNCH(1, kBceThreads, 0, stream, bce_kernel)(x, n, target, grad_scale, dx, stats);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
