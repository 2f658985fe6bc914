// eval_metrics.cpp: see eval_metrics.h.
#include "eval/eval_metrics.h"

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::sqrt, std::log, std::exp, std::fabs
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>  // std::move

namespace mnistgan {
namespace {

// Largest distance block held at once: rows * n_b floats (64 MB).
constexpr int64_t kMaxBlockFloats = int64_t{16} << 20;
constexpr int kMaxBlockRows = 2048;

// c (n, n) = a (n, n) b (n, n), row-major double.
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int n) {
  std::vector<double> c(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      const double aik = a[static_cast<size_t>(i) * n + k];
      const double* brow = &b[static_cast<size_t>(k) * n];
      double* crow = &c[static_cast<size_t>(i) * n];
      for (int j = 0; j < n; ++j) crow[j] += aik * brow[j];
    }
  return c;
}

// The symmetric square root V diag(sqrt(max(lambda, 0))) V^T of a covariance matrix
// (tiny negative eigenvalues are rounding: a covariance is positive semidefinite).
std::vector<double> symmetric_sqrt(const std::vector<double>& a, int n) {
  const SymmetricEigen e = symmetric_eigen(a, n);
  std::vector<double> out(static_cast<size_t>(n) * n, 0.0);
  for (int k = 0; k < n; ++k) {
    const double root = std::sqrt(std::max(e.values[k], 0.0));
    if (root == 0.0) continue;
    for (int i = 0; i < n; ++i) {
      const double vik = e.vectors[static_cast<size_t>(i) * n + k] * root;
      for (int j = 0; j < n; ++j)
        out[static_cast<size_t>(i) * n + j] += vik * e.vectors[static_cast<size_t>(j) * n + k];
    }
  }
  return out;
}

// Keeps the k smallest values seen, ascending.
struct SmallestK {
  explicit SmallestK(int k) : values(k, std::numeric_limits<float>::infinity()) {}
  void offer(float v) {
    if (!(v < values.back())) return;
    size_t i = values.size() - 1;
    while (i > 0 && values[i - 1] > v) values[i] = values[i - 1], --i;
    values[i] = v;
  }
  std::vector<float> values;
};

// `given` (x already on the backend) when set, else x (count floats, on the host) uploaded
// into `holder`.
const float* on_backend(Backend& backend, const float* x, size_t count, const float* given,
                        BackendBuffer<float>& holder) {
  if (given != nullptr) return given;
  holder = BackendBuffer<float>(backend, count);
  backend.to_backend(holder.get(), x, count * sizeof(float));
  return holder.get();
}

}  // namespace

SymmetricEigen symmetric_eigen(const std::vector<double>& input, int n, bool with_vectors) {
  if (n < 1 || input.size() != static_cast<size_t>(n) * n)
    throw std::invalid_argument("symmetric_eigen: need an n x n matrix, n >= 1");
  double scale = 0.0;
  for (double x : input) scale = std::max(scale, std::fabs(x));
  std::vector<double> a = input;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      double& aij = a[static_cast<size_t>(i) * n + j];
      double& aji = a[static_cast<size_t>(j) * n + i];
      if (std::fabs(aij - aji) > 1e-9 * scale)
        throw std::invalid_argument("symmetric_eigen: matrix is not symmetric at (" +
                                    std::to_string(i) + ", " + std::to_string(j) + ")");
      aij = aji = 0.5 * (aij + aji);
    }
  // vt = V^T: eigenvector j in row j, so the rotations update contiguous rows.
  std::vector<double> vt;
  if (with_vectors) {
    vt.assign(static_cast<size_t>(n) * n, 0.0);
    for (int i = 0; i < n; ++i) vt[static_cast<size_t>(i) * n + i] = 1.0;
  }
  double total = 0.0;
  for (double x : a) total += x * x;
  constexpr int kMaxSweeps = 100;
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    double off = 0.0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q)
        off += a[static_cast<size_t>(p) * n + q] * a[static_cast<size_t>(p) * n + q];
    // Converged when the off-diagonal mass is at rounding level of the whole matrix
    // (Jacobi converges quadratically: the sweep before this one was near 1e-13).
    if (off <= 1e-28 * total) break;
    for (int p = 0; p < n; ++p) {
      double* row_p = &a[static_cast<size_t>(p) * n];
      for (int q = p + 1; q < n; ++q) {
        double* row_q = &a[static_cast<size_t>(q) * n];
        const double apq = row_p[q];
        if (apq == 0.0) continue;
        // The rotation J (c, s) that zeroes a_pq (Numerical Recipes 11.1): t = tan(phi) is
        // the smaller root of t^2 + 2 theta t - 1 = 0, which keeps the rotation small.
        const double theta = (row_q[q] - row_p[p]) / (2.0 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        // A' = J^T A J. Off the (p, q) block, rows p and q of A' are J^T's mix of rows p
        // and q of A (contiguous), and columns p and q are their mirror (A' is symmetric);
        // the block itself is diag(a_pp - t a_pq, a_qq + t a_pq).
        const double app = row_p[p], aqq = row_q[q];
        for (int k = 0; k < n; ++k) {
          const double apk = row_p[k], aqk = row_q[k];
          row_p[k] = c * apk - s * aqk;
          row_q[k] = s * apk + c * aqk;
        }
        row_p[p] = app - t * apq;
        row_q[q] = aqq + t * apq;
        row_p[q] = row_q[p] = 0.0;
        for (int k = 0; k < n; ++k) {
          if (k == p || k == q) continue;
          a[static_cast<size_t>(k) * n + p] = row_p[k];
          a[static_cast<size_t>(k) * n + q] = row_q[k];
        }
        if (with_vectors) {  // V' = V J, i.e. rows p and q of V^T mix like A's
          double* vp = &vt[static_cast<size_t>(p) * n];
          double* vq = &vt[static_cast<size_t>(q) * n];
          for (int k = 0; k < n; ++k) {
            const double x = vp[k], y = vq[k];
            vp[k] = c * x - s * y;
            vq[k] = s * x + c * y;
          }
        }
      }
    }
  }
  SymmetricEigen result;
  result.values.resize(n);
  for (int i = 0; i < n; ++i) result.values[i] = a[static_cast<size_t>(i) * n + i];
  if (with_vectors) {
    result.vectors.resize(static_cast<size_t>(n) * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        result.vectors[static_cast<size_t>(i) * n + j] = vt[static_cast<size_t>(j) * n + i];
  }
  return result;
}

GaussianStats gaussian_stats(const float* features, int64_t n, int dim) {
  if (n < 2 || dim < 1)
    throw std::invalid_argument("gaussian_stats: need at least 2 samples and 1 dimension");
  GaussianStats s;
  s.dim = dim;
  s.mean.assign(dim, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < dim; ++d) s.mean[d] += features[i * dim + d];
  for (double& m : s.mean) m /= static_cast<double>(n);
  // Upper triangle of sum (x - mu)(x - mu)^T, then mirrored.
  s.cov.assign(static_cast<size_t>(dim) * dim, 0.0);
  std::vector<double> centred(dim);
  for (int64_t i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) centred[d] = features[i * dim + d] - s.mean[d];
    for (int r = 0; r < dim; ++r) {
      const double cr = centred[r];
      if (cr == 0.0) continue;  // post-ReLU features are often exactly 0
      double* row = &s.cov[static_cast<size_t>(r) * dim];
      for (int c = r; c < dim; ++c) row[c] += cr * centred[c];
    }
  }
  for (int r = 0; r < dim; ++r)
    for (int c = r; c < dim; ++c) {
      const double value = s.cov[static_cast<size_t>(r) * dim + c] / static_cast<double>(n - 1);
      s.cov[static_cast<size_t>(r) * dim + c] = s.cov[static_cast<size_t>(c) * dim + r] = value;
    }
  return s;
}

namespace {

// frechet_distance with a's covariance root given: root_a = sqrt(a.cov).
double frechet_with_root(const GaussianStats& a, const std::vector<double>& root_a,
                         const GaussianStats& b) {
  if (a.dim != b.dim || a.dim < 1)
    throw std::invalid_argument("frechet_distance: the two Gaussians differ in dimension");
  const int n = a.dim;
  double mean_term = 0.0, trace_a = 0.0, trace_b = 0.0;
  for (int i = 0; i < n; ++i) {
    const double d = a.mean[i] - b.mean[i];
    mean_term += d * d;
    trace_a += a.cov[static_cast<size_t>(i) * n + i];
    trace_b += b.cov[static_cast<size_t>(i) * n + i];
  }
  // tr sqrt(S_a S_b) = tr sqrt(sqrt(S_a) S_b sqrt(S_a)): the latter is symmetric PSD and
  // similar to S_a S_b, so its eigenvalues are S_a S_b's, and real and >= 0.
  std::vector<double> m = matmul(matmul(root_a, b.cov, n), root_a, n);
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const double avg =
          0.5 * (m[static_cast<size_t>(i) * n + j] + m[static_cast<size_t>(j) * n + i]);
      m[static_cast<size_t>(i) * n + j] = m[static_cast<size_t>(j) * n + i] = avg;
    }
  double trace_sqrt = 0.0;
  for (double lambda : symmetric_eigen(m, n, /*with_vectors=*/false).values)
    trace_sqrt += std::sqrt(std::max(lambda, 0.0));
  return mean_term + trace_a + trace_b - 2.0 * trace_sqrt;
}

}  // namespace

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  if (a.dim != b.dim || a.dim < 1)
    throw std::invalid_argument("frechet_distance: the two Gaussians differ in dimension");
  return frechet_with_root(a, symmetric_sqrt(a.cov, a.dim), b);
}

FrechetReference frechet_reference(GaussianStats stats) {
  if (stats.dim < 1) throw std::invalid_argument("frechet_reference: empty statistics");
  FrechetReference r;
  r.root_cov = symmetric_sqrt(stats.cov, stats.dim);
  r.stats = std::move(stats);
  return r;
}

double frechet_distance(const GaussianStats& samples, const FrechetReference& reference) {
  // The distance is symmetric in its two Gaussians: root the reference's side.
  return frechet_with_root(reference.stats, reference.root_cov, samples);
}

ScoreResult classifier_score(const std::vector<double>& probs, int64_t n, int classes, int splits) {
  if (splits < 1 || n < splits || probs.size() != static_cast<size_t>(n) * classes)
    throw std::invalid_argument("classifier_score: need probs (n, classes) with n >= splits");
  std::vector<double> scores;
  for (int s = 0; s < splits; ++s) {
    const int64_t begin = n * s / splits, end = n * (s + 1) / splits;
    std::vector<double> marginal(classes, 0.0);
    for (int64_t i = begin; i < end; ++i)
      for (int c = 0; c < classes; ++c) marginal[c] += probs[i * classes + c];
    for (double& m : marginal) m /= static_cast<double>(end - begin);
    double kl_sum = 0.0;
    for (int64_t i = begin; i < end; ++i)
      for (int c = 0; c < classes; ++c) {
        const double p = probs[i * classes + c];
        if (p > 0.0) kl_sum += p * (std::log(p) - std::log(marginal[c]));  // 0 log 0 = 0
      }
    scores.push_back(std::exp(kl_sum / static_cast<double>(end - begin)));
  }
  ScoreResult r;
  for (double s : scores) r.mean += s;
  r.mean /= splits;
  for (double s : scores) r.std += (s - r.mean) * (s - r.mean);
  r.std = std::sqrt(r.std / splits);
  return r;
}

ClassHistogram class_histogram(const std::vector<double>& probs, int64_t n, int classes) {
  if (n < 1 || classes < 1 || probs.size() != static_cast<size_t>(n) * classes)
    throw std::invalid_argument("class_histogram: need probs (n, classes), n >= 1");
  ClassHistogram h;
  h.counts.assign(classes, 0);
  for (int64_t i = 0; i < n; ++i) {
    int best = 0;
    for (int c = 1; c < classes; ++c)
      if (probs[i * classes + c] > probs[i * classes + best]) best = c;
    ++h.counts[best];
  }
  for (int c = 0; c < classes; ++c) {
    if (h.counts[c] > 0) ++h.classes_hit;
    // count >= n / (2 classes), in integers: 2 classes count >= n.
    if (2 * classes * h.counts[c] >= n) ++h.classes_half_share;
    const double p = static_cast<double>(h.counts[c]) / static_cast<double>(n);
    if (p > 0) h.kl_uniform += p * std::log(p * classes);
  }
  return h;
}

void for_each_distance_block(Backend& backend, const float* a, int64_t n_a, const float* b,
                             int64_t n_b, int dim, const DistanceBlockVisitor& visit,
                             const float* backend_a, const float* backend_b) {
  if (n_a < 1 || n_b < 1 || dim < 1)
    throw std::invalid_argument("for_each_distance_block: empty set");
  const int block_rows = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>({kMaxBlockRows, n_a, kMaxBlockFloats / n_b})));
  // ||x||^2 in double: the cancellation in ||a||^2 + ||b||^2 - 2 a.b is then limited by the
  // GEMM's float rounding alone.
  auto squared_norms = [dim](const float* x, int64_t n) {
    std::vector<float> norms(n);
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (int d = 0; d < dim; ++d) s += static_cast<double>(x[i * dim + d]) * x[i * dim + d];
      norms[i] = static_cast<float>(s);
    }
    return norms;
  };
  const std::vector<float> norm_a = squared_norms(a, n_a), norm_b = squared_norms(b, n_b);
  BackendBuffer<float> uploaded_a, uploaded_b;
  const float* dev_a =
      on_backend(backend, a, static_cast<size_t>(n_a) * dim, backend_a, uploaded_a);
  const float* dev_b =
      on_backend(backend, b, static_cast<size_t>(n_b) * dim, backend_b, uploaded_b);
  const BackendBuffer<float> dot(backend, static_cast<size_t>(block_rows) * n_b);
  std::vector<float> d2(static_cast<size_t>(block_rows) * n_b);
  for (int64_t start = 0; start < n_a; start += block_rows) {
    const int rows = static_cast<int>(std::min<int64_t>(block_rows, n_a - start));
    // dot (rows, n_b) = A_block (rows, dim) B^T: B plays the weight matrix (out = n_b).
    backend.linear_forward(dev_a + start * dim, dev_b, nullptr, dot.get(), rows, dim,
                           static_cast<int>(n_b), Activation::kNone, 0.0f);
    backend.to_host(d2.data(), dot.get(), static_cast<size_t>(rows) * n_b * sizeof(float));
    for (int r = 0; r < rows; ++r) {
      float* row = d2.data() + static_cast<size_t>(r) * n_b;
      const float na = norm_a[start + r];
      for (int64_t j = 0; j < n_b; ++j) row[j] = std::max(0.0f, na + norm_b[j] - 2.0f * row[j]);
    }
    visit(start, rows, d2.data());
  }
}

std::vector<std::vector<float>> knn_radii_squared(Backend& backend, const float* x, int64_t n,
                                                  int dim, const std::vector<int>& ks,
                                                  const float* backend_x) {
  if (ks.empty() || ks.front() < 1 || ks.back() >= n || !std::is_sorted(ks.begin(), ks.end()))
    throw std::invalid_argument("knn_radii_squared: ks must be ascending, in [1, n)");
  const int k_max = ks.back();
  std::vector<std::vector<float>> radii(ks.size(), std::vector<float>(n));
  BackendBuffer<float> uploaded;
  // x against itself: one backend copy serves both operands.
  const float* dev_x =  // (dim < 1 is left to for_each_distance_block to refuse)
      dim < 1 ? nullptr : on_backend(backend, x, static_cast<size_t>(n) * dim, backend_x, uploaded);
  for_each_distance_block(
      backend, x, n, x, n, dim,
      [&](int64_t start, int rows, const float* d2) {
        for (int r = 0; r < rows; ++r) {
          const int64_t self = start + r;
          const float* row = d2 + static_cast<size_t>(r) * n;
          SmallestK nearest(k_max);
          for (int64_t j = 0; j < n; ++j)
            if (j != self) nearest.offer(row[j]);
          for (size_t i = 0; i < ks.size(); ++i) radii[i][self] = nearest.values[ks[i] - 1];
        }
      },
      dev_x, dev_x);
  return radii;
}

PrdcResult prdc(Backend& backend, const float* real, int64_t n_real, const float* fake,
                int64_t n_fake, int dim, const std::vector<float>& real_r3,
                const std::vector<float>& real_r5, const float* backend_real,
                const float* backend_fake) {
  if (real_r3.size() != static_cast<size_t>(n_real) ||
      real_r5.size() != static_cast<size_t>(n_real))
    throw std::invalid_argument("prdc: real radii do not match the real set");
  // The fakes are multiplied twice (with themselves for their radii, then with the reals):
  // upload them once (an empty set is left to knn_radii_squared to refuse).
  BackendBuffer<float> uploaded_fake;
  if (n_fake >= 1 && dim >= 1)
    backend_fake =
        on_backend(backend, fake, static_cast<size_t>(n_fake) * dim, backend_fake, uploaded_fake);
  const std::vector<float> fake_r3 =
      knn_radii_squared(backend, fake, n_fake, dim, {kPrecisionRecallK}, backend_fake)[0];
  int64_t precise_fakes = 0, density_hits = 0;
  std::vector<uint8_t> recalled(n_real, 0);
  std::vector<float> nearest_fake(n_real, std::numeric_limits<float>::infinity());
  // Rows are fakes, columns reals: one pass serves all four metrics.
  for_each_distance_block(
      backend, fake, n_fake, real, n_real, dim,
      [&](int64_t start, int rows, const float* d2) {
        for (int r = 0; r < rows; ++r) {
          const float* row = d2 + static_cast<size_t>(r) * n_real;
          const float fake_radius = fake_r3[start + r];
          bool inside_some_real_ball = false;
          for (int64_t j = 0; j < n_real; ++j) {
            const float d = row[j];
            inside_some_real_ball |= d < real_r3[j];
            density_hits += d < real_r5[j];
            recalled[j] |= d < fake_radius;
            nearest_fake[j] = std::min(nearest_fake[j], d);
          }
          precise_fakes += inside_some_real_ball;
        }
      },
      backend_fake, backend_real);
  PrdcResult result;
  result.precision = static_cast<double>(precise_fakes) / n_fake;
  int64_t recalled_count = 0, covered = 0;
  for (int64_t j = 0; j < n_real; ++j) {
    recalled_count += recalled[j];
    covered += nearest_fake[j] < real_r5[j];
  }
  result.recall = static_cast<double>(recalled_count) / n_real;
  result.density =
      static_cast<double>(density_hits) / (static_cast<double>(kDensityCoverageK) * n_fake);
  result.coverage = static_cast<double>(covered) / n_real;
  return result;
}

}  // namespace mnistgan
