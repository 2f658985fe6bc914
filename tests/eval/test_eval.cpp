// test_eval.cpp: the evaluation's pieces on known cases.
//
//   SHA-256 against FIPS 180-4's published digests; the softmax cross-entropy op against a
//   double-precision reference, by finite differences, and (with a GPU) CUDA against CPU;
//   the Jacobi eigensolver, the Frechet distance against closed forms, the classifier score,
//   the class histogram and precision/recall/density/coverage on constructed sets; then,
//   with a small classifier trained here (real MNIST when data/mnist has it, a synthetic
//   10-class set otherwise): real vs real lands near the floor, one class gives KL ~ ln 10,
//   noise makes the Frechet distance and precision worse step by step, and a saved
//   classifier loads back with its digest checked.
#include <gtest/gtest.h>
#include <unistd.h>  // getpid

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>  // std::snprintf
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "core/backend.h"
#include "io/checkpoint.h"
#include "eval/classifier.h"
#include "eval/eval.h"
#include "eval/eval_metrics.h"
#include "io/idx.h"
#include "train/progress.h"
#include "run_test_util.h"  // fresh_dir, run_command
#include "io/sha256.h"
#include "test_util.h"
#include "train/trainer.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using test::alloc;
using test::download;
using test::expect_close;
using test::random_vector;
using test::upload;

// ---- SHA-256 ---------------------------------------------------------------------------

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces to exercise the buffering.
  Sha256 hash;
  const std::string piece(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, piece.size());
    hash.update(piece.data(), n);
    left -= n;
  }
  const std::array<uint8_t, 32> digest = hash.finish();
  EXPECT_EQ(digest[0], 0xcd);
  EXPECT_EQ(digest[31], 0xd0);
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// ---- softmax cross-entropy ------------------------------------------------------------

struct XentReference {
  std::vector<double> grad;  // (rows, classes), grad_scale 1
  double loss = 0, accuracy = 0;
};

// logits (rows, classes), labels (rows), in double: log-sum-exp with the max subtracted.
XentReference xent_reference(const std::vector<float>& logits, const std::vector<int32_t>& labels,
                             int rows, int classes) {
  XentReference ref;
  ref.grad.resize(static_cast<size_t>(rows) * classes);
  for (int r = 0; r < rows; ++r) {
    const float* x = &logits[static_cast<size_t>(r) * classes];
    double max = x[0];
    int argmax = 0;
    for (int c = 1; c < classes; ++c)
      if (x[c] > max) max = x[c], argmax = c;
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp(x[c] - max);
    ref.loss += std::log(sum) - (x[labels[r]] - max);
    ref.accuracy += argmax == labels[r];
    for (int c = 0; c < classes; ++c)
      ref.grad[static_cast<size_t>(r) * classes + c] =
          (std::exp(x[c] - max) / sum - (c == labels[r])) / rows;
  }
  ref.loss /= rows;
  ref.accuracy /= rows;
  return ref;
}

std::vector<int32_t> random_labels(int rows, int classes, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int32_t> labels(rows);
  for (int32_t& l : labels) l = static_cast<int32_t>(gen() % classes);
  return labels;
}

// float exp/log and a float sum of `classes` terms: a few ulp of the loss.
constexpr double kXentAtol = 1e-5;
constexpr double kXentRtol = 1e-5;

TEST(SoftmaxXentCpu, MatchesDoubleReference) {
  auto backend = make_cpu_backend();
  for (int rows : {1, 7, 300})
    for (int classes : {1, 2, 10, 33}) {
      // Logits up to +-60: exp without the max subtracted would overflow float at 88.
      std::vector<float> logits = random_vector(static_cast<size_t>(rows) * classes, 11, -60, 60);
      const std::vector<int32_t> labels = random_labels(rows, classes, 12);
      const XentReference ref = xent_reference(logits, labels, rows, classes);
      auto dev_logits = upload(*backend, logits);
      auto dev_labels = upload(*backend, labels);
      auto grad = alloc<float>(*backend, logits.size());
      auto stats = upload(*backend, std::vector<float>{0.5f, 0.25f});  // accumulated into
      const float scale = 3.0f;
      backend->softmax_cross_entropy(dev_logits.get(), dev_labels.get(), rows, classes, scale,
                                     grad.get(), stats.get());
      const std::string what =
          "rows=" + std::to_string(rows) + " classes=" + std::to_string(classes);
      std::vector<float> want_grad(ref.grad.size());
      for (size_t i = 0; i < want_grad.size(); ++i)
        want_grad[i] = static_cast<float>(scale * ref.grad[i]);
      expect_close(download(*backend, grad.get(), logits.size()), want_grad, kXentAtol, kXentRtol,
                   what + " gradient");
      const std::vector<float> got = download(*backend, stats.get(), 2);
      EXPECT_NEAR(got[0], 0.5 + ref.loss, kXentAtol + kXentRtol * ref.loss) << what;
      EXPECT_NEAR(got[1], 0.25 + ref.accuracy, 1e-6) << what;
    }
}

TEST(SoftmaxXentCpu, OutOfRangeLabelGivesNaNNotACrash) {
  auto backend = make_cpu_backend();
  auto logits = upload(*backend, random_vector(2 * 4, 5));
  auto labels = upload(*backend, std::vector<int32_t>{1, 4});
  auto grad = alloc<float>(*backend, 8);
  auto stats = alloc<float>(*backend, 2);
  backend->softmax_cross_entropy(logits.get(), labels.get(), 2, 4, 1.0f, grad.get(), stats.get());
  const std::vector<float> g = download(*backend, grad.get(), 8);
  EXPECT_TRUE(std::isfinite(g[0]) && std::isfinite(g[3]));
  EXPECT_TRUE(std::isnan(g[4]) && std::isnan(g[7]));
  EXPECT_TRUE(std::isnan(download(*backend, stats.get(), 2)[0]));
}

// The gradient against central differences of the op's own loss (stats[0]).
TEST(SoftmaxXentCpu, GradientMatchesFiniteDifferences) {
  auto backend = make_cpu_backend();
  const int rows = 5, classes = 10;
  std::vector<float> logits = random_vector(rows * classes, 21, -3, 3);
  const std::vector<int32_t> labels = random_labels(rows, classes, 22);
  auto dev_labels = upload(*backend, labels);
  auto loss_at = [&](const std::vector<float>& x) {
    auto dev = upload(*backend, x);
    auto stats = alloc<float>(*backend, 2);
    backend->softmax_cross_entropy(dev.get(), dev_labels.get(), rows, classes, 1.0f, nullptr,
                                   stats.get());
    return static_cast<double>(download(*backend, stats.get(), 1)[0]);
  };
  auto dev = upload(*backend, logits);
  auto grad = alloc<float>(*backend, logits.size());
  backend->softmax_cross_entropy(dev.get(), dev_labels.get(), rows, classes, 1.0f, grad.get(),
                                 nullptr);
  const std::vector<float> analytic = download(*backend, grad.get(), logits.size());
  // h = 1e-2: truncation ~h^2 |f'''| ~ 1e-5, float rounding of the loss ~1e-7 / h ~ 1e-5.
  const float h = 1e-2f;
  std::vector<float> numeric(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    std::vector<float> plus = logits, minus = logits;
    plus[i] += h;
    minus[i] -= h;
    numeric[i] = static_cast<float>((loss_at(plus) - loss_at(minus)) / (2.0 * h));
  }
  expect_close(analytic, numeric, 1e-4, 1e-3,
               "softmax_cross_entropy gradient vs finite differences");
}

TEST(SoftmaxXentCuda, MatchesCpu) {
  if (auto why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  for (int rows : {1, 129, 5000}) {
    const int classes = 10;
    const std::vector<float> logits =
        random_vector(static_cast<size_t>(rows) * classes, 31, -40, 40);
    std::vector<int32_t> labels = random_labels(rows, classes, 32);
    labels[0] = -1;  // an invalid label: NaN on both
    std::vector<std::vector<float>> grads, stats;
    for (Backend* b : {cpu.get(), gpu.get()}) {
      auto x = upload(*b, logits);
      auto y = upload(*b, labels);
      auto g = alloc<float>(*b, logits.size());
      auto s = alloc<float>(*b, 2);
      b->softmax_cross_entropy(x.get(), y.get(), rows, classes, 2.0f, g.get(), s.get());
      grads.push_back(download(*b, g.get(), logits.size()));
      stats.push_back(download(*b, s.get(), 2));
    }
    const std::string what = "rows=" + std::to_string(rows);
    expect_close(grads[1], grads[0], 1e-6, 1e-5, what + " gradient");
    EXPECT_TRUE(std::isnan(stats[1][0])) << what;
    EXPECT_NEAR(stats[1][1], stats[0][1], 1e-6) << what;
    // Valid rows only: the loss without the NaN row.
    std::vector<int32_t> valid = labels;
    valid[0] = 0;
    std::vector<float> losses;
    for (Backend* b : {cpu.get(), gpu.get()}) {
      auto x = upload(*b, logits);
      auto y = upload(*b, valid);
      auto s = alloc<float>(*b, 2);
      b->softmax_cross_entropy(x.get(), y.get(), rows, classes, 1.0f, nullptr, s.get());
      losses.push_back(download(*b, s.get(), 1)[0]);
    }
    EXPECT_NEAR(losses[1], losses[0], 1e-5 + 1e-5 * std::fabs(losses[0])) << what;
  }
}

// The classifier's features and the k-NN distances on the GPU against the CPU: both are
// GEMM-bound, so the tolerances are the GEMM ones of test_cuda_ops.cpp (FP32, K <= 784).
TEST(EvalCuda, FeaturesAndRadiiMatchCpu) {
  if (auto why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  Classifier on_cpu(*cpu, 128), on_gpu(*gpu, 128);
  on_cpu.init_params(3);
  on_gpu.init_params(3);
  const int n = 300;  // not a multiple of the 128-row chunks
  const std::vector<float> images = random_vector(static_cast<size_t>(n) * 784, 41);
  const FeatureSet a = embed_images(*cpu, on_cpu, images.data(), n);
  const FeatureSet b = embed_images(*gpu, on_gpu, images.data(), n);
  expect_close(b.features, a.features, 2e-4, 1e-4, "classifier features, cuda vs cpu");
  for (size_t i = 0; i < a.probs.size(); ++i) ASSERT_NEAR(b.probs[i], a.probs[i], 1e-4) << i;
  const auto radii_cpu = knn_radii_squared(*cpu, a.features.data(), n, 256, {3, 5});
  const auto radii_gpu = knn_radii_squared(*gpu, a.features.data(), n, 256, {3, 5});
  for (int k = 0; k < 2; ++k)
    expect_close(radii_gpu[k], radii_cpu[k], 1e-3, 1e-4, "k-NN radii, cuda vs cpu");
}

// ---- Jacobi eigensolver -----------------------------------------------------------------

TEST(SymmetricEigen, KnownTwoByTwoAndThreeByThree) {
  SymmetricEigen e = symmetric_eigen({2, 1, 1, 2}, 2);
  std::sort(e.values.begin(), e.values.end());
  EXPECT_NEAR(e.values[0], 1.0, 1e-14);
  EXPECT_NEAR(e.values[1], 3.0, 1e-14);
  // [[2,-1,0],[-1,2,-1],[0,-1,2]]: eigenvalues 2 - sqrt(2), 2, 2 + sqrt(2).
  e = symmetric_eigen({2, -1, 0, -1, 2, -1, 0, -1, 2}, 3);
  std::sort(e.values.begin(), e.values.end());
  EXPECT_NEAR(e.values[0], 2 - std::sqrt(2.0), 1e-14);
  EXPECT_NEAR(e.values[1], 2.0, 1e-14);
  EXPECT_NEAR(e.values[2], 2 + std::sqrt(2.0), 1e-14);
  EXPECT_THROW(symmetric_eigen({1, 2, 3, 4}, 2), std::invalid_argument);
}

TEST(SymmetricEigen, ReconstructsARandomMatrix) {
  const int n = 60;
  std::mt19937 gen(4);
  std::normal_distribution<double> normal;
  std::vector<double> a(n * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) a[i * n + j] = a[j * n + i] = normal(gen);
  const SymmetricEigen e = symmetric_eigen(a, n);
  double worst_reconstruction = 0, worst_orthogonality = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double vdv = 0, vtv = 0;
      for (int k = 0; k < n; ++k) {
        vdv += e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k];
        vtv += e.vectors[k * n + i] * e.vectors[k * n + j];
      }
      worst_reconstruction = std::max(worst_reconstruction, std::fabs(vdv - a[i * n + j]));
      worst_orthogonality = std::max(worst_orthogonality, std::fabs(vtv - (i == j)));
    }
  EXPECT_LT(worst_reconstruction, 1e-11);
  EXPECT_LT(worst_orthogonality, 1e-12);
}

// ---- Frechet distance -----------------------------------------------------------------

GaussianStats gaussian(std::vector<double> mean, std::vector<double> cov) {
  GaussianStats g;
  g.dim = static_cast<int>(mean.size());
  g.mean = std::move(mean);
  g.cov = std::move(cov);
  return g;
}

TEST(Frechet, IdenticalGaussiansGiveZero) {
  const std::vector<float> x = random_vector(500 * 16, 7);
  const GaussianStats g = gaussian_stats(x.data(), 500, 16);
  EXPECT_NEAR(frechet_distance(g, g), 0.0, 1e-10);
}

TEST(Frechet, MatchesClosedForms) {
  // Diagonal: |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
  const GaussianStats a = gaussian({0, 1, 2}, {4, 0, 0, 0, 9, 0, 0, 0, 1});
  const GaussianStats b = gaussian({1, 1, 0}, {1, 0, 0, 0, 16, 0, 0, 0, 0.25});
  EXPECT_NEAR(frechet_distance(a, b), (1 + 0 + 4) + (1 + 1 + 0.25), 1e-12);
  // 2x2, not commuting: tr sqrt(S_a S_b) = sqrt(tr(S_a S_b) + 2 sqrt(det S_a det S_b)).
  const GaussianStats c = gaussian({0, 0}, {2, 1, 1, 3});
  const GaussianStats d = gaussian({3, -4}, {1, -0.5, -0.5, 2});
  const double tr_ab = 2 * 1 + 1 * -0.5 + 1 * -0.5 + 3 * 2;
  const double det_a = 2 * 3 - 1, det_b = 2 - 0.25;
  const double want = 25 + 5 + 3 - 2 * std::sqrt(tr_ab + 2 * std::sqrt(det_a * det_b));
  EXPECT_NEAR(frechet_distance(c, d), want, 1e-12);
  EXPECT_NEAR(frechet_distance(d, c), want, 1e-12);
  // With the reference's covariance root computed once, on either side.
  EXPECT_NEAR(frechet_distance(a, frechet_reference(b)), (1 + 0 + 4) + (1 + 1 + 0.25), 1e-12);
  EXPECT_NEAR(frechet_distance(c, frechet_reference(d)), want, 1e-12);
  EXPECT_NEAR(frechet_distance(d, frechet_reference(c)), want, 1e-12);
}

TEST(Frechet, SampleStatisticsMatchNumpyCov) {
  // Three points in 2-D: mean (1, 2), unbiased covariance by hand.
  const std::vector<float> x = {0, 0, 1, 2, 2, 4};
  const GaussianStats g = gaussian_stats(x.data(), 3, 2);
  EXPECT_DOUBLE_EQ(g.mean[0], 1.0);
  EXPECT_DOUBLE_EQ(g.mean[1], 2.0);
  EXPECT_DOUBLE_EQ(g.cov[0], 1.0);
  EXPECT_DOUBLE_EQ(g.cov[1], 2.0);
  EXPECT_DOUBLE_EQ(g.cov[2], 2.0);
  EXPECT_DOUBLE_EQ(g.cov[3], 4.0);
}

// ---- classifier score and class histogram -----------------------------------------------

std::vector<double> one_hot(const std::vector<int>& classes_of_rows, int classes) {
  std::vector<double> p(classes_of_rows.size() * classes, 0.0);
  for (size_t i = 0; i < classes_of_rows.size(); ++i) p[i * classes + classes_of_rows[i]] = 1.0;
  return p;
}

TEST(ClassifierScore, ConfidentBalancedIsTheClassCountAndOneClassIsOne) {
  std::vector<int> balanced(1000), single(1000, 3);
  for (int i = 0; i < 1000; ++i) balanced[i] = i % 10;
  const ScoreResult best = classifier_score(one_hot(balanced, 10), 1000, 10, 10);
  EXPECT_NEAR(best.mean, 10.0, 1e-9);
  EXPECT_NEAR(best.std, 0.0, 1e-9);
  EXPECT_NEAR(classifier_score(one_hot(single, 10), 1000, 10, 10).mean, 1.0, 1e-12);
  // Uncertain predictions (uniform p(y|x)) score 1 however balanced.
  EXPECT_NEAR(classifier_score(std::vector<double>(1000 * 10, 0.1), 1000, 10, 10).mean, 1.0, 1e-12);
}

TEST(ClassHistogram, SingleClassAndBalanced) {
  std::vector<int> balanced(1000), single(1000, 7), skewed(1000);
  for (int i = 0; i < 1000; ++i) balanced[i] = i % 10, skewed[i] = i < 955 ? i % 5 : 5 + i % 5;
  ClassHistogram h = class_histogram(one_hot(single, 10), 1000, 10);
  EXPECT_EQ(h.classes_hit, 1);
  EXPECT_EQ(h.classes_half_share, 1);
  EXPECT_NEAR(h.kl_uniform, std::log(10.0), 1e-12);
  EXPECT_EQ(h.counts[7], 1000);
  h = class_histogram(one_hot(balanced, 10), 1000, 10);
  EXPECT_EQ(h.classes_hit, 10);
  EXPECT_EQ(h.classes_half_share, 10);
  EXPECT_NEAR(h.kl_uniform, 0.0, 1e-12);
  // 955 spread over 5 classes (191 each), 45 over the other 5 (9 each): all hit, 5 with at
  // least half the uniform share of 100.
  h = class_histogram(one_hot(skewed, 10), 1000, 10);
  EXPECT_EQ(h.classes_hit, 10);
  EXPECT_EQ(h.classes_half_share, 5);
  EXPECT_NEAR(h.kl_uniform, 5 * 0.191 * std::log(1.91) + 5 * 0.009 * std::log(0.09), 1e-12);
}

// ---- precision, recall, density, coverage -----------------------------------------------

// Points 0, 1, ..., n-1 on a line (stored in 2-D, second coordinate 0); every distance is an
// integer, so the GEMM's squared distances are exact and the radii known: k = 3 -> 2 inside,
// k = 5 -> 3 inside.
std::vector<float> line_points(int n, float offset) {
  std::vector<float> x(2 * n, 0.0f);
  for (int i = 0; i < n; ++i) x[2 * i] = static_cast<float>(i) + offset;
  return x;
}

TEST(Prdc, RadiiOnALine) {
  auto backend = make_cpu_backend();
  const std::vector<float> x = line_points(100, 0);
  const auto radii = knn_radii_squared(*backend, x.data(), 100, 2, {3, 5});
  EXPECT_EQ(radii[0][50], 4.0f);  // squared: 2^2
  EXPECT_EQ(radii[1][50], 9.0f);
  EXPECT_EQ(radii[0][0], 9.0f);  // an end: neighbours at 1, 2, 3
  EXPECT_EQ(radii[1][0], 25.0f);
}

TEST(Prdc, ConstructedSets) {
  auto backend = make_cpu_backend();
  const int n = 100;
  const std::vector<float> real = line_points(n, 0);
  const auto radii = knn_radii_squared(*backend, real.data(), n, 2, {3, 5});
  // Identical sets: every fake sits on a real point and vice versa.
  PrdcResult r = prdc(*backend, real.data(), n, real.data(), n, 2, radii[0], radii[1]);
  EXPECT_EQ(r.precision, 1.0);
  EXPECT_EQ(r.recall, 1.0);
  EXPECT_EQ(r.coverage, 1.0);
  // Far away: nothing overlaps.
  const std::vector<float> far = line_points(n, 1000);
  r = prdc(*backend, real.data(), n, far.data(), n, 2, radii[0], radii[1]);
  EXPECT_EQ(r.precision, 0.0);
  EXPECT_EQ(r.recall, 0.0);
  EXPECT_EQ(r.density, 0.0);
  EXPECT_EQ(r.coverage, 0.0);
  // Mode collapse: 40 fakes all at real point 50. Every fake is realistic (precision 1);
  // a fake's own k-NN radius is 0 so it recalls nothing; real points 48..52 have 50 inside
  // their k=5 balls (radius 3), so density = 40 * 5 / (5 * 40) = 1 and coverage = 5 / 100.
  std::vector<float> collapsed(2 * 40, 0.0f);
  for (int i = 0; i < 40; ++i) collapsed[2 * i] = 50.0f;
  r = prdc(*backend, real.data(), n, collapsed.data(), 40, 2, radii[0], radii[1]);
  EXPECT_EQ(r.precision, 1.0);
  EXPECT_EQ(r.recall, 0.0);
  EXPECT_DOUBLE_EQ(r.density, 1.0);
  EXPECT_DOUBLE_EQ(r.coverage, 0.05);
  // Strict comparisons (d < radius, as Naeem et al.'s code): reals 0..3 have k=3 radii
  // 3, 2, 2, 3; a fake at 6 lies exactly on real 3's radius and inside no ball, one at 5.9
  // lies inside it.
  const std::vector<float> four = line_points(4, 0);
  const auto four_radii = knn_radii_squared(*backend, four.data(), 4, 2, {3});
  EXPECT_EQ(four_radii[0], (std::vector<float>{9, 4, 4, 9}));
  // (Four fakes each, as the fakes need their own k=3 radii; the other three lie beyond.)
  const std::vector<float> on_edge = {6.0f, 0, 6.5f, 0, 7.0f, 0, 8.0f, 0};
  const std::vector<float> inside = {5.9f, 0, 6.5f, 0, 7.0f, 0, 8.0f, 0};
  EXPECT_EQ(
      prdc(*backend, four.data(), 4, on_edge.data(), 4, 2, four_radii[0], four_radii[0]).precision,
      0.0);
  EXPECT_EQ(
      prdc(*backend, four.data(), 4, inside.data(), 4, 2, four_radii[0], four_radii[0]).precision,
      0.25);
}

TEST(Prdc, BlocksCoverEveryPair) {
  // More rows than one block holds (2048): the visitor must see each row exactly once.
  auto backend = make_cpu_backend();
  const int n_a = 5000, n_b = 3, dim = 4;
  const std::vector<float> a = random_vector(n_a * dim, 1), b = random_vector(n_b * dim, 2);
  std::vector<int> seen(n_a, 0);
  double worst = 0;
  for_each_distance_block(*backend, a.data(), n_a, b.data(), n_b, dim,
                          [&](int64_t start, int rows, const float* d2) {
                            for (int r = 0; r < rows; ++r) {
                              ++seen[start + r];
                              for (int j = 0; j < n_b; ++j) {
                                double want = 0;
                                for (int d = 0; d < dim; ++d) {
                                  const double diff = a[(start + r) * dim + d] - b[j * dim + d];
                                  want += diff * diff;
                                }
                                worst = std::max(worst, std::fabs(d2[r * n_b + j] - want));
                              }
                            }
                          });
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), n_a);
  EXPECT_LT(worst, 1e-5);
}

// Sets already on the backend (as eval.cpp keeps the classifier's features there) give the
// very figures that their host copies, uploaded for the call, give; on every backend built.
// Sets already on the backend (eval keeps the classifier features there) give exactly the
// radii and figures of sets uploaded from the host.
void check_resident_sets_match_uploaded(Backend& backend) {
  const int n_real = 300, n_fake = 250, dim = 8;
  const std::vector<float> real = random_vector(n_real * dim, 3);
  const std::vector<float> fake = random_vector(n_fake * dim, 4);
  BackendFloats on_real(backend, real.size()), on_fake(backend, fake.size());
  backend.to_backend(on_real.get(), real.data(), real.size() * sizeof(float));
  backend.to_backend(on_fake.get(), fake.data(), fake.size() * sizeof(float));
  const auto radii = knn_radii_squared(backend, real.data(), n_real, dim, {3, 5});
  EXPECT_EQ(knn_radii_squared(backend, real.data(), n_real, dim, {3, 5}, on_real.get()), radii);
  const PrdcResult uploaded =
      prdc(backend, real.data(), n_real, fake.data(), n_fake, dim, radii[0], radii[1]);
  const PrdcResult resident = prdc(backend, real.data(), n_real, fake.data(), n_fake, dim, radii[0],
                                   radii[1], on_real.get(), on_fake.get());
  EXPECT_EQ(resident.precision, uploaded.precision);
  EXPECT_EQ(resident.recall, uploaded.recall);
  EXPECT_EQ(resident.density, uploaded.density);
  EXPECT_EQ(resident.coverage, uploaded.coverage);
  // Two draws of one distribution: the figures are neither 0 nor trivially 1.
  EXPECT_GT(uploaded.precision, 0.3);
  EXPECT_LT(uploaded.precision, 1.0);
  EXPECT_GT(uploaded.recall, 0.3);
}

TEST(Prdc, BackendResidentSetsGiveTheSameFigures) {
  check_resident_sets_match_uploaded(*make_cpu_backend());
}

TEST(PrdcCuda, BackendResidentSetsGiveTheSameFigures) {
  if (auto why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  check_resident_sets_match_uploaded(*make_cuda_backend());
}

// ---- with a trained classifier ----------------------------------------------------------

// Fresh folders carry this file's prefix; see runtest::fresh_dir.
fs::path fresh_dir(const std::string& name) { return runtest::fresh_dir("eval_" + name); }

// Ten classes of synthetic 28x28 "digits": class c is a bar at column 2 + 2.5c of random
// height, plus noise; a classifier learns them in a fraction of an epoch.
MnistSplit synthetic_split(int count, uint32_t seed) {
  MnistSplit s;
  s.images.count = count;
  s.images.rows = s.images.cols = 28;
  s.images.pixels.resize(static_cast<size_t>(count) * 784);
  s.labels.resize(count);
  std::mt19937 gen(seed);
  for (int i = 0; i < count; ++i) {
    const int cls = static_cast<int>(gen() % 10), x0 = 2 + cls * 5 / 2, width = 2;
    const int y0 = 2 + gen() % 8, y1 = 18 + gen() % 8;
    s.labels[i] = static_cast<uint8_t>(cls);
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        const bool on = x >= x0 && x < x0 + width && y >= y0 && y < y1;
        s.images.pixels[static_cast<size_t>(i) * 784 + y * 28 + x] =
            static_cast<uint8_t>(on ? 150 + gen() % 106 : gen() % 40);
      }
  }
  return s;
}

// Verbose training measures the test accuracy after every epoch and returns the last
// figure it printed instead of measuring the final weights again: the same figure a quiet
// run returns, and the final weights' accuracy.
TEST(ClassifierTraining, VerboseAndQuietReturnTheFinalWeightsAccuracy) {
  auto backend = make_cpu_backend();
  const MnistSplit train = synthetic_split(512, 3), test = synthetic_split(300, 4);
  ClassifierOptions options;
  options.epochs = 2;
  options.batch_size = 64;
  options.seed = 11;
  double accuracy[2] = {-1, -1};
  std::string log;
  for (const bool verbose : {false, true}) {
    Classifier classifier(*backend, 128);
    classifier.init_params(options.seed);
    options.verbose = verbose;
    ::testing::internal::CaptureStderr();
    accuracy[verbose] = train_classifier(*backend, classifier, train, test, options);
    log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(accuracy[verbose], classifier_accuracy(*backend, classifier, test)) << verbose;
  }
  EXPECT_EQ(accuracy[1], accuracy[0]);
  EXPECT_GT(accuracy[1], 0.5);  // two short epochs on the separable synthetic classes
  // The last epoch's line (the verbose run's log) printed the returned figure.
  const size_t last = log.find("epoch 2/2 |");
  ASSERT_NE(last, std::string::npos) << log;
  char printed[32];
  std::snprintf(printed, sizeof(printed), "| test acc %.4f |", accuracy[1]);
  EXPECT_NE(log.find(printed, last), std::string::npos) << log;
}

struct TrainedClassifier {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Classifier> classifier;
  MnistSplit train, test;
  bool real_mnist = false;
  double accuracy = 0;
};

// ctest runs every TEST in a process of its own, so the weights are also kept in a file
// under the test temp dir, keyed by the data source and this test binary's build (size and
// modification time): the processes of one ctest run train once, a rebuild trains afresh.
fs::path classifier_cache_file(bool real_mnist) {
  const fs::path exe = fs::read_symlink("/proc/self/exe");
  return fs::path(::testing::TempDir()) /
         ("mnistgan_eval_classifier_" + std::string(real_mnist ? "mnist" : "synthetic") + "_" +
          std::to_string(fs::file_size(exe)) + "_" +
          std::to_string(fs::last_write_time(exe).time_since_epoch().count()) + ".bin");
}

// Trained once for all the tests below: on 20,000 MNIST images for 3 epochs (about 10 s
// on 2 cores), or on the synthetic set when MNIST is absent.
TrainedClassifier& trained() {
  static TrainedClassifier t = [] {
    TrainedClassifier r;
    r.backend = make_cpu_backend();
    const fs::path dir = fs::path(testpaths::source_dir()) / "data" / "mnist";
    try {
      r.train = load_mnist(dir.string(), "train");
      r.test = load_mnist(dir.string(), "t10k");
      r.real_mnist = true;
    } catch (const DataError&) {
      r.train = synthetic_split(6000, 1);
      r.test = synthetic_split(3000, 2);
    }
    r.classifier = std::make_unique<Classifier>(*r.backend, 1000);
    const fs::path cache = classifier_cache_file(r.real_mnist);
    if (fs::exists(cache)) {
      try {
        r.accuracy = load_classifier(cache.string(), *r.classifier).test_accuracy;
        return r;
      } catch (const std::exception&) {
        // Unreadable: train again and replace it.
      }
    }
    r.classifier->init_params(5);
    ClassifierOptions options;
    options.epochs = 3;
    options.train_limit = 20000;
    options.max_shift = 0;
    options.verbose = false;
    options.seed = 5;
    r.accuracy = train_classifier(*r.backend, *r.classifier, r.train, r.test, options);
    ClassifierInfo info;
    info.seed = options.seed;
    info.epochs = options.epochs;
    info.test_accuracy = r.accuracy;
    save_classifier(cache.string(), *r.classifier, info);  // atomic: parallel writers are safe
    return r;
  }();
  return t;
}

constexpr int64_t kTestSamples = 2000;

TEST(EvalWithClassifier, ShortTrainingIsAccurate) {
  TrainedClassifier& t = trained();
  // 3 epochs on 20,000 images: ~96% on MNIST; the synthetic classes are trivially separable.
  EXPECT_GT(t.accuracy, t.real_mnist ? 0.95 : 0.99);
}

TEST(EvalWithClassifier, RealVersusRealLandsNearTheFloor) {
  TrainedClassifier& t = trained();
  const EvalReference reference(*t.backend, *t.classifier, t.train, t.test, kTestSamples, 1);
  const EvalMetrics& floor = reference.floor();
  // Another random training subset (seeded differently from the floor's) against the same
  // test images.
  std::vector<int> order(t.train.images.count);
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(77));
  std::vector<uint8_t> other_pixels(static_cast<size_t>(kTestSamples) * 784);
  for (int64_t i = 0; i < kTestSamples; ++i)
    std::copy_n(t.train.images.pixels.data() + static_cast<size_t>(order[i]) * 784, 784,
                other_pixels.data() + i * 784);
  const EvalMetrics other = reference.evaluate(
      *t.backend, embed_pixels(*t.backend, *t.classifier, other_pixels.data(), kTestSamples));
  // Both are finite-sample estimates of "no difference": the Frechet distance sits at the
  // sampling bias (a few tenths of the per-feature variance sum), the rest near their ideal.
  EXPECT_LT(other.frechet, 2.0 * floor.frechet + 0.05);
  EXPECT_GT(other.frechet, 0.5 * floor.frechet - 0.05);
  EXPECT_NEAR(other.prdc.precision, floor.prdc.precision, 0.05);
  EXPECT_NEAR(other.prdc.recall, floor.prdc.recall, 0.05);
  EXPECT_NEAR(other.prdc.coverage, floor.prdc.coverage, 0.05);
  EXPECT_NEAR(other.score.mean, floor.score.mean, 0.05 * floor.score.mean);
  EXPECT_EQ(other.histogram.classes_hit, 10);
  EXPECT_EQ(other.histogram.classes_half_share, 10);
  EXPECT_LT(other.histogram.kl_uniform, 0.02);
  EXPECT_GT(floor.prdc.precision, 0.6);
  EXPECT_GT(floor.prdc.recall, 0.6);
  EXPECT_GT(floor.score.mean, 8.0);
}

TEST(EvalWithClassifier, OneClassGivesKlNearLn10) {
  TrainedClassifier& t = trained();
  std::vector<uint8_t> ones;
  int64_t n = 0;
  for (int64_t i = 0; i < t.test.images.count; ++i)
    if (t.test.labels[i] == 1) {
      ones.insert(ones.end(), t.test.images.pixels.begin() + i * 784,
                  t.test.images.pixels.begin() + (i + 1) * 784);
      ++n;
    }
  ASSERT_GE(n, 100);
  const FeatureSet set = embed_pixels(*t.backend, *t.classifier, ones.data(), n);
  const ClassHistogram h = class_histogram(set.probs, n, 10);
  // A few misclassified ones move KL below ln 10 = 2.303 by about their fraction times ln 10.
  EXPECT_GT(h.kl_uniform, std::log(10.0) - 0.15);
  EXPECT_EQ(h.classes_half_share, 1);
  EXPECT_LT(classifier_score(set.probs, n, 10, 10).mean, 1.5);
}

TEST(EvalWithClassifier, NoiseMakesFrechetAndPrecisionWorseStepByStep) {
  TrainedClassifier& t = trained();
  const EvalReference reference(*t.backend, *t.classifier, t.train, t.test, kTestSamples, 1);
  std::mt19937 gen(9);
  std::normal_distribution<float> normal;
  std::vector<float> clean(static_cast<size_t>(kTestSamples) * 784);
  images_to_unit_range(t.train.images.pixels.data(), clean.size(), clean.data());
  std::vector<float> noise(clean.size());
  for (float& e : noise) e = normal(gen);
  double last_frechet = -1, last_precision = 2;
  // Steps that move precision clearly on each data set (synthetic bars on a dark, noisy
  // background lose their realism much sooner than digits).
  const std::vector<float> sigmas = t.real_mnist ? std::vector<float>{0.0f, 0.4f, 0.7f, 1.0f}
                                                 : std::vector<float>{0.0f, 0.05f, 0.1f, 0.2f};
  for (float sigma : sigmas) {
    std::vector<float> noisy(clean.size());
    for (size_t i = 0; i < clean.size(); ++i)
      noisy[i] = std::clamp(clean[i] + sigma * noise[i], -1.0f, 1.0f);
    const EvalMetrics m = reference.evaluate(
        *t.backend, embed_images(*t.backend, *t.classifier, noisy.data(), kTestSamples));
    EXPECT_GT(m.frechet, last_frechet) << "sigma " << sigma;
    EXPECT_LT(m.prdc.precision, last_precision) << "sigma " << sigma;
    last_frechet = m.frechet;
    last_precision = m.prdc.precision;
  }
}

TEST(EvalWithClassifier, SaveAndLoadKeepWeightsAndCheckTheDigest) {
  TrainedClassifier& t = trained();
  const fs::path dir = fresh_dir("classifier");
  const std::string path = (dir / "sub" / "c.bin").string();
  ClassifierInfo info;
  info.seed = 5;
  info.epochs = 2;
  info.test_accuracy = t.accuracy;
  info = save_classifier(path, *t.classifier, info);
  EXPECT_EQ(info.weights_sha256, t.classifier->weights_sha256());
  Classifier loaded(*t.backend, 16);
  const ClassifierInfo back = load_classifier(path, loaded);
  EXPECT_EQ(back.weights_sha256, info.weights_sha256);
  EXPECT_EQ(back.seed, 5u);
  EXPECT_DOUBLE_EQ(back.test_accuracy, t.accuracy);
  EXPECT_EQ(loaded.download_params(), t.classifier->download_params());

  // A header digest that does not match the weights is refused.
  Checkpoint file = load_checkpoint(path);
  file.header["weights_sha256"] = std::string(64, '0');
  save_checkpoint(path, file);
  try {
    load_classifier(path, loaded);
    ADD_FAILURE() << "a wrong digest was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("SHA-256"), std::string::npos) << e.what();
  }
  // A missing file names the command that makes it.
  try {
    load_classifier((dir / "absent.bin").string(), loaded);
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("mnistgan classifier"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// ---- train --eval-every and `mnistgan eval` ------------------------------------------------

// A data folder with train and t10k: the real MNIST folder, or the synthetic sets written out.
fs::path data_dir_with_test_split(TrainedClassifier& t) {
  if (t.real_mnist) return fs::path(testpaths::source_dir()) / "data" / "mnist";
  static const fs::path dir = [&] {
    const fs::path d = fresh_dir("synthetic_data");
    write_idx_images((d / "train-images-idx3-ubyte").string(), t.train.images);
    write_idx_labels((d / "train-labels-idx1-ubyte").string(), t.train.labels);
    write_idx_images((d / "t10k-images-idx3-ubyte").string(), t.test.images);
    write_idx_labels((d / "t10k-labels-idx1-ubyte").string(), t.test.labels);
    return d;
  }();
  return dir;
}

std::vector<std::string> csv_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> cells(1);
  for (char c : line) {
    if (c == ',')
      cells.emplace_back();
    else
      cells.back().push_back(c);
  }
  return cells;
}

// A 20-step run of a small GAN into dir/run, evaluated with 200 samples by classifier_path.
TrainConfig small_eval_run(TrainedClassifier& t, const fs::path& dir,
                           const std::string& classifier_path) {
  TrainConfig config;
  config.data_dir = data_dir_with_test_split(t).string();
  config.out_dir = (dir / "run").string();
  config.device = "cpu";
  config.batch_size = 32;
  config.hidden_g = {64, 128};
  config.hidden_d = {128, 64};
  config.mbd_kernels = 8;
  config.steps = 20;
  config.log_every = 10;
  config.eval_samples = 200;
  config.classifier = classifier_path;
  return config;
}

TEST(EvalInTraining, EvalColumnsEveryNStepsAndAtTheEndThenTheCliEvaluatesTheCheckpoint) {
  TrainedClassifier& t = trained();
  const fs::path dir = fresh_dir("train_eval");
  const std::string classifier_path = (dir / "classifier.bin").string();
  ClassifierInfo info;
  info.test_accuracy = t.accuracy;
  info = save_classifier(classifier_path, *t.classifier, info);

  TrainConfig config = small_eval_run(t, dir, classifier_path);
  config.eval_every = 15;

  // Without the classifier the run stops before its first step, naming the command.
  TrainConfig missing = config;
  missing.classifier = (dir / "absent.bin").string();
  missing.out_dir = (dir / "run_missing").string();
  try {
    run_training(missing);
    ADD_FAILURE() << "training started without its classifier";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("mnistgan classifier"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "run_missing" / "metrics.csv"));

  ::testing::internal::CaptureStderr();
  const int code = run_training(config);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(code, 0) << log;
  EXPECT_NE(log.find("eval at step 15"), std::string::npos) << log;
  const std::vector<std::string> lines = csv_lines(dir / "run" / "metrics.csv");
  ASSERT_EQ(lines.size(), 4u) << "header and steps 10, 15, 20";
  const std::vector<std::string> header = split_commas(lines[0]);
  const std::vector<std::string>& columns = MetricsLog::eval_columns();
  ASSERT_GT(header.size(), columns.size());
  // The eval columns come last, in eval_figures' order.
  const std::vector<std::pair<std::string, double>> figures = eval_figures(EvalMetrics{});
  ASSERT_EQ(figures.size(), columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    EXPECT_EQ(header[header.size() - columns.size() + i], columns[i]);
    EXPECT_EQ(columns[i], "eval_" + figures[i].first);
  }
  // The columns are derived from eval_figures, so the file format is pinned here: a renamed
  // or reordered figure changes metrics.csv for every reader of it.
  EXPECT_EQ(columns,
            (std::vector<std::string>{
                "eval_frechet_distance", "eval_classifier_score", "eval_classifier_score_std",
                "eval_classes_hit", "eval_classes_half_share", "eval_kl_uniform_nats",
                "eval_precision_k3", "eval_recall_k3", "eval_density_k5", "eval_coverage_k5"}));
  for (size_t row = 1; row < lines.size(); ++row) {
    const std::vector<std::string> cells = split_commas(lines[row]);
    ASSERT_EQ(cells.size(), header.size()) << lines[row];
    const bool evaluated = cells[0] == "15" || cells[0] == "20";
    for (size_t i = header.size() - columns.size(); i < header.size(); ++i)
      EXPECT_EQ(cells[i].empty(), !evaluated) << "step " << cells[0] << " column " << header[i];
  }
  const nlohmann::json latest =
      nlohmann::json::parse(read_file((dir / "run" / "eval.json").string(), 1 << 20));
  EXPECT_EQ(latest.at("step").get<int64_t>(), 20);
  EXPECT_EQ(latest.at("classifier").at("sha256").get<std::string>(), info.weights_sha256);
  EXPECT_TRUE(latest.at("floor").contains("frechet_distance"));
  // Every figure is in the JSON, the counts as integers.
  for (const auto& figure : figures) EXPECT_TRUE(latest.at("model").contains(figure.first));
  EXPECT_TRUE(latest.at("model").at("classes_hit").is_number_integer());
  EXPECT_TRUE(latest.at("model").at("classes_half_share").is_number_integer());

  // `mnistgan eval` on the run's checkpoint: a table on stdout and the JSON file.
  const std::string json = (dir / "eval.json").string();
  const runtest::BinaryResult eval = runtest::run_command(
      "eval --device cpu --checkpoint " + (dir / "run" / "latest.ckpt").string() +
      " --classifier " + classifier_path + " --data " + config.data_dir + " --samples 200 --json " +
      json);
  const std::string& output = eval.output;
  EXPECT_EQ(eval.code, 0) << output;
  EXPECT_NE(output.find("frechet_distance"), std::string::npos) << output;
  const nlohmann::json j = nlohmann::json::parse(read_file(json, 1 << 20));
  EXPECT_EQ(j.at("samples").get<int64_t>(), 200);
  EXPECT_EQ(j.at("classifier").at("sha256").get<std::string>(), info.weights_sha256);
  // Same generator, seed and sample count as the run's final evaluation: the same figures,
  // up to float rounding (the run generates 32 rows per GEMM, eval 1000, and OpenBLAS sums
  // in a shape-dependent order).
  const double run_fd = latest.at("model").at("frechet_distance").get<double>();
  EXPECT_NEAR(j.at("model").at("frechet_distance").get<double>(), run_fd, 1e-5 * run_fd);
  EXPECT_EQ(j.at("model").at("class_counts"), latest.at("model").at("class_counts"));
  // The end of the run: the last evaluation as the model-vs-floor table; curves.png with the
  // third panel, the Frechet distance (three 300-pixel panels).
  EXPECT_NE(log.find("the final EMA generator at step 20 against the real-data floor"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("classifier_score"), std::string::npos) << log;
  const GrayImage curves = read_png_gray((dir / "run" / "curves.png").string());
  EXPECT_EQ(curves.width, 800);
  EXPECT_EQ(curves.height, 900);
  fs::remove_all(dir);
}

// Without --eval-every, a run whose --classifier exists still ends with the table and
// eval.json, of the EMA generator when there is one; `eval` takes the EMA generator from the
// checkpoint unless --raw-generator. --no-final-eval skips it.
TEST(EvalInTraining, FinalEvaluationOfTheEmaGeneratorAndTheRawOneOnRequest) {
  TrainedClassifier& t = trained();
  const fs::path dir = fresh_dir("train_final_eval");
  const std::string classifier_path = (dir / "classifier.bin").string();
  ClassifierInfo info;
  info.test_accuracy = t.accuracy;
  save_classifier(classifier_path, *t.classifier, info);

  TrainConfig config = small_eval_run(t, dir, classifier_path);
  config.ema_decay = 0.9f;
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(run_training(config), 0);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("the final EMA generator at step 20 against the real-data floor"),
            std::string::npos)
      << log;
  const nlohmann::json final_eval =
      nlohmann::json::parse(read_file((dir / "run" / "eval.json").string(), 1 << 20));
  EXPECT_EQ(final_eval.at("generator").get<std::string>(), "EMA generator");
  EXPECT_EQ(final_eval.at("step").get<int64_t>(), 20);
  // Two panels: no metrics row carries an evaluation.
  EXPECT_EQ(read_png_gray((dir / "run" / "curves.png").string()).height, 600);

  const auto eval_json = [&](const std::string& extra, const std::string& name) {
    const std::string json = (dir / name).string();
    const runtest::BinaryResult r = runtest::run_command(
        "eval --device cpu --checkpoint " + (dir / "run" / "latest.ckpt").string() +
        " --classifier " + classifier_path + " --data " + config.data_dir +
        " --samples 200 --json " + json + extra);
    EXPECT_EQ(r.code, 0) << r.output;
    return nlohmann::json::parse(read_file(json, 1 << 20));
  };
  const nlohmann::json ema = eval_json("", "ema.json"),
                       raw = eval_json(" --raw-generator", "raw.json");
  EXPECT_EQ(ema.at("generator").get<std::string>(), "EMA generator");
  EXPECT_EQ(raw.at("generator").get<std::string>(), "raw generator");
  const double ema_fd = ema.at("model").at("frechet_distance").get<double>();
  EXPECT_NEAR(ema_fd, final_eval.at("model").at("frechet_distance").get<double>(), 1e-5 * ema_fd);
  EXPECT_NE(ema_fd, raw.at("model").at("frechet_distance").get<double>());

  TrainConfig off = config;
  off.out_dir = (dir / "run_off").string();
  off.final_eval = false;
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(run_training(off), 0);
  const std::string off_log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(off_log.find("against the real-data floor"), std::string::npos) << off_log;
  EXPECT_FALSE(fs::exists(dir / "run_off" / "eval.json"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mnistgan
