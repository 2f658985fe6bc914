// op_recorder.h: a Backend in front of another that can record the queued ops issued through
// it instead of running them (core/recorded_op.h).
//
// Every run's TrainingState issues its ops through one of these. Outside a recording it only
// forwards: memory, copies, evaluation, checkpoints all go straight to the target backend.
// Between begin_recording() and take_recording() the queued ops (everything a training step
// issues) are kept, in order, as RecordedOps; a lock-step group then issues op i of all its
// runs together with Backend::run_models(). Host reads (to_host, synchronize) and graph
// capture inside a recording throw std::logic_error: a step never reads back, and the group,
// not the run, captures the graph.
#pragma once

#include <string>
#include <vector>

#include "core/backend.h"
#include "core/recorded_op.h"

namespace mnistgan {

// One run's share of a lock-step group's memory: a byte range of the target backend that the
// run's allocations are cut from, in order (256-byte aligned), until it is full. Every run of a
// group allocates the same sizes in the same order, so with equal-sized slabs a constant
// apart every buffer of run r lies r slabs after run 0's: one model stride for every op
// (Backend::run_models). The owner of the range frees it, after the run.
// A slab of size 0 only measures: `requested` sums what a run asks for (rounded as cut).
struct ModelSlab {
  uint8_t* base = nullptr;
  size_t size = 0;
  size_t used = 0;
  size_t requested = 0;  // bytes of every allocation, whether or not it fit
};

class OpRecorder final : public Backend {
 public:
  // slab: where allocations go first (nullptr: straight to the target).
  explicit OpRecorder(Backend& target, ModelSlab* slab = nullptr) : target_(target), slab_(slab) {}
  Backend& target() { return target_; }

  void begin_recording();
  std::vector<RecordedOp> take_recording();  // ends the recording
  bool recording() const { return recording_; }

  std::string name() const override { return target_.name(); }
  float* alloc_f32(size_t n) override;
  int64_t* alloc_i64(size_t n) override;
  int32_t* alloc_i32(size_t n) override;
  uint8_t* alloc_u8(size_t n) override;
  void free(void* p) override;
  void to_backend(void* dst, const void* src_host, size_t bytes) override;
  void to_host(void* dst_host, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill_zero(void* p, size_t bytes) override;
  void synchronize() override;

  void linear_forward(const float* X, const float* W, const float* b, float* Y, int rows, int in,
                      int out, Activation act, float slope, RowStrides ld,
                      const Dropout& dropout) override;
  void activation_backward(const float* Y, const float* dY, float* dZ, size_t n, Activation act,
                           float slope) override;
  void linear_backward(const float* X, const float* W, const float* Y, const float* dY, float* dX,
                       float* dW, float* db, int rows, int in, int out, Activation act, float slope,
                       bool accumulate_dx, RowStrides ld, const Dropout& dropout) override;
  void logit_bce(const float* X, const float* w, const float* b, int groups, int B, int in,
                 const float* targets, float grad_scale, float* logits, float* dlogits, float* dX,
                 float* dw, float* db, float* stats) override;
  void concat_cols(const float* A, const float* B, float* out, int rows, int a, int b) override;
  void split_cols(const float* in, float* A, float* B, int rows, int a, int b) override;
  void mbd_forward(const float* M, float* O, int groups, int B, int K, int C, int ldo) override;
  void mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                    int ldo) override;
  void bce_with_logits(const float* x, int n, float target, float grad_scale, float* dx,
                       float* stats) override;
  void softmax_cross_entropy(const float* logits, const int32_t* labels, int rows, int classes,
                             float grad_scale, float* dlogits, float* stats) override;
  void adam_step(float* params, const float* grads, float* m, float* v, size_t n,
                 const AdamHyper& hyper, int64_t* step, const float* skip_if_nonzero, float* ema,
                 float ema_decay) override;
  void ema_update(float* ema, const float* params, size_t n, float decay, const int64_t* updates,
                  const float* skip_if_nonzero) override;
  void gaussian_noise(float* out, size_t n, uint64_t seed, uint32_t stream,
                      const int64_t* step) override;
  void gather_batch(const uint8_t* dataset, const int32_t* perm, int n_images, int pixels, int rows,
                    const int64_t* step, int batches_per_step, int batch_offset,
                    int64_t batches_per_epoch, float* out) override;
  void gather_labels(const uint8_t* labels, const int32_t* perm, int n_images, int rows,
                     const int64_t* step, int batches_per_step, int batch_offset,
                     int64_t batches_per_epoch, int32_t* out) override;
  void random_labels(int32_t* out, size_t n, int classes, uint64_t seed, uint32_t stream,
                     const int64_t* step) override;
  void one_hot(const int32_t* labels, float* out, int rows, int classes) override;
  void increment(int64_t* counter, const float* skip_if_nonzero) override;
  void accumulate(const float* x, float* acc, size_t n, const float* skip_if_nonzero) override;
  void count_nonfinite(const float* x, size_t n, float* count) override;

  bool begin_capture() override;
  int end_capture() override;
  void replay() override;
  void replay(int graph) override;
  void release_graph(int graph) noexcept override { target_.release_graph(graph); }
  int64_t captured_nodes() const override { return target_.captured_nodes(); }
  void run_models(const std::vector<const RecordedOp*>& ops) override;
  bool runs_models_together() const override { return target_.runs_models_together(); }

 private:
  // Records `op` when recording, otherwise issues it on the target.
  void queue(RecordedOp op);
  void refuse_while_recording(const char* what) const;
  void* from_slab(size_t bytes);  // nullptr when there is no slab or it is full

  Backend& target_;
  ModelSlab* slab_;
  bool recording_ = false;
  std::vector<RecordedOp> ops_;
};

}  // namespace mnistgan
