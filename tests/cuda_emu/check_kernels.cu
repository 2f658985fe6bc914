// check_kernels.cu: see check_kernels.cuh. Each helper is written right; a negative control
// replaces one exact text of this file to plant its bug.
#include "check_kernels.cuh"

#include <cuda_runtime.h>  // cudaMemcpyAsync, atomicAdd, blockIdx, threadIdx

#include "cuda_check.cuh"  // CUDA_CHECK, CUDA_CHECK_LAUNCH
#include "launch.cuh"      // MNISTGAN_LAUNCH

namespace mnistgan {
namespace emu_check {
namespace {

__global__ void block_sum_kernel(const float* x, int n, float* total) {
  __shared__ float partial[kSumThreads];
  const int i = static_cast<int>(blockIdx.x) * kSumThreads + static_cast<int>(threadIdx.x);
  partial[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();  // every value is in shared memory before the tree reads it
  for (int stride = kSumThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(total, partial[0]);
}

__global__ void add_kernel(float* y, const float* b, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] += b[i];
}

// A function template, so GCC keeps `row` out of the mnistgan_emu_shared section (emu.cpp
// finds it by name). Each block stages its row, then reads it back reversed: every element
// is written by one thread and read by another, and the same static serves every block.
template <int kWidth>
__global__ void reverse_rows_kernel(float* x) {
  __shared__ float row[kWidth];
  float* r = x + static_cast<size_t>(blockIdx.x) * kWidth;
  row[threadIdx.x] = r[threadIdx.x];
  __syncthreads();
  r[threadIdx.x] = row[kWidth - 1 - threadIdx.x];
}

}  // namespace

void reverse_rows(float* x, int rows, cudaStream_t stream) {
  MNISTGAN_LAUNCH(rows, kReverseWidth, 0, stream, reverse_rows_kernel<kReverseWidth>)(x);
  CUDA_CHECK_LAUNCH();
}

void sum_all(const float* x, int n, float* total, cudaStream_t stream) {
  CUDA_CHECK(cudaMemsetAsync(total, 0, sizeof(float), stream));
  const int blocks = (n + kSumThreads - 1) / kSumThreads;
  MNISTGAN_LAUNCH(blocks, kSumThreads, 0, stream, block_sum_kernel)(x, n, total);
  CUDA_CHECK_LAUNCH();
}

void download_pinned(const float* src, float* host_dst, size_t n, cudaStream_t stream) {
  CUDA_CHECK(cudaMemcpyAsync(host_dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));  // the copy into pinned memory is asynchronous
}

void add_host_bias(float* y, const float* host_bias, int n, cudaStream_t stream) {
  float* scratch = nullptr;
  CUDA_CHECK(cudaMalloc(&scratch, n * sizeof(float)));
  CUDA_CHECK(cudaMemcpyAsync(scratch, host_bias, n * sizeof(float), cudaMemcpyHostToDevice, stream));
  MNISTGAN_LAUNCH((n + 255) / 256, 256, 0, stream, add_kernel)(y, scratch, n);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDA_CHECK(cudaFree(scratch));
}

}  // namespace emu_check
}  // namespace mnistgan
