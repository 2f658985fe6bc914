// test_ops_cpu.cpp: the CPU backend's ops against double-precision references, and every
// backward pass against central finite differences of the double-precision forward.
//
// Method: for an op y = f(x), take a random probe r and the scalar L = sum(r * f(x)). The
// backend's backward gives dL/dx from dL/dy = r (in float); the reference gives
// (L(x + h e_i) - L(x - h e_i)) / 2h with f evaluated in double, so the only float error is
// the backend's own. Inputs are random and never zero (zero hides sign and bias bugs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>  // std::memcpy
#include <functional>
#include <random>
#include <vector>

#include "core/backend.h"
#include "core/formulas.h"  // adam_lr_scale, adam_update, AdamCorrections
#include "core/philox.h"
#include "test_util.h"  // random_vector

namespace mnistgan {
namespace {

// Float backward vs double FD: relative error of float accumulation over <= 1024 terms is
// ~1e-5; FD with h = 1e-4 in double has truncation error ~h^2 * f''' ~ 1e-8.
constexpr double kGradAtol = 2e-4;
constexpr double kGradRtol = 2e-3;
constexpr double kFdStep = 1e-4;

// |got - want| <= atol + rtol * |want| elementwise; prints the worst element and the first
// few mismatches on failure.
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double atol,
                  double rtol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    const double excess = err - (atol + rtol * std::fabs(want[i]));
    if (excess > worst_excess) worst_excess = excess, worst = i;
    if (excess > 0 && ++bad <= 5)
      first += "\n  [" + std::to_string(i) + "] got " + std::to_string(got[i]) + " want " +
               std::to_string(want[i]);
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " outside tolerance; worst ["
                     << worst << "] got " << got[worst] << " want " << want[worst] << first;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Central differences of L(x) = f(x) w.r.t. every element of x.
std::vector<double> finite_difference(std::vector<double> x,
                                      const std::function<double(const std::vector<double>&)>& L) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + kFdStep;
    const double up = L(x);
    x[i] = keep - kFdStep;
    const double down = L(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * kFdStep);
  }
  return g;
}

double leaky(double z, double slope) { return z > 0 ? z : slope * z; }

// Y (rows, out) = act(X W^T + b) in double.
std::vector<double> linear_ref(const std::vector<double>& X, const std::vector<double>& W,
                               const std::vector<double>& b, int rows, int in, int out,
                               Activation act, double slope) {
  std::vector<double> Y(static_cast<size_t>(rows) * out);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double z = b.empty() ? 0.0 : b[o];
      for (int i = 0; i < in; ++i) z += X[r * in + i] * W[o * in + i];
      Y[r * out + o] = act == Activation::kLeakyRelu ? leaky(z, slope)
                       : act == Activation::kTanh    ? std::tanh(z)
                                                     : z;
    }
  return Y;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

struct LinearCase {
  int rows, in, out;
  Activation act;
};

class CpuLinear : public ::testing::TestWithParam<LinearCase> {};

TEST_P(CpuLinear, ForwardMatchesDoubleAndBackwardMatchesFiniteDifferences) {
  const auto [rows, in, out, act] = GetParam();
  const float slope = 0.2f;
  auto backend = make_cpu_backend();
  const auto X = test::random_vector(rows * in, 1),
             W = test::random_vector(out * in, 2, -0.5f, 0.5f), b = test::random_vector(out, 3),
             R = test::random_vector(rows * out, 4);
  std::vector<float> Y(rows * out), dX(rows * in), dW(out * in), db(out);
  backend->linear_forward(X.data(), W.data(), b.data(), Y.data(), rows, in, out, act, slope);
  const auto Yref = linear_ref(to_double(X), to_double(W), to_double(b), rows, in, out, act, slope);
  expect_close(to_double(Y), Yref, 1e-5, 1e-5, "forward");

  // The fused backward: dZ = R * act'(Y) inside the op.
  backend->linear_backward(X.data(), W.data(), Y.data(), R.data(), dX.data(), dW.data(), db.data(),
                           rows, in, out, act, slope, false);
  const auto Xd = to_double(X), Wd = to_double(W), bd = to_double(b), Rd = to_double(R);
  expect_close(to_double(dX),
               finite_difference(Xd,
                                 [&](const std::vector<double>& x) {
                                   return dot(Rd, linear_ref(x, Wd, bd, rows, in, out, act, slope));
                                 }),
               kGradAtol, kGradRtol, "dX");
  expect_close(to_double(dW),
               finite_difference(Wd,
                                 [&](const std::vector<double>& w) {
                                   return dot(Rd, linear_ref(Xd, w, bd, rows, in, out, act, slope));
                                 }),
               kGradAtol, kGradRtol, "dW");
  expect_close(to_double(db),
               finite_difference(bd,
                                 [&](const std::vector<double>& bb) {
                                   return dot(Rd,
                                              linear_ref(Xd, Wd, bb, rows, in, out, act, slope));
                                 }),
               kGradAtol, kGradRtol, "db");

  // accumulate_dx adds into dX and still overwrites dW and db.
  std::vector<float> dX2 = dX, dW2(dW.size(), 7.0f), db2(db.size(), 7.0f);
  backend->linear_backward(X.data(), W.data(), Y.data(), R.data(), dX2.data(), dW2.data(),
                           db2.data(), rows, in, out, act, slope, true);
  for (size_t i = 0; i < dW.size(); ++i) ASSERT_EQ(dW2[i], dW[i]);
  for (size_t i = 0; i < db.size(); ++i) ASSERT_EQ(db2[i], db[i]);
  for (size_t i = 0; i < dX.size(); ++i)
    ASSERT_NEAR(dX2[i], 2 * dX[i], 1e-5 + 1e-5 * std::fabs(dX[i]));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CpuLinear,
                         ::testing::Values(LinearCase{1, 3, 2, Activation::kNone},
                                           LinearCase{5, 7, 3, Activation::kLeakyRelu},
                                           LinearCase{4, 9, 6, Activation::kTanh},
                                           LinearCase{3, 17, 1, Activation::kNone}));

// ---- dropout (op_types.h's Dropout) ------------------------------------------------------

// Y = dropout(leaky(X W^T + b)) in double with the mask `keep` (rows * out) fixed: kept
// elements scaled by 1 / (1 - p), dropped ones 0.
std::vector<double> dropout_linear_ref(const std::vector<double>& X, const std::vector<double>& W,
                                       const std::vector<double>& b, int rows, int in, int out,
                                       double slope, const std::vector<bool>& keep, double p) {
  std::vector<double> Y = linear_ref(X, W, b, rows, in, out, Activation::kLeakyRelu, slope);
  for (size_t i = 0; i < Y.size(); ++i) Y[i] = keep[i] ? Y[i] / (1.0 - p) : 0.0;
  return Y;
}

// With the mask fixed (the op's own, read back from which outputs are 0), the fused backward
// through dropout and LeakyReLU matches central finite differences of the double forward, for
// dX, dW and db; packed and with Y's rows strided (the mask follows the element (r, c), not
// the memory offset).
TEST(CpuDropout, BackwardMatchesFiniteDifferencesWithTheMaskFixed) {
  const int rows = 6, in = 7, out = 9;
  const float slope = 0.2f, p = 0.4f;
  auto backend = make_cpu_backend();
  int64_t step = 3;
  const Dropout dropout{p, 77, 5, &step};
  const auto X = test::random_vector(rows * in, 11),
             W = test::random_vector(out * in, 12, -0.5f, 0.5f), b = test::random_vector(out, 13),
             R = test::random_vector(rows * out, 14);
  for (const int ldy : {out, out + 4}) {
    std::vector<float> Y(static_cast<size_t>(rows) * ldy, 5.0f), dX(rows * in), dW(out * in),
        db(out);
    backend->linear_forward(X.data(), W.data(), b.data(), Y.data(), rows, in, out,
                            Activation::kLeakyRelu, slope, {0, ldy}, dropout);
    std::vector<bool> keep(static_cast<size_t>(rows) * out);
    std::vector<float> R_strided(Y.size(), 0.0f);
    int kept = 0;
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        keep[r * out + o] = Y[static_cast<size_t>(r) * ldy + o] != 0.0f;
        kept += keep[r * out + o];
        R_strided[static_cast<size_t>(r) * ldy + o] = R[r * out + o];
      }
    ASSERT_GT(kept, 0);
    ASSERT_LT(kept, rows * out);  // both kinds present
    const auto Xd = to_double(X), Wd = to_double(W), bd = to_double(b), Rd = to_double(R);
    std::vector<double> Yp(static_cast<size_t>(rows) * out);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) Yp[r * out + o] = Y[static_cast<size_t>(r) * ldy + o];
    expect_close(Yp, dropout_linear_ref(Xd, Wd, bd, rows, in, out, slope, keep, p), 1e-5, 1e-5,
                 "forward");
    backend->linear_backward(X.data(), W.data(), Y.data(), R_strided.data(), dX.data(), dW.data(),
                             db.data(), rows, in, out, Activation::kLeakyRelu, slope, false,
                             {0, ldy}, dropout);
    auto L = [&](const std::vector<double>& x, const std::vector<double>& w,
                 const std::vector<double>& bb) {
      return dot(Rd, dropout_linear_ref(x, w, bb, rows, in, out, slope, keep, p));
    };
    const std::string what = ldy == out ? " packed" : " strided";
    expect_close(to_double(dX),
                 finite_difference(Xd, [&](const std::vector<double>& x) { return L(x, Wd, bd); }),
                 kGradAtol, kGradRtol, "dX" + what);
    expect_close(to_double(dW),
                 finite_difference(Wd, [&](const std::vector<double>& w) { return L(Xd, w, bd); }),
                 kGradAtol, kGradRtol, "dW" + what);
    expect_close(
        to_double(db),
        finite_difference(bd, [&](const std::vector<double>& bb) { return L(Xd, Wd, bb); }),
        kGradAtol, kGradRtol, "db" + what);
  }
}

// Over 65536 elements the drop rate is p (0.3 +- 0.01, about 5 standard deviations); kept
// elements are exactly the undropped output times float(1 / (1 - p)); the backward pass drops
// the same elements (W = I, so dX = dZ exactly: 0 where Y is 0, act'(Y) / (1 - p) elsewhere);
// the mask follows the step counter's value when the op runs and the stream; p = 0 is bitwise
// no dropout; bad p and dropout after tanh are refused.
TEST(CpuDropout, RateScaleSameMaskInBackwardAndKeying) {
  const int n = 256;
  const float slope = 0.2f, p = 0.3f;
  auto backend = make_cpu_backend();
  const auto X = test::random_vector(static_cast<size_t>(n) * n, 21);
  std::vector<float> I(static_cast<size_t>(n) * n, 0.0f);
  for (int i = 0; i < n; ++i) I[static_cast<size_t>(i) * n + i] = 1.0f;
  const size_t total = static_cast<size_t>(n) * n;
  std::vector<float> Y0(total), Y(total), dX(total), ones(total, 1.0f);
  backend->linear_forward(X.data(), I.data(), nullptr, Y0.data(), n, n, n, Activation::kLeakyRelu,
                          slope);
  int64_t step = 5;
  Dropout dropout{p, 9, 3, &step};
  backend->linear_forward(X.data(), I.data(), nullptr, Y.data(), n, n, n, Activation::kLeakyRelu,
                          slope, {}, dropout);
  backend->linear_backward(X.data(), I.data(), Y.data(), ones.data(), dX.data(), nullptr, nullptr,
                           n, n, n, Activation::kLeakyRelu, slope, false, {}, dropout);
  const float scale = dropout_scale(p);
  size_t dropped = 0;
  for (size_t i = 0; i < total; ++i) {
    ASSERT_NE(Y0[i], 0.0f) << i;
    if (Y[i] == 0.0f) {
      ++dropped;
      ASSERT_EQ(dX[i], 0.0f) << "element " << i << " dropped forward, not backward";
    } else {
      ASSERT_EQ(Y[i], Y0[i] * scale) << i;
      ASSERT_EQ(dX[i], activation_grad(Y[i], scale, Activation::kLeakyRelu, slope))
          << "element " << i << " kept forward, not backward";
    }
  }
  EXPECT_NEAR(static_cast<double>(dropped) / total, p, 0.01);

  // Another step (read when the op runs) or stream: another mask.
  auto mask_changes = [&](const std::vector<float>& other) {
    size_t changed = 0;
    for (size_t i = 0; i < total; ++i) changed += (other[i] == 0.0f) != (Y[i] == 0.0f);
    return changed;
  };
  std::vector<float> Y2(total);
  step = 6;
  backend->linear_forward(X.data(), I.data(), nullptr, Y2.data(), n, n, n, Activation::kLeakyRelu,
                          slope, {}, dropout);
  EXPECT_GT(mask_changes(Y2), total / 4) << "the step counter does not key the mask";
  step = 5;
  dropout.stream = 4;
  backend->linear_forward(X.data(), I.data(), nullptr, Y2.data(), n, n, n, Activation::kLeakyRelu,
                          slope, {}, dropout);
  EXPECT_GT(mask_changes(Y2), total / 4) << "the stream does not key the mask";
  dropout.stream = 3;
  backend->linear_forward(X.data(), I.data(), nullptr, Y2.data(), n, n, n, Activation::kLeakyRelu,
                          slope, {}, dropout);
  EXPECT_EQ(mask_changes(Y2), 0u) << "the same key, another mask";

  dropout.p = 0.0f;
  backend->linear_forward(X.data(), I.data(), nullptr, Y2.data(), n, n, n, Activation::kLeakyRelu,
                          slope, {}, dropout);
  EXPECT_EQ(0, std::memcmp(Y2.data(), Y0.data(), total * sizeof(float)));

  for (const float bad : {1.0f, -0.1f, NAN}) {
    dropout.p = bad;
    EXPECT_THROW(backend->linear_forward(X.data(), I.data(), nullptr, Y2.data(), n, n, n,
                                         Activation::kLeakyRelu, slope, {}, dropout),
                 std::invalid_argument)
        << bad;
  }
  dropout.p = p;
  EXPECT_THROW(backend->linear_forward(X.data(), I.data(), nullptr, Y2.data(), n, n, n,
                                       Activation::kTanh, slope, {}, dropout),
               std::invalid_argument);
}

// o[i,k] = sum_{j != i} exp(-sum_c |M[i,k,c] - M[j,k,c]|) within each group, in double.
std::vector<double> mbd_ref(const std::vector<double>& M, int groups, int B, int K, int C) {
  std::vector<double> O(static_cast<size_t>(groups) * B * K, 0.0);
  for (int g = 0; g < groups; ++g)
    for (int i = 0; i < B; ++i)
      for (int k = 0; k < K; ++k)
        for (int j = 0; j < B; ++j) {
          if (j == i) continue;
          double l1 = 0;
          for (int c = 0; c < C; ++c)
            l1 += std::fabs(M[((g * B + i) * K + k) * C + c] - M[((g * B + j) * K + k) * C + c]);
          O[(g * B + i) * K + k] += std::exp(-l1);
        }
  return O;
}

TEST(CpuMbd, ForwardMatchesDoubleAndBackwardMatchesFiniteDifferences) {
  for (auto [groups, B, K, C] :
       {std::array<int, 4>{1, 1, 2, 3}, {1, 4, 3, 2}, {2, 5, 2, 5}, {1, 7, 1, 1}}) {
    SCOPED_TRACE("groups " + std::to_string(groups) + " B " + std::to_string(B));
    auto backend = make_cpu_backend();
    const size_t n = static_cast<size_t>(groups) * B * K * C;
    // Spread out so no two entries are within the FD step of each other (|.| has a kink).
    const auto M = test::random_vector(n, 11, -1.5f, 1.5f);
    const auto R = test::random_vector(static_cast<size_t>(groups) * B * K, 12);
    std::vector<float> O(static_cast<size_t>(groups) * B * K), dM(n);
    backend->mbd_forward(M.data(), O.data(), groups, B, K, C);
    expect_close(to_double(O), mbd_ref(to_double(M), groups, B, K, C), 1e-5, 1e-5, "mbd forward");
    backend->mbd_backward(M.data(), R.data(), dM.data(), groups, B, K, C);
    const auto Rd = to_double(R);
    expect_close(to_double(dM),
                 finite_difference(to_double(M),
                                   [&](const std::vector<double>& m) {
                                     return dot(Rd, mbd_ref(m, groups, B, K, C));
                                   }),
                 kGradAtol, kGradRtol, "mbd backward");
  }
}

double bce_ref(const std::vector<double>& x, double t) {
  double s = 0;
  for (double xi : x) {
    const double p = 1 / (1 + std::exp(-xi));
    s += -(t * std::log(p) + (1 - t) * std::log(1 - p));
  }
  return s / x.size();
}

TEST(CpuBce, LossGradientAndStats) {
  auto backend = make_cpu_backend();
  for (float target : {0.0f, 0.9f, 1.0f}) {
    const auto x = test::random_vector(13, 21, -4.0f, 4.0f);
    std::vector<float> dx(x.size());
    float stats[2] = {0, 0};
    backend->bce_with_logits(x.data(), x.size(), target, 1.0f, dx.data(), stats);
    const auto xd = to_double(x);
    EXPECT_NEAR(stats[0], bce_ref(xd, target), 1e-5);
    double mean_p = 0;
    for (double v : xd) mean_p += 1 / (1 + std::exp(-v)) / xd.size();
    EXPECT_NEAR(stats[1], mean_p, 1e-6);
    expect_close(
        to_double(dx),
        finite_difference(xd, [&](const std::vector<double>& v) { return bce_ref(v, target); }),
        1e-6, 1e-4, "bce grad");
  }
}

TEST(CpuBce, StableForHugeLogits) {
  auto backend = make_cpu_backend();
  const std::vector<float> x{100.0f, -100.0f, 88.0f, -88.0f, 1e4f, -1e4f};
  std::vector<float> dx(x.size());
  float stats[2] = {0, 0};
  backend->bce_with_logits(x.data(), x.size(), 1.0f, 1.0f, dx.data(), stats);
  // Losses: ~0, 100, ~0, 88, 0, 1e4 -> mean (100 + 88 + 1e4) / 6.
  EXPECT_NEAR(stats[0], (100.0 + 88.0 + 1e4) / 6, 1e-2);
  for (float g : dx) EXPECT_TRUE(std::isfinite(g));
  EXPECT_NEAR(dx[1], -1.0f / 6, 1e-6);
  EXPECT_NEAR(dx[0], 0.0f, 1e-6);
}

TEST(CpuActivation, TanhAndLeakyBackwardMatchFiniteDifferences) {
  auto backend = make_cpu_backend();
  const auto z = test::random_vector(31, 41, -2.0f, 2.0f), r = test::random_vector(31, 42);
  for (Activation act : {Activation::kLeakyRelu, Activation::kTanh}) {
    std::vector<float> y(z.size()), dz(z.size());
    for (size_t i = 0; i < z.size(); ++i)
      y[i] = act == Activation::kTanh ? std::tanh(z[i]) : (z[i] > 0 ? z[i] : 0.2f * z[i]);
    backend->activation_backward(y.data(), r.data(), dz.data(), z.size(), act, 0.2f);
    const auto rd = to_double(r);
    expect_close(to_double(dz),
                 finite_difference(to_double(z),
                                   [&](const std::vector<double>& v) {
                                     double s = 0;
                                     for (size_t i = 0; i < v.size(); ++i)
                                       s += rd[i] * (act == Activation::kTanh ? std::tanh(v[i])
                                                                              : leaky(v[i], 0.2));
                                     return s;
                                   }),
                 1e-6, 1e-5, "activation backward");
  }
}

TEST(CpuAdam, MatchesTorchFormulaOverSeveralSteps) {
  auto backend = make_cpu_backend();
  const size_t n = 10;
  auto p = test::random_vector(n, 51), g = test::random_vector(n, 52);
  std::vector<float> m(n, 0), v(n, 0);
  std::vector<double> pd = to_double(p), md(n, 0), vd(n, 0);
  const AdamHyper h{1e-2f, 0.5f, 0.999f, 1e-8f};
  int64_t count = 0;  // the op's t - 1, incremented by the op
  for (int64_t step = 0; step < 5; ++step) {
    backend->adam_step(p.data(), g.data(), m.data(), v.data(), n, h, &count);
    ASSERT_EQ(count, step + 1);
    const double t = step + 1;
    for (size_t i = 0; i < n; ++i) {
      md[i] = 0.5 * md[i] + 0.5 * g[i];
      vd[i] = 0.999 * vd[i] + 0.001 * g[i] * double(g[i]);
      const double mhat = md[i] / (1 - std::pow(0.5, t)), vhat = vd[i] / (1 - std::pow(0.999, t));
      pd[i] -= 1e-2 * mhat / (std::sqrt(vhat) + 1e-8);
    }
  }
  expect_close(to_double(p), pd, 1e-6, 1e-5, "adam params");
}

// --lr-decay linear's factor at known steps: update t = step + 1 of T uses 1 - (t - 1) / T.
TEST(CpuAdam, LinearDecayScaleAtKnownSteps) {
  AdamHyper h;
  EXPECT_EQ(adam_lr_scale(h, 0), 1.0);  // T = 0: constant
  EXPECT_EQ(adam_lr_scale(h, 123456), 1.0);
  h.lr_decay_updates = 8;
  EXPECT_EQ(adam_lr_scale(h, 0), 1.0);    // update 1: the full lr
  EXPECT_EQ(adam_lr_scale(h, 1), 0.875);  // update 2: 1 - 1/8
  EXPECT_EQ(adam_lr_scale(h, 4), 0.5);    // update 5
  EXPECT_EQ(adam_lr_scale(h, 7), 0.125);  // update 8 = T: lr / T, the last nonzero
  EXPECT_EQ(adam_lr_scale(h, 8), 0.0);    // past T: zero, never negative
  EXPECT_EQ(adam_lr_scale(h, 1000), 0.0);
}

// Adam with linear decay over T = 4 updates against the torch formula with lr_t = lr (1 - s/T)
// in double; update 5 (past T) moves no parameter (m and v still update); and the constant
// schedule's step is bitwise the same with the decay code in place (scale exactly 1).
TEST(CpuAdam, LinearDecayMatchesTheFormulaAndStopsAtT) {
  auto backend = make_cpu_backend();
  const size_t n = 10;
  const auto p0 = test::random_vector(n, 53), g = test::random_vector(n, 54);
  auto p = p0;
  std::vector<float> m(n, 0), v(n, 0);
  std::vector<double> pd = to_double(p), md(n, 0), vd(n, 0);
  AdamHyper h{1e-2f, 0.5f, 0.999f, 1e-8f};
  h.lr_decay_updates = 4;
  int64_t count = 0;
  for (int64_t step = 0; step < 4; ++step) {
    backend->adam_step(p.data(), g.data(), m.data(), v.data(), n, h, &count);
    const double t = step + 1, lr_t = 1e-2 * (1.0 - step / 4.0);
    for (size_t i = 0; i < n; ++i) {
      md[i] = 0.5 * md[i] + 0.5 * g[i];
      vd[i] = 0.999 * vd[i] + 0.001 * g[i] * double(g[i]);
      const double mhat = md[i] / (1 - std::pow(0.5, t)), vhat = vd[i] / (1 - std::pow(0.999, t));
      pd[i] -= lr_t * mhat / (std::sqrt(vhat) + 1e-8);
    }
  }
  expect_close(to_double(p), pd, 1e-6, 1e-5, "decayed adam params");
  const std::vector<float> at_t = p, m_at_t = m;
  backend->adam_step(p.data(), g.data(), m.data(), v.data(), n, h, &count);
  EXPECT_EQ(count, 5);
  EXPECT_EQ(0, std::memcmp(p.data(), at_t.data(), n * sizeof(float))) << "lr 0 past T";
  EXPECT_NE(0, std::memcmp(m.data(), m_at_t.data(), n * sizeof(float)));

  // Constant: one step with lr_decay_updates = 0 equals the hand-rounded update of formulas.h
  // with step_size = lr / (1 - b1) exactly.
  auto pc = p0;
  std::vector<float> mc(n, 0), vc(n, 0);
  int64_t c0 = 0;
  const AdamHyper constant{1e-2f, 0.5f, 0.999f, 1e-8f};
  backend->adam_step(pc.data(), g.data(), mc.data(), vc.data(), n, constant, &c0);
  const AdamCorrections want{static_cast<float>(static_cast<double>(1e-2f) / (1.0 - 0.5)),
                             static_cast<float>(std::sqrt(1.0 - static_cast<double>(0.999f)))};
  for (size_t i = 0; i < n; ++i) {
    float pi = p0[i], mi = 0, vi = 0;
    adam_update(g[i], pi, mi, vi, constant, want);
    EXPECT_EQ(pi, pc[i]) << i;
  }
}

// ema = d ema + (1 - d) p, d = min(decay, (1 + t) / (10 + t)): the warm-up's first values
// by hand, the cap, the skip flag and a bad decay.
TEST(CpuEma, WarmedUpDecayCapSkipAndBadDecay) {
  auto backend = make_cpu_backend();
  std::vector<float> ema{1.0f, -2.0f}, p{3.0f, 4.0f};
  int64_t t = 0;  // d = 1/10
  backend->ema_update(ema.data(), p.data(), 2, 0.999f, &t);
  EXPECT_FLOAT_EQ(ema[0], 0.1f * 1.0f + 0.9f * 3.0f);
  EXPECT_FLOAT_EQ(ema[1], 0.1f * -2.0f + 0.9f * 4.0f);
  t = 90;  // d = 91/100
  std::vector<float> e2{1.0f}, p2{0.0f};
  backend->ema_update(e2.data(), p2.data(), 1, 0.999f, &t);
  EXPECT_FLOAT_EQ(e2[0], 0.91f);
  t = 1000000;  // the warm-up (0.999991) is past the cap: d = decay
  e2 = {1.0f};
  backend->ema_update(e2.data(), p2.data(), 1, 0.5f, &t);
  EXPECT_EQ(e2[0], 0.5f);
  const float skip = 1.0f, go = 0.0f;
  backend->ema_update(e2.data(), p2.data(), 1, 0.5f, &t, &skip);
  EXPECT_EQ(e2[0], 0.5f) << "a skipped update moved the average";
  backend->ema_update(e2.data(), p2.data(), 1, 0.5f, &t, &go);
  EXPECT_EQ(e2[0], 0.25f);
  EXPECT_THROW(backend->ema_update(e2.data(), p2.data(), 1, 1.0f, &t), std::invalid_argument);
  EXPECT_THROW(backend->ema_update(e2.data(), p2.data(), 1, -0.1f, &t), std::invalid_argument);
}

TEST(CpuNoise, DeterministicPerStepAndStandardNormal) {
  auto backend = make_cpu_backend();
  const size_t n = 100003;  // not a multiple of 4: the tail group is used partially
  std::vector<float> a(n), b(n), c(n), d(7);
  int64_t step = 5;
  backend->gaussian_noise(a.data(), n, 42, 0, &step);
  backend->gaussian_noise(b.data(), n, 42, 0, &step);
  EXPECT_EQ(a, b);
  step = 6;
  backend->gaussian_noise(c.data(), n, 42, 0, &step);
  EXPECT_NE(a, c);
  backend->gaussian_noise(d.data(), 7, 42, 0, &step);  // a prefix is the same stream
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(d[i], c[i]);
  double mean = 0, var = 0;
  for (float x : a) mean += x / n;
  for (float x : a) var += (x - mean) * (x - mean) / n;
  EXPECT_NEAR(mean, 0.0, 0.02);  // 5 sigma of the mean's standard error 1/sqrt(n)
  EXPECT_NEAR(var, 1.0, 0.03);
}

TEST(CpuGather, ScalesAndFollowsThePermutationSlots) {
  auto backend = make_cpu_backend();
  const int n_images = 6, pixels = 3, rows = 2;
  std::vector<uint8_t> data(n_images * pixels);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 15);
  // slot 0 (epochs 0, 2, ...): reversed; slot 1: identity.
  std::vector<int32_t> perm{5, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 5};
  std::vector<float> out(rows * pixels);
  const int64_t batches_per_epoch = 3;
  int64_t step = 4;  // batch 4 = epoch 1 (slot 1), batch 1 within it: images 2, 3
  backend->gather_batch(data.data(), perm.data(), n_images, pixels, rows, &step, 1, 0,
                        batches_per_epoch, out.data());
  for (int r = 0; r < rows; ++r)
    for (int p = 0; p < pixels; ++p)
      EXPECT_FLOAT_EQ(out[r * pixels + p], data[(2 + r) * pixels + p] / 127.5f - 1.0f);
  step = 0;  // with 2 batches per step and offset 1: batch 1, slot 0 -> images 3, 2
  backend->gather_batch(data.data(), perm.data(), n_images, pixels, rows, &step, 2, 1,
                        batches_per_epoch, out.data());
  EXPECT_FLOAT_EQ(out[0], data[3 * pixels] / 127.5f - 1.0f);
  EXPECT_FLOAT_EQ(out[pixels], data[2 * pixels] / 127.5f - 1.0f);
  const std::vector<uint8_t> extremes{0, 255};
  std::vector<int32_t> p2{0, 1, 0, 1};
  std::vector<float> o2(2);
  step = 0;
  backend->gather_batch(extremes.data(), p2.data(), 2, 1, 2, &step, 1, 0, 1, o2.data());
  EXPECT_EQ(o2[0], -1.0f);
  EXPECT_EQ(o2[1], 1.0f);
}

// A corrupt permutation entry gives that row quiet NaN (0x7fc00000), as the kernel does
// (core/formulas.h gathered_pixel), and never reads outside the dataset.
TEST(CpuGather, AnImageIndexOutOfRangeGivesARowOfNaN) {
  auto backend = make_cpu_backend();
  const int n_images = 4, pixels = 5, rows = 4;
  std::vector<uint8_t> data(n_images * pixels);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 11);
  std::vector<int32_t> perm{-1, 2, n_images, 1, 0, 1, 2, 3};
  std::vector<float> out(rows * pixels, 0.0f);
  int64_t step = 0;
  backend->gather_batch(data.data(), perm.data(), n_images, pixels, rows, &step, 1, 0, 1,
                        out.data());
  for (int r = 0; r < rows; ++r) {
    for (int p = 0; p < pixels; ++p) {
      const float v = out[r * pixels + p];
      if (perm[r] < 0 || perm[r] >= n_images) {
        uint32_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        EXPECT_EQ(bits, 0x7fc00000u) << "row " << r << " pixel " << p;
      } else {
        EXPECT_EQ(v, data[perm[r] * pixels + p] / 127.5f - 1.0f) << "row " << r;
      }
    }
  }
}

TEST(CpuConcat, SplitInvertsConcat) {
  auto backend = make_cpu_backend();
  const auto A = test::random_vector(3 * 2, 61), B = test::random_vector(3 * 4, 62);
  std::vector<float> out(3 * 6), A2(6), B2(12);
  backend->concat_cols(A.data(), B.data(), out.data(), 3, 2, 4);
  EXPECT_EQ(out[6 + 1], A[2 + 1]);
  EXPECT_EQ(out[6 + 2], B[4]);
  backend->split_cols(out.data(), A2.data(), B2.data(), 3, 2, 4);
  EXPECT_EQ(A, A2);
  EXPECT_EQ(B, B2);
}

TEST(CpuLabels, GatherLabelsFollowsGatherBatch) {
  auto backend = make_cpu_backend();
  const int n_images = 6, rows = 2;
  const std::vector<uint8_t> labels{9, 8, 7, 6, 5, 4};
  // slot 0: reversed; slot 1: identity (as CpuGather above).
  std::vector<int32_t> perm{5, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 5};
  std::vector<int32_t> out(rows);
  int64_t step = 4;  // batch 4 = epoch 1 (slot 1), batch 1 within it: images 2, 3
  backend->gather_labels(labels.data(), perm.data(), n_images, rows, &step, 1, 0, 3, out.data());
  EXPECT_EQ(out, (std::vector<int32_t>{7, 6}));
  step = 0;  // 2 batches per step, offset 1: batch 1, slot 0 -> images 3, 2
  backend->gather_labels(labels.data(), perm.data(), n_images, rows, &step, 2, 1, 3, out.data());
  EXPECT_EQ(out, (std::vector<int32_t>{6, 7}));
  perm[3] = 99;  // a corrupt index reads nothing: -1
  backend->gather_labels(labels.data(), perm.data(), n_images, rows, &step, 2, 1, 3, out.data());
  EXPECT_EQ(out, (std::vector<int32_t>{6, -1}));
}

TEST(CpuLabels, RandomLabelsAreDeterministicUniformAndPhiloxKeyed) {
  auto backend = make_cpu_backend();
  const size_t n = 100000;
  std::vector<int32_t> a(n), b(n), c(n);
  int64_t step = 3;
  backend->random_labels(a.data(), n, 10, 42, kLabelStreamBase, &step);
  backend->random_labels(b.data(), n, 10, 42, kLabelStreamBase, &step);
  EXPECT_EQ(a, b);
  step = 4;
  backend->random_labels(c.data(), n, 10, 42, kLabelStreamBase, &step);
  EXPECT_NE(a, c);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(a[i], philox_label(42, kLabelStreamBase, i, 3, 10));
  // Uniform: every count within 5 standard deviations of n/10 (sd = sqrt(n 0.1 0.9) = 95).
  std::vector<int> counts(10, 0);
  for (int32_t label : a) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++counts[label];
  }
  for (int k = 0; k < 10; ++k) EXPECT_NEAR(counts[k], 10000, 5 * 95) << "class " << k;
  EXPECT_THROW(backend->random_labels(a.data(), 1, 0, 42, 0, nullptr), std::invalid_argument);
}

TEST(CpuLabels, OneHotRowsAndNanForBadLabels) {
  auto backend = make_cpu_backend();
  const std::vector<int32_t> labels{2, 0, -1, 3};
  std::vector<float> out(4 * 3);
  backend->one_hot(labels.data(), out.data(), 4, 3);
  const std::vector<float> want{0, 0, 1, 1, 0, 0};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out[i], want[i]) << i;
  for (size_t i = 6; i < 12; ++i) EXPECT_TRUE(std::isnan(out[i])) << i;  // -1 and 3: out of range
}

TEST(CpuMisc, IncrementAndNonfiniteCount) {
  auto backend = make_cpu_backend();
  int64_t counter = 41;
  backend->increment(&counter);
  EXPECT_EQ(counter, 42);
  const std::vector<float> x{1.0f, NAN, INFINITY, -INFINITY, 0.0f};
  float count = 1;
  backend->count_nonfinite(x.data(), x.size(), &count);
  EXPECT_EQ(count, 4.0f);
}

TEST(Philox, KnownAnswerFromTheRandom123Paper) {
  // Random123's kat_vectors: philox4x32-10, counter = 0, key = 0.
  const Philox4 r = philox4x32_10(Philox4{{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

}  // namespace
}  // namespace mnistgan
