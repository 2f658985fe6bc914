// sample.cpp: see sample.h.
#include "model/sample.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"  // BackendBuffer
#include "core/config.h"
#include "io/idx.h"  // kIdxMaxSide
#include "io/image_io.h"
#include "model/model.h"
#include "model/model_checkpoint.h"

namespace mnistgan {

void SampleOptions::validate() const {
  if (checkpoint.empty()) throw std::invalid_argument("--checkpoint: required");
  if (out.empty()) throw std::invalid_argument("--out: required");
  if (n < 0 || n > 4096)
    throw std::invalid_argument("--n: must be between 1 and 4096 (0: the default grid)");
  if (nrow < 1 || nrow > 4096) throw std::invalid_argument("--nrow: must be between 1 and 4096");
  if (digit < -1 || digit > 9)
    throw std::invalid_argument("--digit: " + std::to_string(digit) +
                                " is not a digit; expected 0 to 9");
  validate_device_flag(device);
}

std::vector<int32_t> sample_grid_labels(int n, int nrow, int digit) {
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) labels[i] = digit >= 0 ? digit : (i / nrow) % kDigitClasses;
  return labels;
}

const char* generator_label(const Gan& gan) {
  return gan.samples_from_ema() ? "EMA generator" : "raw generator";
}

bool checkpoint_is_conditional(const Checkpoint& ck, const std::string& source) {
  const auto it = ck.header.find("conditional");
  if (it == ck.header.end()) return false;
  if (!it->is_boolean())
    throw CheckpointError(source + ": header field 'conditional' is " + it->dump() +
                          ", not true or false (corrupt or hand-edited checkpoint?)");
  if (!it->get<bool>()) return false;
  const int64_t classes = header_int(ck.header, "classes", kDigitClasses, source);
  if (classes != kDigitClasses)
    throw CheckpointError(source + ": a conditional checkpoint with " + std::to_string(classes) +
                          " classes; this build knows the 10 MNIST digits only");
  return true;
}

StoredModel stored_model(const Checkpoint& ck, const std::string& source) {
  if (!ck.header.contains("config")) throw CheckpointError(source + ": header has no model config");
  StoredModel stored;
  from_json(ck.header.at("config"), stored.config);
  stored.config.conditional = checkpoint_is_conditional(ck, source);
  try {
    stored.config.validate();
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(source + ": the stored config is invalid: " + e.what());
  }
  const int64_t rows = header_int(ck.header, "image_rows", 28, source),
                cols = header_int(ck.header, "image_cols", 28, source);
  if (rows < 1 || cols < 1 || rows > kIdxMaxSide || cols > kIdxMaxSide)
    throw CheckpointError(source + ": image size in the header is out of range");
  stored.rows = static_cast<int>(rows);
  stored.cols = static_cast<int>(cols);
  stored.step = header_int(ck.header, "step", 0, source);
  return stored;
}

void run_sample(const SampleOptions& options) {
  options.validate();
  const Checkpoint ck = load_checkpoint(options.checkpoint);
  const StoredModel stored = stored_model(ck, options.checkpoint);
  const TrainConfig& config = stored.config;
  const int rows = stored.rows, cols = stored.cols;
  if (options.digit >= 0 && !config.conditional)
    throw std::invalid_argument("--digit: " + options.checkpoint +
                                " is an unconditional checkpoint (trained without --conditional), "
                                "so it cannot be asked for a digit; leave out --digit");
  const int n = options.n > 0                             ? options.n
                : config.conditional && options.digit < 0 ? kDigitClasses * options.nrow
                                                          : 64;
  if (n > 4096)
    throw std::invalid_argument("--nrow: 10 rows of " + std::to_string(options.nrow) +
                                " images exceed 4096; lower --nrow or set --n");

  std::unique_ptr<Backend> backend = make_backend(options.device);
  Gan gan(*backend, model_shape_of(config, rows * cols), n, 1);
  restore_model(*backend, gan, ck, options.checkpoint, /*with_optimizer=*/false);
  gan.sample_from_ema(!options.raw_generator);

  const size_t z_count = static_cast<size_t>(n) * config.latent_dim;
  std::vector<float> host(static_cast<size_t>(n) * rows * cols);
  const std::vector<int32_t> asked = config.conditional
                                         ? sample_grid_labels(n, options.nrow, options.digit)
                                         : std::vector<int32_t>{};
  {
    const BackendBuffer<float> z(*backend, z_count);
    const BackendBuffer<float> images(*backend, host.size());
    BackendBuffer<int32_t> labels;
    if (!asked.empty()) {
      labels = BackendBuffer<int32_t>(*backend, asked.size());
      backend->to_backend(labels.get(), asked.data(), labels.bytes());
    }
    backend->gaussian_noise(z.get(), z_count, options.seed, kNoiseStreamSample, nullptr);
    gan.sample_forward(z.get(), images.get(), n, labels.get());
    backend->to_host(host.data(), images.get(), host.size() * sizeof(float));
  }

  PngText text{{"Software", "mnistgan"},
               {"seed", std::to_string(options.seed)},
               {"generator", generator_label(gan)},
               {"checkpoint", options.checkpoint}};
  std::string what = "samples";
  if (config.conditional) {
    const std::string digits =
        options.digit >= 0 ? "digit " + std::to_string(options.digit) : "row r: digit r % 10";
    text.push_back({"digits", digits});
    what += " (" + digits + ")";
  }
  write_png(options.out, make_grid(host.data(), n, rows, cols, options.nrow, 2), text);
  std::fprintf(stderr, "mnistgan: wrote %d %s (step %lld, seed %llu, %s) to %s\n", n, what.c_str(),
               static_cast<long long>(stored.step), static_cast<unsigned long long>(options.seed),
               generator_label(gan), options.out.c_str());
}

}  // namespace mnistgan
