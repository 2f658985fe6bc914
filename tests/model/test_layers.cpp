// test_layers.cpp: model.h's gan_layers, the one description of the layer stack: the
// documented shapes, the parameter counts, and that the Gan, the checkpoint size bound
// (train/disk_space) and the benchmark's layer shapes are all built from it. And the MLP
// passes (model/mlp.h) on a small stack against a plain CPU loop.
#include <gtest/gtest.h>

#include <cmath>  // std::tanh
#include <string>
#include <vector>

#include "bench/bench.h"       // model_layer_shapes
#include "core/backend.h"      // make_cpu_backend, Activation
#include "model/mlp.h"         // mlp_forward, mlp_backward
#include "model/model.h"       // gan_layers, Gan
#include "test_util.h"         // upload, download, expect_close
#include "train/disk_space.h"  // model_parameter_count, generator_parameter_count

namespace mnistgan {
namespace {

struct Expected {
  Net net;
  LayerRole role;
  const char* name;
  int in, out;
  Activation act;
  bool has_bias;
};

void expect_layers(const std::vector<LayerSpec>& got, const std::vector<Expected>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string what = "layer " + std::to_string(i) + " (" + want[i].name + ")";
    EXPECT_EQ(got[i].net, want[i].net) << what;
    EXPECT_EQ(got[i].role, want[i].role) << what;
    EXPECT_EQ(got[i].name, want[i].name) << what;
    EXPECT_EQ(got[i].in, want[i].in) << what;
    EXPECT_EQ(got[i].out, want[i].out) << what;
    EXPECT_EQ(got[i].act, want[i].act) << what;
    EXPECT_EQ(got[i].has_bias, want[i].has_bias) << what;
  }
}

constexpr Net G = Net::kGenerator, D = Net::kDiscriminator;
constexpr LayerRole kStack = LayerRole::kStack;
constexpr Activation kLeaky = Activation::kLeakyRelu, kTanh = Activation::kTanh,
                     kNone = Activation::kNone;

// README and model.h: G 100-256-512-1024-784, D 784-1024-512-256-MBD-1.
TEST(GanLayers, DefaultShapeIsTheDocumentedStack) {
  expect_layers(gan_layers(ModelShape{}),
                {{G, kStack, "G.fc0", 100, 256, kLeaky, true},
                 {G, kStack, "G.fc1", 256, 512, kLeaky, true},
                 {G, kStack, "G.fc2", 512, 1024, kLeaky, true},
                 {G, kStack, "G.fc3", 1024, 784, kTanh, true},
                 {D, kStack, "D.fc0", 784, 1024, kLeaky, true},
                 {D, kStack, "D.fc1", 1024, 512, kLeaky, true},
                 {D, kStack, "D.fc2", 512, 256, kLeaky, true},
                 {D, LayerRole::kMbdProjection, "D.mbd", 256, 100 * 5, kNone, false},
                 {D, LayerRole::kLogit, "D.out", 256 + 100, 1, kNone, true}});
}

TEST(GanLayers, WithoutMinibatchDiscriminationTheLogitTakesTheLastHiddenLayer) {
  ModelShape shape;
  shape.mbd_kernels = 0;
  const std::vector<LayerSpec> layers = gan_layers(shape);
  ASSERT_EQ(layers.size(), 8u);
  EXPECT_EQ(layers.back().name, "D.out");
  EXPECT_EQ(layers.back().in, 256);
  for (const LayerSpec& layer : layers) EXPECT_NE(layer.role, LayerRole::kMbdProjection);
}

TEST(GanLayers, FollowTheShapeFields) {
  ModelShape shape;  // the 1-D toy's kind of shape
  shape.image_pixels = 1;
  shape.latent_dim = 1;
  shape.hidden_g = {8, 6};
  shape.hidden_d = {7};
  shape.mbd_kernels = 3;
  shape.mbd_dims = 2;
  shape.generator_output = kNone;
  expect_layers(gan_layers(shape), {{G, kStack, "G.fc0", 1, 8, kLeaky, true},
                                    {G, kStack, "G.fc1", 8, 6, kLeaky, true},
                                    {G, kStack, "G.fc2", 6, 1, kNone, true},
                                    {D, kStack, "D.fc0", 1, 7, kLeaky, true},
                                    {D, LayerRole::kMbdProjection, "D.mbd", 7, 6, kNone, false},
                                    {D, LayerRole::kLogit, "D.out", 10, 1, kNone, true}});
}

// The default model's parameters, counted by hand from the documented widths.
TEST(GanLayers, ParameterCounts) {
  const size_t g = (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784);
  const size_t d =
      (784 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 256 + 256) + 256 * 500 + (356 * 1 + 1);
  const std::vector<LayerSpec> layers = gan_layers(ModelShape{});
  EXPECT_EQ(parameter_count(layers, Net::kGenerator), g);
  EXPECT_EQ(parameter_count(layers, Net::kDiscriminator), d);
  EXPECT_EQ(layers[7].parameter_count(), 256u * 500u);  // T: no bias
  EXPECT_EQ(generator_parameter_count(ModelShape{}), g);
  EXPECT_EQ(model_parameter_count(ModelShape{}), g + d);
}

// The Gan lays out exactly the listed layers: its tensors are the list's weights and biases,
// in order, and its networks' sizes are the list's parameter counts.
TEST(GanLayers, TheGanIsBuiltFromTheList) {
  for (const int mbd : {100, 0}) {
    ModelShape shape;
    shape.mbd_kernels = mbd;
    auto backend = make_cpu_backend();
    Gan gan(*backend, shape, 2, 2);
    const std::vector<LayerSpec> layers = gan_layers(shape);
    EXPECT_EQ(gan.generator().size, parameter_count(layers, Net::kGenerator));
    EXPECT_EQ(gan.discriminator().size, parameter_count(layers, Net::kDiscriminator));
    std::vector<std::string> want_g, want_d;
    for (const LayerSpec& layer : layers) {
      auto& names = layer.net == Net::kGenerator ? want_g : want_d;
      names.push_back(layer.name + ".weight");
      if (layer.has_bias) names.push_back(layer.name + ".bias");
    }
    std::vector<std::string> got_g, got_d;
    for (const ParamTensor& t : gan.generator().tensors) got_g.push_back(t.name);
    for (const ParamTensor& t : gan.discriminator().tensors) got_d.push_back(t.name);
    EXPECT_EQ(got_g, want_g) << "mbd " << mbd;
    EXPECT_EQ(got_d, want_d) << "mbd " << mbd;
  }
}

// The benchmark times the listed layers at the rows the step runs them at.
TEST(GanLayers, TheBenchmarkShapesAreTheList) {
  ModelShape shape;
  const std::vector<LayerSpec> layers = gan_layers(shape);
  const std::vector<LayerShape> bench = model_layer_shapes(shape, 64);
  ASSERT_EQ(bench.size(), layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(bench[i].name, layers[i].name);
    EXPECT_EQ(bench[i].in, layers[i].in) << layers[i].name;
    EXPECT_EQ(bench[i].out, layers[i].out) << layers[i].name;
    EXPECT_EQ(bench[i].bias, layers[i].has_bias) << layers[i].name;
    EXPECT_EQ(bench[i].act, static_cast<int>(layers[i].act)) << layers[i].name;
    EXPECT_EQ(bench[i].rows, layers[i].net == Net::kGenerator ? 64 : 128) << layers[i].name;
  }
}

// The disk-space check counts the listed parameters, whatever the shape.
TEST(GanLayers, TheDiskSpaceCountsAreTheList) {
  std::vector<ModelShape> shapes(4);
  shapes[1].mbd_kernels = 0;
  shapes[2].hidden_g = {64};
  shapes[2].hidden_d = {32, 16, 8, 4};
  shapes[3].image_pixels = 1;
  shapes[3].latent_dim = 1;
  for (const ModelShape& shape : shapes) {
    const std::vector<LayerSpec> layers = gan_layers(shape);
    const size_t g = parameter_count(layers, Net::kGenerator);
    EXPECT_EQ(generator_parameter_count(shape), g);
    EXPECT_EQ(model_parameter_count(shape), g + parameter_count(layers, Net::kDiscriminator));
    // Every parameter at least three times (weights, Adam m and v) as float32, G's four.
    EXPECT_GE(checkpoint_size_bound(shape), 4 * (3 * model_parameter_count(shape) + g));
  }
}

// mlp_forward / mlp_backward on a 3-layer stack (LeakyReLU, tanh, none) against a direct
// float loop: outputs, every parameter gradient and the input gradient.
TEST(Mlp, ForwardAndBackwardMatchAPlainLoop) {
  const int rows = 3;
  const std::vector<int> widths{4, 5, 3, 2};
  const std::vector<Activation> acts{kLeaky, kTanh, kNone};
  const float slope = 0.2f;
  std::vector<LinearLayer> layers;
  size_t size = 0;
  for (size_t l = 0; l < acts.size(); ++l) {
    LinearLayer layer;
    layer.in = widths[l];
    layer.out = widths[l + 1];
    layer.act = acts[l];
    layer.weight = size;
    size += static_cast<size_t>(layer.in) * layer.out;
    layer.bias = size;
    size += layer.out;
    layers.push_back(layer);
  }
  const std::vector<float> params = test::random_vector(size, 1, -0.8f, 0.8f);
  const std::vector<float> x = test::random_vector(rows * widths[0], 2);
  const std::vector<float> d_top = test::random_vector(rows * widths.back(), 3);

  // Reference: forward, keeping every output; backward from the top.
  std::vector<std::vector<float>> ys{x};
  for (const LinearLayer& L : layers) {
    const std::vector<float>& in = ys.back();
    std::vector<float> y(static_cast<size_t>(rows) * L.out);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < L.out; ++o) {
        float z = params[L.bias + o];
        for (int i = 0; i < L.in; ++i) z += in[r * L.in + i] * params[L.weight + o * L.in + i];
        y[r * L.out + o] = L.act == kLeaky  ? (z > 0 ? z : slope * z)
                           : L.act == kTanh ? std::tanh(z)
                                            : z;
      }
    ys.push_back(y);
  }
  std::vector<float> want_grads(size, 0.0f), d_y = d_top;
  for (size_t l = layers.size(); l-- > 0;) {
    const LinearLayer& L = layers[l];
    std::vector<float> d_z(d_y.size()), d_in(static_cast<size_t>(rows) * L.in, 0.0f);
    for (size_t k = 0; k < d_y.size(); ++k) {
      const float y = ys[l + 1][k];
      d_z[k] = L.act == kLeaky  ? (y > 0 ? d_y[k] : slope * d_y[k])
               : L.act == kTanh ? d_y[k] * (1 - y * y)
                                : d_y[k];
    }
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < L.out; ++o) {
        const float g = d_z[r * L.out + o];
        want_grads[L.bias + o] += g;
        for (int i = 0; i < L.in; ++i) {
          want_grads[L.weight + o * L.in + i] += g * ys[l][r * L.in + i];
          d_in[r * L.in + i] += g * params[L.weight + o * L.in + i];
        }
      }
    d_y = d_in;
  }

  auto backend = make_cpu_backend();
  const auto p = test::upload(*backend, params);
  const auto in = test::upload(*backend, x);
  const auto top = test::upload(*backend, d_top);
  auto grads = test::alloc<float>(*backend, size);
  auto d_x = test::alloc<float>(*backend, x.size());
  auto a = test::alloc<float>(*backend, rows * 8), b = test::alloc<float>(*backend, rows * 8);
  std::vector<BackendBuffer<float>> outputs;
  std::vector<float*> output_ptrs;
  for (const LinearLayer& L : layers) {
    outputs.push_back(test::alloc<float>(*backend, static_cast<size_t>(rows) * L.out));
    output_ptrs.push_back(outputs.back().get());
  }
  mlp_forward(*backend, p.get(), layers, in.get(), output_ptrs, rows, slope);
  for (size_t l = 0; l < layers.size(); ++l)
    test::expect_close(test::download(*backend, output_ptrs[l], ys[l + 1].size()), ys[l + 1], 1e-6,
                       1e-5, "output " + std::to_string(l));
  mlp_backward(*backend, p.get(), grads.get(), layers, in.get(), output_ptrs, top.get(), rows,
               slope, {a.get(), b.get()}, d_x.get());
  test::expect_close(test::download(*backend, grads.get(), size), want_grads, 1e-5, 1e-4,
                     "parameter gradients");
  test::expect_close(test::download(*backend, d_x.get(), x.size()), d_y, 1e-5, 1e-4,
                     "input gradient");
  EXPECT_EQ(test::download(*backend, top.get(), d_top.size()), d_top) << "d_top was overwritten";

  // Without grads only the input gradient is computed, the same.
  auto d_x2 = test::alloc<float>(*backend, x.size());
  mlp_backward(*backend, p.get(), nullptr, layers, in.get(), output_ptrs, top.get(), rows, slope,
               {a.get(), b.get()}, d_x2.get());
  test::expect_bitwise_equal(test::download(*backend, d_x2.get(), x.size()),
                             test::download(*backend, d_x.get(), x.size()), "input gradient");
}

}  // namespace
}  // namespace mnistgan
