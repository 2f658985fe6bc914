// test_model_grad.cpp: the model's wiring (layer order, the [h | o] concatenation, the two
// gradient paths into h, scratch-buffer reuse) checked end to end: the analytic gradients
// of whole networks against central finite differences of the same float forward pass.
// Float forward passes limit the FD accuracy, hence a tiny model, a large step and a
// looser tolerance than the per-op tests in test_ops_cpu.cpp. Conditional models (one-hot
// label columns appended to both networks' inputs) too: the gradient w.r.t. D's input is
// the image part only.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/backend.h"
#include "model/model.h"
#include "test_util.h"  // random_vector

namespace mnistgan {
namespace {

// Step and tolerance for FD through float forward passes: rounding error ~ 1e-7 / h.
constexpr float kStep = 4e-3f;
constexpr double kAtol = 2e-3, kRtol = 3e-2;

ModelShape tiny_shape(int mbd_kernels, int classes) {
  ModelShape s;
  s.classes = classes;
  s.image_pixels = 6;
  s.latent_dim = 3;
  s.hidden_g = {5, 4};
  s.hidden_d = {5, 4};
  s.mbd_kernels = mbd_kernels;
  s.mbd_dims = 2;
  return s;
}

double weighted_sum(const float* y, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += static_cast<double>(y[i]) * r[i];
  return s;
}

// Central difference of loss() w.r.t. *p at step h.
template <typename Loss>
double central_difference(float* p, float h, Loss&& loss) {
  const float keep = *p;
  *p = keep + h;
  const double up = loss();
  *p = keep - h;
  const double down = loss();
  *p = keep;
  return (up - down) / (2.0 * h);
}

// Compares at step h; where the differences at h and h/4 disagree, a LeakyReLU or |.| kink
// lies within h of the point and the FD is meaningless there: such points are counted, not
// compared (and the caller checks they are rare).
template <typename Loss>
void check(const std::string& what, double analytic, float* p, Loss&& loss, int& kinks) {
  const double coarse = central_difference(p, kStep, loss);
  const double fine = central_difference(p, kStep / 4, loss);
  if (std::fabs(coarse - fine) > kAtol + kRtol * std::fabs(fine)) {
    ++kinks;
    return;
  }
  EXPECT_LE(std::fabs(analytic - coarse), kAtol + kRtol * std::fabs(coarse))
      << what << ": analytic " << analytic << " vs finite difference " << coarse;
}

// (mbd kernels, classes): with and without minibatch discrimination, unconditional and
// conditional.
class ModelGradient : public ::testing::TestWithParam<std::tuple<int, int>> {
 protected:
  ModelShape shape() const { return tiny_shape(std::get<0>(GetParam()), std::get<1>(GetParam())); }
  // Labels r % classes for a conditional model; nullptr (an empty vector) otherwise.
  std::vector<int32_t> labels(int rows) const {
    std::vector<int32_t> out;
    const int classes = std::get<1>(GetParam());
    for (int r = 0; classes > 0 && r < rows; ++r) out.push_back((r * 7 + 1) % classes);
    return out;
  }
  static const int32_t* ptr(const std::vector<int32_t>& v) {
    return v.empty() ? nullptr : v.data();
  }
};

TEST_P(ModelGradient, DiscriminatorParamsAndInputMatchFiniteDifferences) {
  const int groups = 2, B = 3;
  auto backend = make_cpu_backend();
  Gan gan(*backend, shape(), B, groups);
  const std::vector<int32_t> y = labels(groups * B);
  gan.init_params(5);
  Network& D = gan.discriminator();
  // Scale the weights up so activations cross the LeakyReLU kink and o varies.
  for (size_t i = 0; i < D.size; ++i) D.params[i] *= 3.0f;
  const int rows = groups * B, pixels = 6;
  std::vector<float> x = test::random_vector(rows * pixels, 7, -1.0f, 1.0f);
  const std::vector<float> r = test::random_vector(rows, 8, -1.0f, 1.0f);
  std::vector<float> dx(rows * pixels);
  gan.discriminator_forward(x.data(), groups, B, ptr(y));
  gan.discriminator_backward(x.data(), r.data(), groups, B, true, dx.data());
  const std::vector<float> grads(D.grads, D.grads + D.size);

  auto loss = [&] {
    return weighted_sum(gan.discriminator_forward(x.data(), groups, B, ptr(y)), r);
  };
  int kinks = 0, checked = 0;
  for (size_t i = 0; i < D.size; i += 3, ++checked)
    check("D param " + std::to_string(i), grads[i], &D.params[i], loss, kinks);
  for (size_t i = 0; i < x.size(); ++i, ++checked)
    check("D input " + std::to_string(i), dx[i], &x[i], loss, kinks);
  EXPECT_LE(kinks, checked / 10) << "too many points near a kink to trust the check";
  // Without parameter gradients the input gradient is the same, and D.grads is untouched.
  std::fill(D.grads, D.grads + D.size, 0.0f);
  std::vector<float> dx2(dx.size());
  gan.discriminator_forward(x.data(), groups, B, ptr(y));
  gan.discriminator_backward(x.data(), r.data(), groups, B, false, dx2.data());
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_FLOAT_EQ(dx[i], dx2[i]);
  for (size_t i = 0; i < D.size; ++i) ASSERT_EQ(D.grads[i], 0.0f);
}

TEST_P(ModelGradient, GeneratorParamsMatchFiniteDifferences) {
  const int B = 4;
  auto backend = make_cpu_backend();
  Gan gan(*backend, shape(), B, 1);
  const std::vector<int32_t> y = labels(B);
  gan.init_params(6);
  Network& G = gan.generator();
  for (size_t i = 0; i < G.size; ++i) G.params[i] *= 2.0f;
  const std::vector<float> z = test::random_vector(B * 3, 9, -1.5f, 1.5f),
                           r = test::random_vector(B * 6, 10, -1.0f, 1.0f);
  std::vector<float> images(B * 6);
  gan.generator_forward(z.data(), images.data(), B, ptr(y));
  gan.generator_backward(z.data(), images.data(), r.data(), B, ptr(y));
  const std::vector<float> grads(G.grads, G.grads + G.size);
  auto loss = [&] {
    gan.generator_forward(z.data(), images.data(), B, ptr(y));
    return weighted_sum(images.data(), r);
  };
  int kinks = 0, checked = 0;
  for (size_t i = 0; i < G.size; i += 2, ++checked)
    check("G param " + std::to_string(i), grads[i], &G.params[i], loss, kinks);
  EXPECT_LE(kinks, checked / 10) << "too many points near a kink to trust the check";
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutMbdAndLabels, ModelGradient,
                         ::testing::Combine(::testing::Values(0, 3), ::testing::Values(0, 3)));

TEST(ModelLabels, ConditionalNeedsLabelsAndUnconditionalRefusesThem) {
  auto backend = make_cpu_backend();
  Gan plain(*backend, tiny_shape(0, 0), 2, 1), conditional(*backend, tiny_shape(0, 3), 2, 1);
  plain.init_params(1);
  conditional.init_params(1);
  const std::vector<float> z(2 * 3, 0.5f), x(2 * 6, 0.1f);
  const std::vector<int32_t> y{0, 2};
  std::vector<float> images(2 * 6);
  EXPECT_THROW(conditional.generator_forward(z.data(), images.data(), 2), std::invalid_argument);
  EXPECT_THROW(conditional.discriminator_forward(x.data(), 1, 2), std::invalid_argument);
  EXPECT_THROW(plain.generator_forward(z.data(), images.data(), 2, y.data()),
               std::invalid_argument);
  EXPECT_EQ(conditional.generator().tensors[0].shape, (std::vector<int64_t>{5, 3 + 3}));
  EXPECT_EQ(conditional.discriminator().tensors[0].shape, (std::vector<int64_t>{5, 6 + 3}));
  // The label changes the image: G really reads it.
  std::vector<float> a(2 * 6), b(2 * 6);
  const std::vector<int32_t> y2{1, 0};
  conditional.generator_forward(z.data(), a.data(), 2, y.data());
  conditional.generator_forward(z.data(), b.data(), 2, y2.data());
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace mnistgan
