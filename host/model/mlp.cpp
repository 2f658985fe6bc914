// mlp.cpp: see mlp.h.
#include "model/mlp.h"

#include <stdexcept>  // std::invalid_argument

namespace mnistgan {

namespace {
// Layer l's dropout: the stack's key with stream + l.
Dropout layer_dropout(const Dropout& dropout, size_t l) {
  Dropout d = dropout;
  d.stream += static_cast<uint32_t>(l);
  return d;
}
}  // namespace

void mlp_forward(Backend& backend, const float* params, const std::vector<LinearLayer>& layers,
                 const float* x, const std::vector<float*>& outputs, int rows, float slope,
                 int top_ld, const Dropout& dropout) {
  if (outputs.size() != layers.size())
    throw std::invalid_argument("mlp_forward: one output buffer per layer");
  const float* input = x;
  for (size_t l = 0; l < layers.size(); ++l) {
    const LinearLayer& layer = layers[l];
    const bool top = l + 1 == layers.size();
    backend.linear_forward(input, params + layer.weight,
                           layer.has_bias ? params + layer.bias : nullptr, outputs[l], rows,
                           layer.in, layer.out, layer.act, slope, {0, top ? top_ld : 0},
                           layer_dropout(dropout, l));
    input = outputs[l];
  }
}

void mlp_backward(Backend& backend, const float* params, float* grads,
                  const std::vector<LinearLayer>& layers, const float* x,
                  const std::vector<float*>& outputs, const float* d_top, int rows, float slope,
                  const MlpScratch& scratch, float* d_x, int top_ld, const Dropout& dropout) {
  if (outputs.size() != layers.size())
    throw std::invalid_argument("mlp_backward: one saved output per layer");
  // The buffer of scratch that is not `p` (a when p is neither).
  auto other = [&](const float* p) { return p == scratch.a ? scratch.b : scratch.a; };
  const float* d_y = d_top;  // (rows, out of layer l)
  for (size_t i = layers.size(); i-- > 0;) {
    const LinearLayer& layer = layers[i];
    const bool top = i + 1 == layers.size();
    float* d_in = i == 0 ? d_x : other(d_y);  // (rows, in); never d_y itself
    float* d_w = grads != nullptr ? grads + layer.weight : nullptr;
    float* d_b = grads != nullptr && layer.has_bias ? grads + layer.bias : nullptr;
    if (d_in != nullptr || d_w != nullptr)
      backend.linear_backward(i == 0 ? x : outputs[i - 1], params + layer.weight, outputs[i], d_y,
                              d_in, d_w, d_b, rows, layer.in, layer.out, layer.act, slope,
                              /*accumulate_dx=*/false, {0, top ? top_ld : 0},
                              layer_dropout(dropout, i));
    d_y = d_in;
  }
}

}  // namespace mnistgan
