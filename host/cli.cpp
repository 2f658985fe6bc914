// cli.cpp: see cli.h. Each flag maps onto one TrainConfig / SampleOptions field; the
// defaults shown by --help come from those structs.
#include "cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "bench.h"
#include "classifier.h"
#include "config.h"
#include "eval.h"
#include "sample.h"
#include "toy.h"
#include "trainer.h"

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

namespace {

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
  cmd.add_option("--real-label", c.real_label,
                 "target for real images (0.9: one-sided smoothing; 1: none)")
      ->capture_default_str();
  cmd.add_option("--d-steps", c.d_steps, "D updates per G update")->capture_default_str();
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
  cmd.add_flag("--tf32", c.tf32, "TF32 tensor cores in the CUDA GEMM");
  cmd.add_option("--eval-every", c.eval_every,
                 "steps between sample-quality evaluations, also run at the end (0: off)")
      ->capture_default_str();
  cmd.add_option("--classifier", c.classifier, "feature classifier for --eval-every")
      ->capture_default_str();
  cmd.add_option("--eval-samples", c.eval_samples, "images per evaluation")->capture_default_str();
  cmd.add_flag("--final-eval,!--no-final-eval", c.final_eval,
               "evaluate the final generator when --classifier exists (default on)");
}

void add_classifier_flags(CLI::App& cmd, ClassifierOptions& o) {
  cmd.add_option("--data", o.data_dir, "folder with the MNIST IDX files (train and t10k)")
      ->capture_default_str();
  cmd.add_option("--out", o.out, "classifier file to write (atomically)")->capture_default_str();
  cmd.add_option("--epochs", o.epochs, "epochs to train")->capture_default_str();
  cmd.add_option("--seed", o.seed, "seed of init, shuffles and shifts")->capture_default_str();
  add_device_flag(cmd, o.device);
  cmd.add_option("--batch-size", o.batch_size, "images per batch")->capture_default_str();
  cmd.add_option("--lr", o.lr, "Adam learning rate (decays linearly to lr/20)")
      ->capture_default_str();
  cmd.add_option("--max-shift", o.max_shift, "random shifts of up to N px (0: none)")
      ->capture_default_str();
  cmd.add_option("--min-accuracy", o.min_accuracy, "refuse to save below this test accuracy")
      ->capture_default_str();
}

void add_eval_flags(CLI::App& cmd, EvalOptions& o) {
  cmd.add_option("--checkpoint", o.checkpoint, "a .ckpt from `mnistgan train`")->required();
  cmd.add_option("--classifier", o.classifier, "feature classifier from `mnistgan classifier`")
      ->capture_default_str();
  cmd.add_option("--json", o.json, "also write the figures as JSON here");
  cmd.add_option("--data", o.data_dir, "folder with the MNIST IDX files (train and t10k)")
      ->capture_default_str();
  cmd.add_option("--seed", o.seed, "seed of the sample noise and the floor's train subset")
      ->capture_default_str();
  add_device_flag(cmd, o.device);
  cmd.add_option("--samples", o.samples, "generated and real images compared")
      ->capture_default_str();
  cmd.add_flag("--raw-generator", o.raw_generator,
               "evaluate G's own weights instead of the checkpoint's EMA generator");
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"mnistgan: train the classic MLP GAN on MNIST on a GPU (or the CPU)", "mnistgan"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mnistgan 0.1.0");

  TrainConfig train_config;
  CLI::App* train = app.add_subcommand("train", "train a GAN; writes metrics, grids, checkpoints");
  add_train_flags(*train, train_config);

  BenchOptions bench_options;
  CLI::App* bench = app.add_subcommand(
      "bench", "kernel and end-to-end throughput (table on stdout, --json for a file)");
  add_device_flag(*bench, bench_options.device);
  bench->add_option("--batches", bench_options.batches, "batch sizes, e.g. 64,256,1024")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("--repeats", bench_options.repeats,
                    "timed runs per kernel (default: 50 on cuda, 10 on cpu)");
  bench->add_option("--warmup", bench_options.warmup,
                    "untimed runs first (default: 10 on cuda, 2 on cpu)");
  bench->add_option("--e2e-steps", bench_options.e2e_steps,
                    "timed training steps per end-to-end row (default: 500 on cuda, 20 on cpu)");
  bench->add_option("--json", bench_options.json_path, "also write the results as JSON here");
  bench->add_option("--seed", bench_options.seed, "seed of the end-to-end runs' weights and data")
      ->capture_default_str();
  bench->add_flag("--kernels-only", bench_options.kernels_only, "skip the end-to-end runs");
  bench->add_flag("--e2e-only", bench_options.e2e_only, "skip the ceilings and kernels");

  SampleOptions sample_options;
  CLI::App* sample = app.add_subcommand("sample", "draw a grid of digits from a checkpoint");
  sample->add_option("--checkpoint", sample_options.checkpoint, "a .ckpt from `mnistgan train`")
      ->required();
  sample->add_option("--out", sample_options.out, "PNG to write")->capture_default_str();
  sample->add_option("--n", sample_options.n, "number of images")->capture_default_str();
  sample->add_option("--nrow", sample_options.nrow, "images per row")->capture_default_str();
  sample->add_option("--seed", sample_options.seed, "noise seed")->capture_default_str();
  add_device_flag(*sample, sample_options.device);
  sample->add_flag("--raw-generator", sample_options.raw_generator,
                   "sample G's own weights instead of the checkpoint's EMA generator");

  ClassifierOptions classifier_options;
  CLI::App* classifier = app.add_subcommand(
      "classifier", "train the MNIST feature classifier that `mnistgan eval` measures with");
  add_classifier_flags(*classifier, classifier_options);

  EvalOptions eval_options;
  CLI::App* eval = app.add_subcommand(
      "eval", "sample-quality metrics of a checkpoint against MNIST test, with real-data floors");
  add_eval_flags(*eval, eval_options);

  ToyOptions toy_options;
  CLI::App* toy = app.add_subcommand(
      "toy", "1-D Gaussian GAN demo of mode collapse, with and without minibatch discrimination");
  add_toy_flags(*toy, toy_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*train) return run_training(train_config);
    if (*toy) return run_toy(toy_options);
    if (*classifier) return run_classifier_command(classifier_options);
    if (*eval) {
      run_eval(eval_options);
      return 0;
    }
    if (*bench) return run_bench(bench_options);
    if (*sample) {
      run_sample(sample_options);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nmnistgan: error: %s\n", e.what());
    return 1;
  }
  return 2;
}

}  // namespace mnistgan
