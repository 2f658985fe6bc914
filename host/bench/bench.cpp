// bench.cpp: see bench.h. The host half of `mnistgan bench`: options, statistics, work
// counts, the CPU measurements, end-to-end runs on either backend, the table and the JSON.
#include "bench/bench.h"

#include <sys/utsname.h>  // uname (machine type fallback)
#include <unistd.h>       // sysconf (cache sizes)

#include <algorithm>   // std::sort, std::max
#include <chrono>      // std::chrono::steady_clock
#include <cmath>       // std::floor, std::ceil
#include <cstdio>      // std::snprintf, std::printf
#include <cstdlib>     // std::getenv
#include <cstring>     // std::memcpy
#include <ctime>       // std::time, gmtime_r, std::strftime
#include <fstream>     // std::ifstream (/proc/cpuinfo)
#include <functional>  // std::function
#include <memory>      // std::unique_ptr
#include <random>      // std::mt19937
#include <set>         // std::set (duplicate batches)
#include <sstream>     // std::ostringstream
#include <stdexcept>   // std::invalid_argument, std::runtime_error
#include <thread>      // std::thread::hardware_concurrency

#include "build_commit.h"         // kBuildCommit, written at build time (cmake/build_commit.cmake)
#include "core/backend.h"         // Backend, make_backend, Activation
#include "core/backend_buffer.h"  // BackendBuffer
#include "io/atomic_file.h"       // write_file_atomic
#include "io/idx.h"               // IdxImages
#include "sweep/run_group.h"      // RunGroup: the sweep's group step
#include "train/trainer.h"        // TrainingState

namespace mnistgan {

// Largest batch the bench accepts: batch 65536 would already need ~1 GB of activations and
// O(B^2) minibatch discrimination; nobody trains this model there.
constexpr int kBenchMaxBatch = 65536;
// Images in the synthetic end-to-end dataset: MNIST's training-set size, so epoch boundaries
// (a host-side shuffle) come as often as in a real run.
constexpr int kBenchSyntheticImages = 60000;

// ---- options -------------------------------------------------------------------------------

void BenchOptions::validate() const {
  validate_device_flag(device);
  if (batches.empty()) throw std::invalid_argument("--batches: give at least one batch size");
  std::set<int> seen;
  for (int b : batches) {
    if (b < 1 || b > kBenchMaxBatch)
      throw std::invalid_argument("--batches: " + std::to_string(b) + " is out of range; each " +
                                  "batch must be in [1, " + std::to_string(kBenchMaxBatch) + "]");
    if (!seen.insert(b).second)
      throw std::invalid_argument("--batches: " + std::to_string(b) + " is listed twice");
  }
  if (repeats != -1 && repeats < 1)
    throw std::invalid_argument("--repeats: must be >= 1 (the issue's figures use >= 50), got " +
                                std::to_string(repeats));
  if (warmup != -1 && warmup < 0)
    throw std::invalid_argument("--warmup: must be >= 0, got " + std::to_string(warmup));
  if (e2e_steps != -1 && e2e_steps < 1)
    throw std::invalid_argument("--e2e-steps: must be >= 1, got " + std::to_string(e2e_steps));
  if (kernels_only && e2e_only)
    throw std::invalid_argument("--kernels-only and --e2e-only exclude each other; give one");
  if (sweep_only && (kernels_only || e2e_only))
    throw std::invalid_argument("--sweep-only excludes --kernels-only and --e2e-only; give one");
  for (int n : sweep_runs)
    if (n < 1 || n > 1024)
      throw std::invalid_argument("--sweep-runs: every N must be between 1 and 1024, got " +
                                  std::to_string(n));
  if (sweep_steps != -1 && sweep_steps < 1)
    throw std::invalid_argument("--sweep-steps: must be >= 1, got " + std::to_string(sweep_steps));
}

BenchOptions BenchOptions::resolved_for(const std::string& backend) const {
  BenchOptions r = *this;
  const bool cuda = backend == "cuda";
  if (r.repeats < 0) r.repeats = cuda ? 50 : 10;
  if (r.warmup < 0) r.warmup = cuda ? 10 : 2;
  if (r.e2e_steps < 0) r.e2e_steps = cuda ? 500 : 20;
  if (r.sweep_steps < 0) r.sweep_steps = cuda ? 100 : 3;
  r.device = backend;
  return r;
}

// ---- statistics ----------------------------------------------------------------------------

double median(std::vector<double> values) { return percentile(std::move(values), 50.0); }

double percentile(std::vector<double> values, double p) {
  if (values.empty()) throw std::invalid_argument("percentile: no values");
  if (!(p >= 0.0 && p <= 100.0))
    throw std::invalid_argument("percentile: p must be in [0, 100], got " + std::to_string(p));
  std::sort(values.begin(), values.end());
  // Rank in [0, n-1]; the value between the two closest ranks, linearly (numpy "linear").
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = static_cast<size_t>(std::ceil(rank));
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

// ---- shapes and work counts ----------------------------------------------------------------

double roofline_fraction(const WorkCount& work, double seconds, double peak_flops_per_s,
                         double peak_bytes_per_s) {
  if (seconds <= 0) return 0;
  double bound = 0;  // the least time the ceilings allow
  if (peak_flops_per_s > 0) bound = std::max(bound, work.flops / peak_flops_per_s);
  if (peak_bytes_per_s > 0) bound = std::max(bound, work.bytes / peak_bytes_per_s);
  return bound / seconds;
}

// ---- environment ---------------------------------------------------------------------------

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::pair<std::string, std::string> source_commit() {
  const std::string commit = kBuildCommit;
  if (commit.empty()) return {"unknown", "none"};
  return {commit, "build"};
}

std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(" \t"));
        return name;
      }
    }
  }
  utsname u{};
  return uname(&u) == 0 ? std::string(u.machine) : std::string("unknown");
}

// ---- report: JSON and table ----------------------------------------------------------------

namespace {

double peak_flops_for(const KernelRow& row, const BenchCeilings& c) {
  return row.tf32 && c.tf32_flops_per_s > 0 ? c.tf32_flops_per_s : c.sgemm_flops_per_s;
}

bool row_has_times(const KernelRow& row) { return !row.seconds.empty(); }

}  // namespace

KernelRow case_row(const OpCase& c, int batch) {
  KernelRow row;
  row.kernel = c.kernel;
  row.layer = c.layer;
  row.batch = batch;
  row.rows = c.rows, row.in = c.in, row.out = c.out;
  row.work = c.work;
  return row;
}

std::string kernel_shape_text(const KernelRow& k) {
  const std::string r = std::to_string(k.rows), i = std::to_string(k.in), o = std::to_string(k.out);
  if (k.kernel.rfind("linear", 0) == 0 || k.kernel.rfind("mbd", 0) == 0)
    return r + "x" + i + "x" + o;  // GEMM: rows x in x out; MBD: rows x K x C
  if (k.in == 1 && k.out == 1) return "n=" + r;
  return r + "x" + i;
}

nlohmann::json bench_report_json(const BenchReport& r) {
  using nlohmann::json;
  json j;
  j["schema"] = "mnistgan-bench/1";
  j["tool"] = "mnistgan bench";
  j["date"] = r.date_utc;
  j["commit"] = r.commit;
  j["commit_source"] = r.commit_source;
  j["device"] = r.device;
  const BenchOptions& s = r.settings;
  j["settings"] = {{"device", s.device},
                   {"batches", s.batches},
                   {"repeats", s.repeats},
                   {"warmup", s.warmup},
                   {"e2e_steps", s.e2e_steps},
                   {"kernels", !s.e2e_only && !s.sweep_only},
                   {"e2e", !s.kernels_only && !s.sweep_only},
                   {"seed", s.seed},
                   {"sweep_runs", s.sweep_runs},
                   {"sweep_steps", s.sweep_steps}};
  const BenchCeilings& c = r.ceilings;
  j["ceilings"] = {{"copy_gb_per_s", c.copy_bytes_per_s / 1e9},
                   {"sgemm_gflop_per_s", c.sgemm_flops_per_s / 1e9},
                   {"tf32_gflop_per_s", c.tf32_flops_per_s / 1e9},
                   {"copy", c.copy_how},
                   {"sgemm", c.sgemm_how},
                   {"tf32", c.tf32_how}};
  j["kernels"] = json::array();
  for (const KernelRow& k : r.kernels) {
    json row = {{"kernel", k.kernel},
                {"variant", k.variant},
                {"layer", k.layer},
                {"batch", k.batch},
                {"rows", k.rows},
                {"in", k.in},
                {"out", k.out},
                {"flops", k.work.flops},
                {"bytes", k.work.bytes},
                {"tf32", k.tf32},
                {"repeats", k.seconds.size()},
                {"status", k.status},
                {"max_abs_error", k.max_abs_error}};
    if (row_has_times(k)) {
      const double med = median(k.seconds);
      row["median_us"] = med * 1e6;
      row["p10_us"] = percentile(k.seconds, 10) * 1e6;
      row["p90_us"] = percentile(k.seconds, 90) * 1e6;
      row["gflop_per_s"] = k.work.flops / med / 1e9;
      row["gb_per_s"] = k.work.bytes / med / 1e9;
      row["roofline_fraction"] =
          roofline_fraction(k.work, med, peak_flops_for(k, c), c.copy_bytes_per_s);
    }
    j["kernels"].push_back(row);
  }
  j["e2e"] = json::array();
  for (const E2eRow& e : r.e2e) {
    j["e2e"].push_back({{"batch", e.batch},
                        {"mbd", e.mbd},
                        {"cuda_graph", e.cuda_graph},
                        {"steps", e.steps},
                        {"seconds", e.seconds},
                        {"steps_per_s", e.steps_per_s()},
                        {"images_per_s", e.images_per_s()},
                        {"kernels_per_step", e.kernels_per_step},
                        {"status", e.status}});
  }
  j["sweep"] = json::array();
  for (const SweepBenchRow& w : r.sweep)
    j["sweep"].push_back({{"runs", w.runs},
                          {"batch", w.batch},
                          {"mbd", true},
                          {"steps_per_run", w.steps},
                          {"lockstep_seconds", w.lockstep_seconds},
                          {"sequential_seconds", w.sequential_seconds},
                          {"lockstep_gan_steps_per_s", w.lockstep_gan_steps_per_s()},
                          {"sequential_gan_steps_per_s", w.sequential_gan_steps_per_s()},
                          {"status", w.status}});
  return j;
}

namespace {

std::string fmt(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

// Left-aligned text columns, right-aligned numbers: one row per vector, widths from content.
std::string format_columns(const std::vector<std::vector<std::string>>& rows,
                           const std::vector<bool>& right_align) {
  std::vector<size_t> width(rows.empty() ? 0 : rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
      const std::string pad(width[c] - row[c].size(), ' ');
      const bool right = c < right_align.size() && right_align[c];
      line += (c ? "  " : "") + (right ? pad + row[c] : row[c] + pad);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  }
  return out.str();
}

}  // namespace

std::string format_bench_report(const BenchReport& r) {
  std::ostringstream out;
  const std::string name = r.device.value("name", std::string("?"));
  out << "mnistgan bench: " << r.settings.device << " (" << name << "), commit " << r.commit << ", "
      << r.date_utc << "\n"
      << "settings: batches";
  for (size_t i = 0; i < r.settings.batches.size(); ++i)
    out << (i ? "," : " ") << r.settings.batches[i];
  out << ", repeats " << r.settings.repeats << ", warmup " << r.settings.warmup << ", e2e steps "
      << r.settings.e2e_steps << "\n";

  const BenchCeilings& c = r.ceilings;
  if (c.copy_bytes_per_s > 0 || c.sgemm_flops_per_s > 0) {
    out << "\nceilings (measured in this run)\n";
    std::vector<std::vector<std::string>> rows{{"what", "figure", "how"}};
    rows.push_back({"copy", fmt("%.1f GB/s", c.copy_bytes_per_s / 1e9), c.copy_how});
    rows.push_back({"SGEMM", fmt("%.1f GFLOP/s", c.sgemm_flops_per_s / 1e9), c.sgemm_how});
    if (c.tf32_flops_per_s > 0)
      rows.push_back({"TF32 GEMM", fmt("%.1f GFLOP/s", c.tf32_flops_per_s / 1e9), c.tf32_how});
    out << format_columns(rows, {false, true, false});
  }

  if (!r.kernels.empty()) {
    out << "\nkernels (median over repeats; roofline = max(flops/peak, bytes/bandwidth) / time)\n";
    std::vector<std::vector<std::string>> rows{{"batch", "kernel", "variant", "layer", "shape",
                                                "median us", "GFLOP/s", "GB/s", "roofline",
                                                "status"}};
    for (const KernelRow& k : r.kernels) {
      std::vector<std::string> row{std::to_string(k.batch), k.kernel, k.variant, k.layer,
                                   kernel_shape_text(k)};
      if (row_has_times(k)) {
        const double med = median(k.seconds);
        row.push_back(fmt("%.1f", med * 1e6));
        row.push_back(fmt("%.1f", k.work.flops / med / 1e9));
        row.push_back(fmt("%.1f", k.work.bytes / med / 1e9));
        row.push_back(fmt("%.0f%%", 100.0 * roofline_fraction(k.work, med, peak_flops_for(k, c),
                                                              c.copy_bytes_per_s)));
      } else {
        row.insert(row.end(), {"-", "-", "-", "-"});
      }
      row.push_back(k.status);
      rows.push_back(row);
    }
    out << format_columns(rows, {true, false, false, false, false, true, true, true, true, false});
  }

  if (!r.e2e.empty()) {
    out << "\nend to end (TrainingState::step on synthetic data)\n";
    std::vector<std::vector<std::string>> rows{
        {"batch", "mbd", "cuda graph", "steps", "steps/s", "images/s", "kernels/step", "status"}};
    for (const E2eRow& e : r.e2e)
      rows.push_back(
          {std::to_string(e.batch), e.mbd ? "on" : "off", e.cuda_graph, std::to_string(e.steps),
           fmt("%.2f", e.steps_per_s()), fmt("%.0f", e.images_per_s()),
           e.kernels_per_step >= 0 ? std::to_string(e.kernels_per_step) : "-", e.status});
    out << format_columns(rows, {true, false, false, true, true, true, true, false});
  }
  if (!r.sweep.empty()) {
    out << "\nsweep (N runs of batch 64 with minibatch discrimination: stepped in lock-step as "
           "`mnistgan sweep` steps a group, vs the same runs one after another; GAN-steps/s = "
           "runs x steps / s)\n";
    std::vector<std::vector<std::string>> rows{{"runs", "steps each", "lock-step GAN-steps/s",
                                                "one after another GAN-steps/s", "ratio",
                                                "status"}};
    for (const SweepBenchRow& w : r.sweep)
      rows.push_back(
          {std::to_string(w.runs), std::to_string(w.steps),
           fmt("%.2f", w.lockstep_gan_steps_per_s()), fmt("%.2f", w.sequential_gan_steps_per_s()),
           fmt("%.2f", w.sequential_gan_steps_per_s() > 0
                           ? w.lockstep_gan_steps_per_s() / w.sequential_gan_steps_per_s()
                           : 0),
           w.status});
    out << format_columns(rows, {true, true, true, true, true, false});
  }
  return out.str();
}

// ---- measuring on the CPU backend ----------------------------------------------------------

std::vector<float> bench_random(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Bytes written between timed CPU repeats to evict the last repeat's data from the caches,
// as the GPU side flushes L2: twice the L3 the OS reports, at least 64 MiB (virtual machines
// often report none). Small ops may still run partly from cache (a VM's L3 can be larger
// than it admits), which shows as a roofline fraction above 100%.
size_t cpu_cache_flush_bytes() {
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return std::max<size_t>(size_t{64} << 20, l3 > 0 ? 2 * static_cast<size_t>(l3) : 0);
}

// Runs fn warmup times untimed, then `repeats` times timed one by one (the backend is
// synchronised around each so an asynchronous backend would be timed whole), with the
// caches flushed before each timed run when flush_caches is set.
std::vector<double> time_repeats(Backend& backend, int warmup, int repeats,
                                 const std::function<void()>& fn, bool flush_caches = true) {
  static std::vector<unsigned char> flush(cpu_cache_flush_bytes());
  for (int i = 0; i < warmup; ++i) fn();
  backend.synchronize();
  std::vector<double> seconds;
  seconds.reserve(repeats);
  for (int i = 0; i < repeats; ++i) {
    if (flush_caches) std::memset(flush.data(), i & 0xff, flush.size());
    const auto start = Clock::now();
    fn();
    backend.synchronize();
    seconds.push_back(seconds_since(start));
  }
  return seconds;
}

// The buffers of one benchmark, owned until it ends.
struct Buffers {
  Backend& backend;
  std::vector<BackendBuffer<float>> owned;
  explicit Buffers(Backend& b) : backend(b) {}
  // Filled with uniform values in [lo, hi) (never zero for the default range's sake).
  float* random(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    const std::vector<float> host = bench_random(n, seed, lo, hi);
    float* p = zeros(n);
    if (n != 0) backend.to_backend(p, host.data(), n * sizeof(float));
    return p;
  }
  float* zeros(size_t n) { return owned.emplace_back(backend, n == 0 ? 1 : n).get(); }
};

BenchCeilings measure_cpu_ceilings(Backend& cpu) {
  BenchCeilings c;
  // Copy: 256 MiB, far larger than any cache; bytes read + written.
  constexpr size_t kCopyBytes = 256u << 20;
  std::vector<char> src(kCopyBytes, 1), dst(kCopyBytes, 0);
  std::vector<double> copy_s;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    std::memcpy(dst.data(), src.data(), kCopyBytes);
    copy_s.push_back(seconds_since(start));
  }
  // A ceiling is the best this machine did: the fastest repeat, not the median.
  c.copy_bytes_per_s = 2.0 * kCopyBytes / *std::min_element(copy_s.begin(), copy_s.end());
  c.copy_how = "memcpy 256 MiB, read + write, best of 5";
  // SGEMM: the CPU backend's own GEMM (OpenBLAS when built with it) at 2048^3.
  constexpr int kN = 2048;
  Buffers buf(cpu);
  const float* A = buf.random(static_cast<size_t>(kN) * kN, 11);
  const float* B = buf.random(static_cast<size_t>(kN) * kN, 12);
  float* Y = buf.zeros(static_cast<size_t>(kN) * kN);
  const std::vector<double> gemm_s = time_repeats(
      cpu, 1, 5, [&] { cpu.linear_forward(A, B, nullptr, Y, kN, kN, kN, Activation::kNone, 0.0f); },
      false);
  c.sgemm_flops_per_s = 2.0 * kN * kN * kN / *std::min_element(gemm_s.begin(), gemm_s.end());
  c.sgemm_how = "CPU backend linear_forward 2048x2048x2048, best of 5";
  return c;
}

// Every case of op_bench_cases at every batch, timed on the CPU backend (the reference of
// the CUDA rows, so never checked itself).
void run_cpu_kernel_bench(Backend& cpu, const BenchOptions& o, const ModelShape& shape,
                          BenchReport& report) {
  for (int batch : o.batches) {
    for (const OpCase& c : op_bench_cases(shape, batch)) {
      const std::unique_ptr<CaseRun> run = c.make(cpu);
      KernelRow row = case_row(c, batch);
      row.variant = "cpu";
      row.status = "reference";
      row.seconds = time_repeats(cpu, o.warmup, o.repeats, [&] { run->run(); });
      report.kernels.push_back(std::move(row));
    }
  }
}

// A synthetic dataset of random pixels the size of MNIST's training set.
IdxImages synthetic_images(const ModelShape& shape, uint64_t seed) {
  IdxImages images;
  images.count = kBenchSyntheticImages;
  images.rows = 28;
  images.cols = shape.image_pixels / 28;
  images.pixels.resize(static_cast<size_t>(images.count) * shape.image_pixels);
  std::mt19937 gen(static_cast<uint32_t>(seed));
  for (uint8_t& p : images.pixels) p = static_cast<uint8_t>(gen() & 0xff);
  return images;
}

E2eRow run_e2e(Backend& backend, const BenchOptions& o, const IdxImages& images, int batch,
               bool mbd, const std::string& graph) {
  E2eRow row;
  row.batch = batch;
  row.mbd = mbd;
  row.cuda_graph = graph;
  row.steps = o.e2e_steps;
  TrainConfig config;
  config.batch_size = batch;
  config.mbd_kernels = mbd ? config.mbd_kernels : 0;
  config.cuda_graph = graph == "on";
  config.seed = o.seed;
  config.device = o.device;
  // The PyTorch comparator's model (scripts/torch_reference.py): no dropout in D.
  config.d_dropout = 0.0f;
  TrainingState state(backend, config, images);
  state.initialize();
  for (int i = 0; i < o.warmup; ++i) state.step();  // the first step captures the graph
  backend.synchronize();
  const auto start = Clock::now();
  for (int64_t i = 0; i < o.e2e_steps; ++i) state.step();
  backend.synchronize();
  row.seconds = seconds_since(start);
  if (config.cuda_graph) row.kernels_per_step = backend.captured_nodes();
  const StepStats stats = state.take_stats();
  if (stats.nonfinite > 0)
    row.status =
        "FAILED: " + std::to_string(static_cast<int64_t>(stats.nonfinite)) + " non-finite losses";
  return row;
}

// Images of the sweep rows' synthetic dataset: every run holds its own copy on the backend
// (as every run of a sweep does), so 64 runs of 60,000 would need 3 GB; 4,096 keep it small
// and change nothing per step (a permutation of 4,096 every 64 steps instead of 60,000 every
// 937).
constexpr int kSweepBenchImages = 4096;

// N runs (seeds seed .. seed + N - 1) on one backend, stepped `steps` times in lock-step
// through a RunGroup (one graph for the group on CUDA) and `steps` more times one run after
// another (each run's own graph).
SweepBenchRow run_sweep_bench(const std::string& backend_name, const BenchOptions& o,
                              const ModelShape& shape, int runs) {
  SweepBenchRow row;
  row.runs = runs;
  row.steps = o.sweep_steps;
  IdxImages images = synthetic_images(shape, o.seed);
  images.count = kSweepBenchImages;
  images.pixels.resize(static_cast<size_t>(kSweepBenchImages) * shape.image_pixels);
  const std::unique_ptr<Backend> backend = make_backend(backend_name);
  auto config_of = [&](int i) {
    TrainConfig config;
    config.batch_size = row.batch;
    config.seed = o.seed + i;
    config.device = backend_name;
    return config;
  };
  // As a sweep: equal slabs of one allocation where the backend launches a group's op once.
  const bool slabs = runs > 1 && backend->runs_models_together();
  const size_t slab_bytes = slabs ? TrainingState::slab_bytes(*backend, config_of(0), images) : 0;
  BackendBuffer<uint8_t> arena;
  if (slabs) arena = BackendBuffer<uint8_t>(*backend, slab_bytes * runs);
  std::vector<ModelSlab> slab(runs);
  std::vector<std::unique_ptr<TrainingState>> states;
  RunGroup group;
  for (int i = 0; i < runs; ++i) {
    if (slabs) slab[i] = {arena.get() + i * slab_bytes, slab_bytes};
    states.push_back(std::make_unique<TrainingState>(
        *backend, config_of(i), images, std::vector<uint8_t>{}, slabs ? &slab[i] : nullptr));
    states.back()->initialize();
    group.add(*states.back());
  }
  auto synchronize = [&] { backend->synchronize(); };
  for (int i = 0; i < std::max(o.warmup, 2); ++i) group.step();  // graphs captured at step 2
  synchronize();
  // The two modes alternate in two halves (lock-step, one after another, lock-step, one
  // after another), so a drift of the machine's speed does not favour either.
  const int64_t halves[2] = {row.steps / 2, row.steps - row.steps / 2};
  for (int64_t half : halves) {
    auto start = Clock::now();
    for (int64_t s = 0; s < half; ++s) group.step();
    synchronize();
    row.lockstep_seconds += seconds_since(start);
    start = Clock::now();
    for (auto& state : states)
      for (int64_t s = 0; s < half; ++s) state->step();
    synchronize();
    row.sequential_seconds += seconds_since(start);
  }
  double nonfinite = 0;
  for (auto& state : states) nonfinite += state->take_stats().nonfinite;
  if (nonfinite > 0)
    row.status =
        "FAILED: " + std::to_string(static_cast<int64_t>(nonfinite)) + " non-finite losses";
  return row;
}

}  // namespace

// ---- the command ---------------------------------------------------------------------------

int run_bench(const BenchOptions& options) {
  options.validate();
  const std::string backend_name = resolve_device(options.device);
  if (!options.json_path.empty()) {  // fail now, not after minutes of measuring
    const size_t slash = options.json_path.find_last_of('/');
    ensure_writable_dir(slash == std::string::npos ? "" : options.json_path.substr(0, slash));
  }

  BenchReport report;
  report.settings = options.resolved_for(backend_name);
  report.date_utc = utc_now_iso8601();
  std::tie(report.commit, report.commit_source) = source_commit();
  const BenchOptions& o = report.settings;
  const ModelShape shape = model_shape_of(TrainConfig{}, 784);

  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  report.device = {{"backend", backend_name},
                   {"cpu_model", cpu_model_name()},
                   {"cpu_threads", std::thread::hardware_concurrency()},
                   {"openblas_num_threads", blas_threads ? blas_threads : ""}};
  std::printf("mnistgan bench: measuring on %s ...\n", backend_name.c_str());
  std::fflush(stdout);

  if (backend_name == "cpu") report.device["name"] = report.device["cpu_model"];
  if (!o.e2e_only && !o.sweep_only) {
    if (backend_name == "cuda") {
      run_cuda_kernel_bench(o, shape, report);  // names the device
    } else {
      auto cpu = make_cpu_backend();
      report.ceilings = measure_cpu_ceilings(*cpu);
      run_cpu_kernel_bench(*cpu, o, shape, report);
    }
  }
  if (!o.kernels_only && !o.sweep_only) {
    auto backend = make_backend(backend_name);
    if (!report.device.contains("name")) report.device["name"] = backend->name();
    const IdxImages images = synthetic_images(shape, o.seed);
    const std::vector<std::string> graphs = backend_name == "cuda"
                                                ? std::vector<std::string>{"on", "off"}
                                                : std::vector<std::string>{"n/a"};
    for (int batch : o.batches)
      for (bool mbd : {true, false})
        for (const std::string& graph : graphs)
          report.e2e.push_back(run_e2e(*backend, o, images, batch, mbd, graph));
  }
  if (!o.kernels_only && !o.e2e_only) {
    if (!report.device.contains("name")) report.device["name"] = make_backend(backend_name)->name();
    for (int runs : o.sweep_runs) {
      std::printf("mnistgan bench: sweep of %d runs ...\n", runs);
      std::fflush(stdout);
      report.sweep.push_back(run_sweep_bench(backend_name, o, shape, runs));
    }
  }
  std::fputs(format_bench_report(report).c_str(), stdout);
  if (!o.json_path.empty()) {
    write_file_atomic(o.json_path, bench_report_json(report).dump(2) + "\n");
    std::printf("\nwrote %s\n", o.json_path.c_str());
  }
  bool failed = false;
  for (const KernelRow& k : report.kernels) failed |= k.status.rfind("FAILED", 0) == 0;
  for (const E2eRow& e : report.e2e) failed |= e.status.rfind("FAILED", 0) == 0;
  for (const SweepBenchRow& w : report.sweep) failed |= w.status.rfind("FAILED", 0) == 0;
  if (failed) std::fprintf(stderr, "mnistgan bench: some rows FAILED (see the status column)\n");
  return failed ? 4 : 0;
}

}  // namespace mnistgan
