// disk_space.cpp: see disk_space.h.
#include "train/disk_space.h"

#include <signal.h>       // kill
#include <sys/statvfs.h>  // statvfs

#include <algorithm>     // std::max
#include <cerrno>        // errno
#include <cstdio>        // std::snprintf
#include <cstdlib>       // std::strtol
#include <cstring>       // std::strerror
#include <filesystem>    // directory_iterator, file_size
#include <system_error>  // std::error_code
#include <vector>

#include "io/atomic_file.h"  // IoError
#include "model/model.h"     // gan_layers, parameter_count
#include "train/trainer.h"   // TrainingState::kGridImages, kGridPerRow, kGridPadding

namespace mnistgan {

namespace fs = std::filesystem;

namespace {

// The JSON header holds the config, step, RNG and shuffle state: about 1.5 KiB with the
// default flags; 64 KiB leaves room for long paths and hidden-width lists.
constexpr uint64_t kCheckpointHeaderBound = 64 << 10;
// Per tensor: name length, name (at most "D.fc15.weight@adam_m"), rank, two int64 dims.
constexpr uint64_t kTensorRecordBound = 4 + 64 + 4 + 2 * 8;
// A metrics.csv row is about 80 characters; room for columns added later.
constexpr uint64_t kMetricsRowBound = 512;
// The grid layout of Run::write_grid.
constexpr int kGridPerRow = TrainingState::kGridPerRow, kGridPadding = TrainingState::kGridPadding;

// Tensors of `net` in a checkpoint: a weight per layer, and a bias where it has one.
uint64_t tensor_count(const std::vector<LayerSpec>& layers, Net net) {
  uint64_t n = 0;
  for (const LayerSpec& layer : layers)
    if (layer.net == net) n += layer.has_bias ? 2 : 1;
  return n;
}

}  // namespace

uint64_t RunSpaceEstimate::total() const {
  const uint64_t need = checkpoint_bytes * static_cast<uint64_t>(checkpoints_at_once) + grid_bytes +
                        gif_bytes + metrics_bytes;
  return need > reclaimable_bytes ? need - reclaimable_bytes : 0;
}

uint64_t generator_parameter_count(const ModelShape& s) {
  return parameter_count(gan_layers(s), Net::kGenerator);
}

uint64_t model_parameter_count(const ModelShape& s) {
  const std::vector<LayerSpec> layers = gan_layers(s);
  return parameter_count(layers, Net::kGenerator) + parameter_count(layers, Net::kDiscriminator);
}

uint64_t checkpoint_size_bound(const ModelShape& s) {
  const std::vector<LayerSpec> layers = gan_layers(s);
  // Tensors per copy of both networks; G's alone for the EMA generator.
  const uint64_t g_tensors = tensor_count(layers, Net::kGenerator);
  const uint64_t tensors = g_tensors + tensor_count(layers, Net::kDiscriminator);
  // magic, version, header length + header, tensor count, tensors x 3 (params, m, v), G's
  // tensors once more (the EMA generator, counted whether or not the run keeps one), CRC.
  return 8 + 4 + 4 + kCheckpointHeaderBound + 4 +
         3 * (tensors * kTensorRecordBound + 4 * model_parameter_count(s)) +
         g_tensors * kTensorRecordBound + 4 * generator_parameter_count(s) + 4;
}

RunSpaceEstimate estimate_run_space(const TrainConfig& config, int image_rows, int image_cols,
                                    int64_t start_step, int64_t total_steps,
                                    int64_t batches_per_epoch) {
  RunSpaceEstimate e;
  e.checkpoint_bytes = checkpoint_size_bound(model_shape_of(config, image_rows * image_cols));
  e.checkpoints_at_once = static_cast<int64_t>(config.keep_checkpoints) + 1;

  const int64_t remaining = std::max<int64_t>(0, total_steps - start_step);
  const int64_t per_epoch = std::max<int64_t>(1, batches_per_epoch / config.d_steps);
  // Grids: step 0, every epoch end, every --sample-every, the last step (overcounts the
  // overlaps, which is fine for a bound).
  int64_t grids = (start_step == 0 ? 1 : 0) + remaining / per_epoch + 2;
  if (config.sample_every > 0) grids += remaining / config.sample_every + 1;
  const uint64_t grid_w =
      static_cast<uint64_t>(kGridPerRow) * (image_cols + kGridPadding) + kGridPadding;
  const uint64_t grid_h =
      static_cast<uint64_t>(TrainingState::grid_image_count(config) / kGridPerRow) *
          (image_rows + kGridPadding) +
      kGridPadding;
  // A PNG stored without compression is the raw rows plus a filter byte each and chunk
  // overhead; zlib's stored blocks add 5 bytes per 64 KiB.
  const uint64_t raw = grid_w * grid_h;
  const uint64_t png_bound = raw + grid_h + raw / 65535 * 5 + 4096;
  e.grid_bytes = static_cast<uint64_t>(grids) * png_bound;
  // GIF LZW codes are at most 12 bits per pixel: 1.5 bytes per pixel and frame at worst.
  const int64_t frames_at_end = (start_step == 0 ? grids : grids + total_steps / per_epoch + 1);
  e.gif_bytes = 2 * static_cast<uint64_t>(frames_at_end) * (raw * 3 / 2 + 1024);
  const int64_t rows = total_steps / std::max<int64_t>(1, config.log_every) + 2;
  // curves.png and its replacement: at most three 800x300 RGB panels, stored at worst.
  const uint64_t curves_raw = 800ull * 3 * 300 * 3;
  e.metrics_bytes = 2 * static_cast<uint64_t>(rows) * kMetricsRowBound +
                    2 * (curves_raw + 900 + curves_raw / 65535 * 5 + 4096);

  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(config.out_dir) / "checkpoints", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) != 0 || entry.path().extension() != ".ckpt") continue;
    const uintmax_t size = entry.file_size(ec);
    if (!ec) e.reclaimable_bytes += size;
  }
  return e;
}

uint64_t free_disk_bytes(const std::string& dir) {
  struct statvfs info {};
  const std::string path = dir.empty() ? "." : dir;
  if (statvfs(path.c_str(), &info) != 0)
    throw IoError(path + ": cannot read the free disk space (statvfs): " + std::strerror(errno));
  return static_cast<uint64_t>(info.f_bavail) * static_cast<uint64_t>(info.f_frsize);
}

int remove_stale_temp_files(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir.empty() ? "." : dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t tmp = name.rfind(".tmp.");
    if (tmp == std::string::npos) continue;
    // "<pid>.<n>" after ".tmp.", both decimal.
    const std::string suffix = name.substr(tmp + 5);
    const size_t dot = suffix.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == suffix.size() ||
        suffix.find_first_not_of("0123456789.") != std::string::npos)
      continue;
    const long pid = std::strtol(suffix.substr(0, dot).c_str(), nullptr, 10);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)) continue;
    if (fs::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else if (b < 1024.0 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024);
  } else if (b < 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / (1024.0 * 1024));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / (1024.0 * 1024 * 1024));
  }
  return buf;
}

void check_free_space(const std::string& dir, const RunSpaceEstimate& need, uint64_t free_bytes) {
  const uint64_t total = need.total();
  if (total <= free_bytes) return;
  throw IoError((dir.empty() ? std::string(".") : dir) +
                ": not enough free disk space for this run: it needs about " + format_bytes(total) +
                " (" + std::to_string(need.checkpoints_at_once) + " checkpoints of up to " +
                format_bytes(need.checkpoint_bytes) + " + " +
                format_bytes(need.grid_bytes + need.gif_bytes + need.metrics_bytes) +
                " of grids, progress.gif and metrics" +
                (need.reclaimable_bytes > 0 ? " - " + format_bytes(need.reclaimable_bytes) +
                                                  " of old checkpoints it will delete"
                                            : std::string()) +
                ") and " + format_bytes(free_bytes) +
                " is free; free some space, lower --keep-checkpoints (now " +
                std::to_string(need.checkpoints_at_once - 1) + "), or choose another --out");
}

}  // namespace mnistgan
