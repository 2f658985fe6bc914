// test_eval_metrics.cpp: the metrics math of eval_metrics.h on constructed cases: the Jacobi
// eigensolver, the Frechet distance against closed forms, the classifier score, the class
// histogram and precision/recall/density/coverage (CPU, and the backend-resident path on
// CUDA when a GPU is present).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda_test.h"  // CudaTest
#include "eval/eval_metrics.h"
#include "test_util.h"

namespace mnistgan {
namespace {

using test::random_vector;

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

// Sets already on the backend (as eval.cpp keeps the classifier's features there) give exactly
// the radii and figures of their host copies, uploaded for the call; on every backend built.
void check_resident_sets_match_uploaded(Backend& backend) {
  const int n_real = 300, n_fake = 250, dim = 8;
  const std::vector<float> real = random_vector(n_real * dim, 3);
  const std::vector<float> fake = random_vector(n_fake * dim, 4);
  BackendBuffer<float> on_real(backend, real.size()), on_fake(backend, fake.size());
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

// GPU tests: skipped without a device (tests/cuda_test.h).
using PrdcCuda = test::CudaTest;

TEST_F(PrdcCuda, BackendResidentSetsGiveTheSameFigures) {
  check_resident_sets_match_uploaded(*make_cuda_backend());
}

}  // namespace
}  // namespace mnistgan
