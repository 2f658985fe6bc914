// eval_metrics.h: sample-quality metrics in the feature classifier's space, each a plain
// function of feature vectors and class probabilities so tests can feed constructed cases.
//
//   Frechet distance   ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b), all in
//                      double; tr sqrt(S_a S_b) = sum_i sqrt(lambda_i) over the eigenvalues
//                      of the symmetric sqrt(S_a) S_b sqrt(S_a) (Jacobi, on the CPU).
//   classifier score   exp(E_x KL(p(y|x) || p(y))) per split, mean and std over splits
//                      (the Inception score's formula with the MNIST classifier).
//   class histogram    argmax classes: classes hit, classes with at least half the uniform
//                      share, KL(p_gen || uniform) in nats (0 = balanced, ln 10 = one class).
//   precision/recall   k = 3, Kynkaanniemi et al. 2019: the fraction of fakes inside some
//                      real sample's k-NN ball, and of reals inside some fake's ball.
//   density/coverage   k = 5, Naeem et al. 2020: real balls containing each fake, averaged
//                      and divided by k; fraction of real balls that contain a fake.
// k-NN radii exclude the point itself; comparisons are strict (d < r), as in Naeem et
// al.'s reference code. Squared distances ||a||^2 + ||b||^2 - 2 a.b come from the
// Backend's linear_forward (a GEMM; on the GPU when the backend is CUDA), one block of
// rows at a time so an n x n matrix is never held whole. A feature set already on the
// backend (eval.h keeps the classifier's output there) is multiplied where it is; a host
// one is uploaded once per call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"  // BackendBuffer

namespace mnistgan {

// ---- linear algebra ------------------------------------------------------------------
// Eigen-decomposition of a symmetric n x n matrix a (row-major, double) by cyclic Jacobi
// rotations: values (n), vectors (n, n) row-major with eigenvector j in column j, so
// a = V diag(values) V^T. Converges to ~1e-15 relative; throws std::invalid_argument when
// a is not square or not symmetric within 1e-9 relative.
struct SymmetricEigen {
  std::vector<double> values;
  std::vector<double> vectors;
};
// with_vectors = false skips the vectors (a third of the work); vectors is then empty.
SymmetricEigen symmetric_eigen(const std::vector<double>& a, int n, bool with_vectors = true);

// ---- feature statistics ----------------------------------------------------------------
struct GaussianStats {
  int dim = 0;
  std::vector<double> mean;  // (dim)
  std::vector<double> cov;   // (dim, dim), unbiased (n - 1), like numpy.cov
};
// features (n, dim) float, n >= 2.
GaussianStats gaussian_stats(const float* features, int64_t n, int dim);
double frechet_distance(const GaussianStats& a, const GaussianStats& b);
// The fixed side of many Frechet distances (the real set every sample set is compared
// with): its statistics and sqrt of its covariance, the costlier half of the Jacobi work,
// computed once.
struct FrechetReference {
  GaussianStats stats;
  std::vector<double> root_cov;  // (dim, dim), symmetric
};
FrechetReference frechet_reference(GaussianStats stats);
// The same figure as frechet_distance(samples, reference.stats), up to rounding.
double frechet_distance(const GaussianStats& samples, const FrechetReference& reference);

// ---- class probabilities ---------------------------------------------------------------
// probs (n, classes), rows summing to 1.
struct ScoreResult {
  double mean = 0, std = 0;  // over the splits (population std, as in the Inception score)
};
ScoreResult classifier_score(const std::vector<double>& probs, int64_t n, int classes,
                             int splits = 10);

struct ClassHistogram {
  std::vector<int64_t> counts;  // (classes): argmax of each row
  int classes_hit = 0;          // classes with at least one sample
  int classes_half_share = 0;   // classes with at least n / (2 classes) samples
  double kl_uniform = 0;        // KL(p_gen || uniform) in nats
};
ClassHistogram class_histogram(const std::vector<double>& probs, int64_t n, int classes);

// ---- k-NN metrics --------------------------------------------------------------------
// Calls visit(row_start, rows, d2) for consecutive blocks of rows of a (n_a, dim), where
// d2 (rows, n_b) holds the squared distances to every row of b (n_b, dim), clamped at 0.
// a and b are host arrays (the norms are taken there); they are multiplied on `backend`:
// backend_a and backend_b, when given, are the same values already there (alloc'd by
// `backend`; they may be one buffer), otherwise a and b are uploaded for the call.
using DistanceBlockVisitor = std::function<void(int64_t row_start, int rows, const float* d2)>;
void for_each_distance_block(Backend& backend, const float* a, int64_t n_a, const float* b,
                             int64_t n_b, int dim, const DistanceBlockVisitor& visit,
                             const float* backend_a = nullptr, const float* backend_b = nullptr);

// Squared distance from each row of x (n, dim) to its k-th nearest other row, for each k
// in ks (ascending, each < n): result[i] (n) for ks[i]. backend_x: x already on the
// backend, as in for_each_distance_block (otherwise uploaded once).
std::vector<std::vector<float>> knn_radii_squared(Backend& backend, const float* x, int64_t n,
                                                  int dim, const std::vector<int>& ks,
                                                  const float* backend_x = nullptr);

struct PrdcResult {
  double precision = 0, recall = 0, density = 0, coverage = 0;
};
// real (n_real, dim), fake (n_fake, dim); real_r3 and real_r5 are knn_radii_squared of the
// real set at k = 3 and k = 5 (computed once, shared by every fake set compared to it).
// backend_real and backend_fake: the sets already on the backend, as in
// for_each_distance_block (otherwise each is uploaded once for the call).
PrdcResult prdc(Backend& backend, const float* real, int64_t n_real, const float* fake,
                int64_t n_fake, int dim, const std::vector<float>& real_r3,
                const std::vector<float>& real_r5, const float* backend_real = nullptr,
                const float* backend_fake = nullptr);

constexpr int kPrecisionRecallK = 3;
constexpr int kDensityCoverageK = 5;

}  // namespace mnistgan
