// cli.h: the `mnistgan` command line (CLI11): subcommands train and sample.
#pragma once

namespace mnistgan {

// Parses argv and runs the subcommand; returns the process exit code. Every error ends in
// one line on stderr naming the file or flag at fault and a non-zero code.
int run_cli(int argc, char** argv);

}  // namespace mnistgan
