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

std::vector<LayerSpec> gan_layers(const ModelShape& shape) {
  std::vector<LayerSpec> layers;
  auto add = [&](Net net, LayerRole role, std::string name, int in, int out, Activation act,
                 bool has_bias) {
    layers.push_back({net, role, std::move(name), in, out, act, has_bias});
  };
  // Generator: latent (+ classes) -> hidden_g... -> pixels (shape.generator_output: tanh for
  // MNIST).
  if (shape.classes < 0) throw std::invalid_argument("gan_layers: classes must be >= 0");
  int in = shape.latent_dim + shape.classes;
  for (size_t l = 0; l <= shape.hidden_g.size(); ++l) {
    const bool last = l == shape.hidden_g.size();
    const int out = last ? shape.image_pixels : shape.hidden_g[l];
    add(Net::kGenerator, LayerRole::kStack, "G.fc" + std::to_string(l), in, out,
        last ? shape.generator_output : Activation::kLeakyRelu, true);
    in = out;
  }
  // Discriminator: pixels -> hidden_d (LeakyReLU) -> [minibatch discrimination] -> 1 logit.
  in = shape.image_pixels + shape.classes;
  for (size_t l = 0; l < shape.hidden_d.size(); ++l) {
    add(Net::kDiscriminator, LayerRole::kStack, "D.fc" + std::to_string(l), in, shape.hidden_d[l],
        Activation::kLeakyRelu, true);
    in = shape.hidden_d[l];
  }
  const int kernels = std::max(0, shape.mbd_kernels);
  if (kernels > 0)
    add(Net::kDiscriminator, LayerRole::kMbdProjection, "D.mbd", in, kernels * shape.mbd_dims,
        Activation::kNone, false);
  add(Net::kDiscriminator, LayerRole::kLogit, "D.out", in + kernels, 1, Activation::kNone, true);
  return layers;
}

size_t LayerSpec::parameter_count() const {
  return static_cast<size_t>(out) * static_cast<size_t>(in) + (has_bias ? out : 0);
}

size_t parameter_count(const std::vector<LayerSpec>& layers, Net net) {
  size_t n = 0;
  for (const LayerSpec& layer : layers)
    if (layer.net == net) n += layer.parameter_count();
  return n;
}

namespace {

// The plain pointers of `buffers`, in order.
std::vector<float*> pointers(const std::vector<BackendBuffer<float>>& buffers) {
  std::vector<float*> out;
  for (const BackendBuffer<float>& b : buffers) out.push_back(b.get());
  return out;
}

// Adds the layer's tensors ("<name>.weight" (out, in), "<name>.bias" (out)) to `net`.
LinearLayer add_linear(Network& net, const LayerSpec& spec) {
  LinearLayer layer;
  layer.in = spec.in;
  layer.out = spec.out;
  layer.act = spec.act;
  layer.has_bias = spec.has_bias;
  layer.weight = net.add_tensor(spec.name + ".weight", {spec.out, spec.in});
  if (spec.has_bias) layer.bias = net.add_tensor(spec.name + ".bias", {spec.out});
  return layer;
}

// bce_with_logits adds a (loss, score) pair; an update's stats are consecutive slots.
static_assert(kStatRealScore == kStatRealLoss + 1 && kStatFakeLoss == kStatRealLoss + 2 &&
                  kStatFakeScore == kStatRealLoss + 3 && kDiscriminatorStats == 4,
              "a D update's stats: real loss, real score, fake loss, fake score");
static_assert(kStatGeneratorScore == kStatGeneratorLoss + 1 && kGeneratorStats == 2,
              "a G update's stats: loss, score");

// Base of the Philox streams used for initialisation; + network * 0x1000 + tensor index.
constexpr uint32_t kInitStreamBase = 0x10000u;

// After an update's backward pass: under --nan-policy skip-step, NaN/Inf in its n_stats stats
// (in b.guard from kGuardStats, bound for b.stats from first_stat), n_logits logit gradients
// or parameter gradients, counted into guard[skip_slot], skip Adam (with its step count and the
// EMA update `ema`, when given) and the stats' sum.
void finish_update(Backend& backend, Network& net, const AdamHyper& hyper, const StepBuffers& b,
                   StatSlot first_stat, int n_stats, GuardSlot skip_slot, size_t n_logits,
                   bool inject_nan, float* ema, float ema_decay) {
  static const float kNan = NAN;  // static: the CUDA copy may read it after this returns
  if (inject_nan) backend.to_backend(net.grads, &kNan, sizeof(kNan));
  float* skip = b.guard ? b.guard + skip_slot : nullptr;
  if (skip) {
    backend.count_nonfinite(b.guard + kGuardStats, n_stats, skip);
    backend.count_nonfinite(b.d_logits, n_logits, skip);
    backend.count_nonfinite(net.grads, net.size, skip);
  }
  // Adam, its step count and (for G) the EMA: one op.
  backend.adam_step(net.params, net.grads, net.adam_m, net.adam_v, net.size, hyper, net.adam_step,
                    skip, ema, ema_decay);
  if (skip) backend.accumulate(b.guard + kGuardStats, b.stats + first_stat, n_stats, skip);
}
}  // namespace

Gan::Gan(Backend& backend, const ModelShape& shape, int max_batch, int max_groups)
    : backend_(backend), shape_(shape), max_batch_(max_batch), max_groups_(max_groups) {
  if (max_batch < 1 || max_groups < 1) throw std::invalid_argument("Gan: max_batch must be >= 1");
  if (shape.hidden_d.empty() || shape.hidden_g.empty())
    throw std::invalid_argument("Gan: both networks need at least one hidden layer");

  int widest = 0;  // of any layer's input or output
  for (const LayerSpec& spec : gan_layers(shape)) {
    const LinearLayer layer = add_linear(spec.net == Net::kGenerator ? g_ : d_, spec);
    switch (spec.role) {
      case LayerRole::kStack:
        (spec.net == Net::kGenerator ? g_layers_ : d_layers_).push_back(layer);
        break;
      case LayerRole::kMbdProjection:
        mbd_t_ = layer;
        break;
      case LayerRole::kLogit:
        d_out_ = layer;
        break;
    }
    widest = std::max({widest, spec.in, spec.out});
  }
  g_.allocate(backend_);
  d_.allocate(backend_);

  const size_t g_rows = static_cast<size_t>(max_batch);
  const size_t d_rows = g_rows * max_groups;
  for (size_t l = 0; l + 1 < g_layers_.size(); ++l)
    g_acts_.emplace_back(backend_, g_rows * g_layers_[l].out);
  for (const LinearLayer& layer : d_layers_) d_acts_.emplace_back(backend_, d_rows * layer.out);
  if (shape.mbd_kernels > 0) {
    mbd_m_ = BackendBuffer<float>(backend_, d_rows * mbd_t_.out);
    features_ = BackendBuffer<float>(backend_, d_rows * d_out_.in);
  }
  logits_ = BackendBuffer<float>(backend_, d_rows);
  d_top_ = BackendBuffer<float>(backend_, d_rows * d_out_.in);
  const size_t scratch = std::max(g_rows, d_rows) * widest;
  scratch_a_ = BackendBuffer<float>(backend_, scratch);
  scratch_b_ = BackendBuffer<float>(backend_, scratch);
  if (shape.classes > 0) {
    one_hot_ = BackendBuffer<float>(backend_, d_rows * shape.classes);
    g_input_ = BackendBuffer<float>(backend_, g_rows * (shape.latent_dim + shape.classes));
    d_input_ = BackendBuffer<float>(backend_, d_rows * (shape.image_pixels + shape.classes));
    d_input_grad_ = BackendBuffer<float>(backend_, d_rows * (shape.image_pixels + shape.classes));
  }
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

void Gan::sample_forward(const float* z, float* images, int rows, const int32_t* labels) {
  generator_forward_with(samples_from_ema() ? g_ema_.get() : g_.params, z, images, rows, labels);
}

std::vector<float*> Gan::generator_outputs(float* images) const {
  std::vector<float*> outputs = pointers(g_acts_);
  outputs.push_back(images);
  return outputs;
}

const float* Gan::with_labels(const float* x, const int32_t* labels, int rows, int width,
                              float* buf, const char* op) {
  if (shape_.classes == 0) {
    if (labels != nullptr)
      throw std::invalid_argument(std::string(op) + ": labels given to an unconditional model");
    return x;
  }
  if (labels == nullptr)
    throw std::invalid_argument(std::string(op) + ": a conditional model needs the rows' labels");
  backend_.one_hot(labels, one_hot_.get(), rows, shape_.classes);
  backend_.concat_cols(x, one_hot_.get(), buf, rows, width, shape_.classes);
  return buf;
}

void Gan::generator_forward_with(const float* params, const float* z, float* images, int rows,
                                 const int32_t* labels) {
  if (rows > max_batch_) throw std::invalid_argument("generator_forward: rows > max_batch");
  const float* input =
      with_labels(z, labels, rows, shape_.latent_dim, g_input_.get(), "generator_forward");
  mlp_forward(backend_, params, g_layers_, input, generator_outputs(images), rows,
              shape_.leaky_slope);
}

void Gan::generator_backward(const float* z, const float* images, const float* d_images, int rows,
                             const int32_t* labels) {
  // Rebuilt rather than trusted to be intact: a sample_forward in between may have used it.
  const float* input =
      with_labels(z, labels, rows, shape_.latent_dim, g_input_.get(), "generator_backward");
  mlp_backward(backend_, g_.params, g_.grads, g_layers_, input,
               generator_outputs(const_cast<float*>(images)), d_images, rows, shape_.leaky_slope,
               {scratch_a_.get(), scratch_b_.get()}, /*d_x=*/nullptr);
}

void Gan::set_discriminator_dropout(float p, uint64_t seed, const int64_t* step) {
  if (!(p >= 0.0f && p < 1.0f))
    throw std::invalid_argument("--d-dropout: " + std::to_string(p) + " is outside [0, 1)");
  if (p > 0.0f && step == nullptr)
    throw std::invalid_argument("set_discriminator_dropout: dropout needs the step counter");
  d_dropout_ = Dropout{p, seed, 0, step};
}

Dropout Gan::training_dropout(int pass) const {
  if (!d_dropout_.on()) return {};
  Dropout d = d_dropout_;
  d.stream = dropout_stream(pass, 0);
  return d;
}

const float* Gan::discriminator_top(const float* x, int groups, int B, const int32_t* labels,
                                    const Dropout& dropout) {
  if (groups > max_groups_ || B > max_batch_)
    throw std::invalid_argument("discriminator_forward: more rows than allocated");
  const int rows = groups * B;
  const float* input =
      with_labels(x, labels, rows, shape_.image_pixels, d_input_.get(), "discriminator_forward");
  if (shape_.mbd_kernels == 0) {
    mlp_forward(backend_, d_.params, d_layers_, input, pointers(d_acts_), rows, shape_.leaky_slope,
                0, dropout);
    return d_acts_.back().get();
  }
  // h (rows, H) is written straight into features_ = [h | o] (rows, H + K), o next to it.
  const int width = d_layers_.back().out, ld = d_out_.in;
  std::vector<float*> outputs = pointers(d_acts_);
  outputs.back() = features_.get();
  mlp_forward(backend_, d_.params, d_layers_, input, outputs, rows, shape_.leaky_slope, ld,
              dropout);
  backend_.linear_forward(features_.get(), d_.params + mbd_t_.weight, nullptr, mbd_m_.get(), rows,
                          mbd_t_.in, mbd_t_.out, Activation::kNone, 0.0f, {ld, 0});
  backend_.mbd_forward(mbd_m_.get(), features_.get() + width, groups, B, shape_.mbd_kernels,
                       shape_.mbd_dims, ld);
  return features_.get();
}

const float* Gan::discriminator_forward(const float* x, int groups, int B, const int32_t* labels) {
  const float* top = discriminator_top(x, groups, B, labels);
  backend_.linear_forward(top, d_.params + d_out_.weight, d_.params + d_out_.bias, logits_.get(),
                          groups * B, d_out_.in, 1, Activation::kNone, 0.0f);
  return logits_.get();
}

void Gan::discriminator_backward(const float* x, const float* d_logits, int groups, int B,
                                 bool param_grads, float* d_x) {
  const int rows = groups * B;
  const float* top = shape_.mbd_kernels > 0 ? features_.get() : d_acts_.back().get();
  // d top (rows, d_out.in) = d_logit w; dw = d_logit^T top, db = sum of d_logit.
  backend_.linear_backward(top, d_.params + d_out_.weight, nullptr, d_logits, d_top_.get(),
                           param_grads ? d_.grads + d_out_.weight : nullptr,
                           param_grads ? d_.grads + d_out_.bias : nullptr, rows, d_out_.in, 1,
                           Activation::kNone, 0.0f, false);
  backward_below_logit(x, groups, B, param_grads, d_x);
}

void Gan::backward_below_logit(const float* x, int groups, int B, bool param_grads, float* d_x,
                               const Dropout& dropout) {
  const int rows = groups * B;
  const float* d_top = d_top_.get();  // (rows, d_out.in): [dh | do], or dh without mbd
  int ld = 0;
  if (shape_.mbd_kernels > 0) {
    // do = d_top's last K columns; dM from it; then M = h T^T: dT = dM^T h, and dh (d_top's
    // first H columns) gains dM T on top of the logit path's gradient.
    const int width = d_layers_.back().out;
    ld = d_out_.in;
    float* d_m = scratch_b_.get();  // (rows, K*C)
    backend_.mbd_backward(mbd_m_.get(), d_top_.get() + width, d_m, groups, B, shape_.mbd_kernels,
                          shape_.mbd_dims, ld);
    backend_.linear_backward(features_.get(), d_.params + mbd_t_.weight, nullptr, d_m,
                             d_top_.get(), param_grads ? d_.grads + mbd_t_.weight : nullptr,
                             nullptr, rows, mbd_t_.in, mbd_t_.out, Activation::kNone, 0.0f,
                             /*accumulate_dx=*/true, {ld, 0});
  }
  std::vector<float*> outputs = pointers(d_acts_);
  if (shape_.mbd_kernels > 0) outputs.back() = features_.get();
  float* grads = param_grads ? d_.grads : nullptr;
  const MlpScratch scratch{scratch_a_.get(), scratch_b_.get()};
  if (shape_.classes == 0) {
    mlp_backward(backend_, d_.params, grads, d_layers_, x, outputs, d_top, rows,
                 shape_.leaky_slope, scratch, d_x, ld, dropout);
    return;
  }
  // D saw [x | one-hot] (d_input_, from the forward pass); only the image part of its
  // gradient flows on (to G), the label part is a constant's.
  mlp_backward(backend_, d_.params, grads, d_layers_, d_input_.get(), outputs, d_top, rows,
               shape_.leaky_slope, scratch, d_x != nullptr ? d_input_grad_.get() : nullptr, ld,
               dropout);
  if (d_x != nullptr)
    backend_.split_cols(d_input_grad_.get(), d_x, nullptr, rows, shape_.image_pixels,
                        shape_.classes);
}

void Gan::update_discriminator(const StepBuffers& b, int B, float real_label,
                               const AdamHyper& hyper, bool inject_nan, int d_update) {
  float* fake = b.x + static_cast<size_t>(B) * shape_.image_pixels;
  const int32_t* fake_labels = b.labels != nullptr ? b.labels + B : nullptr;
  generator_forward(b.z, fake, B, fake_labels);
  const Dropout dropout = training_dropout(1 + d_update);
  const float* top = discriminator_top(b.x, /*groups=*/2, B, b.labels, dropout);
  // The stats go to b.stats, or under the guard to its slots from kGuardStats, in StatSlot's
  // order: real loss and score, then fake loss and score.
  float* stats = b.guard ? b.guard + kGuardStats : b.stats + kStatRealLoss;
  if (b.guard) backend_.fill_zero(b.guard, (kGuardDiscriminatorSkip + 1) * sizeof(float));
  const float targets[2] = {real_label, 0.0f};
  backend_.logit_bce(top, d_.params + d_out_.weight, d_.params + d_out_.bias, 2, B, d_out_.in,
                     targets, 1.0f, logits_.get(), b.d_logits, d_top_.get(),
                     d_.grads + d_out_.weight, d_.grads + d_out_.bias, stats);
  backward_below_logit(b.x, 2, B, /*param_grads=*/true, nullptr, dropout);
  finish_update(backend_, d_, hyper, b, kStatRealLoss, kDiscriminatorStats, kGuardDiscriminatorSkip,
                2 * static_cast<size_t>(B), inject_nan, nullptr, 0.0f);
}

void Gan::update_generator(const StepBuffers& b, int B, const AdamHyper& hyper, bool inject_nan,
                           float ema_decay) {
  if (ema_decay > 0.0f && g_ema_.empty())
    throw std::logic_error("Gan::update_generator: an EMA decay without enable_ema()");
  float* fake = b.x + static_cast<size_t>(B) * shape_.image_pixels;
  const int32_t* fake_labels = b.labels != nullptr ? b.labels + B : nullptr;
  const Dropout dropout = training_dropout(0);  // the G update's pass through D
  const float* top = discriminator_top(fake, 1, B, fake_labels, dropout);
  float* stats = b.guard ? b.guard + kGuardStats : b.stats + kStatGeneratorLoss;
  if (b.guard) backend_.fill_zero(b.guard, (kGuardGeneratorSkip + 1) * sizeof(float));
  const float target = 1.0f;  // the non-saturating loss: fakes against the real label 1
  backend_.logit_bce(top, d_.params + d_out_.weight, d_.params + d_out_.bias, 1, B, d_out_.in,
                     &target, 1.0f, logits_.get(), b.d_logits, d_top_.get(), nullptr, nullptr,
                     stats);
  backward_below_logit(fake, 1, B, /*param_grads=*/false, b.d_fake, dropout);
  generator_backward(b.z, fake, b.d_fake, B, fake_labels);
  finish_update(backend_, g_, hyper, b, kStatGeneratorLoss, kGeneratorStats, kGuardGeneratorSkip,
                static_cast<size_t>(B), inject_nan, ema_decay > 0.0f ? g_ema_.get() : nullptr,
                ema_decay);
}

}  // namespace mnistgan
