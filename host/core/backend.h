// backend.h: the op interface that the model, the trainer, the classifier and the toy are
// written against.
//
// A Backend owns memory (host memory for the CPU backend, device memory for the CUDA
// backend) and runs ops on it. Every pointer passed to an op is a pointer the same
// backend returned from alloc_*(); the model never dereferences one itself. Ops are
// asynchronous on the GPU: nothing here returns a value to the host, so a whole training
// step can be captured in a CUDA graph. Values that change from step to step (the step
// number for noise, Adam's bias correction and the batch index) are read from a
// backend-resident counter, not passed by value, for the same reason.
//
// Layout conventions (row-major throughout, as in PyTorch):
//   activations X are (rows, features); a linear layer's weight W is (out, in), bias b is
//   (out); Y = X W^T + b.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/op_types.h"     // Activation, AdamHyper, RowStrides
#include "core/recorded_op.h"  // RecordedOp

namespace mnistgan {


// Noise streams: the Philox key is (seed, stream) and the counter (element, step), so
// every (seed, step, stream) triple names one reproducible batch of N(0,1) draws on every
// backend. Streams below 1000 are the D updates within one step; the rest are fixed.
constexpr uint32_t kNoiseStreamFixedGrid = 0x7fff0001u;  // fixed 8x8 progress grid
constexpr uint32_t kNoiseStreamSample = 0x7fff0002u;     // `mnistgan sample`
// The fake labels of a conditional run's D update d are drawn from stream
// kLabelStreamBase + d, keyed like that update's noise (seed, step); unconditional runs
// draw none, so their noise is unchanged.
constexpr uint32_t kLabelStreamBase = 0x4c000000u;
// D's dropout masks (--d-dropout): hidden layer l of D in training pass `pass` draws from
// stream kDropoutStreamBase + 32 pass + l (at most 16 hidden layers), counter (element, step).
// Pass 1 + d is the step's D update d, pass 0 the G update's pass through D: each pass has a
// mask of its own, and a step's masks depend on nothing but (seed, step).
constexpr uint32_t kDropoutStreamBase = 0x44000000u;
constexpr uint32_t dropout_stream(int pass, int layer) {
  return kDropoutStreamBase + 32u * static_cast<uint32_t>(pass) + static_cast<uint32_t>(layer);
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu" or "cuda (<device name>)"

  // ---- memory -----------------------------------------------------------------------
  // Uninitialised: the contents are unspecified (the CPU backend happens to zero them, the
  // CUDA emulation fills them with NaN bytes), so an owner or op that needs zeros says so and
  // calls fill_zero (or BackendBuffer<T>::zeroed). Freed with free(). Sizes are element
  // counts. Own them with BackendBuffer<T> (core/backend_buffer.h), which frees them.
  virtual float* alloc_f32(size_t n) = 0;
  virtual int64_t* alloc_i64(size_t n) = 0;
  virtual int32_t* alloc_i32(size_t n) = 0;
  virtual uint8_t* alloc_u8(size_t n) = 0;
  // Never throws (it runs in destructors, also while an exception unwinds): a backend whose
  // release fails reports it on stderr and carries on. free(nullptr) does nothing.
  virtual void free(void* p) = 0;
  // Host <-> backend copies. to_host() waits for all queued work first.
  virtual void to_backend(void* dst, const void* src_host, size_t bytes) = 0;
  virtual void to_host(void* dst_host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // backend to backend
  virtual void fill_zero(void* p, size_t bytes) = 0;
  virtual void synchronize() = 0;

  // ---- linear layers ----------------------------------------------------------------
  // Y = act(X W^T + b) with LeakyReLU slope `slope`.
  //   X (rows, in), W (out, in), b (out) or nullptr, Y (rows, out); X's and Y's rows are
  //   ld.x and ld.y floats apart (0: packed; op_types.h's RowStrides).
  // With dropout.on(): Y = dropout_output(act(.), keep, 1 / (1 - p)) (core/formulas.h), keep
  // drawn per element r * out + c from op_types.h's Dropout key; act must be LeakyReLU or none
  // (std::invalid_argument otherwise, or for p outside [0, 1)).
  virtual void linear_forward(const float* X, const float* W, const float* b, float* Y, int rows,
                              int in, int out, Activation act, float slope, RowStrides ld = {},
                              const Dropout& dropout = {}) = 0;
  // dZ = dY * act'(.), with act' read from the saved output Y: LeakyReLU from its sign,
  // tanh as 1 - Y^2. dY and dZ may alias. All (n). (The training step does this inside
  // linear_backward; this op is the unfused reference the benchmark and tests compare with.)
  virtual void activation_backward(const float* Y, const float* dY, float* dZ, size_t n,
                                   Activation act, float slope) = 0;
  // The backward pass of Y = act(X W^T + b) given dY (rows, out) and the saved output Y
  // (rows, out; only read for act != none):
  //   dZ = dY * act'(Y)  (as activation_backward; never stored)
  //   dW (out, in) = dZ^T X,  db (out) = column sums of dZ,  dX (rows, in) = dZ W.
  // Any of dW/db/dX may be nullptr to skip it (db only with dW). dW and db are overwritten;
  // dX is added into with accumulate_dx (the model sums two paths' gradients into one dX).
  // ld.x: the row stride of X and dX, ld.y: of Y and dY (0: packed).
  // dropout: the forward pass's (same key and *step), so the same mask:
  //   dZ = dropout_activation_grad(Y, dY, act, slope, keep, 1 / (1 - p)), 0 where dropped.
  virtual void linear_backward(const float* X, const float* W, const float* Y, const float* dY,
                               float* dX, float* dW, float* db, int rows, int in, int out,
                               Activation act, float slope, bool accumulate_dx,
                               RowStrides ld = {}, const Dropout& dropout = {}) = 0;
  // The discriminator's logit layer with its loss and backward pass, as one op. X (groups*B,
  // in) packed, w (1, in), b (1):
  //   logits (groups*B) = X w^T + b
  //   group g's rows against the constant target targets[g] (a host array of `groups`):
  //     dlogits = grad_scale (sigmoid(logit) - target) / B, stats[2g], stats[2g+1] as
  //     bce_with_logits adds them (stats may be nullptr)
  //   dX (groups*B, in) = dlogits w (or nullptr), dw (in) = dlogits^T X, db = sum of
  //   dlogits (both nullptr or neither).
  // Exactly linear_forward, bce_with_logits per group and linear_backward in that order.
  virtual void logit_bce(const float* X, const float* w, const float* b, int groups, int B,
                         int in, const float* targets, float grad_scale, float* logits,
                         float* dlogits, float* dX, float* dw, float* db, float* stats) = 0;

  // ---- column concatenation (minibatch-discrimination features, label columns) -------
  // out (rows, a+b) = [A (rows, a) | B (rows, b)], and its inverse for gradients (where A or
  // B may be nullptr: that part is dropped). Also a conditional model's [x | one-hot] input.
  virtual void concat_cols(const float* A, const float* B, float* out, int rows, int a, int b) = 0;
  virtual void split_cols(const float* in, float* A, float* B, int rows, int a, int b) = 0;

  // ---- minibatch discrimination (Salimans et al. 2016) ------------------------------
  // M (groups*B, K*C) viewed as (groups, B, K, C); within each group independently:
  //   O[i,k] = sum_{j != i} exp(-sum_c |M[i,k,c] - M[j,k,c]|),  O (groups*B, K).
  // O's rows (and dO's below) are ldo floats apart (0: packed, K), so O can be written into
  // the last columns of the features [h | o].
  virtual void mbd_forward(const float* M, float* O, int groups, int B, int K, int C,
                           int ldo = 0) = 0;
  // dM[i,k,c] = sum_{j != i} (dO[i,k] + dO[j,k]) * e_ijk * -sign(M[i,k,c] - M[j,k,c]).
  virtual void mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K,
                            int C, int ldo = 0) = 0;

  // ---- loss -------------------------------------------------------------------------
  // Mean binary cross-entropy on logits x (n) against a constant target t, computed as
  // max(x,0) - x t + log1p(exp(-|x|)) so it is stable for any |x|.
  //   dx[i] = grad_scale * (sigmoid(x[i]) - t) / n
  //   stats[0] += mean loss, stats[1] += mean sigmoid(x)   (stats: 2 floats, accumulated
  //   so the host can read averages every few steps instead of every step).
  virtual void bce_with_logits(const float* x, int n, float target, float grad_scale, float* dx,
                               float* stats) = 0;
  // Mean softmax cross-entropy of logits (rows, classes) against integer labels (rows),
  // with the row maximum subtracted first so exp() never overflows:
  //   loss_r = log(sum_c exp(x_rc - max_r)) - (x_r,label_r - max_r)
  //   dlogits[r, c] = grad_scale * (softmax(x_r)_c - [c == label_r]) / rows   (or nullptr)
  //   stats[0] += mean loss, stats[1] += fraction of rows whose argmax (the first maximum)
  //   is the label   (stats: 2 floats or nullptr, accumulated like bce_with_logits).
  // A label outside [0, classes) makes its row's loss and gradient NaN (visible in stats)
  // rather than reading out of bounds. Sums run in a fixed order: deterministic.
  virtual void softmax_cross_entropy(const float* logits, const int32_t* labels, int rows,
                                     int classes, float grad_scale, float* dlogits,
                                     float* stats) = 0;

  // ---- optimiser --------------------------------------------------------------------
  // One Adam step over a flat buffer of n parameters, as torch.optim.Adam (no weight
  // decay): t = *step + 1, m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
  //   p -= lr_t / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
  // lr_t = lr * adam_lr_scale(hyper, t - 1) (core/formulas.h: lr, or with
  // hyper.lr_decay_updates = T > 0 linear decay lr (1 - (t - 1) / T)), then *step = t, then,
  // with ema (n) non-null, ema_update(ema, p, n, ema_decay, step) (the EMA generator's update
  // after G's, in the same op).
  // skip_if_nonzero: a backend float read when the op runs (so a replayed graph sees the
  // current value); when it is non-null and *skip_if_nonzero != 0 (NaN included) the op
  // changes nothing (the divergence guard's --nan-policy skip-step, like PyTorch AMP's
  // GradScaler skipping optimizer.step()).
  virtual void adam_step(float* params, const float* grads, float* m, float* v, size_t n,
                         const AdamHyper& hyper, int64_t* step,
                         const float* skip_if_nonzero = nullptr, float* ema = nullptr,
                         float ema_decay = 0.0f) = 0;

  // Exponential moving average of a parameter buffer (the EMA generator), all (n):
  //   t = *updates (optimiser updates done so far, read when the op runs)
  //   d = min(decay, (1 + t) / (10 + t)) in double, rounded to float;  ema = d ema + (1 - d) p
  // Nothing when skip_if_nonzero is non-null and *skip_if_nonzero != 0 (as adam_step).
  // Bitwise identical on every backend. decay in [0, 1).
  virtual void ema_update(float* ema, const float* params, size_t n, float decay,
                          const int64_t* updates, const float* skip_if_nonzero = nullptr) = 0;

  // ---- randomness and data ----------------------------------------------------------
  // out (n) ~ N(0,1) from Philox4x32-10 keyed by (seed, stream), counter (i/4, *step).
  // step may be nullptr (then 0). Bitwise identical on every backend (see philox.h).
  virtual void gaussian_noise(float* out, size_t n, uint64_t seed, uint32_t stream,
                              const int64_t* step) = 0;
  // Gather one batch from a backend-resident uint8 dataset, scaled to [-1, 1]:
  //   batch = (*step) * batches_per_step + batch_offset   (global batch counter)
  //   epoch = batch / batches_per_epoch, slot = epoch % 2, b = batch % batches_per_epoch
  //   out[r, p] = dataset[perm[slot * n_images + b * rows + r], p] / 127.5 - 1
  // A perm entry outside [0, n_images) gives a row of quiet NaN (core/formulas.h).
  // perm holds two epochs' permutations (2, n_images) so an epoch boundary inside a step
  // needs no host action mid-step. dataset (n_images, pixels), out (rows, pixels).
  virtual void gather_batch(const uint8_t* dataset, const int32_t* perm, int n_images, int pixels,
                            int rows, const int64_t* step, int batches_per_step, int batch_offset,
                            int64_t batches_per_epoch, float* out) = 0;
  // The labels of the batch gather_batch gathers with the same arguments:
  //   out[r] = labels[perm[slot * n_images + b * rows + r]]      labels (n_images) uint8,
  // out (rows) int32. An index outside [0, n_images) in perm writes -1 (one_hot then makes
  // that row NaN, which the divergence guard reports) instead of reading out of bounds.
  virtual void gather_labels(const uint8_t* labels, const int32_t* perm, int n_images, int rows,
                             const int64_t* step, int batches_per_step, int batch_offset,
                             int64_t batches_per_epoch, int32_t* out) = 0;
  // out (n) uniform in [0, classes): out[i] = philox_label(seed, stream, i, *step, classes)
  // (philox.h); step may be nullptr (then 0). Bitwise identical on every backend.
  virtual void random_labels(int32_t* out, size_t n, int classes, uint64_t seed, uint32_t stream,
                             const int64_t* step) = 0;
  // out (rows, classes) = one-hot rows of labels (rows): out[r, c] = (c == labels[r]); a label
  // outside [0, classes) makes its whole row NaN (visible to the non-finite guard).
  virtual void one_hot(const int32_t* labels, float* out, int rows, int classes) = 0;
  // *counter += 1 (the step counter lives on the backend so graphs can replay steps);
  // nothing when skip_if_nonzero is non-null and *skip_if_nonzero != 0 (as adam_step).
  virtual void increment(int64_t* counter, const float* skip_if_nonzero = nullptr) = 0;
  // acc (n) += x (n), elementwise; nothing when skip_if_nonzero is non-null and
  // *skip_if_nonzero != 0 (so a skipped update's losses stay out of the averages).
  virtual void accumulate(const float* x, float* acc, size_t n, const float* skip_if_nonzero) = 0;
  // Count of non-finite values in x (n), added to *count (for the divergence guard).
  virtual void count_nonfinite(const float* x, size_t n, float* count) = 0;

  // ---- lock-step runs ---------------------------------------------------------------
  // ops: the same op (one kind, the same shapes) of `ops.size()` runs that step together, one
  // entry per run (core/recorded_op.h); issues all of them, each run's exactly as its own call
  // would. The default issues them one after another (the CPU backend's way: each run bitwise
  // as alone). The CUDA backend issues a kernel with a model index once for all of them where
  // their buffers lie a constant stride apart and their scalars allow (cuda_backend.cu).
  virtual void run_models(const std::vector<const RecordedOp*>& ops);
  // Whether run_models() can issue one launch for many runs (then a group's runs should have
  // their buffers a constant stride apart: core/op_recorder.h's ModelSlab).
  virtual bool runs_models_together() const { return false; }

  // ---- step graphs (optional) -------------------------------------------------------
  // Ops issued between begin_capture() and end_capture() are recorded as one replayable
  // unit (a CUDA graph) instead of run; replay() runs the recording. A backend without
  // graphs returns false from begin_capture() and keeps running ops eagerly, so callers
  // write: if (b.begin_capture()) { issue ops; b.end_capture(); b.replay(); } else ...
  // A backend keeps every graph until release_graph(): end_capture() returns the new graph's
  // id, replay(id) runs that one and replay() the latest (so several lock-step groups, or a
  // group and its runs alone, can each keep a graph on one backend).
  virtual bool begin_capture() { return false; }
  virtual int end_capture() { return -1; }
  virtual void replay() {}
  virtual void replay(int /*graph*/) {}
  // Frees graph `graph` (an id end_capture() returned; -1 or an unknown id: nothing). Never
  // throws (destructors call it).
  virtual void release_graph(int /*graph*/) noexcept {}
  // The work items (kernels, memsets, copies) of the last end_capture()'s recording (CUDA:
  // the graph's node count); -1 for a backend without graphs or before a capture.
  virtual int64_t captured_nodes() const { return -1; }
};

// Which backends this build has and which one to use.
bool cuda_backend_built();
// Empty string when a usable CUDA device is present, otherwise why not.
std::string cuda_unavailable_reason();
std::unique_ptr<Backend> make_cpu_backend();
// Throws std::runtime_error with the reason when no usable device is present.
std::unique_ptr<Backend> make_cuda_backend(int device_index = 0);
// The one check of a --device value, used by every command's validate(): throws
// std::invalid_argument "--device: unknown device '<name>'; expected cpu, cuda or auto"
// unless device is "cpu", "cuda" or "auto".
void validate_device_flag(const std::string& device);
// The backend a --device value selects, "cpu" or "cuda" ("auto": CUDA when built and a
// device is present, else CPU). Throws as validate_device_flag for another name, and
// std::runtime_error "--device cuda: <why>; ... use --device cpu" when CUDA is asked for and
// cannot be had.
std::string resolve_device(const std::string& device);
// make_cpu_backend() or make_cuda_backend() as resolve_device(device) says; throws as it.
std::unique_ptr<Backend> make_backend(const std::string& device);

}  // namespace mnistgan
