// cublas.cpp: the emulated cuBLAS subset of cublas_v2.h (column-major GEMM on the CPU).
#include <algorithm>  // std::max, std::fill
#include <cstdint>    // uint32_t
#include <cstdio>     // std::fprintf
#include <cstring>    // std::memcpy
#include <vector>

#include "cublas_v2.h"

namespace cuda_emu {

struct CublasContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

bool device_range(const void* p, size_t bytes);
void fail_device(const char* what);  // a sticky cudaErrorIllegalAddress
Stats& stats();

namespace {

float round_tf32(float x) {  // round to nearest, ties away, to a 10-bit mantissa
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;
  u &= 0xffffe000u;
  std::memcpy(&x, &u, 4);
  return x;
}

// The bytes a column-major operand of `rows` x `cols` with leading dimension ld spans.
size_t span_bytes(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return (static_cast<size_t>(ld) * (cols - 1) + rows) * sizeof(float);
}

cublasStatus_t invalid(const char* why) {
  std::fprintf(stderr, "cuda_emu cuBLAS: %s\n", why);
  return CUBLAS_STATUS_INVALID_VALUE;
}
// An operand that is not in a live device allocation: which one and what it is instead.
cublasStatus_t invalid_operand(const char* name, const void* p) {
  std::fprintf(stderr, "cuda_emu cuBLAS: GEMM operand %s (%p) %s\n", name, p,
               check_device_pointer(p).empty() ? "runs past its allocation (with its ld)"
                                                : check_device_pointer(p).c_str());
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, float alpha, const float* A, int lda, const float* B, int ldb,
                    float beta, float* C, int ldc, bool tf32) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0) return invalid("negative m, n or k");
  if (ta == CUBLAS_OP_C || tb == CUBLAS_OP_C)
    ta = ta == CUBLAS_OP_C ? CUBLAS_OP_T : ta, tb = tb == CUBLAS_OP_C ? CUBLAS_OP_T : tb;
  // Stored shapes: A is lda x (N ? k : m) holding (N ? m : k) rows; B likewise.
  const int a_rows = ta == CUBLAS_OP_N ? m : k, a_cols = ta == CUBLAS_OP_N ? k : m;
  const int b_rows = tb == CUBLAS_OP_N ? k : n, b_cols = tb == CUBLAS_OP_N ? n : k;
  if (lda < std::max(1, a_rows)) return invalid("lda is below the rows of the stored A");
  if (ldb < std::max(1, b_rows)) return invalid("ldb is below the rows of the stored B");
  if (ldc < std::max(1, m)) return invalid("ldc is below m");
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  // On a GPU an operand past its allocation reads other data or faults; say which here.
  if (k > 0 && alpha != 0.0f && !device_range(A, span_bytes(a_rows, a_cols, lda)))
    return invalid_operand("A", A);
  if (k > 0 && alpha != 0.0f && !device_range(B, span_bytes(b_rows, b_cols, ldb)))
    return invalid_operand("B", B);
  if (!device_range(C, span_bytes(m, n, ldc)))
    return invalid_operand("C", C);
  const cudaError_t e = enqueue_host_op(handle->stream, [=] {
    // Checked again when it runs: a graph may replay it after a buffer was freed.
    const bool reads = k > 0 && alpha != 0.0f;
    if ((reads && !device_range(A, span_bytes(a_rows, a_cols, lda))) ||
        (reads && !device_range(B, span_bytes(b_rows, b_cols, ldb))) ||
        !device_range(C, span_bytes(m, n, ldc))) {
      std::fprintf(stderr, "cuda_emu cuBLAS: a GEMM ran with an operand outside live device "
                           "memory (freed after capture?): A %s, B %s, C %s\n",
                   check_device_pointer(A).c_str(), check_device_pointer(B).c_str(),
                   check_device_pointer(C).c_str());
      fail_device("cuBLAS GEMM");
      return;
    }
    ++stats().gemms;
    // op(A) packed column-major m x k, op(B) k x n: then C's column j is a sum over kk of
    // op(A)[:, kk] * op(B)[kk, j], in kk order (vectorises over i without reassociating).
    std::vector<float> a(static_cast<size_t>(m) * k), b(static_cast<size_t>(k) * n), acc(m);
    for (int kk = 0; kk < k; ++kk)
      for (int i = 0; i < m; ++i) {
        const float v = ta == CUBLAS_OP_N ? A[i + static_cast<size_t>(kk) * lda]
                                          : A[kk + static_cast<size_t>(i) * lda];
        a[i + static_cast<size_t>(kk) * m] = tf32 ? round_tf32(v) : v;
      }
    for (int j = 0; j < n; ++j)
      for (int kk = 0; kk < k; ++kk) {
        const float v = tb == CUBLAS_OP_N ? B[kk + static_cast<size_t>(j) * ldb]
                                          : B[j + static_cast<size_t>(kk) * ldb];
        b[kk + static_cast<size_t>(j) * k] = tf32 ? round_tf32(v) : v;
      }
    for (int j = 0; j < n; ++j) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int kk = 0; kk < k; ++kk) {
        const float bv = b[kk + static_cast<size_t>(j) * k];
        const float* ac = &a[static_cast<size_t>(kk) * m];
        for (int i = 0; i < m; ++i) acc[i] += ac[i] * bv;
      }
      float* c = C + static_cast<size_t>(j) * ldc;
      for (int i = 0; i < m; ++i)
        c[i] = beta == 0.0f ? alpha * acc[i] : alpha * acc[i] + beta * c[i];
    }
  });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace
}  // namespace cuda_emu

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cuda_emu::CublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  handle->workspace = nullptr;  // as cuBLAS: SetStream resets the workspace to the default
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes != 0 && !cuda_emu::device_range(workspace, bytes))
    return cuda_emu::invalid("cublasSetWorkspace: the workspace is not device memory of that size");
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  if (alpha == nullptr || beta == nullptr) return cuda_emu::invalid("null alpha or beta");
  return cuda_emu::gemm(handle, transa, transb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc,
                        false);
}
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void* alpha,
                            const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t) {
  if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_FAST_TF32)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (alpha == nullptr || beta == nullptr) return cuda_emu::invalid("null alpha or beta");
  return cuda_emu::gemm(handle, transa, transb, m, n, k, *static_cast<const float*>(alpha),
                        static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb,
                        *static_cast<const float*>(beta), static_cast<float*>(C), ldc,
                        computeType == CUBLAS_COMPUTE_32F_FAST_TF32);
}
