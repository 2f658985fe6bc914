// test_softmax_xent.cpp: the softmax cross-entropy op the feature classifier trains with,
// against a double-precision reference, by finite differences, and (with a GPU) CUDA against
// the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda_test.h"  // CudaTest
#include "test_util.h"

namespace mnistgan {
namespace {

using test::alloc;
using test::zeros;
using test::download;
using test::expect_close;
using test::random_vector;
using test::upload;

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
  auto stats = zeros<float>(*backend, 2);
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
    auto stats = zeros<float>(*backend, 2);
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

// GPU tests: skipped without a device (tests/cuda_test.h).
using SoftmaxXentCuda = test::CudaTest;

TEST_F(SoftmaxXentCuda, MatchesCpu) {
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
      auto s = zeros<float>(*b, 2);
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
      auto s = zeros<float>(*b, 2);
      b->softmax_cross_entropy(x.get(), y.get(), rows, classes, 1.0f, nullptr, s.get());
      losses.push_back(download(*b, s.get(), 1)[0]);
    }
    EXPECT_NEAR(losses[1], losses[0], 1e-5 + 1e-5 * std::fabs(losses[0])) << what;
  }
}

}  // namespace
}  // namespace mnistgan
