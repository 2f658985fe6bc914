// mlp.h: the forward and backward pass of a stack of linear layers, written once for every
// multilayer perceptron here (the GAN's generator and hidden discriminator stack, and the
// eval classifier).
//
//   forward:  y_0 = x (rows, layers[0].in);  y_{l+1} = act_l(y_l W_l^T + b_l)  (rows, out_l)
//   backward: from the top, dZ_l = dY_l * act_l'(y_{l+1}) (read from the saved output, so no
//             pre-activation is kept; act none: dZ = dY), then dW_l = dZ_l^T y_l,
//             db_l = column sums of dZ_l, dY_{l-1} = dZ_l W_l: one linear_backward per layer.
//
// Every layer's W (out, in) and b (out) lie at offsets in one flat parameter buffer, and their
// gradients at the same offsets in a flat gradient buffer of the same layout (model.h's
// Network), so one Adam op updates a whole network.
#pragma once

#include <cstddef>  // size_t
#include <vector>

#include "core/backend.h"  // Backend, Activation

namespace mnistgan {

// One linear layer as it lies in a network's flat parameter buffer.
struct LinearLayer {
  int in = 0, out = 0;
  Activation act = Activation::kNone;
  size_t weight = 0;  // offset of W (out, in)
  size_t bias = 0;    // offset of b (out)
  bool has_bias = true;
};

// The ping-pong buffers mlp_backward writes its gradients into: two backend buffers of at
// least (rows, widest layer width) floats each.
struct MlpScratch {
  float* a = nullptr;
  float* b = nullptr;
};

// x (rows, layers[0].in) -> outputs[l] (rows, layers[l].out) for every layer l, with the
// weights `params` (the flat buffer the layers' offsets point into). LeakyReLU layers use
// `slope` (0: ReLU). outputs has one backend buffer per layer; the last layer's rows are
// top_ld floats apart (0: packed), so it can write into the first columns of a wider buffer.
// dropout (on when dropout.p > 0): after every layer's activation, layer l's mask drawn from
// stream dropout.stream + l (backend.h's linear_forward); mlp_backward must get the same.
void mlp_forward(Backend& backend, const float* params, const std::vector<LinearLayer>& layers,
                 const float* x, const std::vector<float*>& outputs, int rows, float slope,
                 int top_ld = 0, const Dropout& dropout = {});

// The backward pass of the mlp_forward that left x and outputs (as above):
//   d_top (rows, layers.back().out): the gradient w.r.t. the last layer's output; it may be
//     scratch.a or scratch.b, or a caller's buffer (then left untouched);
//   grads: the flat gradient buffer, every layer's dW and db overwritten, or nullptr (none);
//   d_x (rows, layers[0].in): the gradient w.r.t. x, or nullptr (not computed);
//   top_ld: the row stride of the last output and of d_top (0: packed), as mlp_forward's;
//   dropout: the forward pass's (the gradient of a dropped unit is 0).
void mlp_backward(Backend& backend, const float* params, float* grads,
                  const std::vector<LinearLayer>& layers, const float* x,
                  const std::vector<float*>& outputs, const float* d_top, int rows, float slope,
                  const MlpScratch& scratch, float* d_x, int top_ld = 0,
                  const Dropout& dropout = {});

}  // namespace mnistgan
