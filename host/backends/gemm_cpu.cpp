// gemm_cpu.cpp: see gemm_cpu.h.
#include "backends/gemm_cpu.h"

#include <algorithm>
#include <vector>

#if defined(MNISTGAN_USE_CBLAS)
#include <cblas.h>  // cblas_sgemm (OpenBLAS)
#endif

namespace mnistgan {

#if defined(MNISTGAN_USE_CBLAS)

void gemm_cpu(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#else

// Plain loop: packs op(A) row-wise and op(B) into (K, N) so the inner loop is a
// contiguous axpy over N that the compiler vectorises.
void gemm_cpu(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc) {
  std::vector<float> b_kn(static_cast<size_t>(K) * N);
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n)
      b_kn[static_cast<size_t>(k) * N + n] =
          trans_b ? B[static_cast<size_t>(n) * ldb + k] : B[static_cast<size_t>(k) * ldb + n];
  std::vector<float> row(N);
  for (int m = 0; m < M; ++m) {
    std::fill(row.begin(), row.end(), 0.0f);
    for (int k = 0; k < K; ++k) {
      const float a =
          trans_a ? A[static_cast<size_t>(k) * lda + m] : A[static_cast<size_t>(m) * lda + k];
      if (a == 0.0f) continue;
      const float* b = &b_kn[static_cast<size_t>(k) * N];
      for (int n = 0; n < N; ++n) row[n] += a * b[n];
    }
    float* c = C + static_cast<size_t>(m) * ldc;
    for (int n = 0; n < N; ++n) c[n] = alpha * row[n] + (beta == 0.0f ? 0.0f : beta * c[n]);
  }
}

#endif

}  // namespace mnistgan
