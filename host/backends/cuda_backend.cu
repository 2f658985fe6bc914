// cuda_backend.cu: the Backend of backend.h on one CUDA device.
//
// Every op is queued on one non-blocking stream owned by the backend. No op synchronises with
// the host; to_host() and synchronize() do. Kernels live in kernels/<op>.cu (no library GEMM:
// the linear layers are kernels/linear.cu's); this file only checks arguments that the
// launchers cannot see and forwards to them, for one model (the kernels' models = 1).
// begin_capture()/end_capture()/replay() record the ops in between as one CUDA graph and
// launch it.
#include <cuda_runtime.h>  // streams, graphs, memory

#include <cstdint>    // uintptr_t
#include <cstdio>     // std::fprintf
#include <map>        // std::map
#include <memory>     // std::unique_ptr
#include <stdexcept>  // std::runtime_error, std::invalid_argument, std::logic_error
#include <string>     // std::string, std::to_string
#include <utility>    // std::move
#include <variant>    // std::visit, std::get
#include <vector>

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

// The most models one launch takes (the kernels' grid dimension for the model index).
constexpr int kMaxModels = 65535;

// Lock-step runs' pointers: run r's is p(0) + r * stride elements (stride 0: one buffer they all
// read). False when there is no such stride, or when some are null and some not. Outputs must
// not share a buffer (writable: stride 0 refused).
template <class T, class Get>
bool model_stride(size_t models, Get get, long long& stride, bool writable = false) {
  const uintptr_t p0 = reinterpret_cast<uintptr_t>(get(0));
  const uintptr_t p1 = reinterpret_cast<uintptr_t>(get(1));
  if ((p0 == 0) != (p1 == 0)) return false;
  const intptr_t bytes = static_cast<intptr_t>(p1 - p0);
  if (bytes % static_cast<intptr_t>(sizeof(T)) != 0) return false;
  if (p0 != 0 && writable && bytes == 0) return false;
  for (size_t r = 2; r < models; ++r) {
    const uintptr_t pr = reinterpret_cast<uintptr_t>(get(r));
    if (p0 == 0 ? pr != 0 : static_cast<intptr_t>(pr - p0) != static_cast<intptr_t>(r) * bytes)
      return false;
  }
  stride = p0 == 0 ? 0 : bytes / static_cast<intptr_t>(sizeof(T));
  return true;
}

bool same_hyper(const AdamHyper& a, const AdamHyper& b) {
  return a.lr == b.lr && a.beta1 == b.beta1 && a.beta2 == b.beta2 && a.eps == b.eps &&
         a.lr_decay_updates == b.lr_decay_updates;
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

  // ---- lock-step runs: one model-indexed launch per op where the kernels have a model index,
  // the runs' buffers lie a constant stride apart and their scalars are equal; otherwise each
  // run's op in turn (Backend's default) ----------------------------------------------------
  void run_models(const std::vector<const RecordedOp*>& ops) override {
    if (ops.size() < 2 || ops.size() > static_cast<size_t>(kMaxModels) ||
        !std::visit([&](const auto& first) { return issue_batched(first, ops); }, *ops.front()))
      Backend::run_models(ops);
  }

  bool runs_models_together() const override { return true; }

  // ---- graphs ---------------------------------------------------------------------------
  bool begin_capture() override {
    if (capturing_)
      throw std::logic_error("begin_capture: a capture is already open; call end_capture()");
    // Thread-local: only API calls from this thread are checked against the capture.
    CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    capturing_ = true;
    return true;
  }

  int end_capture() override {
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
    latest_graph_ = next_graph_id_++;
    graphs_[latest_graph_] = exec;
    return latest_graph_;
  }

  int64_t captured_nodes() const override { return captured_nodes_; }

  void replay() override { replay(latest_graph_); }

  void replay(int graph) override {
    const auto found = graphs_.find(graph);
    if (found == graphs_.end())
      throw std::logic_error("replay: no graph " + std::to_string(graph) +
                             "; call begin_capture() and end_capture()");
    CUDA_CHECK(cudaGraphLaunch(found->second, stream_));
  }

  void release_graph(int graph) noexcept override {
    const auto found = graphs_.find(graph);
    if (found == graphs_.end()) return;
    (void)cudaGraphExecDestroy(found->second);  // waits for its launches, as cudaFree
    graphs_.erase(found);
    if (latest_graph_ == graph) latest_graph_ = -1;
  }

 private:
  // Op kinds without a model-indexed kernel: never batched.
  template <class Op>
  bool issue_batched(const Op&, const std::vector<const RecordedOp*>&) {
    return false;
  }

  // The runs' dropout of one linear op: all off, or the same p and stream with each run's own
  // step counter (a constant stride apart: ms.drop_step) and seed (dropout_seeds, a device
  // array, when the seeds differ). False when one launch cannot serve them.
  template <class Get>
  bool batched_dropout(size_t n, Get dropout_of, ModelStrides& ms, const uint64_t*& dropout_seeds) {
    const Dropout& first = dropout_of(0);
    bool same_seed = true;
    for (size_t r = 0; r < n; ++r) {
      const Dropout& d = dropout_of(r);
      if (d.on() != first.on()) return false;
      if (!first.on()) continue;
      if (d.p != first.p || d.stream != first.stream) return false;
      same_seed = same_seed && d.seed == first.seed;
    }
    if (!first.on()) return true;
    if (!model_stride<int64_t>(n, [&](size_t r) { return dropout_of(r).step; }, ms.drop_step))
      return false;
    if (same_seed) return true;
    std::vector<uint64_t> seeds(n);
    for (size_t r = 0; r < n; ++r) seeds[r] = dropout_of(r).seed;
    dropout_seeds = static_cast<const uint64_t*>(constants(seeds.data(), n * sizeof(uint64_t)));
    return dropout_seeds != nullptr;
  }

  bool issue_batched(const op::LinearForward& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::LinearForward& {
      return std::get<op::LinearForward>(*ops[r]);
    };
    for (size_t r = 0; r < n; ++r) {
      const op::LinearForward& q = at(r);
      if (q.rows != o.rows || q.in != o.in || q.out != o.out || q.act != o.act ||
          q.slope != o.slope || q.ld.x != o.ld.x || q.ld.y != o.ld.y)
        return false;
    }
    ModelStrides ms;
    const uint64_t* dropout_seeds = nullptr;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).X; }, ms.x) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).W; }, ms.w) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).b; }, ms.b) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).Y; }, ms.y, true) ||
        !batched_dropout(n, [&](size_t r) -> const Dropout& { return at(r).dropout; }, ms,
                         dropout_seeds))
      return false;
    mnistgan::linear_forward(workspace_, o.X, o.W, o.b, o.Y, o.rows, o.in, o.out, o.act, o.slope,
                             o.ld, static_cast<int>(n), ms, stream_, o.dropout, dropout_seeds);
    return true;
  }

  bool issue_batched(const op::LinearBackward& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::LinearBackward& {
      return std::get<op::LinearBackward>(*ops[r]);
    };
    for (size_t r = 0; r < n; ++r) {
      const op::LinearBackward& q = at(r);
      if (q.rows != o.rows || q.in != o.in || q.out != o.out || q.act != o.act ||
          q.slope != o.slope || q.accumulate_dx != o.accumulate_dx || q.ld.x != o.ld.x ||
          q.ld.y != o.ld.y)
        return false;
    }
    ModelStrides ms;
    const uint64_t* dropout_seeds = nullptr;
    if (!batched_dropout(n, [&](size_t r) -> const Dropout& { return at(r).dropout; }, ms,
                         dropout_seeds) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).X; }, ms.x) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).W; }, ms.w) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).Y; }, ms.y) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dY; }, ms.dy) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dX; }, ms.dx, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dW; }, ms.dw, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).db; }, ms.db, true))
      return false;
    mnistgan::linear_backward(workspace_, o.X, o.W, o.Y, o.dY, o.dX, o.dW, o.db, o.rows, o.in,
                              o.out, o.act, o.slope, o.accumulate_dx, o.ld, static_cast<int>(n),
                              ms, stream_, o.dropout, dropout_seeds);
    return true;
  }

  bool issue_batched(const op::MbdForward& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::MbdForward& { return std::get<op::MbdForward>(*ops[r]); };
    for (size_t r = 0; r < n; ++r) {
      const op::MbdForward& q = at(r);
      if (q.groups != o.groups || q.B != o.B || q.K != o.K || q.C != o.C || q.ldo != o.ldo)
        return false;
    }
    MbdModelStrides ms;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).M; }, ms.m) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).O; }, ms.o, true))
      return false;
    mnistgan::mbd_forward(o.M, o.O, o.groups, o.B, o.K, o.C, o.ldo, static_cast<int>(n), ms,
                          stream_);
    return true;
  }

  bool issue_batched(const op::MbdBackward& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::MbdBackward& {
      return std::get<op::MbdBackward>(*ops[r]);
    };
    for (size_t r = 0; r < n; ++r) {
      const op::MbdBackward& q = at(r);
      if (q.groups != o.groups || q.B != o.B || q.K != o.K || q.C != o.C || q.ldo != o.ldo)
        return false;
    }
    MbdModelStrides ms;  // the backward kernel reads dO at stride ms.o
    if (!model_stride<float>(n, [&](size_t r) { return at(r).M; }, ms.m) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dO; }, ms.o) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dM; }, ms.dm, true))
      return false;
    mnistgan::mbd_backward(o.M, o.dO, o.dM, o.groups, o.B, o.K, o.C, o.ldo, static_cast<int>(n),
                           ms, stream_);
    return true;
  }

  bool issue_batched(const op::LogitBce& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::LogitBce& { return std::get<op::LogitBce>(*ops[r]); };
    bool same_targets = true;
    for (size_t r = 0; r < n; ++r) {
      const op::LogitBce& q = at(r);
      if (q.groups != o.groups || q.B != o.B || q.in != o.in || q.grad_scale != o.grad_scale ||
          q.targets.size() != o.targets.size())
        return false;
      same_targets = same_targets && q.targets == o.targets;
    }
    LogitBceModelStrides ms;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).X; }, ms.x) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).w; }, ms.w) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).b; }, ms.b) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).logits; }, ms.logits, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dlogits; }, ms.dlogits, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dX; }, ms.dx, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).dw; }, ms.dw, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).db; }, ms.db, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).stats; }, ms.stats, true))
      return false;
    const float* targets = nullptr;  // each run's own (a --real-label sweep), when they differ
    if (!same_targets) {
      std::vector<float> all;
      for (size_t r = 0; r < n; ++r) all.insert(all.end(), at(r).targets.begin(), at(r).targets.end());
      targets = static_cast<const float*>(constants(all.data(), all.size() * sizeof(float)));
      if (targets == nullptr) return false;
    }
    mnistgan::logit_bce(o.X, o.w, o.b, o.groups, o.B, o.in, o.targets.data(), o.grad_scale,
                        o.logits, o.dlogits, o.dX, o.dw, o.db, o.stats, static_cast<int>(n), ms,
                        stream_, targets);
    return true;
  }

  bool issue_batched(const op::AdamStep& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::AdamStep& { return std::get<op::AdamStep>(*ops[r]); };
    bool same = true;
    for (size_t r = 0; r < n; ++r) {
      const op::AdamStep& q = at(r);
      if (q.n != o.n) return false;
      same = same && same_hyper(q.hyper, o.hyper) && q.ema_decay == o.ema_decay;
    }
    AdamModelStrides ms;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).params; }, ms.params, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).grads; }, ms.grads) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).m; }, ms.m, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).v; }, ms.v, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).ema; }, ms.ema, true) ||
        !model_stride<int64_t>(n, [&](size_t r) { return at(r).step; }, ms.step, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).skip_if_nonzero; }, ms.skip))
      return false;
    // Runs with their own learning rates, betas or EMA decay read them from device arrays.
    const AdamHyper* hypers = nullptr;
    const float* ema_decays = nullptr;
    if (!same) {
      std::vector<AdamHyper> h(n);
      std::vector<float> d(n);
      for (size_t r = 0; r < n; ++r) {
        h[r] = at(r).hyper;
        d[r] = at(r).ema_decay;
        if (at(r).ema != nullptr && !(d[r] >= 0.0f && d[r] < 1.0f))
          throw std::invalid_argument("adam_step: EMA decay " + std::to_string(d[r]) +
                                      " is outside [0, 1)");
      }
      hypers = static_cast<const AdamHyper*>(constants(h.data(), n * sizeof(AdamHyper)));
      ema_decays = static_cast<const float*>(constants(d.data(), n * sizeof(float)));
      if (hypers == nullptr || ema_decays == nullptr) return false;
    }
    mnistgan::adam_step(o.params, o.grads, o.m, o.v, o.n, o.hyper, o.step, adam_tickets_, stream_,
                        o.skip_if_nonzero, o.ema, o.ema_decay, static_cast<int>(n), ms, hypers,
                        ema_decays);
    return true;
  }

  bool issue_batched(const op::GaussianNoise& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::GaussianNoise& {
      return std::get<op::GaussianNoise>(*ops[r]);
    };
    bool same_seed = true;
    for (size_t r = 0; r < n; ++r) {
      if (at(r).n != o.n || at(r).stream != o.stream) return false;
      same_seed = same_seed && at(r).seed == o.seed;
    }
    NoiseModelStrides ms;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).out; }, ms.out, true) ||
        !model_stride<int64_t>(n, [&](size_t r) { return at(r).step; }, ms.step))
      return false;
    const uint64_t* seeds = nullptr;
    if (!same_seed) {
      std::vector<uint64_t> all(n);
      for (size_t r = 0; r < n; ++r) all[r] = at(r).seed;
      seeds = static_cast<const uint64_t*>(constants(all.data(), n * sizeof(uint64_t)));
      if (seeds == nullptr) return false;
    }
    mnistgan::gaussian_noise(o.out, o.n, o.seed, o.stream, o.step, stream_, static_cast<int>(n),
                             ms, seeds);
    return true;
  }

  bool issue_batched(const op::GatherBatch& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::GatherBatch& {
      return std::get<op::GatherBatch>(*ops[r]);
    };
    for (size_t r = 0; r < n; ++r) {
      const op::GatherBatch& q = at(r);
      if (q.n_images != o.n_images || q.pixels != o.pixels || q.rows != o.rows ||
          q.batches_per_step != o.batches_per_step || q.batch_offset != o.batch_offset ||
          q.batches_per_epoch != o.batches_per_epoch)
        return false;
    }
    GatherModelStrides ms;
    if (!model_stride<uint8_t>(n, [&](size_t r) { return at(r).dataset; }, ms.dataset) ||
        !model_stride<int32_t>(n, [&](size_t r) { return at(r).perm; }, ms.perm) ||
        !model_stride<int64_t>(n, [&](size_t r) { return at(r).step; }, ms.step) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).out; }, ms.out, true))
      return false;
    mnistgan::gather_batch(o.dataset, o.perm, o.n_images, o.pixels, o.rows, o.step,
                           o.batches_per_step, o.batch_offset, o.batches_per_epoch, o.out, stream_,
                           static_cast<int>(n), ms);
    return true;
  }

  bool issue_batched(const op::Increment& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::Increment& { return std::get<op::Increment>(*ops[r]); };
    long long stride = 0, skip_stride = 0;
    if (!model_stride<int64_t>(n, [&](size_t r) { return at(r).counter; }, stride, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).skip_if_nonzero; }, skip_stride))
      return false;
    if (o.skip_if_nonzero == nullptr) {
      mnistgan::increment(o.counter, stream_, static_cast<int>(n), stride);
    } else {
      increment_unless(o.counter, o.skip_if_nonzero, stream_, static_cast<int>(n), stride,
                       skip_stride);
    }
    return true;
  }

  bool issue_batched(const op::Accumulate& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::Accumulate& { return std::get<op::Accumulate>(*ops[r]); };
    for (size_t r = 0; r < n; ++r)
      if (at(r).n != o.n) return false;
    long long x = 0, acc = 0, skip = 0;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).x; }, x) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).acc; }, acc, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).skip_if_nonzero; }, skip))
      return false;
    accumulate_unless(o.x, o.acc, o.n, o.skip_if_nonzero, stream_, static_cast<int>(n), x, acc,
                      skip);
    return true;
  }

  bool issue_batched(const op::GatherLabels& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::GatherLabels& {
      return std::get<op::GatherLabels>(*ops[r]);
    };
    for (size_t r = 0; r < n; ++r) {
      const op::GatherLabels& q = at(r);
      if (q.n_images != o.n_images || q.rows != o.rows ||
          q.batches_per_step != o.batches_per_step || q.batch_offset != o.batch_offset ||
          q.batches_per_epoch != o.batches_per_epoch)
        return false;
    }
    GatherModelStrides ms;  // dataset: the labels' stride
    if (!model_stride<uint8_t>(n, [&](size_t r) { return at(r).labels; }, ms.dataset) ||
        !model_stride<int32_t>(n, [&](size_t r) { return at(r).perm; }, ms.perm) ||
        !model_stride<int64_t>(n, [&](size_t r) { return at(r).step; }, ms.step) ||
        !model_stride<int32_t>(n, [&](size_t r) { return at(r).out; }, ms.out, true))
      return false;
    mnistgan::gather_labels(o.labels, o.perm, o.n_images, o.rows, o.step, o.batches_per_step,
                            o.batch_offset, o.batches_per_epoch, o.out, stream_,
                            static_cast<int>(n), ms);
    return true;
  }

  bool issue_batched(const op::RandomLabels& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::RandomLabels& {
      return std::get<op::RandomLabels>(*ops[r]);
    };
    bool same_seed = true;
    for (size_t r = 0; r < n; ++r) {
      if (at(r).n != o.n || at(r).classes != o.classes || at(r).stream != o.stream) return false;
      same_seed = same_seed && at(r).seed == o.seed;
    }
    long long out = 0, step = 0;
    if (!model_stride<int32_t>(n, [&](size_t r) { return at(r).out; }, out, true) ||
        !model_stride<int64_t>(n, [&](size_t r) { return at(r).step; }, step))
      return false;
    const uint64_t* seeds = nullptr;
    if (!same_seed) {
      std::vector<uint64_t> all(n);
      for (size_t r = 0; r < n; ++r) all[r] = at(r).seed;
      seeds = static_cast<const uint64_t*>(constants(all.data(), n * sizeof(uint64_t)));
      if (seeds == nullptr) return false;
    }
    mnistgan::random_labels(o.out, o.n, o.classes, o.seed, o.stream, o.step, stream_,
                            static_cast<int>(n), out, step, seeds);
    return true;
  }

  bool issue_batched(const op::OneHot& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::OneHot& { return std::get<op::OneHot>(*ops[r]); };
    for (size_t r = 0; r < n; ++r)
      if (at(r).rows != o.rows || at(r).classes != o.classes) return false;
    long long labels = 0, out = 0;
    if (!model_stride<int32_t>(n, [&](size_t r) { return at(r).labels; }, labels) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).out; }, out, true))
      return false;
    mnistgan::one_hot(o.labels, o.out, o.rows, o.classes, stream_, static_cast<int>(n), labels,
                      out);
    return true;
  }

  bool issue_batched(const op::ConcatCols& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::ConcatCols& { return std::get<op::ConcatCols>(*ops[r]); };
    for (size_t r = 0; r < n; ++r)
      if (at(r).rows != o.rows || at(r).a != o.a || at(r).b != o.b) return false;
    ColsModelStrides ms;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).A; }, ms.a) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).B; }, ms.b) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).out; }, ms.whole, true))
      return false;
    mnistgan::concat_cols(o.A, o.B, o.out, o.rows, o.a, o.b, stream_, static_cast<int>(n), ms);
    return true;
  }

  bool issue_batched(const op::SplitCols& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::SplitCols& { return std::get<op::SplitCols>(*ops[r]); };
    for (size_t r = 0; r < n; ++r)
      if (at(r).rows != o.rows || at(r).a != o.a || at(r).b != o.b) return false;
    ColsModelStrides ms;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).in; }, ms.whole) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).A; }, ms.a, true) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).B; }, ms.b, true))
      return false;
    mnistgan::split_cols(o.in, o.A, o.B, o.rows, o.a, o.b, stream_, static_cast<int>(n), ms);
    return true;
  }

  bool issue_batched(const op::FillZero& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::FillZero& { return std::get<op::FillZero>(*ops[r]); };
    for (size_t r = 0; r < n; ++r)
      if (at(r).bytes != o.bytes) return false;
    long long stride = 0;
    if (!model_stride<uint8_t>(n, [&](size_t r) { return static_cast<uint8_t*>(at(r).p); }, stride,
                               true))
      return false;
    fill_zero_models(o.p, o.bytes, static_cast<int>(n), stride, stream_);
    return true;
  }

  bool issue_batched(const op::CountNonfinite& o, const std::vector<const RecordedOp*>& ops) {
    const size_t n = ops.size();
    auto at = [&](size_t r) -> const op::CountNonfinite& {
      return std::get<op::CountNonfinite>(*ops[r]);
    };
    for (size_t r = 0; r < n; ++r)
      if (at(r).n != o.n) return false;
    long long x = 0, count = 0;
    if (!model_stride<float>(n, [&](size_t r) { return at(r).x; }, x) ||
        !model_stride<float>(n, [&](size_t r) { return at(r).count; }, count, true))
      return false;
    mnistgan::count_nonfinite(o.x, o.n, o.count, count_scratch_, stream_, static_cast<int>(n), x,
                              count);
    return true;
  }

  // A device copy of `bytes` host bytes (lock-step runs' own scalars, read by the model-indexed
  // kernels), made once per content and kept for the backend's life. nullptr when the content
  // is new while a capture is open (an upload cannot be captured; the caller then issues the op
  // run by run). LockStepper steps eagerly before each capture, so the copies exist by then.
  const void* constants(const void* host, size_t bytes) {
    std::string key(static_cast<const char*>(host), bytes);
    const auto found = constants_.find(key);
    if (found != constants_.end()) return found->second;
    if (capturing_) return nullptr;
    void* device = nullptr;
    CUDA_CHECK(cudaMalloc(&device, bytes));
    const auto inserted = constants_.emplace(std::move(key), device).first;
    // From the map's own bytes, which live as long as the copy.
    CUDA_CHECK(cudaMemcpyAsync(device, inserted->first.data(), bytes, cudaMemcpyHostToDevice,
                               stream_));
    return device;
  }

  void init() {
    CUDA_CHECK(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = std::string("cuda (") + prop.name + ")";
    workspace_.sm_count = prop.multiProcessorCount;

    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // count_nonfinite's scratch pair per model (elementwise.cuh), zero between launches.
    const size_t scratch_bytes = 2 * sizeof(unsigned long long) * kMaxModels;
    CUDA_CHECK(cudaMalloc(&count_scratch_, scratch_bytes));
    CUDA_CHECK(cudaMemsetAsync(count_scratch_, 0, scratch_bytes, stream_));
    CUDA_CHECK(cudaMalloc(&adam_tickets_, kMaxModels * sizeof(unsigned)));
    CUDA_CHECK(cudaMemsetAsync(adam_tickets_, 0, kMaxModels * sizeof(unsigned), stream_));
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
    for (auto& entry : graphs_) (void)cudaGraphExecDestroy(entry.second);
    graphs_.clear();
    for (auto& entry : constants_) (void)cudaFree(entry.second);
    constants_.clear();
    if (count_scratch_ != nullptr) (void)cudaFree(count_scratch_);
    if (adam_tickets_ != nullptr) (void)cudaFree(adam_tickets_);
    if (workspace_.partials != nullptr) (void)cudaFree(workspace_.partials);
    if (workspace_.counters != nullptr) (void)cudaFree(workspace_.counters);
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
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
  unsigned* adam_tickets_ = nullptr;  // adam_step's tickets (adam.cuh), one per model, zero between ops
  LinearWorkspace workspace_;
  bool capturing_ = false;
  bool free_failure_reported_ = false;  // free() reports only its first failure
  std::map<int, cudaGraphExec_t> graphs_;  // end_capture()'s, by id, until release_graph
  std::map<std::string, void*> constants_;  // constants(): device copies by their bytes
  int next_graph_id_ = 0, latest_graph_ = -1;
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
