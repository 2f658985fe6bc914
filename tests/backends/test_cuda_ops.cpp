// test_cuda_ops.cpp: every op of the CUDA backend against the CPU backend (the reference):
// the cases of bench/op_cases.h (the table the benchmark times), one test per op, each case on
// fresh seeded inputs with its outputs poisoned first, compared at the op's tolerance
// (core/op_checks.h). Then what is not one op call: a CUDA-graph replay against eager
// execution, argument checks, the factory's message without a device. The shipped linear
// kernel's dev variants and the model-indexed launches: tests/cuda_emu/test_fused_kernels.cpp.
//
// Plain C++ against backend.h only (no CUDA headers), so it builds in CPU-only builds too;
// there, and on machines without a usable GPU, every test skips with the reason (CudaTest).
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <array>
#include <cctype>  // std::isalnum
#include <cmath>   // std::sqrt
#include <cstdint>
#include <memory>
#include <ostream>  // std::ostream
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/op_cases.h"  // op_test_cases, check_case
#include "core/backend.h"
#include "core/op_checks.h"  // op_checks
#include "cuda_test.h"       // CudaTest, CudaTestWithParam
#include "test_util.h"

namespace mnistgan {

// gtest prints a case's parameter by its op's name (it looks PrintTo up in Op's namespace).
void PrintTo(Op op, std::ostream* os) { *os << op_check(op).name; }

namespace {

using test::alloc;
using test::download;
using test::expect_bitwise_equal;
using test::is_cuda_emulation;
using test::random_vector;
using test::upload;
using test::zeros;

// ---- every op's cases ----------------------------------------------------------------------

// ctest names the test after the op: Ops/CudaOpCases.MatchCpu/linear_forward, ...
std::string op_test_name(const ::testing::TestParamInfo<Op>& info) {
  std::string name = op_check(info.param).name;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

std::vector<Op> every_op() {
  std::vector<Op> ops;
  for (const OpCheck& check : op_checks()) ops.push_back(check.op);
  return ops;
}

class CudaOpCases : public test::CudaTestWithParam<Op> {};

TEST_P(CudaOpCases, MatchCpu) {
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  const std::vector<OpCase> cases = op_test_cases(GetParam(), is_cuda_emulation(*gpu));
  ASSERT_FALSE(cases.empty());
  for (const OpCase& c : cases) {
    const std::string why = check_case(c, *cpu, *gpu);
    if (!why.empty()) ADD_FAILURE() << why;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaOpCases, ::testing::ValuesIn(every_op()), op_test_name);

using CudaOps = test::CudaTest;
using CudaGraph = test::CudaTest;

// The step counter lives on the device and counts there.
TEST_F(CudaOps, IncrementCountsOnTheDevice) {
  auto be = make_cuda_backend();
  auto counter = upload(*be, std::vector<int64_t>{41});
  for (int i = 0; i < 3; ++i) be->increment(counter.get());
  EXPECT_EQ(download(*be, counter.get(), 1)[0], 44);
}

// ---- dropout in the linear layer ----------------------------------------------------------

// Dropout in the forward epilogue and in the backward's dY load: the same mask as the CPU's
// bit for bit (the same elements are 0), the values within the linear ops' tolerances
// (op_tolerance); on a small unsplit shape and on one that split-K divides (the epilogue after
// the reduction), packed and with strided rows (the mask follows (r, c), not the offset).
TEST_F(CudaOps, LinearDropoutForwardAndBackwardMatchCpu) {
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  auto expect_op = [](Op op, const std::vector<float>& got, const std::vector<float>& want,
                      const std::string& what, int64_t reduction) {
    const std::string why =
        check_close(got, want, op_tolerance(op, reduction, max_abs(want)), what, nullptr);
    if (!why.empty()) ADD_FAILURE() << why;
  };
  uint32_t seed = 900;
  for (const auto& [rows, in, out] : {std::array<int, 3>{33, 20, 9}, {128, 256, 200}}) {
    for (const bool strided : {false, true}) {
      const RowStrides ld = strided ? RowStrides{in + 3, out + 5} : RowStrides{};
      const int ldx = strided ? in + 3 : in, ldy = strided ? out + 5 : out;
      const size_t nx = static_cast<size_t>(rows) * ldx, ny = static_cast<size_t>(rows) * ldy,
                   nw = static_cast<size_t>(out) * in;
      const float ws = 1.0f / std::sqrt(static_cast<float>(in));
      const float zs = 1.0f / std::sqrt(static_cast<float>(std::max(rows, out)));
      const auto x = random_vector(nx, seed++), w = random_vector(nw, seed++, -ws, ws);
      const auto b = random_vector(out, seed++, -ws, ws);
      const auto dy = random_vector(ny, seed++, -zs, zs);
      const std::vector<float> y0(ny, 3.0f);  // Y's padding: left as it is
      const std::vector<int64_t> step = {41};
      auto cx = upload(*cpu, x), cw = upload(*cpu, w), cb = upload(*cpu, b);
      auto gx = upload(*gpu, x), gw = upload(*gpu, w), gb = upload(*gpu, b);
      auto cy = upload(*cpu, y0), gy = upload(*gpu, y0);
      auto cstep = upload(*cpu, step), gstep = upload(*gpu, step);
      const Dropout cd{0.35f, 12345, dropout_stream(1, 2), cstep.get()};
      const Dropout gd{0.35f, 12345, dropout_stream(1, 2), gstep.get()};
      cpu->linear_forward(cx.get(), cw.get(), cb.get(), cy.get(), rows, in, out,
                          Activation::kLeakyRelu, 0.2f, ld, cd);
      gpu->linear_forward(gx.get(), gw.get(), gb.get(), gy.get(), rows, in, out,
                          Activation::kLeakyRelu, 0.2f, ld, gd);
      const std::string what = "rows=" + std::to_string(rows) + " in=" + std::to_string(in) +
                               " out=" + std::to_string(out) + (strided ? " strided" : "") +
                               " dropout";
      const auto cpu_y = download(*cpu, cy.get(), ny), gpu_y = download(*gpu, gy.get(), ny);
      expect_op(Op::kLinearForward, gpu_y, cpu_y, "Y " + what, in);
      size_t mask_differs = 0, dropped = 0;
      for (size_t i = 0; i < ny; ++i) {
        mask_differs += (cpu_y[i] == 0.0f) != (gpu_y[i] == 0.0f);
        dropped += cpu_y[i] == 0.0f;
      }
      EXPECT_EQ(mask_differs, 0u) << what;
      EXPECT_GT(dropped, 0u) << what;

      auto cdy = upload(*cpu, dy), gdy = upload(*gpu, dy);
      auto cdx = zeros<float>(*cpu, nx), gdx = zeros<float>(*gpu, nx);
      auto cdw = zeros<float>(*cpu, nw), gdw = zeros<float>(*gpu, nw);
      auto cdb = zeros<float>(*cpu, out), gdb = zeros<float>(*gpu, out);
      cpu->linear_backward(cx.get(), cw.get(), cy.get(), cdy.get(), cdx.get(), cdw.get(),
                           cdb.get(), rows, in, out, Activation::kLeakyRelu, 0.2f, false, ld, cd);
      gpu->linear_backward(gx.get(), gw.get(), gy.get(), gdy.get(), gdx.get(), gdw.get(),
                           gdb.get(), rows, in, out, Activation::kLeakyRelu, 0.2f, false, ld, gd);
      const Op op = Op::kLinearBackward;
      expect_op(op, download(*gpu, gdx.get(), nx), download(*cpu, cdx.get(), nx), "dX " + what,
                out);
      expect_op(op, download(*gpu, gdw.get(), nw), download(*cpu, cdw.get(), nw), "dW " + what,
                rows);
      expect_op(op, download(*gpu, gdb.get(), out), download(*cpu, cdb.get(), out),
                "db " + what, rows);
    }
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
