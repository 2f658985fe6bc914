// softmax_xent.cu: softmax cross-entropy with integer labels (see softmax_xent.cuh).
#include <cuda_runtime.h>  // launches

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // softmax_row, softmax_xent_loss, softmax_xent_grad
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "softmax_xent.cuh"

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kSoftmaxXentThreads)
    softmax_xent_kernel(const float* __restrict__ logits, const int32_t* __restrict__ labels,
                        int rows, int classes, float grad_scale, float* __restrict__ dlogits,
                        float* __restrict__ stats) {
  static_assert((kSoftmaxXentThreads & (kSoftmaxXentThreads - 1)) == 0,
                "the tree needs a power of two");
  __shared__ double s_loss[kSoftmaxXentThreads], s_correct[kSoftmaxXentThreads];
  double loss_sum = 0.0, correct = 0.0;
  const float scale = grad_scale / static_cast<float>(rows);
  for (int r = threadIdx.x; r < rows; r += kSoftmaxXentThreads) {
    const float* x = logits + static_cast<size_t>(r) * classes;
    const int label = labels[r];
    const SoftmaxRow row = softmax_row(x, classes);
    loss_sum += softmax_xent_loss(x, label, classes, row);
    correct += label >= 0 && label < classes && row.argmax == label ? 1.0 : 0.0;
    if (dlogits != nullptr) {
      float* d = dlogits + static_cast<size_t>(r) * classes;
      for (int c = 0; c < classes; ++c)
        d[c] = softmax_xent_grad(x[c], c, label, classes, row, scale);
    }
  }
  s_loss[threadIdx.x] = loss_sum;
  s_correct[threadIdx.x] = correct;
  __syncthreads();
  for (int stride = kSoftmaxXentThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      s_loss[threadIdx.x] += s_loss[threadIdx.x + stride];
      s_correct[threadIdx.x] += s_correct[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0 && stats != nullptr) {
    stats[0] += static_cast<float>(s_loss[0] / rows);
    stats[1] += static_cast<float>(s_correct[0] / rows);
  }
}

}  // namespace

void softmax_cross_entropy(const float* logits, const int32_t* labels, int rows, int classes,
                           float grad_scale, float* dlogits, float* stats, cudaStream_t stream) {
  if (rows < 1 || classes < 1 || logits == nullptr || labels == nullptr)
    throw std::invalid_argument("softmax_cross_entropy: rows = " + std::to_string(rows) +
                                ", classes = " + std::to_string(classes) +
                                "; pass at least one row and class, with logits and labels");
  MNISTGAN_LAUNCH(1, kSoftmaxXentThreads, 0, stream, softmax_xent_kernel)
  (logits, labels, rows, classes, grad_scale, dlogits, stats);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
