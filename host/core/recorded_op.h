// recorded_op.h: one queued Backend op with its arguments, as a value.
//
// A training step is a fixed sequence of queued ops (backend.h: nothing in it reads back to
// the host). core/op_recorder.h records that sequence for each run of a lock-step group (one
// RecordedOp per op, arguments copied: backend pointers, shapes and the run's own scalars such
// as its seed and learning rate), and Backend::run_models() issues op i of every run as one
// unit: the CPU backend one run after another, the CUDA backend as one model-indexed launch
// where the kernels take a model index (kernels/*.cuh) and the runs' buffers lie a constant
// stride apart. Each struct's fields are the Backend op's parameters of the same name, in the
// same order (backend.h documents them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "core/op_types.h"  // Activation, AdamHyper, Dropout, RowStrides

namespace mnistgan {

class Backend;

namespace op {

struct LinearForward {
  const float* X;
  const float* W;
  const float* b;
  float* Y;
  int rows, in, out;
  Activation act;
  float slope;
  RowStrides ld;
  Dropout dropout;
};
struct ActivationBackward {
  const float* Y;
  const float* dY;
  float* dZ;
  size_t n;
  Activation act;
  float slope;
};
struct LinearBackward {
  const float* X;
  const float* W;
  const float* Y;
  const float* dY;
  float* dX;
  float* dW;
  float* db;
  int rows, in, out;
  Activation act;
  float slope;
  bool accumulate_dx;
  RowStrides ld;
  Dropout dropout;
};
struct LogitBce {
  const float* X;
  const float* w;
  const float* b;
  int groups, B, in;
  std::vector<float> targets;  // a copy of the host array (groups)
  float grad_scale;
  float* logits;
  float* dlogits;
  float* dX;
  float* dw;
  float* db;
  float* stats;
};
struct ConcatCols {
  const float* A;
  const float* B;
  float* out;
  int rows, a, b;
};
struct SplitCols {
  const float* in;
  float* A;
  float* B;
  int rows, a, b;
};
struct MbdForward {
  const float* M;
  float* O;
  int groups, B, K, C, ldo;
};
struct MbdBackward {
  const float* M;
  const float* dO;
  float* dM;
  int groups, B, K, C, ldo;
};
struct BceWithLogits {
  const float* x;
  int n;
  float target, grad_scale;
  float* dx;
  float* stats;
};
struct SoftmaxCrossEntropy {
  const float* logits;
  const int32_t* labels;
  int rows, classes;
  float grad_scale;
  float* dlogits;
  float* stats;
};
struct AdamStep {
  float* params;
  const float* grads;
  float* m;
  float* v;
  size_t n;
  AdamHyper hyper;
  int64_t* step;
  const float* skip_if_nonzero;
  float* ema;
  float ema_decay;
};
struct EmaUpdate {
  float* ema;
  const float* params;
  size_t n;
  float decay;
  const int64_t* updates;
  const float* skip_if_nonzero;
};
struct GaussianNoise {
  float* out;
  size_t n;
  uint64_t seed;
  uint32_t stream;
  const int64_t* step;
};
struct GatherBatch {
  const uint8_t* dataset;
  const int32_t* perm;
  int n_images, pixels, rows;
  const int64_t* step;
  int batches_per_step, batch_offset;
  int64_t batches_per_epoch;
  float* out;
};
struct GatherLabels {
  const uint8_t* labels;
  const int32_t* perm;
  int n_images, rows;
  const int64_t* step;
  int batches_per_step, batch_offset;
  int64_t batches_per_epoch;
  int32_t* out;
};
struct RandomLabels {
  int32_t* out;
  size_t n;
  int classes;
  uint64_t seed;
  uint32_t stream;
  const int64_t* step;
};
struct OneHot {
  const int32_t* labels;
  float* out;
  int rows, classes;
};
struct Increment {
  int64_t* counter;
  const float* skip_if_nonzero;
};
struct Accumulate {
  const float* x;
  float* acc;
  size_t n;
  const float* skip_if_nonzero;
};
struct CountNonfinite {
  const float* x;
  size_t n;
  float* count;
};
struct Copy {
  void* dst;
  const void* src;
  size_t bytes;
};
struct FillZero {
  void* p;
  size_t bytes;
};
// to_backend inside a step (only the --nan-policy tests' injected NaN, which steps eagerly):
// the host bytes are copied into the record.
struct ToBackend {
  void* dst;
  std::vector<uint8_t> bytes;
};

}  // namespace op

using RecordedOp =
    std::variant<op::LinearForward, op::ActivationBackward, op::LinearBackward, op::LogitBce,
                 op::ConcatCols, op::SplitCols, op::MbdForward, op::MbdBackward, op::BceWithLogits,
                 op::SoftmaxCrossEntropy, op::AdamStep, op::EmaUpdate, op::GaussianNoise,
                 op::GatherBatch, op::GatherLabels, op::RandomLabels, op::OneHot, op::Increment,
                 op::Accumulate, op::CountNonfinite, op::Copy, op::FillZero, op::ToBackend>;

// Issues `op` on `backend` (the Backend call it records).
void issue_recorded_op(Backend& backend, const RecordedOp& op);

// The op's name as in backend.h ("linear_forward", ...), for messages.
const char* recorded_op_name(const RecordedOp& op);

}  // namespace mnistgan
