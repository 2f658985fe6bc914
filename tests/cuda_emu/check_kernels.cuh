// check_kernels.cuh: small kernels and host helpers of the emulation's own tests
// (test_cuda_emu.cpp), written right, that the negative controls (negative_controls.cmake)
// break one at a time: a cross-block sum without its atomic, templated shared memory reused
// by every block, a shared-memory read before
// its write, a host read of an asynchronous copy without a synchronisation, a kernel given a
// host pointer or a freed buffer. Built only into the emulated libraries.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t

namespace mnistgan {
namespace emu_check {

constexpr int kSumThreads = 256;

// *total = sum of x (n): each block sums its 256 values with a shared-memory tree, then
// thread 0 adds the block's sum to *total with an atomic. Queued on `stream`.
void sum_all(const float* x, int n, float* total, cudaStream_t stream);

// x (rows, kReverseWidth): each row reversed in place, by a templated kernel that stages the
// row in shared memory (the same __shared__ static for every block, as on a GPU each block
// has its own: the emulation must make it fresh per block, also for TSan).
constexpr int kReverseWidth = 64;
void reverse_rows(float* x, int rows, cudaStream_t stream);

// host_dst (pinned, n) = device src (n), copied on `stream`; returns once the data is there.
void download_pinned(const float* src, float* host_dst, size_t n, cudaStream_t stream);

// y (n, device) += host_bias (n, host memory): the bias is uploaded to a scratch device
// buffer, which is freed once the kernel has run.
void add_host_bias(float* y, const float* host_bias, int n, cudaStream_t stream);

}  // namespace emu_check
}  // namespace mnistgan
