// linear_dev.cu: Y = act(X W^T + b) forward (v1 cuBLAS + epilogue, v2 custom tiled SGEMM / TF32
// WMMA) and the cuBLAS backward GEMMs. See linear_dev.cuh for the shapes and the version notes.
#include <cublas_v2.h>     // cublasGemmEx, cublasSgemm, cublasGetStream
#include <cuda_runtime.h>  // launches, float4
#include <mma.h>           // nvcuda::wmma (TF32 tensor cores, sm_80+)

#include <cstdint>    // uintptr_t
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // activate
#include "cuda_check.cuh"   // CUDA_CHECK, CUBLAS_CHECK, CUDA_CHECK_LAUNCH
#include "device_util.cuh"  // grid_blocks
#include "linear_dev.cuh"

namespace mnistgan {
namespace {

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- v1: cuBLAS GEMM, then bias + activation in one pass ----------------------------------

// Y (rows, out) in place: Y = act(Y + b). b may be nullptr.
static __global__ void bias_activation_kernel(float* __restrict__ Y, const float* __restrict__ b,
                                              int rows, int out, Activation act, float slope) {
  const size_t n = static_cast<size_t>(rows) * out;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float z = Y[i];
    if (b != nullptr) z += b[i % out];
    Y[i] = activate(z, act, slope);
  }
}

void linear_forward_v1(const LinearContext& ctx, const float* X, const float* W, const float* b,
                       float* Y, int rows, int in, int out, Activation act, float slope,
                       cudaStream_t stream) {
  // Row-major Y (rows, out) is column-major Y^T (out, rows) = W X^T: W row-major (out, in)
  // is column-major (in, out), used transposed; X row-major (rows, in) is column-major
  // (in, rows) = X^T, used as is.
  const float one = 1.0f, zero = 0.0f;
  CUBLAS_CHECK(cublasGemmEx(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in, &one, W,
                            CUDA_R_32F, in, X, CUDA_R_32F, in, &zero, Y, CUDA_R_32F, out,
                            ctx.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
  if (b == nullptr && act == Activation::kNone) return;
  constexpr int kThreads = 256;
  MNISTGAN_LAUNCH(grid_blocks(static_cast<size_t>(rows) * out, kThreads), kThreads, 0, stream,
                  bias_activation_kernel)
  (Y, b, rows, out, act, slope);
  CUDA_CHECK_LAUNCH();
}

// ---- v2: tiled SIMT SGEMM with the epilogue fused --------------------------------------------
//
// Block tile BM x BN of Y, K walked in steps of BK. Both operands are K-contiguous, so a tile
// of X (BM x BK) and of W (BN x BK) are read along K (float4 when kVec) and stored
// transposed in shared memory, As[k][m] and Bs[k][n], so that each thread's TM rows and TN
// columns for one k are contiguous (one float4 shared load each). Each thread owns a TM x TN
// register block. The next K-tile is fetched into registers while the current one is
// multiplied (register double buffering hides part of the global-load latency).
template <int BM, int BN, int BK, int TM, int TN, bool kVec>
struct TileLoader {
  static constexpr int kThreads = (BM / TM) * (BN / TN);
  static constexpr int kPerX = kVec ? BM * BK / 4 / kThreads : BM * BK / kThreads;
  static constexpr int kPerW = kVec ? BN * BK / 4 / kThreads : BN * BK / kThreads;
  static_assert((kVec ? BM * BK / 4 : BM * BK) % kThreads == 0, "X tile must split evenly");
  static_assert((kVec ? BN * BK / 4 : BN * BK) % kThreads == 0, "W tile must split evenly");

  float4 xv[kVec ? kPerX : 1], wv[kVec ? kPerW : 1];
  float xs[kVec ? 1 : kPerX], ws[kVec ? 1 : kPerW];

  // A (R, K) row-major, tile rows [r0, r0 + TR), columns [k0, k0 + BK); zero outside.
  template <int TR, int kPer>
  __device__ __forceinline__ static void fetch_vec(const float* __restrict__ A, int R, int K,
                                                   int r0, int k0, float4 (&v)[kPer]) {
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int idx = threadIdx.x + p * kThreads;
      const int r = idx / (BK / 4), k = (idx % (BK / 4)) * 4;
      // K % 4 == 0 here, so k0 + k < K implies the whole float4 is in range.
      v[p] = (r0 + r < R && k0 + k < K)
                 ? *reinterpret_cast<const float4*>(A + static_cast<size_t>(r0 + r) * K + k0 + k)
                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
  }
  template <int TR, int kPer>
  __device__ __forceinline__ static void fetch_scalar(const float* __restrict__ A, int R, int K,
                                                      int r0, int k0, float (&v)[kPer]) {
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int idx = threadIdx.x + p * kThreads;
      const int r = idx / BK, k = idx % BK;
      v[p] = (r0 + r < R && k0 + k < K) ? A[static_cast<size_t>(r0 + r) * K + k0 + k] : 0.0f;
    }
  }
  template <int TR, int kPer, int LD>
  __device__ __forceinline__ static void store_vec(const float4 (&v)[kPer], float (*S)[LD]) {
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int idx = threadIdx.x + p * kThreads;
      const int r = idx / (BK / 4), k = (idx % (BK / 4)) * 4;
      S[k + 0][r] = v[p].x;
      S[k + 1][r] = v[p].y;
      S[k + 2][r] = v[p].z;
      S[k + 3][r] = v[p].w;
    }
  }
  template <int TR, int kPer, int LD>
  __device__ __forceinline__ static void store_scalar(const float (&v)[kPer], float (*S)[LD]) {
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int idx = threadIdx.x + p * kThreads;
      S[idx % BK][idx / BK] = v[p];
    }
  }

  __device__ __forceinline__ void fetch(const float* X, const float* W, int M, int N, int K, int m0,
                                        int n0, int k0) {
    if constexpr (kVec) {
      fetch_vec<BM, kPerX>(X, M, K, m0, k0, xv);
      fetch_vec<BN, kPerW>(W, N, K, n0, k0, wv);
    } else {
      fetch_scalar<BM, kPerX>(X, M, K, m0, k0, xs);
      fetch_scalar<BN, kPerW>(W, N, K, n0, k0, ws);
    }
  }
  template <int LDA, int LDB>
  __device__ __forceinline__ void store(float (*As)[LDA], float (*Bs)[LDB]) const {
    if constexpr (kVec) {
      store_vec<BM, kPerX, LDA>(xv, As);
      store_vec<BN, kPerW, LDB>(wv, Bs);
    } else {
      store_scalar<BM, kPerX, LDA>(xs, As);
      store_scalar<BN, kPerW, LDB>(ws, Bs);
    }
  }
};

template <int BM, int BN, int BK, int TM, int TN, bool kVec>
static __global__ void __launch_bounds__((BM / TM) * (BN / TN))
    linear_v2_kernel(const float* __restrict__ X, const float* __restrict__ W,
                     const float* __restrict__ b, float* __restrict__ Y, int M, int N, int K,
                     Activation act, float slope, bool vec_store) {
  static_assert(TM % 4 == 0 && TN % 4 == 0, "float4 shared-memory reads need TM, TN % 4 == 0");
  static_assert(BK % 4 == 0 && BM % TM == 0 && BN % TN == 0, "tile shape");
  // +4 keeps every row 16-byte aligned (float4 reads) while shifting banks between rows.
  constexpr int kLdA = BM + 4, kLdB = BN + 4;
  __shared__ __align__(16) float As[BK][kLdA];
  __shared__ __align__(16) float Bs[BK][kLdB];

  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  TileLoader<BM, BN, BK, TM, TN, kVec> loader;
  loader.fetch(X, W, M, N, K, m0, n0, 0);
  loader.store(As, Bs);
  __syncthreads();

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += BK) {
    const bool more = k0 + BK < K;
    if (more) loader.fetch(X, W, M, N, K, m0, n0, k0 + BK);  // in flight during the math
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], w[TN];
#pragma unroll
      for (int i = 0; i < TM; i += 4) {
        const float4 t = *reinterpret_cast<const float4*>(&As[k][ty * TM + i]);
        a[i] = t.x, a[i + 1] = t.y, a[i + 2] = t.z, a[i + 3] = t.w;
      }
#pragma unroll
      for (int j = 0; j < TN; j += 4) {
        const float4 t = *reinterpret_cast<const float4*>(&Bs[k][tx * TN + j]);
        w[j] = t.x, w[j + 1] = t.y, w[j + 2] = t.z, w[j + 3] = t.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], w[j], acc[i][j]);
    }
    __syncthreads();  // everyone is done reading this tile
    if (more) {
      loader.store(As, Bs);
      __syncthreads();  // the next tile is complete
    }
  }

  // Epilogue in registers: bias, activation, one store per element.
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int row = m0 + ty * TM + i;
    if (row >= M) continue;
    float* y = Y + static_cast<size_t>(row) * N;
    const int col0 = n0 + tx * TN;
#pragma unroll
    for (int j = 0; j < TN; j += 4) {
      const int col = col0 + j;
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float bias = (b != nullptr && col + e < N) ? b[col + e] : 0.0f;
        v[e] = activate(acc[i][j + e] + bias, act, slope);
      }
      // vec_store: N % 4 == 0 and Y 16-byte aligned, so col < N means col + 3 < N.
      if (vec_store && col < N) {
        *reinterpret_cast<float4*>(y + col) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (col + e < N) y[col + e] = v[e];
      }
    }
  }
}

// ---- v2 with tf32: WMMA m16n16k8 TF32 tensor cores ------------------------------------------
//
// Error bound: each operand is rounded to TF32 (10-bit mantissa, round to nearest), a
// relative error of at most 2^-11 each, so each product is off by at most ~2^-10 relative
// and the accumulation is FP32. Hence |Y_tf32 - Y_exact| <= ~(2^-10 + K * 2^-24) *
// sum_k |x_k w_k| ~= 1e-3 * sum_k |x_k w_k|, versus ~K * 6e-8 * sum_k |x_k w_k| for FP32.
// For this model (|x| <= 1, |w| <= 1/sqrt(in)) that is a few 1e-3 at worst, ~1e-4 typical.
constexpr int kTf32Tile = 64, kTf32Bk = 32, kTf32Threads = 128;

template <bool kVec>
static __global__ void __launch_bounds__(kTf32Threads)
    linear_tf32_kernel(const float* __restrict__ X, const float* __restrict__ W,
                       const float* __restrict__ b, float* __restrict__ Y, int M, int N, int K,
                       Activation act, float slope) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  constexpr int BM = kTf32Tile, BN = kTf32Tile, BK = kTf32Bk;
  // Leading dimensions are multiples of 4 floats (WMMA's requirement for 32-bit types) and
  // every fragment pointer below is 32-byte aligned: 16 rows * 36 * 4 B = 2304 B = 72 * 32.
  constexpr int kLd = BK + 4, kLdC = BN + 4;
  __shared__ __align__(128) float As[BM * kLd];  // X tile, (m, k) row-major
  __shared__ __align__(128) float Ws[BN * kLd];  // W tile, (n, k): B = W^T in col-major
  __shared__ __align__(128) float Cs[BM * kLdC];

  const int warp = threadIdx.x / 32;
  const int wm = warp / 2, wn = warp % 2;  // 2x2 warps, each a 32x32 sub-tile
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> c[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(c[i][j], 0.0f);

  for (int k0 = 0; k0 < K; k0 += BK) {
    if constexpr (kVec) {
      for (int idx = threadIdx.x; idx < BM * BK / 4; idx += kTf32Threads) {
        const int r = idx / (BK / 4), k = (idx % (BK / 4)) * 4;
        const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        const bool kin = k0 + k < K;  // K % 4 == 0: the whole float4 is in range
        *reinterpret_cast<float4*>(&As[r * kLd + k]) =
            (m0 + r < M && kin)
                ? *reinterpret_cast<const float4*>(X + static_cast<size_t>(m0 + r) * K + k0 + k)
                : zero4;
        *reinterpret_cast<float4*>(&Ws[r * kLd + k]) =
            (n0 + r < N && kin)
                ? *reinterpret_cast<const float4*>(W + static_cast<size_t>(n0 + r) * K + k0 + k)
                : zero4;
      }
    } else {
      for (int idx = threadIdx.x; idx < BM * BK; idx += kTf32Threads) {
        const int r = idx / BK, k = idx % BK;
        const bool kin = k0 + k < K;
        As[r * kLd + k] = (m0 + r < M && kin) ? X[static_cast<size_t>(m0 + r) * K + k0 + k] : 0.0f;
        Ws[r * kLd + k] = (n0 + r < N && kin) ? W[static_cast<size_t>(n0 + r) * K + k0 + k] : 0.0f;
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> w[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        wmma::load_matrix_sync(a[i], &As[(wm * 32 + i * 16) * kLd + kk], kLd);
#pragma unroll
        for (int t = 0; t < a[i].num_elements; ++t) a[i].x[t] = wmma::__float_to_tf32(a[i].x[t]);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(w[j], &Ws[(wn * 32 + j * 16) * kLd + kk], kLd);
#pragma unroll
        for (int t = 0; t < w[j].num_elements; ++t) w[j].x[t] = wmma::__float_to_tf32(w[j].x[t]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(c[i][j], a[i], w[j], c[i][j]);
    }
    __syncthreads();  // before the next tile overwrites As / Ws
  }

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[(wm * 32 + i * 16) * kLdC + wn * 32 + j * 16], c[i][j], kLdC,
                              wmma::mem_row_major);
  __syncthreads();

  // Epilogue: consecutive threads take consecutive columns, so the stores coalesce.
  for (int idx = threadIdx.x; idx < BM * BN; idx += kTf32Threads) {
    const int r = idx / BN, cc = idx % BN;
    const int row = m0 + r, col = n0 + cc;
    if (row < M && col < N) {
      const float z = Cs[r * kLdC + cc] + (b != nullptr ? b[col] : 0.0f);
      Y[static_cast<size_t>(row) * N + col] = activate(z, act, slope);
    }
  }
#endif
}

template <int BM, int BN, int BK, int TM, int TN>
void launch_v2_simt(bool vec, const float* X, const float* W, const float* b, float* Y, int rows,
                    int in, int out, Activation act, float slope, bool vec_store,
                    cudaStream_t stream) {
  constexpr int kThreads = (BM / TM) * (BN / TN);
  const dim3 grid((out + BN - 1) / BN, (rows + BM - 1) / BM);
  if (vec) MNISTGAN_LAUNCH(grid, kThreads, 0, stream, linear_v2_kernel<BM, BN, BK, TM, TN, true>)
  (X, W, b, Y, rows, out, in, act, slope, vec_store);
  else MNISTGAN_LAUNCH(grid, kThreads, 0, stream, linear_v2_kernel<BM, BN, BK, TM, TN, false>)(
      X, W, b, Y, rows, out, in, act, slope, vec_store);
  CUDA_CHECK_LAUNCH();
}

void linear_forward_v2(const LinearContext& ctx, const float* X, const float* W, const float* b,
                       float* Y, int rows, int in, int out, Activation act, float slope,
                       cudaStream_t stream) {
  // float4 loads need every row start 16-byte aligned: aligned base and in % 4 == 0.
  const bool vec = in % 4 == 0 && aligned16(X) && aligned16(W);
  if (ctx.tf32) {
    const dim3 grid((out + kTf32Tile - 1) / kTf32Tile, (rows + kTf32Tile - 1) / kTf32Tile);
    if (vec) MNISTGAN_LAUNCH(grid, kTf32Threads, 0, stream, linear_tf32_kernel<true>)
    (X, W, b, Y, rows, out, in, act, slope);
    else MNISTGAN_LAUNCH(grid, kTf32Threads, 0, stream, linear_tf32_kernel<false>)(
        X, W, b, Y, rows, out, in, act, slope);
    CUDA_CHECK_LAUNCH();
    return;
  }
  const bool vec_store = out % 4 == 0 && aligned16(Y);
  // 64x64 tiles when they give at least one block per SM, else 32x32 (4x the blocks).
  const long long tiles64 = static_cast<long long>((rows + 63) / 64) * ((out + 63) / 64);
  if (tiles64 >= ctx.sm_count)
    launch_v2_simt<64, 64, 16, 4, 4>(vec, X, W, b, Y, rows, in, out, act, slope, vec_store, stream);
  else
    launch_v2_simt<32, 32, 16, 4, 4>(vec, X, W, b, Y, rows, in, out, act, slope, vec_store, stream);
}

// ---- backward: db as deterministic column sums ----------------------------------------------

constexpr int kColSumCols = 32, kColSumSlices = 8;

// dZ (rows, cols) -> db (cols). Block = 32 columns x 8 row slices; slice y sums rows
// y, y+8, ... in order, then slice 0 adds the 8 partials in order: a fixed reduction tree,
// so the result is the same on every run.
static __global__ void __launch_bounds__(kColSumCols* kColSumSlices)
    column_sum_kernel(const float* __restrict__ dZ, float* __restrict__ db, int rows, int cols,
                      bool accumulate) {
  __shared__ float part[kColSumSlices][kColSumCols + 1];
  const int col = blockIdx.x * kColSumCols + threadIdx.x;
  float s = 0.0f;
  if (col < cols)
    for (int r = threadIdx.y; r < rows; r += kColSumSlices)
      s += dZ[static_cast<size_t>(r) * cols + col];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float t = part[0][threadIdx.x];
#pragma unroll
    for (int y = 1; y < kColSumSlices; ++y) t += part[y][threadIdx.x];
    db[col] = accumulate ? db[col] + t : t;
  }
}

void check_shape(const char* op, int rows, int in, int out) {
  if (rows < 1 || in < 1 || out < 1)
    throw std::invalid_argument(std::string(op) + ": rows=" + std::to_string(rows) +
                                ", in=" + std::to_string(in) + ", out=" + std::to_string(out) +
                                ": every dimension must be >= 1");
}

void check_handle(const char* op, const LinearContext& ctx, cudaStream_t stream) {
  if (ctx.cublas == nullptr)
    throw std::invalid_argument(std::string(op) + ": LinearContext has no cuBLAS handle");
  cudaStream_t bound = nullptr;
  CUBLAS_CHECK(cublasGetStream(ctx.cublas, &bound));
  if (bound != stream)
    throw std::invalid_argument(std::string(op) +
                                ": the cuBLAS handle is bound to another stream; call "
                                "cublasSetStream(handle, stream) (then cublasSetWorkspace) first");
}

}  // namespace

void linear_forward_dev(int version, const LinearContext& ctx, const float* X, const float* W,
                    const float* b, float* Y, int rows, int in, int out, Activation act,
                    float slope, cudaStream_t stream) {
  check_shape("linear_forward", rows, in, out);
  if (X == nullptr || W == nullptr || Y == nullptr)
    throw std::invalid_argument("linear_forward: X, W and Y must be non-null (only b may be)");
  if (version < 1 || version > kLinearDevMaxVersion)
    throw std::invalid_argument("linear_forward_dev: unknown version " + std::to_string(version) +
                                "; expected 1 or 2 (the shipped v3 is kernels/linear.cuh's)");
  if (ctx.tf32 && ctx.cc_major < 8)
    throw std::invalid_argument(
        "linear_forward: TF32 needs compute capability 8.0 or newer "
        "(this device is " +
        std::to_string(ctx.cc_major) + ".x); turn --tf32 off");
  if (version == 1) {
    check_handle("linear_forward v1", ctx, stream);
    linear_forward_v1(ctx, X, W, b, Y, rows, in, out, act, slope, stream);
  } else {
    linear_forward_v2(ctx, X, W, b, Y, rows, in, out, act, slope, stream);
  }
}

void linear_backward_cublas(const LinearContext& ctx, const float* X, const float* W, const float* dZ,
                     float* dX, float* dW, float* db, int rows, int in, int out, bool accumulate,
                     cudaStream_t stream) {
  check_shape("linear_backward", rows, in, out);
  if (dZ == nullptr) throw std::invalid_argument("linear_backward: dZ must be non-null");
  if (dW != nullptr && X == nullptr)
    throw std::invalid_argument("linear_backward: dW needs X; pass X or dW = nullptr");
  if (dX != nullptr && W == nullptr)
    throw std::invalid_argument("linear_backward: dX needs W; pass W or dX = nullptr");
  if (dW != nullptr || dX != nullptr) check_handle("linear_backward", ctx, stream);
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  if (dW != nullptr) {
    // Row-major dW (out, in) is column-major (in, out) = X^T dZ, with X row-major = X^T
    // column-major (in, rows) and dZ row-major = dZ^T column-major (out, rows), transposed.
    CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, rows, &one, X, in, dZ,
                             out, &beta, dW, in));
  }
  if (db != nullptr) {
    const dim3 block(kColSumCols, kColSumSlices);
    MNISTGAN_LAUNCH((out + kColSumCols - 1) / kColSumCols, block, 0, stream, column_sum_kernel)
    (dZ, db, rows, out, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  if (dX != nullptr) {
    // Row-major dX (rows, in) is column-major (in, rows) = W^T dZ^T = (dZ W)^T.
    CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, in, rows, out, &one, W, in, dZ,
                             out, &beta, dX, in));
  }
}

}  // namespace mnistgan
