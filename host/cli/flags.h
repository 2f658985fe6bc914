// flags.h: flags that several commands share (train, toy, eval, classifier, sample, bench),
// so each has one help text and one spelling.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace mnistgan {

struct TrainConfig;  // core/config.h

// --device on a subcommand, with the help text every command shows; the value is checked by
// validate_device_flag (backend.h) in the command's validate().
void add_device_flag(CLI::App& cmd, std::string& device);
// The flags `train` and `toy` share, with the same help text: --lr, --lr-d, --lr-g, --b1,
// --b2 (checked by validate_adam_flags, config.h) ...
void add_adam_flags(CLI::App& cmd, float& lr, float& lr_d, float& lr_g, float& beta1, float& beta2);
// ... and --mbd-kernels, --mbd-dims (checked by validate_mbd_flags, config.h).
void add_mbd_flags(CLI::App& cmd, int& kernels, int& dims);
// Every flag of `mnistgan train`, one per TrainConfig field (README's flag table); the
// values are range-checked by TrainConfig::validate(). `mnistgan sweep` parses its grid
// file's keys with the same flags.
void add_train_flags(CLI::App& cmd, TrainConfig& config);

}  // namespace mnistgan
