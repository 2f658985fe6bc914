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
  if (n < 1 || n > 4096) throw std::invalid_argument("--n: must be between 1 and 4096");
  if (nrow < 1 || nrow > 4096) throw std::invalid_argument("--nrow: must be between 1 and 4096");
  validate_device_flag(device);
}

const char* generator_label(const Gan& gan) {
  return gan.samples_from_ema() ? "EMA generator" : "raw generator";
}

StoredModel stored_model(const Checkpoint& ck, const std::string& source) {
  if (!ck.header.contains("config")) throw CheckpointError(source + ": header has no model config");
  StoredModel stored;
  from_json(ck.header.at("config"), stored.config);
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

  std::unique_ptr<Backend> backend = make_backend(options.device);
  Gan gan(*backend, model_shape_of(config, rows * cols), options.n, 1);
  restore_model(*backend, gan, ck, options.checkpoint, /*with_optimizer=*/false);
  gan.sample_from_ema(!options.raw_generator);

  const size_t z_count = static_cast<size_t>(options.n) * config.latent_dim;
  std::vector<float> host(static_cast<size_t>(options.n) * rows * cols);
  {
    const BackendBuffer<float> z(*backend, z_count);
    const BackendBuffer<float> images(*backend, host.size());
    backend->gaussian_noise(z.get(), z_count, options.seed, kNoiseStreamSample, nullptr);
    gan.sample_forward(z.get(), images.get(), options.n);
    backend->to_host(host.data(), images.get(), host.size() * sizeof(float));
  }

  write_png(options.out, make_grid(host.data(), options.n, rows, cols, options.nrow, 2),
            {{"Software", "mnistgan"},
             {"seed", std::to_string(options.seed)},
             {"generator", generator_label(gan)},
             {"checkpoint", options.checkpoint}});
  std::fprintf(stderr, "mnistgan: wrote %d samples (step %lld, seed %llu, %s) to %s\n", options.n,
               static_cast<long long>(stored.step), static_cast<unsigned long long>(options.seed),
               generator_label(gan), options.out.c_str());
}

}  // namespace mnistgan
