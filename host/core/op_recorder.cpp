// op_recorder.cpp: see op_recorder.h.
#include "core/op_recorder.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace mnistgan {

void* OpRecorder::from_slab(size_t bytes) {
  constexpr size_t kAlign = 256;
  if (slab_ == nullptr) return nullptr;
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  slab_->requested += rounded;
  if (rounded > slab_->size - slab_->used) return nullptr;
  void* p = slab_->base + slab_->used;
  slab_->used += rounded;
  return p;
}

float* OpRecorder::alloc_f32(size_t n) {
  void* p = from_slab(n * sizeof(float));
  return p != nullptr ? static_cast<float*>(p) : target_.alloc_f32(n);
}

int64_t* OpRecorder::alloc_i64(size_t n) {
  void* p = from_slab(n * sizeof(int64_t));
  return p != nullptr ? static_cast<int64_t*>(p) : target_.alloc_i64(n);
}

int32_t* OpRecorder::alloc_i32(size_t n) {
  void* p = from_slab(n * sizeof(int32_t));
  return p != nullptr ? static_cast<int32_t*>(p) : target_.alloc_i32(n);
}

uint8_t* OpRecorder::alloc_u8(size_t n) {
  void* p = from_slab(n);
  return p != nullptr ? static_cast<uint8_t*>(p) : target_.alloc_u8(n);
}

void OpRecorder::free(void* p) {
  const auto* byte = static_cast<const uint8_t*>(p);
  if (slab_ != nullptr && byte >= slab_->base && byte < slab_->base + slab_->size) return;
  target_.free(p);
}

void OpRecorder::begin_recording() {
  if (recording_) throw std::logic_error("OpRecorder: a recording is already open");
  recording_ = true;
  ops_.clear();
}

std::vector<RecordedOp> OpRecorder::take_recording() {
  if (!recording_) throw std::logic_error("OpRecorder: take_recording without begin_recording");
  recording_ = false;
  return std::exchange(ops_, {});
}

void OpRecorder::queue(RecordedOp op) {
  if (recording_) {
    ops_.push_back(std::move(op));
  } else {
    issue_recorded_op(target_, op);
  }
}

void OpRecorder::refuse_while_recording(const char* what) const {
  if (recording_)
    throw std::logic_error(std::string("OpRecorder: ") + what +
                           " inside a recorded step (a step's ops never read back or capture)");
}

void OpRecorder::to_backend(void* dst, const void* src_host, size_t bytes) {
  if (!recording_) {
    target_.to_backend(dst, src_host, bytes);
    return;
  }
  const auto* first = static_cast<const uint8_t*>(src_host);
  ops_.push_back(op::ToBackend{dst, std::vector<uint8_t>(first, first + bytes)});
}

void OpRecorder::to_host(void* dst_host, const void* src, size_t bytes) {
  refuse_while_recording("to_host");
  target_.to_host(dst_host, src, bytes);
}

void OpRecorder::synchronize() {
  refuse_while_recording("synchronize");
  target_.synchronize();
}

bool OpRecorder::begin_capture() {
  refuse_while_recording("begin_capture");
  return target_.begin_capture();
}

int OpRecorder::end_capture() {
  refuse_while_recording("end_capture");
  return target_.end_capture();
}

void OpRecorder::replay() {
  refuse_while_recording("replay");
  target_.replay();
}

void OpRecorder::replay(int graph) {
  refuse_while_recording("replay");
  target_.replay(graph);
}

void OpRecorder::run_models(const std::vector<const RecordedOp*>& ops) {
  refuse_while_recording("run_models");
  target_.run_models(ops);
}

void OpRecorder::copy(void* dst, const void* src, size_t bytes) {
  queue(op::Copy{dst, src, bytes});
}

void OpRecorder::fill_zero(void* p, size_t bytes) { queue(op::FillZero{p, bytes}); }

void OpRecorder::linear_forward(const float* X, const float* W, const float* b, float* Y, int rows,
                                int in, int out, Activation act, float slope, RowStrides ld,
                                const Dropout& dropout) {
  queue(op::LinearForward{X, W, b, Y, rows, in, out, act, slope, ld, dropout});
}

void OpRecorder::activation_backward(const float* Y, const float* dY, float* dZ, size_t n,
                                     Activation act, float slope) {
  queue(op::ActivationBackward{Y, dY, dZ, n, act, slope});
}

void OpRecorder::linear_backward(const float* X, const float* W, const float* Y, const float* dY,
                                 float* dX, float* dW, float* db, int rows, int in, int out,
                                 Activation act, float slope, bool accumulate_dx, RowStrides ld,
                                 const Dropout& dropout) {
  queue(op::LinearBackward{X, W, Y, dY, dX, dW, db, rows, in, out, act, slope, accumulate_dx, ld,
                           dropout});
}

void OpRecorder::logit_bce(const float* X, const float* w, const float* b, int groups, int B,
                           int in, const float* targets, float grad_scale, float* logits,
                           float* dlogits, float* dX, float* dw, float* db, float* stats) {
  std::vector<float> target_copy;
  if (targets != nullptr && groups > 0) target_copy.assign(targets, targets + groups);
  queue(op::LogitBce{X, w, b, groups, B, in, std::move(target_copy), grad_scale, logits, dlogits,
                     dX, dw, db, stats});
}

void OpRecorder::concat_cols(const float* A, const float* B, float* out, int rows, int a, int b) {
  queue(op::ConcatCols{A, B, out, rows, a, b});
}

void OpRecorder::split_cols(const float* in, float* A, float* B, int rows, int a, int b) {
  queue(op::SplitCols{in, A, B, rows, a, b});
}

void OpRecorder::mbd_forward(const float* M, float* O, int groups, int B, int K, int C, int ldo) {
  queue(op::MbdForward{M, O, groups, B, K, C, ldo});
}

void OpRecorder::mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K,
                              int C, int ldo) {
  queue(op::MbdBackward{M, dO, dM, groups, B, K, C, ldo});
}

void OpRecorder::bce_with_logits(const float* x, int n, float target, float grad_scale, float* dx,
                                 float* stats) {
  queue(op::BceWithLogits{x, n, target, grad_scale, dx, stats});
}

void OpRecorder::softmax_cross_entropy(const float* logits, const int32_t* labels, int rows,
                                       int classes, float grad_scale, float* dlogits,
                                       float* stats) {
  queue(op::SoftmaxCrossEntropy{logits, labels, rows, classes, grad_scale, dlogits, stats});
}

void OpRecorder::adam_step(float* params, const float* grads, float* m, float* v, size_t n,
                           const AdamHyper& hyper, int64_t* step, const float* skip_if_nonzero,
                           float* ema, float ema_decay) {
  queue(op::AdamStep{params, grads, m, v, n, hyper, step, skip_if_nonzero, ema, ema_decay});
}

void OpRecorder::ema_update(float* ema, const float* params, size_t n, float decay,
                            const int64_t* updates, const float* skip_if_nonzero) {
  queue(op::EmaUpdate{ema, params, n, decay, updates, skip_if_nonzero});
}

void OpRecorder::gaussian_noise(float* out, size_t n, uint64_t seed, uint32_t stream,
                                const int64_t* step) {
  queue(op::GaussianNoise{out, n, seed, stream, step});
}

void OpRecorder::gather_batch(const uint8_t* dataset, const int32_t* perm, int n_images, int pixels,
                              int rows, const int64_t* step, int batches_per_step, int batch_offset,
                              int64_t batches_per_epoch, float* out) {
  queue(op::GatherBatch{dataset, perm, n_images, pixels, rows, step, batches_per_step, batch_offset,
                        batches_per_epoch, out});
}

void OpRecorder::gather_labels(const uint8_t* labels, const int32_t* perm, int n_images, int rows,
                               const int64_t* step, int batches_per_step, int batch_offset,
                               int64_t batches_per_epoch, int32_t* out) {
  queue(op::GatherLabels{labels, perm, n_images, rows, step, batches_per_step, batch_offset,
                         batches_per_epoch, out});
}

void OpRecorder::random_labels(int32_t* out, size_t n, int classes, uint64_t seed, uint32_t stream,
                               const int64_t* step) {
  queue(op::RandomLabels{out, n, classes, seed, stream, step});
}

void OpRecorder::one_hot(const int32_t* labels, float* out, int rows, int classes) {
  queue(op::OneHot{labels, out, rows, classes});
}

void OpRecorder::increment(int64_t* counter, const float* skip_if_nonzero) {
  queue(op::Increment{counter, skip_if_nonzero});
}

void OpRecorder::accumulate(const float* x, float* acc, size_t n, const float* skip_if_nonzero) {
  queue(op::Accumulate{x, acc, n, skip_if_nonzero});
}

void OpRecorder::count_nonfinite(const float* x, size_t n, float* count) {
  queue(op::CountNonfinite{x, n, count});
}

}  // namespace mnistgan
