// model.cpp: see model.h.
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/philox.h"

namespace mnistgan {

size_t Network::add_tensor(const std::string& name, std::vector<int64_t> shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  tensors.push_back({name, std::move(shape), size, n});
  size += n;
  return size - n;
}

void Network::allocate(Backend& backend) {
  params_memory_ = BackendBuffer<float>(backend, size);
  grads_memory_ = BackendBuffer<float>(backend, size);
  m_memory_ = BackendBuffer<float>(backend, size);
  v_memory_ = BackendBuffer<float>(backend, size);
  step_memory_ = BackendBuffer<int64_t>(backend, 1);
  params = params_memory_.get();
  grads = grads_memory_.get();
  adam_m = m_memory_.get();
  adam_v = v_memory_.get();
  adam_step = step_memory_.get();
}

namespace {

// The plain pointers of `buffers`, in order (what the ops and backward_through take).
std::vector<float*> pointers(const std::vector<BackendBuffer<float>>& buffers) {
  std::vector<float*> out;
  for (const BackendBuffer<float>& b : buffers) out.push_back(b.get());
  return out;
}

LinearLayer add_linear(Network& net, const std::string& name, int in, int out, Activation act,
                       bool has_bias = true) {
  LinearLayer layer;
  layer.in = in;
  layer.out = out;
  layer.act = act;
  layer.has_bias = has_bias;
  layer.weight = net.add_tensor(name + ".weight", {out, in});
  if (has_bias) layer.bias = net.add_tensor(name + ".bias", {out});
  return layer;
}

// Base of the Philox streams used for initialisation; + network * 0x1000 + tensor index.
constexpr uint32_t kInitStreamBase = 0x10000u;

// After an update's backward pass: under --nan-policy skip-step, NaN/Inf in its n_stats stats
// (in b.guard), n_logits logit gradients or parameter gradients skip Adam and the stats' sum.
void finish_update(Backend& backend, Network& net, const AdamHyper& hyper, const StepBuffers& b,
                   size_t offset, size_t n_stats, size_t n_logits, bool inject_nan) {
  static const float kNan = NAN;  // static: the CUDA copy may read it after this returns
  if (inject_nan) backend.to_backend(net.grads, &kNan, sizeof(kNan));
  float* skip = b.guard ? b.guard + n_stats : nullptr;
  if (skip) {
    backend.count_nonfinite(b.guard, n_stats, skip);
    backend.count_nonfinite(b.d_logits, n_logits, skip);
    backend.count_nonfinite(net.grads, net.size, skip);
  }
  backend.adam_step(net.params, net.grads, net.adam_m, net.adam_v, net.size, hyper, net.adam_step,
                    skip);
  backend.increment(net.adam_step, skip);
  if (skip) backend.accumulate(b.guard, b.stats + offset, n_stats, skip);
}
}  // namespace

Gan::Gan(Backend& backend, const ModelShape& shape, int max_batch, int max_groups)
    : backend_(backend), shape_(shape), max_batch_(max_batch), max_groups_(max_groups) {
  if (max_batch < 1 || max_groups < 1) throw std::invalid_argument("Gan: max_batch must be >= 1");
  if (shape.hidden_d.empty() || shape.hidden_g.empty())
    throw std::invalid_argument("Gan: both networks need at least one hidden layer");

  // Generator: latent -> hidden_g... -> pixels (shape.generator_output: tanh for MNIST).
  int in = shape.latent_dim;
  for (size_t l = 0; l <= shape.hidden_g.size(); ++l) {
    const bool last = l == shape.hidden_g.size();
    const int out = last ? shape.image_pixels : shape.hidden_g[l];
    g_layers_.push_back(add_linear(g_, "G.fc" + std::to_string(l), in, out,
                                   last ? shape.generator_output : Activation::kLeakyRelu));
    in = out;
  }
  // Discriminator: pixels -> hidden_d (LeakyReLU) -> [mbd] -> 1 logit.
  in = shape.image_pixels;
  for (size_t l = 0; l < shape.hidden_d.size(); ++l) {
    d_layers_.push_back(
        add_linear(d_, "D.fc" + std::to_string(l), in, shape.hidden_d[l], Activation::kLeakyRelu));
    in = shape.hidden_d[l];
  }
  const int h = in, kc = shape.mbd_kernels * shape.mbd_dims;
  if (shape.mbd_kernels > 0)
    mbd_t_ = add_linear(d_, "D.mbd", h, kc, Activation::kNone, /*has_bias=*/false);
  d_out_ = add_linear(d_, "D.out", h + shape.mbd_kernels, 1, Activation::kNone);

  g_.allocate(backend_);
  d_.allocate(backend_);

  const size_t g_rows = static_cast<size_t>(max_batch);
  const size_t d_rows = g_rows * max_groups;
  for (size_t l = 0; l + 1 < g_layers_.size(); ++l)
    g_acts_.emplace_back(backend_, g_rows * g_layers_[l].out);
  g_acts_.emplace_back();  // the last output is the caller's `images` buffer
  for (const LinearLayer& layer : d_layers_) d_acts_.emplace_back(backend_, d_rows * layer.out);
  int widest = std::max({shape.image_pixels, shape.latent_dim, h + shape.mbd_kernels, kc});
  for (int w : shape.hidden_g) widest = std::max(widest, w);
  for (int w : shape.hidden_d) widest = std::max(widest, w);
  if (shape.mbd_kernels > 0) {
    mbd_m_ = BackendBuffer<float>(backend_, d_rows * kc);
    mbd_o_ = BackendBuffer<float>(backend_, d_rows * shape.mbd_kernels);
    features_ = BackendBuffer<float>(backend_, d_rows * (h + shape.mbd_kernels));
  }
  logits_ = BackendBuffer<float>(backend_, d_rows);
  const size_t scratch = std::max(g_rows, d_rows) * widest;
  scratch_a_ = BackendBuffer<float>(backend_, scratch);
  scratch_b_ = BackendBuffer<float>(backend_, scratch);
  scratch_c_ = BackendBuffer<float>(backend_, scratch);
}

void Gan::init_params(uint64_t seed) {
  int network_index = 0;
  for (Network* net : {&g_, &d_}) {
    std::vector<float> host(net->size);
    for (size_t t = 0; t < net->tensors.size(); ++t) {
      const ParamTensor& tensor = net->tensors[t];
      // He (Kaiming) uniform for LeakyReLU(0.2): W ~ U(-b, b), b = gain * sqrt(3 / fan_in),
      // gain = sqrt(2 / (1 + 0.2^2)); biases 0. It keeps the activations' scale through the
      // layers, so the untrained generator's samples differ from one another. PyTorch's
      // nn.Linear default shrinks them layer by layer until all fakes look alike, and
      // minibatch discrimination then separates real from fake at once and D wins for good.
      if (tensor.shape.size() == 1) {
        std::fill(host.begin() + tensor.offset, host.begin() + tensor.offset + tensor.size, 0.0f);
        continue;
      }
      const float gain = std::sqrt(2.0f / (1.0f + shape_.leaky_slope * shape_.leaky_slope));
      const float bound = gain * std::sqrt(3.0f / static_cast<float>(tensor.shape[1]));
      const uint32_t stream = kInitStreamBase + 0x1000u * network_index + static_cast<uint32_t>(t);
      if (tensor.name == "D.mbd.weight") {
        // T ~ N(0, 1), as in common minibatch-discrimination code: M's entries are then
        // large, exp(-L1) ~ 0 between distinct samples, and the features wake up only when
        // samples crowd together (mode collapse) instead of dominating D from step 0.
        float four[4];
        for (size_t i = 0; i < tensor.size; ++i) {
          if (i % 4 == 0) philox_gaussian4(seed, stream, i / 4, 0, four);
          host[tensor.offset + i] = four[i % 4];
        }
        continue;
      }
      for (size_t i = 0; i < tensor.size; ++i)
        host[tensor.offset + i] = (2.0f * philox_uniform_float(seed, stream, i, 0) - 1.0f) * bound;
    }
    backend_.to_backend(net->params, host.data(), net->size * sizeof(float));
    backend_.fill_zero(net->adam_m, net->size * sizeof(float));
    backend_.fill_zero(net->adam_v, net->size * sizeof(float));
    backend_.fill_zero(net->adam_step, sizeof(int64_t));
    ++network_index;
  }
}

void Gan::enable_ema() {
  if (g_ema_.empty()) g_ema_ = BackendBuffer<float>(backend_, g_.size);
  backend_.copy(g_ema_.get(), g_.params, g_.size * sizeof(float));
}

void Gan::disable_ema() { g_ema_.reset(); }

void Gan::update_ema(float decay, const float* skip_if_nonzero) {
  if (g_ema_.empty()) throw std::logic_error("Gan::update_ema: enable_ema() was not called");
  backend_.ema_update(g_ema_.get(), g_.params, g_.size, decay, g_.adam_step, skip_if_nonzero);
}

void Gan::sample_forward(const float* z, float* images, int rows) {
  generator_forward_with(samples_from_ema() ? g_ema_.get() : g_.params, z, images, rows);
}

void Gan::generator_forward_with(const float* params, const float* z, float* images, int rows) {
  if (rows > max_batch_) throw std::invalid_argument("generator_forward: rows > max_batch");
  const float* x = z;
  for (size_t l = 0; l < g_layers_.size(); ++l) {
    const LinearLayer& layer = g_layers_[l];
    float* y = l + 1 == g_layers_.size() ? images : g_acts_[l].get();
    backend_.linear_forward(x, params + layer.weight, params + layer.bias, y, rows, layer.in,
                            layer.out, layer.act, shape_.leaky_slope);
    x = y;
  }
}

void Gan::generator_backward(const float* z, const float* images, const float* d_images, int rows) {
  std::vector<float*> outputs = pointers(g_acts_);
  outputs.back() = const_cast<float*>(images);
  backward_through(g_, g_layers_, outputs, z, const_cast<float*>(d_images), rows,
                   /*param_grads=*/true, /*d_input=*/nullptr);
}

const float* Gan::discriminator_forward(const float* x, int groups, int B) {
  if (groups > max_groups_ || B > max_batch_)
    throw std::invalid_argument("discriminator_forward: more rows than allocated");
  const int rows = groups * B;
  const float* h = x;
  for (size_t l = 0; l < d_layers_.size(); ++l) {
    const LinearLayer& layer = d_layers_[l];
    backend_.linear_forward(h, d_.params + layer.weight, d_.params + layer.bias, d_acts_[l].get(),
                            rows, layer.in, layer.out, layer.act, shape_.leaky_slope);
    h = d_acts_[l].get();
  }
  const float* top = h;
  if (shape_.mbd_kernels > 0) {
    const int width = d_layers_.back().out;
    backend_.linear_forward(h, d_.params + mbd_t_.weight, nullptr, mbd_m_.get(), rows, mbd_t_.in,
                            mbd_t_.out, Activation::kNone, 0.0f);
    backend_.mbd_forward(mbd_m_.get(), mbd_o_.get(), groups, B, shape_.mbd_kernels,
                         shape_.mbd_dims);
    backend_.concat_cols(h, mbd_o_.get(), features_.get(), rows, width, shape_.mbd_kernels);
    top = features_.get();
  }
  backend_.linear_forward(top, d_.params + d_out_.weight, d_.params + d_out_.bias, logits_.get(),
                          rows, d_out_.in, 1, Activation::kNone, 0.0f);
  return logits_.get();
}

void Gan::discriminator_backward(const float* x, const float* d_logits, int groups, int B,
                                 bool param_grads, float* d_x) {
  const int rows = groups * B;
  const float* h = d_acts_.back().get();
  const int width = d_layers_.back().out;
  float* d_h = scratch_a_.get();  // (rows, H): gradient w.r.t. the last hidden output
  auto grad = [&](const LinearLayer& layer, bool bias) -> float* {
    if (!param_grads) return nullptr;
    return d_.grads + (bias ? layer.bias : layer.weight);
  };
  if (shape_.mbd_kernels > 0) {
    // logit = [h | o] w + b, so d[h | o] = d_logit w; split it into dh and do.
    backend_.linear_backward(features_.get(), d_.params + d_out_.weight, d_logits, scratch_c_.get(),
                             grad(d_out_, false), grad(d_out_, true), rows, d_out_.in, 1, false);
    float* d_o = mbd_o_.get();      // o itself is no longer needed (features_.get() holds a copy)
    float* d_m = scratch_b_.get();  // (rows, K*C)
    backend_.split_cols(scratch_c_.get(), d_h, d_o, rows, width, shape_.mbd_kernels);
    backend_.mbd_backward(mbd_m_.get(), d_o, d_m, groups, B, shape_.mbd_kernels, shape_.mbd_dims);
    // M = h T^T: dT = dM^T h, and dh gains dM T on top of the direct path's gradient.
    if (param_grads)
      backend_.linear_backward(h, d_.params + mbd_t_.weight, d_m, nullptr, grad(mbd_t_, false),
                               nullptr, rows, mbd_t_.in, mbd_t_.out, false);
    backend_.linear_backward(h, d_.params + mbd_t_.weight, d_m, d_h, nullptr, nullptr, rows,
                             mbd_t_.in, mbd_t_.out, /*accumulate=*/true);
  } else {
    backend_.linear_backward(h, d_.params + d_out_.weight, d_logits, d_h, grad(d_out_, false),
                             grad(d_out_, true), rows, d_out_.in, 1, false);
  }
  backward_through(d_, d_layers_, pointers(d_acts_), x, d_h, rows, param_grads, d_x);
}

void Gan::update_discriminator(const StepBuffers& b, int B, float real_label,
                               const AdamHyper& hyper, bool inject_nan) {
  float* fake = b.x + static_cast<size_t>(B) * shape_.image_pixels;
  generator_forward(b.z, fake, B);
  const float* logits = discriminator_forward(b.x, /*groups=*/2, B);
  float* stats = b.guard ? b.guard : b.stats;
  if (b.guard) backend_.fill_zero(b.guard, 5 * sizeof(float));  // 4 stats, the skip flag
  backend_.bce_with_logits(logits, B, real_label, 1.0f, b.d_logits, stats + 0);
  backend_.bce_with_logits(logits + B, B, 0.0f, 1.0f, b.d_logits + B, stats + 2);
  discriminator_backward(b.x, b.d_logits, 2, B, /*param_grads=*/true, nullptr);
  finish_update(backend_, d_, hyper, b, 0, 4, 2 * static_cast<size_t>(B), inject_nan);
}

void Gan::update_generator(const StepBuffers& b, int B, const AdamHyper& hyper, bool inject_nan) {
  float* fake = b.x + static_cast<size_t>(B) * shape_.image_pixels;
  const float* logits = discriminator_forward(fake, 1, B);
  float* stats = b.guard ? b.guard : b.stats + 4;
  if (b.guard) backend_.fill_zero(b.guard, 3 * sizeof(float));  // 2 stats, the skip flag
  backend_.bce_with_logits(logits, B, 1.0f, 1.0f, b.d_logits, stats);
  discriminator_backward(fake, b.d_logits, 1, B, /*param_grads=*/false, b.d_fake);
  generator_backward(b.z, fake, b.d_fake, B);
  finish_update(backend_, g_, hyper, b, 4, 2, static_cast<size_t>(B), inject_nan);
}

// d_top (rows, last layer's out) is the gradient w.r.t. the last layer's activated output.
// Walks down the stack: dZ = dY * act'(Y), then the layer's dW, db and dX. Scratch buffers
// a and b alternate; d_top may be one of them or a caller's buffer (left untouched).
void Gan::backward_through(Network& net, const std::vector<LinearLayer>& layers,
                           const std::vector<float*>& outputs, const float* input, float* d_top,
                           int rows, bool param_grads, float* d_input) {
  const float* d_y = d_top;
  for (int l = static_cast<int>(layers.size()) - 1; l >= 0; --l) {
    const LinearLayer& layer = layers[l];
    float* d_z = d_y == scratch_a_.get() ? scratch_b_.get() : scratch_a_.get();
    float* d_x_buf = d_z == scratch_a_.get() ? scratch_b_.get() : scratch_a_.get();
    backend_.activation_backward(outputs[l], d_y, d_z, static_cast<size_t>(rows) * layer.out,
                                 layer.act, shape_.leaky_slope);
    const float* x = l == 0 ? input : outputs[l - 1];
    float* d_x = l == 0 ? d_input : d_x_buf;
    float* d_w = param_grads ? net.grads + layer.weight : nullptr;
    float* d_b = param_grads && layer.has_bias ? net.grads + layer.bias : nullptr;
    if (d_x != nullptr || d_w != nullptr)
      backend_.linear_backward(x, net.params + layer.weight, d_z, d_x, d_w, d_b, rows, layer.in,
                               layer.out, false);
    d_y = d_x;
  }
}

}  // namespace mnistgan
