// bench_main.cpp: mnistgan_bench, the benchmark program (also run as `mnistgan bench`).
// Its own executable so that only it links cuDNN and cuBLASLt, the comparators it times.
//   mnistgan_bench --device cuda --json bench.json
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "bench/bench.h"
#include "cli/flags.h"

int main(int argc, char** argv) {
  using namespace mnistgan;
  CLI::App app{"mnistgan bench: kernel and end-to-end throughput (table on stdout, --json for a file)",
               "mnistgan bench"};
  BenchOptions bench_options;
  add_device_flag(app, bench_options.device);
  app.add_option("--batches", bench_options.batches, "batch sizes, e.g. 64,256,1024")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--repeats", bench_options.repeats,
                    "timed runs per kernel (default: 50 on cuda, 10 on cpu)");
  app.add_option("--warmup", bench_options.warmup,
                    "untimed runs first (default: 10 on cuda, 2 on cpu)");
  app.add_option("--e2e-steps", bench_options.e2e_steps,
                    "timed training steps per end-to-end row (default: 500 on cuda, 20 on cpu)");
  app.add_option("--json", bench_options.json_path, "also write the results as JSON here");
  app.add_option("--seed", bench_options.seed, "seed of the end-to-end runs' weights and data")
      ->capture_default_str();
  app.add_flag("--kernels-only", bench_options.kernels_only, "skip the end-to-end runs");
  app.add_flag("--e2e-only", bench_options.e2e_only, "skip the ceilings and kernels");
  app.add_option("--sweep-runs", bench_options.sweep_runs,
                 "runs N of each sweep row (lock-step vs one after another), e.g. 1,8,32,64")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--sweep-steps", bench_options.sweep_steps,
                 "timed steps of every run in the sweep rows (default: 100 on cuda, 3 on cpu)");
  app.add_flag("--sweep-only", bench_options.sweep_only, "only the sweep rows");


  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run_bench(bench_options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nmnistgan: error: %s\n", e.what());
    return 1;
  }
}
