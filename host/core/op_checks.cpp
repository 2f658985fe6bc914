// op_checks.cpp: see op_checks.h.
#include "core/op_checks.h"

#include <algorithm>  // std::max
#include <cmath>      // std::fabs, std::isnan, std::sqrt, INFINITY
#include <cstring>    // std::memcmp
#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::invalid_argument

namespace mnistgan {
namespace {

// ---- tolerances: |got - want| <= atol + rtol |want| ------------------------------------------
//
// FP32 GEMM: the two sides sum the K products in different orders (tiles, split-K, OpenBLAS
// kernels); each reassociation moves a result by ~eps times the partial sums, which grow like
// sqrt(K) times the output scale for random inputs. 2e-6 sqrt(K) (max|want| + 1) is ~30x that
// (2e-3 at K = 2048 and outputs of ~20), while an indexing bug moves outputs by O(max|want|).
constexpr double kGemmAtolPerSqrtK = 2e-6;
constexpr double kGemmRtol = 1e-4;
// TF32 rounds both operands to 10-bit mantissas (2^-11 relative each): ~1e-3 of the output
// scale in practice; 5e-3 (max|want| + 1) leaves margin.
constexpr double kTf32AtolScale = 5e-3;
constexpr double kTf32Rtol = 1e-2;
// Elementwise float math (expf/log1pf/tanhf vs libm, nvcc's FMA contraction, the order of
// the loss reduction): a few ulp.
constexpr double kEltAtol = 1e-6;
constexpr double kEltRtol = 1e-5;
// Minibatch discrimination: both sides add the j terms in the same order; they differ by
// expf's last bits (<= 2 ulp on the GPU, libmvec's under -ffast-math on the CPU) and the
// rounding that follows. The forward sums positive terms (relative error), the backward
// sums signed terms whose partial sums grow like B, hence an absolute term per row.
constexpr double kMbdRtol = 1e-4;
constexpr double kMbdAtolPerRow = 1e-6;
// Adam: the same expression and rounding on both (core/formulas.h); only pow() in the bias
// correction may differ in the last bit.
constexpr double kAdamAtol = 1e-7;
constexpr double kAdamRtol = 1e-6;

}  // namespace

const std::vector<OpCheck>& op_checks() {
  // The model's layers (G: 100-256-512-1024-784; D: 784-1024-512-256, MBD T 256->500, final
  // 356->1; D rows are 2 groups), plus 1 row, odd sizes (scalar paths, partial tiles). The
  // last two give the tiled kernel at least 143 64x64 tiles, so on a GPU with up to 143 SMs
  // (H100/H200: 132) its 64x64 kernel, not only the 32x32 one, meets partial row, column and
  // K tiles, scalar (in = 37) and float4 (in = 52) loads.
  static const std::vector<OpShape> linear = {
      {1, 100, 256},   {3, 7, 5},        {17, 1, 3},        {65, 33, 67},     {64, 100, 256},
      {64, 256, 512},  {64, 512, 1024},  {64, 1024, 784},   {128, 784, 1024}, {130, 356, 1},
      {130, 256, 500}, {1000, 513, 255}, {2048, 784, 1024}, {700, 37, 780},   {705, 52, 777}};
  // B = 1 (no pairs), C exact (5) and padded (1, 3, 8, 9, 17, 32), K not a multiple of 32,
  // and the model's largest call: 2 groups of 1024 rows, K = 100, C = 5.
  auto mbd = [](int groups, int B, int K, int C) { return OpShape{B, K, C, groups, false}; };
  static const std::vector<OpShape> mbd_shapes = {
      mbd(1, 1, 3, 5),    mbd(1, 2, 1, 1),     mbd(2, 64, 100, 5), mbd(2, 33, 37, 3),
      mbd(1, 130, 40, 8), mbd(1, 70, 20, 9),   mbd(1, 40, 33, 17), mbd(1, 20, 5, 32),
      mbd(1, 1024, 7, 5), mbd(2, 1024, 100, 5)};
  auto n = [](int count) { return OpShape{count}; };
  static const std::vector<OpCheck> table = {
      {Op::kLinearForward, "linear_forward", linear},
      {Op::kLinearBackward, "linear_backward", linear},
      {Op::kActivationBackward, "activation_backward", {n(1), n(1000), n(4097)}},
      {Op::kMbdForward, "mbd_forward", mbd_shapes},
      {Op::kMbdBackward, "mbd_backward", mbd_shapes},
      {Op::kBceWithLogits, "bce_with_logits", {n(1), n(7), n(128), n(2048), n(3000)}},
      {Op::kAdam, "adam_step", {n(1), n(1000), n(100003)}},
      {Op::kEmaUpdate, "ema_update", {n(1), n(1000), n(100003)}},
      {Op::kGaussianNoise, "gaussian_noise", {n(1), n(3), n(4), n(5), n(1001), n(100000)}},
      // rows = batch rows, in = pixels, out = images
      {Op::kGatherBatch, "gather_batch", {OpShape{9, 784, 100}}},
      // rows, in = a, out = b columns
      {Op::kConcatSplitCols,
       "concat_cols/split_cols",
       {OpShape{1, 256, 100}, OpShape{130, 256, 100}, OpShape{7, 3, 1}, OpShape{5, 4, 0}}},
      {Op::kCountNonfinite, "count_nonfinite", {n(1), n(1000), n(3000001)}},
      {Op::kGatherLabels, "gather_labels", {OpShape{9, 1, 100}}},
      {Op::kRandomLabels, "random_labels", {n(1), n(7), n(64), n(10001)}},
      {Op::kOneHot, "one_hot", {OpShape{1, 10}, OpShape{37, 10}}},
      // groups of B rows, in features: 1 row, odd sizes, the D update's and the G update's
      // calls at batch 64 and the D update's at batch 1024 ([h | o] = 356 wide).
      {Op::kLogitBce,
       "logit_bce",
       {OpShape{1, 3, 1, 1}, OpShape{7, 37, 1, 2}, OpShape{300, 100, 1, 1}, OpShape{64, 356, 1, 2},
        OpShape{64, 356, 1, 1}, OpShape{1024, 356, 1, 2}}},
  };
  return table;
}

const OpCheck& op_check(Op op) {
  const auto& table = op_checks();
  const size_t i = static_cast<size_t>(op);
  if (i >= table.size() || table[i].op != op) throw std::invalid_argument("op_check: unknown op");
  return table[i];
}

Tolerance op_tolerance(Op op, int64_t reduction, double max_abs_want, bool tf32) {
  switch (op) {
    case Op::kLinearForward:
    case Op::kLinearBackward:
    case Op::kLogitBce: {  // logits, dw and db are GEMM-like sums (reduction in or rows)
      const double scale = max_abs_want + 1.0;
      if (tf32) return {kTf32AtolScale * scale, kTf32Rtol};
      return {kGemmAtolPerSqrtK * std::sqrt(static_cast<double>(std::max<int64_t>(reduction, 1))) *
                  scale,
              kGemmRtol};
    }
    case Op::kActivationBackward:
    case Op::kBceWithLogits:
      return {kEltAtol, kEltRtol};
    case Op::kMbdForward:
    case Op::kMbdBackward:
      return {kMbdAtolPerRow * static_cast<double>(reduction), kMbdRtol};
    case Op::kAdam:
      return {kAdamAtol, kAdamRtol};
    case Op::kEmaUpdate:        // the same roundings (core/formulas.h)
    case Op::kGaussianNoise:    // Philox and Box-Muller in double (core/philox.h)
    case Op::kGatherBatch:      // an exact division and subtraction (core/formulas.h)
    case Op::kConcatSplitCols:  // copies
    case Op::kCountNonfinite:   // an integer count
    case Op::kGatherLabels:     // integer copies
    case Op::kRandomLabels:     // Philox, integer arithmetic (core/philox.h)
    case Op::kOneHot:           // 0, 1 or NaN (core/formulas.h)
      return {0, 0, true};
  }
  throw std::invalid_argument("op_tolerance: unknown op");
}

WorkCount linear_forward_work(int rows, int in, int out, bool bias) {
  const double r = rows, i = in, o = out;
  WorkCount w;
  w.flops = 2.0 * r * i * o + (bias ? 2.0 : 1.0) * r * o;  // GEMM, bias add, activation
  w.bytes = 4.0 * (r * i + o * i + (bias ? o : 0.0) + r * o);
  return w;
}

WorkCount linear_backward_work(int rows, int in, int out, bool bias) {
  const double r = rows, i = in, o = out;
  WorkCount w;
  w.flops = 4.0 * r * i * o + (bias ? r * o : 0.0);  // dW and dX GEMMs, db column sums
  // Reads X, W, dZ; writes dX, dW, db.
  w.bytes = 4.0 * (r * i + o * i + r * o + r * i + o * i + (bias ? o : 0.0));
  return w;
}

WorkCount mbd_forward_work(int groups, int B, int K, int C) {
  const double pairs = static_cast<double>(groups) * B * (B - 1.0);
  WorkCount w;
  w.flops = pairs * K * (3.0 * C + 2.0);
  w.bytes = 4.0 * static_cast<double>(groups) * B * K * (C + 1.0);  // M in, O out
  return w;
}

WorkCount mbd_backward_work(int groups, int B, int K, int C) {
  const double pairs = static_cast<double>(groups) * B * (B - 1.0);
  WorkCount w;
  w.flops = pairs * K * (5.0 * C + 3.0);
  w.bytes = 4.0 * static_cast<double>(groups) * B * K * (2.0 * C + 1.0);  // M, dO in; dM out
  return w;
}

WorkCount adam_work(size_t n) { return {12.0 * n, 28.0 * n}; }

WorkCount activation_backward_work(size_t n) { return {2.0 * n, 12.0 * n}; }

WorkCount bce_work(int n) { return {12.0 * n, 8.0 * n}; }

WorkCount op_work(Op op, const OpShape& s) {
  const size_t n = static_cast<size_t>(s.rows);
  switch (op) {
    case Op::kLinearForward:
      return linear_forward_work(s.rows, s.in, s.out, s.bias);
    case Op::kLinearBackward:
      return linear_backward_work(s.rows, s.in, s.out, s.bias);
    case Op::kActivationBackward:
      return activation_backward_work(n);
    case Op::kMbdForward:
      return mbd_forward_work(s.groups, s.rows, s.in, s.out);
    case Op::kMbdBackward:
      return mbd_backward_work(s.groups, s.rows, s.in, s.out);
    case Op::kBceWithLogits:
      return bce_work(s.rows);
    case Op::kAdam:
      return adam_work(n);
    case Op::kEmaUpdate:  // reads ema, p; writes ema; 3 flops each
      return {3.0 * n, 12.0 * n};
    case Op::kGaussianNoise:  // writes n floats; Philox and Box-Muller not counted
      return {0.0, 4.0 * n};
    case Op::kGatherBatch:  // reads rows x pixels bytes, writes as many floats
      return {2.0 * s.rows * s.in, 5.0 * s.rows * s.in};
    case Op::kConcatSplitCols:  // reads and writes rows x (a + b) floats
      return {0.0, 8.0 * s.rows * (s.in + s.out)};
    case Op::kCountNonfinite:
      return {static_cast<double>(n), 4.0 * n};
    case Op::kGatherLabels:  // reads rows indices and bytes, writes rows int32
      return {0.0, 9.0 * s.rows};
    case Op::kRandomLabels:  // writes n int32; Philox not counted
      return {0.0, 4.0 * n};
    case Op::kOneHot:  // reads rows labels, writes rows x classes floats
      return {0.0, 4.0 * s.rows * (1.0 + s.in)};
    case Op::kLogitBce: {  // the 1-output layer's forward and backward; BCE's few flops
      const int rows = s.groups * s.rows;
      const WorkCount f = linear_forward_work(rows, s.in, 1, true),
                      b = linear_backward_work(rows, s.in, 1, true);
      return {f.flops + b.flops + 12.0 * rows, f.bytes + b.bytes};
    }
  }
  throw std::invalid_argument("op_work: unknown op");
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

std::string check_close(const std::vector<float>& got, const std::vector<float>& want,
                        const Tolerance& tol, const std::string& what, double* max_abs_error) {
  std::ostringstream msg;
  msg.precision(9);
  if (got.size() != want.size()) {
    msg << what << ": size " << got.size() << ", expected " << want.size();
    return msg.str();
  }
  constexpr size_t kShowFirst = 5;
  size_t bad = 0, worst = 0;
  double worst_excess = -INFINITY;
  std::ostringstream first;
  first.precision(9);
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool both_nan = std::isnan(g) && std::isnan(w);
    const double err = both_nan ? 0.0 : std::fabs(g - w);  // NaN when only one is NaN
    if (max_abs_error != nullptr)
      *max_abs_error = std::max(*max_abs_error, std::isnan(err) ? INFINITY : err);
    double excess;  // > 0: a mismatch
    if (tol.bitwise)
      excess = std::memcmp(&got[i], &want[i], sizeof(float)) == 0
                   ? 0
                   : (std::isnan(err) ? INFINITY : std::max(err, 1e-300));
    else if (both_nan)
      excess = 0;  // NaN where the reference has NaN
    else
      excess = std::isnan(err) ? INFINITY : err - (tol.atol + tol.rtol * std::fabs(w));
    if (excess <= 0) continue;
    if (bad == 0 || excess > worst_excess) worst_excess = excess, worst = i;
    if (bad < kShowFirst)
      first << "\n  [" << i << "] got " << g << ", want " << w << ", |diff| " << err;
    ++bad;
  }
  if (bad == 0) return "";
  msg << what << ": " << bad << " of " << got.size() << " elements ";
  if (tol.bitwise)
    msg << "differ bitwise";
  else
    msg << "outside |got - want| <= " << tol.atol << " + " << tol.rtol << " |want|";
  msg << "; worst [" << worst << "] got " << got[worst] << ", want " << want[worst]
      << "; first mismatches:" << first.str();
  return msg.str();
}

}  // namespace mnistgan
