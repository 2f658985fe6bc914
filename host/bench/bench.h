// bench.h: `mnistgan bench`, kernel and end-to-end throughput on the CPU or a CUDA device.
//
// What it measures (README "mnistgan bench" has the full story):
//   ceilings    measured in the same run: a large copy (GB/s, bytes read + written) and a
//               large SGEMM (GFLOP/s; on CUDA also TF32), so each row can say how close it
//               comes to what this machine can do;
//   kernels     every op of the training step at the model's layer shapes for each batch
//               (bench/op_cases.h's op_bench_cases, the cases the CUDA op tests run at small
//               shapes): median time over --repeats after --warmup, GFLOP/s, GB/s and the
//               fraction of the roofline (max(flops / peak flops, bytes / peak bandwidth) /
//               time). On CUDA every kernel version and library comparator is checked against
//               the CPU backend's run of the same case before it is timed and marked FAILED on
//               a mismatch;
//   end to end  steps/s and images/s of TrainingState::step on synthetic data at each batch,
//               with and without minibatch discrimination (and, on CUDA, the CUDA graph);
//   sweep       GAN-steps/s (runs x steps / s) of N runs of batch 64 with minibatch
//               discrimination stepped as `mnistgan sweep` steps a group (RunGroup::step,
//               lock-step), against the same N runs trained one after another.
//
// This header and bench.cpp are plain C++ (they build without CUDA): options, statistics,
// flop/byte counts, the table and the JSON. bench_cuda.cu measures on the device and fills
// the same structures; bench_cuda_stub.cpp stands in for it in CPU-only builds.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config.h"     // ModelShape
#include "bench/op_cases.h"  // OpCase, LayerShape, model_layer_shapes
#include "core/op_checks.h"  // WorkCount and the work counts of every op

namespace mnistgan {

// ---- options -------------------------------------------------------------------------------

struct BenchOptions {
  std::string device = "auto";              // --device: cpu | cuda | auto
  std::vector<int> batches{64, 256, 1024};  // --batches: comma-separated batch sizes
  int repeats = -1;                         // --repeats: timed runs per kernel (-1: device default)
  int warmup = -1;                          // --warmup: untimed runs first (-1: device default)
  int64_t e2e_steps = -1;                   // --e2e-steps: timed training steps (-1: default)
  std::string json_path;                    // --json: also write the results here (atomically)
  bool kernels_only = false;                // --kernels-only: skip the end-to-end runs
  bool e2e_only = false;                    // --e2e-only: skip the ceilings and kernels
  std::vector<int> sweep_runs{1, 8, 32, 64};  // --sweep-runs: N of each sweep row
  int64_t sweep_steps = -1;  // --sweep-steps: timed steps of every run (-1: device default)
  bool sweep_only = false;   // --sweep-only: only the sweep rows
  uint64_t seed = 1;  // --seed: end-to-end weights and data (kernel inputs use fixed seeds)

  // Throws std::invalid_argument naming the flag when a value is out of range.
  void validate() const;
  // A copy with every -1 replaced by the default for the device ("cpu" or "cuda"):
  //   cuda: 50 repeats (the minimum), 10 warm-up, 500 e2e steps;
  //   cpu:  10 repeats, 2 warm-up, 20 e2e steps (a 2-core machine needs ~1 s per step at
  //         batch 1024 with minibatch discrimination);
  //   sweep steps: 100 on cuda, 3 on cpu (64 runs x 3 steps, twice, take about a minute).
  BenchOptions resolved_for(const std::string& backend) const;
};

// ---- statistics ----------------------------------------------------------------------------

// Median of the values (the mean of the two middle ones for an even count). Throws
// std::invalid_argument on an empty vector.
double median(std::vector<double> values);
// p-th percentile, p in [0, 100], linear interpolation between closest ranks (numpy's
// default). Throws std::invalid_argument on an empty vector or p outside [0, 100].
double percentile(std::vector<double> values, double p);

// ---- shapes and work counts ----------------------------------------------------------------

// Fraction of the roofline a measured time reaches: the faster of the compute and the memory
// bound divided by the time, so 1.0 means as fast as this machine's ceilings allow. Returns 0
// when the time or both ceilings are unknown (<= 0).
double roofline_fraction(const WorkCount& work, double seconds, double peak_flops_per_s,
                         double peak_bytes_per_s);

// ---- results -------------------------------------------------------------------------------

struct BenchCeilings {
  double copy_bytes_per_s = 0;                // large copy, bytes read + written per second
  double sgemm_flops_per_s = 0;               // large FP32 SGEMM
  double tf32_flops_per_s = 0;                // large TF32 GEMM (CUDA only; 0 elsewhere)
  std::string copy_how, sgemm_how, tf32_how;  // what was timed, e.g. "cudaMemcpy D2D 1 GiB"
};

struct KernelRow {
  std::string kernel;   // "linear_forward", "linear_backward", "mbd_forward", "adam", ...
  std::string variant;  // "cpu", "v1 (cuBLAS SGEMM + bias/act kernel)", "v2", "cublasLt", ...
  std::string layer;    // "G.fc0", "D.mbd", "G.params", ...
  int batch = 0;
  int rows = 0, in = 0, out = 0;  // the op's shape (see kernel_shape_text)
  WorkCount work;
  bool tf32 = false;            // compare against the TF32 ceiling instead of SGEMM's
  std::vector<double> seconds;  // every timed repeat
  // "ok", "reference" (the CPU backend is its own reference), "FAILED: <why>",
  // "skipped: <why>" (e.g. cuDNN found no engine), each ending up in the table and JSON.
  std::string status = "ok";
  double max_abs_error = 0;  // against the CPU reference (0 when not checked)
};

struct E2eRow {
  int batch = 0;
  bool mbd = true;
  std::string cuda_graph;  // "on", "off" or "n/a" (the CPU backend has no graphs)
  int64_t steps = 0;
  double seconds = 0;
  // Work items of one step: the captured graph's node count (kernels, memsets, copies) with
  // the CUDA graph on; -1 without a graph.
  int64_t kernels_per_step = -1;
  std::string status = "ok";
  double steps_per_s() const { return seconds > 0 ? steps / seconds : 0; }
  double images_per_s() const { return steps_per_s() * batch; }
};

// One sweep row: N runs, each `steps` timed steps, in lock-step and one after another.
struct SweepBenchRow {
  int runs = 0;
  int batch = 64;
  int64_t steps = 0;                 // timed steps of every run, in each of the two modes
  double lockstep_seconds = 0;       // RunGroup::step, `steps` times
  double sequential_seconds = 0;     // run 1's steps, then run 2's, ...
  std::string status = "ok";
  double lockstep_gan_steps_per_s() const {
    return lockstep_seconds > 0 ? runs * steps / lockstep_seconds : 0;
  }
  double sequential_gan_steps_per_s() const {
    return sequential_seconds > 0 ? runs * steps / sequential_seconds : 0;
  }
};

struct BenchReport {
  nlohmann::json device;      // "backend", "name", and per backend: cpu_model / driver, runtime
  BenchOptions settings;      // resolved
  std::string date_utc;       // ISO 8601
  std::string commit;         // git commit, or "unknown"
  std::string commit_source;  // "build" (recorded when the binary was built) or "none"
  BenchCeilings ceilings;
  std::vector<KernelRow> kernels;
  std::vector<E2eRow> e2e;
  std::vector<SweepBenchRow> sweep;
};

// A row for `c` at `batch`: its kernel, layer, shape and work (variant, times and status are
// the caller's).
KernelRow case_row(const OpCase& c, int batch);

// The shape column: "rows x in x out" for GEMMs, "rows x K x C" for minibatch
// discrimination, "rows x cols" for elementwise ops on a matrix, "n=<count>" for flat ones.
std::string kernel_shape_text(const KernelRow& row);

// The whole report as JSON (schema "mnistgan-bench/1"; README lists the keys).
nlohmann::json bench_report_json(const BenchReport& report);
// The human-readable tables printed on stdout.
std::string format_bench_report(const BenchReport& report);

// Current UTC time as "2026-12-01T20:15:00Z".
std::string utc_now_iso8601();
// The commit this binary was built from, recorded by the build (cmake/build_commit.cmake
// runs `git rev-parse HEAD` at every build; "-dirty" when tracked files differed). Returns
// {commit, "build"}, or {"unknown", "none"} for a build outside a git checkout.
std::pair<std::string, std::string> source_commit();
// "model name" from /proc/cpuinfo, or the machine type.
std::string cpu_model_name();

// ---- running -------------------------------------------------------------------------------

// n uniform floats in [lo, hi) from std::mt19937(seed): the kernel inputs of both halves.
std::vector<float> bench_random(size_t n, uint32_t seed, float lo, float hi);

// Measures on the CUDA device: fills report.device, report.ceilings and report.kernels (every
// kernel checked against the CPU backend first). Implemented in bench_cuda.cu; the stub in a
// CPU-only build throws std::runtime_error saying the build has no CUDA.
void run_cuda_kernel_bench(const BenchOptions& resolved, const ModelShape& shape,
                           BenchReport& report);

// The whole `mnistgan bench`: picks the backend, runs what the options ask, prints the
// tables, writes --json. Returns the exit code (0, or 4 when any row FAILED). Throws
// std::invalid_argument / std::runtime_error with a one-line message naming the flag.
int run_bench(const BenchOptions& options);

}  // namespace mnistgan
