// elementwise.cuh: the small memory-bound ops of backend.h.
//
//   activation_backward  Y, dY, dZ (n): dZ = dY * act'(.) read from the saved output Y
//                        (LeakyReLU: Y > 0 ? 1 : slope; tanh: 1 - Y^2). dY, dZ may alias.
//   concat_cols          A (rows, a), B (rows, b) -> out (rows, a + b) = [A | B]
//   split_cols           in (rows, a + b) -> A (rows, a), B (rows, b); either may be null
//   fill_zero_models     zero bytes in each model's buffer (a group's fill_zero)
//   increment            *counter += 1 (one thread per model)
//   count_nonfinite      *count += number of non-finite values in x (n). Integer counts per
//                        block, added with integer atomics into a 2-word scratch; the last
//                        block to finish (atomic ticket) adds the total to *count and
//                        re-zeroes the scratch. Integer addition is associative, so the
//                        result does not depend on block order (deterministic).
//   kernel_image_error   cudaSuccess when this build has a kernel image for the current
//                        device (used by cuda_unavailable_reason()).
//
// Versions: one each, grid-stride loops of kElementwiseThreads threads.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t, cudaError_t

#include <cstddef>  // size_t
#include <cstdint>  // int64_t

#include "core/op_types.h"  // Activation

namespace mnistgan {

constexpr int kElementwiseThreads = 256;

void activation_backward(const float* Y, const float* dY, float* dZ, size_t n, Activation act,
                         float slope, cudaStream_t stream);
// Element strides between consecutive models' A, B and [A | B] (concat_cols's and
// split_cols's `models`, the grid's y).
struct ColsModelStrides {
  long long a = 0, b = 0, whole = 0;
};
void concat_cols(const float* A, const float* B, float* out, int rows, int a, int b,
                 cudaStream_t stream, int models = 1, const ColsModelStrides& ms = {});
void split_cols(const float* in, float* A, float* B, int rows, int a, int b, cudaStream_t stream,
                int models = 1, const ColsModelStrides& ms = {});
// bytes zero bytes at p + z * stride for each of `models` models (the grid's y): a lock-step
// group's memsets as one launch (a memset node per model otherwise).
void fill_zero_models(void* p, size_t bytes, int models, long long stride, cudaStream_t stream);
// models (the grid's y): model z's counter is counter[z * counter_stride].
void increment(int64_t* counter, cudaStream_t stream, int models = 1,
               long long counter_stride = 0);
// scratch: 2 zero-initialised device words per model, owned by the caller, left zeroed
// afterwards. Calls sharing one scratch must be ordered (the same stream).
// models (the grid's y): model z counts x + z * x_stride into count[z * count_stride] with the
// scratch pair scratch + 2 z.
void count_nonfinite(const float* x, size_t n, float* count, unsigned long long* scratch,
                     cudaStream_t stream, int models = 1, long long x_stride = 0,
                     long long count_stride = 0);

cudaError_t kernel_image_error();

}  // namespace mnistgan
