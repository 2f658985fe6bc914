// bce.cu: BCE with logits, loss + gradient + stats in one deterministic kernel (see bce.cuh).
#include <cuda_runtime.h>  // expf, log1pf

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "bce.cuh"
#include "cuda_check.cuh"  // CUDA_CHECK_LAUNCH

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kBceThreads)
    bce_kernel(const float* __restrict__ x, int n, float target, float grad_scale,
               float* __restrict__ dx, float* __restrict__ stats) {
  static_assert((kBceThreads & (kBceThreads - 1)) == 0, "the tree needs a power of two");
  __shared__ double s_loss[kBceThreads], s_prob[kBceThreads];
  double loss_sum = 0.0, prob_sum = 0.0;
  for (int i = threadIdx.x; i < n; i += kBceThreads) {
    const float xi = x[i];
    // exp of a non-positive number only: no overflow for any x.
    const float ex = expf(-fabsf(xi));
    // log(1 + exp(x)) - x t = max(x, 0) - x t + log1p(exp(-|x|))
    const float loss = fmaxf(xi, 0.0f) - xi * target + log1pf(ex);
    // sigmoid(x) = 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) for x < 0
    const float prob = xi >= 0.0f ? 1.0f / (1.0f + ex) : ex / (1.0f + ex);
    loss_sum += loss;
    prob_sum += prob;
    if (dx != nullptr) dx[i] = grad_scale * (prob - target) / static_cast<float>(n);
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
