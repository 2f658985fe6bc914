// op_types.h: the small value types that the backend ops take and the kernels share
// (kernels/ include this, not the Backend interface of core/backend.h).
#pragma once

#include <cstdint>    // int64_t, uint32_t, uint64_t
#include <stdexcept>  // std::invalid_argument
#include <string>

namespace mnistgan {

enum class Activation { kNone, kLeakyRelu, kTanh };

// Adam hyperparameters; the step count t comes from a backend-resident counter.
struct AdamHyper {
  float lr = 2e-4f;
  float beta1 = 0.5f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  // Linear learning-rate decay to zero (--lr-decay linear) over this many updates T: update t
  // (1-based, from the step counter) uses lr (1 - (t - 1) / T), clamped at 0 past T
  // (formulas.h's adam_lr_scale). 0: a constant lr.
  int64_t lr_decay_updates = 0;
};

// Inverted dropout on a linear layer's output (--d-dropout), as backend.h's linear_forward and
// linear_backward apply it: element i = r * out + c of Y (rows, out) is kept iff the first 32
// bits of the Philox draw at key (seed, stream), counter (i, *step) are >= dropout_threshold(p)
// (core/formulas.h), so it is dropped with probability p (to 2^-32), the same integer test on
// every backend; kept elements are scaled by 1 / (1 - p). The mask is never stored: the
// backward pass draws it again from the same key and counter.
struct Dropout {
  float p = 0.0f;  // drop probability in [0, 1); 0: no dropout
  uint64_t seed = 0;
  uint32_t stream = 0;
  const int64_t* step = nullptr;  // a backend counter, read when the op runs (nullptr: 0)
  bool on() const { return p > 0.0f; }
};

// The precondition of dropout on a layer, on every backend: p in [0, 1), and an activation
// whose derivative the scaled output still gives (formulas.h's dropout_activation_grad).
inline void check_dropout(const char* op, const Dropout& d, Activation act) {
  if (!(d.p >= 0.0f && d.p < 1.0f))
    throw std::invalid_argument(std::string(op) + ": dropout p " + std::to_string(d.p) +
                                " is outside [0, 1)");
  if (d.on() && act == Activation::kTanh)
    throw std::invalid_argument(std::string(op) +
                                ": dropout after tanh is not supported (its derivative is read "
                                "from the unscaled output); use LeakyReLU or none");
}

// Row strides (leading dimensions, in floats) of a linear layer's row-major matrices; 0 means
// packed (the matrix's own width). x: X and dX (rows, in); y: Y and dY (rows, out). They let
// a layer read its input from, and write its output into, columns of a wider buffer: the
// discriminator's last hidden layer writes h straight into the (rows, H + K) minibatch-
// discrimination features [h | o], so no concatenation or split is needed.
struct RowStrides {
  int x = 0;
  int y = 0;
};

}  // namespace mnistgan
