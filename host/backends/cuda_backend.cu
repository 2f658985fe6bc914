// cuda_backend.cu: the Backend of backend.h on one CUDA device.
//
// Every op is queued on one non-blocking stream owned by the backend. No op synchronises with
// the host; to_host() and synchronize() do. Kernels live in kernels/<op>.cu (no library GEMM:
// the linear layers are kernels/linear.cu's); this file only checks arguments that the
// launchers cannot see and forwards to them, for one model (the kernels' models = 1).
// begin_capture()/end_capture()/replay() record the ops in between as one CUDA graph and
// launch it.
#include <cuda_runtime.h>  // streams, graphs, memory

#include <cstdio>     // std::fprintf
#include <memory>     // std::unique_ptr
#include <stdexcept>  // std::runtime_error, std::invalid_argument, std::logic_error
#include <string>     // std::string, std::to_string

#include "adam.cuh"           // adam_step
#include "bce.cuh"            // bce_with_logits
#include "backends/cuda_backend.h"  // cuda_backend_stream
#include "core/backend.h"     // Backend
#include "cuda_check.cuh"     // CUDA_CHECK
#include "elementwise.cuh"    // activation_backward, concat/split_cols, increment, count_nonfinite
#include "ema.cuh"            // ema_update
#include "gather.cuh"         // gather_batch, gather_labels
#include "linear.cuh"         // linear_forward, linear_backward, LinearWorkspace
#include "logit_bce.cuh"      // logit_bce
#include "mbd.cuh"            // mbd_forward, mbd_backward
#include "noise.cuh"          // gaussian_noise
#include "one_hot.cuh"        // one_hot
#include "random_labels.cuh"  // random_labels
#include "skip_guard.cuh"     // increment_unless, accumulate_unless
#include "softmax_xent.cuh"   // softmax_cross_entropy

namespace mnistgan {
namespace {

std::string version_string(int v) {  // 12080 -> "12.8"
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string error_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

// Why no device can be used, or "" when device `index` can. Never throws, never aborts:
// on a machine without a driver or GPU every call below just returns an error code.
std::string unavailable_reason(int index) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    int driver = 0, runtime = 0;
    (void)cudaDriverGetVersion(&driver);
    (void)cudaRuntimeGetVersion(&runtime);
    if (e == cudaErrorInsufficientDriver) {
      if (driver == 0)
        return "no CUDA driver is installed (cudaGetDeviceCount: " + error_text(e) + ")";
      return "CUDA driver is older than the runtime: the driver supports CUDA " +
             version_string(driver) + ", this build needs " + version_string(runtime) +
             " (cudaGetDeviceCount: " + error_text(e) + "); update the NVIDIA driver";
    }
    if (e == cudaErrorNoDevice)
      return "no CUDA device found (cudaGetDeviceCount: " + error_text(e) + ")";
    return "CUDA is not usable (cudaGetDeviceCount: " + error_text(e) + ")";
  }
  if (count == 0) return "no CUDA device found (cudaGetDeviceCount returned 0)";
  if (index < 0 || index >= count)
    return "CUDA device " + std::to_string(index) + " does not exist (" + std::to_string(count) +
           " device(s) found)";
  cudaError_t s = cudaSetDevice(index);
  if (s != cudaSuccess) {
    (void)cudaGetLastError();
    return "CUDA device " + std::to_string(index) +
           " cannot be used (cudaSetDevice: " + error_text(s) + ")";
  }
  s = kernel_image_error();
  if (s != cudaSuccess) {
    (void)cudaGetLastError();
    cudaDeviceProp prop{};
    (void)cudaGetDeviceProperties(&prop, index);
    return "this build has no kernels for CUDA device " + std::to_string(index) + " (" + prop.name +
           ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
           "): " + error_text(s) +
           "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(prop.major) +
           std::to_string(prop.minor);
  }
  return "";
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    try {
      init();
    } catch (...) {
      release();  // the destructor does not run for a constructor that throws
      throw;
    }
  }

  ~CudaBackend() override { release(); }

  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return name_; }

  // ---- memory ---------------------------------------------------------------------------
  float* alloc_f32(size_t n) override { return static_cast<float*>(alloc(n * 4)); }
  int64_t* alloc_i64(size_t n) override { return static_cast<int64_t*>(alloc(n * 8)); }
  int32_t* alloc_i32(size_t n) override { return static_cast<int32_t*>(alloc(n * 4)); }
  uint8_t* alloc_u8(size_t n) override { return static_cast<uint8_t*>(alloc(n)); }

  // cudaFree waits for work using p. After a device fault every call returns the fault
  // (sticky): the first failure is reported, the error cleared where it can be, and the
  // rest go quietly, so unwinding after the fault ends in the fault's own message.
  void free(void* p) noexcept override {
    if (p == nullptr) return;
    const cudaError_t e = cudaFree(p);
    if (e == cudaSuccess) return;
    (void)cudaGetLastError();
    if (!free_failure_reported_) {
      free_failure_reported_ = true;
      std::fprintf(stderr,
                   "mnistgan: cudaFree failed: %s (%s); later failures to free are not reported\n",
                   cudaGetErrorName(e), cudaGetErrorString(e));
    }
  }

  void to_backend(void* dst, const void* src_host, size_t bytes) override {
    if (bytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, stream_));
    // From pageable memory the call returns once the source has been staged, so the caller
    // may reuse it at once. From pinned memory the copy is truly asynchronous: wait, so
    // the contract is the same whatever memory the caller passed.
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, src_host) == cudaSuccess) {
      if (attributes.type == cudaMemoryTypeHost) CUDA_CHECK(cudaStreamSynchronize(stream_));
    } else {
      (void)cudaGetLastError();
    }
  }

  void to_host(void* dst_host, const void* src, size_t bytes) override {
    if (bytes != 0)
      CUDA_CHECK(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // "waits for all queued work first"
  }

  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0 || dst == src) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  }

  void fill_zero(void* p, size_t bytes) override {
    if (bytes != 0) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
  }

  void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  cudaStream_t stream() const { return stream_; }  // cuda_backend_stream

  // ---- ops: forwarded to the launchers in kernels/ ---------------------------------------
  void linear_forward(const float* X, const float* W, const float* b, float* Y, int rows, int in,
                      int out, Activation act, float slope, RowStrides ld,
                      const Dropout& dropout) override {
    mnistgan::linear_forward(workspace_, X, W, b, Y, rows, in, out, act, slope, ld, 1, {},
                             stream_, dropout);
  }

  void activation_backward(const float* Y, const float* dY, float* dZ, size_t n, Activation act,
                           float slope) override {
    mnistgan::activation_backward(Y, dY, dZ, n, act, slope, stream_);
  }

  void linear_backward(const float* X, const float* W, const float* Y, const float* dY, float* dX,
                       float* dW, float* db, int rows, int in, int out, Activation act,
                       float slope, bool accumulate_dx, RowStrides ld,
                       const Dropout& dropout) override {
    mnistgan::linear_backward(workspace_, X, W, Y, dY, dX, dW, db, rows, in, out, act, slope,
                              accumulate_dx, ld, 1, {}, stream_, dropout);
  }

  void logit_bce(const float* X, const float* w, const float* b, int groups, int B, int in,
                 const float* targets, float grad_scale, float* logits, float* dlogits, float* dX,
                 float* dw, float* db, float* stats) override {
    mnistgan::logit_bce(X, w, b, groups, B, in, targets, grad_scale, logits, dlogits, dX, dw, db,
                        stats, 1, {}, stream_);
  }

  void concat_cols(const float* A, const float* B, float* out, int rows, int a, int b) override {
    mnistgan::concat_cols(A, B, out, rows, a, b, stream_);
  }

  void split_cols(const float* in, float* A, float* B, int rows, int a, int b) override {
    mnistgan::split_cols(in, A, B, rows, a, b, stream_);
  }

  void mbd_forward(const float* M, float* O, int groups, int B, int K, int C, int ldo) override {
    mnistgan::mbd_forward(M, O, groups, B, K, C, ldo, 1, {}, stream_);
  }

  void mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                    int ldo) override {
    mnistgan::mbd_backward(M, dO, dM, groups, B, K, C, ldo, 1, {}, stream_);
  }

  void bce_with_logits(const float* x, int n, float target, float grad_scale, float* dx,
                       float* stats) override {
    mnistgan::bce_with_logits(x, n, target, grad_scale, dx, stats, stream_);
  }

  void softmax_cross_entropy(const float* logits, const int32_t* labels, int rows, int classes,
                             float grad_scale, float* dlogits, float* stats) override {
    mnistgan::softmax_cross_entropy(logits, labels, rows, classes, grad_scale, dlogits, stats,
                                    stream_);
  }

  void adam_step(float* params, const float* grads, float* m, float* v, size_t n,
                 const AdamHyper& hyper, int64_t* step, const float* skip_if_nonzero, float* ema,
                 float ema_decay) override {
    mnistgan::adam_step(params, grads, m, v, n, hyper, step, adam_tickets_, stream_,
                        skip_if_nonzero, ema, ema_decay);
  }

  void ema_update(float* ema, const float* params, size_t n, float decay, const int64_t* updates,
                  const float* skip_if_nonzero) override {
    mnistgan::ema_update(ema, params, n, decay, updates, stream_, skip_if_nonzero);
  }

  void gaussian_noise(float* out, size_t n, uint64_t seed, uint32_t stream,
                      const int64_t* step) override {
    mnistgan::gaussian_noise(out, n, seed, stream, step, stream_);
  }

  void gather_batch(const uint8_t* dataset, const int32_t* perm, int n_images, int pixels, int rows,
                    const int64_t* step, int batches_per_step, int batch_offset,
                    int64_t batches_per_epoch, float* out) override {
    mnistgan::gather_batch(dataset, perm, n_images, pixels, rows, step, batches_per_step,
                           batch_offset, batches_per_epoch, out, stream_);
  }

  void gather_labels(const uint8_t* labels, const int32_t* perm, int n_images, int rows,
                     const int64_t* step, int batches_per_step, int batch_offset,
                     int64_t batches_per_epoch, int32_t* out) override {
    mnistgan::gather_labels(labels, perm, n_images, rows, step, batches_per_step, batch_offset,
                            batches_per_epoch, out, stream_);
  }

  void random_labels(int32_t* out, size_t n, int classes, uint64_t seed, uint32_t stream,
                     const int64_t* step) override {
    mnistgan::random_labels(out, n, classes, seed, stream, step, stream_);
  }

  void one_hot(const int32_t* labels, float* out, int rows, int classes) override {
    mnistgan::one_hot(labels, out, rows, classes, stream_);
  }

  void increment(int64_t* counter, const float* skip_if_nonzero) override {
    if (skip_if_nonzero == nullptr) {
      mnistgan::increment(counter, stream_);
    } else {
      increment_unless(counter, skip_if_nonzero, stream_);
    }
  }

  void accumulate(const float* x, float* acc, size_t n, const float* skip_if_nonzero) override {
    accumulate_unless(x, acc, n, skip_if_nonzero, stream_);
  }

  void count_nonfinite(const float* x, size_t n, float* count) override {
    mnistgan::count_nonfinite(x, n, count, count_scratch_, stream_);
  }

  // ---- graphs ---------------------------------------------------------------------------
  bool begin_capture() override {
    if (capturing_)
      throw std::logic_error("begin_capture: a capture is already open; call end_capture()");
    // Thread-local: only API calls from this thread are checked against the capture.
    CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    capturing_ = true;
    return true;
  }

  void end_capture() override {
    if (!capturing_) throw std::logic_error("end_capture: no capture is open");
    capturing_ = false;
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    size_t nodes = 0;
    const cudaError_t counted = cudaGraphGetNodes(graph, nullptr, &nodes);
    if (counted != cudaSuccess) {
      (void)cudaGraphDestroy(graph);
      CUDA_CHECK(counted);
    }
    captured_nodes_ = static_cast<int64_t>(nodes);
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);  // the executable graph keeps what it needs
    CUDA_CHECK(e);
    if (graph_exec_ != nullptr) CUDA_CHECK(cudaGraphExecDestroy(graph_exec_));
    graph_exec_ = exec;
  }

  int64_t captured_nodes() const override { return captured_nodes_; }

  void replay() override {
    if (graph_exec_ == nullptr)
      throw std::logic_error("replay: nothing captured; call begin_capture() and end_capture()");
    CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream_));
  }

 private:
  void init() {
    CUDA_CHECK(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = std::string("cuda (") + prop.name + ")";
    workspace_.sm_count = prop.multiProcessorCount;

    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc(&count_scratch_, 2 * sizeof(unsigned long long)));
    CUDA_CHECK(cudaMemsetAsync(count_scratch_, 0, 2 * sizeof(unsigned long long), stream_));
    CUDA_CHECK(cudaMalloc(&adam_tickets_, sizeof(unsigned)));
    CUDA_CHECK(cudaMemsetAsync(adam_tickets_, 0, sizeof(unsigned), stream_));
    // The linear kernels' split-K partials and tile tickets (linear.cuh); the tickets start
    // at zero and every launch leaves them so.
    CUDA_CHECK(cudaMalloc(&workspace_.partials, kLinearWorkspaceFloats * sizeof(float)));
    workspace_.partial_floats = kLinearWorkspaceFloats;
    CUDA_CHECK(cudaMalloc(&workspace_.counters, kLinearWorkspaceCounters * sizeof(unsigned)));
    workspace_.counter_count = kLinearWorkspaceCounters;
    CUDA_CHECK(cudaMemsetAsync(workspace_.counters, 0, kLinearWorkspaceCounters * sizeof(unsigned),
                               stream_));
  }

  // Frees everything that init() got. Errors are ignored: this runs from the destructor
  // (which must not throw) and after a failed init (whose error is already on its way).
  void release() noexcept {
    (void)cudaSetDevice(device_);
    if (capturing_) {
      cudaGraph_t graph = nullptr;
      (void)cudaStreamEndCapture(stream_, &graph);
      if (graph != nullptr) (void)cudaGraphDestroy(graph);
      capturing_ = false;
    }
    if (stream_ != nullptr) (void)cudaStreamSynchronize(stream_);
    if (graph_exec_ != nullptr) (void)cudaGraphExecDestroy(graph_exec_);
    if (count_scratch_ != nullptr) (void)cudaFree(count_scratch_);
    if (adam_tickets_ != nullptr) (void)cudaFree(adam_tickets_);
    if (workspace_.partials != nullptr) (void)cudaFree(workspace_.partials);
    if (workspace_.counters != nullptr) (void)cudaFree(workspace_.counters);
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    graph_exec_ = nullptr;
    count_scratch_ = nullptr;
    adam_tickets_ = nullptr;
    workspace_.partials = nullptr;
    workspace_.counters = nullptr;
    stream_ = nullptr;
  }

  // Uninitialised (Backend's contract: owners that need zeros call fill_zero).
  void* alloc(size_t bytes) {
    void* p = nullptr;
    // At least one 256-byte granule so that a zero-size request still returns a unique,
    // freeable pointer (as the CPU backend does).
    CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 256 : bytes));
    return p;
  }

  int device_ = 0;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  unsigned long long* count_scratch_ = nullptr;
  unsigned* adam_tickets_ = nullptr;  // adam_step's ticket counter (adam.cuh), zero between ops
  LinearWorkspace workspace_;
  bool capturing_ = false;
  bool free_failure_reported_ = false;  // free() reports only its first failure
  cudaGraphExec_t graph_exec_ = nullptr;
  int64_t captured_nodes_ = -1;
};

}  // namespace

cudaStream_t cuda_backend_stream(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (cuda == nullptr)
    throw std::invalid_argument("cuda_backend_stream: " + backend.name() +
                                " is not a backend of make_cuda_backend()");
  return cuda->stream();
}

bool cuda_backend_built() { return true; }

std::string cuda_unavailable_reason() { return unavailable_reason(0); }

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  const std::string why = unavailable_reason(device_index);
  if (!why.empty()) throw std::runtime_error(why + "; use --device cpu");
  return std::make_unique<CudaBackend>(device_index);
}

}  // namespace mnistgan
