// recorded_op.cpp: see recorded_op.h.
#include "core/recorded_op.h"

#include <type_traits>

#include "core/backend.h"

namespace mnistgan {

void issue_recorded_op(Backend& backend, const RecordedOp& recorded) {
  std::visit(
      [&backend](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, op::LinearForward>) {
          backend.linear_forward(o.X, o.W, o.b, o.Y, o.rows, o.in, o.out, o.act, o.slope, o.ld,
                                 o.dropout);
        } else if constexpr (std::is_same_v<T, op::ActivationBackward>) {
          backend.activation_backward(o.Y, o.dY, o.dZ, o.n, o.act, o.slope);
        } else if constexpr (std::is_same_v<T, op::LinearBackward>) {
          backend.linear_backward(o.X, o.W, o.Y, o.dY, o.dX, o.dW, o.db, o.rows, o.in, o.out, o.act,
                                  o.slope, o.accumulate_dx, o.ld, o.dropout);
        } else if constexpr (std::is_same_v<T, op::LogitBce>) {
          backend.logit_bce(o.X, o.w, o.b, o.groups, o.B, o.in, o.targets.data(), o.grad_scale,
                            o.logits, o.dlogits, o.dX, o.dw, o.db, o.stats);
        } else if constexpr (std::is_same_v<T, op::ConcatCols>) {
          backend.concat_cols(o.A, o.B, o.out, o.rows, o.a, o.b);
        } else if constexpr (std::is_same_v<T, op::SplitCols>) {
          backend.split_cols(o.in, o.A, o.B, o.rows, o.a, o.b);
        } else if constexpr (std::is_same_v<T, op::MbdForward>) {
          backend.mbd_forward(o.M, o.O, o.groups, o.B, o.K, o.C, o.ldo);
        } else if constexpr (std::is_same_v<T, op::MbdBackward>) {
          backend.mbd_backward(o.M, o.dO, o.dM, o.groups, o.B, o.K, o.C, o.ldo);
        } else if constexpr (std::is_same_v<T, op::BceWithLogits>) {
          backend.bce_with_logits(o.x, o.n, o.target, o.grad_scale, o.dx, o.stats);
        } else if constexpr (std::is_same_v<T, op::SoftmaxCrossEntropy>) {
          backend.softmax_cross_entropy(o.logits, o.labels, o.rows, o.classes, o.grad_scale,
                                        o.dlogits, o.stats);
        } else if constexpr (std::is_same_v<T, op::AdamStep>) {
          backend.adam_step(o.params, o.grads, o.m, o.v, o.n, o.hyper, o.step, o.skip_if_nonzero,
                            o.ema, o.ema_decay);
        } else if constexpr (std::is_same_v<T, op::EmaUpdate>) {
          backend.ema_update(o.ema, o.params, o.n, o.decay, o.updates, o.skip_if_nonzero);
        } else if constexpr (std::is_same_v<T, op::GaussianNoise>) {
          backend.gaussian_noise(o.out, o.n, o.seed, o.stream, o.step);
        } else if constexpr (std::is_same_v<T, op::GatherBatch>) {
          backend.gather_batch(o.dataset, o.perm, o.n_images, o.pixels, o.rows, o.step,
                               o.batches_per_step, o.batch_offset, o.batches_per_epoch, o.out);
        } else if constexpr (std::is_same_v<T, op::GatherLabels>) {
          backend.gather_labels(o.labels, o.perm, o.n_images, o.rows, o.step, o.batches_per_step,
                                o.batch_offset, o.batches_per_epoch, o.out);
        } else if constexpr (std::is_same_v<T, op::RandomLabels>) {
          backend.random_labels(o.out, o.n, o.classes, o.seed, o.stream, o.step);
        } else if constexpr (std::is_same_v<T, op::OneHot>) {
          backend.one_hot(o.labels, o.out, o.rows, o.classes);
        } else if constexpr (std::is_same_v<T, op::Increment>) {
          backend.increment(o.counter, o.skip_if_nonzero);
        } else if constexpr (std::is_same_v<T, op::Accumulate>) {
          backend.accumulate(o.x, o.acc, o.n, o.skip_if_nonzero);
        } else if constexpr (std::is_same_v<T, op::CountNonfinite>) {
          backend.count_nonfinite(o.x, o.n, o.count);
        } else if constexpr (std::is_same_v<T, op::Copy>) {
          backend.copy(o.dst, o.src, o.bytes);
        } else if constexpr (std::is_same_v<T, op::FillZero>) {
          backend.fill_zero(o.p, o.bytes);
        } else if constexpr (std::is_same_v<T, op::ToBackend>) {
          backend.to_backend(o.dst, o.bytes.data(), o.bytes.size());
        } else {
          static_assert(sizeof(T) == 0, "issue_recorded_op: an op kind is missing");
        }
      },
      recorded);
}

const char* recorded_op_name(const RecordedOp& recorded) {
  static constexpr const char* kNames[] = {"linear_forward",
                                           "activation_backward",
                                           "linear_backward",
                                           "logit_bce",
                                           "concat_cols",
                                           "split_cols",
                                           "mbd_forward",
                                           "mbd_backward",
                                           "bce_with_logits",
                                           "softmax_cross_entropy",
                                           "adam_step",
                                           "ema_update",
                                           "gaussian_noise",
                                           "gather_batch",
                                           "gather_labels",
                                           "random_labels",
                                           "one_hot",
                                           "increment",
                                           "accumulate",
                                           "count_nonfinite",
                                           "copy",
                                           "fill_zero",
                                           "to_backend"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == std::variant_size_v<RecordedOp>);
  return kNames[recorded.index()];
}

void Backend::run_models(const std::vector<const RecordedOp*>& ops) {
  for (const RecordedOp* recorded : ops) issue_recorded_op(*this, *recorded);
}

}  // namespace mnistgan
