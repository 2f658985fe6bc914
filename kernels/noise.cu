// noise.cu: Philox Gaussian noise, bitwise equal to the CPU backend (see noise.cuh).
#include <cuda_runtime.h>  // float4

#include <cstdint>    // uintptr_t
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks
#include "noise.cuh"
#include "core/philox.h"  // philox_gaussian4

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kNoiseThreads)
    noise_kernel(float* __restrict__ out, size_t n, uint64_t seed, uint32_t stream,
                 const int64_t* __restrict__ step, bool aligned, NoiseModelStrides ms,
                 const uint64_t* __restrict__ seeds) {
  const long long z = blockIdx.y;
  out += z * ms.out;
  if (seeds != nullptr) seed = seeds[z];
  const uint64_t s = step != nullptr ? static_cast<uint64_t>(step[z * ms.step]) : 0;
  const size_t groups = (n + 3) / 4;
  for (size_t group = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; group < groups;
       group += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float four[4];
    philox_gaussian4(seed, stream, group, s, four);
    const size_t first = group * 4;
    if (aligned && first + 4 <= n) {
      *reinterpret_cast<float4*>(out + first) = make_float4(four[0], four[1], four[2], four[3]);
    } else {
      for (size_t e = 0; e < 4 && first + e < n; ++e) out[first + e] = four[e];
    }
  }
}

}  // namespace

void gaussian_noise(float* out, size_t n, uint64_t seed, uint32_t stream, const int64_t* step,
                    cudaStream_t cuda_stream, int models, const NoiseModelStrides& ms,
                    const uint64_t* seeds) {
  if (n == 0) return;
  if (out == nullptr) throw std::invalid_argument("gaussian_noise: out must be non-null");
  if (models < 1 || models > 65535)
    throw std::invalid_argument("gaussian_noise: models " + std::to_string(models) +
                                " is outside [1, 65535]");
  // Every model's out is 16-byte aligned when the first is and the stride is whole float4s.
  const bool aligned = reinterpret_cast<uintptr_t>(out) % 16 == 0 && ms.out % 4 == 0;
  const dim3 grid(grid_blocks((n + 3) / 4, kNoiseThreads), static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kNoiseThreads, 0, cuda_stream, noise_kernel)
  (out, n, seed, stream, step, aligned, ms, seeds);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
