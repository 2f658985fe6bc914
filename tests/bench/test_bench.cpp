// test_bench.cpp: the host half of `mnistgan bench` (options, statistics, work counts, the
// roofline, the table and the JSON), and the command itself on the CPU with tiny settings.
// The CUDA half (bench_cuda.cu) needs a GPU; its one testable promise here is that
// `--device cuda` without one fails with a message that says so.
#include <gtest/gtest.h>
#include <sys/wait.h>  // WIFEXITED, WEXITSTATUS
#include <unistd.h>    // getpid

#include <cstdio>   // popen
#include <cstdlib>  // std::system
#include <filesystem>
#include <fstream>
#include <functional>  // std::function
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "core/backend.h"
#include "core/config.h"
#include "run_test_util.h"  // fresh_dir, run_command

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

// ---- statistics ------------------------------------------------------------------------------

TEST(BenchStats, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_DOUBLE_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_DOUBLE_EQ(median({7.0}), 7.0);
  EXPECT_THROW(median({}), std::invalid_argument);
}

TEST(BenchStats, PercentileInterpolatesLikeNumpy) {
  const std::vector<double> v{10, 20, 30, 40, 50};  // numpy.percentile(v, p) for each p
  EXPECT_DOUBLE_EQ(percentile(v, 0), 10);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 50);
  EXPECT_DOUBLE_EQ(percentile(v, 25), 20);
  EXPECT_DOUBLE_EQ(percentile(v, 10), 14);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 46);
  EXPECT_DOUBLE_EQ(percentile({40, 10, 30, 20}, 50), 25);  // unsorted input
  EXPECT_THROW(percentile(v, -1), std::invalid_argument);
  EXPECT_THROW(percentile(v, 101), std::invalid_argument);
  EXPECT_THROW(percentile({}, 50), std::invalid_argument);
}

// ---- options -------------------------------------------------------------------------------

// The message of the std::invalid_argument that validate() throws, or "" when it passes.
std::string validation_error(const BenchOptions& o) {
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(BenchOptions, DefaultsAreValidAndResolvePerDevice) {
  const BenchOptions o;
  EXPECT_EQ(validation_error(o), "");
  EXPECT_EQ(o.batches, (std::vector<int>{64, 256, 1024}));
  const BenchOptions cuda = o.resolved_for("cuda");
  EXPECT_EQ(cuda.repeats, 50);  // the issue asks for at least 50 repeats on the GPU
  EXPECT_EQ(cuda.warmup, 10);
  EXPECT_EQ(cuda.e2e_steps, 500);
  EXPECT_EQ(cuda.device, "cuda");
  const BenchOptions cpu = o.resolved_for("cpu");
  EXPECT_EQ(cpu.repeats, 10);
  EXPECT_EQ(cpu.warmup, 2);
  EXPECT_EQ(cpu.e2e_steps, 20);
  BenchOptions explicit_values;
  explicit_values.repeats = 7;
  explicit_values.warmup = 0;
  explicit_values.e2e_steps = 3;
  const BenchOptions kept = explicit_values.resolved_for("cuda");
  EXPECT_EQ(kept.repeats, 7);
  EXPECT_EQ(kept.warmup, 0);
  EXPECT_EQ(kept.e2e_steps, 3);
}

TEST(BenchOptions, EveryBadValueNamesItsFlag) {
  struct Case {
    std::function<void(BenchOptions&)> change;
    std::string flag;
  };
  const std::vector<Case> cases{
      {[](BenchOptions& o) { o.device = "tpu"; }, "--device"},
      {[](BenchOptions& o) { o.batches = {}; }, "--batches"},
      {[](BenchOptions& o) {
         o.batches = {64, 0};
       },
       "--batches"},
      {[](BenchOptions& o) { o.batches = {-3}; }, "--batches"},
      {[](BenchOptions& o) { o.batches = {100000}; }, "--batches"},
      {[](BenchOptions& o) {
         o.batches = {64, 64};
       },
       "--batches"},
      {[](BenchOptions& o) { o.repeats = 0; }, "--repeats"},
      {[](BenchOptions& o) { o.warmup = -2; }, "--warmup"},
      {[](BenchOptions& o) { o.e2e_steps = 0; }, "--e2e-steps"},
      {[](BenchOptions& o) { o.kernels_only = o.e2e_only = true; }, "--kernels-only"},
      {[](BenchOptions& o) { o.sweep_runs = {8, 0}; }, "--sweep-runs"},
      {[](BenchOptions& o) { o.sweep_steps = 0; }, "--sweep-steps"},
      {[](BenchOptions& o) { o.sweep_only = o.e2e_only = true; }, "--sweep-only"},
  };
  for (const Case& c : cases) {
    BenchOptions o;
    c.change(o);
    const std::string error = validation_error(o);
    EXPECT_NE(error.find(c.flag), std::string::npos) << "expected '" << c.flag << "' in: " << error;
  }
}

// ---- shapes and work counts ------------------------------------------------------------------

TEST(BenchShapes, ModelLayersAtTheirRows) {
  const ModelShape shape;  // 100-256-512-1024-784, 784-1024-512-256, MBD 100 x 5
  const std::vector<LayerShape> layers = model_layer_shapes(shape, 64);
  ASSERT_EQ(layers.size(), 9u);
  // model.h's gan_layers names (the checkpoint's tensor prefixes).
  const std::vector<std::string> names{"G.fc0", "G.fc1", "G.fc2", "G.fc3", "D.fc0",
                                       "D.fc1", "D.fc2", "D.mbd", "D.out"};
  const std::vector<int> ins{100, 256, 512, 1024, 784, 1024, 512, 256, 356};
  const std::vector<int> outs{256, 512, 1024, 784, 1024, 512, 256, 500, 1};
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(layers[i].name, names[i]);
    EXPECT_EQ(layers[i].in, ins[i]) << names[i];
    EXPECT_EQ(layers[i].out, outs[i]) << names[i];
    // G runs on the batch; D on real and fake together.
    EXPECT_EQ(layers[i].rows, names[i][0] == 'G' ? 64 : 128) << names[i];
  }
  EXPECT_EQ(layers[3].act, static_cast<int>(Activation::kTanh));
  EXPECT_EQ(layers[0].act, static_cast<int>(Activation::kLeakyRelu));
  EXPECT_FALSE(layers[7].bias);  // T has no bias
  EXPECT_EQ(layers[8].act, static_cast<int>(Activation::kNone));

  ModelShape no_mbd;
  no_mbd.mbd_kernels = 0;
  const std::vector<LayerShape> plain = model_layer_shapes(no_mbd, 8);
  ASSERT_EQ(plain.size(), 8u);
  EXPECT_EQ(plain.back().name, "D.out");
  EXPECT_EQ(plain.back().in, 256);
}

TEST(BenchWork, CountsFollowTheirFormulas) {
  const WorkCount f = linear_forward_work(2, 3, 4, true);
  EXPECT_DOUBLE_EQ(f.flops, 2.0 * 2 * 3 * 4 + 2.0 * 2 * 4);
  EXPECT_DOUBLE_EQ(f.bytes, 4.0 * (2 * 3 + 4 * 3 + 4 + 2 * 4));
  const WorkCount fn = linear_forward_work(2, 3, 4, false);
  EXPECT_DOUBLE_EQ(fn.bytes, 4.0 * (2 * 3 + 4 * 3 + 2 * 4));
  const WorkCount b = linear_backward_work(2, 3, 4, true);
  EXPECT_DOUBLE_EQ(b.flops, 4.0 * 2 * 3 * 4 + 2 * 4);
  EXPECT_DOUBLE_EQ(b.bytes, 4.0 * (2 * (2 * 3) + 2 * (4 * 3) + 2 * 4 + 4));
  // 2 groups of 4 rows: 2 * 4 * 3 ordered pairs, K = 10 kernels of C = 5.
  EXPECT_DOUBLE_EQ(mbd_forward_work(2, 4, 10, 5).flops, 24.0 * 10 * 17);
  EXPECT_DOUBLE_EQ(mbd_forward_work(2, 4, 10, 5).bytes, 4.0 * 8 * 10 * 6);
  EXPECT_DOUBLE_EQ(mbd_backward_work(2, 4, 10, 5).flops, 24.0 * 10 * 28);
  EXPECT_DOUBLE_EQ(adam_work(100).bytes, 2800);
  EXPECT_DOUBLE_EQ(activation_backward_work(10).bytes, 120);
  EXPECT_DOUBLE_EQ(bce_work(10).bytes, 80);
  EXPECT_DOUBLE_EQ(mbd_forward_work(1, 1, 10, 5).flops, 0);  // one row has no pairs
}

TEST(BenchWork, RooflineTakesTheBindingCeiling) {
  const WorkCount w{1e9, 1e6};  // compute-bound at these ceilings
  // 1e9 flops at 1e12 flop/s = 1 ms; 1e6 bytes at 1e12 B/s = 1 us: the bound is 1 ms.
  EXPECT_DOUBLE_EQ(roofline_fraction(w, 2e-3, 1e12, 1e12), 0.5);
  const WorkCount m{1e3, 1e9};  // memory-bound: 1e9 bytes at 1e11 B/s = 10 ms
  EXPECT_DOUBLE_EQ(roofline_fraction(m, 20e-3, 1e12, 1e11), 0.5);
  EXPECT_DOUBLE_EQ(roofline_fraction(m, 20e-3, 1e12, 0), 1e3 / 1e12 / 20e-3);  // no bandwidth
  EXPECT_DOUBLE_EQ(roofline_fraction(m, 0, 1e12, 1e11), 0);
  EXPECT_DOUBLE_EQ(roofline_fraction(m, 1, 0, 0), 0);
}

// ---- the report ------------------------------------------------------------------------------

BenchReport sample_report() {
  BenchReport r;
  r.settings = BenchOptions{}.resolved_for("cpu");
  r.date_utc = "2026-12-01T20:00:00Z";
  r.commit = "abc123";
  r.commit_source = "git";
  r.device = {{"backend", "cpu"}, {"name", "Test CPU"}};
  r.ceilings.copy_bytes_per_s = 10e9;
  r.ceilings.sgemm_flops_per_s = 100e9;
  KernelRow ok;
  ok.kernel = "linear_forward";
  ok.variant = "cpu";
  ok.layer = "G.fc0";
  ok.batch = 64;
  ok.rows = 64, ok.in = 100, ok.out = 256;
  ok.work = linear_forward_work(64, 100, 256, true);
  ok.seconds = {3e-5, 1e-5, 2e-5};
  r.kernels.push_back(ok);
  KernelRow failed = ok;
  failed.variant = "v2";
  failed.status = "FAILED: Y: 3 of 16384 outside tolerance";
  r.kernels.push_back(failed);
  KernelRow skipped = ok;
  skipped.variant = "cudnn";
  skipped.seconds.clear();
  skipped.status = "skipped: no engine";
  r.kernels.push_back(skipped);
  KernelRow adam;
  adam.kernel = "adam";
  adam.layer = "G.params";
  adam.rows = 1000, adam.in = 1, adam.out = 1;
  adam.work = adam_work(1000);
  adam.seconds = {1e-6};
  r.kernels.push_back(adam);
  E2eRow e;
  e.batch = 64;
  e.cuda_graph = "n/a";
  e.steps = 100;
  e.seconds = 4.0;
  r.e2e.push_back(e);
  SweepBenchRow w;
  w.runs = 8;
  w.steps = 5;
  w.lockstep_seconds = 2.0;    // 40 GAN-steps in 2 s: 20 per second
  w.sequential_seconds = 4.0;  // 10 per second
  r.sweep.push_back(w);
  return r;
}

TEST(BenchReport, TableShowsEveryRowAndStatus) {
  const std::string table = format_bench_report(sample_report());
  for (const char* want : {"Test CPU", "abc123", "ceilings", "10.0 GB/s", "100.0 GFLOP/s", "G.fc0",
                           "64x100x256", "20.0", "FAILED: Y: 3 of 16384", "skipped: no engine",
                           "n=1000", "end to end", "25.00", "1600", "lock-step", "20.00", "10.00",
                           "2.00"})
    EXPECT_NE(table.find(want), std::string::npos) << "missing '" << want << "' in:\n" << table;
}

TEST(BenchReport, JsonHasTheSchemaKeysAndDerivedFigures) {
  const nlohmann::json j = bench_report_json(sample_report());
  for (const char* key : {"schema", "date", "commit", "commit_source", "device", "settings",
                          "ceilings", "kernels", "e2e", "sweep"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_DOUBLE_EQ(j["sweep"][0]["lockstep_gan_steps_per_s"].get<double>(), 20.0);
  EXPECT_DOUBLE_EQ(j["sweep"][0]["sequential_gan_steps_per_s"].get<double>(), 10.0);
  EXPECT_EQ(j["sweep"][0]["runs"], 8);
  EXPECT_EQ(j["schema"], "mnistgan-bench/1");
  EXPECT_EQ(j["settings"]["batches"], nlohmann::json({64, 256, 1024}));
  EXPECT_DOUBLE_EQ(j["ceilings"]["copy_gb_per_s"].get<double>(), 10.0);
  const nlohmann::json& k = j["kernels"][0];
  EXPECT_DOUBLE_EQ(k["median_us"].get<double>(), 20.0);
  EXPECT_DOUBLE_EQ(k["gflop_per_s"].get<double>(),
                   linear_forward_work(64, 100, 256, true).flops / 2e-5 / 1e9);
  EXPECT_GT(k["roofline_fraction"].get<double>(), 0.0);
  EXPECT_EQ(j["kernels"][1]["status"], "FAILED: Y: 3 of 16384 outside tolerance");
  EXPECT_FALSE(j["kernels"][2].contains("median_us"));  // a skipped row has no times
  EXPECT_DOUBLE_EQ(j["e2e"][0]["steps_per_s"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(j["e2e"][0]["images_per_s"].get<double>(), 1600.0);
}

TEST(BenchEnvironment, CommitDateAndCpuAreFilledIn) {
  const auto [commit, source] = source_commit();
  EXPECT_FALSE(commit.empty());
  EXPECT_TRUE(source == "build" || source == "none") << source;
  if (source == "none") {
    EXPECT_EQ(commit, "unknown");
  }
  const std::string date = utc_now_iso8601();
  ASSERT_EQ(date.size(), 20u) << date;
  EXPECT_EQ(date[4], '-');
  EXPECT_EQ(date[10], 'T');
  EXPECT_EQ(date.back(), 'Z');
  EXPECT_FALSE(cpu_model_name().empty());
}

// ---- the command -----------------------------------------------------------------------------

// Fresh folders carry this file's prefix; see runtest::fresh_dir.
fs::path fresh_dir(const std::string& name) { return runtest::fresh_dir("bench_" + name); }

TEST(BenchCli, CpuRunWritesJsonWithPositiveFigures) {
  const fs::path dir = fresh_dir("cpu");
  const fs::path json_path = dir / "bench.json";
  const runtest::BinaryResult r = runtest::run_command(
      "bench --device cpu --batches 4,8 --repeats 2 --warmup 0 --e2e-steps 2 "
      "--sweep-runs 1,2 --sweep-steps 1 --json " +
      json_path.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("end to end"), std::string::npos) << r.output;
  std::ifstream in(json_path);
  ASSERT_TRUE(in.good()) << json_path;
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["schema"], "mnistgan-bench/1");
  EXPECT_EQ(j["device"]["backend"], "cpu");
  EXPECT_FALSE(j["device"]["cpu_model"].get<std::string>().empty());
  EXPECT_FALSE(j["commit"].get<std::string>().empty());
  EXPECT_EQ(j["settings"]["batches"], nlohmann::json({4, 8}));
  EXPECT_EQ(j["settings"]["repeats"], 2);
  EXPECT_GT(j["ceilings"]["copy_gb_per_s"].get<double>(), 0);
  EXPECT_GT(j["ceilings"]["sgemm_gflop_per_s"].get<double>(), 0);

  // Every op of the step at both batches, each timed twice with positive rates.
  std::set<std::string> kernels;
  for (const auto& k : j["kernels"]) {
    kernels.insert(k["kernel"].get<std::string>());
    EXPECT_EQ(k["status"], "reference") << k.dump();
    EXPECT_EQ(k["repeats"], 2) << k.dump();
    EXPECT_GT(k["median_us"].get<double>(), 0) << k.dump();
    EXPECT_GT(k["gb_per_s"].get<double>(), 0) << k.dump();
    EXPECT_GT(k["roofline_fraction"].get<double>(), 0) << k.dump();
  }
  for (const char* want : {"linear_forward", "linear_backward", "activation_backward",
                           "mbd_forward", "mbd_backward", "bce_with_logits", "logit_bce", "adam"})
    EXPECT_TRUE(kernels.count(want)) << want;
  // 9 layers x (forward, backward) + 7 activation backwards (G's 4, D's 3 hidden) + 2 MBD +
  // BCE + the logit layer's logit_bce + 2 Adam, per batch (op_bench_cases).
  EXPECT_EQ(j["kernels"].size(), 2u * (18 + 7 + 2 + 1 + 1 + 2));

  // End to end: each batch with and without minibatch discrimination, no graphs on the CPU.
  ASSERT_EQ(j["e2e"].size(), 4u);
  for (const auto& e : j["e2e"]) {
    EXPECT_EQ(e["status"], "ok") << e.dump();
    EXPECT_EQ(e["cuda_graph"], "n/a");
    EXPECT_EQ(e["steps"], 2);
    EXPECT_GT(e["steps_per_s"].get<double>(), 0) << e.dump();
    EXPECT_DOUBLE_EQ(e["images_per_s"].get<double>(),
                     e["steps_per_s"].get<double>() * e["batch"].get<int>());
  }
  EXPECT_TRUE(j["e2e"][0]["mbd"].get<bool>());
  EXPECT_FALSE(j["e2e"][1]["mbd"].get<bool>());

  // The sweep rows: N = 1 and 2 runs of batch 64, each mode timed.
  ASSERT_EQ(j["sweep"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto& w = j["sweep"][i];
    EXPECT_EQ(w["runs"], static_cast<int>(i + 1));
    EXPECT_EQ(w["batch"], 64);
    EXPECT_EQ(w["steps_per_run"], 1);
    EXPECT_EQ(w["status"], "ok");
    EXPECT_GT(w["lockstep_gan_steps_per_s"].get<double>(), 0) << w.dump();
    EXPECT_GT(w["sequential_gan_steps_per_s"].get<double>(), 0) << w.dump();
  }
}

TEST(BenchCli, E2eOnlyAndKernelsOnlySkipTheOtherPart) {
  const fs::path dir = fresh_dir("parts");
  runtest::BinaryResult r = runtest::run_command(
      "bench --device cpu --batches 2 --e2e-steps 1 --warmup 0 --e2e-only --json " +
      (dir / "e2e.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(std::ifstream(dir / "e2e.json"));
  EXPECT_TRUE(j["kernels"].empty());
  EXPECT_EQ(j["e2e"].size(), 2u);
  EXPECT_TRUE(j["sweep"].empty());
  r = runtest::run_command(
      "bench --device cpu --batches 2 --repeats 1 --warmup 0 --kernels-only --json " +
      (dir / "k.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  j = nlohmann::json::parse(std::ifstream(dir / "k.json"));
  EXPECT_FALSE(j["kernels"].empty());
  EXPECT_TRUE(j["e2e"].empty());
  EXPECT_TRUE(j["sweep"].empty());
  r = runtest::run_command("bench --device cpu --warmup 0 --sweep-only --sweep-runs 2 "
                           "--sweep-steps 1 --json " +
                           (dir / "s.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  j = nlohmann::json::parse(std::ifstream(dir / "s.json"));
  EXPECT_TRUE(j["kernels"].empty());
  EXPECT_TRUE(j["e2e"].empty());
  EXPECT_EQ(j["sweep"].size(), 1u);
}

TEST(BenchCli, BadFlagsAndMissingGpuFailWithAReason) {
  runtest::BinaryResult r = runtest::run_command("bench --device cpu --batches 64,0");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--batches"), std::string::npos) << r.output;
  r = runtest::run_command("bench --device cpu --kernels-only --e2e-only");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--e2e-only"), std::string::npos) << r.output;
  r = runtest::run_command("bench --device cpu --batches abc");
  EXPECT_GT(r.code, 100) << r.output;  // CLI11's code for input it cannot parse
  r = runtest::run_command("bench --device cpu --batches 2 --json /proc/no_such_dir/out.json");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("/proc/no_such_dir"), std::string::npos) << r.output;
  if (cuda_unavailable_reason().empty()) GTEST_SKIP() << "a GPU is present";
  r = runtest::run_command("bench --device cuda --batches 2");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--device cpu"), std::string::npos) << r.output;
}

// scripts/compare_results.py (what scripts/compare.sh prints and records) on real CPU results
// from the bench and a hand-written PyTorch sweep whose ratios are known.
TEST(BenchCompareScript, RatiosAndRecordFromCpuResults) {
  if (std::system("python3 -c pass > /dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  const fs::path dir = fresh_dir("compare");
  const runtest::BinaryResult bench = runtest::run_command(
      "bench --device cpu --batches 4 --repeats 1 --warmup 0 --e2e-steps 2 "
      "--sweep-runs 1 --sweep-steps 1 --json " +
      (dir / "ours.json").string());
  ASSERT_EQ(bench.code, 0) << bench.output;
  const nlohmann::json ours = nlohmann::json::parse(std::ifstream(dir / "ours.json"));
  const double ours_mbd = ours["e2e"][0]["steps_per_s"].get<double>();
  ASSERT_TRUE(ours["e2e"][0]["mbd"].get<bool>());
  // Eager at a quarter of our speed, the fastest mode (max-autotune) at half, the graphed
  // mode between them; one mode failed. A row of schema torch-reference/1 (no "mode") is
  // still read by its "compile".
  const nlohmann::json torch_results = {{"schema", "torch-reference/1"},
                                        {"torch_version", "2.5.0"},
                                        {"results",
                                         {{{"compile", "none"},
                                           {"batch", 4},
                                           {"mbd", 100},
                                           {"steps_per_s", ours_mbd / 4},
                                           {"status", "ok"}},
                                          {{"mode", "default"},
                                           {"compile", "default"},
                                           {"batch", 4},
                                           {"mbd", 100},
                                           {"steps_per_s", ours_mbd / 3},
                                           {"status", "ok"}},
                                          {{"mode", "graphed"},
                                           {"compile", "none"},
                                           {"batch", 4},
                                           {"mbd", 100},
                                           {"steps_per_s", ours_mbd / 2.5},
                                           {"status", "ok"}},
                                          {{"mode", "max-autotune"},
                                           {"compile", "max-autotune"},
                                           {"batch", 4},
                                           {"mbd", 100},
                                           {"steps_per_s", ours_mbd / 2},
                                           {"status", "ok"}},
                                          {{"mode", "reduce-overhead"},
                                           {"compile", "reduce-overhead"},
                                           {"batch", 4},
                                           {"mbd", 100},
                                           {"status", "failed: RuntimeError: boom"}}}}};
  std::ofstream(dir / "torch.json") << torch_results.dump();
  const std::string script = testpaths::source_dir() + "/scripts/compare_results.py";
  const std::string args =
      " --ours " + (dir / "ours.json").string() + " --torch " + (dir / "torch.json").string();
  const std::string cmd = "python3 " + script + args + " --allow-cpu --command 'test cmd' --out " +
                          (dir / "record.json").string() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  ASSERT_EQ(pclose(pipe), 0) << output;
  EXPECT_NE(output.find("4.00"), std::string::npos) << output;  // ours / eager
  EXPECT_NE(output.find("2.00"), std::string::npos) << output;  // ours / fastest
  EXPECT_NE(output.find("max-autotune"), std::string::npos) << output;
  EXPECT_NE(output.find("failed: RuntimeError: boom"), std::string::npos) << output;

  const nlohmann::json record = nlohmann::json::parse(std::ifstream(dir / "record.json"));
  EXPECT_EQ(record["schema"], "mnistgan-compare/1");
  EXPECT_EQ(record["command"], "test cmd");
  EXPECT_EQ(record["commit"], ours["commit"]);
  const nlohmann::json& row = record["comparison"][0];
  EXPECT_EQ(row["batch"], 4);
  EXPECT_TRUE(row["mbd"].get<bool>());
  EXPECT_NEAR(row["ours_over_eager"].get<double>(), 4.0, 1e-9);
  EXPECT_NEAR(row["ours_over_fastest"].get<double>(), 2.0, 1e-9);
  EXPECT_EQ(row["torch_fastest_mode"], "max-autotune");
  EXPECT_NEAR(row["torch_eager_steps_per_s"].get<double>(), ours_mbd / 4, 1e-9);
  EXPECT_TRUE(record["comparison"][1]["ours_over_eager"].is_null());  // no torch row, mbd off

  // Without --allow-cpu it refuses CPU results: the record is about a GPU.
  const runtest::BinaryResult refused = [&] {
    runtest::BinaryResult r{-1, ""};
    FILE* p = popen(("python3 " + script + args + " 2>&1").c_str(), "r");
    while (p != nullptr && fgets(buf, sizeof(buf), p) != nullptr) r.output += buf;
    r.code = p != nullptr ? WEXITSTATUS(pclose(p)) : -1;
    return r;
  }();
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("--device cuda"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace mnistgan
