// test_cuda_ops.cpp: every op of the CUDA backend against the CPU backend (the reference),
// on random nonzero inputs, at the shapes and tolerances of core/op_checks.h (the table the
// benchmark checks its rows with): shapes that include 1 row and sizes that are not multiples
// of any tile; the shipped linear kernel (its dev variants: tests/cuda_emu/test_fused_kernels.cpp);
// a CUDA-graph replay against eager execution.
//
// Plain C++ against backend.h only (no CUDA headers), so it builds in CPU-only builds too;
// there, and on machines without a usable GPU, every test skips with the reason (CudaTest).
#include <gtest/gtest.h>

#include <algorithm>  // std::max, std::shuffle
#include <cmath>      // std::sqrt, NAN, INFINITY
#include <cstdint>
#include <memory>
#include <numeric>  // std::iota
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/op_checks.h"  // op_check, op_tolerance, check_close
#include "cuda_test.h"       // CudaTest
#include "test_util.h"

namespace mnistgan {
namespace {

using test::alloc;
using test::zeros;
using test::download;
using test::expect_bitwise_equal;
using test::is_cuda_emulation;
using test::random_vector;
using test::upload;

// |got - want| within op's tolerance (core/op_checks.h); else a failure naming the worst
// element and the first mismatches. reduction and tf32 as op_tolerance's.
void expect_op(Op op, const std::vector<float>& got, const std::vector<float>& want,
               const std::string& what, int64_t reduction = 1, bool tf32 = false) {
  const std::string why =
      check_close(got, want, op_tolerance(op, reduction, max_abs(want), tf32), what, nullptr);
  if (!why.empty()) ADD_FAILURE() << why;
}

const std::vector<OpShape>& shapes(Op op) { return op_check(op).shapes; }

struct Pair {
  std::unique_ptr<Backend> cpu, gpu;
};
Pair make_backends() { return {make_cpu_backend(), make_cuda_backend()}; }

const char* act_name(Activation a) {
  return a == Activation::kNone ? "none" : a == Activation::kLeakyRelu ? "leaky" : "tanh";
}

std::string linear_case(int rows, int in, int out, Activation act, bool bias) {
  return "rows=" + std::to_string(rows) + " in=" + std::to_string(in) +
         " out=" + std::to_string(out) + " act=" + act_name(act) + (bias ? " bias" : " no-bias");
}

// ---- linear forward ----------------------------------------------------------------------

void check_linear_forward() {
  Pair p = make_backends();
  const Activation acts[] = {Activation::kNone, Activation::kLeakyRelu, Activation::kTanh};
  uint32_t seed = 1;
  const std::vector<OpShape>& linear = shapes(Op::kLinearForward);
  for (size_t s = 0; s < linear.size(); ++s) {
    const int rows = linear[s].rows, in = linear[s].in, out = linear[s].out;
    // 2048x784x1024 is too slow to emulate; 700x37x780 and 705x52x777 still meet partial
    // tiles.
    if (is_cuda_emulation(*p.gpu) && static_cast<double>(rows) * in * out > 1e9) continue;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in));
    const auto x = random_vector(static_cast<size_t>(rows) * in, seed++);
    const auto w = random_vector(static_cast<size_t>(out) * in, seed++, -scale, scale);
    const auto b = random_vector(out, seed++, -scale, scale);
    auto cx = upload(*p.cpu, x), cw = upload(*p.cpu, w), cb = upload(*p.cpu, b);
    auto gx = upload(*p.gpu, x), gw = upload(*p.gpu, w), gb = upload(*p.gpu, b);
    auto cy = alloc<float>(*p.cpu, static_cast<size_t>(rows) * out);
    auto gy = alloc<float>(*p.gpu, static_cast<size_t>(rows) * out);
    // All activations on the small shapes; one (rotating) on the big ones to keep the CPU
    // reference time down.
    const bool big = static_cast<double>(rows) * in * out > 2e7;
    for (int a = 0; a < 3; ++a) {
      if (big && a != static_cast<int>(s % 3)) continue;
      for (const bool bias : {true, false}) {
        if (big && !bias) continue;
        const Activation act = acts[a];
        p.cpu->linear_forward(cx.get(), cw.get(), bias ? cb.get() : nullptr, cy.get(), rows, in,
                              out, act, 0.2f);
        p.gpu->linear_forward(gx.get(), gw.get(), bias ? gb.get() : nullptr, gy.get(), rows, in,
                              out, act, 0.2f);
        const size_t n = static_cast<size_t>(rows) * out;
        expect_op(Op::kLinearForward, download(*p.gpu, gy.get(), n), download(*p.cpu, cy.get(), n),
                  "linear_forward " + linear_case(rows, in, out, act, bias), in);
      }
    }
  }
}

// GPU tests: skipped without a device (tests/cuda_test.h).
using CudaLinear = test::CudaTest;
using CudaOps = test::CudaTest;
using CudaMbd = test::CudaTest;
using CudaGraph = test::CudaTest;

// The shipped linear kernel (the dev variants: tests/cuda_emu/test_fused_kernels.cpp).
TEST_F(CudaLinear, ForwardMatchesCpu) { check_linear_forward(); }

// Pointers offset by one float are not 16-byte aligned.
TEST_F(CudaLinear, UnalignedPointersMatchCpu) {
  Pair p = make_backends();
  const int rows = 37, in = 100, out = 68;
  const auto x = random_vector(static_cast<size_t>(rows) * in + 1, 7);
  const auto w = random_vector(static_cast<size_t>(out) * in + 1, 8, -0.1f, 0.1f);
  const auto b = random_vector(out, 9, -0.1f, 0.1f);
  auto cx = upload(*p.cpu, x), cw = upload(*p.cpu, w), cb = upload(*p.cpu, b);
  auto gx = upload(*p.gpu, x), gw = upload(*p.gpu, w), gb = upload(*p.gpu, b);
  const size_t n = static_cast<size_t>(rows) * out;
  auto cy = zeros<float>(*p.cpu, n + 1), gy = zeros<float>(*p.gpu, n + 1);
  p.cpu->linear_forward(cx.get() + 1, cw.get() + 1, cb.get(), cy.get() + 1, rows, in, out,
                        Activation::kLeakyRelu, 0.2f);
  p.gpu->linear_forward(gx.get() + 1, gw.get() + 1, gb.get(), gy.get() + 1, rows, in, out,
                        Activation::kLeakyRelu, 0.2f);
  expect_op(Op::kLinearForward, download(*p.gpu, gy.get(), n + 1),
            download(*p.cpu, cy.get(), n + 1), "unaligned", in);
}

// ---- linear backward ---------------------------------------------------------------------

// The fused backward (dZ = dY * act'(Y) on load; dX, dW, db in one op) against the CPU's, for
// every activation, with overwrite and accumulate_dx; outputs poisoned with NaN first (an
// element the op forgets to write fails), on packed and on strided rows (X/dX and Y/dY inside
// wider buffers, as the discriminator's [h | o] features).
TEST_F(CudaLinear, BackwardMatchesCpu) {
  Pair p = make_backends();
  const Activation acts[] = {Activation::kNone, Activation::kLeakyRelu, Activation::kTanh};
  uint32_t seed = 200;
  const std::vector<OpShape>& linear = shapes(Op::kLinearBackward);
  for (size_t s = 0; s < linear.size(); ++s) {
    const int rows = linear[s].rows, in = linear[s].in, out = linear[s].out;
    if (static_cast<double>(rows) * in * out > 2e8) continue;  // CPU time
    const bool big = static_cast<double>(rows) * in * out > 2e7;
    for (int a = 0; a < 3; ++a) {
      if (big && a != static_cast<int>(s % 3)) continue;
      for (const bool strided : {false, true}) {
        if (big && strided) continue;
        const Activation act = acts[a];
        const RowStrides ld = strided ? RowStrides{in + 3, out + 5} : RowStrides{};
        const int ldx = strided ? in + 3 : in, ldy = strided ? out + 5 : out;
        const float ws = 1.0f / std::sqrt(static_cast<float>(in));
        // dY scaled so that dW's sums over rows stay O(1), like dX's sums over out.
        const float zs = 1.0f / std::sqrt(static_cast<float>(std::max(rows, out)));
        const size_t nx = static_cast<size_t>(rows) * ldx, ny = static_cast<size_t>(rows) * ldy,
                     nw = static_cast<size_t>(out) * in;
        const auto x = random_vector(nx, seed++);
        const auto w = random_vector(nw, seed++, -ws, ws);
        // Y as an activation's output would be (tanh in (-1, 1)); LeakyReLU reads its sign.
        const auto y = random_vector(ny, seed++, -0.9f, 0.9f);
        const auto dy = random_vector(ny, seed++, -zs, zs);
        const auto dx0 = random_vector(nx, seed++);
        for (const bool accumulate : {false, true}) {
          const std::vector<float> nan_w(nw, NAN), nan_b(out, NAN);
          // Poisoned where the op writes: every output element it must overwrite is NaN.
          std::vector<float> dx_start = dx0;
          if (!accumulate)
            for (int r = 0; r < rows; ++r)
              for (int c = 0; c < in; ++c) dx_start[static_cast<size_t>(r) * ldx + c] = NAN;
          auto cx = upload(*p.cpu, x), cw = upload(*p.cpu, w), cy = upload(*p.cpu, y);
          auto cdy = upload(*p.cpu, dy), cdx = upload(*p.cpu, dx_start);
          auto cdw = upload(*p.cpu, nan_w), cdb = upload(*p.cpu, nan_b);
          auto gx = upload(*p.gpu, x), gw = upload(*p.gpu, w), gy = upload(*p.gpu, y);
          auto gdy = upload(*p.gpu, dy), gdx = upload(*p.gpu, dx_start);
          auto gdw = upload(*p.gpu, nan_w), gdb = upload(*p.gpu, nan_b);
          p.cpu->linear_backward(cx.get(), cw.get(), cy.get(), cdy.get(), cdx.get(), cdw.get(),
                                 cdb.get(), rows, in, out, act, 0.2f, accumulate, ld);
          p.gpu->linear_backward(gx.get(), gw.get(), gy.get(), gdy.get(), gdx.get(), gdw.get(),
                                 gdb.get(), rows, in, out, act, 0.2f, accumulate, ld);
          const std::string what = linear_case(rows, in, out, act, true) +
                                   (accumulate ? " accumulate" : " overwrite") +
                                   (strided ? " strided" : "");
          // dX sums over out, dW and db over rows; dX's padding columns are compared too (the
          // op must leave them as they were).
          const Op op = Op::kLinearBackward;
          expect_op(op, download(*p.gpu, gdx.get(), nx), download(*p.cpu, cdx.get(), nx),
                    "dX " + what, out);
          expect_op(op, download(*p.gpu, gdw.get(), nw), download(*p.cpu, cdw.get(), nw),
                    "dW " + what, rows);
          expect_op(op, download(*p.gpu, gdb.get(), out), download(*p.cpu, cdb.get(), out),
                    "db " + what, rows);
        }
      }
    }
  }
}

// Each output alone, and dW with db, (the others nullptr) must leave the rest untouched.
TEST_F(CudaLinear, BackwardNullOutputsAreSkipped) {
  Pair p = make_backends();
  const int rows = 33, in = 20, out = 9;
  const auto x = random_vector(rows * in, 1), w = random_vector(out * in, 2, -0.2f, 0.2f);
  const auto y = random_vector(rows * out, 4, -0.9f, 0.9f);
  const auto dz = random_vector(rows * out, 3, -0.2f, 0.2f);
  for (int which = 0; which < 3; ++which) {
    const bool want_dx = which == 0, want_dw = which >= 1, want_db = which == 2;
    auto cx = upload(*p.cpu, x), cw = upload(*p.cpu, w), cdz = upload(*p.cpu, dz);
    auto gx = upload(*p.gpu, x), gw = upload(*p.gpu, w), gdz = upload(*p.gpu, dz);
    auto cy = upload(*p.cpu, y), gy = upload(*p.gpu, y);
    auto cdx = zeros<float>(*p.cpu, rows * in), cdw = zeros<float>(*p.cpu, out * in);
    auto cdb = zeros<float>(*p.cpu, out);
    auto gdx = zeros<float>(*p.gpu, rows * in), gdw = zeros<float>(*p.gpu, out * in);
    auto gdb = zeros<float>(*p.gpu, out);
    p.cpu->linear_backward(cx.get(), cw.get(), cy.get(), cdz.get(), want_dx ? cdx.get() : nullptr,
                           want_dw ? cdw.get() : nullptr, want_db ? cdb.get() : nullptr, rows,
                           in, out, Activation::kTanh, 0.2f, false);
    p.gpu->linear_backward(gx.get(), gw.get(), gy.get(), gdz.get(), want_dx ? gdx.get() : nullptr,
                           want_dw ? gdw.get() : nullptr, want_db ? gdb.get() : nullptr, rows,
                           in, out, Activation::kTanh, 0.2f, false);
    const std::string what = "only output " + std::to_string(which);
    const Op op = Op::kLinearBackward;
    expect_op(op, download(*p.gpu, gdx.get(), rows * in), download(*p.cpu, cdx.get(), rows * in),
              "dX " + what, out);
    expect_op(op, download(*p.gpu, gdw.get(), out * in), download(*p.cpu, cdw.get(), out * in),
              "dW " + what, rows);
    expect_op(op, download(*p.gpu, gdb.get(), out), download(*p.cpu, cdb.get(), out), "db " + what,
              rows);
  }
}

// ---- elementwise ---------------------------------------------------------------------------

TEST_F(CudaOps, ActivationBackwardMatchesCpu) {
  Pair p = make_backends();
  uint32_t seed = 300;
  for (const OpShape& shape : shapes(Op::kActivationBackward)) {
    const size_t n = static_cast<size_t>(shape.rows);
    for (const Activation act : {Activation::kNone, Activation::kLeakyRelu, Activation::kTanh}) {
      for (const bool in_place : {false, true}) {
        const auto y = random_vector(n, seed++, act == Activation::kTanh ? -0.99f : -2.0f,
                                     act == Activation::kTanh ? 0.99f : 2.0f);
        const auto dy = random_vector(n, seed++);
        auto cy = upload(*p.cpu, y), cdy = upload(*p.cpu, dy), cdz = alloc<float>(*p.cpu, n);
        auto gy = upload(*p.gpu, y), gdy = upload(*p.gpu, dy), gdz = alloc<float>(*p.gpu, n);
        float* c_out = in_place ? cdy.get() : cdz.get();
        float* g_out = in_place ? gdy.get() : gdz.get();
        p.cpu->activation_backward(cy.get(), cdy.get(), c_out, n, act, 0.2f);
        p.gpu->activation_backward(gy.get(), gdy.get(), g_out, n, act, 0.2f);
        expect_op(Op::kActivationBackward, download(*p.gpu, g_out, n), download(*p.cpu, c_out, n),
                  std::string("activation_backward ") + act_name(act) + " n=" + std::to_string(n) +
                      (in_place ? " in place" : ""));
      }
    }
  }
}

TEST_F(CudaOps, ConcatAndSplitColumnsMatchCpu) {
  Pair p = make_backends();
  struct Case {
    int rows, a, b;
  };
  uint32_t seed = 400;
  for (const OpShape& shape : shapes(Op::kConcatSplitCols)) {
    const Case c{shape.rows, shape.in, shape.out};
    const size_t na = static_cast<size_t>(c.rows) * c.a, nb = static_cast<size_t>(c.rows) * c.b;
    const size_t n = na + nb;
    const auto A = random_vector(na, seed++), B = random_vector(std::max<size_t>(nb, 1), seed++);
    auto cA = upload(*p.cpu, A), cB = upload(*p.cpu, B), cO = zeros<float>(*p.cpu, n);
    auto gA = upload(*p.gpu, A), gB = upload(*p.gpu, B), gO = zeros<float>(*p.gpu, n);
    p.cpu->concat_cols(cA.get(), cB.get(), cO.get(), c.rows, c.a, c.b);
    p.gpu->concat_cols(gA.get(), gB.get(), gO.get(), c.rows, c.a, c.b);
    const std::string what = "rows=" + std::to_string(c.rows) + " a=" + std::to_string(c.a) +
                             " b=" + std::to_string(c.b);
    const Op op = Op::kConcatSplitCols;
    expect_op(op, download(*p.gpu, gO.get(), n), download(*p.cpu, cO.get(), n),
              "concat_cols " + what);
    // Split back, once into both halves and once into A only.
    for (const bool both : {true, false}) {
      auto cA2 = zeros<float>(*p.cpu, std::max<size_t>(na, 1));
      auto cB2 = zeros<float>(*p.cpu, std::max<size_t>(nb, 1));
      auto gA2 = zeros<float>(*p.gpu, std::max<size_t>(na, 1));
      auto gB2 = zeros<float>(*p.gpu, std::max<size_t>(nb, 1));
      p.cpu->split_cols(cO.get(), cA2.get(), both ? cB2.get() : nullptr, c.rows, c.a, c.b);
      p.gpu->split_cols(gO.get(), gA2.get(), both ? gB2.get() : nullptr, c.rows, c.a, c.b);
      expect_op(op, download(*p.gpu, gA2.get(), na), download(*p.cpu, cA2.get(), na),
                "split_cols A " + what);
      expect_op(op, download(*p.gpu, gB2.get(), nb), download(*p.cpu, cB2.get(), nb),
                "split_cols B " + what);
    }
  }
}

// ---- minibatch discrimination ----------------------------------------------------------------

TEST_F(CudaMbd, ForwardAndBackwardMatchCpu) {
  Pair p = make_backends();
  struct Case {
    int groups, B, K, C;
  };
  uint32_t seed = 500;
  for (const OpShape& shape : shapes(Op::kMbdForward)) {
    const Case c{shape.groups, shape.rows, shape.in, shape.out};
    const size_t rows = static_cast<size_t>(c.groups) * c.B;
    const size_t nm = rows * c.K * c.C, no = rows * c.K;
    const auto m = random_vector(nm, seed++, -1.0f, 1.0f);
    const auto dout = random_vector(no, seed++, -1.0f, 1.0f);
    auto cm = upload(*p.cpu, m), cdo = upload(*p.cpu, dout);
    auto gm = upload(*p.gpu, m), gdo = upload(*p.gpu, dout);
    auto co = alloc<float>(*p.cpu, no), cdm = alloc<float>(*p.cpu, nm);
    auto go = alloc<float>(*p.gpu, no), gdm = alloc<float>(*p.gpu, nm);
    p.cpu->mbd_forward(cm.get(), co.get(), c.groups, c.B, c.K, c.C);
    p.gpu->mbd_forward(gm.get(), go.get(), c.groups, c.B, c.K, c.C);
    p.cpu->mbd_backward(cm.get(), cdo.get(), cdm.get(), c.groups, c.B, c.K, c.C);
    p.gpu->mbd_backward(gm.get(), gdo.get(), gdm.get(), c.groups, c.B, c.K, c.C);
    const std::string what = "groups=" + std::to_string(c.groups) + " B=" + std::to_string(c.B) +
                             " K=" + std::to_string(c.K) + " C=" + std::to_string(c.C);
    expect_op(Op::kMbdForward, download(*p.gpu, go.get(), no), download(*p.cpu, co.get(), no),
              "mbd_forward " + what, c.B);
    expect_op(Op::kMbdBackward, download(*p.gpu, gdm.get(), nm), download(*p.cpu, cdm.get(), nm),
              "mbd_backward " + what, c.B);
  }
}

// ---- loss -------------------------------------------------------------------------------

TEST_F(CudaOps, BceWithLogitsMatchesCpu) {
  Pair p = make_backends();
  uint32_t seed = 600;
  for (const OpShape& shape : shapes(Op::kBceWithLogits)) {
    const int n = shape.rows;
    for (const float target : {0.0f, 0.9f, 1.0f}) {
      for (const float grad_scale : {1.0f, -0.5f}) {
        // Wide logits, so both branches of the stable forms and saturation are exercised.
        const auto x = random_vector(n, seed++, -30.0f, 30.0f);
        const std::vector<float> stats0 = {0.25f, 0.5f};  // accumulated into
        auto cx = upload(*p.cpu, x), cdx = alloc<float>(*p.cpu, n), cs = upload(*p.cpu, stats0);
        auto gx = upload(*p.gpu, x), gdx = alloc<float>(*p.gpu, n), gs = upload(*p.gpu, stats0);
        p.cpu->bce_with_logits(cx.get(), n, target, grad_scale, cdx.get(), cs.get());
        p.gpu->bce_with_logits(gx.get(), n, target, grad_scale, gdx.get(), gs.get());
        const std::string what = "n=" + std::to_string(n) + " t=" + std::to_string(target) +
                                 " scale=" + std::to_string(grad_scale);
        expect_op(Op::kBceWithLogits, download(*p.gpu, gdx.get(), n),
                  download(*p.cpu, cdx.get(), n), "bce dx " + what);
        expect_op(Op::kBceWithLogits, download(*p.gpu, gs.get(), 2), download(*p.cpu, cs.get(), 2),
                  "bce stats " + what);
      }
    }
  }
  // Null gradient and null stats are both allowed.
  const auto x = random_vector(64, 1);
  auto gx = upload(*p.gpu, x), gs = zeros<float>(*p.gpu, 2), gdx = alloc<float>(*p.gpu, 64);
  p.gpu->bce_with_logits(gx.get(), 64, 1.0f, 1.0f, nullptr, gs.get());
  p.gpu->bce_with_logits(gx.get(), 64, 1.0f, 1.0f, gdx.get(), nullptr);
  p.gpu->synchronize();
}

// The logit layer + BCE + backward op at the table's shapes (two targets, stats accumulated
// onto nonzero values, with and without weight gradients), outputs NaN-poisoned first.
TEST_F(CudaOps, LogitBceMatchesCpu) {
  Pair p = make_backends();
  uint32_t seed = 650;
  for (const OpShape& shape : shapes(Op::kLogitBce))
    for (const bool param_grads : {true, false}) {
      const int groups = shape.groups, B = shape.rows, in = shape.in, rows = groups * B;
      const size_t nx = static_cast<size_t>(rows) * in;
      const auto x = random_vector(nx, seed++, -2.0f, 2.0f);
      const auto w = random_vector(in, seed++, -0.5f, 0.5f), b = random_vector(1, seed++);
      const auto stats0 = random_vector(2 * groups, seed++);
      const float targets[2] = {0.9f, 0.0f};
      const std::vector<float> nan_rows(rows, NAN), nan_x(nx, NAN), nan_w(in, NAN), nan_b(1, NAN);
      Backend* backends[2] = {p.cpu.get(), p.gpu.get()};
      std::vector<float> out[2][6];  // logits, dlogits, dX, dw, db, stats
      for (int k = 0; k < 2; ++k) {
        Backend& be = *backends[k];
        auto bx = upload(be, x), bw = upload(be, w), bb = upload(be, b);
        auto logits = upload(be, nan_rows), dl = upload(be, nan_rows), dx = upload(be, nan_x);
        auto dw = upload(be, nan_w), db = upload(be, nan_b), st = upload(be, stats0);
        be.logit_bce(bx.get(), bw.get(), bb.get(), groups, B, in, targets, 1.0f, logits.get(),
                     dl.get(), dx.get(), param_grads ? dw.get() : nullptr,
                     param_grads ? db.get() : nullptr, st.get());
        out[k][0] = download(be, logits.get(), rows);
        out[k][1] = download(be, dl.get(), rows);
        out[k][2] = download(be, dx.get(), nx);
        out[k][3] = download(be, dw.get(), in);
        out[k][4] = download(be, db.get(), 1);
        out[k][5] = download(be, st.get(), 2 * groups);
      }
      const std::string what = "groups=" + std::to_string(groups) + " B=" + std::to_string(B) +
                               " in=" + std::to_string(in) + (param_grads ? " dw" : " no dw");
      const Op op = Op::kLogitBce;
      expect_op(op, out[1][0], out[0][0], "logits " + what, in);
      expect_op(op, out[1][1], out[0][1], "dlogits " + what);
      expect_op(op, out[1][2], out[0][2], "dX " + what);
      expect_op(op, out[1][5], out[0][5], "stats " + what);
      if (param_grads) {
        expect_op(op, out[1][3], out[0][3], "dw " + what, rows);
        expect_op(op, out[1][4], out[0][4], "db " + what, rows);
      } else {  // left untouched (NaN) on both
        expect_bitwise_equal(out[1][3], nan_w, "dw untouched " + what);
      }
    }
}

// ---- optimiser ----------------------------------------------------------------------------

TEST_F(CudaOps, AdamMatchesCpuOverSteps) {
  Pair p = make_backends();
  AdamHyper h;
  h.lr = 1e-3f;
  uint32_t seed = 700;
  for (const OpShape& shape : shapes(Op::kAdam)) {
    const size_t n = static_cast<size_t>(shape.rows);
    const auto params = random_vector(n, seed++);
    auto cp = upload(*p.cpu, params), gp = upload(*p.gpu, params);
    auto cm = zeros<float>(*p.cpu, n), cv = zeros<float>(*p.cpu, n);
    auto gm = zeros<float>(*p.gpu, n), gv = zeros<float>(*p.gpu, n);
    auto cstep = zeros<int64_t>(*p.cpu, 1), gstep = zeros<int64_t>(*p.gpu, 1);
    for (int t = 0; t < 3; ++t) {
      const auto g = random_vector(n, seed++, -0.1f, 0.1f);
      auto cg = upload(*p.cpu, g), gg = upload(*p.gpu, g);
      // The op counts its step (t += 1) itself.
      p.cpu->adam_step(cp.get(), cg.get(), cm.get(), cv.get(), n, h, cstep.get());
      p.gpu->adam_step(gp.get(), gg.get(), gm.get(), gv.get(), n, h, gstep.get());
    }
    const std::string what = "n=" + std::to_string(n) + " after 3 steps";
    expect_op(Op::kAdam, download(*p.gpu, gp.get(), n), download(*p.cpu, cp.get(), n),
              "adam params " + what);
    expect_op(Op::kAdam, download(*p.gpu, gm.get(), n), download(*p.cpu, cm.get(), n),
              "adam m " + what);
    expect_op(Op::kAdam, download(*p.gpu, gv.get(), n), download(*p.cpu, cv.get(), n),
              "adam v " + what);
    EXPECT_EQ(download(*p.gpu, gstep.get(), 1)[0], 3);
  }
}

// The EMA generator's update: bitwise equal to the CPU (same rounding, no FMA), through the
// warm-up, at the cap, and skipped when the flag is set.
TEST_F(CudaOps, EmaUpdateBitwiseEqualsCpu) {
  Pair p = make_backends();
  uint32_t seed = 800;
  for (const OpShape& shape : shapes(Op::kEmaUpdate)) {
    const size_t n = static_cast<size_t>(shape.rows);
    const auto start = random_vector(n, seed++);
    auto ce = upload(*p.cpu, start), ge = upload(*p.gpu, start);
    auto cstep = zeros<int64_t>(*p.cpu, 1), gstep = zeros<int64_t>(*p.gpu, 1);
    for (int t = 0; t < 4; ++t) {
      const auto params = random_vector(n, seed++);
      auto cp = upload(*p.cpu, params), gp = upload(*p.gpu, params);
      const float decay = t < 3 ? 0.999f : 0.05f;  // the last one is capped
      p.cpu->ema_update(ce.get(), cp.get(), n, decay, cstep.get());
      p.gpu->ema_update(ge.get(), gp.get(), n, decay, gstep.get());
      p.cpu->increment(cstep.get());
      p.gpu->increment(gstep.get());
    }
    const auto want = download(*p.cpu, ce.get(), n);
    expect_op(Op::kEmaUpdate, download(*p.gpu, ge.get(), n), want, "ema n=" + std::to_string(n));
    auto skip = upload(*p.gpu, std::vector<float>{1.0f});
    const auto other = random_vector(n, seed++);
    auto gp = upload(*p.gpu, other);
    p.gpu->ema_update(ge.get(), gp.get(), n, 0.999f, gstep.get(), skip.get());
    EXPECT_EQ(download(*p.gpu, ge.get(), n), want) << "a skipped update changed it, n=" << n;
  }
}

// ---- randomness and data: bitwise --------------------------------------------------------

TEST_F(CudaOps, GaussianNoiseBitwiseEqualsCpu) {
  Pair p = make_backends();
  for (const OpShape& shape : shapes(Op::kGaussianNoise)) {
    const size_t n = static_cast<size_t>(shape.rows);
    for (const int64_t step : {int64_t{-1}, int64_t{0}, int64_t{7}, int64_t{123456789012}}) {
      auto cs = upload(*p.cpu, std::vector<int64_t>{step});
      auto gs = upload(*p.gpu, std::vector<int64_t>{step});
      auto co = alloc<float>(*p.cpu, n), go = alloc<float>(*p.gpu, n);
      // step -1 stands for "no counter" (nullptr, meaning step 0).
      const bool null_step = step < 0;
      const uint64_t seed = 0x1234567890abcdefull + n;
      p.cpu->gaussian_noise(co.get(), n, seed, 3, null_step ? nullptr : cs.get());
      p.gpu->gaussian_noise(go.get(), n, seed, 3, null_step ? nullptr : gs.get());
      expect_op(Op::kGaussianNoise, download(*p.gpu, go.get(), n), download(*p.cpu, co.get(), n),
                "gaussian_noise n=" + std::to_string(n) +
                    (null_step ? " step=null" : " step=" + std::to_string(step)));
    }
  }
}

TEST_F(CudaOps, GatherBatchBitwiseEqualsCpu) {
  Pair p = make_backends();
  const OpShape& shape = shapes(Op::kGatherBatch).at(0);
  const int n_images = shape.out, pixels = shape.in, rows = shape.rows;
  const int64_t batches_per_epoch = n_images / rows;  // 99 of 100 images per epoch
  std::mt19937 gen(42);
  std::vector<uint8_t> data(static_cast<size_t>(n_images) * pixels);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i < 256 ? i : gen());
  std::vector<int32_t> perm(2 * n_images);
  std::iota(perm.begin(), perm.begin() + n_images, 0);
  std::iota(perm.begin() + n_images, perm.end(), 0);
  std::shuffle(perm.begin(), perm.begin() + n_images, gen);
  std::shuffle(perm.begin() + n_images, perm.end(), gen);
  auto cd = upload(*p.cpu, data), gd = upload(*p.gpu, data);
  auto cp = upload(*p.cpu, perm), gp = upload(*p.gpu, perm);
  auto cstep = zeros<int64_t>(*p.cpu, 1), gstep = zeros<int64_t>(*p.gpu, 1);
  auto co = alloc<float>(*p.cpu, rows * pixels), go = alloc<float>(*p.gpu, rows * pixels);
  // Steps of 2 batches, across several epoch boundaries (both permutation slots).
  for (int step = 0; step < 25; ++step) {
    for (int offset = 0; offset < 2; ++offset) {
      p.cpu->gather_batch(cd.get(), cp.get(), n_images, pixels, rows, cstep.get(), 2, offset,
                          batches_per_epoch, co.get());
      p.gpu->gather_batch(gd.get(), gp.get(), n_images, pixels, rows, gstep.get(), 2, offset,
                          batches_per_epoch, go.get());
      expect_op(Op::kGatherBatch, download(*p.gpu, go.get(), rows * pixels),
                download(*p.cpu, co.get(), rows * pixels),
                "gather_batch step=" + std::to_string(step) + " offset=" + std::to_string(offset));
    }
    p.cpu->increment(cstep.get());
    p.gpu->increment(gstep.get());
  }
}

TEST_F(CudaOps, LabelOpsBitwiseEqualCpu) {
  Pair p = make_backends();
  // gather_labels: the same batches as GatherBatchBitwiseEqualsCpu, with a corrupt index.
  const OpShape& shape = shapes(Op::kGatherLabels).at(0);
  const int n_images = shape.out, rows = shape.rows;
  const int64_t batches_per_epoch = n_images / rows;
  std::mt19937 gen(43);
  std::vector<uint8_t> labels(n_images);
  for (uint8_t& label : labels) label = static_cast<uint8_t>(gen() % 10);
  std::vector<int32_t> perm(2 * n_images);
  std::iota(perm.begin(), perm.begin() + n_images, 0);
  std::iota(perm.begin() + n_images, perm.end(), 0);
  std::shuffle(perm.begin(), perm.begin() + n_images, gen);
  std::shuffle(perm.begin() + n_images, perm.end(), gen);
  perm[5] = -3;
  auto cl = upload(*p.cpu, labels), gl = upload(*p.gpu, labels);
  auto cp = upload(*p.cpu, perm), gp = upload(*p.gpu, perm);
  auto cstep = zeros<int64_t>(*p.cpu, 1), gstep = zeros<int64_t>(*p.gpu, 1);
  auto co = alloc<int32_t>(*p.cpu, rows), go = alloc<int32_t>(*p.gpu, rows);
  for (int step = 0; step < 25; ++step) {
    for (int offset = 0; offset < 2; ++offset) {
      p.cpu->gather_labels(cl.get(), cp.get(), n_images, rows, cstep.get(), 2, offset,
                           batches_per_epoch, co.get());
      p.gpu->gather_labels(gl.get(), gp.get(), n_images, rows, gstep.get(), 2, offset,
                           batches_per_epoch, go.get());
      EXPECT_EQ(download(*p.gpu, go.get(), rows), download(*p.cpu, co.get(), rows))
          << "gather_labels step=" << step << " offset=" << offset;
    }
    p.cpu->increment(cstep.get());
    p.gpu->increment(gstep.get());
  }
  // random_labels: several sizes, steps (nullptr = 0) and class counts.
  for (const OpShape& shape : shapes(Op::kRandomLabels)) {
    const size_t n = static_cast<size_t>(shape.rows);
    for (const int64_t step : {int64_t{-1}, int64_t{0}, int64_t{123456789012}}) {
      for (const int classes : {1, 10, 37}) {
        auto cs = upload(*p.cpu, std::vector<int64_t>{step});
        auto gs = upload(*p.gpu, std::vector<int64_t>{step});
        auto cr = alloc<int32_t>(*p.cpu, n), gr = alloc<int32_t>(*p.gpu, n);
        const bool null_step = step < 0;
        p.cpu->random_labels(cr.get(), n, classes, 77 + n, kLabelStreamBase + 1,
                             null_step ? nullptr : cs.get());
        p.gpu->random_labels(gr.get(), n, classes, 77 + n, kLabelStreamBase + 1,
                             null_step ? nullptr : gs.get());
        EXPECT_EQ(download(*p.gpu, gr.get(), n), download(*p.cpu, cr.get(), n))
            << "random_labels n=" << n << " step=" << step << " classes=" << classes;
      }
    }
  }
  // one_hot: valid labels and out-of-range ones (NaN rows), 1 row and a ragged size.
  for (const OpShape& shape : shapes(Op::kOneHot)) {
    const int n = shape.rows;
    std::vector<int32_t> y(n);
    for (int r = 0; r < n; ++r) y[r] = r % 13 - 1;  // -1 and 10, 11 are out of range
    auto cy = upload(*p.cpu, y), gy = upload(*p.gpu, y);
    auto ch = alloc<float>(*p.cpu, n * 10), gh = alloc<float>(*p.gpu, n * 10);
    p.cpu->one_hot(cy.get(), ch.get(), n, 10);
    p.gpu->one_hot(gy.get(), gh.get(), n, 10);
    expect_op(Op::kOneHot, download(*p.gpu, gh.get(), n * 10), download(*p.cpu, ch.get(), n * 10),
              "one_hot rows=" + std::to_string(n));
  }
}

// A corrupt permutation (indices -1 and n_images) gives the same NaN rows on both.
TEST_F(CudaOps, GatherBatchOutOfRangeIndexBitwiseEqualsCpu) {
  Pair p = make_backends();
  const int n_images = 8, pixels = 300, rows = 4;
  std::vector<uint8_t> data(static_cast<size_t>(n_images) * pixels);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  const std::vector<int32_t> perm{3, -1, n_images, 0, 1, 2, 3, 4, 5, 6, 7, -7, 0, 1, 2, 3};
  auto cd = upload(*p.cpu, data), gd = upload(*p.gpu, data);
  auto cp = upload(*p.cpu, perm), gp = upload(*p.gpu, perm);
  auto cstep = zeros<int64_t>(*p.cpu, 1), gstep = zeros<int64_t>(*p.gpu, 1);
  auto co = alloc<float>(*p.cpu, rows * pixels), go = alloc<float>(*p.gpu, rows * pixels);
  for (int offset = 0; offset < 4; ++offset) {  // batches 0, 1 (slot 0) and 2, 3 (slot 1)
    p.cpu->gather_batch(cd.get(), cp.get(), n_images, pixels, rows, cstep.get(), 1, offset, 2,
                        co.get());
    p.gpu->gather_batch(gd.get(), gp.get(), n_images, pixels, rows, gstep.get(), 1, offset, 2,
                        go.get());
    const std::vector<float> want = download(*p.cpu, co.get(), rows * pixels);
    expect_op(Op::kGatherBatch, download(*p.gpu, go.get(), rows * pixels), want,
              "gather_batch offset=" + std::to_string(offset));
    if (offset == 0) {
      EXPECT_TRUE(std::isnan(want[pixels]) && std::isnan(want[2 * pixels]));
    }
  }
}

TEST_F(CudaOps, IncrementAndCountNonfiniteMatchCpu) {
  Pair p = make_backends();
  auto counter = upload(*p.gpu, std::vector<int64_t>{41});
  for (int i = 0; i < 3; ++i) p.gpu->increment(counter.get());
  EXPECT_EQ(download(*p.gpu, counter.get(), 1)[0], 44);

  for (const OpShape& shape : shapes(Op::kCountNonfinite)) {
    const size_t n = static_cast<size_t>(shape.rows);
    auto x = random_vector(n, static_cast<uint32_t>(n));
    // Non-finite values scattered over the buffer (first, last, middle).
    x[0] = NAN;
    if (n > 1) x[n - 1] = INFINITY;
    if (n > 2) x[n / 2] = -INFINITY;
    for (size_t i = 3; i < n; i += 99991) x[i] = NAN;
    const std::vector<float> count0 = {2.0f};
    auto cx = upload(*p.cpu, x), cc = upload(*p.cpu, count0);
    auto gx = upload(*p.gpu, x), gc = upload(*p.gpu, count0);
    for (int rep = 0; rep < 2; ++rep) {  // twice: the scratch must reset itself
      p.cpu->count_nonfinite(cx.get(), n, cc.get());
      p.gpu->count_nonfinite(gx.get(), n, gc.get());
    }
    expect_op(Op::kCountNonfinite, download(*p.gpu, gc.get(), 1), download(*p.cpu, cc.get(), 1),
              "count_nonfinite n=" + std::to_string(n));
  }
}

// ---- graphs -------------------------------------------------------------------------------

// A miniature training step: noise -> linear -> loss -> backward -> Adam -> step += 1.
// Issued eagerly twice on one backend, captured once and replayed twice on another; the
// results must be identical (same kernels, same inputs, deterministic reductions).
struct MiniStep {
  static constexpr int kRows = 32, kIn = 16, kOut = 1;
  BackendBuffer<float> z, w, b, y, dy, dw, db, m, v, stats;
  BackendBuffer<int64_t> step;

  explicit MiniStep(Backend& be) {
    z = alloc<float>(be, kRows * kIn);
    w = upload(be, random_vector(kOut * kIn, 1, -0.25f, 0.25f));
    b = upload(be, random_vector(kOut, 2, -0.25f, 0.25f));
    y = alloc<float>(be, kRows * kOut);
    dy = alloc<float>(be, kRows * kOut);
    dw = alloc<float>(be, kOut * kIn);
    db = alloc<float>(be, kOut);
    m = alloc<float>(be, kOut * kIn);
    v = alloc<float>(be, kOut * kIn);
    stats = zeros<float>(be, 2);
    step = zeros<int64_t>(be, 1);
  }
  void issue(Backend& be) const {
    be.gaussian_noise(z.get(), kRows * kIn, 99, 0, step.get());
    be.linear_forward(z.get(), w.get(), b.get(), y.get(), kRows, kIn, kOut, Activation::kNone,
                      0.2f);
    be.bce_with_logits(y.get(), kRows, 1.0f, 1.0f, dy.get(), stats.get());
    be.linear_backward(z.get(), w.get(), nullptr, dy.get(), nullptr, dw.get(), db.get(), kRows,
                       kIn, kOut, Activation::kNone, 0.0f, false);
    be.adam_step(w.get(), dw.get(), m.get(), v.get(), kOut * kIn, AdamHyper{}, step.get());
  }
};

TEST_F(CudaGraph, ReplayMatchesEagerExecution) {
  auto eager_be = make_cuda_backend();
  auto graph_be = make_cuda_backend();
  MiniStep eager(*eager_be), graph(*graph_be);
  eager.issue(*eager_be);
  eager.issue(*eager_be);

  ASSERT_TRUE(graph_be->begin_capture());
  graph.issue(*graph_be);
  graph_be->end_capture();
  // Capturing records without running: the step counter has not moved yet.
  EXPECT_EQ(download(*graph_be, graph.step.get(), 1)[0], 0);
  graph_be->replay();
  graph_be->replay();

  EXPECT_EQ(download(*graph_be, graph.step.get(), 1)[0], 2);
  const int nw = MiniStep::kOut * MiniStep::kIn;
  expect_bitwise_equal(download(*graph_be, graph.w.get(), nw),
                       download(*eager_be, eager.w.get(), nw), "graph vs eager: weights");
  expect_bitwise_equal(download(*graph_be, graph.m.get(), nw),
                       download(*eager_be, eager.m.get(), nw), "graph vs eager: adam m");
  expect_bitwise_equal(download(*graph_be, graph.z.get(), MiniStep::kRows * MiniStep::kIn),
                       download(*eager_be, eager.z.get(), MiniStep::kRows * MiniStep::kIn),
                       "graph vs eager: noise of the second step");
  expect_bitwise_equal(download(*graph_be, graph.stats.get(), 2),
                       download(*eager_be, eager.stats.get(), 2), "graph vs eager: loss stats");
}

TEST_F(CudaGraph, ReplayWithoutCaptureThrows) {
  auto be = make_cuda_backend();
  EXPECT_THROW(be->replay(), std::logic_error);
  EXPECT_THROW(be->end_capture(), std::logic_error);
}

// ---- argument checking and availability ---------------------------------------------------

TEST_F(CudaOps, BadArgumentsThrowInvalidArgument) {
  auto be = make_cuda_backend();
  auto buf = alloc<float>(*be, 4096);
  EXPECT_THROW(be->linear_forward(buf.get(), buf.get(), nullptr, buf.get(), 0, 4, 4,
                                  Activation::kNone, 0.2f),
               std::invalid_argument);
  EXPECT_THROW(be->mbd_forward(buf.get(), buf.get(), 1, 4, 2, 33), std::invalid_argument);
  EXPECT_THROW(be->bce_with_logits(buf.get(), 0, 1.0f, 1.0f, buf.get(), buf.get()),
               std::invalid_argument);
  EXPECT_THROW(be->concat_cols(buf.get(), buf.get(), buf.get(), 4, -1, 2), std::invalid_argument);
}

// Runs everywhere (no skip): without a usable device the factory must throw a message that
// says why and what to do, never crash.
TEST(CudaBackend, FactoryExplainsWhyCudaIsUnavailable) {
  const std::string why = cuda_unavailable_reason();
  if (why.empty()) {
    auto be = make_cuda_backend();
    EXPECT_EQ(be->name().rfind("cuda (", 0), 0u) << be->name();
    return;
  }
  try {
    make_cuda_backend();
    ADD_FAILURE() << "make_cuda_backend() returned although: " << why;
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
    EXPECT_NE(msg.find("--device cpu"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace mnistgan
