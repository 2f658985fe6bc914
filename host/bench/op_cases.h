// op_cases.h: one case per call of a backend op, shared by the CUDA-vs-CPU tests and the
// benchmark (after ggml's test-backend-ops): written once, run three ways.
//
// A case states its op and parameters, how it makes its inputs on a Backend (seeded random
// values, outputs poisoned with NaN where the op must overwrite them), how it runs there, the
// work of one run (for the benchmark's GFLOP/s, GB/s and roofline columns) and its outputs,
// which are compared with the CPU backend's at the op's tolerance (core/op_checks.h, where the
// tolerances are stated and justified).
//
//   tests/backends/test_cuda_ops.cpp  every op_test_cases(op): CPU backend vs CUDA backend
//                                     (emu.* on the CUDA emulation, gpu.* on a device);
//   host/bench/bench.cpp              times every op_bench_cases(shape, batch) on the CPU;
//   host/bench/bench_cuda.cu          checks each against the CPU, then times it on the CUDA
//                                     backend, beside its comparators (kernels/dev, cuBLASLt,
//                                     cuDNN) run on the same case's buffers.
// Test cases are small (edge sizes, every activation and flag, the model's layers; the CUDA
// emulation must run them in CI); bench cases are the training step's calls at one batch.
#pragma once

#include <cstdint>     // int64_t, uint32_t
#include <functional>  // std::function
#include <memory>      // std::unique_ptr
#include <string>
#include <vector>

#include "core/backend.h"         // Backend, Activation
#include "core/backend_buffer.h"  // BackendBuffer
#include "core/config.h"          // ModelShape
#include "core/op_checks.h"       // Op, WorkCount, op_tolerance

namespace mnistgan {

// One output of a case, read back after it ran.
struct CaseOutput {
  std::string name;           // "dX", "stats", ...
  std::vector<float> values;  // integer outputs converted (exactly: they are small)
  int64_t reduction = 1;      // terms summed into each element (op_tolerance's)
};

// A case's buffers on one backend, made and ready to run.
class CaseRun {
 public:
  virtual ~CaseRun() = default;
  // Issues the case's op call(s), queued on the backend. The benchmark calls it repeatedly;
  // only the first run's outputs are compared.
  virtual void run() = 0;
  // Every output, read back (to_host waits for the queued work).
  virtual std::vector<CaseOutput> outputs() = 0;
};

struct OpCase {
  Op op;                // its tolerance model (core/op_checks.h)
  std::string kernel;   // the benchmark's kernel column: the Backend method ("adam" for adam_step)
  std::string params;   // "rows=3 in=7 out=5 act=tanh bias", for messages
  // The benchmark's columns: the model's layer ("G.fc0", "D.mbd", ...; "" for test-only
  // cases) and the shape as bench.h's kernel_shape_text reads it.
  std::string layer;
  int rows = 0, in = 1, out = 1;
  WorkCount work;  // of one run()
  // Makes the case's inputs and outputs on `backend`: the same values on every backend.
  std::function<std::unique_ptr<CaseRun>(Backend&)> make;

  std::string name() const { return kernel + " " + params; }
};

// ---- the linear cases' buffers (public: the benchmark runs its comparators on them) ------

struct LinearParams {
  int rows = 1, in = 1, out = 1;
  Activation act = Activation::kNone;
  float slope = 0.2f;
  bool bias = true;
};

// Y (rows, out) = act(X W^T + b), X (rows, in), W (out, in), b (out); Y poisoned.
class LinearForwardRun : public CaseRun {
 public:
  LinearForwardRun(Backend& backend, const LinearParams& p, uint32_t seed);
  void run() override;
  std::vector<CaseOutput> outputs() override;
  Backend& backend;
  LinearParams p;
  BackendBuffer<float> x, w, b, y;
  const float* bias() const { return p.bias ? b.get() : nullptr; }
};

// dX (rows, in), dW (out, in), db (out) of Y = act(X W^T + b) given dY and the saved Y
// (random, as an activation's output would be); dW, db poisoned, dX poisoned or (accumulate)
// random. With strides, X/dX and Y/dY sit inside wider rows (the padding is compared too:
// the op must leave it as it was). want_dx/want_dw/want_db false pass nullptr for that output
// (db only with dW), which must then be left untouched.
struct LinearBackwardParams {
  LinearParams layer;
  bool accumulate = false;
  RowStrides ld{};
  bool want_dx = true, want_dw = true, want_db = true;
};
class LinearBackwardRun : public CaseRun {
 public:
  LinearBackwardRun(Backend& backend, const LinearBackwardParams& p, uint32_t seed);
  void run() override;
  std::vector<CaseOutput> outputs() override;
  Backend& backend;
  LinearBackwardParams p;
  int ldx, ldy;  // the row strides in use (in, out when packed)
  BackendBuffer<float> x, w, y, dy, dx, dw, db;
};

// ---- the tables --------------------------------------------------------------------------

// The CUDA-vs-CPU test cases of `op`: op_checks' shapes (edge sizes, the model's layers)
// times the op's flags. emulated: leave out the linear shapes too slow for the CUDA
// emulation (the partial-tile shapes that stay cover the same code paths).
std::vector<OpCase> op_test_cases(Op op, bool emulated);

// One linear layer as the training step runs it: G's layers see `batch` rows, D's layers see
// 2 x batch (real and fake in one pass), as do T (minibatch discrimination) and the logit.
struct LayerShape {
  std::string name;  // model.h's gan_layers names: "G.fc0", ..., "D.fc0", ..., "D.mbd", "D.out"
  int rows = 0, in = 0, out = 0;
  bool bias = true;
  int act = 0;  // Activation as int: 0 none, 1 LeakyReLU, 2 tanh (backend.h's order)
};
std::vector<LayerShape> model_layer_shapes(const ModelShape& shape, int batch);

// The benchmark's cases at one batch: every op call of one training step at the model's
// shapes, in step order: per layer linear_forward, linear_backward and (with an activation)
// activation_backward; minibatch discrimination forward and backward (when on); BCE; the
// logit layer with its loss; Adam over G's and D's parameters.
std::vector<OpCase> op_bench_cases(const ModelShape& shape, int batch);

// Every output of `got` against `want` (the same case's reference outputs) at op's tolerance:
// "" when all pass, else the failure text of the first that fails (check_close's: count,
// worst element, first mismatches). max_abs_error (may be nullptr) is raised to the largest
// |got - want| seen. tf32: the GEMM ran on TF32 tensor cores (a benchmark comparator).
std::string compare_case_outputs(const OpCase& c, const std::vector<CaseOutput>& got,
                                 const std::vector<CaseOutput>& want, double* max_abs_error,
                                 bool tf32 = false);

// Makes and runs `c` on both backends and compares (compare_case_outputs).
std::string check_case(const OpCase& c, Backend& reference, Backend& candidate,
                       double* max_abs_error = nullptr);

}  // namespace mnistgan
