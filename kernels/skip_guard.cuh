// skip_guard.cuh: the device side of the divergence guard's skip-step policy (see
// backend.h: increment, accumulate). A "skip flag" is a device float holding the count of
// non-finite values found in one update; when it is != 0 (NaN included) the guarded ops do
// nothing. The flag is read by the kernel, never by the host, so the step stays capturable
// in a CUDA graph.
//
//   increment_unless   *counter += 1 unless *skip_if_nonzero != 0 (one thread)
//   accumulate_unless  acc (n) += x (n) unless skip_if_nonzero is non-null and != 0
//
// Versions: one each; accumulate_unless is a grid-stride loop of kSkipGuardThreads threads.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t
#include <cstdint>  // int64_t

namespace mnistgan {

constexpr int kSkipGuardThreads = 256;

// Throws std::invalid_argument when counter or skip_if_nonzero is null.
// models (the grid's y, both ops): model z's counter, x, acc and flag are at z times their
// strides.
void increment_unless(int64_t* counter, const float* skip_if_nonzero, cudaStream_t stream,
                      int models = 1, long long counter_stride = 0, long long skip_stride = 0);
// n == 0 does nothing; x and acc must be non-null otherwise. skip_if_nonzero may be null.
void accumulate_unless(const float* x, float* acc, size_t n, const float* skip_if_nonzero,
                       cudaStream_t stream, int models = 1, long long x_stride = 0,
                       long long acc_stride = 0, long long skip_stride = 0);

}  // namespace mnistgan
