// cli.h: the `mnistgan` command line (CLI11): subcommands train, sweep, sample, eval,
// classifier, toy, and bench (which runs the separate mnistgan_bench program,
// bench/bench_main.cpp).
#pragma once

#include <string>

namespace mnistgan {

// Parses argv and runs the subcommand; returns the process exit code. Every error ends in
// one line on stderr naming the file or flag at fault and a non-zero code.
int run_cli(int argc, char** argv);

}  // namespace mnistgan
