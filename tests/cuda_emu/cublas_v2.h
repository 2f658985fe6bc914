// cublas_v2.h (emulation): the cuBLAS subset that kernels/linear.cu and
// host/backends/cuda_backend.cu use, with cuBLAS's documented column-major semantics:
//   C (m x n, ldc) = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n,
//   A stored lda x (transa == N ? k : m), lda >= (transa == N ? m : k), likewise B;
//   beta == 0 means C is not read (NaN in C does not propagate).
// Arguments are validated as cuBLAS does (CUBLAS_STATUS_INVALID_VALUE for a leading
// dimension below the stored rows, negative sizes), device pointers are required, and the
// GEMM is queued on the handle's stream (so it is captured into graphs and ordered with the
// kernels). Sums run over k in order in FP32; CUBLAS_COMPUTE_32F_FAST_TF32 first rounds
// both operands to TF32 (10-bit mantissa), as the tensor cores see them.
#pragma once

#include <cstddef>  // size_t

#include "cuda_runtime.h"

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2 };
using cudaDataType = cudaDataType_t;
enum cublasComputeType_t {
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };

namespace cuda_emu {
struct CublasContext;
}
using cublasHandle_t = cuda_emu::CublasContext*;

const char* cublasGetStatusString(cublasStatus_t status);
cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream);
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes);
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc);
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void* alpha,
                            const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo);
