// test_cuda_emu.cpp: tests of the CUDA emulation itself (tests/cuda_emu/), and the
// whole-program checks of the emulated mnistgan. Built only into the emulated test binaries.
// Suite names contain "Cuda" so that ctest's *Cuda* filter for those binaries runs them.
#include <gtest/gtest.h>

#include <cmath>    // std::isnan, std::fabs
#include <cstdint>  // uint32_t
#include <string>
#include <vector>

#include "check_kernels.cuh"  // emu_check::sum_all, download_pinned, add_host_bias
#include "core/backend.h"      // make_cuda_backend
#include "cublas_v2.h"     // the emulated cuBLAS
#include "cuda_check.cuh"  // CUDA_CHECK, MNISTGAN_LAUNCH
#include "cuda_runtime.h"  // the emulated runtime
#include "linear_dev.cuh"  // (kernels/dev) linear_forward_dev: the TF32 WMMA kernel
#include "test_util.h"

namespace cuda_emu {
void reset_after_fault();  // clears the sticky error so the next test starts clean
void set_seed(uint64_t seed);
}  // namespace cuda_emu

namespace mnistgan {
namespace {

// Device buffer of n floats, freed at scope exit.
struct DeviceFloats {
  float* p = nullptr;
  explicit DeviceFloats(size_t n) { CUDA_CHECK(cudaMalloc(&p, n * sizeof(float))); }
  ~DeviceFloats() { (void)cudaFree(p); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
};
std::vector<float> to_host(const float* p, size_t n) {
  std::vector<float> h(n);
  CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

// ---- warps and barriers -------------------------------------------------------------------

// out[w] = sum over the 32 lanes of warp w of (lane + 1), by a shuffle tree.
__global__ void warp_sum_kernel(float* out) {
  float v = static_cast<float>(threadIdx.x % 32 + 1);
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = v;
}

TEST(EmuCuda, WarpShuffleReductionIs32Wide) {
  DeviceFloats out(4);
  MNISTGAN_LAUNCH(1, 128, 0, nullptr, warp_sum_kernel)(out.p);
  CUDA_CHECK_LAUNCH();
  for (float v : to_host(out.p, 4)) EXPECT_EQ(v, 528.0f);  // 1 + ... + 32
}

// Half the block returns before a __syncthreads the other half waits at.
__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

TEST(EmuCuda, BarrierInDivergentCodeIsAFault) {
  DeviceFloats out(32);
  MNISTGAN_LAUNCH(1, 32, 0, nullptr, divergent_barrier_kernel)(out.p);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);  // sticky, as on a GPU
  cuda_emu::reset_after_fault();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Each thread writes its slot of shared memory and reads its neighbour's: correct only
// with the barrier between.
template <bool kBarrier>
__global__ void neighbour_kernel(float* out) {
  __shared__ float s[64];
  s[threadIdx.x] = static_cast<float>(threadIdx.x) + blockIdx.x * 1000.0f;
  if (kBarrier) __syncthreads();
  out[blockIdx.x * 64 + threadIdx.x] = s[(threadIdx.x + 1) % 64];
}

TEST(EmuCuda, AMissingBarrierShowsAcrossSeeds) {
  DeviceFloats out(4 * 64);
  auto wrong = [&] {
    size_t bad = 0;
    const std::vector<float> h = to_host(out.p, 4 * 64);
    for (int b = 0; b < 4; ++b)
      for (int t = 0; t < 64; ++t) bad += h[b * 64 + t] != (t + 1) % 64 + b * 1000.0f;
    return bad;
  };
  int seeds_that_show_it = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    cuda_emu::set_seed(seed);
    MNISTGAN_LAUNCH(4, 64, 0, nullptr, neighbour_kernel<true>)(out.p);
    CUDA_CHECK_LAUNCH();
    EXPECT_EQ(wrong(), 0u) << "with the barrier, seed " << seed;
    MNISTGAN_LAUNCH(4, 64, 0, nullptr, neighbour_kernel<false>)(out.p);
    CUDA_CHECK_LAUNCH();
    seeds_that_show_it += wrong() != 0;
  }
  EXPECT_EQ(seeds_that_show_it, 4);
  cuda_emu::set_seed(1);
}

TEST(EmuCuda, NewDeviceMemoryReadsAsNaN) {
  DeviceFloats p(8);
  for (float v : to_host(p.p, 8)) EXPECT_TRUE(std::isnan(v));
}

TEST(EmuCuda, CopiesOutsideAnAllocationAreRejected) {
  DeviceFloats p(4);
  std::vector<float> h(8, 1.0f);
  EXPECT_EQ(cudaMemcpy(p.p, h.data(), 8 * sizeof(float), cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), p.p, 4 * sizeof(float), cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);  // the kind says the reverse
  (void)cudaGetLastError();
}

// ---- cuBLAS ---------------------------------------------------------------------------------

// C = alpha op(A) op(B) + beta C in column-major, by definition.
std::vector<float> reference_gemm(bool ta, bool tb, int m, int n, int k, float alpha,
                                  const std::vector<float>& A, int lda, const std::vector<float>& B,
                                  int ldb, float beta, std::vector<float> C, int ldc) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int kk = 0; kk < k; ++kk)
        s += double(ta ? A[kk + i * lda] : A[i + kk * lda]) *
             double(tb ? B[j + kk * ldb] : B[kk + j * ldb]);
      C[i + j * ldc] = static_cast<float>(alpha * s + beta * C[i + j * ldc]);
    }
  return C;
}

TEST(EmuCuda, CublasSgemmHasColumnMajorSemantics) {
  cublasHandle_t h = nullptr;
  CUBLAS_CHECK(cublasCreate(&h));
  const int m = 5, n = 3, k = 4, ld_pad = 2;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const int lda = (ta ? k : m) + ld_pad, ldb = (tb ? n : k) + ld_pad, ldc = m + ld_pad;
      const auto A = test::random_vector(static_cast<size_t>(lda) * (ta ? m : k), 1);
      const auto B = test::random_vector(static_cast<size_t>(ldb) * (tb ? k : n), 2);
      const auto C = test::random_vector(static_cast<size_t>(ldc) * n, 3);
      DeviceFloats dA(A.size()), dB(B.size()), dC(C.size());
      CUDA_CHECK(cudaMemcpy(dA.p, A.data(), A.size() * 4, cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemcpy(dB.p, B.data(), B.size() * 4, cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemcpy(dC.p, C.data(), C.size() * 4, cudaMemcpyHostToDevice));
      const float alpha = 1.5f, beta = -0.5f;
      CUBLAS_CHECK(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m,
                               n, k, &alpha, dA.p, lda, dB.p, ldb, &beta, dC.p, ldc));
      test::expect_close(to_host(dC.p, C.size()),
                         reference_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc), 1e-5,
                         1e-5, std::string("sgemm ") + (ta ? "T" : "N") + (tb ? "T" : "N"));
      // A leading dimension below the stored rows is refused, as cuBLAS does.
      EXPECT_EQ(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n,
                            k, &alpha, dA.p, (ta ? k : m) - 1, dB.p, ldb, &beta, dC.p, ldc),
                CUBLAS_STATUS_INVALID_VALUE);
    }
  CUBLAS_CHECK(cublasDestroy(h));
}

TEST(EmuCuda, CublasTf32RoundsTheInputs) {
  cublasHandle_t h = nullptr;
  CUBLAS_CHECK(cublasCreate(&h));
  const std::vector<float> a = {1.0f + 0x1p-12f}, b = {1.0f};  // below TF32's 2^-10 step
  DeviceFloats dA(1), dB(1), dC(1);
  CUDA_CHECK(cudaMemcpy(dA.p, a.data(), 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(dB.p, b.data(), 4, cudaMemcpyHostToDevice));
  const float one = 1.0f, zero = 0.0f;
  for (const auto& [type, want] :
       {std::pair{CUBLAS_COMPUTE_32F, a[0]}, std::pair{CUBLAS_COMPUTE_32F_FAST_TF32, 1.0f}}) {
    CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, dA.p, CUDA_R_32F, 1, dB.p,
                              CUDA_R_32F, 1, &zero, dC.p, CUDA_R_32F, 1, type,
                              CUBLAS_GEMM_DEFAULT));
    EXPECT_EQ(to_host(dC.p, 1)[0], want);
  }
  CUBLAS_CHECK(cublasDestroy(h));
}

// ---- streams and graphs ---------------------------------------------------------------------

__global__ void add_one_kernel(float* x) { x[threadIdx.x] += 1.0f; }

TEST(EmuCuda, CaptureRecordsAndEachGraphLaunchReplays) {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  DeviceFloats x(4);
  CUDA_CHECK(cudaMemsetAsync(x.p, 0, 4 * sizeof(float), s));
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  MNISTGAN_LAUNCH(1, 4, 0, s, add_one_kernel)(x.p);
  CUDA_CHECK_LAUNCH();
  cudaGraph_t g = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(s, &g));
  CUDA_CHECK(cudaStreamSynchronize(s));  // the memset; to_host's copy does not wait for s
  EXPECT_EQ(to_host(x.p, 4)[0], 0.0f) << "captured work must not run at capture";
  cudaGraphExec_t e = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&e, g, 0));
  for (int i = 0; i < 3; ++i) CUDA_CHECK(cudaGraphLaunch(e, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ(to_host(x.p, 4)[3], 3.0f);
  CUDA_CHECK(cudaGraphExecDestroy(e));
  CUDA_CHECK(cudaGraphDestroy(g));
  CUDA_CHECK(cudaStreamDestroy(s));
}

TEST(EmuCuda, SynchronisingInsideACaptureInvalidatesIt) {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t g = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(g, nullptr);
  (void)cudaGetLastError();
  CUDA_CHECK(cudaStreamDestroy(s));
}

__global__ void copy_kernel(const float* in, float* out) { out[threadIdx.x] = in[threadIdx.x]; }

// cudaMemcpy runs on the legacy default stream, which a cudaStreamNonBlocking stream does not
// wait for (and a pageable host-to-device copy may return before its data lands): a kernel
// on such a stream that reads the copy's destination needs the legacy stream synchronised
// first; without that, here the kernel sees the old bytes.
TEST(EmuCuda, LegacyStreamCopyIsNotOrderedWithNonBlockingStreams) {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  DeviceFloats in(4), out(4);
  const std::vector<float> h = {1, 2, 3, 4};
  CUDA_CHECK(cudaMemcpy(in.p, h.data(), 16, cudaMemcpyHostToDevice));
  MNISTGAN_LAUNCH(1, 4, 0, s, copy_kernel)(in.p, out.p);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaStreamSynchronize(s));
  EXPECT_TRUE(std::isnan(to_host(out.p, 4)[0])) << "the unsynchronised kernel read the copy";
  // With the legacy stream synchronised before the launch, the kernel sees the data.
  CUDA_CHECK(cudaMemcpy(in.p, h.data(), 16, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
  MNISTGAN_LAUNCH(1, 4, 0, s, copy_kernel)(in.p, out.p);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ(to_host(out.p, 4), h);
  CUDA_CHECK(cudaStreamDestroy(s));
}

// ---- what the emulation makes loud -----------------------------------------------------------

__global__ void read_shared_before_write_kernel(float* out) {
  __shared__ float s[32];
  out[blockIdx.x * 32 + threadIdx.x] = s[threadIdx.x];  // never written: NaN, not stale
  __syncthreads();
  s[threadIdx.x] = 1.0f;
}

TEST(EmuCuda, SharedMemoryIsNaNAtEveryBlockStart) {
  DeviceFloats out(3 * 32);
  MNISTGAN_LAUNCH(3, 32, 0, nullptr, read_shared_before_write_kernel)(out.p);
  CUDA_CHECK_LAUNCH();
  for (float v : to_host(out.p, 3 * 32)) EXPECT_TRUE(std::isnan(v));
}

// GCC drops the section attribute in a function template: the emulator finds these statics
// in the symbol table by the kernel's address (emu.cpp, KernelStatics).
template <int kWidth>
__global__ void read_templated_shared_before_write_kernel(float* out) {
  __shared__ float s[kWidth];
  out[blockIdx.x * kWidth + threadIdx.x] = s[threadIdx.x];  // never written: NaN, not stale
  __syncthreads();
  s[threadIdx.x] = 1.0f;
}

TEST(EmuCuda, TemplatedKernelSharedMemoryIsNaNAtEveryBlockStart) {
  DeviceFloats out(3 * 32 + 3 * 16);
  MNISTGAN_LAUNCH(3, 32, 0, nullptr, read_templated_shared_before_write_kernel<32>)(out.p);
  CUDA_CHECK_LAUNCH();
  MNISTGAN_LAUNCH(3, 16, 0, nullptr, read_templated_shared_before_write_kernel<16>)(out.p + 96);
  CUDA_CHECK_LAUNCH();
  for (float v : to_host(out.p, 3 * 32 + 3 * 16)) EXPECT_TRUE(std::isnan(v));
}

TEST(EmuCuda, FreedDeviceMemoryIsPoisoned) {
  float* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, 4 * sizeof(float)));
  CUDA_CHECK(cudaMemset(p, 0, 4 * sizeof(float)));
  EXPECT_EQ(to_host(p, 4)[0], 0.0f);
  CUDA_CHECK(cudaFree(p));
  // Still mapped (quarantined), so a stale pointer reads NaN instead of someone's data...
  EXPECT_TRUE(std::isnan(p[0]));
  // ...and a copy or launch with it is refused.
  float h = 0;
  EXPECT_EQ(cudaMemcpy(&h, p, sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  (void)cudaGetLastError();
}

// Work queued on a created stream runs at a point that waits for it, never at enqueue.
TEST(EmuCuda, CreatedStreamWorkWaitsForASynchronisation) {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  DeviceFloats x(4);
  CUDA_CHECK(cudaMemsetAsync(x.p, 0, 4 * sizeof(float), s));
  EXPECT_TRUE(std::isnan(x.p[0])) << "ran at enqueue";  // device memory is host memory here
  EXPECT_EQ(cudaStreamQuery(s), cudaSuccess);
  EXPECT_EQ(x.p[0], 0.0f);
  CUDA_CHECK(cudaStreamDestroy(s));
}

// A second stream sees the first one's work only through an event it waits for.
TEST(EmuCuda, StreamsAreOrderedByEventsOnly) {
  cudaStream_t producer = nullptr, consumer = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreateWithFlags(&consumer, cudaStreamNonBlocking));
  cudaEvent_t ready = nullptr;
  CUDA_CHECK(cudaEventCreate(&ready));
  DeviceFloats in(4), out(4);
  for (const bool wait : {false, true}) {
    CUDA_CHECK(cudaMemsetAsync(in.p, 0, 4 * sizeof(float), producer));
    CUDA_CHECK(cudaEventRecord(ready, producer));
    if (wait) CUDA_CHECK(cudaStreamWaitEvent(consumer, ready, 0));
    MNISTGAN_LAUNCH(1, 4, 0, consumer, copy_kernel)(in.p, out.p);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaStreamSynchronize(consumer));
    if (wait)
      EXPECT_EQ(out.p[0], 0.0f);
    else
      EXPECT_TRUE(std::isnan(out.p[0])) << "the consumer ran after a producer it never waited for";
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemset(in.p, 0xff, 4 * sizeof(float)));  // NaN again for the next round
    CUDA_CHECK(cudaDeviceSynchronize());
  }
  CUDA_CHECK(cudaEventDestroy(ready));
  CUDA_CHECK(cudaStreamDestroy(producer));
  CUDA_CHECK(cudaStreamDestroy(consumer));
}

// A kernel's pointer argument must be null or in a live device allocation: a host pointer
// or a freed buffer fails the launch with a line naming the kernel and the argument.
TEST(EmuCuda, KernelPointerArgumentsAreChecked) {
  DeviceFloats out(4);
  std::vector<float> host(4, 1.0f);
  float* freed = nullptr;
  CUDA_CHECK(cudaMalloc(&freed, 4 * sizeof(float)));
  CUDA_CHECK(cudaFree(freed));
  for (const auto& [in, what] : {std::pair<const float*, std::string>{host.data(), "not device memory"},
                                 std::pair<const float*, std::string>{freed, "freed device memory"}}) {
    testing::internal::CaptureStderr();
    MNISTGAN_LAUNCH(1, 4, 0, nullptr, copy_kernel)(in, out.p);
    EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("copy_kernel"), std::string::npos) << err;
    EXPECT_NE(err.find("argument 0"), std::string::npos) << err;
    EXPECT_NE(err.find(what), std::string::npos) << err;
    cuda_emu::reset_after_fault();
  }
}

// The helpers that the negative controls break, each right as written.
TEST(EmuCuda, CrossBlockSumWithAtomic) {
  const int n = 1000;  // 4 blocks; integers, so every order of the adds is exact
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i + 1);
  DeviceFloats dx(n), total(1);
  CUDA_CHECK(cudaMemcpy(dx.p, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  emu_check::sum_all(dx.p, n, total.p, nullptr);
  EXPECT_EQ(to_host(total.p, 1)[0], 500500.0f);
}

// Under TSan (tsan.EmuCuda) this fails if the emulation does not forget one block's accesses
// to a templated kernel's shared memory before the next block: the blocks' threads would race.
TEST(EmuCuda, TemplatedKernelSharedMemoryIsFreshForEveryBlock) {
  const int rows = 6, w = emu_check::kReverseWidth;
  std::vector<float> x(rows * w);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  DeviceFloats dx(x.size());
  CUDA_CHECK(cudaMemcpy(dx.p, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
  emu_check::reverse_rows(dx.p, rows, nullptr);
  const std::vector<float> got = to_host(dx.p, x.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < w; ++c) ASSERT_EQ(got[r * w + c], x[r * w + w - 1 - c]) << r << "," << c;
}

TEST(EmuCuda, AsyncCopyToPinnedMemoryIsReadAfterASync) {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  DeviceFloats d(4);
  const std::vector<float> want = {1, 2, 3, 4};
  CUDA_CHECK(cudaMemcpy(d.p, want.data(), 4 * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaDeviceSynchronize());
  float* pinned = nullptr;
  CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned), 4 * sizeof(float)));
  for (int i = 0; i < 4; ++i) pinned[i] = -1.0f;
  emu_check::download_pinned(d.p, pinned, 4, s);
  EXPECT_EQ(std::vector<float>(pinned, pinned + 4), want);
  CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaFreeHost(pinned));
  CUDA_CHECK(cudaStreamDestroy(s));
}

TEST(EmuCuda, HostBiasGoesThroughADeviceBuffer) {
  DeviceFloats y(300);
  const std::vector<float> zeros(300, 0.0f), bias = test::random_vector(300, 5);
  CUDA_CHECK(cudaMemcpy(y.p, zeros.data(), 300 * sizeof(float), cudaMemcpyHostToDevice));
  emu_check::add_host_bias(y.p, bias.data(), 300, nullptr);
  EXPECT_EQ(to_host(y.p, 300), bias);
}

// ---- the backend on the emulation -------------------------------------------------------------

// The TF32 WMMA kernel sits under #if __CUDA_ARCH__ >= 800: an empty body would leave Y
// untouched. Its tensor-core path must have run (mma_sync calls counted) and computed.
TEST(EmuCuda, Tf32WmmaKernelBodyRuns) {
  LinearContext ctx;
  ctx.tf32 = true;
  ctx.cc_major = 9;
  const int rows = 20, in = 24, out = 18;
  const auto x = test::random_vector(rows * in, 7), w = test::random_vector(out * in, 8);
  DeviceFloats gx(x.size()), gw(w.size()), gy(rows * out);
  CUDA_CHECK(cudaMemcpy(gx.p, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(gw.p, w.data(), w.size() * sizeof(float), cudaMemcpyHostToDevice));
  const unsigned long long before = cuda_emu::stats().mma_ops;
  linear_forward_dev(2, ctx, gx.p, gw.p, nullptr, gy.p, rows, in, out, Activation::kNone, 0,
                     nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_GT(cuda_emu::stats().mma_ops, before);
  const auto y = to_host(gy.p, rows * out);
  std::vector<float> want(rows * out);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double s = 0;
      for (int i = 0; i < in; ++i) s += double(x[r * in + i]) * w[o * in + i];
      want[r * out + o] = static_cast<float>(s);
    }
  test::expect_close(y, want, 2e-2, 1e-2, "tf32 wmma linear");
}

// After a device fault every CUDA call returns the fault (sticky, as on a GPU). Freeing the
// backend's buffers as the stack unwinds must not throw a second exception (std::terminate):
// the first failure is reported once on stderr and the rest go quietly.
TEST(EmuCuda, FreeAfterADeviceFaultReportsOnceAndDoesNotThrow) {
  auto be = make_cuda_backend();
  auto a = test::alloc<float>(*be, 32), b = test::alloc<float>(*be, 32);
  DeviceFloats out(32);
  MNISTGAN_LAUNCH(1, 32, 0, nullptr, divergent_barrier_kernel)(out.p);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  testing::internal::CaptureStderr();
  EXPECT_NO_THROW(a.reset());
  EXPECT_NO_THROW(b.reset());
  const std::string err = testing::internal::GetCapturedStderr();
  cuda_emu::reset_after_fault();
  EXPECT_TRUE(a.empty() && b.empty());
  const std::string line = "cudaFree failed: cudaErrorLaunchFailure";
  const size_t first = err.find(line);
  EXPECT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find(line, first + 1), std::string::npos) << "reported more than once:\n" << err;
}

}  // namespace
}  // namespace mnistgan
