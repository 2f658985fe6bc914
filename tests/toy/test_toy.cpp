// test_toy.cpp: `mnistgan toy`, the 1-D Gaussian demo. The statistics (moments, KS, W1) on
// cases whose answers are known by hand; the generator's output activation (tanh stays the
// default, so the MNIST model is unchanged; the linear output has correct gradients); a short
// CPU run is deterministic for a seed and pulls the generated mean toward the target; the
// histogram plot; and the command line (files written, bad flags named).
#include <gtest/gtest.h>
#include <sys/wait.h>  // WIFEXITED, WEXITSTATUS
#include <unistd.h>    // getpid

#include <algorithm>  // std::sort
#include <cmath>
#include <cstdio>  // popen
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/config.h"
#include "cuda_test.h"  // CudaTest
#include "io/image_io.h"
#include "model/model.h"
#include "plot/plot.h"
#include "run_test_util.h"  // fresh_dir, run_command
#include "test_util.h"      // random_vector
#include "toy/toy.h"
#include "toy/toy_stats.h"
#include "train/progress.h"  // MetricsLog, plot_training_curves

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

// Fresh folders carry this file's prefix; see runtest::fresh_dir.
fs::path fresh_dir(const std::string& name) { return runtest::fresh_dir("toy_" + name); }

// ---- statistics ---------------------------------------------------------------------------

TEST(ToyStats, MomentsOfSmallSamplesMatchHandComputedValues) {
  // 1..5: mean 3, m2 = 2, m3 = 0, m4 = 6.8 -> excess kurtosis 6.8 / 4 - 3 = -1.3.
  const Moments a = moments({1, 2, 3, 4, 5});
  EXPECT_DOUBLE_EQ(a.mean, 3.0);
  EXPECT_NEAR(a.std, std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(a.skewness, 0.0, 1e-12);
  EXPECT_NEAR(a.excess_kurtosis, -1.3, 1e-12);
  // Bernoulli(1/4): skewness (1 - 2p) / sqrt(p q) = 2 / sqrt(3), kurtosis (1 - 6pq) / pq = -2/3.
  const Moments b = moments({0, 0, 0, 1});
  EXPECT_DOUBLE_EQ(b.mean, 0.25);
  EXPECT_NEAR(b.std, std::sqrt(0.1875), 1e-12);
  EXPECT_NEAR(b.skewness, 2.0 / std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(b.excess_kurtosis, -2.0 / 3.0, 1e-12);
  // Two equal spikes: the lowest possible kurtosis, -2. One value: std 0, shape moments 0.
  EXPECT_NEAR(moments({-1, 1, -1, 1}).excess_kurtosis, -2.0, 1e-12);
  const Moments c = moments({4.5f, 4.5f, 4.5f});
  EXPECT_DOUBLE_EQ(c.mean, 4.5);
  EXPECT_EQ(c.std, 0.0);
  EXPECT_EQ(c.skewness, 0.0);
  EXPECT_EQ(c.excess_kurtosis, 0.0);
}

TEST(ToyStats, MomentsOfLargeSamplesMatchTheirDistributions) {
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(4.0f, 1.25f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> g(200000), u(200000);
  for (float& v : g) v = normal(gen);
  for (float& v : u) v = uniform(gen);
  // Standard errors at n = 200,000: mean 0.003, skew 0.0055, kurtosis 0.011; 4 sigma bounds.
  const Moments mg = moments(g), mu = moments(u);
  EXPECT_NEAR(mg.mean, 4.0, 0.012);
  EXPECT_NEAR(mg.std, 1.25, 0.01);
  EXPECT_NEAR(mg.skewness, 0.0, 0.022);
  EXPECT_NEAR(mg.excess_kurtosis, 0.0, 0.044);
  EXPECT_NEAR(mu.std, 1.0 / std::sqrt(3.0), 0.003);
  EXPECT_NEAR(mu.excess_kurtosis, -1.2, 0.02);
}

TEST(ToyStats, KsAndW1OfIdenticalShiftedAndDisjointSamples) {
  const std::vector<float> a = test::random_vector(10000, 21, 2.0f, 6.0f);
  EXPECT_EQ(ks_statistic(a, a), 0.0);
  EXPECT_EQ(wasserstein1(a, a), 0.0);
  // Same values in another order: still identical distributions.
  std::vector<float> reversed(a.rbegin(), a.rend());
  EXPECT_EQ(ks_statistic(a, reversed), 0.0);
  EXPECT_EQ(wasserstein1(a, reversed), 0.0);
  // Shifted by 0.75 (exact in float for values in [2, 6)): W1 = the shift.
  std::vector<float> shifted(a);
  for (float& v : shifted) v += 0.75f;
  EXPECT_NEAR(wasserstein1(a, shifted), 0.75, 1e-6);
  EXPECT_NEAR(wasserstein1(shifted, a), 0.75, 1e-6);
  // Shifted past the other sample's range: disjoint, KS = 1 and W1 = the shift.
  std::vector<float> far(a);
  for (float& v : far) v += 10.0f;
  EXPECT_EQ(ks_statistic(a, far), 1.0);
  EXPECT_EQ(ks_statistic(far, a), 1.0);
  EXPECT_NEAR(wasserstein1(a, far), 10.0, 1e-5);
}

TEST(ToyStats, KsAndW1OnHandComputedSmallCases) {
  // {1,2,3} vs {2,3,4}: |F_a - F_b| = 1/3 on [1,4): KS 1/3, W1 = 3 * 1/3 = 1.
  EXPECT_NEAR(ks_statistic({1, 2, 3}, {2, 3, 4}), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(wasserstein1({1, 2, 3}, {2, 3, 4}), 1.0, 1e-12);
  // Ties across the samples: at 0, F_a = 1/2 and F_b = 1/4; at 1 both are 1. KS 1/4, W1 1/4.
  EXPECT_NEAR(ks_statistic({0, 0, 1, 1}, {0, 1, 1, 1}), 0.25, 1e-12);
  EXPECT_NEAR(wasserstein1({0, 0, 1, 1}, {0, 1, 1, 1}), 0.25, 1e-12);
  // Different sizes: {1,2} vs {1,2,3,4}: gaps 1/4 on [1,2), 1/2 on [2,3), 1/4 on [3,4).
  EXPECT_NEAR(ks_statistic({1, 2}, {1, 2, 3, 4}), 0.5, 1e-12);
  EXPECT_NEAR(wasserstein1({1, 2}, {1, 2, 3, 4}), 1.0, 1e-12);
  // A single spike against a sample: W1 = mean |x - spike|.
  EXPECT_NEAR(wasserstein1({2}, {0, 1, 5}), (2.0 + 1.0 + 3.0) / 3.0, 1e-12);
}

TEST(ToyStats, W1EqualsMeanSortedDifferenceForEqualSizes) {
  std::vector<float> a = test::random_vector(5000, 31, -3.0f, 3.0f);
  std::vector<float> b = test::random_vector(5000, 32, 0.0f, 2.0f);
  const double w1 = wasserstein1(a, b);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::fabs(static_cast<double>(a[i]) - b[i]);
  EXPECT_NEAR(w1, sum / a.size(), 1e-9);
}

TEST(ToyStats, RejectsEmptyAndNonFiniteSamples) {
  EXPECT_THROW(moments({}), std::invalid_argument);
  EXPECT_THROW(ks_statistic({}, {1}), std::invalid_argument);
  EXPECT_THROW(wasserstein1({1}, {}), std::invalid_argument);
  EXPECT_THROW(moments({1, NAN}), std::invalid_argument);
  EXPECT_THROW(ks_statistic({1, INFINITY}, {1}), std::invalid_argument);
}

// ---- the generator's output activation ----------------------------------------------------

ModelShape small_shape(Activation output) {
  ModelShape s;
  s.image_pixels = 4;
  s.latent_dim = 3;
  s.hidden_g = {6, 5};
  s.hidden_d = {5};
  s.mbd_kernels = 0;
  s.generator_output = output;
  return s;
}

TEST(ToyModel, TanhStaysTheDefaultAndTheLinearOutputIsItsPreActivation) {
  EXPECT_EQ(ModelShape{}.generator_output, Activation::kTanh);
  EXPECT_EQ(model_shape_of(TrainConfig{}, 784).generator_output, Activation::kTanh);
  // Same seed, same parameter layout: the linear generator's output is exactly the tanh
  // generator's pre-activation.
  auto backend = make_cpu_backend();
  const int B = 8;
  Gan tanh_gan(*backend, small_shape(Activation::kTanh), B, 1);
  Gan linear_gan(*backend, small_shape(Activation::kNone), B, 1);
  tanh_gan.init_params(3);
  linear_gan.init_params(3);
  for (Gan* gan : {&tanh_gan, &linear_gan})  // larger weights: outputs beyond tanh's range
    for (size_t i = 0; i < gan->generator().size; ++i) gan->generator().params[i] *= 3.0f;
  const std::vector<float> z = test::random_vector(B * 3, 5, -2.0f, 2.0f);
  std::vector<float> squashed(B * 4), linear(B * 4), want(B * 4);
  tanh_gan.generator_forward(z.data(), squashed.data(), B);
  linear_gan.generator_forward(z.data(), linear.data(), B);
  float largest = 0;
  for (size_t i = 0; i < linear.size(); ++i) {
    want[i] = std::tanh(linear[i]);
    largest = std::max(largest, std::fabs(linear[i]));
  }
  test::expect_close(squashed, want, 1e-6, 1e-6, "tanh generator vs tanh(linear generator)");
  EXPECT_GT(largest, 1.0f) << "the linear output should leave [-1, 1] for this check to mean much";
}

TEST(ToyModel, LinearOutputGeneratorGradientsMatchFiniteDifferences) {
  auto backend = make_cpu_backend();
  const int B = 4;
  Gan gan(*backend, small_shape(Activation::kNone), B, 1);
  gan.init_params(7);
  Network& G = gan.generator();
  const std::vector<float> z = test::random_vector(B * 3, 9, -1.5f, 1.5f);
  const std::vector<float> r = test::random_vector(B * 4, 10, -1.0f, 1.0f);
  std::vector<float> out(B * 4);
  gan.generator_forward(z.data(), out.data(), B);
  gan.generator_backward(z.data(), out.data(), r.data(), B);  // d(sum r * G(z)) / d params
  const std::vector<float> grads(G.grads, G.grads + G.size);
  auto loss = [&] {
    gan.generator_forward(z.data(), out.data(), B);
    double s = 0;
    for (size_t i = 0; i < r.size(); ++i) s += static_cast<double>(out[i]) * r[i];
    return s;
  };
  // Central differences through float passes; points within h of a LeakyReLU kink are
  // skipped (the differences at h and h/4 disagree there).
  constexpr float kStep = 4e-3f;
  constexpr double kAtol = 2e-3, kRtol = 3e-2;
  int compared = 0;
  for (size_t i = 0; i < G.size; ++i) {
    auto diff = [&](float h) {
      const float keep = G.params[i];
      G.params[i] = keep + h;
      const double up = loss();
      G.params[i] = keep - h;
      const double down = loss();
      G.params[i] = keep;
      return (up - down) / (2.0 * h);
    };
    const double coarse = diff(kStep), fine = diff(kStep / 4);
    if (std::fabs(coarse - fine) > kAtol + kRtol * std::fabs(fine)) continue;
    ++compared;
    EXPECT_NEAR(grads[i], coarse, kAtol + kRtol * std::fabs(coarse)) << "G param " << i;
  }
  EXPECT_GE(compared, static_cast<int>(G.size) * 9 / 10);
}

// ---- training -----------------------------------------------------------------------------

ToyOptions short_run() {
  ToyOptions o;
  o.device = "cpu";
  o.steps = 400;
  o.log_every = 200;
  return o;
}

TEST(ToyTrain, ShortCpuRunIsDeterministicAndMovesTheMeanTowardTheTarget) {
  auto backend = make_cpu_backend();
  const ToyOptions o = short_run();
  const ToyRunResult a = train_toy(*backend, o, 5, o.mbd_kernels, "", false);
  const ToyRunResult b = train_toy(*backend, o, 5, o.mbd_kernels, "", false);
  const ToyRunResult c = train_toy(*backend, o, 6, o.mbd_kernels, "", false);
  ASSERT_FALSE(a.diverged());
  ASSERT_EQ(a.evals.size(), 3u);  // steps 0, 200, 400
  EXPECT_EQ(a.evals.back().step, 400);
  test::expect_bitwise_equal(a.generated, b.generated, "same seed, same samples");
  EXPECT_NE(a.generated, c.generated) << "another seed should give another run";
  EXPECT_EQ(a.real, b.real);
  const double before = std::fabs(a.evals.front().generated.mean - o.target_mean);
  const double after = std::fabs(a.evals.back().generated.mean - o.target_mean);
  EXPECT_GT(before, 2.0) << "the untrained generator should start far from N(4, 1.25)";
  EXPECT_LT(after, 0.5 * before) << "400 steps should at least halve the distance of the mean";
  EXPECT_LT(a.evals.back().w1, a.evals.front().w1);
  // The real evaluation sample is N(4, 1.25) to sampling accuracy.
  EXPECT_NEAR(a.evals.back().real.mean, 4.0, 0.05);
  EXPECT_NEAR(a.evals.back().real.std, 1.25, 0.05);
}

TEST(ToyTrain, WithoutMinibatchDiscriminationToo) {
  auto backend = make_cpu_backend();
  const ToyOptions o = short_run();
  const ToyRunResult a = train_toy(*backend, o, 5, 0, "", false);
  const ToyRunResult b = train_toy(*backend, o, 5, 0, "", false);
  ASSERT_FALSE(a.diverged());
  test::expect_bitwise_equal(a.generated, b.generated, "same seed, same samples (no mbd)");
  EXPECT_LT(std::fabs(a.evals.back().generated.mean - 4.0),
            0.5 * std::fabs(a.evals.front().generated.mean - 4.0));
}

// GPU tests: skipped without a device (tests/cuda_test.h).
using ToyTrainCuda = test::CudaTest;

// The same run on the GPU: the ops differ from the CPU's only in float rounding (summation
// order), which 20 Adam steps amplify little. Not run where there is no GPU.
TEST_F(ToyTrainCuda, RunMatchesTheCpuRun) {
  auto cpu = make_cpu_backend();
  auto cuda = make_cuda_backend();
  ToyOptions o = short_run();
  o.steps = 20;
  o.log_every = 20;
  constexpr double kAtol = 2e-3, kRtol = 2e-3;  // a few hundred float ulps after 20 steps
  for (int mbd : {5, 0}) {
    const ToyRunResult want = train_toy(*cpu, o, 3, mbd, "", false);
    const ToyRunResult got = train_toy(*cuda, o, 3, mbd, "", false);
    test::expect_close(got.generated, want.generated, kAtol, kRtol,
                       "cuda vs cpu toy samples, mbd " + std::to_string(mbd));
  }
  const ToyRunResult trained = train_toy(*cuda, short_run(), 5, 5, "", false);
  ASSERT_FALSE(trained.diverged());
  EXPECT_LT(std::fabs(trained.evals.back().generated.mean - 4.0),
            0.5 * std::fabs(trained.evals.front().generated.mean - 4.0));
}

TEST(ToyOptions, ValidationNamesTheFlag) {
  auto message = [](auto&& change) {
    ToyOptions o;
    change(o);
    try {
      o.validate();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NO_THROW(ToyOptions{}.validate());
  EXPECT_EQ(message([](ToyOptions& o) { o.target_std = 0; }).rfind("--target-std:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.target_std = NAN; }).rfind("--target-std:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.target_mean = INFINITY; }).rfind("--target-mean:", 0),
            0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.batch_size = 1; }).rfind("--batch-size:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.steps = 0; }).rfind("--steps:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.lr = -1; }).rfind("--lr:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.lr_g = 0; }).rfind("--lr-g:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.beta1 = 1; }).rfind("--b1:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.mbd_kernels = -1; }).rfind("--mbd-kernels:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.mbd_dims = 0; }).rfind("--mbd-dims:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.log_every = 0; }).rfind("--log-every:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.seeds = 0; }).rfind("--seeds:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) { o.device = "tpu"; }).rfind("--device:", 0), 0u);
  EXPECT_EQ(message([](ToyOptions& o) {
              o.compare_mbd = true;
              o.mbd_kernels = 0;
            }).rfind("--compare-mbd:", 0),
            0u);
}

// ---- the plot -----------------------------------------------------------------------------

TEST(ToyPlot, HistogramImageHasBothColoursAndWritesAsPng) {
  std::mt19937 gen(4);
  std::normal_distribution<float> real_dist(4.0f, 1.25f), spike(3.0f, 0.05f);
  std::vector<float> real(10000), generated(10000);
  for (float& v : real) v = real_dist(gen);
  for (float& v : generated) v = spike(gen);  // a collapsed generator: a clipped spike
  const RgbImage image = plot_histograms(real, generated, {"TITLE", "REAL", "GENERATED"});
  ASSERT_EQ(image.width, 800);
  ASSERT_EQ(image.height, 480);
  ASSERT_EQ(image.pixels.size(), 800u * 480u * 3u);
  int bluish = 0, orangish = 0;
  for (size_t p = 0; p < image.pixels.size(); p += 3) {
    const int r = image.pixels[p], b = image.pixels[p + 2];
    bluish += b > r + 40;
    orangish += r > b + 80;
  }
  EXPECT_GT(bluish, 2000);
  EXPECT_GT(orangish, 500);
  const fs::path dir = fresh_dir("plot");
  const std::string path = (dir / "h.png").string();
  write_png_rgb(path, image, {{"seed", "1"}});
  const GrayImage back = read_png_gray(path);
  EXPECT_EQ(back.width, 800);
  EXPECT_EQ(back.height, 480);
  EXPECT_THROW(write_png_rgb(path, RgbImage{2, 2, std::vector<uint8_t>(4)}), std::invalid_argument);
  EXPECT_THROW(plot_histograms({}, generated, {}), std::invalid_argument);
}

// The line chart behind train's curves.png: series drawn in their colours, a gap at a
// non-finite point, mismatched lengths refused.
TEST(LinePlot, SeriesInTheirColoursAndBadInputRefused) {
  LineSeries up{"UP", {0, 1, 2, 3}, {0, 1, 2, 3}, {31, 119, 180}};
  LineSeries gap{"GAP", {0, 1, 2, 3}, {3, NAN, 1, 0}, {255, 127, 14}, true};
  const RgbImage image = plot_lines({up, gap}, {"T", "STEP", "Y"}, {1.5});
  ASSERT_EQ(image.width, 800);
  ASSERT_EQ(image.height, 300);
  int blue = 0, orange = 0;
  for (size_t p = 0; p < image.pixels.size(); p += 3) {
    blue += image.pixels[p] == 31 && image.pixels[p + 1] == 119 && image.pixels[p + 2] == 180;
    orange += image.pixels[p] == 255 && image.pixels[p + 1] == 127 && image.pixels[p + 2] == 14;
  }
  EXPECT_GT(blue, 1000);
  EXPECT_GT(orange, 500);
  LineSeries bad{"BAD", {0, 1}, {0}, {0, 0, 0}};
  EXPECT_THROW(plot_lines({bad}, {}), std::invalid_argument);
  EXPECT_EQ(stack_vertically({image, image}).height, 600);
  EXPECT_THROW(stack_vertically({}), std::invalid_argument);
}

// metrics.csv rows parse back (a resumed run's curves.png starts with the earlier rows), eval
// cells included, and garbage is refused; the curves have a third panel once a row has an
// evaluation.
TEST(TrainingCurves, MetricsRowsParseBackAndPanelsFollowTheEvaluations) {
  const fs::path dir = fresh_dir("curves");
  const std::string path = (dir / "metrics.csv").string();
  {
    MetricsLog log(path, 0, /*with_eval=*/true);
    for (int64_t step : {100, 200, 300}) {
      MetricsRow row;
      row.step = step;
      row.d_loss = 1.0 + step / 1000.0;
      row.g_loss = 0.7;
      row.d_x = 0.6;
      row.d_g_z = 0.4;
      if (step == 200) row.eval.assign(MetricsLog::eval_columns().size(), 42.5);
      log.append(row);
    }
    EXPECT_EQ(plot_training_curves(log.rows(), 3.4).height, 900);
  }
  MetricsLog resumed(path, 200, true);
  ASSERT_EQ(resumed.rows().size(), 2u) << "rows up to the resumed step";
  EXPECT_EQ(resumed.rows()[1].step, 200);
  EXPECT_DOUBLE_EQ(resumed.rows()[0].d_loss, 1.1);
  ASSERT_EQ(resumed.rows()[1].eval.size(), MetricsLog::eval_columns().size());
  EXPECT_DOUBLE_EQ(resumed.rows()[1].eval[0], 42.5);
  EXPECT_TRUE(resumed.rows()[0].eval.empty()) << "empty cells: no evaluation";
  MetricsRow row;
  EXPECT_FALSE(parse_metrics_row("100,1.0,abc,0.7,0.6,0.4,1,1,1,0", false, row));
  EXPECT_FALSE(parse_metrics_row("100,1.0", false, row));
  EXPECT_TRUE(parse_metrics_row("100,1.0,0.9,0.7,0.6,0.4,1,1,1,0", false, row));
  EXPECT_EQ(plot_training_curves({row}, NAN).height, 600);
  EXPECT_THROW(plot_training_curves({}, NAN), std::invalid_argument);
}

// ---- the command line ---------------------------------------------------------------------

TEST(ToyCli, RunWritesMetricsAndHistogram) {
  const fs::path out = fresh_dir("cli");
  const runtest::BinaryResult r =
      runtest::run_command("toy --device cpu --steps 100 --log-every 50 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("KS"), std::string::npos) << r.output;
  std::ifstream csv(out / "metrics.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);  // header, steps 0, 50, 100
  EXPECT_EQ(lines[0].rfind("seed,mbd_kernels,mbd_dims,step,", 0), 0u);
  EXPECT_EQ(lines[3].rfind("1,5,3,100,", 0), 0u) << lines[3];
  const GrayImage png = read_png_gray((out / "histogram.png").string());
  EXPECT_EQ(png.width, 800);
}

TEST(ToyCli, CompareWritesASummaryRowPerRun) {
  const fs::path out = fresh_dir("compare");
  const runtest::BinaryResult r = runtest::run_command(
      "toy --device cpu --steps 40 --log-every 40 --seeds 2 --compare-mbd --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("collapsed"), std::string::npos) << r.output;
  std::ifstream csv(out / "summary.csv");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 1 + 2 * 2);
  EXPECT_TRUE(fs::exists(out / "mbd_5x3" / "seed_2" / "histogram.png"));
  EXPECT_TRUE(fs::exists(out / "no_mbd" / "seed_1" / "metrics.csv"));
}

TEST(ToyCli, BadFlagsAreNamed) {
  for (const auto& [args, flag] : std::vector<std::pair<std::string, std::string>>{
           {"--target-std 0", "--target-std"},
           {"--target-std -1.5", "--target-std"},
           {"--batch-size 1", "--batch-size"},
           {"--seeds 0", "--seeds"},
           {"--compare-mbd --mbd-kernels 0", "--compare-mbd"},
           {"--device tpu", "--device"}}) {
    const runtest::BinaryResult r =
        runtest::run_command("toy --out " + fresh_dir("bad").string() + " " + args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(flag), std::string::npos) << args << "\n" << r.output;
  }
  const runtest::BinaryResult r = runtest::run_command("toy --steps abc");
  EXPECT_GT(r.code, 100) << r.output;  // CLI11's code for input it cannot parse
  EXPECT_NE(r.output.find("--steps"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mnistgan
