// toy.h: `mnistgan toy`, the 1-D Gaussian demo of mode collapse (as in the classic 1-D GAN
// demos that accompanied Salimans et al. 2016, "Improved Techniques for Training GANs").
//
//   real x ~ N(target_mean, target_std^2)         (B, 1), drawn on the host
//   z ~ U(-1, 1)                                   (B, 1), drawn on the host
//   G: z -> 32 -> 32 -> 1   LeakyReLU(0.2), linear output (tanh could not reach N(4, 1.25))
//   D: x -> 32 -> 32 -> [minibatch discrimination, K x C] -> 1 logit
//
// The networks are the project's Gan (model.h) with 1-pixel "images" and a 1-d latent, so the
// same ops run on the CPU and CUDA backends, and the step is the trainer's: D on [real | fake]
// as two groups, then G through the updated D with the non-saturating loss, Adam on both.
// Noise and real batches come from Philox (philox.h) keyed by (seed, stream, step) and are
// uploaded every step, so a run is reproducible from its seed.
//
// Every log_every steps (and at steps 0 and the end) 10,000 samples G(z_eval) from fixed
// noise are compared with 10,000 fixed real samples: moments, KS and W1 (toy_stats.h). A run
// collapsed when the final generated std is under half the target std.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.h"
#include "toy/toy_stats.h"

namespace mnistgan {

// Every setting of `mnistgan toy`, with its default (README's `mnistgan toy` table).
// Defaults follow the 1-D demo of AYLIEN/gan-intro (batch 8, 5000 steps, Adam 1e-3 with
// TensorFlow's betas 0.9/0.999, minibatch discrimination 5 kernels x 3 dims), with this
// issue's target N(4, 1.25), U(-1, 1) noise and 32-32 hidden layers.
struct ToyOptions {
  std::string out_dir = "runs/toy";  // --out: metrics.csv, histogram.png (summary.csv with --seeds)
  std::string device = "auto";       // --device: cpu | cuda | auto
  double target_mean = 4.0;          // --target-mean
  double target_std = 1.25;          // --target-std
  int batch_size = 8;                // --batch-size: real and fake samples per step
  int64_t steps = 5000;              // --steps
  float lr = 1e-3f;                  // --lr: both networks unless --lr-d / --lr-g
  float lr_d = -1.0f;                // --lr-d (negative: use --lr)
  float lr_g = -1.0f;                // --lr-g (negative: use --lr)
  float beta1 = 0.9f;                // --b1
  float beta2 = 0.999f;              // --b2
  int mbd_kernels = 5;               // --mbd-kernels: 0 turns minibatch discrimination off
  int mbd_dims = 3;                  // --mbd-dims
  uint64_t seed = 1;                 // --seed: the first seed
  int64_t log_every = 500;           // --log-every: steps between evaluations
  int seeds = 1;                     // --seeds N: runs seeds seed .. seed + N - 1
  bool compare_mbd = false;          // --compare-mbd: each seed with and without the layer

  // Fixed by the demo's definition (not flags).
  std::vector<int> hidden_g{32, 32};
  std::vector<int> hidden_d{32, 32};
  float leaky_slope = 0.2f;
  float adam_eps = 1e-8f;
  static constexpr int kEvalSamples = 10000;     // generated and real samples per evaluation
  static constexpr double kCollapseRatio = 0.5;  // collapsed: final std < ratio * target_std

  float effective_lr_d() const { return lr_d >= 0 ? lr_d : lr; }
  float effective_lr_g() const { return lr_g >= 0 ? lr_g : lr; }
  // Throws std::invalid_argument naming the flag when a value is out of range.
  void validate() const;
};

// One evaluation: loss averages since the previous one, and generated vs real statistics.
struct ToyEval {
  int64_t step = 0;
  double d_loss = 0, g_loss = 0, d_x = 0, d_g_z = 0;  // NaN at step 0 (no step taken yet)
  Moments generated, real;
  double ks = 0, w1 = 0;
  bool finite = true;  // false: the generator produced NaN/Inf (moments etc. are not set)
};

struct ToyRunResult {
  uint64_t seed = 0;
  int mbd_kernels = 0;
  std::vector<ToyEval> evals;    // step 0, every log_every steps, and the last step
  std::vector<float> generated;  // the last evaluation's 10,000 samples
  std::vector<float> real;       // the fixed 10,000 real samples
  double seconds = 0;            // wall time of the training steps and evaluations
  bool diverged() const { return evals.empty() || !evals.back().finite; }
  bool collapsed(double target_std) const;
  // The smallest generated std at any evaluation after step 0 (a collapse that recovered
  // before the end shows here); NaN when there is none.
  double min_std() const;
};

// Trains one toy GAN on `backend` with options' settings but the given seed and
// mbd_kernels. Writes metrics.csv (rewritten atomically at every evaluation) and
// histogram.png into out_dir when it is not empty; prints a line per evaluation when
// verbose. Stops early (result.diverged()) if the generator's output becomes non-finite.
ToyRunResult train_toy(Backend& backend, const ToyOptions& options, uint64_t seed, int mbd_kernels,
                       const std::string& out_dir, bool verbose);


// The whole `mnistgan toy` command: one run, or with --seeds / --compare-mbd a batch of runs
// and a summary (summary.csv). Returns the exit code (0; 3 when a single run diverged).
int run_toy(const ToyOptions& options);

}  // namespace mnistgan
