// test_fused_kernels.cpp: the fused kernels of the training step called through their
// launchers (kernels/*.cuh) with several same-shaped models at once (blockIdx.z / y = model),
// as a sweep of GANs trained in lock-step would call them. The CPU reference for N models is N
// independent calls of the CPU backend's op on each model's slice. Fresh random inputs, outputs
// poisoned with NaN before each call (an element the kernel forgets fails), shapes that are no
// multiple of any tile, the linear kernel's split-K forced off, chosen from the SM count, and
// forced on. Built into the emulated test binaries only (it calls the launchers directly).
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::sqrt, std::tanh, NAN
#include <cstdint>
#include <cstring>  // std::memcmp
#include <string>
#include <vector>

#include "adam.cuh"
#include "elementwise.cuh"  // count_nonfinite, increment
#include "gather.cuh"
#include "cublas_v2.h"  // the emulated cuBLAS, for the dev variant
#include "core/backend.h"    // make_cpu_backend: the reference
#include "core/op_checks.h"  // op_tolerance, check_close, max_abs
#include "cuda_check.cuh"    // CUDA_CHECK
#include "cuda_runtime.h"    // the emulated runtime
#include "linear_dev.cuh"      // (kernels/dev) linear_backward_cublas: the benchmark's comparator
#include "linear.cuh"
#include "logit_bce.cuh"
#include "mbd.cuh"
#include "noise.cuh"
#include "one_hot.cuh"
#include "random_labels.cuh"
#include "skip_guard.cuh"
#include "test_util.h"  // random_vector

namespace mnistgan {
namespace {

using test::random_vector;

// Device copy of a host vector, freed at scope exit; launches run on the legacy stream and
// every read back synchronises the device first.
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Dev() { (void)cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  std::vector<T> host() const {
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

void expect_op(Op op, const std::vector<float>& got, const std::vector<float>& want,
               const std::string& what, int64_t reduction = 1) {
  const std::string why =
      check_close(got, want, op_tolerance(op, reduction, max_abs(want)), what, nullptr);
  if (!why.empty()) ADD_FAILURE() << why;
}

// Elements [at, at + n) of v.
std::vector<float> slice(const std::vector<float>& v, size_t at, size_t n) {
  return std::vector<float>(v.begin() + at, v.begin() + at + n);
}

// The split-K workspace of linear.cuh on the device, with its counters checked to be zero
// again after every launch.
struct Workspace {
  Dev<float> partials{std::vector<float>(size_t{1} << 20, NAN)};
  Dev<unsigned> counters{std::vector<unsigned>(4096, 0u)};
  LinearWorkspace ws(int split_override) const {
    LinearWorkspace w;
    w.partials = partials.p;
    w.partial_floats = partials.n;
    w.counters = counters.p;
    w.counter_count = counters.n;
    w.sm_count = 132;
    w.split_k_override = split_override;
    return w;
  }
  void expect_counters_zero(const std::string& what) const {
    for (unsigned c : counters.host()) ASSERT_EQ(c, 0u) << what << ": a tile ticket left set";
  }
};

const char* act_name(Activation a) {
  return a == Activation::kNone ? "none" : a == Activation::kLeakyRelu ? "leaky" : "tanh";
}

struct LinearShape {
  int rows, in, out;
};
// Odd sizes; the last two have K long enough for the SM-count split (4+ K-tiles per slice).
const LinearShape kLinearShapes[] = {{1, 5, 3}, {37, 19, 11}, {70, 130, 67}, {66, 300, 70}};
const int kSplits[] = {1, 0, 3};  // off, from the SM count, forced 3 ways

std::string split_name(int split) {
  return split == 1 ? "unsplit" : split == 0 ? "split by SM count" : "split 3";
}

TEST(FusedLinearCuda, ForwardMatchesCpuForOneAndTwoModels) {
  auto cpu = make_cpu_backend();
  const Workspace work;
  uint32_t seed = 1;
  for (const LinearShape& s : kLinearShapes)
    for (const int models : {1, 2})
      for (const int split : kSplits)
        for (const Activation act : {Activation::kNone, Activation::kLeakyRelu, Activation::kTanh})
          for (const bool strided : {false, true}) {
            const int ldx = strided ? s.in + 3 : s.in, ldy = strided ? s.out + 2 : s.out;
            const size_t nx = static_cast<size_t>(s.rows) * ldx,
                         nw = static_cast<size_t>(s.out) * s.in,
                         ny = static_cast<size_t>(s.rows) * ldy;
            const float ws = 1.0f / std::sqrt(static_cast<float>(s.in));
            const auto x = random_vector(nx * models, seed++);
            const auto w = random_vector(nw * models, seed++, -ws, ws);
            const auto b = random_vector(static_cast<size_t>(s.out) * models, seed++, -ws, ws);
            std::vector<float> y_start(ny * models, 5.0f);  // padding keeps 5
            for (int m = 0; m < models; ++m)
              for (int r = 0; r < s.rows; ++r)
                for (int c = 0; c < s.out; ++c) y_start[m * ny + r * ldy + c] = NAN;
            Dev<float> dx(x), dw(w), db(b), dy(y_start);
            ModelStrides ms;
            ms.x = static_cast<long long>(nx), ms.w = static_cast<long long>(nw), ms.b = s.out,
            ms.y = static_cast<long long>(ny);
            linear_forward(work.ws(split), dx.p, dw.p, db.p, dy.p, s.rows, s.in, s.out, act, 0.2f,
                           {strided ? ldx : 0, strided ? ldy : 0}, models, ms, nullptr);
            const std::vector<float> got = dy.host();
            const std::string what = "forward rows=" + std::to_string(s.rows) +
                                     " in=" + std::to_string(s.in) +
                                     " out=" + std::to_string(s.out) + " " + act_name(act) +
                                     " models=" + std::to_string(models) + " " +
                                     split_name(split) + (strided ? " strided" : "");
            for (int m = 0; m < models; ++m) {
              std::vector<float> want = slice(y_start, m * ny, ny);
              cpu->linear_forward(&x[m * nx], &w[m * nw], &b[static_cast<size_t>(m) * s.out],
                                  want.data(), s.rows, s.in, s.out, act, 0.2f,
                                  {strided ? ldx : 0, strided ? ldy : 0});
              expect_op(Op::kLinearForward, slice(got, m * ny, ny), want,
                        what + " model " + std::to_string(m), s.in);
            }
            work.expect_counters_zero(what);
          }
}

TEST(FusedLinearCuda, BackwardMatchesCpuForOneAndTwoModels) {
  auto cpu = make_cpu_backend();
  const Workspace work;
  uint32_t seed = 100;
  for (const LinearShape& s : kLinearShapes)
    for (const int models : {1, 2})
      for (const int split : kSplits)
        for (const Activation act : {Activation::kNone, Activation::kLeakyRelu, Activation::kTanh})
          for (const bool accumulate : {false, true}) {
            const bool strided = accumulate;  // both paths of each, without doubling the cases
            const int ldx = strided ? s.in + 3 : s.in, ldy = strided ? s.out + 2 : s.out;
            const size_t nx = static_cast<size_t>(s.rows) * ldx,
                         nw = static_cast<size_t>(s.out) * s.in,
                         ny = static_cast<size_t>(s.rows) * ldy;
            const float ws = 1.0f / std::sqrt(static_cast<float>(s.in));
            const float zs = 1.0f / std::sqrt(static_cast<float>(std::max(s.rows, s.out)));
            const auto x = random_vector(nx * models, seed++);
            const auto w = random_vector(nw * models, seed++, -ws, ws);
            const auto y = random_vector(ny * models, seed++, -0.9f, 0.9f);
            const auto g = random_vector(ny * models, seed++, -zs, zs);
            std::vector<float> dx_start = random_vector(nx * models, seed++);
            if (!accumulate)
              for (int m = 0; m < models; ++m)
                for (int r = 0; r < s.rows; ++r)
                  for (int c = 0; c < s.in; ++c) dx_start[m * nx + r * ldx + c] = NAN;
            const std::vector<float> nan_w(nw * models, NAN), nan_b(s.out * models, NAN);
            Dev<float> d_x(x), d_w(w), d_y(y), d_g(g), d_dx(dx_start), d_dw(nan_w), d_db(nan_b);
            ModelStrides ms;
            ms.x = ms.dx = static_cast<long long>(nx), ms.w = ms.dw = static_cast<long long>(nw),
            ms.y = ms.dy = static_cast<long long>(ny), ms.db = s.out;
            const RowStrides ld{strided ? ldx : 0, strided ? ldy : 0};
            linear_backward(work.ws(split), d_x.p, d_w.p, d_y.p, d_g.p, d_dx.p, d_dw.p, d_db.p,
                            s.rows, s.in, s.out, act, 0.2f, accumulate, ld, models, ms, nullptr);
            const std::vector<float> got_dx = d_dx.host(), got_dw = d_dw.host(),
                                     got_db = d_db.host();
            const std::string what = "backward rows=" + std::to_string(s.rows) +
                                     " in=" + std::to_string(s.in) +
                                     " out=" + std::to_string(s.out) + " " + act_name(act) +
                                     " models=" + std::to_string(models) + " " +
                                     split_name(split) + (accumulate ? " accumulate strided" : "");
            for (int m = 0; m < models; ++m) {
              std::vector<float> want_dx = slice(dx_start, m * nx, nx), want_dw(nw),
                                 want_db(s.out);
              cpu->linear_backward(&x[m * nx], &w[m * nw], &y[m * ny], &g[m * ny], want_dx.data(),
                                   want_dw.data(), want_db.data(), s.rows, s.in, s.out, act, 0.2f,
                                   accumulate, ld);
              const std::string model = what + " model " + std::to_string(m);
              expect_op(Op::kLinearBackward, slice(got_dx, m * nx, nx), want_dx, "dX " + model,
                        s.out);
              expect_op(Op::kLinearBackward, slice(got_dw, m * nw, nw), want_dw, "dW " + model,
                        s.rows);
              expect_op(Op::kLinearBackward, slice(got_db, static_cast<size_t>(m) * s.out, s.out),
                        want_db, "db " + model, s.rows);
            }
            work.expect_counters_zero(what);
          }
}

// The split-K reduction adds the slices in a fixed order, whichever block arrives last (the
// emulator runs blocks in a new random order every launch): two runs give the same bits.
TEST(FusedLinearCuda, SplitKRepeatsBitwise) {
  const Workspace work;
  const int rows = 66, in = 300, out = 70;
  const auto x = random_vector(static_cast<size_t>(rows) * in, 7);
  const auto w = random_vector(static_cast<size_t>(out) * in, 8, -0.06f, 0.06f);
  const auto g = random_vector(static_cast<size_t>(rows) * out, 9, -0.1f, 0.1f);
  Dev<float> d_x(x), d_w(w), d_g(g);
  std::vector<float> first_y, first_dw;
  for (int run = 0; run < 2; ++run) {
    Dev<float> y(std::vector<float>(static_cast<size_t>(rows) * out, NAN));
    Dev<float> dw(std::vector<float>(static_cast<size_t>(out) * in, NAN));
    Dev<float> db(std::vector<float>(out, NAN));
    linear_forward(work.ws(5), d_x.p, d_w.p, nullptr, y.p, rows, in, out, Activation::kNone, 0.0f,
                   {}, 1, {}, nullptr);
    linear_backward(work.ws(5), d_x.p, d_w.p, nullptr, d_g.p, nullptr, dw.p, db.p, rows, in, out,
                    Activation::kNone, 0.0f, false, {}, 1, {}, nullptr);
    if (run == 0) {
      first_y = y.host();
      first_dw = dw.host();
    } else {
      test::expect_bitwise_equal(y.host(), first_y, "split-K forward, run 2 vs 1");
      test::expect_bitwise_equal(dw.host(), first_dw, "split-K dW, run 2 vs 1");
    }
  }
}

// The kernel's sums exactly: each slice an fmaf chain over its K range in order, then the
// slices added in index order 0, 1, 2 (linear.cuh). The emulation's fmaf is the exact fused
// multiply-add, so the host reproduces every bit.
TEST(FusedLinearCuda, SplitKSumsTheSlicesInIndexOrder) {
  const Workspace work;
  const int rows = 5, in = 200, out = 7;
  const auto x = random_vector(static_cast<size_t>(rows) * in, 17);
  const auto w = random_vector(static_cast<size_t>(out) * in, 18);
  Dev<float> d_x(x), d_w(w);
  for (const int split : {1, 3}) {
    Dev<float> y(std::vector<float>(static_cast<size_t>(rows) * out, NAN));
    linear_forward(work.ws(split), d_x.p, d_w.p, nullptr, y.p, rows, in, out, Activation::kNone,
                   0.0f, {}, 1, {}, nullptr);
    const int k_tiles = (in + kLinearBK - 1) / kLinearBK;
    const int per_slice = (k_tiles + split - 1) / split * kLinearBK;
    std::vector<float> want(static_cast<size_t>(rows) * out);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        float total = 0.0f;
        for (int k0 = 0; k0 < in; k0 += per_slice) {
          float part = 0.0f;
          for (int k = k0; k < std::min(in, k0 + per_slice); ++k)
            part = std::fmaf(x[r * in + k], w[o * in + k], part);
          total = split == 1 ? part : total + part;
        }
        want[r * out + o] = total;
      }
    test::expect_bitwise_equal(y.host(), want, "split " + std::to_string(split));
  }
}

TEST(FusedLinearCuda, SplitChoiceFillsTheSmsWithinTheBounds) {
  LinearWorkspace ws;
  ws.sm_count = 132;
  EXPECT_EQ(linear_split_k(ws, 16, 16, 1024), 9);  // 132 / 16 rounded up
  EXPECT_EQ(linear_split_k(ws, 1, 1, 1024), kLinearMaxSplitK);
  EXPECT_EQ(linear_split_k(ws, 4, 4, 100), 1);      // 7 K-tiles: too short to split
  EXPECT_EQ(linear_split_k(ws, 200, 200, 4096), 1);  // the tiles alone fill the SMs
  ws.split_k_override = 3;
  EXPECT_EQ(linear_split_k(ws, 200, 200, 4096), 3);
  EXPECT_EQ(linear_split_k(ws, 200, 200, 20), 2);  // no more slices than K-tiles
  ws.split_k_override = 1;
  EXPECT_EQ(linear_split_k(ws, 1, 1, 4096), 1);
}

// The fused backward against central finite differences of a double-precision forward:
//   L = sum_{r,o} R[r,o] act(X W^T + b)[r,o]; dY = R, Y the float forward's output.
TEST(FusedLinearCuda, BackwardMatchesFiniteDifferences) {
  const Workspace work;
  const int rows = 37, in = 19, out = 11, models = 2;
  for (const Activation act : {Activation::kLeakyRelu, Activation::kTanh}) {
    const size_t nx = rows * in, nw = out * in, ny = rows * out;
    const auto x = random_vector(nx * models, 31);
    const auto w = random_vector(nw * models, 32, -0.3f, 0.3f);
    const auto b = random_vector(out * models, 33, -0.3f, 0.3f);
    const auto r = random_vector(ny * models, 34);
    Dev<float> d_x(x), d_w(w), d_b(b), d_r(r);
    Dev<float> d_y(std::vector<float>(ny * models, NAN)), d_dx(std::vector<float>(nx * models, NAN));
    Dev<float> d_dw(std::vector<float>(nw * models, NAN)), d_db(std::vector<float>(out * models, NAN));
    ModelStrides ms;
    ms.x = ms.dx = nx, ms.w = ms.dw = nw, ms.b = ms.db = out, ms.y = ms.dy = ny;
    linear_forward(work.ws(3), d_x.p, d_w.p, d_b.p, d_y.p, rows, in, out, act, 0.2f, {}, models,
                   ms, nullptr);
    linear_backward(work.ws(3), d_x.p, d_w.p, d_y.p, d_r.p, d_dx.p, d_dw.p, d_db.p, rows, in, out,
                    act, 0.2f, false, {}, models, ms, nullptr);
    const std::vector<float> dX = d_dx.host(), dW = d_dw.host(), db = d_db.host();
    for (int m = 0; m < models; ++m) {
      std::vector<double> X(x.begin() + m * nx, x.begin() + (m + 1) * nx),
          W(w.begin() + m * nw, w.begin() + (m + 1) * nw),
          B(b.begin() + m * out, b.begin() + (m + 1) * out);
      auto loss = [&]() {
        double l = 0;
        for (int i = 0; i < rows; ++i)
          for (int o = 0; o < out; ++o) {
            double z = B[o];
            for (int k = 0; k < in; ++k) z += X[i * in + k] * W[o * in + k];
            const double a = act == Activation::kTanh ? std::tanh(z) : (z > 0 ? z : 0.2 * z);
            l += r[m * ny + i * out + o] * a;
          }
        return l;
      };
      auto check = [&](std::vector<double>& v, const std::vector<float>& grad, size_t at,
                       const char* name) {
        const double h = 1e-4;
        for (size_t i = 0; i < v.size(); ++i) {
          const double keep = v[i];
          v[i] = keep + h;
          const double up = loss();
          v[i] = keep - h;
          const double down = loss();
          v[i] = keep;
          const double fd = (up - down) / (2 * h);
          ASSERT_NEAR(grad[at + i], fd, 2e-3 + 2e-3 * std::fabs(fd))
              << name << "[" << i << "] model " << m << " " << act_name(act);
        }
      };
      check(X, dX, m * nx, "dX");
      check(W, dW, m * nw, "dW");
      check(B, db, m * out, "db");
    }
  }
}

TEST(LogitBceCuda, MatchesCpuForOneAndTwoModels) {
  auto cpu = make_cpu_backend();
  uint32_t seed = 300;
  for (const OpShape& shape : op_check(Op::kLogitBce).shapes)
    for (const int models : {1, 2})
      for (const bool param_grads : {true, false}) {
        const struct {
          int groups, B, in;
        } c{shape.groups, shape.rows, shape.in};
        const int rows = c.groups * c.B;
        const size_t nx = static_cast<size_t>(rows) * c.in;
        const auto x = random_vector(nx * models, seed++, -2.0f, 2.0f);
        const auto w = random_vector(static_cast<size_t>(c.in) * models, seed++, -0.5f, 0.5f);
        const auto b = random_vector(models, seed++);
        const auto stats0 = random_vector(2 * c.groups * models, seed++);
        const float targets[2] = {0.9f, 0.0f};
        Dev<float> d_x(x), d_w(w), d_b(b), d_stats(stats0);
        Dev<float> d_logits(std::vector<float>(rows * models, NAN));
        Dev<float> d_dlogits(std::vector<float>(rows * models, NAN));
        Dev<float> d_dx(std::vector<float>(nx * models, NAN));
        Dev<float> d_dw(std::vector<float>(c.in * models, NAN)), d_db(std::vector<float>(models, NAN));
        LogitBceModelStrides ms;
        ms.x = ms.dx = nx, ms.w = ms.dw = c.in, ms.b = ms.db = 1, ms.logits = ms.dlogits = rows;
        ms.stats = 2 * c.groups;
        logit_bce(d_x.p, d_w.p, d_b.p, c.groups, c.B, c.in, targets, 1.0f, d_logits.p,
                  d_dlogits.p, d_dx.p, param_grads ? d_dw.p : nullptr,
                  param_grads ? d_db.p : nullptr, d_stats.p, models, ms, nullptr);
        const auto logits = d_logits.host(), dlogits = d_dlogits.host(), dx = d_dx.host(),
                   dw = d_dw.host(), db = d_db.host(), stats = d_stats.host();
        const std::string what = "groups=" + std::to_string(c.groups) + " B=" +
                                 std::to_string(c.B) + " in=" + std::to_string(c.in) +
                                 " models=" + std::to_string(models) +
                                 (param_grads ? " with dw" : " no dw");
        for (int m = 0; m < models; ++m) {
          std::vector<float> want_logits(rows), want_dlogits(rows), want_dx(nx), want_dw(c.in),
              want_db(1), want_stats = slice(stats0, 2 * c.groups * m, 2 * c.groups);
          cpu->logit_bce(&x[m * nx], &w[m * c.in], &b[m], c.groups, c.B, c.in, targets, 1.0f,
                         want_logits.data(), want_dlogits.data(), want_dx.data(),
                         param_grads ? want_dw.data() : nullptr,
                         param_grads ? want_db.data() : nullptr, want_stats.data());
          const std::string model = what + " model " + std::to_string(m);
          const Op op = Op::kLogitBce;
          expect_op(op, slice(logits, m * rows, rows), want_logits, "logits " + model, c.in);
          expect_op(op, slice(dlogits, m * rows, rows), want_dlogits, "dlogits " + model);
          expect_op(op, slice(stats, 2 * c.groups * m, 2 * c.groups), want_stats,
                    "stats " + model);
          expect_op(op, slice(dx, m * nx, nx), want_dx, "dX " + model, 1);
          if (param_grads) {
            expect_op(op, slice(dw, m * c.in, c.in), want_dw, "dw " + model, rows);
            expect_op(op, slice(db, m, 1), want_db, "db " + model, rows);
          }
        }
      }
}

// Minibatch discrimination with O and dO at a row stride (inside [h | o]) and two models.
TEST(MbdModelsCuda, StridedAndTwoModelsMatchCpu) {
  auto cpu = make_cpu_backend();
  const int groups = 2, B = 13, K = 37, C = 5, ldo = K + 4;
  for (const int models : {1, 2}) {
    const size_t nm = static_cast<size_t>(groups) * B * K * C,
                 no = static_cast<size_t>(groups) * B * ldo;
    const auto M = random_vector(nm * models, 41, -1.0f, 1.0f);
    const auto dO = random_vector(no * models, 42);
    std::vector<float> o_start(no * models, 3.0f);  // the columns outside o keep 3
    for (int m = 0; m < models; ++m)
      for (int r = 0; r < groups * B; ++r)
        for (int k = 0; k < K; ++k) o_start[m * no + r * ldo + k] = NAN;
    Dev<float> d_m(M), d_do(dO), d_o(o_start), d_dm(std::vector<float>(nm * models, NAN));
    const MbdModelStrides ms{static_cast<long long>(nm), static_cast<long long>(no),
                             static_cast<long long>(nm)};
    mbd_forward(d_m.p, d_o.p, groups, B, K, C, ldo, models, ms, nullptr);
    mbd_backward(d_m.p, d_do.p, d_dm.p, groups, B, K, C, ldo, models, ms, nullptr);
    const auto o = d_o.host(), dm = d_dm.host();
    for (int m = 0; m < models; ++m) {
      std::vector<float> want_o = slice(o_start, m * no, no), want_dm(nm);
      cpu->mbd_forward(&M[m * nm], want_o.data(), groups, B, K, C, ldo);
      cpu->mbd_backward(&M[m * nm], &dO[m * no], want_dm.data(), groups, B, K, C, ldo);
      const std::string what = "models=" + std::to_string(models) + " model " + std::to_string(m);
      expect_op(Op::kMbdForward, slice(o, m * no, no), want_o, "O " + what, B);
      expect_op(Op::kMbdBackward, slice(dm, m * nm, nm), want_dm, "dM " + what, B);
    }
  }
}

// Minibatch discrimination over several shared row tiles (C = 5: 51 rows per tile), so the
// barrier between reading one tile and loading the next matters; small enough for TSan.
TEST(MbdModelsCuda, SeveralRowTilesMatchCpu) {
  auto cpu = make_cpu_backend();
  const int groups = 1, B = 2 * 51 + 7, K = 32, C = 5;
  const size_t nm = static_cast<size_t>(B) * K * C, no = static_cast<size_t>(B) * K;
  const auto M = random_vector(nm, 43, -1.0f, 1.0f);
  const auto dO = random_vector(no, 44);
  Dev<float> d_m(M), d_do(dO), d_o(std::vector<float>(no, NAN)),
      d_dm(std::vector<float>(nm, NAN));
  const MbdModelStrides ms{static_cast<long long>(nm), static_cast<long long>(no),
                           static_cast<long long>(nm)};
  mbd_forward(d_m.p, d_o.p, groups, B, K, C, 0, 1, ms, nullptr);
  mbd_backward(d_m.p, d_do.p, d_dm.p, groups, B, K, C, 0, 1, ms, nullptr);
  std::vector<float> want_o(no), want_dm(nm);
  cpu->mbd_forward(M.data(), want_o.data(), groups, B, K, C);
  cpu->mbd_backward(M.data(), dO.data(), want_dm.data(), groups, B, K, C);
  expect_op(Op::kMbdForward, d_o.host(), want_o, "O", B);
  expect_op(Op::kMbdBackward, d_dm.host(), want_dm, "dM", B);
}

// Adam with its step count and the EMA folded in, two models, the second skipped by its flag:
// bitwise equal to the CPU's adam_step per model, several steps.
TEST(AdamFusedCuda, TwoModelsWithEmaAndSkipBitwiseEqualCpu) {
  auto cpu = make_cpu_backend();
  const size_t n = 100003;  // several blocks per model, not a multiple of the block
  const int models = 2;
  AdamHyper h;
  h.lr = 1e-3f;
  auto p = random_vector(n * models, 51), e = random_vector(n * models, 52);
  std::vector<float> mom(n * models, 0.0f), var(n * models, 0.0f);
  std::vector<int64_t> steps = {4, 9};
  const std::vector<float> skip = {0.0f, 0.0f, 1.0f, 0.0f};  // stride 2: model 1 reads 1
  Dev<float> d_p(p), d_e(e), d_m(mom), d_v(var), d_skip(skip);
  Dev<int64_t> d_step(steps);
  Dev<unsigned> tickets(std::vector<unsigned>(models, 0u));
  AdamModelStrides skip_stride_two = packed_adam_strides(n);
  skip_stride_two.skip = 2;
  for (int t = 0; t < 3; ++t) {
    const auto g = random_vector(n * models, 60 + t, -0.1f, 0.1f);
    Dev<float> d_g(g);
    adam_step(d_p.p, d_g.p, d_m.p, d_v.p, n, h, d_step.p, tickets.p, nullptr, d_skip.p, d_e.p,
              0.999f, models, skip_stride_two);
    for (int m = 0; m < models; ++m)
      cpu->adam_step(&p[m * n], &g[m * n], &mom[m * n], &var[m * n], n, h, &steps[m], &skip[2 * m],
                     &e[m * n], 0.999f);
    test::expect_bitwise_equal(d_p.host(), p, "params after step " + std::to_string(t));
    test::expect_bitwise_equal(d_e.host(), e, "ema after step " + std::to_string(t));
    test::expect_bitwise_equal(d_v.host(), var, "v after step " + std::to_string(t));
    EXPECT_EQ(d_step.host(), steps);
    for (unsigned c : tickets.host()) EXPECT_EQ(c, 0u);
  }
  EXPECT_EQ(steps[0], 7);  // counted
  EXPECT_EQ(steps[1], 9);  // skipped
}

// --lr-decay linear in the kernel: two models at different positions of one T = 10 schedule
// (each reads its own step[z]: model 0 from update 5, model 1 from update 9, so it crosses T
// and its last update has lr 0), bitwise equal to the CPU's adam_step per model.
TEST(AdamFusedCuda, LinearDecayPerModelStepBitwiseEqualsCpu) {
  auto cpu = make_cpu_backend();
  const size_t n = 4099;  // two blocks' worth of the grid stride and a ragged tail
  const int models = 2;
  AdamHyper h;
  h.lr = 1e-2f;
  h.lr_decay_updates = 10;
  auto p = random_vector(n * models, 71);
  std::vector<float> mom(n * models, 0.0f), var(n * models, 0.0f);
  std::vector<int64_t> steps = {4, 8};
  Dev<float> d_p(p), d_m(mom), d_v(var);
  Dev<int64_t> d_step(steps);
  Dev<unsigned> tickets(std::vector<unsigned>(models, 0u));
  for (int t = 0; t < 3; ++t) {
    const auto g = random_vector(n * models, 80 + t, -0.1f, 0.1f);
    Dev<float> d_g(g);
    const auto before = d_p.host();
    adam_step(d_p.p, d_g.p, d_m.p, d_v.p, n, h, d_step.p, tickets.p, nullptr, nullptr, nullptr,
              0.0f, models, packed_adam_strides(n));
    for (int m = 0; m < models; ++m)
      cpu->adam_step(&p[m * n], &g[m * n], &mom[m * n], &var[m * n], n, h, &steps[m]);
    test::expect_bitwise_equal(d_p.host(), p, "params after step " + std::to_string(t));
    test::expect_bitwise_equal(d_m.host(), mom, "m after step " + std::to_string(t));
    EXPECT_EQ(d_step.host(), steps);
    if (t == 2) {  // model 1's update 11 > T: lr 0, its parameters stay
      EXPECT_EQ(0, std::memcmp(before.data() + n, p.data() + n, n * sizeof(float)));
    }
  }
  EXPECT_EQ(steps[0], 7);
  EXPECT_EQ(steps[1], 11);
}

// kernels/dev's forward variants (v1 cuBLAS + epilogue, v2 tiled SIMT, v2 TF32 WMMA) against
// the CPU at the op table's shapes (those small enough to emulate), on 16-byte aligned and on
// unaligned pointers (the float4 paths must fall back), and v2 against v1.
TEST(DevLinearCuda, ForwardVariantsMatchCpu) {
  auto cpu = make_cpu_backend();
  LinearContext ctx;
  ASSERT_EQ(cublasCreate(&ctx.cublas), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(ctx.cublas, nullptr), CUBLAS_STATUS_SUCCESS);
  ctx.sm_count = 132;  // both v2 tile sizes run at the table's shapes
  ctx.cc_major = 9;
  uint32_t seed = 600;
  for (const OpShape& shape : op_check(Op::kLinearForward).shapes) {
    const int rows = shape.rows, in = shape.in, out = shape.out;
    if (static_cast<double>(rows) * in * out > 1e8) continue;  // emulation time
    for (const int offset : {0, 1}) {
      const float scale = 1.0f / std::sqrt(static_cast<float>(in));
      const size_t nx = static_cast<size_t>(rows) * in + offset,
                   nw = static_cast<size_t>(out) * in + offset,
                   ny = static_cast<size_t>(rows) * out + offset;
      const auto x = random_vector(nx, seed++), w = random_vector(nw, seed++, -scale, scale);
      const auto b = random_vector(out, seed++, -scale, scale);
      std::vector<float> want(ny, NAN);
      cpu->linear_forward(x.data() + offset, w.data() + offset, b.data(), want.data() + offset,
                          rows, in, out, Activation::kTanh, 0.2f);
      Dev<float> d_x(x), d_w(w), d_b(b);
      std::vector<float> v1;
      for (const int version : {1, 2})
        for (const bool tf32 : {false, true}) {
          ctx.tf32 = tf32;
          Dev<float> d_y(std::vector<float>(ny, NAN));
          linear_forward_dev(version, ctx, d_x.p + offset, d_w.p + offset, d_b.p, d_y.p + offset,
                             rows, in, out, Activation::kTanh, 0.2f, nullptr);
          std::vector<float> got = d_y.host();
          const std::string what = "v" + std::to_string(version) + (tf32 ? " tf32" : "") +
                                   " rows=" + std::to_string(rows) + " in=" +
                                   std::to_string(in) + " out=" + std::to_string(out) +
                                   (offset ? " unaligned" : "");
          got.erase(got.begin(), got.begin() + offset);
          const std::vector<float> ref(want.begin() + offset, want.end());
          const std::string why = check_close(
              got, ref, op_tolerance(Op::kLinearForward, in, max_abs(ref), tf32), what, nullptr);
          if (!why.empty()) ADD_FAILURE() << why;
          if (version == 1 && !tf32) v1 = got;
          if (version == 2 && !tf32)
            expect_op(Op::kLinearForward, got, v1, "v2 vs v1 " + what, in);
        }
    }
  }
  (void)cublasDestroy(ctx.cublas);
}

// kernels/dev's backward (cuBLAS SGEMMs + the column-sum kernel, on a dZ computed first), the
// benchmark's comparator for v3, against the CPU.
TEST(DevLinearCuda, CublasBackwardMatchesCpu) {
  auto cpu = make_cpu_backend();
  LinearContext ctx;
  ASSERT_EQ(cublasCreate(&ctx.cublas), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(ctx.cublas, nullptr), CUBLAS_STATUS_SUCCESS);
  uint32_t seed = 500;
  for (const LinearShape& s : kLinearShapes)
    for (const bool accumulate : {false, true}) {
      const size_t nx = static_cast<size_t>(s.rows) * s.in, nw = static_cast<size_t>(s.out) * s.in,
                   ny = static_cast<size_t>(s.rows) * s.out;
      const auto x = random_vector(nx, seed++), w = random_vector(nw, seed++, -0.3f, 0.3f);
      const auto dz = random_vector(ny, seed++, -0.3f, 0.3f);
      const auto dx0 = random_vector(nx, seed++), dw0 = random_vector(nw, seed++),
                 db0 = random_vector(s.out, seed++);
      Dev<float> d_x(x), d_w(w), d_dz(dz), d_dx(dx0), d_dw(dw0), d_db(db0);
      linear_backward_cublas(ctx, d_x.p, d_w.p, d_dz.p, d_dx.p, d_dw.p, d_db.p, s.rows, s.in,
                             s.out, accumulate, nullptr);
      // accumulate adds into all three; without it all three are overwritten.
      std::vector<float> want_dx = dx0, want_dw(nw), want_db(s.out);
      cpu->linear_backward(x.data(), w.data(), nullptr, dz.data(), want_dx.data(), want_dw.data(),
                           want_db.data(), s.rows, s.in, s.out, Activation::kNone, 0.0f,
                           accumulate);
      if (accumulate) {
        for (size_t i = 0; i < nw; ++i) want_dw[i] += dw0[i];
        for (int o = 0; o < s.out; ++o) want_db[o] += db0[o];
      }
      const std::string what = "cuBLAS backward rows=" + std::to_string(s.rows) +
                               (accumulate ? " accumulate" : " overwrite");
      expect_op(Op::kLinearBackward, d_dx.host(), want_dx, "dX " + what, s.out);
      expect_op(Op::kLinearBackward, d_dw.host(), want_dw, "dW " + what, s.rows);
      expect_op(Op::kLinearBackward, d_db.host(), want_db, "db " + what, s.rows);
    }
  (void)cublasDestroy(ctx.cublas);
}

}  // namespace
}  // namespace mnistgan

namespace mnistgan {
namespace {

// ---- the lock-step group's per-run kernels (host/backends/cuda_backend.cu's run_models):
// every model at its own stride, with its own seed, step, hyperparameters or targets, against
// the CPU backend's op on each model alone. A model that read another's slice or scalar fails.

// Three models' noise, each at its own step (stride 3 int64 apart) and seed, out 4100 floats
// apart (a ragged n and whole float4s): bitwise the CPU's per model.
TEST(ModelIndexCuda, NoisePerModelSeedAndStepBitwiseEqualsCpu) {
  auto cpu = make_cpu_backend();
  const size_t n = 4099, stride = 4100;
  const int models = 3;
  const std::vector<uint64_t> seeds = {7, 1234567890123ull, 7};
  const std::vector<int64_t> steps = {5, 0, 0, 11, 0, 0, 5, 0, 0};
  Dev<uint64_t> d_seeds(seeds);
  Dev<int64_t> d_steps(steps);
  Dev<float> d_out(std::vector<float>(stride * models, NAN));
  gaussian_noise(d_out.p, n, 999, 3, d_steps.p, nullptr, models,
                 NoiseModelStrides{static_cast<long long>(stride), 3}, d_seeds.p);
  const auto got = d_out.host();
  for (int m = 0; m < models; ++m) {
    std::vector<float> want(n);
    cpu->gaussian_noise(want.data(), n, seeds[m], 3, &steps[3 * m]);
    test::expect_bitwise_equal(slice(got, m * stride, n), want, "model " + std::to_string(m));
  }
}

// Two models' batches from their own datasets, permutations and steps: bitwise the CPU's.
TEST(ModelIndexCuda, GatherPerModelDatasetPermAndStepBitwiseEqualsCpu) {
  auto cpu = make_cpu_backend();
  const int n_images = 20, pixels = 300, rows = 4, models = 2;
  std::vector<uint8_t> dataset(static_cast<size_t>(n_images) * pixels * models);
  for (size_t i = 0; i < dataset.size(); ++i) dataset[i] = static_cast<uint8_t>((i * 37) % 251);
  std::vector<int32_t> perm(2 * n_images * models);
  for (int m = 0; m < models; ++m)
    for (int i = 0; i < 2 * n_images; ++i) perm[m * 2 * n_images + i] = (i * (3 + 4 * m)) % n_images;
  const std::vector<int64_t> steps = {2, 7};
  Dev<uint8_t> d_data(dataset);
  Dev<int32_t> d_perm(perm);
  Dev<int64_t> d_steps(steps);
  Dev<float> d_out(std::vector<float>(static_cast<size_t>(rows) * pixels * models, NAN));
  const GatherModelStrides ms{static_cast<long long>(n_images) * pixels, 2LL * n_images, 1,
                              static_cast<long long>(rows) * pixels};
  gather_batch(d_data.p, d_perm.p, n_images, pixels, rows, d_steps.p, 1, 0, 5, d_out.p, nullptr,
               models, ms);
  const auto got = d_out.host();
  for (int m = 0; m < models; ++m) {
    std::vector<float> want(static_cast<size_t>(rows) * pixels);
    cpu->gather_batch(&dataset[m * ms.dataset], &perm[m * ms.perm], n_images, pixels, rows,
                      &steps[m], 1, 0, 5, want.data());
    test::expect_bitwise_equal(slice(got, m * ms.out, want.size()), want,
                               "model " + std::to_string(m));
  }
}

// Non-finite counts per model: NaN and Inf in model 1 only, several blocks per model; every
// model's count its own, the scratch pairs zero again.
TEST(ModelIndexCuda, NonfiniteCountsAndIncrementsPerModel) {
  const size_t n = 70000;
  const int models = 3;
  std::vector<float> x(n * models, 1.0f);
  x[n + 5] = NAN, x[n + 60000] = INFINITY, x[2 * n - 1] = -INFINITY;
  Dev<float> d_x(x), d_count(std::vector<float>{10.0f, 0.0f, 20.0f, 0.0f, 30.0f, 0.0f});
  Dev<unsigned long long> scratch(std::vector<unsigned long long>(2 * models, 0ull));
  count_nonfinite(d_x.p, n, d_count.p, scratch.p, nullptr, models, static_cast<long long>(n), 2);
  EXPECT_EQ(d_count.host(), (std::vector<float>{10.0f, 0.0f, 23.0f, 0.0f, 30.0f, 0.0f}));
  for (unsigned long long s : scratch.host()) EXPECT_EQ(s, 0ull);
  Dev<int64_t> d_counter(std::vector<int64_t>{1, -1, 5, -1, 9, -1});
  increment(d_counter.p, nullptr, models, 2);
  EXPECT_EQ(d_counter.host(), (std::vector<int64_t>{2, -1, 6, -1, 10, -1}));
}

// A conditional group's label ops, the skip-step guard's ops and the group's memset, two models
// at their own strides (model 1's skip flag set): bitwise the CPU's op per model.
TEST(ModelIndexCuda, LabelGuardAndMemsetOpsPerModelBitwiseEqualCpu) {
  auto cpu = make_cpu_backend();
  const int models = 2, rows = 7, classes = 10, n_images = 30;
  // random_labels: per-model seeds and steps.
  const std::vector<uint64_t> seeds = {3, 77};
  const std::vector<int64_t> steps = {4, 9};
  Dev<uint64_t> d_seeds(seeds);
  Dev<int64_t> d_steps(steps);
  Dev<int32_t> d_labels(std::vector<int32_t>(2 * rows, -5));
  random_labels(d_labels.p, rows, classes, 0, 12, d_steps.p, nullptr, models, rows, 1, d_seeds.p);
  const auto labels = d_labels.host();
  for (int m = 0; m < models; ++m) {
    std::vector<int32_t> want(rows);
    cpu->random_labels(want.data(), rows, classes, seeds[m], 12, &steps[m]);
    EXPECT_EQ(std::vector<int32_t>(labels.begin() + m * rows, labels.begin() + (m + 1) * rows),
              want)
        << "random_labels model " << m;
  }
  // gather_labels: per-model labels, permutation and step.
  std::vector<uint8_t> image_labels(n_images * models);
  for (size_t i = 0; i < image_labels.size(); ++i) image_labels[i] = static_cast<uint8_t>(i % 10);
  std::vector<int32_t> perm(2 * n_images * models);
  for (int m = 0; m < models; ++m)
    for (int i = 0; i < 2 * n_images; ++i) perm[m * 2 * n_images + i] = (i * (7 + 4 * m)) % n_images;
  Dev<uint8_t> d_image_labels(image_labels);
  Dev<int32_t> d_perm(perm), d_gathered(std::vector<int32_t>(rows * models, -5));
  gather_labels(d_image_labels.p, d_perm.p, n_images, rows, d_steps.p, 1, 0, 4, d_gathered.p,
                nullptr, models, GatherModelStrides{n_images, 2 * n_images, 1, rows});
  const auto gathered = d_gathered.host();
  for (int m = 0; m < models; ++m) {
    std::vector<int32_t> want(rows);
    cpu->gather_labels(&image_labels[m * n_images], &perm[m * 2 * n_images], n_images, rows,
                       &steps[m], 1, 0, 4, want.data());
    EXPECT_EQ(std::vector<int32_t>(gathered.begin() + m * rows, gathered.begin() + (m + 1) * rows),
              want)
        << "gather_labels model " << m;
  }
  // one_hot of those labels, then [x | one-hot] and its split back, per model.
  const int width = 5, onehot = rows * classes, whole = rows * (width + classes);
  Dev<float> d_onehot(std::vector<float>(onehot * models, NAN));
  one_hot(d_gathered.p, d_onehot.p, rows, classes, nullptr, models, rows, onehot);
  const auto x = random_vector(rows * width * models, 501);
  Dev<float> d_x(x), d_cat(std::vector<float>(whole * models, NAN));
  concat_cols(d_x.p, d_onehot.p, d_cat.p, rows, width, classes, nullptr, models,
              ColsModelStrides{rows * width, onehot, whole});
  Dev<float> d_back(std::vector<float>(rows * width * models, NAN));
  split_cols(d_cat.p, d_back.p, nullptr, rows, width, classes, nullptr, models,
             ColsModelStrides{rows * width, 0, whole});
  const auto cat = d_cat.host();
  test::expect_bitwise_equal(d_back.host(), x, "split_cols of concat_cols");
  for (int m = 0; m < models; ++m) {
    std::vector<float> want_onehot(onehot), want_cat(whole);
    cpu->one_hot(&gathered[m * rows], want_onehot.data(), rows, classes);
    cpu->concat_cols(&x[m * rows * width], want_onehot.data(), want_cat.data(), rows, width,
                     classes);
    test::expect_bitwise_equal(slice(cat, m * whole, whole), want_cat,
                               "concat_cols model " + std::to_string(m));
  }
  // The skip-step guard: model 1's flag is set, so its counter and sums stay.
  const std::vector<float> skip = {0.0f, 1.0f};
  Dev<float> d_skip(skip), d_acc(std::vector<float>{1, 2, 3, 4, 5, 6});
  Dev<float> d_add(std::vector<float>{10, 20, 30, 40, 50, 60});
  accumulate_unless(d_add.p, d_acc.p, 3, d_skip.p, nullptr, models, 3, 3, 1);
  EXPECT_EQ(d_acc.host(), (std::vector<float>{11, 22, 33, 4, 5, 6}));
  Dev<int64_t> d_counter(std::vector<int64_t>{1, 1});
  increment_unless(d_counter.p, d_skip.p, nullptr, models, 1, 1);
  EXPECT_EQ(d_counter.host(), (std::vector<int64_t>{2, 1}));
  // The group's memset: 10 bytes of each model's 16, the rest kept.
  Dev<uint8_t> d_bytes(std::vector<uint8_t>(32, 9));
  fill_zero_models(d_bytes.p, 10, models, 16, nullptr);
  std::vector<uint8_t> want_bytes(32, 9);
  std::fill(want_bytes.begin(), want_bytes.begin() + 10, 0);
  std::fill(want_bytes.begin() + 16, want_bytes.begin() + 26, 0);
  EXPECT_EQ(d_bytes.host(), want_bytes);
}

// Adam with each model's own learning rate, betas, decay schedule and EMA decay from device
// arrays: bitwise the CPU's adam_step per model, over steps.
TEST(ModelIndexCuda, AdamPerModelHyperparametersBitwiseEqualCpu) {
  auto cpu = make_cpu_backend();
  const size_t n = 5003;
  const int models = 3;
  std::vector<AdamHyper> hypers(models);
  hypers[0].lr = 2e-4f;
  hypers[1].lr = 1e-3f, hypers[1].beta1 = 0.9f;
  hypers[2].lr = 4e-4f, hypers[2].beta2 = 0.99f, hypers[2].lr_decay_updates = 6;
  const std::vector<float> decays = {0.999f, 0.9f, 0.5f};
  auto p = random_vector(n * models, 91), e = random_vector(n * models, 92);
  std::vector<float> mom(n * models, 0.0f), var(n * models, 0.0f);
  std::vector<int64_t> steps = {0, 3, 4};
  Dev<float> d_p(p), d_e(e), d_m(mom), d_v(var), d_decays(decays);
  Dev<int64_t> d_step(steps);
  Dev<AdamHyper> d_hypers(hypers);
  Dev<unsigned> tickets(std::vector<unsigned>(models, 0u));
  for (int t = 0; t < 3; ++t) {
    const auto g = random_vector(n * models, 95 + t, -0.1f, 0.1f);
    Dev<float> d_g(g);
    adam_step(d_p.p, d_g.p, d_m.p, d_v.p, n, AdamHyper{}, d_step.p, tickets.p, nullptr, nullptr,
              d_e.p, 0.0f, models, packed_adam_strides(n), d_hypers.p, d_decays.p);
    for (int m = 0; m < models; ++m)
      cpu->adam_step(&p[m * n], &g[m * n], &mom[m * n], &var[m * n], n, hypers[m], &steps[m],
                     nullptr, &e[m * n], decays[m]);
    test::expect_bitwise_equal(d_p.host(), p, "params after step " + std::to_string(t));
    test::expect_bitwise_equal(d_e.host(), e, "ema after step " + std::to_string(t));
    EXPECT_EQ(d_step.host(), steps);
  }
}

// The logit layer's BCE against each model's own targets (a --real-label sweep).
TEST(ModelIndexCuda, LogitBcePerModelTargetsMatchCpu) {
  auto cpu = make_cpu_backend();
  const int groups = 2, B = 9, in = 13, models = 2, rows = groups * B;
  const size_t nx = static_cast<size_t>(rows) * in;
  const auto x = random_vector(nx * models, 401, -2.0f, 2.0f);
  const auto w = random_vector(static_cast<size_t>(in) * models, 402, -0.5f, 0.5f);
  const auto b = random_vector(models, 403);
  const std::vector<float> targets = {0.9f, 0.0f, 1.0f, 0.0f};  // (models, groups)
  Dev<float> d_x(x), d_w(w), d_b(b), d_targets(targets);
  Dev<float> d_logits(std::vector<float>(rows * models, NAN));
  Dev<float> d_dlogits(std::vector<float>(rows * models, NAN));
  Dev<float> d_stats(std::vector<float>(2 * groups * models, 0.0f));
  LogitBceModelStrides ms;
  ms.x = nx, ms.w = in, ms.b = 1, ms.logits = ms.dlogits = rows, ms.stats = 2 * groups;
  const float unused[2] = {NAN, NAN};  // the host targets, replaced by the device array
  logit_bce(d_x.p, d_w.p, d_b.p, groups, B, in, unused, 1.0f, d_logits.p, d_dlogits.p, nullptr,
            nullptr, nullptr, d_stats.p, models, ms, nullptr, d_targets.p);
  const auto dlogits = d_dlogits.host(), stats = d_stats.host();
  for (int m = 0; m < models; ++m) {
    std::vector<float> want_logits(rows), want_dlogits(rows), want_stats(2 * groups, 0.0f);
    cpu->logit_bce(&x[m * nx], &w[m * in], &b[m], groups, B, in, &targets[m * groups], 1.0f,
                   want_logits.data(), want_dlogits.data(), nullptr, nullptr, nullptr,
                   want_stats.data());
    expect_op(Op::kLogitBce, slice(dlogits, m * rows, rows), want_dlogits,
              "dlogits model " + std::to_string(m));
    expect_op(Op::kLogitBce, slice(stats, 2 * groups * m, 2 * groups), want_stats,
              "stats model " + std::to_string(m));
  }
}

}  // namespace
}  // namespace mnistgan
