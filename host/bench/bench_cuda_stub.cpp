// bench_cuda_stub.cpp: the CUDA half of `mnistgan bench` in a build without CUDA.
#include <stdexcept>

#include "core/backend.h"
#include "bench/bench.h"

namespace mnistgan {

void run_cuda_kernel_bench(const BenchOptions&, const ModelShape&, BenchReport&) {
  throw std::runtime_error(cuda_unavailable_reason() + "; use --device cpu");
}

}  // namespace mnistgan
