// flags.cpp: the command-line flags several commands share, with one help text each.
#include "cli/flags.h"

#include <CLI/CLI.hpp>
#include <cstdlib>  // strtoll
#include <string>

#include "core/config.h"

namespace mnistgan {

void add_device_flag(CLI::App& cmd, std::string& device) {
  cmd.add_option("--device", device, "cpu, cuda or auto")->capture_default_str();
}

void add_adam_flags(CLI::App& cmd, float& lr, float& lr_d, float& lr_g, float& beta1,
                    float& beta2) {
  cmd.add_option("--lr", lr, "Adam learning rate of both networks")->capture_default_str();
  cmd.add_option("--lr-d", lr_d, "discriminator learning rate (default: --lr)");
  cmd.add_option("--lr-g", lr_g, "generator learning rate (default: --lr)");
  cmd.add_option("--b1", beta1, "Adam beta1")->capture_default_str();
  cmd.add_option("--b2", beta2, "Adam beta2")->capture_default_str();
}

void add_mbd_flags(CLI::App& cmd, int& kernels, int& dims) {
  cmd.add_option("--mbd-kernels", kernels, "minibatch-discrimination kernels (0: off)")
      ->capture_default_str();
  cmd.add_option("--mbd-dims", dims, "minibatch-discrimination dims per kernel")
      ->capture_default_str();
}

void add_train_flags(CLI::App& cmd, TrainConfig& c) {
  cmd.add_option("--data", c.data_dir, "folder with the MNIST IDX files (raw or .gz)")
      ->capture_default_str();
  cmd.add_option("--out", c.out_dir, "output folder: metrics.csv, samples/, checkpoints/")
      ->capture_default_str();
  add_device_flag(cmd, c.device);
  auto* epochs = cmd.add_option("--epochs", c.epochs, "epochs to train")->capture_default_str();
  auto* steps =
      cmd.add_option("--steps", c.steps, "total steps of the run (overrides --epochs)")
          ->check(CLI::Validator(
              [](std::string& value) {
                char* end = nullptr;
                const long long n = std::strtoll(value.c_str(), &end, 10);
                return *end == '\0' && n >= 1 ? std::string() : "must be a whole number >= 1";
              },
              "STEPS"));
  epochs->excludes(steps);
  cmd.add_option("--batch-size", c.batch_size, "images per batch")->capture_default_str();
  add_adam_flags(cmd, c.lr, c.lr_d, c.lr_g, c.beta1, c.beta2);
  cmd.add_option("--latent-dim", c.latent_dim, "noise dimension")->capture_default_str();
  cmd.add_option("--hidden-g", c.hidden_g, "generator hidden widths, e.g. 256,512,1024")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--hidden-d", c.hidden_d, "discriminator hidden widths, e.g. 1024,512,256")
      ->delimiter(',')
      ->capture_default_str();
  add_mbd_flags(cmd, c.mbd_kernels, c.mbd_dims);
  cmd.add_flag("--conditional", c.conditional,
               "class-conditional GAN: G and D also take the digit (one-hot); grids get one row "
               "per digit");
  cmd.add_option("--real-label", c.real_label,
                 "target for real images (0.9: one-sided smoothing; 1: none)")
      ->capture_default_str();
  cmd.add_option("--lr-decay", c.lr_decay,
                 "learning-rate schedule of both networks: none (constant) or linear (to zero "
                 "over the run)")
      ->capture_default_str();
  cmd.add_option("--d-steps", c.d_steps, "D updates per G update")->capture_default_str();
  cmd.add_option("--d-dropout", c.d_dropout,
                 "dropout probability after each of D's hidden layers in training (0: off)")
      ->capture_default_str();
  cmd.add_option("--seed", c.seed, "seed of every random draw")->capture_default_str();
  cmd.add_option("--nan-policy", c.nan_policy,
                 "non-finite loss or gradient: stop (exit 3) or skip-step (skip that update)")
      ->capture_default_str();
  cmd.add_option("--ema-decay", c.ema_decay,
                 "EMA of G's weights, used for grids and evaluations (0: off)")
      ->capture_default_str();
  cmd.add_flag("--raw-generator", c.raw_generator,
               "grids and evaluations from G's own weights instead of the EMA");
  cmd.add_option("--log-every", c.log_every, "steps between metrics rows")->capture_default_str();
  cmd.add_option("--sample-every", c.sample_every, "steps between sample grids (0: each epoch)")
      ->capture_default_str();
  cmd.add_option("--checkpoint-every", c.checkpoint_every,
                 "steps between checkpoints (0: each epoch)")
      ->capture_default_str();
  cmd.add_option("--keep-checkpoints", c.keep_checkpoints, "step checkpoints to keep")
      ->capture_default_str();
  cmd.add_option("--resume", c.resume, "checkpoint to continue from (same flags)");
  cmd.add_flag("--cuda-graph,!--no-cuda-graph", c.cuda_graph,
               "capture the step in a CUDA graph (CUDA only; default on)");
  cmd.add_option("--eval-every", c.eval_every,
                 "steps between sample-quality evaluations, also run at the end (0: off)")
      ->capture_default_str();
  cmd.add_option("--classifier", c.classifier, "feature classifier for --eval-every")
      ->capture_default_str();
  cmd.add_option("--eval-samples", c.eval_samples, "images per evaluation")->capture_default_str();
  cmd.add_flag("--final-eval,!--no-final-eval", c.final_eval,
               "evaluate the final generator when --classifier exists (default on)");
}

}  // namespace mnistgan
