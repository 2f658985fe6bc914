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
    mbd_forward_kernel(const float* __restrict__ M, float* __restrict__ O, int groups, int B,
                       int K, int C, int ldo, MbdModelStrides ms) {
  constexpr int kTJ = tile_rows<kMaxC>();
  __shared__ float S[kTJ][kMaxC][kLanesK];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int k = blockIdx.x * kLanesK + lane;
  const int i0 = blockIdx.y * (kWarps * kRI) + warp * kRI;  // this warp's first row
  const int KC = K * C;
  const long long model = blockIdx.z / groups, g = blockIdx.z % groups;
  const float* Mg = M + model * ms.m + g * B * KC;
  float* Og = O + model * ms.o + g * B * ldo;

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
      if (i0 + r < B) Og[static_cast<long long>(i0 + r) * ldo + k] = acc[r];
  }
}

template <int kMaxC, int kRI>
static __global__ void __launch_bounds__(kThreads)
    mbd_backward_kernel(const float* __restrict__ M, const float* __restrict__ dO,
                        float* __restrict__ dM, int groups, int B, int K, int C, int ldo,
                        MbdModelStrides ms) {
  constexpr int kTJ = tile_rows<kMaxC>();
  __shared__ float S[kTJ][kMaxC][kLanesK];
  __shared__ float SdO[kTJ][kLanesK];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int k0 = blockIdx.x * kLanesK, k = k0 + lane;
  const int i0 = blockIdx.y * (kWarps * kRI) + warp * kRI;
  const int KC = K * C;
  const long long model = blockIdx.z / groups, g = blockIdx.z % groups;
  const float* Mg = M + model * ms.m + g * B * KC;
  const float* dOg = dO + model * ms.o + g * B * ldo;

  float mi[kRI][kMaxC], dm[kRI][kMaxC], doi[kRI];
#pragma unroll
  for (int r = 0; r < kRI; ++r) {
    const bool valid = i0 + r < B && k < K;
    doi[r] = valid ? dOg[static_cast<long long>(i0 + r) * ldo + k] : 0.0f;
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
      SdO[jj][kk] = k0 + kk < K ? dOg[static_cast<long long>(j0 + jj) * ldo + k0 + kk] : 0.0f;
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
      float* out = dM + model * ms.dm + (g * B + i0 + r) * KC + static_cast<long long>(k) * C;
#pragma unroll
      for (int c = 0; c < kMaxC; ++c)
        if (c < C) out[c] = dm[r][c];
    }
  }
}

void check_args(const char* op, const void* a, const void* b, int groups, int B, int K, int C,
                int ldo, int models) {
  if (a == nullptr || b == nullptr)
    throw std::invalid_argument(std::string(op) + ": null tensor pointer");
  if (groups < 1 || B < 1 || K < 1 || C < 1 || models < 1)
    throw std::invalid_argument(std::string(op) + ": groups=" + std::to_string(groups) +
                                ", B=" + std::to_string(B) + ", K=" + std::to_string(K) +
                                ", C=" + std::to_string(C) + ", models=" + std::to_string(models) +
                                ": every size must be >= 1");
  if (ldo != 0 && ldo < K)
    throw std::invalid_argument(std::string(op) + ": row stride of O " + std::to_string(ldo) +
                                " is below K = " + std::to_string(K) + "; pass 0 for packed rows");
  if (C > kMbdMaxC)
    throw std::invalid_argument(std::string(op) + ": C = " + std::to_string(C) +
                                " dims per kernel; the CUDA kernels support at most " +
                                std::to_string(kMbdMaxC) +
                                " (lower --mbd-dims, or use --device cpu)");
  if (static_cast<long long>(groups) * models > 65535)
    throw std::invalid_argument(std::string(op) + ": at most 65535 groups x models per call");
}

template <int kRI>
dim3 grid_for(int groups, int B, int K, int models) {
  return dim3((K + kLanesK - 1) / kLanesK, (B + kWarps * kRI - 1) / (kWarps * kRI),
              groups * models);
}

// kRI rows per warp when that still gives kMbdFillBlocks blocks, else one row per warp (8 per
// block): at batch 64 that is 4 x 8 x 2 = 64 blocks instead of 16.
template <int kRI>
bool fills(int groups, int B, int K, int models) {
  const dim3 g = grid_for<kRI>(groups, B, K, models);
  return static_cast<long long>(g.x) * g.y * g.z >= kMbdFillBlocks;
}

template <int kMaxC, int kRI>
void forward_as(const float* M, float* O, int groups, int B, int K, int C, int ldo, int models,
                const MbdModelStrides& ms, cudaStream_t s) {
  if (kRI > 1 && !fills<kRI>(groups, B, K, models)) {
    forward_as<kMaxC, 1>(M, O, groups, B, K, C, ldo, models, ms, s);
    return;
  }
  const dim3 grid = grid_for<kRI>(groups, B, K, models);
  MNISTGAN_LAUNCH(grid, kThreads, 0, s, mbd_forward_kernel<kMaxC, kRI>)
  (M, O, groups, B, K, C, ldo, ms);
  CUDA_CHECK_LAUNCH();
}

template <int kMaxC, int kRI>
void backward_as(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                 int ldo, int models, const MbdModelStrides& ms, cudaStream_t s) {
  if (kRI > 1 && !fills<kRI>(groups, B, K, models)) {
    backward_as<kMaxC, 1>(M, dO, dM, groups, B, K, C, ldo, models, ms, s);
    return;
  }
  const dim3 grid = grid_for<kRI>(groups, B, K, models);
  MNISTGAN_LAUNCH(grid, kThreads, 0, s, mbd_backward_kernel<kMaxC, kRI>)
  (M, dO, dM, groups, B, K, C, ldo, ms);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void mbd_forward(const float* M, float* O, int groups, int B, int K, int C, int ldo, int models,
                 const MbdModelStrides& ms, cudaStream_t stream) {
  check_args("mbd_forward", M, O, groups, B, K, C, ldo, models);
  if (ldo == 0) ldo = K;
  if (C == 5)
    forward_as<5, 4>(M, O, groups, B, K, C, ldo, models, ms, stream);
  else if (C <= 4)
    forward_as<4, 4>(M, O, groups, B, K, C, ldo, models, ms, stream);
  else if (C <= 8)
    forward_as<8, 4>(M, O, groups, B, K, C, ldo, models, ms, stream);
  else if (C <= 16)
    forward_as<16, 2>(M, O, groups, B, K, C, ldo, models, ms, stream);
  else
    forward_as<32, 1>(M, O, groups, B, K, C, ldo, models, ms, stream);
}

void mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                  int ldo, int models, const MbdModelStrides& ms, cudaStream_t stream) {
  check_args("mbd_backward", M, dM, groups, B, K, C, ldo, models);
  if (dO == nullptr) throw std::invalid_argument("mbd_backward: dO must be non-null");
  if (ldo == 0) ldo = K;
  if (C == 5)
    backward_as<5, 4>(M, dO, dM, groups, B, K, C, ldo, models, ms, stream);
  else if (C <= 4)
    backward_as<4, 4>(M, dO, dM, groups, B, K, C, ldo, models, ms, stream);
  else if (C <= 8)
    backward_as<8, 4>(M, dO, dM, groups, B, K, C, ldo, models, ms, stream);
  else if (C <= 16)
    backward_as<16, 2>(M, dO, dM, groups, B, K, C, ldo, models, ms, stream);
  else
    backward_as<32, 1>(M, dO, dM, groups, B, K, C, ldo, models, ms, stream);
}

}  // namespace mnistgan
