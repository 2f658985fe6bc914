// config.h: every setting of a training run, with its documented default. The CLI maps
// one flag to each field (README's flag table lists them); checkpoints store the whole
// struct as JSON so a run can be resumed and a sample drawn with the same model.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/backend.h"  // Activation

namespace mnistgan {

struct TrainConfig {
  // ---- data and outputs ----
  std::string data_dir = "data/mnist";  // --data: folder with train-images-idx3-ubyte[.gz]
  std::string out_dir = "runs/latest";  // --out: metrics.csv, samples/, checkpoints
  std::string device = "auto";          // --device: cpu | cuda | auto
  std::string resume;                   // --resume: checkpoint to continue from

  // ---- run length: --steps wins when set; otherwise epochs * batches_per_epoch ----
  int64_t epochs = 20;  // --epochs
  int64_t steps = 0;    // --steps: total length of the run (0: from --epochs)
  int batch_size = 64;  // --batch-size

  // ---- model ----
  int latent_dim = 100;                       // --latent-dim: z ~ N(0, 1)^latent_dim
  std::vector<int> hidden_g{256, 512, 1024};  // --hidden-g: generator hidden widths
  std::vector<int> hidden_d{1024, 512, 256};  // --hidden-d: discriminator hidden widths
  int mbd_kernels = 100;                      // --mbd-kernels: 0 turns it off
  int mbd_dims = 5;                           // --mbd-dims
  float leaky_slope = 0.2f;                   // LeakyReLU negative slope (fixed)
  // --conditional: class-conditional GAN. G takes [z | one-hot label] (latent + 10), D takes
  // [image | one-hot label] (pixels + 10); real batches carry their labels, fake labels are
  // drawn uniformly from Philox (stream kLabelStreamBase + d, keyed like the noise). The
  // progress grids have one row per digit; `sample --digit` and eval's per-class figures use it.
  bool conditional = false;

  // ---- optimisation ----
  float lr = 2e-4f;        // --lr: both networks unless --lr-d / --lr-g
  float lr_d = -1.0f;      // --lr-d (negative: use --lr)
  float lr_g = -1.0f;      // --lr-g (negative: use --lr)
  float beta1 = 0.5f;      // --b1
  float beta2 = 0.999f;    // --b2
  float adam_eps = 1e-8f;  // Adam epsilon (fixed)
  // --real-label: BCE target for real images. 0.9 (one-sided label smoothing, Salimans et al.
  // 2016) by default: over 3 seeds of the default 20-epoch run it lowered the final Frechet
  // distance from 38.9 +- 2.6 (1.0) to 29.9 +- 2.8, every seed better (README).
  float real_label = 0.9f;
  // --lr-decay: the learning-rate schedule of both networks. "none": constant. "linear": each
  // network's lr falls linearly to zero over the run, update t of T using lr (1 - (t - 1) / T),
  // where T counts that network's updates (D: steps x --d-steps, G: steps) and t its applied
  // updates (AdamHyper::lr_decay_updates, computed on the backend from Adam's step count).
  std::string lr_decay = "none";
  int d_steps = 1;  // --d-steps: D updates per G update
  // --d-dropout: inverted dropout with this probability after each of D's hidden LeakyReLU
  // layers in its training passes (model.h's set_discriminator_dropout), Philox-keyed by
  // (seed, step). 0: off. In [0, 1). 0.3 by default: over 3 seeds of the 20-epoch run it
  // lowered the final Frechet distance from 28.3 +- 3.4 (0) to 7.5 +- 0.3, every seed better,
  // with KL to uniform 0.065 -> 0.008 (README, docs/study/results/confirm_dropout.csv).
  float d_dropout = 0.3f;
  uint64_t seed = 1;  // --seed
  // --nan-policy: what a non-finite loss or gradient does. "stop": training stops with
  // exit code 3 at the next log row, keeping the last good checkpoint. "skip-step": an
  // update whose loss, logit gradient or parameter gradients hold a NaN/Inf is skipped on
  // the backend (Adam and its step count untouched), counted in metrics.csv's `skipped`
  // column, and training goes on; it still stops when the weights themselves become
  // non-finite or when a network had every update of a log interval skipped.
  std::string nan_policy = "stop";
  // --ema-decay: an exponential moving average of G's weights (the EMA generator), updated
  // after every G update with the decay warmed up as min(decay, (1 + t) / (10 + t)) over G's
  // update count t; the progress grids, --eval-every, `sample` and `eval` use it. 0: off.
  // On by default: over 3 seeds of the default 20-epoch run it lowered the final Frechet
  // distance from 42.7 +- 6.2 to 38.9 +- 2.6 and raised precision and recall (README).
  float ema_decay = 0.999f;
  bool raw_generator = false;  // --raw-generator: grids and evaluations use G's own weights

  // ---- reporting ----
  int64_t log_every = 100;       // --log-every: steps between metrics rows
  int64_t sample_every = 0;      // --sample-every: steps between grids (0: once per epoch)
  int64_t checkpoint_every = 0;  // --checkpoint-every: steps (0: once per epoch)
  int keep_checkpoints = 3;      // --keep-checkpoints: how many step checkpoints to keep
  bool cuda_graph = true;        // --cuda-graph / --no-cuda-graph (CUDA backend only)
  // --eval-every: steps between sample-quality evaluations (eval.h), also run at the end;
  // their figures fill metrics.csv's eval_* columns. 0: off.
  int64_t eval_every = 0;
  std::string classifier = "models/mnist_classifier.bin";  // --classifier: for --eval-every
  int64_t eval_samples = 10000;  // --eval-samples: generated (and real) images per evaluation
  // --final-eval / --no-final-eval: evaluate the final generator (table and eval.json) when
  // --classifier exists, also without --eval-every.
  bool final_eval = true;

  float effective_lr_d() const { return lr_d >= 0 ? lr_d : lr; }
  float effective_lr_g() const { return lr_g >= 0 ? lr_g : lr; }
  // Throws std::invalid_argument naming the flag when a value is out of range.
  void validate() const;
};

// The model-shape fields only: what a checkpoint must agree with to be loaded.
struct ModelShape {
  int image_pixels = 784;
  int latent_dim = 100;
  std::vector<int> hidden_g{256, 512, 1024};
  std::vector<int> hidden_d{1024, 512, 256};
  int mbd_kernels = 100;
  int mbd_dims = 5;
  float leaky_slope = 0.2f;
  // The generator's last layer: tanh for images in [-1, 1]; kNone (linear) for the 1-D toy,
  // whose N(4, 1.25) target tanh cannot reach. Not a flag: `mnistgan train` always uses tanh.
  Activation generator_output = Activation::kTanh;
  // Classes of a conditional model (the one-hot label appended to G's and D's input); 0: an
  // unconditional model.
  int classes = 0;
};

// Classes of a conditional MNIST model (the digits 0-9).
constexpr int kDigitClasses = 10;

ModelShape model_shape_of(const TrainConfig& config, int image_pixels);

// The Adam flags `train` and `toy` share: --lr > 0, --lr-d / --lr-g > 0 or -1 (not given: use
// --lr), --b1 / --b2 in [0, 1). Throws std::invalid_argument naming the flag.
void validate_adam_flags(float lr, float lr_d, float lr_g, float beta1, float beta2);
// The minibatch-discrimination flags they share: --mbd-kernels in [0 (off), 1024],
// --mbd-dims in [1, 64].
void validate_mbd_flags(int kernels, int dims);

void to_json(nlohmann::json& j, const TrainConfig& c);
void from_json(const nlohmann::json& j, TrainConfig& c);

}  // namespace mnistgan
