// bench_cuda.cu: the device half of `mnistgan bench` (see bench.h): ceilings, then every
// kernel of the training step and the library comparators at the model's layer shapes.
//
// For each row: inputs are drawn on the host, the CPU backend computes the reference, the
// device version runs once and is compared (|got - want| <= atol + rtol |want|, at the
// tolerances of core/op_checks.h, the table the CUDA-vs-CPU tests use); a mismatch marks
// the row FAILED (it is still timed, so the table shows both). Then
// --warmup untimed runs and --repeats timed runs, each timed alone with CUDA events after a
// write of a buffer twice the L2 size, so no repeat finds its inputs left in L2 by the last.
//
// Linear-forward variants at every layer shape:
//   v3        the shipped grouped split-K SGEMM with bias and activation in its epilogue
//             (kernels/linear.cu), with its split chosen from the SM count, and unsplit;
//   v1        cuBLAS SGEMM + the fused bias/activation kernel (kernels/dev/linear_dev.cu): the
//             library GEMM with a separate bias + activation pass;
//   v2        the custom tiled SIMT GEMM with bias and activation in registers (dev);
//   v2 tf32   the WMMA TF32 tensor-core kernel (compute capability 8.0+; dev);
//   cublasLt  cuBLASLt matmul with CUBLASLT_EPILOGUE_BIAS, then a LeakyReLU/tanh pass;
//   cudnn     a cuDNN backend-API graph: matmul -> add bias -> RELU_FWD with lower clip
//             slope 0.2 (LeakyReLU layers only; built when cuDNN headers were found). When
//             cuDNN finds no engine for FP32 the row says "skipped: no engine" instead.
// Linear-backward: v3 (one launch: dX and [dW | db] with act' read from Y on load) against
// cuBLAS SGEMM x2 + the column-sum kernel + activation_backward (dev).

#include <cublasLt.h>      // cublasLtMatmul, epilogues
#include <cublas_v2.h>     // cublasSgemm, cublasGemmEx
#include <cuda_runtime.h>  // events, memory, device properties

#include <algorithm>   // std::max, std::min
#include <cmath>       // std::fabs, std::sqrt
#include <cstdint>     // int64_t
#include <cstdio>      // std::snprintf
#include <functional>  // std::function
#include <memory>      // std::unique_ptr
#include <stdexcept>   // std::runtime_error
#include <string>
#include <utility>  // std::swap
#include <vector>

#include "adam.cuh"               // adam_step
#include "bce.cuh"                // bce_with_logits
#include "bench/bench.h"          // BenchReport, KernelRow, work counts
#include "core/backend.h"         // make_cpu_backend, Activation
#include "core/backend_buffer.h"  // BackendBuffer
#include "core/formulas.h"        // activate
#include "core/op_checks.h"       // op_tolerance, check_close, the work counts
#include "cuda_check.cuh"         // CUDA_CHECK, CUBLAS_CHECK, CUDNN_CHECK
#include "elementwise.cuh"        // activation_backward
#include "linear_dev.cuh"         // (kernels/dev) linear_forward_dev, linear_backward_cublas
#include "linear.cuh"             // linear_forward, linear_backward (v3), LinearWorkspace
#include "logit_bce.cuh"          // logit_bce
#include "mbd.cuh"                // mbd_forward, mbd_backward
#include "model/model.h"          // gan_layers, parameter_count

namespace mnistgan {
namespace {

// Ceiling sizes: far beyond any cache, big enough to reach steady state.
constexpr size_t kCopyBytes = size_t{1} << 30;  // 1 GiB
constexpr int kGemmCeilingN = 8192;             // 8192^3 GEMM, 1.1 TFLOP
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// ---- device memory -------------------------------------------------------------------------
//
// The bench's kernels run on a cudaStreamNonBlocking stream, which is not ordered after the
// legacy default stream that cudaMemset and cudaMemcpy use, and a pageable host-to-device
// cudaMemcpy may return before its DMA has landed. So every allocation's clear and every
// upload waits for the legacy stream before it returns: without that, a kernel read a
// half-copied input on an H200 (activation_backward at batch 1024, about 4% of elements).

// Waits for the legacy default stream's queued memset/memcpy to reach device memory.
void wait_for_legacy_stream() { CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy)); }

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    CUDA_CHECK(cudaMalloc(&p_, bytes == 0 ? 256 : bytes));
    CUDA_CHECK(cudaMemset(p_, 0, bytes == 0 ? 256 : bytes));
    wait_for_legacy_stream();
  }
  ~DeviceBuffer() {
    if (p_ != nullptr) (void)cudaFree(p_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(p_); }
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

DeviceBuffer upload(const std::vector<float>& host) {
  DeviceBuffer d(host.size() * sizeof(float));
  if (!host.empty()) {
    CUDA_CHECK(
        cudaMemcpy(d.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    wait_for_legacy_stream();
  }
  return d;
}

std::vector<float> download(const float* p, size_t n) {
  std::vector<float> host(n);
  if (n != 0) CUDA_CHECK(cudaMemcpy(host.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
  return host;
}

// ---- the CPU reference through the Backend interface ---------------------------------------

class CpuRef {
 public:
  CpuRef() : cpu_(make_cpu_backend()) {}
  Backend* operator->() { return cpu_.get(); }
  float* put(const std::vector<float>& host) {
    float* p = zeros(host.size());
    if (!host.empty()) cpu_->to_backend(p, host.data(), host.size() * sizeof(float));
    return p;
  }
  float* zeros(size_t n) { return owned_.emplace_back(*cpu_, n == 0 ? 1 : n).get(); }
  int64_t* step() { return steps_.emplace_back(*cpu_, 1).get(); }
  std::vector<float> get(const float* p, size_t n) {
    std::vector<float> host(n);
    if (n != 0) cpu_->to_host(host.data(), p, n * sizeof(float));
    return host;
  }

 private:
  std::unique_ptr<Backend> cpu_;  // declared first: destroyed after the buffers below
  std::vector<BackendBuffer<float>> owned_;
  std::vector<BackendBuffer<int64_t>> steps_;
};

// "" when got is within op's tolerance of want (core/op_checks.h), else why not.
std::string check_op(Op op, const std::vector<float>& got, const std::vector<float>& want,
                     const char* what, double& max_abs_error, int64_t reduction = 1,
                     bool tf32 = false) {
  return check_close(got, want, op_tolerance(op, reduction, max_abs(want), tf32), what,
                     &max_abs_error);
}

// ---- timing --------------------------------------------------------------------------------

class Timer {
 public:
  Timer(cudaStream_t stream, size_t l2_bytes) : stream_(stream) {
    // Twice L2 (at least 64 MiB): writing it evicts everything a repeat could reuse.
    flush_ = DeviceBuffer(std::max<size_t>(2 * l2_bytes, size_t{64} << 20));
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Timer() {
    (void)cudaEventDestroy(start_);
    (void)cudaEventDestroy(stop_);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  std::vector<double> time(int warmup, int repeats, const std::function<void()>& fn,
                           bool flush_l2 = true) {
    for (int i = 0; i < warmup; ++i) fn();
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<double> seconds;
    for (int i = 0; i < repeats; ++i) {
      if (flush_l2) CUDA_CHECK(cudaMemsetAsync(flush_.get(), i & 0xff, flush_.bytes(), stream_));
      CUDA_CHECK(cudaEventRecord(start_, stream_));
      fn();
      CUDA_CHECK(cudaEventRecord(stop_, stream_));
      CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      seconds.push_back(ms * 1e-3);
    }
    return seconds;
  }

 private:
  cudaStream_t stream_;
  DeviceBuffer flush_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// ---- library comparators -------------------------------------------------------------------

__global__ void apply_activation_kernel(float* y, size_t n, int act, float slope) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    y[i] = activate(y[i], static_cast<Activation>(act), slope);
  }
}

// In place over y (n); act 1 LeakyReLU, 2 tanh, 0 nothing (no launch).
void apply_activation(float* y, size_t n, int act, float slope, cudaStream_t stream) {
  if (act == 0 || n == 0) return;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<size_t>((n + threads - 1) / threads, 65535));
  apply_activation_kernel<<<blocks, threads, 0, stream>>>(y, n, act, slope);
  CUDA_CHECK_LAUNCH();
}

// Y (rows, out) = X (rows, in) W^T + b with cuBLASLt's BIAS epilogue. Column-major view:
// C (out x rows, ld out) = op(A) B with A = W stored (in x out, ld in) and transposed, B = X
// stored (in x rows, ld in); the epilogue adds b (length out = C's rows) to every column.
class LtLinear {
 public:
  LtLinear(cublasLtHandle_t lt, int rows, int in, int out, const float* bias) : lt_(lt) {
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)));
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)));
    const cublasLtEpilogue_t epilogue =
        bias != nullptr ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                sizeof(epilogue)));
    if (bias != nullptr)
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                  sizeof(bias)));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a_, CUDA_R_32F, in, out, in));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b_, CUDA_R_32F, in, rows, in));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c_, CUDA_R_32F, out, rows, out));
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref_));
    const size_t ws = kWorkspaceBytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    int returned = 0;
    // No algorithm for the problem comes back as NOT_SUPPORTED (not as 0 results): a skip.
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(lt_, op_, a_, b_, c_, c_, pref_, 1, &heuristic_, &returned);
    if (status != CUBLAS_STATUS_NOT_SUPPORTED) CUBLAS_CHECK(status);
    found_ = status == CUBLAS_STATUS_SUCCESS && returned > 0 &&
             heuristic_.state == CUBLAS_STATUS_SUCCESS;
  }
  ~LtLinear() {
    if (pref_) (void)cublasLtMatmulPreferenceDestroy(pref_);
    if (c_) (void)cublasLtMatrixLayoutDestroy(c_);
    if (b_) (void)cublasLtMatrixLayoutDestroy(b_);
    if (a_) (void)cublasLtMatrixLayoutDestroy(a_);
    if (op_) (void)cublasLtMatmulDescDestroy(op_);
  }
  LtLinear(const LtLinear&) = delete;
  LtLinear& operator=(const LtLinear&) = delete;
  bool found() const { return found_; }
  void run(const float* X, const float* W, float* Y, void* workspace, cudaStream_t stream) {
    const float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(lt_, op_, &alpha, W, a_, X, b_, &beta, Y, c_, Y, c_,
                                &heuristic_.algo, workspace, kWorkspaceBytes, stream));
  }

 private:
  cublasLtHandle_t lt_;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic_{};
  bool found_ = false;
};

#if defined(MNISTGAN_HAVE_CUDNN)
// Y = LeakyReLU(X W^T + b) as one cuDNN operation graph (backend API, no frontend):
//   matmul  A = X (1, rows, in), B = W^T (1, in, out) [W's storage read with strides
//           (in*out, 1, in)], C = Z (1, rows, out, virtual)
//   add     Z + bias (1, 1, out) -> Zb (virtual)
//   relu    Y = RELU_FWD(Zb) with lower clip slope 0.2 (LeakyReLU), real
// Whether cuDNN has an engine for this pattern in FP32 is up to the installed version: when
// finalising every heuristic candidate fails, error() says so and the row is skipped.
class CudnnLinearGraph {
 public:
  CudnnLinearGraph(cudnnHandle_t handle, int rows, int in, int out, float slope) : handle_(handle) {
    try {
      build(rows, in, out, slope);
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  ~CudnnLinearGraph() {
    for (auto it = owned_.rbegin(); it != owned_.rend(); ++it)
      (void)cudnnBackendDestroyDescriptor(*it);
  }
  CudnnLinearGraph(const CudnnLinearGraph&) = delete;
  CudnnLinearGraph& operator=(const CudnnLinearGraph&) = delete;

  const std::string& error() const { return error_; }  // "" when a plan was built
  int64_t workspace_bytes() const { return workspace_; }
  bool tf32() const { return tf32_; }  // the engine rounds FP32 inputs to TF32 (checked as such)

  // Binds the device pointers once (a variant pack per row, so repeats time only execution).
  void bind(const float* X, const float* W, const float* b, float* Y, void* workspace) {
    void* pointers[4] = {const_cast<float*>(X), const_cast<float*>(W), const_cast<float*>(b), Y};
    int64_t uids[4] = {kUidX, kUidW, kUidBias, kUidY};
    pack_ = create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    CUDNN_CHECK(cudnnBackendSetAttribute(pack_, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                         CUDNN_TYPE_INT64, 4, uids));
    CUDNN_CHECK(cudnnBackendSetAttribute(pack_, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                         CUDNN_TYPE_VOID_PTR, 4, pointers));
    CUDNN_CHECK(cudnnBackendSetAttribute(pack_, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
                                         CUDNN_TYPE_VOID_PTR, 1, &workspace));
    CUDNN_CHECK(cudnnBackendFinalize(pack_));
  }
  void run() { CUDNN_CHECK(cudnnBackendExecute(handle_, plan_, pack_)); }

 private:
  static constexpr int64_t kUidX = 1, kUidW = 2, kUidBias = 3, kUidY = 4, kUidZ = 5, kUidZb = 6;

  cudnnBackendDescriptor_t create(cudnnBackendDescriptorType_t type) {
    cudnnBackendDescriptor_t d = nullptr;
    CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d));
    owned_.push_back(d);
    return d;
  }

  cudnnBackendDescriptor_t tensor(int64_t uid, const int64_t dims[3], const int64_t strides[3],
                                  bool is_virtual) {
    cudnnBackendDescriptor_t t = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const cudnnDataType_t type = CUDNN_DATA_FLOAT;
    const int64_t alignment = 4;  // plain cudaMalloc'd floats at any offset
    const bool virt = is_virtual;
    CUDNN_CHECK(
        cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type));
    CUDNN_CHECK(
        cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 3, dims));
    CUDNN_CHECK(
        cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 3, strides));
    CUDNN_CHECK(
        cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1,
                                         &alignment));
    CUDNN_CHECK(
        cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt));
    CUDNN_CHECK(cudnnBackendFinalize(t));
    return t;
  }

  cudnnBackendDescriptor_t pointwise_op(cudnnPointwiseMode_t mode, double relu_slope,
                                        cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                                        cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t pw = create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    CUDNN_CHECK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE,
                                         1, &mode));
    CUDNN_CHECK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE,
                                         1, &prec));
    if (mode == CUDNN_POINTWISE_RELU_FWD)
      CUDNN_CHECK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE,
                                           CUDNN_TYPE_DOUBLE, 1, &relu_slope));
    CUDNN_CHECK(cudnnBackendFinalize(pw));
    cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
    CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    if (b != nullptr)
      CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
    CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    CUDNN_CHECK(cudnnBackendFinalize(op));
    return op;
  }

  void build(int rows, int in, int out, float slope) {
    const int64_t r = rows, k = in, n = out;
    const int64_t x_dims[3] = {1, r, k}, x_strides[3] = {r * k, k, 1};
    const int64_t w_dims[3] = {1, k, n}, w_strides[3] = {k * n, 1, k};  // W (n, k) read as W^T
    const int64_t y_dims[3] = {1, r, n}, y_strides[3] = {r * n, n, 1};
    const int64_t b_dims[3] = {1, 1, n}, b_strides[3] = {n, n, 1};
    cudnnBackendDescriptor_t x = tensor(kUidX, x_dims, x_strides, false);
    cudnnBackendDescriptor_t w = tensor(kUidW, w_dims, w_strides, false);
    cudnnBackendDescriptor_t bias = tensor(kUidBias, b_dims, b_strides, false);
    cudnnBackendDescriptor_t z = tensor(kUidZ, y_dims, y_strides, true);
    cudnnBackendDescriptor_t zb = tensor(kUidZb, y_dims, y_strides, true);
    cudnnBackendDescriptor_t y = tensor(kUidY, y_dims, y_strides, false);

    cudnnBackendDescriptor_t mm = create(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    CUDNN_CHECK(cudnnBackendSetAttribute(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                         &compute));
    CUDNN_CHECK(cudnnBackendFinalize(mm));
    cudnnBackendDescriptor_t mm_op = create(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    CUDNN_CHECK(cudnnBackendSetAttribute(mm_op, CUDNN_ATTR_OPERATION_MATMUL_ADESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    CUDNN_CHECK(cudnnBackendSetAttribute(mm_op, CUDNN_ATTR_OPERATION_MATMUL_BDESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w));
    CUDNN_CHECK(cudnnBackendSetAttribute(mm_op, CUDNN_ATTR_OPERATION_MATMUL_CDESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &z));
    CUDNN_CHECK(cudnnBackendSetAttribute(mm_op, CUDNN_ATTR_OPERATION_MATMUL_DESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm));
    CUDNN_CHECK(cudnnBackendFinalize(mm_op));
    cudnnBackendDescriptor_t add_op = pointwise_op(CUDNN_POINTWISE_ADD, 0.0, z, bias, zb);
    cudnnBackendDescriptor_t relu_op =
        pointwise_op(CUDNN_POINTWISE_RELU_FWD, slope, zb, nullptr, y);

    cudnnBackendDescriptor_t graph = create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    cudnnBackendDescriptor_t ops[3] = {mm_op, add_op, relu_op};
    CUDNN_CHECK(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 3, ops));
    CUDNN_CHECK(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE,
                                         1, &handle_));
    CUDNN_CHECK(cudnnBackendFinalize(graph));

    // Heuristic candidates (mode A, then the fallback list). The first that finalises and does
    // exact FP32 arithmetic wins, as the cuBLAS comparators do; on Hopper cuDNN may rank
    // engines that round the FP32 inputs to TF32 on tensor cores first. Such an engine is kept
    // only when there is no other, and is then checked at the TF32 tolerance and labelled.
    std::string tried;
    cudnnBackendDescriptor_t tf32_plan = nullptr;
    int64_t tf32_workspace = 0;
    for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      cudnnBackendDescriptor_t heur = create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
      CUDNN_CHECK(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
      CUDNN_CHECK(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE,
                                           1, &mode));
      if (cudnnBackendFinalize(heur) != CUDNN_STATUS_SUCCESS) continue;
      constexpr int kMaxConfigs = 16;
      cudnnBackendDescriptor_t configs[kMaxConfigs];
      for (auto& c : configs) c = create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      int64_t count = 0;
      if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, kMaxConfigs, &count,
                                   configs) != CUDNN_STATUS_SUCCESS)
        continue;
      for (int64_t i = 0; i < count; ++i) {
        cudnnBackendDescriptor_t plan = create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        CUDNN_CHECK(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                             CUDNN_TYPE_HANDLE, 1, &handle_));
        CUDNN_CHECK(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &configs[i]));
        const cudnnStatus_t s = cudnnBackendFinalize(plan);
        if (s != CUDNN_STATUS_SUCCESS) {
          tried += std::string(tried.empty() ? "" : ", ") + cudnnGetErrorString(s);
          continue;
        }
        int64_t got = 0, workspace = 0;
        CUDNN_CHECK(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                             CUDNN_TYPE_INT64, 1, &got, &workspace));
        if (uses_tensor_cores(configs[i])) {
          if (tf32_plan == nullptr) tf32_plan = plan, tf32_workspace = workspace;
          continue;
        }
        plan_ = plan;
        workspace_ = workspace;
        return;
      }
    }
    if (tf32_plan != nullptr) {
      plan_ = tf32_plan;
      workspace_ = tf32_workspace;
      tf32_ = true;
      return;
    }
    throw std::runtime_error(
        "no engine: cuDNN " + std::to_string(cudnnGetVersion()) +
        " built no execution plan for FP32 matmul+bias+LeakyReLU" +
        (tried.empty() ? std::string(" (no candidates)") : " (candidates: " + tried + ")"));
  }

  // True when the engine of `config` carries CUDNN_NUMERICAL_NOTE_TENSOR_CORE: for FP32 data
  // that means TF32 products. An engine whose notes cannot be read counts as exact.
  bool uses_tensor_cores(cudnnBackendDescriptor_t config) {
    cudnnBackendDescriptor_t engine = create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    int64_t got = 0;
    if (cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                 1, &got, &engine) != CUDNN_STATUS_SUCCESS ||
        got != 1)
      return false;
    constexpr int kMaxNotes = CUDNN_NUMERICAL_NOTE_TYPE_COUNT;
    cudnnBackendNumericalNote_t notes[kMaxNotes];
    int64_t count = 0;
    if (cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                 CUDNN_TYPE_NUMERICAL_NOTE, kMaxNotes, &count,
                                 notes) != CUDNN_STATUS_SUCCESS)
      return false;
    for (int64_t i = 0; i < count && i < kMaxNotes; ++i)
      if (notes[i] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE) return true;
    return false;
  }

  cudnnHandle_t handle_;
  std::vector<cudnnBackendDescriptor_t> owned_;
  bool tf32_ = false;  // the only engine found rounds FP32 inputs to TF32
  cudnnBackendDescriptor_t plan_ = nullptr;
  cudnnBackendDescriptor_t pack_ = nullptr;
  int64_t workspace_ = 0;
  std::string error_;
};
#endif  // MNISTGAN_HAVE_CUDNN

// ---- the bench -----------------------------------------------------------------------------

class CudaKernelBench {
 public:
  CudaKernelBench(const BenchOptions& o, BenchReport& report) : o_(o), report_(report) {
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaGetDeviceProperties(&prop_, 0));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    workspace_ = DeviceBuffer(kWorkspaceBytes);
    CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_.get(), kWorkspaceBytes));
    CUBLAS_CHECK(cublasLtCreate(&lt_));
    ctx_.cublas = cublas_;
    ctx_.sm_count = prop_.multiProcessorCount;
    ctx_.cc_major = prop_.major;
    linear_partials_ = DeviceBuffer(kLinearWorkspaceFloats * sizeof(float));
    linear_counters_ = DeviceBuffer(kLinearWorkspaceCounters * sizeof(unsigned));
    linear_ws_.partials = linear_partials_.f();
    linear_ws_.partial_floats = kLinearWorkspaceFloats;
    linear_ws_.counters = static_cast<unsigned*>(linear_counters_.get());
    linear_ws_.counter_count = kLinearWorkspaceCounters;
    linear_ws_.sm_count = prop_.multiProcessorCount;
#if defined(MNISTGAN_HAVE_CUDNN)
    CUDNN_CHECK(cudnnCreate(&cudnn_));
    CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
#endif
    timer_ = std::make_unique<Timer>(stream_, static_cast<size_t>(prop_.l2CacheSize));
  }
  ~CudaKernelBench() {
    timer_.reset();
#if defined(MNISTGAN_HAVE_CUDNN)
    if (cudnn_) (void)cudnnDestroy(cudnn_);
#endif
    if (lt_) (void)cublasLtDestroy(lt_);
    if (cublas_) (void)cublasDestroy(cublas_);
    if (stream_) (void)cudaStreamDestroy(stream_);
  }
  CudaKernelBench(const CudaKernelBench&) = delete;
  CudaKernelBench& operator=(const CudaKernelBench&) = delete;

  void describe_device() {
    int driver = 0, runtime = 0;
    CUDA_CHECK(cudaDriverGetVersion(&driver));
    CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    int cublas_version = 0;
    CUBLAS_CHECK(cublasGetVersion(cublas_, &cublas_version));
    auto version = [](int v) {
      return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
    };
    nlohmann::json& d = report_.device;
    d["name"] = prop_.name;
    d["compute_capability"] = std::to_string(prop_.major) + "." + std::to_string(prop_.minor);
    d["sm_count"] = prop_.multiProcessorCount;
    d["l2_bytes"] = prop_.l2CacheSize;
    d["memory_bytes"] = prop_.totalGlobalMem;
    d["cuda_driver"] = version(driver);
    d["cuda_runtime"] = version(runtime);
    d["cublas"] = cublas_version;
#if defined(MNISTGAN_HAVE_CUDNN)
    d["cudnn"] = cudnnGetVersion();
#else
    d["cudnn"] = "not built (no cudnn.h at configure time)";
#endif
  }

  // A ceiling is the best the device did: the fastest repeat, not the median.
  static double fastest(const std::vector<double>& s) {
    return *std::min_element(s.begin(), s.end());
  }

  void measure_ceilings() {
    BenchCeilings& c = report_.ceilings;
    {
      DeviceBuffer src(kCopyBytes), dst(kCopyBytes);
      const auto s = timer_->time(
          2, 10,
          [&] {
            CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), kCopyBytes, cudaMemcpyDeviceToDevice,
                                       stream_));
          },
          false);
      c.copy_bytes_per_s = 2.0 * kCopyBytes / fastest(s);
      c.copy_how = "cudaMemcpyAsync D2D 1 GiB, read + write, best of 10";
    }
    const int n = kGemmCeilingN;
    const size_t elems = static_cast<size_t>(n) * n;
    DeviceBuffer a(elems * 4), b(elems * 4), y(elems * 4);
    const double flops = 2.0 * n * n * n;
    const float alpha = 1.0f, beta = 0.0f;
    {
      const auto s = timer_->time(
          3, 10,
          [&] {
            CUBLAS_CHECK(cublasSgemm(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.f(), n,
                                     b.f(), n, &beta, y.f(), n));
          },
          false);
      c.sgemm_flops_per_s = flops / fastest(s);
      c.sgemm_how = "cublasSgemm 8192^3 FP32, best of 10";
    }
    if (prop_.major >= 8) {
      const auto s = timer_->time(
          3, 10,
          [&] {
            CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.f(),
                                      CUDA_R_32F, n, b.f(), CUDA_R_32F, n, &beta, y.f(), CUDA_R_32F,
                                      n, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
          },
          false);
      c.tf32_flops_per_s = flops / fastest(s);
      c.tf32_how = "cublasGemmEx 8192^3 CUBLAS_COMPUTE_32F_FAST_TF32, best of 10";
    }
  }

  void measure_kernels(const ModelShape& shape) {
    for (int batch : o_.batches) {
      for (const LayerShape& L : model_layer_shapes(shape, batch))
        linear_rows(L, batch, shape.leaky_slope);
      const size_t g_params = parameter_count(gan_layers(shape), Net::kGenerator);
      const size_t d_params = parameter_count(gan_layers(shape), Net::kDiscriminator);
      if (shape.mbd_kernels > 0) mbd_rows(batch, shape.mbd_kernels, shape.mbd_dims);
      bce_row(batch);
      logit_bce_row(batch, shape);
      adam_row(batch, "G.params", g_params);
      adam_row(batch, "D.params", d_params);
    }
  }

 private:
  // Checks once (check returns "" or why not), then times; the row goes into the report.
  void bench_row(KernelRow row, const std::function<void()>& run,
                 const std::function<std::string(double&)>& check) {
    try {
      run();
      CUDA_CHECK(cudaStreamSynchronize(stream_));
      const std::string why = check(row.max_abs_error);
      row.status = why.empty() ? "ok" : "FAILED: " + why;
      row.seconds = timer_->time(o_.warmup, o_.repeats, run);
    } catch (const std::exception& e) {
      row.status = std::string("FAILED: ") + e.what();
      (void)cudaGetLastError();
    }
    report_.kernels.push_back(std::move(row));
  }

  void linear_rows(const LayerShape& L, int batch, float slope) {
    const size_t nx = static_cast<size_t>(L.rows) * L.in, nw = static_cast<size_t>(L.out) * L.in,
                 ny = static_cast<size_t>(L.rows) * L.out;
    const float w_scale = 1.0f / std::sqrt(static_cast<float>(L.in));
    const std::vector<float> hx = bench_random(nx, 1, -1.0f, 1.0f);
    const std::vector<float> hw = bench_random(nw, 2, -w_scale, w_scale);
    const std::vector<float> hb = bench_random(L.out, 3, -0.1f, 0.1f);
    const std::vector<float> hdz = bench_random(ny, 4, -1.0f, 1.0f);
    const Activation act = static_cast<Activation>(L.act);

    // CPU reference: forward, and the backward of the same layer.
    CpuRef cpu;
    float* cx = cpu.put(hx);
    float* cw = cpu.put(hw);
    float* cb = L.bias ? cpu.put(hb) : nullptr;
    float* cy = cpu.zeros(ny);
    float* cdx = cpu.zeros(nx);
    float* cdw = cpu.zeros(nw);
    float* cdb = L.bias ? cpu.zeros(L.out) : nullptr;
    float* cdz = cpu.put(hdz);
    cpu->linear_forward(cx, cw, cb, cy, L.rows, L.in, L.out, act, slope);
    // The dZ = dz * act'(Y) of v3's fused backward, from the forward's Y.
    cpu->linear_backward(cx, cw, cy, cdz, cdx, cdw, cdb, L.rows, L.in, L.out, act, slope, false);
    const std::vector<float> ref_y = cpu.get(cy, ny), ref_dx = cpu.get(cdx, nx),
                             ref_dw = cpu.get(cdw, nw);
    const std::vector<float> ref_db = L.bias ? cpu.get(cdb, L.out) : std::vector<float>{};
    std::vector<float> ref_act_grad;
    if (act != Activation::kNone) {
      float* cg = cpu.zeros(ny);
      cpu->activation_backward(cy, cdz, cg, ny, act, slope);
      ref_act_grad = cpu.get(cg, ny);
    }

    DeviceBuffer x = upload(hx), w = upload(hw), b = upload(hb), dz = upload(hdz);
    DeviceBuffer y(ny * 4), dx(nx * 4), dw(nw * 4), db(L.out * 4), g(ny * 4);
    const float* bias = L.bias ? b.f() : nullptr;

    KernelRow row;
    row.kernel = "linear_forward";
    row.layer = L.name;
    row.batch = batch;
    row.rows = L.rows, row.in = L.in, row.out = L.out;
    row.work = linear_forward_work(L.rows, L.in, L.out, L.bias);
    auto check_y = [&](bool tf32) {
      return [&, tf32](double& err) {
        return check_op(Op::kLinearForward, download(y.f(), ny), ref_y, "Y", err, L.in, tf32);
      };
    };
    struct Version {
      int number;
      bool tf32;
      const char* name;
    };
    for (const int split : {0, 1}) {
      LinearWorkspace ws = linear_ws_;
      ws.split_k_override = split;
      row.variant = split == 0 ? "v3: grouped split-K SGEMM, epilogue fused [shipped]"
                               : "v3 unsplit";
      bench_row(
          row,
          [&, ws] {
            linear_forward(ws, x.f(), w.f(), bias, y.f(), L.rows, L.in, L.out, act, slope, {}, 1,
                           {}, stream_);
          },
          check_y(false));
    }
    for (const Version& v : {Version{1, false, "v1: cuBLAS SGEMM + bias/act kernel"},
                             Version{2, false, "v2: tiled SIMT, epilogue in registers"},
                             Version{2, true, "v2 tf32: WMMA, epilogue in registers"}}) {
      if (v.tf32 && prop_.major < 8) continue;
      LinearContext ctx = ctx_;
      ctx.tf32 = v.tf32;
      row.variant = v.name;
      row.tf32 = v.tf32;
      bench_row(
          row,
          [&, ctx, v] {
            linear_forward_dev(v.number, ctx, x.f(), w.f(), bias, y.f(), L.rows, L.in, L.out,
                               act, slope, stream_);
          },
          check_y(v.tf32));
    }
    row.tf32 = false;

    // cuBLASLt with the BIAS epilogue, then the activation as its own pass.
    {
      row.variant = std::string("cublasLt") + (L.bias ? " BIAS epilogue" : "") +
                    (act != Activation::kNone ? " + act kernel" : "");
      try {
        LtLinear lt(lt_, L.rows, L.in, L.out, bias);
        if (!lt.found()) {
          row.status = "skipped: cuBLASLt returned no algorithm for this shape";
          report_.kernels.push_back(row);
        } else {
          bench_row(
              row,
              [&] {
                lt.run(x.f(), w.f(), y.f(), workspace_.get(), stream_);
                apply_activation(y.f(), ny, L.act, slope, stream_);
              },
              check_y(false));
        }
      } catch (const std::exception& e) {
        row.status = std::string("FAILED: ") + e.what();
        report_.kernels.push_back(row);
      }
      row.status = "ok";
    }

#if defined(MNISTGAN_HAVE_CUDNN)
    if (act == Activation::kLeakyRelu && L.bias) {
      row.variant = "cuDNN graph matmul+bias+RELU_FWD(0.2)";
      CudnnLinearGraph graph(cudnn_, L.rows, L.in, L.out, slope);
      if (!graph.error().empty()) {
        row.status = "skipped: " + graph.error();
        report_.kernels.push_back(row);
      } else {
        if (graph.tf32()) row.variant += " (TF32 engine: the only one cuDNN offered)";
        try {
          DeviceBuffer ws(static_cast<size_t>(graph.workspace_bytes()));
          graph.bind(x.f(), w.f(), bias, y.f(), ws.get());
          bench_row(
              row, [&] { graph.run(); }, check_y(graph.tf32()));
        } catch (const std::exception& e) {
          row.status = std::string("FAILED: ") + e.what();
          report_.kernels.push_back(row);
        }
      }
      row.status = "ok";
    }
#else
    if (act == Activation::kLeakyRelu && L.bias) {
      row.variant = "cuDNN graph matmul+bias+RELU_FWD(0.2)";
      row.status = "skipped: built without cuDNN (no cudnn.h at configure time)";
      report_.kernels.push_back(row);
      row.status = "ok";
    }
#endif

    // Backward: dX, dW, db of the same layer, dZ = dz * act'(Y) included.
    DeviceBuffer y_ref = upload(ref_y);  // the saved output the backward reads act' from
    auto check_backward = [&](double& err) {
      // dX reduces over out, dW over rows.
      const Op op = Op::kLinearBackward;
      std::string why = check_op(op, download(dx.f(), nx), ref_dx, "dX", err, L.out);
      if (why.empty()) why = check_op(op, download(dw.f(), nw), ref_dw, "dW", err, L.rows);
      if (why.empty() && L.bias)
        why = check_op(op, download(db.f(), L.out), ref_db, "db", err, L.rows);
      return why;
    };
    row.kernel = "linear_backward";
    row.work = linear_backward_work(L.rows, L.in, L.out, L.bias);
    for (const int split : {0, 1}) {
      LinearWorkspace ws = linear_ws_;
      ws.split_k_override = split;
      row.variant = split == 0 ? "v3: one launch, dX + [dW | db], act' on load [shipped]"
                               : "v3 unsplit";
      bench_row(
          row,
          [&, ws] {
            linear_backward(ws, x.f(), w.f(), y_ref.f(), dz.f(), dx.f(), dw.f(),
                            L.bias ? db.f() : nullptr, L.rows, L.in, L.out, act, slope, false, {},
                            1, {}, stream_);
          },
          check_backward);
    }
    row.variant = std::string("cuBLAS SGEMM x2 + column-sum kernel") +
                  (act != Activation::kNone ? " + activation_backward" : "");
    bench_row(
        row,
        [&] {
          const float* d_z = dz.f();
          if (act != Activation::kNone) {
            activation_backward(y_ref.f(), dz.f(), g.f(), ny, act, slope, stream_);
            d_z = g.f();
          }
          linear_backward_cublas(ctx_, x.f(), w.f(), d_z, dx.f(), dw.f(),
                                 L.bias ? db.f() : nullptr, L.rows, L.in, L.out, false, stream_);
        },
        check_backward);

    if (act != Activation::kNone) {
      row.kernel = "activation_backward";
      row.variant = "grid-stride";
      row.in = L.out, row.out = 1;
      row.work = activation_backward_work(ny);
      bench_row(
          row, [&] { activation_backward(y_ref.f(), dz.f(), g.f(), ny, act, slope, stream_); },
          [&](double& err) {
            return check_op(Op::kActivationBackward, download(g.f(), ny), ref_act_grad, "dZ", err);
          });
    }
  }

  void mbd_rows(int batch, int K, int C) {
    const int groups = 2;
    const size_t nm = static_cast<size_t>(groups) * batch * K * C,
                 no = static_cast<size_t>(groups) * batch * K;
    const std::vector<float> hm = bench_random(nm, 5, -2.0f, 2.0f);
    const std::vector<float> hdo = bench_random(no, 6, -1.0f, 1.0f);
    CpuRef cpu;
    float* cm = cpu.put(hm);
    float* cdo = cpu.put(hdo);
    float* co = cpu.zeros(no);
    float* cdm = cpu.zeros(nm);
    cpu->mbd_forward(cm, co, groups, batch, K, C);
    cpu->mbd_backward(cm, cdo, cdm, groups, batch, K, C);
    const std::vector<float> ref_o = cpu.get(co, no), ref_dm = cpu.get(cdm, nm);
    DeviceBuffer m = upload(hm), d_o = upload(hdo), o(no * 4), dm(nm * 4);

    KernelRow row;
    row.layer = "D.mbd";
    row.batch = batch;
    row.rows = groups * batch, row.in = K, row.out = C;
    row.variant = "pair tiles in shared memory";
    row.kernel = "mbd_forward";
    row.work = mbd_forward_work(groups, batch, K, C);
    bench_row(
        row, [&] { mbd_forward(m.f(), o.f(), groups, batch, K, C, 0, 1, {}, stream_); },
        [&](double& err) {
          return check_op(Op::kMbdForward, download(o.f(), no), ref_o, "O", err, batch);
        });
    row.kernel = "mbd_backward";
    row.work = mbd_backward_work(groups, batch, K, C);
    bench_row(
        row, [&] { mbd_backward(m.f(), d_o.f(), dm.f(), groups, batch, K, C, 0, 1, {}, stream_); },
        [&](double& err) {
          return check_op(Op::kMbdBackward, download(dm.f(), nm), ref_dm, "dM", err, batch);
        });
  }

  void bce_row(int batch) {
    const int n = 2 * batch;
    const std::vector<float> hx = bench_random(n, 7, -5.0f, 5.0f);
    CpuRef cpu;
    float* cx = cpu.put(hx);
    float* cdx = cpu.zeros(n);
    float* cstats = cpu.zeros(2);
    cpu->bce_with_logits(cx, n, 1.0f, 1.0f, cdx, cstats);
    const std::vector<float> ref_dx = cpu.get(cdx, n), ref_stats = cpu.get(cstats, 2);
    DeviceBuffer x = upload(hx), dx(n * 4), stats(2 * 4);
    KernelRow row;
    row.kernel = "bce_with_logits";
    row.variant = "one block, fixed-order reduction";
    row.layer = "D.loss";
    row.batch = batch;
    row.rows = n, row.in = 1, row.out = 1;
    row.work = bce_work(n);
    bench_row(
        row, [&] { bce_with_logits(x.f(), n, 1.0f, 1.0f, dx.f(), stats.f(), stream_); },
        [&](double& err) {
          const Op op = Op::kBceWithLogits;
          std::string why = check_op(op, download(dx.f(), n), ref_dx, "dx", err);
          if (why.empty())  // the first call's stats only (timing accumulates more)
            why = check_op(op, download(stats.f(), 2), ref_stats, "stats", err);
          return why;
        });
  }

  // D's logit layer + BCE + its backward in one launch (the D update's: 2 groups of batch rows
  // on [h | o], with weight gradients).
  void logit_bce_row(int batch, const ModelShape& shape) {
    const int groups = 2, rows = groups * batch;
    const int in = shape.hidden_d.back() + shape.mbd_kernels;
    const size_t nx = static_cast<size_t>(rows) * in;
    const std::vector<float> hx = bench_random(nx, 10, -1.0f, 1.0f);
    const std::vector<float> hw = bench_random(in, 11, -0.1f, 0.1f), hb = {0.05f};
    const float targets[2] = {1.0f, 0.0f};
    CpuRef cpu;
    float* cx = cpu.put(hx);
    float* cw = cpu.put(hw);
    float* cb = cpu.put(hb);
    float *clogits = cpu.zeros(rows), *cdl = cpu.zeros(rows), *cdx = cpu.zeros(nx);
    float *cdw = cpu.zeros(in), *cdb = cpu.zeros(1), *cstats = cpu.zeros(4);
    cpu->logit_bce(cx, cw, cb, groups, batch, in, targets, 1.0f, clogits, cdl, cdx, cdw, cdb,
                   cstats);
    const std::vector<float> ref_dx = cpu.get(cdx, nx), ref_dw = cpu.get(cdw, in);
    DeviceBuffer x = upload(hx), w = upload(hw), b = upload(hb), logits(rows * 4), dl(rows * 4),
                 dx(nx * 4), dw(in * 4), db(4), stats(4 * 4);
    KernelRow row;
    row.kernel = "logit_bce";
    row.variant = "one block: logit, BCE per group, stats, dX, dw, db";
    row.layer = "D.out";
    row.batch = batch;
    row.rows = rows, row.in = in, row.out = 1;
    row.work = op_work(Op::kLogitBce, OpShape{batch, in, 1, groups});
    bench_row(
        row,
        [&] {
          logit_bce(x.f(), w.f(), b.f(), groups, batch, in, targets, 1.0f, logits.f(), dl.f(),
                    dx.f(), dw.f(), db.f(), stats.f(), 1, {}, stream_);
        },
        [&](double& err) {
          const Op op = Op::kLogitBce;
          std::string why = check_op(op, download(dx.f(), nx), ref_dx, "dX", err);
          if (why.empty()) why = check_op(op, download(dw.f(), in), ref_dw, "dw", err, rows);
          return why;
        });
  }

  void adam_row(int batch, const std::string& name, size_t n) {
    const std::vector<float> hp = bench_random(n, 8, -0.1f, 0.1f);
    const std::vector<float> hg = bench_random(n, 9, -0.01f, 0.01f);
    CpuRef cpu;
    float* cp = cpu.put(hp);
    float* cg = cpu.put(hg);
    float* cm = cpu.zeros(n);
    float* cv = cpu.zeros(n);
    const AdamHyper hyper;
    cpu->adam_step(cp, cg, cm, cv, n, hyper, cpu.step());
    const std::vector<float> ref_p = cpu.get(cp, n);
    DeviceBuffer p = upload(hp), g = upload(hg), m(n * 4), v(n * 4), step(8), tickets(4);
    KernelRow row;
    row.kernel = "adam";
    row.variant = "one launch, flat buffer, step count folded in";
    row.layer = name;
    row.batch = batch;
    row.rows = static_cast<int>(n), row.in = 1, row.out = 1;
    row.work = adam_work(n);
    bench_row(
        row,
        [&] {
          adam_step(p.f(), g.f(), m.f(), v.f(), n, hyper, static_cast<int64_t*>(step.get()),
                    static_cast<unsigned*>(tickets.get()), stream_);
        },
        [&](double& err) { return check_op(Op::kAdam, download(p.f(), n), ref_p, "params", err); });
  }

  const BenchOptions& o_;
  BenchReport& report_;
  cudaDeviceProp prop_{};
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
#if defined(MNISTGAN_HAVE_CUDNN)
  cudnnHandle_t cudnn_ = nullptr;
#endif
  DeviceBuffer workspace_;
  LinearContext ctx_;
  LinearWorkspace linear_ws_;
  DeviceBuffer linear_partials_, linear_counters_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace

void run_cuda_kernel_bench(const BenchOptions& resolved, const ModelShape& shape,
                           BenchReport& report) {
  CudaKernelBench bench(resolved, report);
  bench.describe_device();
  bench.measure_ceilings();
  bench.measure_kernels(shape);
}

}  // namespace mnistgan
