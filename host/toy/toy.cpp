// toy.cpp: see toy.h.
#include "toy/toy.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>

#include "core/backend_buffer.h"  // BackendBuffer
#include "core/config.h"
#include "core/philox.h"
#include "io/atomic_file.h"
#include "io/image_io.h"
#include "model/model.h"
#include "plot/plot.h"

namespace mnistgan {

namespace fs = std::filesystem;

namespace {

// Philox streams of the toy (distinct from the trainer's and the initialisation's).
constexpr uint32_t kStreamReal = 0x70001u;       // training real batches, counter (i, step)
constexpr uint32_t kStreamNoise = 0x70002u;      // training z, counter (i, step)
constexpr uint32_t kStreamEvalNoise = 0x70003u;  // the fixed evaluation z
constexpr uint32_t kStreamEvalReal = 0x70004u;   // the fixed evaluation real sample
constexpr uint32_t kStreamFloorReal = 0x70005u;  // a second real sample: the KS/W1 floor

// n values of U(-1, 1) for (seed, stream) at step: each from 32 random bits,
// u = (bits + 0.5) / 2^32 in (0, 1), z = 2u - 1.
std::vector<float> uniform_pm1(uint64_t seed, uint32_t stream, int64_t step, int n) {
  std::vector<float> out(n);
  Philox4 r{};
  for (int i = 0; i < n; ++i) {
    if (i % 4 == 0) r = philox_draw(seed, stream, static_cast<uint64_t>(i / 4), step);
    const double u = (static_cast<double>(r.v[i % 4]) + 0.5) * 2.3283064365386963e-10;
    out[i] = static_cast<float>(2.0 * u - 1.0);
  }
  return out;
}

// n values of N(mean, std^2) for (seed, stream) at step (Box-Muller, philox_gaussian4).
std::vector<float> gaussian(uint64_t seed, uint32_t stream, int64_t step, int n, double mean,
                            double std) {
  std::vector<float> out(n);
  float four[4];
  for (int i = 0; i < n; ++i) {
    if (i % 4 == 0) philox_gaussian4(seed, stream, static_cast<uint64_t>(i / 4), step, four);
    out[i] = static_cast<float>(mean + std * four[i % 4]);
  }
  return out;
}

std::string mbd_label(int kernels, int dims) {
  return kernels > 0 ? "mbd_" + std::to_string(kernels) + "x" + std::to_string(dims) : "no_mbd";
}

// The GAN, its batch buffers and the fixed evaluation sets of one run.
class ToyTrainer {
 public:
  // options.mbd_kernels is this run's setting (train_toy sets it).
  ToyTrainer(Backend& backend, const ToyOptions& options, uint64_t seed)
      : backend_(backend), options_(options), seed_(seed), batch_(options.batch_size) {
    ModelShape shape;
    shape.image_pixels = 1;
    shape.latent_dim = 1;
    shape.hidden_g = options.hidden_g;
    shape.hidden_d = options.hidden_d;
    shape.mbd_kernels = options.mbd_kernels;
    shape.mbd_dims = options.mbd_dims;
    shape.leaky_slope = options.leaky_slope;
    shape.generator_output = Activation::kNone;
    constexpr int kEval = ToyOptions::kEvalSamples;
    gan_ = std::make_unique<Gan>(backend_, shape, std::max(batch_, kEval), 2);
    gan_->init_params(seed);
    x_ = BackendBuffer<float>(backend_, 2 * static_cast<size_t>(batch_));
    z_ = BackendBuffer<float>(backend_, batch_);
    d_logits_ = BackendBuffer<float>(backend_, 2 * static_cast<size_t>(batch_));
    d_fake_ = BackendBuffer<float>(backend_, batch_);
    stats_ = BackendBuffer<float>(backend_, kStatSlots);
    eval_z_ = BackendBuffer<float>(backend_, kEval);
    eval_out_ = BackendBuffer<float>(backend_, kEval);
    const std::vector<float> z = uniform_pm1(seed, kStreamEvalNoise, 0, kEval);
    backend_.to_backend(eval_z_.get(), z.data(), z.size() * sizeof(float));
    real_eval_ = gaussian(seed, kStreamEvalReal, 0, kEval, options.target_mean, options.target_std);
    real_moments_ = moments(real_eval_);  // fixed sample: once, not at every evaluation
  }
  ToyTrainer(const ToyTrainer&) = delete;
  ToyTrainer& operator=(const ToyTrainer&) = delete;

  // One D update on [real | fake] (two groups, so minibatch discrimination compares rows only
  // within each), then one G update through the updated D: the trainer's (Gan::update_*).
  void step() {
    const int B = batch_;
    const std::vector<float> real =
        gaussian(seed_, kStreamReal, step_, B, options_.target_mean, options_.target_std);
    const std::vector<float> z = uniform_pm1(seed_, kStreamNoise, step_, B);
    backend_.to_backend(x_.get(), real.data(), B * sizeof(float));  // x_ (2B, 1) = [real | fake]
    backend_.to_backend(z_.get(), z.data(), B * sizeof(float));     // z_ (B, 1)
    const StepBuffers buffers{x_.get(),      z_.get(),     d_logits_.get(),
                              d_fake_.get(), stats_.get(), /*guard=*/nullptr};
    gan_->update_discriminator(
        buffers, B, /*real_label=*/1.0f,
        {options_.effective_lr_d(), options_.beta1, options_.beta2, options_.adam_eps});
    gan_->update_generator(
        buffers, B, {options_.effective_lr_g(), options_.beta1, options_.beta2, options_.adam_eps});
    ++step_;
    ++stats_steps_;
  }

  // Loss averages since the last call, and G(z_eval) against the fixed real sample.
  ToyEval evaluate() {
    ToyEval e;
    e.step = step_;
    float s[kStatSlots];
    backend_.to_host(s, stats_.get(), sizeof(s));
    backend_.fill_zero(stats_.get(), sizeof(s));
    const double n = static_cast<double>(stats_steps_);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    e.d_loss = n > 0 ? (s[kStatRealLoss] + s[kStatFakeLoss]) / n : nan;
    e.d_x = n > 0 ? s[kStatRealScore] / n : nan;
    e.d_g_z = n > 0 ? s[kStatFakeScore] / n : nan;
    e.g_loss = n > 0 ? s[kStatGeneratorLoss] / n : nan;
    stats_steps_ = 0;

    constexpr int kEval = ToyOptions::kEvalSamples;
    gan_->generator_forward(eval_z_.get(), eval_out_.get(), kEval);
    generated_.resize(kEval);
    backend_.to_host(generated_.data(), eval_out_.get(), kEval * sizeof(float));
    e.finite =
        std::all_of(generated_.begin(), generated_.end(), [](float v) { return std::isfinite(v); });
    if (!e.finite) return e;
    e.generated = moments(generated_);
    e.real = real_moments_;
    e.ks = ks_statistic(generated_, real_eval_);
    e.w1 = wasserstein1(generated_, real_eval_);
    return e;
  }

  const std::vector<float>& generated() const { return generated_; }
  const std::vector<float>& real() const { return real_eval_; }
  const Moments& real_moments() const { return real_moments_; }

 private:
  Backend& backend_;
  const ToyOptions& options_;
  uint64_t seed_;
  int batch_;
  std::unique_ptr<Gan> gan_;
  BackendBuffer<float> x_;         // (2B, 1): [real | fake]
  BackendBuffer<float> z_;         // (B, 1)
  BackendBuffer<float> d_logits_;  // (2B)
  BackendBuffer<float> d_fake_;    // (B, 1)
  BackendBuffer<float> stats_;     // (kStatSlots) model.h's StatSlot sums
  BackendBuffer<float> eval_z_;    // (10000, 1) fixed evaluation noise
  BackendBuffer<float> eval_out_;  // (10000, 1)
  std::vector<float> real_eval_, generated_;
  Moments real_moments_;  // of real_eval_
  int64_t step_ = 0, stats_steps_ = 0;
};

const char* kMetricsHeader =
    "seed,mbd_kernels,mbd_dims,step,d_loss,g_loss,d_x,d_g_z,gen_mean,gen_std,gen_skewness,"
    "gen_excess_kurtosis,real_mean,real_std,real_skewness,real_excess_kurtosis,ks,w1\n";

std::string metrics_row(const ToyRunResult& r, int mbd_dims, const ToyEval& e) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "%" PRIu64 ",%d,%d,%" PRId64
                ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n",
                r.seed, r.mbd_kernels, mbd_dims, e.step, e.d_loss, e.g_loss, e.d_x, e.d_g_z,
                e.finite ? e.generated.mean : NAN, e.finite ? e.generated.std : NAN,
                e.finite ? e.generated.skewness : NAN, e.finite ? e.generated.excess_kurtosis : NAN,
                e.real.mean, e.real.std, e.real.skewness, e.real.excess_kurtosis,
                e.finite ? e.ks : NAN, e.finite ? e.w1 : NAN);
  return buf;
}

void print_eval(const ToyEval& e) {
  if (!e.finite) {
    std::printf("step %7" PRId64 " | generator output is NaN/Inf: the run diverged\n", e.step);
    return;
  }
  std::printf("step %7" PRId64
              " | D %.3f G %.3f D(x) %.2f D(G(z)) %.2f | gen mean %7.3f std %6.3f skew %6.3f "
              "kurt %7.3f | KS %.4f W1 %.4f\n",
              e.step, e.d_loss, e.g_loss, e.d_x, e.d_g_z, e.generated.mean, e.generated.std,
              e.generated.skewness, e.generated.excess_kurtosis, e.ks, e.w1);
  std::fflush(stdout);
}

void require(bool ok, const std::string& flag, const std::string& what) {
  if (!ok) throw std::invalid_argument(flag + ": " + what);
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

void ToyOptions::validate() const {
  validate_device_flag(device);
  require(std::isfinite(target_mean) && std::fabs(target_mean) <= 1e6, "--target-mean",
          "must be a finite number within +-1e6");
  require(std::isfinite(target_std) && target_std > 0 && target_std <= 1e6, "--target-std",
          "must be a positive number up to 1e6 (got " + fmt("%g", target_std) + ")");
  require(batch_size >= 2 && batch_size <= 4096, "--batch-size",
          "must be between 2 and 4096 (minibatch discrimination compares rows within a batch)");
  require(steps >= 1, "--steps", "must be at least 1");
  validate_adam_flags(lr, lr_d, lr_g, beta1, beta2);
  validate_mbd_flags(mbd_kernels, mbd_dims);
  require(log_every >= 1, "--log-every", "must be at least 1");
  require(seeds >= 1 && seeds <= 1000, "--seeds", "must be between 1 and 1000");
  require(!compare_mbd || mbd_kernels > 0, "--compare-mbd",
          "compares --mbd-kernels K (K > 0) against none; give --mbd-kernels 5 or drop the flag");
}

bool ToyRunResult::collapsed(double target_std) const {
  return !diverged() && evals.back().generated.std < ToyOptions::kCollapseRatio * target_std;
}

double ToyRunResult::min_std() const {
  double lowest = std::numeric_limits<double>::quiet_NaN();
  for (size_t i = 1; i < evals.size(); ++i)
    if (evals[i].finite && !(evals[i].generated.std >= lowest)) lowest = evals[i].generated.std;
  return lowest;
}

ToyRunResult train_toy(Backend& backend, const ToyOptions& options, uint64_t seed, int mbd_kernels,
                       const std::string& out_dir, bool verbose) {
  ToyOptions run_options = options;
  run_options.mbd_kernels = mbd_kernels;
  run_options.seeds = 1;
  run_options.compare_mbd = false;
  run_options.validate();
  ToyRunResult result;
  result.seed = seed;
  result.mbd_kernels = mbd_kernels;
  const auto start = std::chrono::steady_clock::now();
  ToyTrainer trainer(backend, run_options, seed);
  std::string csv = kMetricsHeader;
  const fs::path out(out_dir);
  if (!out_dir.empty()) ensure_writable_dir(out_dir);

  auto record = [&](const ToyEval& e) {
    result.evals.push_back(e);
    csv += metrics_row(result, options.mbd_dims, e);
    if (!out_dir.empty()) write_file_atomic((out / "metrics.csv").string(), csv);
    if (verbose) print_eval(e);
    return e.finite;
  };
  if (verbose) {
    const std::vector<float> floor_real =
        gaussian(seed, kStreamFloorReal, 0, ToyOptions::kEvalSamples, options.target_mean,
                 options.target_std);
    const Moments& real = trainer.real_moments();
    std::printf("mnistgan toy: %s | target N(%g, %g^2) | noise U(-1, 1) | batch %d | %" PRId64
                " steps | %s | seed %" PRIu64
                "\n  real eval sample (10,000): mean %.3f std %.3f skew %.3f kurt %.3f | "
                "real-vs-real floor: KS %.4f W1 %.4f\n",
                backend.name().c_str(), options.target_mean, options.target_std, options.batch_size,
                options.steps, mbd_label(mbd_kernels, options.mbd_dims).c_str(), seed, real.mean,
                real.std, real.skewness, real.excess_kurtosis,
                ks_statistic(floor_real, trainer.real()), wasserstein1(floor_real, trainer.real()));
  }
  bool finite = record(trainer.evaluate());
  for (int64_t s = 1; s <= options.steps && finite; ++s) {
    trainer.step();
    if (s % options.log_every == 0 || s == options.steps) finite = record(trainer.evaluate());
  }
  result.generated = trainer.generated();
  result.real = trainer.real();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!out_dir.empty() && finite) {
    const ToyEval& last = result.evals.back();
    HistogramPlotText text;
    text.title = "Seed " + std::to_string(seed) + ", " +
                 (mbd_kernels > 0 ? "MBD " + std::to_string(mbd_kernels) + "×" +
                                        std::to_string(options.mbd_dims)
                                  : std::string("no MBD")) +
                 ", step " + std::to_string(last.step) + ", KS " + fmt("%.3f", last.ks) +
                 ", W₁ " + fmt("%.3f", last.w1);
    text.real_label =
        "Real N(" + fmt("%g", options.target_mean) + ", " + fmt("%g", options.target_std) + "²)";
    text.generated_label = "Generated, σ = " + fmt("%.3f", last.generated.std);
    write_png_rgb((out / "histogram.png").string(),
                  plot_histograms(result.real, result.generated, text),
                  {{"seed", std::to_string(seed)},
                   {"step", std::to_string(last.step)},
                   {"mbd", mbd_label(mbd_kernels, options.mbd_dims)}});
  }
  return result;
}

int run_toy(const ToyOptions& options) {
  options.validate();
  ensure_writable_dir(options.out_dir);
  std::unique_ptr<Backend> backend = make_backend(options.device);

  if (options.seeds == 1 && !options.compare_mbd) {
    const ToyRunResult r =
        train_toy(*backend, options, options.seed, options.mbd_kernels, options.out_dir, true);
    if (r.diverged()) {
      std::fprintf(stderr, "mnistgan toy: the run diverged (NaN/Inf) at step %" PRId64 "\n",
                   r.evals.back().step);
      return 3;
    }
    const Moments& g = r.evals.back().generated;
    std::printf(
        "mnistgan toy: %.2f s | final std %.3f vs target %g: %s | wrote %s/metrics.csv, "
        "%s/histogram.png\n",
        r.seconds, g.std, options.target_std,
        r.collapsed(options.target_std) ? "COLLAPSED (std < half the target)" : "not collapsed",
        options.out_dir.c_str(), options.out_dir.c_str());
    return 0;
  }

  std::vector<int> settings{options.mbd_kernels};
  if (options.compare_mbd) settings.push_back(0);
  std::printf("mnistgan toy: %s | target N(%g, %g^2) | batch %d | %" PRId64
              " steps | seeds %" PRIu64 "..%" PRIu64 " | collapsed: final std < %g\n",
              backend->name().c_str(), options.target_mean, options.target_std, options.batch_size,
              options.steps, options.seed, options.seed + options.seeds - 1,
              ToyOptions::kCollapseRatio * options.target_std);
  std::string summary =
      "setting,seed,steps,gen_mean,gen_std,gen_skewness,gen_excess_kurtosis,ks,w1,collapsed,"
      "diverged,min_std,seconds\n";
  struct Tally {
    int runs = 0, collapsed = 0, diverged = 0, ever_collapsed = 0;
    double ks = 0, w1 = 0, std = 0;
  };
  std::vector<Tally> tallies(settings.size());
  for (int k = 0; k < options.seeds; ++k) {
    const uint64_t seed = options.seed + static_cast<uint64_t>(k);
    for (size_t s = 0; s < settings.size(); ++s) {
      const std::string label = mbd_label(settings[s], options.mbd_dims);
      const fs::path dir = fs::path(options.out_dir) / label / ("seed_" + std::to_string(seed));
      const ToyRunResult r = train_toy(*backend, options, seed, settings[s], dir.string(), false);
      const ToyEval& e = r.evals.back();
      const bool collapsed = r.collapsed(options.target_std);
      Tally& t = tallies[s];
      ++t.runs;
      t.collapsed += collapsed;
      t.diverged += r.diverged();
      t.ever_collapsed += r.min_std() < ToyOptions::kCollapseRatio * options.target_std;
      if (!r.diverged()) t.ks += e.ks, t.w1 += e.w1, t.std += e.generated.std;
      char row[256];
      std::snprintf(row, sizeof(row),
                    "%s,%" PRIu64 ",%" PRId64 ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d,%d,%.6g,%.3f\n",
                    label.c_str(), seed, e.step, e.generated.mean, e.generated.std,
                    e.generated.skewness, e.generated.excess_kurtosis, e.ks, e.w1, collapsed,
                    r.diverged(), r.min_std(), r.seconds);
      summary += row;
      write_file_atomic((fs::path(options.out_dir) / "summary.csv").string(), summary);
      if (r.diverged())
        std::printf("  %-10s seed %3" PRIu64 ": diverged (NaN/Inf) at step %" PRId64 "\n",
                    label.c_str(), seed, e.step);
      else
        std::printf("  %-10s seed %3" PRIu64
                    ": mean %6.3f std %6.3f skew %6.3f kurt %7.3f | KS %.4f W1 %.4f | min std "
                    "%6.3f | %.1f s%s\n",
                    label.c_str(), seed, e.generated.mean, e.generated.std, e.generated.skewness,
                    e.generated.excess_kurtosis, e.ks, e.w1, r.min_std(), r.seconds,
                    collapsed ? " | COLLAPSED" : "");
      std::fflush(stdout);
    }
  }
  std::printf("\n%-10s %5s %10s %9s %8s %8s %9s %15s\n", "setting", "runs", "collapsed", "diverged",
              "mean KS", "mean W1", "mean std", "ever collapsed");
  for (size_t s = 0; s < settings.size(); ++s) {
    const Tally& t = tallies[s];
    const int ok = t.runs - t.diverged;
    std::printf("%-10s %5d %10d %9d %8.4f %8.4f %9.3f %15d\n",
                mbd_label(settings[s], options.mbd_dims).c_str(), t.runs, t.collapsed, t.diverged,
                ok > 0 ? t.ks / ok : NAN, ok > 0 ? t.w1 / ok : NAN, ok > 0 ? t.std / ok : NAN,
                t.ever_collapsed);
  }
  std::printf(
      "(collapsed: final generated std < %g = half the target std; ever collapsed: below it at "
      "some evaluation after step 0;\n means over runs that did not diverge)\nwrote "
      "%s/summary.csv and a folder per run\n",
      ToyOptions::kCollapseRatio * options.target_std, options.out_dir.c_str());
  return 0;
}

}  // namespace mnistgan
