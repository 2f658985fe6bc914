// logit_bce.cu: the logit layer + BCE + its backward in one block per model (logit_bce.cuh).
#include <cuda_runtime.h>  // __shfl_down_sync

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // bce_with_logits_terms, bce_with_logits_grad
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH, MNISTGAN_LAUNCH
#include "logit_bce.cuh"

namespace mnistgan {
namespace {

constexpr int kWarps = kLogitBceThreads / 32;

struct Targets {
  float t[kLogitBceMaxGroups];
};

static __global__ void __launch_bounds__(kLogitBceThreads)
    logit_bce_kernel(const float* __restrict__ X, const float* __restrict__ w,
                     const float* __restrict__ b, int groups, int B, int in, Targets targets,
                     float grad_scale, float* __restrict__ logits, float* __restrict__ dlogits,
                     float* __restrict__ dX, float* __restrict__ dw, float* __restrict__ db,
                     float* __restrict__ stats, LogitBceModelStrides ms,
                     const float* __restrict__ model_targets) {
  static_assert((kLogitBceThreads & (kLogitBceThreads - 1)) == 0, "the tree needs a power of two");
  __shared__ double s_loss[kLogitBceThreads], s_prob[kLogitBceThreads];
  const long long z = blockIdx.x;
  if (model_targets != nullptr)
    for (int g = 0; g < groups; ++g) targets.t[g] = model_targets[z * groups + g];
  X += z * ms.x;
  w += z * ms.w;
  const float bias = b != nullptr ? b[z * ms.b] : 0.0f;
  logits += z * ms.logits;
  dlogits += z * ms.dlogits;
  const int rows = groups * B, lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  // logit[r]: one warp per row, lanes over columns, then a fixed shuffle tree.
  for (int r = warp; r < rows; r += kWarps) {
    const float* x = X + static_cast<long long>(r) * in;
    float s = 0.0f;
    for (int c = lane; c < in; c += 32) s += x[c] * w[c];
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (lane == 0) logits[r] = s + bias;
  }
  __syncthreads();  // the logits are written

  for (int g = 0; g < groups; ++g) {
    double loss_sum = 0.0, prob_sum = 0.0;
    for (int i = threadIdx.x; i < B; i += kLogitBceThreads) {
      const int r = g * B + i;
      const BceTerms e = bce_with_logits_terms(logits[r], targets.t[g]);
      loss_sum += e.loss;
      prob_sum += e.prob;
      dlogits[r] = bce_with_logits_grad(e.prob, targets.t[g], grad_scale, B);
    }
    s_loss[threadIdx.x] = loss_sum;
    s_prob[threadIdx.x] = prob_sum;
    __syncthreads();  // every partial is in shared memory
    for (int stride = kLogitBceThreads / 2; stride > 0; stride /= 2) {
      if (threadIdx.x < stride) {
        s_loss[threadIdx.x] += s_loss[threadIdx.x + stride];
        s_prob[threadIdx.x] += s_prob[threadIdx.x + stride];
      }
      __syncthreads();  // this level of the tree is summed
    }
    if (threadIdx.x == 0 && stats != nullptr) {
      float* st = stats + z * ms.stats + 2 * g;
      st[0] += static_cast<float>(s_loss[0] / B);
      st[1] += static_cast<float>(s_prob[0] / B);
    }
    __syncthreads();  // s_loss is read before the next group overwrites it
  }

  if (dw != nullptr) {
    float* dwz = dw + z * ms.dw;
    for (int c = threadIdx.x; c < in; c += kLogitBceThreads) {
      float s = 0.0f;
      for (int r = 0; r < rows; ++r) s += dlogits[r] * X[static_cast<long long>(r) * in + c];
      dwz[c] = s;
    }
    if (threadIdx.x == 0) {
      float s = 0.0f;
      for (int r = 0; r < rows; ++r) s += dlogits[r];
      db[z * ms.db] = s;
    }
  }
  if (dX != nullptr) {
    float* dxz = dX + z * ms.dx;
    const long long n = static_cast<long long>(rows) * in;
    for (long long e = threadIdx.x; e < n; e += kLogitBceThreads)
      dxz[e] = dlogits[e / in] * w[e % in];
  }
}

}  // namespace

void logit_bce(const float* X, const float* w, const float* b, int groups, int B, int in,
               const float* targets, float grad_scale, float* logits, float* dlogits, float* dX,
               float* dw, float* db, float* stats, int models, const LogitBceModelStrides& ms,
               cudaStream_t stream, const float* model_targets) {
  if (groups < 1 || groups > kLogitBceMaxGroups || B < 1 || in < 1 || models < 1)
    throw std::invalid_argument("logit_bce: groups=" + std::to_string(groups) + ", B=" +
                                std::to_string(B) + ", in=" + std::to_string(in) + ", models=" +
                                std::to_string(models) + ": sizes must be >= 1 and groups <= " +
                                std::to_string(kLogitBceMaxGroups));
  if (X == nullptr || w == nullptr || targets == nullptr || logits == nullptr ||
      dlogits == nullptr)
    throw std::invalid_argument("logit_bce: X, w, targets, logits and dlogits must be non-null");
  if ((dw == nullptr) != (db == nullptr))
    throw std::invalid_argument("logit_bce: dw and db go together; pass both or neither");
  Targets t{};
  for (int g = 0; g < groups; ++g) t.t[g] = targets[g];
  MNISTGAN_LAUNCH(models, kLogitBceThreads, 0, stream, logit_bce_kernel)
  (X, w, b, groups, B, in, t, grad_scale, logits, dlogits, dX, dw, db, stats, ms, model_targets);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
