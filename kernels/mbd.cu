// mbd.cu: minibatch discrimination forward and backward (see mbd.cuh for the math).
#include <cuda_runtime.h>  // expf, fabsf

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "cuda_check.cuh"  // CUDA_CHECK_LAUNCH
#include "mbd.cuh"

namespace mnistgan {
namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32, kLanesK = 32;

// Rows j per shared tile: keeps the (j, c, k) tile at <= 32 KB for every kMaxC.
template <int kMaxC>
constexpr int tile_rows() {
  return 256 / kMaxC;
}

// Loads rows [j0, j0 + tj) of group `g`, kernels [k0, k0 + 32) into S[jj][c][kk] (zero past
// K). Global reads run along (k, c), which is contiguous in M.
template <int kMaxC, int kTJ>
__device__ __forceinline__ void load_tile(const float* __restrict__ Mg, int K, int C, int j0,
                                          int tj, int k0, float (*S)[kMaxC][kLanesK]) {
  const int KC = K * C, per_row = kLanesK * C;
  for (int idx = threadIdx.x; idx < tj * per_row; idx += kThreads) {
    const int jj = idx / per_row, rem = idx - jj * per_row;
    const int kk = rem / C, c = rem - kk * C;
    const int k = k0 + kk;
    S[jj][c][kk] =
        k < K ? Mg[static_cast<size_t>(j0 + jj) * KC + static_cast<size_t>(k) * C + c] : 0.0f;
  }
}

template <int kMaxC, int kRI>
static __global__ void __launch_bounds__(kThreads)
    mbd_forward_kernel(const float* __restrict__ M, float* __restrict__ O, int B, int K, int C) {
  constexpr int kTJ = tile_rows<kMaxC>();
  __shared__ float S[kTJ][kMaxC][kLanesK];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int k = blockIdx.x * kLanesK + lane;
  const int i0 = blockIdx.y * (kWarps * kRI) + warp * kRI;  // this warp's first row
  const int KC = K * C;
  const float* Mg = M + static_cast<size_t>(blockIdx.z) * B * KC;

  float mi[kRI][kMaxC];
#pragma unroll
  for (int r = 0; r < kRI; ++r)
#pragma unroll
    for (int c = 0; c < kMaxC; ++c)
      mi[r][c] = (i0 + r < B && k < K && c < C)
                     ? Mg[static_cast<size_t>(i0 + r) * KC + static_cast<size_t>(k) * C + c]
                     : 0.0f;
  float acc[kRI];
#pragma unroll
  for (int r = 0; r < kRI; ++r) acc[r] = 0.0f;

  for (int j0 = 0; j0 < B; j0 += kTJ) {
    const int tj = min(kTJ, B - j0);
    load_tile<kMaxC, kTJ>(Mg, K, C, j0, tj, blockIdx.x * kLanesK, S);
    __syncthreads();
    for (int jj = 0; jj < tj; ++jj) {
      float mj[kMaxC];
#pragma unroll
      for (int c = 0; c < kMaxC; ++c) mj[c] = c < C ? S[jj][c][lane] : 0.0f;
#pragma unroll
      for (int r = 0; r < kRI; ++r) {
        // Same summation order over c as the CPU reference.
        float l1 = 0.0f;
#pragma unroll
        for (int c = 0; c < kMaxC; ++c)
          if (c < C) l1 += fabsf(mi[r][c] - mj[c]);
        if (i0 + r != j0 + jj) acc[r] += expf(-l1);
      }
    }
    __syncthreads();  // before the next tile overwrites S
  }
  if (k < K) {
#pragma unroll
    for (int r = 0; r < kRI; ++r)
      if (i0 + r < B) O[(static_cast<size_t>(blockIdx.z) * B + i0 + r) * K + k] = acc[r];
  }
}

template <int kMaxC, int kRI>
static __global__ void __launch_bounds__(kThreads)
    mbd_backward_kernel(const float* __restrict__ M, const float* __restrict__ dO,
                        float* __restrict__ dM, int B, int K, int C) {
  constexpr int kTJ = tile_rows<kMaxC>();
  __shared__ float S[kTJ][kMaxC][kLanesK];
  __shared__ float SdO[kTJ][kLanesK];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int k0 = blockIdx.x * kLanesK, k = k0 + lane;
  const int i0 = blockIdx.y * (kWarps * kRI) + warp * kRI;
  const int KC = K * C;
  const float* Mg = M + static_cast<size_t>(blockIdx.z) * B * KC;
  const float* dOg = dO + static_cast<size_t>(blockIdx.z) * B * K;

  float mi[kRI][kMaxC], dm[kRI][kMaxC], doi[kRI];
#pragma unroll
  for (int r = 0; r < kRI; ++r) {
    const bool valid = i0 + r < B && k < K;
    doi[r] = valid ? dOg[static_cast<size_t>(i0 + r) * K + k] : 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxC; ++c) {
      mi[r][c] = (valid && c < C)
                     ? Mg[static_cast<size_t>(i0 + r) * KC + static_cast<size_t>(k) * C + c]
                     : 0.0f;
      dm[r][c] = 0.0f;
    }
  }

  for (int j0 = 0; j0 < B; j0 += kTJ) {
    const int tj = min(kTJ, B - j0);
    load_tile<kMaxC, kTJ>(Mg, K, C, j0, tj, k0, S);
    for (int idx = threadIdx.x; idx < tj * kLanesK; idx += kThreads) {
      const int jj = idx / kLanesK, kk = idx % kLanesK;
      SdO[jj][kk] = k0 + kk < K ? dOg[static_cast<size_t>(j0 + jj) * K + k0 + kk] : 0.0f;
    }
    __syncthreads();
    for (int jj = 0; jj < tj; ++jj) {
      float mj[kMaxC];
#pragma unroll
      for (int c = 0; c < kMaxC; ++c) mj[c] = c < C ? S[jj][c][lane] : 0.0f;
      const float doj = SdO[jj][lane];
#pragma unroll
      for (int r = 0; r < kRI; ++r) {
        if (i0 + r == j0 + jj) continue;  // warp-uniform: i depends on the warp only
        float d[kMaxC], l1 = 0.0f;
#pragma unroll
        for (int c = 0; c < kMaxC; ++c) {
          d[c] = mi[r][c] - mj[c];
          if (c < C) l1 += fabsf(d[c]);
        }
        // e_ijk appears in both O[i,k] and O[j,k], hence the weight (dO[i,k] + dO[j,k]).
        const float w = (doi[r] + doj) * expf(-l1);
        // d|x|/dx = sign(x), sign(0) = 0; subtracted as the CPU reference does.
#pragma unroll
        for (int c = 0; c < kMaxC; ++c) dm[r][c] -= d[c] > 0.0f ? w : (d[c] < 0.0f ? -w : 0.0f);
      }
    }
    __syncthreads();
  }
  if (k < K) {
#pragma unroll
    for (int r = 0; r < kRI; ++r) {
      if (i0 + r >= B) continue;
      float* out =
          dM + (static_cast<size_t>(blockIdx.z) * B + i0 + r) * KC + static_cast<size_t>(k) * C;
#pragma unroll
      for (int c = 0; c < kMaxC; ++c)
        if (c < C) out[c] = dm[r][c];
    }
  }
}

void check_args(const char* op, const void* a, const void* b, int groups, int B, int K, int C) {
  if (a == nullptr || b == nullptr)
    throw std::invalid_argument(std::string(op) + ": null tensor pointer");
  if (groups < 1 || B < 1 || K < 1 || C < 1)
    throw std::invalid_argument(std::string(op) + ": groups=" + std::to_string(groups) +
                                ", B=" + std::to_string(B) + ", K=" + std::to_string(K) +
                                ", C=" + std::to_string(C) + ": every size must be >= 1");
  if (C > kMbdMaxC)
    throw std::invalid_argument(std::string(op) + ": C = " + std::to_string(C) +
                                " dims per kernel; the CUDA kernels support at most " +
                                std::to_string(kMbdMaxC) +
                                " (lower --mbd-dims, or use --device cpu)");
  if (groups > 65535)
    throw std::invalid_argument(std::string(op) + ": at most 65535 groups per call");
}

template <int kMaxC, int kRI>
dim3 grid_for(int groups, int B, int K) {
  return dim3((K + kLanesK - 1) / kLanesK, (B + kWarps * kRI - 1) / (kWarps * kRI), groups);
}

template <int kMaxC, int kRI>
void forward_as(const float* M, float* O, int groups, int B, int K, int C, cudaStream_t s) {
  const dim3 grid = grid_for<kMaxC, kRI>(groups, B, K);
  MNISTGAN_LAUNCH(grid, kThreads, 0, s, mbd_forward_kernel<kMaxC, kRI>)(M, O, B, K, C);
  CUDA_CHECK_LAUNCH();
}

template <int kMaxC, int kRI>
void backward_as(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                 cudaStream_t s) {
  const dim3 grid = grid_for<kMaxC, kRI>(groups, B, K);
  MNISTGAN_LAUNCH(grid, kThreads, 0, s, mbd_backward_kernel<kMaxC, kRI>)(M, dO, dM, B, K, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void mbd_forward(const float* M, float* O, int groups, int B, int K, int C, cudaStream_t stream) {
  check_args("mbd_forward", M, O, groups, B, K, C);
  if (C == 5)
    forward_as<5, 4>(M, O, groups, B, K, C, stream);
  else if (C <= 4)
    forward_as<4, 4>(M, O, groups, B, K, C, stream);
  else if (C <= 8)
    forward_as<8, 4>(M, O, groups, B, K, C, stream);
  else if (C <= 16)
    forward_as<16, 2>(M, O, groups, B, K, C, stream);
  else
    forward_as<32, 1>(M, O, groups, B, K, C, stream);
}

void mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                  cudaStream_t stream) {
  check_args("mbd_backward", M, dM, groups, B, K, C);
  if (dO == nullptr) throw std::invalid_argument("mbd_backward: dO must be non-null");
  if (C == 5)
    backward_as<5, 4>(M, dO, dM, groups, B, K, C, stream);
  else if (C <= 4)
    backward_as<4, 4>(M, dO, dM, groups, B, K, C, stream);
  else if (C <= 8)
    backward_as<8, 4>(M, dO, dM, groups, B, K, C, stream);
  else if (C <= 16)
    backward_as<16, 2>(M, dO, dM, groups, B, K, C, stream);
  else
    backward_as<32, 1>(M, dO, dM, groups, B, K, C, stream);
}

}  // namespace mnistgan
