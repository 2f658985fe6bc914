// bench_cuda.cu: the device half of `mnistgan bench` (see bench.h): ceilings, then every
// case of bench/op_cases.h at the model's layer shapes on the CUDA backend, beside the library
// comparators and the kernels/dev variants.
//
// For each case: the CPU backend runs it for the reference; the CUDA backend runs it on a
// fresh copy of the same inputs (outputs poisoned) and is compared at the op's tolerance
// (core/op_checks.h, the same comparison as the CUDA op tests); a mismatch marks the row
// FAILED (it is still timed, so the table shows both). Then --warmup untimed runs and
// --repeats timed runs, each timed alone with CUDA events on the backend's stream after a
// write of a buffer twice the L2 size, so no repeat finds its inputs left in L2 by the last.
// The shipped row of each op is the backend's own op (host/backends/cuda_backend.cu); every
// comparator runs on its own fresh copy of the case's buffers, on the same stream, and is
// compared the same way. All memory is BackendBuffer on the CUDA backend.
//
// Linear-forward rows at every layer shape:
//   v3        the shipped grouped split-K SGEMM with bias and activation in its epilogue
//             (kernels/linear.cu), with its split chosen from the SM count (the backend's
//             op), and unsplit;
//   v1        cuBLAS SGEMM + the fused bias/activation kernel (kernels/dev/linear_dev.cu): the
//             library GEMM with a separate bias + activation pass;
//   v2        the custom tiled SIMT GEMM with bias and activation in registers (dev);
//   v2 tf32   the WMMA TF32 tensor-core kernel (compute capability 8.0+; dev);
//   cublasLt  cuBLASLt matmul with CUBLASLT_EPILOGUE_BIAS, then a LeakyReLU/tanh pass;
//   cudnn     a cuDNN backend-API graph: matmul -> add bias -> RELU_FWD with lower clip
//             slope 0.2 (LeakyReLU layers only; built when cuDNN headers were found). When
//             cuDNN finds no engine for FP32 the row says "skipped: no engine" instead.
// Linear-backward: v3 (one launch: dX and [dW | db] with act' read from Y on load; the
// backend's op) and unsplit, against cuBLAS SGEMM x2 + the column-sum kernel +
// activation_backward (dev).

#include <cublasLt.h>      // cublasLtMatmul, epilogues
#include <cublas_v2.h>     // cublasSgemm, cublasGemmEx
#include <cuda_runtime.h>  // events, device properties

#include <algorithm>   // std::max, std::min
#include <cstdint>     // int64_t
#include <functional>  // std::function
#include <memory>      // std::unique_ptr
#include <stdexcept>   // std::runtime_error
#include <string>
#include <vector>

#include "backends/cuda_backend.h"  // cuda_backend_stream
#include "bench/bench.h"            // BenchReport, KernelRow, case_row
#include "bench/op_cases.h"         // op_bench_cases, LinearForwardRun, LinearBackwardRun
#include "core/backend.h"           // make_cpu_backend, make_cuda_backend, Activation
#include "core/backend_buffer.h"    // BackendBuffer
#include "core/formulas.h"          // activate
#include "cuda_check.cuh"           // CUDA_CHECK, CUBLAS_CHECK, CUDNN_CHECK
#include "elementwise.cuh"          // activation_backward
#include "linear.cuh"               // linear_forward, linear_backward (v3), LinearWorkspace
#include "linear_dev.cuh"           // (kernels/dev) linear_forward_dev, linear_backward_cublas

namespace mnistgan {
namespace {

// Ceiling sizes: far beyond any cache, big enough to reach steady state.
constexpr size_t kCopyBytes = size_t{1} << 30;  // 1 GiB
constexpr int kGemmCeilingN = 8192;             // 8192^3 GEMM, 1.1 TFLOP
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// ---- timing --------------------------------------------------------------------------------

class Timer {
 public:
  Timer(Backend& gpu, size_t l2_bytes)
      // Twice L2 (at least 64 MiB): writing it evicts everything a repeat could reuse.
      : stream_(cuda_backend_stream(gpu)),
        flush_(gpu, std::max<size_t>(2 * l2_bytes, size_t{64} << 20)) {
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
  BackendBuffer<uint8_t> flush_;
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

// The shipped row's variant text per op (the backend's op).
std::string shipped_variant(Op op) {
  switch (op) {
    case Op::kLinearForward:
      return "v3: grouped split-K SGEMM, epilogue fused [shipped]";
    case Op::kLinearBackward:
      return "v3: one launch, dX + [dW | db], act' on load [shipped]";
    case Op::kActivationBackward:
      return "grid-stride";
    case Op::kMbdForward:
    case Op::kMbdBackward:
      return "pair tiles in shared memory";
    case Op::kBceWithLogits:
      return "one block, fixed-order reduction";
    case Op::kLogitBce:
      return "one block: logit, BCE per group, stats, dX, dw, db";
    case Op::kAdam:
      return "one launch, flat buffer, step count folded in";
    default:
      return "shipped";
  }
}

class CudaKernelBench {
 public:
  CudaKernelBench(const BenchOptions& o, BenchReport& report)
      : o_(o), report_(report), cpu_(make_cpu_backend()), gpu_(make_cuda_backend(0)) {
    stream_ = cuda_backend_stream(*gpu_);
    CUDA_CHECK(cudaGetDeviceProperties(&prop_, 0));
    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    workspace_ = BackendBuffer<uint8_t>(*gpu_, kWorkspaceBytes);
    CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_.get(), kWorkspaceBytes));
    CUBLAS_CHECK(cublasLtCreate(&lt_));
    ctx_.cublas = cublas_;
    ctx_.sm_count = prop_.multiProcessorCount;
    ctx_.cc_major = prop_.major;
    // The unsplit v3 rows' own workspace (the backend keeps its own for its ops); the
    // counters start at zero and every launch leaves them so.
    linear_partials_ = BackendBuffer<float>(*gpu_, kLinearWorkspaceFloats);
    linear_counters_ = BackendBuffer<int32_t>::zeroed(*gpu_, kLinearWorkspaceCounters);
    linear_ws_.partials = linear_partials_.get();
    linear_ws_.partial_floats = kLinearWorkspaceFloats;
    linear_ws_.counters = reinterpret_cast<unsigned*>(linear_counters_.get());
    linear_ws_.counter_count = kLinearWorkspaceCounters;
    linear_ws_.sm_count = prop_.multiProcessorCount;
#if defined(MNISTGAN_HAVE_CUDNN)
    CUDNN_CHECK(cudnnCreate(&cudnn_));
    CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
#endif
    timer_ = std::make_unique<Timer>(*gpu_, static_cast<size_t>(prop_.l2CacheSize));
    gpu_->synchronize();
  }
  ~CudaKernelBench() {
    timer_.reset();
#if defined(MNISTGAN_HAVE_CUDNN)
    if (cudnn_) (void)cudnnDestroy(cudnn_);
#endif
    if (lt_) (void)cublasLtDestroy(lt_);
    if (cublas_) (void)cublasDestroy(cublas_);
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
      auto src = BackendBuffer<uint8_t>::zeroed(*gpu_, kCopyBytes);
      BackendBuffer<uint8_t> dst(*gpu_, kCopyBytes);
      const auto s = timer_->time(
          2, 10, [&] { gpu_->copy(dst.get(), src.get(), kCopyBytes); }, false);
      c.copy_bytes_per_s = 2.0 * kCopyBytes / fastest(s);
      c.copy_how = "cudaMemcpyAsync D2D 1 GiB (the backend's copy), read + write, best of 10";
    }
    const int n = kGemmCeilingN;
    const size_t elems = static_cast<size_t>(n) * n;
    auto a = BackendBuffer<float>::zeroed(*gpu_, elems), b = BackendBuffer<float>::zeroed(*gpu_, elems);
    BackendBuffer<float> y(*gpu_, elems);
    const double flops = 2.0 * n * n * n;
    const float alpha = 1.0f, beta = 0.0f;
    {
      const auto s = timer_->time(
          3, 10,
          [&] {
            CUBLAS_CHECK(cublasSgemm(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.get(),
                                     n, b.get(), n, &beta, y.get(), n));
          },
          false);
      c.sgemm_flops_per_s = flops / fastest(s);
      c.sgemm_how = "cublasSgemm 8192^3 FP32, best of 10";
    }
    if (prop_.major >= 8) {
      const auto s = timer_->time(
          3, 10,
          [&] {
            CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.get(),
                                      CUDA_R_32F, n, b.get(), CUDA_R_32F, n, &beta, y.get(),
                                      CUDA_R_32F, n, CUBLAS_COMPUTE_32F_FAST_TF32,
                                      CUBLAS_GEMM_DEFAULT));
          },
          false);
      c.tf32_flops_per_s = flops / fastest(s);
      c.tf32_how = "cublasGemmEx 8192^3 CUBLAS_COMPUTE_32F_FAST_TF32, best of 10";
    }
  }

  void measure_kernels(const ModelShape& shape) {
    for (int batch : o_.batches)
      for (const OpCase& c : op_bench_cases(shape, batch)) case_rows(c, batch);
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

  // One row of `c` that runs `launch` on a fresh copy of the case's buffers on the CUDA
  // backend, checked against the reference outputs `want` (tf32: at the TF32 tolerance).
  void variant_row(const OpCase& c, KernelRow row, const std::vector<CaseOutput>& want,
                   const std::function<void(CaseRun&)>& launch) {
    try {
      const std::unique_ptr<CaseRun> run = c.make(*gpu_);
      const bool tf32 = row.tf32;
      bench_row(
          std::move(row), [&] { launch(*run); },
          [&](double& err) { return compare_case_outputs(c, run->outputs(), want, &err, tf32); });
    } catch (const std::exception& e) {  // making the buffers failed
      row.status = std::string("FAILED: ") + e.what();
      report_.kernels.push_back(std::move(row));
    }
  }

  // The shipped row (the backend's op), then the op's comparators.
  void case_rows(const OpCase& c, int batch) {
    std::vector<CaseOutput> want;
    {
      const std::unique_ptr<CaseRun> reference = c.make(*cpu_);
      reference->run();
      want = reference->outputs();
    }
    KernelRow row = case_row(c, batch);
    row.variant = shipped_variant(c.op);
    variant_row(c, row, want, [](CaseRun& run) { run.run(); });
    if (c.op == Op::kLinearForward) linear_forward_rows(c, row, want);
    if (c.op == Op::kLinearBackward) linear_backward_rows(c, row, want);
  }

  static LinearForwardRun& as_forward(CaseRun& run) {
    auto* lin = dynamic_cast<LinearForwardRun*>(&run);
    if (lin == nullptr) throw std::logic_error("a linear_forward bench case without its buffers");
    return *lin;
  }
  static LinearBackwardRun& as_backward(CaseRun& run) {
    auto* lin = dynamic_cast<LinearBackwardRun*>(&run);
    if (lin == nullptr) throw std::logic_error("a linear_backward bench case without its buffers");
    return *lin;
  }

  void linear_forward_rows(const OpCase& c, KernelRow row, const std::vector<CaseOutput>& want) {
    {
      row.variant = "v3 unsplit";
      LinearWorkspace ws = linear_ws_;
      ws.split_k_override = 1;
      variant_row(c, row, want, [&, ws](CaseRun& run) {
        LinearForwardRun& L = as_forward(run);
        linear_forward(ws, L.x.get(), L.w.get(), L.bias(), L.y.get(), L.p.rows, L.p.in, L.p.out,
                       L.p.act, L.p.slope, {}, 1, {}, stream_);
      });
    }
    struct Version {
      int number;
      bool tf32;
      const char* name;
    };
    for (const Version& v : {Version{1, false, "v1: cuBLAS SGEMM + bias/act kernel"},
                             Version{2, false, "v2: tiled SIMT, epilogue in registers"},
                             Version{2, true, "v2 tf32: WMMA, epilogue in registers"}}) {
      if (v.tf32 && prop_.major < 8) continue;
      LinearContext ctx = ctx_;
      ctx.tf32 = v.tf32;
      row.variant = v.name;
      row.tf32 = v.tf32;
      variant_row(c, row, want, [&, ctx, v](CaseRun& run) {
        LinearForwardRun& L = as_forward(run);
        linear_forward_dev(v.number, ctx, L.x.get(), L.w.get(), L.bias(), L.y.get(), L.p.rows,
                           L.p.in, L.p.out, L.p.act, L.p.slope, stream_);
      });
    }
    row.tf32 = false;

    const int rows = c.rows, in = c.in, out = c.out;
    // The cuBLASLt row's copy of the buffers (its descriptor holds the bias pointer).
    const std::unique_ptr<CaseRun> lt_run = c.make(*gpu_);
    LinearForwardRun& L = as_forward(*lt_run);
    const LinearParams p = L.p;

    // cuBLASLt with the BIAS epilogue, then the activation as its own pass.
    row.variant = std::string("cublasLt") + (p.bias ? " BIAS epilogue" : "") +
                  (p.act != Activation::kNone ? " + act kernel" : "");
    try {
      LtLinear lt(lt_, rows, in, out, L.bias());
      if (!lt.found()) {
        row.status = "skipped: cuBLASLt returned no algorithm for this shape";
        report_.kernels.push_back(row);
      } else {
        const size_t ny = static_cast<size_t>(rows) * out;
        bench_row(
            row,
            [&] {
              lt.run(L.x.get(), L.w.get(), L.y.get(), workspace_.get(), stream_);
              apply_activation(L.y.get(), ny, static_cast<int>(p.act), p.slope, stream_);
            },
            [&](double& err) { return compare_case_outputs(c, lt_run->outputs(), want, &err); });
      }
    } catch (const std::exception& e) {
      row.status = std::string("FAILED: ") + e.what();
      report_.kernels.push_back(row);
    }
    row.status = "ok";

    if (p.act == Activation::kLeakyRelu && p.bias) {
      row.variant = "cuDNN graph matmul+bias+RELU_FWD(0.2)";
#if defined(MNISTGAN_HAVE_CUDNN)
      CudnnLinearGraph graph(cudnn_, rows, in, out, p.slope);
      if (!graph.error().empty()) {
        row.status = "skipped: " + graph.error();
        report_.kernels.push_back(row);
      } else {
        if (graph.tf32()) row.variant += " (TF32 engine: the only one cuDNN offered)";
        try {
          const std::unique_ptr<CaseRun> cudnn_run = c.make(*gpu_);
          LinearForwardRun& G = as_forward(*cudnn_run);
          BackendBuffer<uint8_t> ws(*gpu_, static_cast<size_t>(graph.workspace_bytes()));
          graph.bind(G.x.get(), G.w.get(), G.bias(), G.y.get(), ws.get());
          const bool tf32 = graph.tf32();
          bench_row(
              row, [&] { graph.run(); },
              [&](double& err) {
                return compare_case_outputs(c, cudnn_run->outputs(), want, &err, tf32);
              });
        } catch (const std::exception& e) {
          row.status = std::string("FAILED: ") + e.what();
          report_.kernels.push_back(row);
        }
      }
#else
      row.status = "skipped: built without cuDNN (no cudnn.h at configure time)";
      report_.kernels.push_back(row);
#endif
    }
  }

  void linear_backward_rows(const OpCase& c, KernelRow row, const std::vector<CaseOutput>& want) {
    {
      row.variant = "v3 unsplit";
      LinearWorkspace ws = linear_ws_;
      ws.split_k_override = 1;
      variant_row(c, row, want, [&, ws](CaseRun& run) {
        LinearBackwardRun& B = as_backward(run);
        const LinearParams& L = B.p.layer;
        linear_backward(ws, B.x.get(), B.w.get(), B.y.get(), B.dy.get(), B.dx.get(), B.dw.get(),
                        B.p.want_db ? B.db.get() : nullptr, L.rows, L.in, L.out, L.act, L.slope,
                        false, {}, 1, {}, stream_);
      });
    }
    // dZ = dY * act'(Y) as its own pass into a scratch buffer, then the two GEMMs and db.
    const std::unique_ptr<CaseRun> run = c.make(*gpu_);
    LinearBackwardRun& B = as_backward(*run);
    const LinearParams& L = B.p.layer;
    BackendBuffer<float> dz(*gpu_, static_cast<size_t>(L.rows) * L.out);
    row.variant = std::string("cuBLAS SGEMM x2 + column-sum kernel") +
                  (L.act != Activation::kNone ? " + activation_backward" : "");
    bench_row(
        row,
        [&] {
          const float* d_z = B.dy.get();
          if (L.act != Activation::kNone) {
            activation_backward(B.y.get(), B.dy.get(), dz.get(), dz.size(), L.act, L.slope,
                                stream_);
            d_z = dz.get();
          }
          linear_backward_cublas(ctx_, B.x.get(), B.w.get(), d_z, B.dx.get(), B.dw.get(),
                                 B.p.want_db ? B.db.get() : nullptr, L.rows, L.in, L.out, false,
                                 stream_);
        },
        [&](double& err) { return compare_case_outputs(c, run->outputs(), want, &err); });
  }

  const BenchOptions& o_;
  BenchReport& report_;
  // The backends first: every buffer below is freed before them.
  std::unique_ptr<Backend> cpu_, gpu_;
  cudaDeviceProp prop_{};
  cudaStream_t stream_ = nullptr;  // the CUDA backend's
  cublasHandle_t cublas_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
#if defined(MNISTGAN_HAVE_CUDNN)
  cudnnHandle_t cudnn_ = nullptr;
#endif
  BackendBuffer<uint8_t> workspace_;
  LinearContext ctx_;
  LinearWorkspace linear_ws_;
  BackendBuffer<float> linear_partials_;
  BackendBuffer<int32_t> linear_counters_;
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
