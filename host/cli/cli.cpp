// cli.cpp: see cli.h. Each flag maps onto one TrainConfig / SampleOptions field; the
// defaults shown by --help come from those structs.
#include "cli/cli.h"

#include <unistd.h>  // execv

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>  // strerror
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "core/config.h"
#include "eval/classifier.h"
#include "eval/eval.h"
#include "model/sample.h"
#include "toy/toy.h"
#include "train/trainer.h"

namespace mnistgan {

namespace fs = std::filesystem;

namespace {

void add_toy_flags(CLI::App& cmd, ToyOptions& o) {
  cmd.add_option("--out", o.out_dir, "output folder: metrics.csv, histogram.png, summary.csv")
      ->capture_default_str();
  add_device_flag(cmd, o.device);
  cmd.add_option("--target-mean", o.target_mean, "mean of the real N(mean, std^2)")
      ->capture_default_str();
  cmd.add_option("--target-std", o.target_std, "std of the real distribution")
      ->capture_default_str();
  cmd.add_option("--batch-size", o.batch_size, "real and fake samples per step")
      ->capture_default_str();
  cmd.add_option("--steps", o.steps, "training steps per run")->capture_default_str();
  add_adam_flags(cmd, o.lr, o.lr_d, o.lr_g, o.beta1, o.beta2);
  add_mbd_flags(cmd, o.mbd_kernels, o.mbd_dims);
  cmd.add_option("--seed", o.seed, "seed of every random draw (the first of --seeds)")
      ->capture_default_str();
  cmd.add_option("--log-every", o.log_every, "steps between evaluations (10,000 samples each)")
      ->capture_default_str();
  cmd.add_option("--seeds", o.seeds, "runs seeds seed .. seed + N - 1 and prints a summary")
      ->capture_default_str();
  cmd.add_flag("--compare-mbd", o.compare_mbd,
               "run every seed with --mbd-kernels K and with none; count collapsed runs");
}

// Replaces this process with mnistgan_bench from this program's own folder, passing `args`;
// returns only when that fails (exit code 2, with the path and the fix).
int run_bench_program(const char* argv0, const std::vector<std::string>& args) {
  std::error_code error;
  fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) self = fs::absolute(argv0);
  const fs::path bench = self.parent_path() / "mnistgan_bench";
  std::vector<std::string> argv_strings{bench.string()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv_pointers;
  for (std::string& arg : argv_strings) argv_pointers.push_back(arg.data());
  argv_pointers.push_back(nullptr);
  std::fflush(nullptr);
  execv(bench.c_str(), argv_pointers.data());
  std::fprintf(stderr,
               "mnistgan: error: bench: cannot run %s (%s); build it with "
               "`cmake --build build --target mnistgan_bench`\n",
               bench.c_str(), std::strerror(errno));
  return 2;
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

  // `mnistgan bench ...` runs mnistgan_bench (the benchmark is its own program, so that only
  // it links cuDNN and cuBLASLt, its comparators); its flags are that program's.
  CLI::App* bench = app.add_subcommand(
      "bench", "kernel and end-to-end throughput: runs mnistgan_bench (see mnistgan_bench --help)");
  bench->allow_extras()->prefix_command();
  bench->set_help_flag();

  SampleOptions sample_options;
  CLI::App* sample = app.add_subcommand("sample", "draw a grid of digits from a checkpoint");
  sample->add_option("--checkpoint", sample_options.checkpoint, "a .ckpt from `mnistgan train`")
      ->required();
  sample->add_option("--out", sample_options.out, "PNG to write")->capture_default_str();
  sample->add_option("--n", sample_options.n,
                     "number of images (default 64; a conditional checkpoint: 10 rows, one per "
                     "digit)");
  sample->add_option("--nrow", sample_options.nrow, "images per row")->capture_default_str();
  sample->add_option("--seed", sample_options.seed, "noise seed")->capture_default_str();
  add_device_flag(*sample, sample_options.device);
  sample->add_flag("--raw-generator", sample_options.raw_generator,
                   "sample G's own weights instead of the checkpoint's EMA generator");
  sample->add_option("--digit", sample_options.digit,
                     "0-9: a grid of that digit (conditional checkpoints only)");

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
    if (*bench) return run_bench_program(argv[0], bench->remaining());
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
