// gemm_cpu.h: the CPU backend's single-precision GEMM, row-major.
//   C (M, N) = alpha * op(A) op(B) + beta * C, op(A) (M, K), op(B) (K, N).
// OpenBLAS's cblas_sgemm when built with MNISTGAN_OPENBLAS (the default); otherwise a
// cache-blocked plain loop, so a build without any BLAS (e.g. on a bare GPU box, where the
// CPU backend only serves as a test reference) still works.
#pragma once

namespace mnistgan {

void gemm_cpu(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace mnistgan
