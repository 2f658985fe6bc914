// op_types.h: the small value types that the backend ops take and the kernels share
// (kernels/ include this, not the Backend interface of core/backend.h).
#pragma once

namespace mnistgan {

enum class Activation { kNone, kLeakyRelu, kTanh };

// Adam hyperparameters; the step count t comes from a backend-resident counter.
struct AdamHyper {
  float lr = 2e-4f;
  float beta1 = 0.5f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
};

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
