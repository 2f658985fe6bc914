// one_hot.cu: labels -> one-hot rows (see one_hot.cuh).
#include <cuda_runtime.h>  // blockIdx, threadIdx

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // one_hot_value
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks
#include "one_hot.cuh"

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kOneHotThreads)
    one_hot_kernel(const int32_t* __restrict__ labels, float* __restrict__ out, int rows,
                   int classes, long long labels_stride, long long out_stride) {
  const long long z = blockIdx.y;
  labels += z * labels_stride, out += z * out_stride;
  const size_t n = static_cast<size_t>(rows) * classes;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = i / classes;
    out[i] = one_hot_value(labels[r], static_cast<int>(i - r * classes), classes);
  }
}

}  // namespace

void one_hot(const int32_t* labels, float* out, int rows, int classes, cudaStream_t stream,
             int models, long long labels_stride, long long out_stride) {
  if (labels == nullptr || out == nullptr)
    throw std::invalid_argument("one_hot: labels and out must be non-null");
  if (rows < 1 || classes < 1)
    throw std::invalid_argument("one_hot: rows=" + std::to_string(rows) +
                                ", classes=" + std::to_string(classes) + ": both must be >= 1");
  if (models < 1 || models > 65535)
    throw std::invalid_argument("one_hot: models " + std::to_string(models) +
                                " is outside [1, 65535]");
  const size_t n = static_cast<size_t>(rows) * classes;
  const dim3 grid(grid_blocks(n, kOneHotThreads), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kOneHotThreads, 0, stream, one_hot_kernel)
  (labels, out, rows, classes, labels_stride, out_stride);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
