// elementwise.cu: activation backward, column concat/split, counter increment, non-finite
// count (see elementwise.cuh).
#include <cuda_runtime.h>  // cudaMemcpyAsync, cudaFuncGetAttributes, atomics

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // activation_grad
#include "cuda_check.cuh"   // CUDA_CHECK, CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks
#include "elementwise.cuh"

namespace mnistgan {
namespace {

#define MNISTGAN_GRID_STRIDE(i, n)                                                     \
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<size_t>(gridDim.x) * blockDim.x)

static __global__ void activation_backward_kernel(const float* __restrict__ Y, const float* dY,
                                                  float* dZ, size_t n, Activation act,
                                                  float slope) {
  // dY and dZ may alias: each element is read before it is written, by the same thread.
  MNISTGAN_GRID_STRIDE(i, n) { dZ[i] = activation_grad(Y[i], dY[i], act, slope); }
}

static __global__ void concat_cols_kernel(const float* __restrict__ A, const float* __restrict__ B,
                                          float* __restrict__ out, int rows, int a, int b,
                                          ColsModelStrides ms) {
  const long long z = blockIdx.y;
  if (A != nullptr) A += z * ms.a;
  if (B != nullptr) B += z * ms.b;
  out += z * ms.whole;
  const int w = a + b;
  MNISTGAN_GRID_STRIDE(i, static_cast<size_t>(rows) * w) {
    const size_t r = i / w;
    const int c = static_cast<int>(i - r * w);
    out[i] = c < a ? A[r * a + c] : B[r * b + (c - a)];
  }
}

static __global__ void split_cols_kernel(const float* __restrict__ in, float* __restrict__ A,
                                         float* __restrict__ B, int rows, int a, int b,
                                         ColsModelStrides ms) {
  const long long z = blockIdx.y;
  if (A != nullptr) A += z * ms.a;
  if (B != nullptr) B += z * ms.b;
  in += z * ms.whole;
  const int w = a + b;
  MNISTGAN_GRID_STRIDE(i, static_cast<size_t>(rows) * w) {
    const size_t r = i / w;
    const int c = static_cast<int>(i - r * w);
    if (c < a) {
      if (A != nullptr) A[r * a + c] = in[i];
    } else if (B != nullptr) {
      B[r * b + (c - a)] = in[i];
    }
  }
}

static __global__ void __launch_bounds__(kElementwiseThreads)
    fill_zero_models_kernel(uint8_t* p, size_t bytes, long long stride) {
  uint8_t* q = p + blockIdx.y * stride;
  MNISTGAN_GRID_STRIDE(i, bytes) q[i] = 0;
}

static __global__ void increment_kernel(int64_t* counter, long long counter_stride) {
  counter[blockIdx.y * counter_stride] += 1;
}

static __global__ void __launch_bounds__(kElementwiseThreads)
    count_nonfinite_kernel(const float* __restrict__ x, size_t n, float* count,
                           unsigned long long* scratch, long long x_stride,
                           long long count_stride) {
  const long long z = blockIdx.y;
  x += z * x_stride, count += z * count_stride, scratch += 2 * z;
  unsigned local = 0;
  MNISTGAN_GRID_STRIDE(i, n) local += isfinite(x[i]) ? 0u : 1u;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    local += __shfl_down_sync(0xffffffffu, local, offset);
  __shared__ unsigned warp_counts[kElementwiseThreads / 32];
  if (threadIdx.x % 32 == 0) warp_counts[threadIdx.x / 32] = local;
  __syncthreads();
  if (threadIdx.x != 0) return;
  unsigned long long block_total = 0;
  for (int w = 0; w < kElementwiseThreads / 32; ++w) block_total += warp_counts[w];
  if (block_total != 0) atomicAdd(&scratch[0], block_total);
  __threadfence();  // the add above is visible before this block takes its ticket
  const unsigned long long ticket = atomicAdd(&scratch[1], 1ull);
  if (ticket == gridDim.x - 1) {
    // Last block: every other block's add happened before its ticket, hence before ours.
    const unsigned long long total = atomicExch(&scratch[0], 0ull);
    atomicExch(&scratch[1], 0ull);
    *count += static_cast<float>(total);
  }
}

void check_models(const char* op, int models) {
  if (models < 1 || models > 65535)
    throw std::invalid_argument(std::string(op) + ": models " + std::to_string(models) +
                                " is outside [1, 65535]");
}

void check_cols(const char* op, int rows, int a, int b) {
  if (rows < 1 || a < 0 || b < 0 || a + b < 1)
    throw std::invalid_argument(std::string(op) + ": rows=" + std::to_string(rows) +
                                ", a=" + std::to_string(a) + ", b=" + std::to_string(b) +
                                ": need rows >= 1, a, b >= 0 and a + b >= 1");
}

}  // namespace

void activation_backward(const float* Y, const float* dY, float* dZ, size_t n, Activation act,
                         float slope, cudaStream_t stream) {
  if (n == 0) return;
  if (dY == nullptr || dZ == nullptr || (act != Activation::kNone && Y == nullptr))
    throw std::invalid_argument(
        "activation_backward: dY, dZ (and Y unless act is none) must "
        "be non-null");
  if (act == Activation::kNone) {
    if (dZ != dY)
      CUDA_CHECK(cudaMemcpyAsync(dZ, dY, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  MNISTGAN_LAUNCH(grid_blocks(n, kElementwiseThreads), kElementwiseThreads, 0, stream,
                  activation_backward_kernel)
  (Y, dY, dZ, n, act, slope);
  CUDA_CHECK_LAUNCH();
}

void concat_cols(const float* A, const float* B, float* out, int rows, int a, int b,
                 cudaStream_t stream, int models, const ColsModelStrides& ms) {
  check_cols("concat_cols", rows, a, b);
  check_models("concat_cols", models);
  if (out == nullptr || (a > 0 && A == nullptr) || (b > 0 && B == nullptr))
    throw std::invalid_argument(
        "concat_cols: out, and A / B when their width is > 0, must be "
        "non-null");
  const size_t n = static_cast<size_t>(rows) * (a + b);
  const dim3 grid(grid_blocks(n, kElementwiseThreads), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kElementwiseThreads, 0, stream, concat_cols_kernel)
  (A, B, out, rows, a, b, ms);
  CUDA_CHECK_LAUNCH();
}

void split_cols(const float* in, float* A, float* B, int rows, int a, int b, cudaStream_t stream,
                int models, const ColsModelStrides& ms) {
  check_cols("split_cols", rows, a, b);
  check_models("split_cols", models);
  if (in == nullptr) throw std::invalid_argument("split_cols: in must be non-null");
  if (A == nullptr && B == nullptr) return;
  const size_t n = static_cast<size_t>(rows) * (a + b);
  const dim3 grid(grid_blocks(n, kElementwiseThreads), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kElementwiseThreads, 0, stream, split_cols_kernel)
  (in, A, B, rows, a, b, ms);
  CUDA_CHECK_LAUNCH();
}

void fill_zero_models(void* p, size_t bytes, int models, long long stride, cudaStream_t stream) {
  if (bytes == 0) return;
  if (p == nullptr) throw std::invalid_argument("fill_zero_models: p must be non-null");
  check_models("fill_zero_models", models);
  const dim3 grid(grid_blocks(bytes, kElementwiseThreads, 1024), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kElementwiseThreads, 0, stream, fill_zero_models_kernel)
  (static_cast<uint8_t*>(p), bytes, stride);
  CUDA_CHECK_LAUNCH();
}

void increment(int64_t* counter, cudaStream_t stream, int models, long long counter_stride) {
  if (counter == nullptr) throw std::invalid_argument("increment: counter must be non-null");
  check_models("increment", models);
  MNISTGAN_LAUNCH(dim3(1, static_cast<unsigned>(models)), 1, 0, stream, increment_kernel)
  (counter, counter_stride);
  CUDA_CHECK_LAUNCH();
}

void count_nonfinite(const float* x, size_t n, float* count, unsigned long long* scratch,
                     cudaStream_t stream, int models, long long x_stride, long long count_stride) {
  if (n == 0) return;
  if (x == nullptr || count == nullptr || scratch == nullptr)
    throw std::invalid_argument("count_nonfinite: x, count and scratch must be non-null");
  check_models("count_nonfinite", models);
  // 1024 blocks at most: enough to saturate bandwidth, few tickets to take.
  const dim3 grid(grid_blocks(n, kElementwiseThreads, 1024), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kElementwiseThreads, 0, stream, count_nonfinite_kernel)
  (x, n, count, scratch, x_stride, count_stride);
  CUDA_CHECK_LAUNCH();
}

cudaError_t kernel_image_error() {
  cudaFuncAttributes attributes;
  return cudaFuncGetAttributes(&attributes, increment_kernel);
}

}  // namespace mnistgan
