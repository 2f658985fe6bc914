// flags.cpp: the command-line flags several commands share, with one help text each.
#include "cli/flags.h"

#include <CLI/CLI.hpp>

namespace mnistgan {

void add_device_flag(CLI::App& cmd, std::string& device) {
  cmd.add_option("--device", device, "cpu, cuda or auto")->capture_default_str();
}

void add_adam_flags(CLI::App& cmd, float& lr, float& lr_d, float& lr_g, float& beta1,
                    float& beta2) {
  cmd.add_option("--lr", lr, "Adam learning rate of both networks")->capture_default_str();
  cmd.add_option("--lr-d", lr_d, "discriminator learning rate (default: --lr)");
  cmd.add_option("--lr-g", lr_g, "generator learning rate (default: --lr)");
  cmd.add_option("--b1", beta1, "Adam beta1")->capture_default_str();
  cmd.add_option("--b2", beta2, "Adam beta2")->capture_default_str();
}

void add_mbd_flags(CLI::App& cmd, int& kernels, int& dims) {
  cmd.add_option("--mbd-kernels", kernels, "minibatch-discrimination kernels (0: off)")
      ->capture_default_str();
  cmd.add_option("--mbd-dims", dims, "minibatch-discrimination dims per kernel")
      ->capture_default_str();
}

}  // namespace mnistgan
