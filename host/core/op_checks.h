// op_checks.h: the table of backend ops that a second implementation is checked against
// the CPU reference with (after ggml's test-backend-ops): per op the shapes to check, the
// tolerance model, and the work one call does.
//
// One table for every checker, so they cannot drift apart: host/bench/op_cases.h builds its
// cases from it (the test cases at `shapes`, every case compared at op_tolerance, its work
// from these counts), and the CUDA op tests (tests/backends/test_cuda_ops.cpp) and both
// halves of the benchmark (host/bench/bench.cpp, bench_cuda.cu) run those cases.
// Shapes of one call, per op (backend.h): linear_* (rows, in, out); mbd_* groups of B rows,
// K kernels of C dims; the elementwise ops, bce, adam, ema, noise: n elements.
#pragma once

#include <cstddef>  // size_t
#include <cstdint>  // int64_t
#include <string>
#include <vector>

namespace mnistgan {

enum class Op {
  kLinearForward,
  kLinearBackward,
  kActivationBackward,
  kMbdForward,
  kMbdBackward,
  kBceWithLogits,
  kAdam,
  kEmaUpdate,
  kGaussianNoise,
  kGatherBatch,
  kConcatSplitCols,
  kCountNonfinite,
  kGatherLabels,
  kRandomLabels,
  kOneHot,
  kLogitBce,
};

// One call's shape; the fields an op does not use stay 1 (see the header comment).
//   linear: rows, in, out, bias.  mbd: groups, rows = B, in = K, out = C.  gather_batch:
//   rows, in = pixels, out = images.  gather_labels: rows, out = images.  one_hot: rows,
//   in = classes.  logit_bce: groups of rows = B, in.  others: rows = n.
struct OpShape {
  int rows = 1, in = 1, out = 1;
  int groups = 1;
  bool bias = true;
};

// |got - want| <= atol + rtol |want| elementwise; bitwise: the same bits, NaN included.
struct Tolerance {
  double atol = 0, rtol = 0;
  bool bitwise = false;
};

// Floating-point operations and the minimum bytes moved (every input read once, every
// output written once, fp32), for the GFLOP/s, GB/s and roofline columns.
struct WorkCount {
  double flops = 0;
  double bytes = 0;
};

struct OpCheck {
  Op op;
  const char* name;             // the Backend method
  std::vector<OpShape> shapes;  // what the CUDA-vs-CPU test runs (edge cases and the model's)
};

// Every op, in Op order.
const std::vector<OpCheck>& op_checks();
const OpCheck& op_check(Op op);

// The tolerance of one output of `op` (why: op_checks.cpp).
//   reduction:    terms summed into each output element (linear: in for Y, out for dX, rows
//                 for dW and db; mbd: B); max_abs_want: the largest |reference| element;
//   tf32:         the GEMM ran on TF32 tensor cores.
Tolerance op_tolerance(Op op, int64_t reduction = 1, double max_abs_want = 0, bool tf32 = false);

// The work of one call of `op` at `shape`.
WorkCount op_work(Op op, const OpShape& shape);

// The same counts by argument, for the callers that hold the sizes loose.
// Y = act(X W^T + b): 2 rows in out multiply-adds, plus bias and activation per output.
WorkCount linear_forward_work(int rows, int in, int out, bool bias);
// dW = dZ^T X and dX = dZ W (2 x 2 rows in out) plus the column sums for db.
WorkCount linear_backward_work(int rows, int in, int out, bool bias);
// Minibatch discrimination over groups of B rows, K kernels of C dims: per ordered pair
// (i, j != i) and kernel, C subtractions, C absolute values, C additions, one exp and one
// accumulation, counted as 3C + 2 operations (exp as one; it runs on the special-function
// units on a GPU, so this understates the work slightly).
WorkCount mbd_forward_work(int groups, int B, int K, int C);
// Backward: per pair and kernel the exp again plus C sign-multiply-adds: 5C + 3.
WorkCount mbd_backward_work(int groups, int B, int K, int C);
// Adam over n parameters: reads p, g, m, v and writes p, m, v (28 bytes), ~12 flops each.
WorkCount adam_work(size_t n);
// dZ = dY * act'(Y) over n elements: reads Y, dY, writes dZ.
WorkCount activation_backward_work(size_t n);
// BCE with logits over n logits: reads x, writes dx.
WorkCount bce_work(int n);

// The failure text of a comparison under `tol`: "" when every element passes, else how many
// failed, the worst element and the first few mismatches (index, got, want). max_abs_error
// is raised to the largest |got - want| seen (a NaN counts as infinity).
std::string check_close(const std::vector<float>& got, const std::vector<float>& want,
                        const Tolerance& tol, const std::string& what, double* max_abs_error);

// The largest |x| of v (the max_abs_want of op_tolerance).
double max_abs(const std::vector<float>& v);

}  // namespace mnistgan
