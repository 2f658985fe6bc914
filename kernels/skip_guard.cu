// skip_guard.cu: guarded increment and accumulate (see skip_guard.cuh).
#include <cuda_runtime.h>  // kernel launches

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks
#include "skip_guard.cuh"

namespace mnistgan {
namespace {

static __global__ void increment_unless_kernel(int64_t* counter, const float* skip_if_nonzero,
                                               long long counter_stride, long long skip_stride) {
  const long long z = blockIdx.y;
  if (skip_if_nonzero[z * skip_stride] == 0.0f) counter[z * counter_stride] += 1;
}

// acc, x (n). The flag is the same word for every thread, so the whole grid agrees.
static __global__ void __launch_bounds__(kSkipGuardThreads)
    accumulate_unless_kernel(const float* __restrict__ x, float* __restrict__ acc, size_t n,
                             const float* __restrict__ skip_if_nonzero, long long x_stride,
                             long long acc_stride, long long skip_stride) {
  const long long z = blockIdx.y;
  if (skip_if_nonzero != nullptr && skip_if_nonzero[z * skip_stride] != 0.0f) return;
  x += z * x_stride, acc += z * acc_stride;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    acc[i] = __fadd_rn(acc[i], x[i]);  // one rounded add, as the CPU's acc[i] += x[i]
}

void check_models(const char* op, int models) {
  if (models < 1 || models > 65535)
    throw std::invalid_argument(std::string(op) + ": models " + std::to_string(models) +
                                " is outside [1, 65535]");
}

}  // namespace

void increment_unless(int64_t* counter, const float* skip_if_nonzero, cudaStream_t stream,
                      int models, long long counter_stride, long long skip_stride) {
  if (counter == nullptr || skip_if_nonzero == nullptr)
    throw std::invalid_argument("increment_unless: counter and skip_if_nonzero must be non-null");
  check_models("increment_unless", models);
  MNISTGAN_LAUNCH(dim3(1, static_cast<unsigned>(models)), 1, 0, stream, increment_unless_kernel)
  (counter, skip_if_nonzero, counter_stride, skip_stride);
  CUDA_CHECK_LAUNCH();
}

void accumulate_unless(const float* x, float* acc, size_t n, const float* skip_if_nonzero,
                       cudaStream_t stream, int models, long long x_stride, long long acc_stride,
                       long long skip_stride) {
  if (n == 0) return;
  if (x == nullptr || acc == nullptr)
    throw std::invalid_argument("accumulate_unless: x and acc must be non-null");
  check_models("accumulate_unless", models);
  const dim3 grid(grid_blocks(n, kSkipGuardThreads, 1024), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kSkipGuardThreads, 0, stream, accumulate_unless_kernel)
  (x, acc, n, skip_if_nonzero, x_stride, acc_stride, skip_stride);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
