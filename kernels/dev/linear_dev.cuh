// linear_dev.cuh: development variants of the linear layer, for the benchmark and the emulated
// tests (llm.c's dev/cuda): the shipped kernel is kernels/linear.cuh's v3.
//
// Shapes (row-major, as backend.h):
//   X (rows, in), W (out, in), b (out) or nullptr, Y (rows, out)
//   dZ (rows, out) -> dW (out, in) = dZ^T X, db (out) = column sums of dZ, dX (rows, in) = dZ W
//
// Forward versions (selectable for the benchmark):
//   v1  cuBLAS SGEMM (row-major trick: Y^T = W X^T in column-major, so no transposes are
//       materialised), then one fused bias + activation kernel over Y. With tf32 on, the
//       GEMM runs with CUBLAS_COMPUTE_32F_FAST_TF32.
//   v2  custom tiled SGEMM: shared-memory tiles of X and W (both K-contiguous), float4
//       global loads when K % 4 == 0 and X, W are 16-byte aligned (scalar loads otherwise),
//       4x4 register blocking per thread, bias + activation applied in registers before
//       the only store of Y. Tile size 64x64 when that fills the GPU, 32x32 otherwise
//       (rows = 64 gives too few 64x64 tiles to occupy 132 SMs). With tf32 on: a WMMA
//       m16n16k8 TF32 tensor-core kernel (64x64 tiles, 4 warps) with the same epilogue.
//
// In the benchmark rows of bench/results/2026-12-04-NVIDIA_H200/ (the table in README
// "`mnistgan bench`"), v2 beats v1 only at the narrowest layers, v1 is about 2x faster at the
// wide ones, and v2's TF32 path is slower than v1 (FP32) almost everywhere.
//
// Backward (linear_backward_cublas): cuBLAS SGEMM in full FP32 (never TF32), plus a
// deterministic column-sum kernel for db (one block per 32 columns, fixed-order reduction,
// no atomics); dZ must be computed first (activation_backward).
#pragma once

#include <cublas_v2.h>     // cublasHandle_t
#include <cuda_runtime.h>  // cudaStream_t

#include "core/op_types.h"  // Activation

namespace mnistgan {

constexpr int kLinearDevMaxVersion = 2;  // v1, v2

// What the linear launchers need besides the tensors. The cuBLAS handle must already be
// bound to the stream passed to the launcher (cublasSetStream), with its workspace set, so
// the GEMMs can be captured in a CUDA graph.
struct LinearContext {
  cublasHandle_t cublas = nullptr;
  int sm_count = 1;   // multiprocessors of the device (picks v2's tile size)
  int cc_major = 0;   // compute capability major (TF32 needs 8+)
  bool tf32 = false;  // TF32 tensor cores for the forward GEMM
};

// Y = act(X W^T + b) with v1 or v2. Throws std::invalid_argument on a bad version or shape,
// std::runtime_error on a CUDA/cuBLAS error.
void linear_forward_dev(int version, const LinearContext& ctx, const float* X, const float* W,
                    const float* b, float* Y, int rows, int in, int out, Activation act,
                    float slope, cudaStream_t stream);

// dW = dZ^T X, db = column sums of dZ, dX = dZ W; any of dX/dW/db may be nullptr.
// accumulate: add into the outputs (beta = 1) instead of overwriting them.
void linear_backward_cublas(const LinearContext& ctx, const float* X, const float* W, const float* dZ,
                     float* dX, float* dW, float* db, int rows, int in, int out, bool accumulate,
                     cudaStream_t stream);

}  // namespace mnistgan
