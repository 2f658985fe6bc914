// cuda_backend.h: what a CUDA-only caller may know of make_cuda_backend()'s backend beyond
// the Backend interface. The benchmark (host/bench/bench_cuda.cu) times the backend's ops with
// CUDA events on its stream and launches its comparators (kernels/dev, cuBLASLt, cuDNN) there,
// in order with the backend's copies and ops.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include "core/backend.h"  // Backend

namespace mnistgan {

// The stream every op and copy of `backend` is queued on. Throws std::invalid_argument when
// `backend` was not made by make_cuda_backend().
cudaStream_t cuda_backend_stream(Backend& backend);

}  // namespace mnistgan
