// model.h: the MLP GAN, written once against the Backend op interface.
//
//   G: z (B, latent) -> [Linear -> LeakyReLU(0.2)] x hidden_g -> Linear -> tanh -> (B, 784)
//      (the last activation is shape.generator_output: tanh for MNIST, none for the 1-D toy)
//   D: x (B, 784) -> [Linear -> LeakyReLU(0.2)] x hidden_d -> h (B, H)
//        -> minibatch discrimination: M = h T^T (B, K*C), o (B, K) (see backend.h)
//        -> Linear on [h | o] (B, H + K) -> logit (B)
//      (with mbd_kernels = 0 the last Linear takes h directly).
//   Conditional (shape.classes > 0): G's input is [z | one_hot(label)] (B, latent + classes)
//   and D's is [x | one_hot(label)] (B, 784 + classes), built with one_hot and concat_cols;
//   D's input gradient is split back to its image part. The forward/backward calls then take
//   the rows' labels (int32, on the backend); an unconditional model takes none.
//
// Each network's parameters live in one flat buffer (weights, grads, Adam m and v are four
// buffers of the same layout) so Adam is one op per network and a checkpoint is a list of
// named views into it. The discriminator runs on `groups` independent minibatches of B
// rows at once (the D step pushes real and fake through together as 2 groups, so every
// GEMM has twice the rows) while minibatch discrimination still compares rows only within
// their own group, exactly as two separate passes would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"  // BackendBuffer
#include "core/config.h"
#include "model/mlp.h"  // LinearLayer, mlp_forward, mlp_backward

namespace mnistgan {

// A named view into a network's flat parameter buffer.
struct ParamTensor {
  std::string name;            // e.g. "G.fc0.weight"
  std::vector<int64_t> shape;  // (out, in) for weights, (out) for biases
  size_t offset = 0;           // in floats
  size_t size = 0;
};

// ---- the layer stack, written once ------------------------------------------------------

// Which network a layer belongs to.
enum class Net { kGenerator, kDiscriminator };

// What a layer is to the network's forward pass.
enum class LayerRole {
  kStack,          // one of the MLP stack's layers: all of G's, D's hidden layers (mlp.h)
  kMbdProjection,  // D's T of minibatch discrimination: M = h T^T, no bias, no activation
  kLogit,          // D's last layer, on [h | o] (or h without minibatch discrimination)
};

// One linear layer of the GAN: Y (rows, out) = act(X (rows, in) W^T + b).
struct LayerSpec {
  Net net = Net::kGenerator;
  LayerRole role = LayerRole::kStack;
  std::string name;  // the checkpoint's tensor prefix: "G.fc0", "D.fc2", "D.mbd", "D.out"
  int in = 0, out = 0;
  Activation act = Activation::kNone;
  bool has_bias = true;
  size_t parameter_count() const;  // out * in, + out with a bias
};

// The GAN's layers, G's then D's, each network's in the order its tensors lie in its flat
// parameter buffer (and so in a checkpoint); with the default shape:
//   G.fc0 100 -> 256, G.fc1 256 -> 512, G.fc2 512 -> 1024 (LeakyReLU), G.fc3 1024 -> 784 (tanh)
//   D.fc0 784 -> 1024, D.fc1 1024 -> 512, D.fc2 512 -> 256 (LeakyReLU),
//   D.mbd 256 -> 500 (T: K = 100 kernels x C = 5, no bias), D.out 256 + 100 -> 1 (the logit)
// G's last activation is shape.generator_output; without minibatch discrimination
// (mbd_kernels = 0) there is no D.mbd and D.out takes 256. A conditional model (classes > 0)
// has G.fc0 latent + classes -> 256 and D.fc0 784 + classes -> 1024 (the one-hot label). Gan, the
// checkpoint size bound (train/disk_space) and the benchmark's layer shapes are all built from this
// list.
std::vector<LayerSpec> gan_layers(const ModelShape& shape);
// Parameters of `net` in `layers` (one network's flat buffer, in floats).
size_t parameter_count(const std::vector<LayerSpec>& layers, Net net);

// One network's parameters, gradients and Adam state, all on the backend.
struct Network {
  std::vector<ParamTensor> tensors;
  size_t size = 0;  // floats in each of params, grads, m, v
  // Views of the buffers allocate() makes (the ops take plain pointers); null before it.
  float* params = nullptr;
  float* grads = nullptr;
  float* adam_m = nullptr;
  float* adam_v = nullptr;
  int64_t* adam_step = nullptr;  // Adam's t - 1 (updates done so far), on the backend

  size_t add_tensor(const std::string& name, std::vector<int64_t> shape);
  // After the last add_tensor: params, grads, m and v (size floats each) and the step count,
  // zeroed, on `backend`; freed with the Network.
  void allocate(Backend& backend);

 private:
  BackendBuffer<float> params_memory_, grads_memory_, m_memory_, v_memory_;
  BackendBuffer<int64_t> step_memory_;
};

// ---- one training step's buffers ------------------------------------------------------

// The slots of StepBuffers::stats: sums over the steps since the host last read them (each
// BCE call adds its mean loss and mean sigmoid, backend.h's bce_with_logits).
enum StatSlot : int {
  kStatRealLoss = 0,        // D update: BCE of the real rows against the real label
  kStatRealScore = 1,       //   mean D(x)
  kStatFakeLoss = 2,        //   BCE of the fake rows against 0
  kStatFakeScore = 3,       //   mean D(G(z))
  kStatGeneratorLoss = 4,   // G update: the non-saturating BCE of the fakes against 1
  kStatGeneratorScore = 5,  //   mean D(G(z)), through the updated D
  kStatNonfinite = 6,       // the trainer's count of NaN/Inf among the slots above
  kStatSlots = 7,
};
constexpr int kDiscriminatorStats = kStatFakeScore + 1;  // a D update's slots: 0-3
constexpr int kGeneratorStats = 2;                       // a G update's: 4-5

// The slots of StepBuffers::guard (--nan-policy skip-step): an update writes its stats here
// (from slot 0, in StatSlot's order), then counts the NaN/Inf in them, its logit gradients and
// its parameter gradients into its skip slot, right after its stats; Adam, Adam's step count
// and the stats' sum skip the update when that count is not 0.
enum GuardSlot : int {
  kGuardStats = 0,
  kGuardGeneratorSkip = kGuardStats + kGeneratorStats,          // 2, after a G update
  kGuardDiscriminatorSkip = kGuardStats + kDiscriminatorStats,  // 4, after a D update
  kGuardSlots = 5,
};

// The backend buffers of one training step on B-row batches (the trainer's and the toy's).
struct StepBuffers {
  float* x = nullptr;         // (2B, pixels): [real | fake]; the caller fills the real rows
  const float* z = nullptr;   // (B, latent): the noise, filled by the caller
  float* d_logits = nullptr;  // (2B) scratch
  float* d_fake = nullptr;    // (B, pixels) scratch
  float* stats = nullptr;     // (kStatSlots) the StatSlot sums; the updates add to slots 0-5
  // nullptr, or (kGuardSlots): --nan-policy skip-step's scratch. After update_generator,
  // guard[kGuardGeneratorSkip] != 0 iff G's update was skipped (the EMA update in G's
  // Adam op skips with it).
  float* guard = nullptr;
  // (2B) int32 [real | fake] labels, filled by the caller; nullptr for an unconditional model.
  const int32_t* labels = nullptr;
};

class Gan {
 public:
  // Allocates parameters and activations for G on up to max_batch rows and D on up to
  // max_groups * max_batch rows.
  Gan(Backend& backend, const ModelShape& shape, int max_batch, int max_groups = 2);
  Gan(const Gan&) = delete;
  Gan& operator=(const Gan&) = delete;

  // Initialisation, drawn from Philox so it is the same on every backend: every weight
  // He-uniform for LeakyReLU(0.2) (torch.nn.init.kaiming_uniform_(w, a=0.2)), biases 0,
  // the minibatch-discrimination tensor T ~ N(0, 1); see model.cpp for why. Adam state 0.
  void init_params(uint64_t seed);

  // z (rows, latent) -> images (rows, pixels), written to `images` (a backend buffer that
  // must stay untouched until generator_backward). labels (rows): the asked-for classes of a
  // conditional model (required there; nullptr otherwise).
  void generator_forward(const float* z, float* images, int rows, const int32_t* labels = nullptr) {
    generator_forward_with(g_.params, z, images, rows, labels);
  }
  // d_images (rows, pixels) -> G.grads (overwritten); z and labels as generator_forward's.
  void generator_backward(const float* z, const float* images, const float* d_images, int rows,
                          const int32_t* labels = nullptr);

  // x (groups*B, pixels) -> logits (groups*B); returns the logits buffer. labels (groups*B)
  // as generator_forward's.
  const float* discriminator_forward(const float* x, int groups, int B,
                                     const int32_t* labels = nullptr);
  // d_logits (groups*B) -> D.grads (overwritten) when param_grads, and d_x (groups*B, pixels)
  // when d_x is not null (the image part only, for a conditional model). Needs the
  // activations of the last discriminator_forward (and its input, x or [x | one-hot]).
  void discriminator_backward(const float* x, const float* d_logits, int groups, int B,
                              bool param_grads, float* d_x);

  // One update of D: x[B:2B] = G(z), BCE of D(x) (two groups) against real_label and 0, Adam.
  // Then one of G: the non-saturating BCE of those fake rows through the updated D, Adam, and
  // with ema_decay > 0 (enable_ema() first) the EMA generator's update in the same op.
  // With b.guard (--nan-policy skip-step) an update counts the NaN/Inf in its stats, logit and
  // parameter gradients and, if any, skips Adam, Adam's step count and its stats, all on the
  // backend (no host sync: a step stays one graph). inject_nan: a test hook's NaN gradient.
  // d_update: which D update of the step this is (its dropout masks' pass, 1 + d_update).
  void update_discriminator(const StepBuffers& b, int B, float real_label, const AdamHyper& hyper,
                            bool inject_nan = false, int d_update = 0);
  void update_generator(const StepBuffers& b, int B, const AdamHyper& hyper,
                        bool inject_nan = false, float ema_decay = 0.0f);

  // ---- dropout in D (--d-dropout) ----
  // Inverted dropout with probability p after each of D's hidden LeakyReLU layers (not on the
  // input, the minibatch-discrimination features o or the logit), as in Goodfellow et al.
  // 2014's MNIST discriminator. It is on in both of D's training passes: the D update's, and
  // the G update's pass through D, so G follows the gradient of the same stochastic D that is
  // trained (as a framework's train-mode forward would); never in discriminator_forward
  // (evaluation, tests). Masks: Philox keyed by (seed, dropout_stream(pass, layer)), counter
  // (element, *step) with `step` the trainer's backend step counter (backend.h), so they are
  // the same on every backend, in a replayed graph and after a resume. p = 0: off.
  void set_discriminator_dropout(float p, uint64_t seed, const int64_t* step);

  // ---- the EMA generator ----
  // An exponential moving average of G's weights (same flat layout as G's params), kept on
  // the backend: sampled from instead of the raw weights, it smooths out the step-to-step
  // oscillation of the adversarial game. enable_ema() allocates it as a copy of G's current
  // weights (idempotent: a second call re-copies them).
  void enable_ema();
  void disable_ema();  // frees it
  bool has_ema() const { return !g_ema_.empty(); }
  float* generator_ema() { return g_ema_.get(); }  // (G.size) or nullptr
  // Which weights sample_forward() uses: the EMA's when enabled and `use` is true (the
  // default), G's own otherwise (--raw-generator).
  void sample_from_ema(bool use) { sample_from_ema_ = use; }
  bool samples_from_ema() const { return sample_from_ema_ && !g_ema_.empty(); }
  // generator_forward for sampling (grids, `sample`, `eval`): with the weights chosen above.
  void sample_forward(const float* z, float* images, int rows, const int32_t* labels = nullptr);
  bool conditional() const { return shape_.classes > 0; }

  const ModelShape& shape() const { return shape_; }
  Network& generator() { return g_; }
  Network& discriminator() { return d_; }
  int max_batch() const { return max_batch_; }

 private:
  // D's hidden stack (and minibatch discrimination) on x (groups*B, pixels): the input of the
  // logit layer, features_ = [h | o] (rows, H + K), or h without minibatch discrimination.
  // dropout: D's hidden stack's (training_dropout), or none.
  const float* discriminator_top(const float* x, int groups, int B, const int32_t* labels,
                                 const Dropout& dropout = {});
  // From d_top_ (the gradient w.r.t. discriminator_top's output) down to D.grads (when
  // param_grads; the logit layer's are the caller's) and d_x (when not null); dropout: the
  // discriminator_top call's.
  void backward_below_logit(const float* x, int groups, int B, bool param_grads, float* d_x,
                            const Dropout& dropout = {});
  // The dropout of D's hidden stack in training pass `pass` (backend.h's dropout_stream; layer
  // l adds l), or none when off.
  Dropout training_dropout(int pass) const;
  // generator_forward on the weights `params` (G's layout): G's own or the EMA's.
  void generator_forward_with(const float* params, const float* z, float* images, int rows,
                              const int32_t* labels);
  // A conditional model's input [x | one_hot(labels)] (rows, width + classes) built in `buf`;
  // x itself for an unconditional one. Throws std::invalid_argument naming `op` when labels
  // are missing (conditional) or given (unconditional).
  const float* with_labels(const float* x, const int32_t* labels, int rows, int width, float* buf,
                           const char* op);
  // G's outputs for mlp_forward/backward: its hidden layers' buffers, then `images`.
  std::vector<float*> generator_outputs(float* images) const;

  Backend& backend_;
  ModelShape shape_;
  int max_batch_, max_groups_;
  Network g_, d_;
  std::vector<LinearLayer> g_layers_, d_layers_;  // the MLP stacks (d_layers_: D's hidden)
  LinearLayer mbd_t_;                             // T as a bias-free linear layer
  LinearLayer d_out_;                             // the final logit layer
  // Each hidden layer's output, (rows, out); G's last output is the caller's `images`.
  std::vector<BackendBuffer<float>> g_acts_, d_acts_;
  BackendBuffer<float> mbd_m_;      // (rows, K*C)
  BackendBuffer<float> features_;   // (rows, H + K)
  BackendBuffer<float> logits_;     // (rows)
  BackendBuffer<float> d_top_;      // (rows, d_out.in): gradient w.r.t. the logit layer's input
  BackendBuffer<float> scratch_a_;  // gradient ping-pong buffers, (rows, widest layer)
  BackendBuffer<float> scratch_b_;
  BackendBuffer<float> g_ema_;  // (G.size): the EMA generator, when enabled
  // Conditional models only (empty otherwise):
  BackendBuffer<float> one_hot_;       // (rows, classes)
  BackendBuffer<float> g_input_;       // (max_batch, latent + classes): [z | one-hot]
  BackendBuffer<float> d_input_;       // (rows, pixels + classes): [x | one-hot]
  BackendBuffer<float> d_input_grad_;  // (rows, pixels + classes): D's input gradient
  bool sample_from_ema_ = true;
  Dropout d_dropout_;  // set_discriminator_dropout's p, seed and step (stream per pass)
};

}  // namespace mnistgan
