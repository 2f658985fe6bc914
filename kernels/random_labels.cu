// random_labels.cu: Philox class labels, bitwise equal to the CPU backend (see
// random_labels.cuh).
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/philox.h"    // philox_label
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks
#include "random_labels.cuh"

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kRandomLabelThreads)
    random_labels_kernel(int32_t* __restrict__ out, size_t n, int classes, uint64_t seed,
                         uint32_t stream, const int64_t* __restrict__ step, long long out_stride,
                         long long step_stride, const uint64_t* __restrict__ seeds) {
  const long long z = blockIdx.y;
  out += z * out_stride;
  if (seeds != nullptr) seed = seeds[z];
  const uint64_t s = step != nullptr ? static_cast<uint64_t>(step[z * step_stride]) : 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = philox_label(seed, stream, i, s, classes);
}

}  // namespace

void random_labels(int32_t* out, size_t n, int classes, uint64_t seed, uint32_t stream,
                   const int64_t* step, cudaStream_t cuda_stream, int models,
                   long long out_stride, long long step_stride, const uint64_t* seeds) {
  if (n == 0) return;
  if (out == nullptr) throw std::invalid_argument("random_labels: out must be non-null");
  if (classes < 1)
    throw std::invalid_argument("random_labels: classes " + std::to_string(classes) +
                                " must be >= 1");
  if (models < 1 || models > 65535)
    throw std::invalid_argument("random_labels: models " + std::to_string(models) +
                                " is outside [1, 65535]");
  const dim3 grid(grid_blocks(n, kRandomLabelThreads), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kRandomLabelThreads, 0, cuda_stream, random_labels_kernel)
  (out, n, classes, seed, stream, step, out_stride, step_stride, seeds);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
