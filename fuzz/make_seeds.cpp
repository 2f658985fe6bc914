// fuzz_make_seeds DIR: writes the seed corpus of every fuzz target under DIR/<target>/ with
// the project's own writers: valid IDX image and label files (raw, gzip, two gzip members),
// a checkpoint of the fuzz model (fuzz_common.h) after two training steps, and a few broken
// variants of each (truncated, wrong magic, lying header, bad CRC, wrong version).
// scripts/fuzz.sh runs it into the working copy of the corpus, so the valid seeds follow
// format changes; fuzz/corpus/ holds the files it wrote when the corpus was committed.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "core/backend.h"
#include "io/checkpoint.h"
#include "fuzz_common.h"
#include "train/trainer.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

// The bytes write_idx_* puts in a file.
std::string idx_file(const fs::path& scratch, const IdxImages* images,
                     const std::vector<uint8_t>* labels) {
  if (images) write_idx_images(scratch.string(), *images);
  if (labels) write_idx_labels(scratch.string(), *labels);
  std::string bytes = read_file(scratch.string(), size_t{1} << 20);
  fs::remove(scratch);
  return bytes;
}

std::string gz(const std::string& raw, int level = 6) {
  return gzip_member(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), level);
}

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  write_file_atomic((dir / name).string(), bytes);
}

void make_idx_seeds(const fs::path& out) {
  fs::create_directories(out);
  IdxImages images;  // 3 images of 5x4: a non-square size catches swapped rows and cols
  images.count = 3;
  images.rows = 5;
  images.cols = 4;
  for (int i = 0; i < 3 * 5 * 4; ++i) images.pixels.push_back(static_cast<uint8_t>(i * 11));
  const std::vector<uint8_t> labels = {7, 2, 1, 0, 4};
  const std::string raw_images = idx_file(out / "scratch.idx", &images, nullptr);
  const std::string raw_labels = idx_file(out / "scratch.idx", nullptr, &labels);

  const fs::path im = out / "fuzz_idx_images", lb = out / "fuzz_idx_labels";
  put(im, "valid_raw", raw_images);
  put(im, "valid_gzip", gz(raw_images));
  put(im, "valid_gzip_two_members", gz(raw_images.substr(0, 10)) + gz(raw_images.substr(10)));
  put(im, "bad_truncated", raw_images.substr(0, raw_images.size() - 3));
  put(im, "bad_trailing", raw_images + "x");
  put(im, "bad_labels_not_images", raw_labels);
  std::string lying = raw_images;  // count 0xffffffff: must fail before allocating
  lying[4] = lying[5] = lying[6] = lying[7] = '\xff';
  put(im, "bad_huge_count", lying);
  put(im, "bad_huge_count_gzip", gz(lying));
  const std::string zipped = gz(raw_images);
  put(im, "bad_gzip_truncated", zipped.substr(0, zipped.size() - 6));

  put(lb, "valid_raw", raw_labels);
  put(lb, "valid_gzip", gz(raw_labels));
  put(lb, "bad_truncated", raw_labels.substr(0, raw_labels.size() - 1));
  put(lb, "bad_images_not_labels", raw_images);

  // fuzz_idx_gzip takes a mode byte and the uncompressed content.
  const fs::path gzd = out / "fuzz_idx_gzip";
  put(gzd, "images_level6", "\x06" + raw_images);
  put(gzd, "images_two_members_level1", "\x11" + raw_images);
  put(gzd, "labels_level9", "\x09" + raw_labels);
  put(gzd, "images_cut_short", "\x26" + raw_images);
}

void make_checkpoint_seeds(const fs::path& out) {
  std::unique_ptr<Backend> backend = make_cpu_backend();
  TrainingState state(*backend, fuzz_config(), fuzz_images());
  state.initialize();
  state.step();  // two steps, so the Adam moments and step counts are not zero
  state.step();
  const std::string valid = serialize_checkpoint(state.checkpoint());

  const fs::path dir = out / "fuzz_checkpoint";
  put(dir, "valid.ckpt", valid);
  put(dir, "bad_truncated.ckpt", valid.substr(0, valid.size() / 2));
  std::string flipped = valid;
  flipped[flipped.size() / 2] ^= 0x40;
  put(dir, "bad_crc.ckpt", flipped);
  std::string version = valid;
  version[8] = 99;
  put(dir, "bad_version.ckpt", version);
  // Valid CRC, but a tensor of the wrong shape: the restore must name it.
  Checkpoint reshaped = state.checkpoint();
  reshaped.tensors[0].shape = {reshaped.tensors[0].shape.back(), reshaped.tensors[0].shape[0]};
  put(dir, "bad_shape.ckpt", serialize_checkpoint(reshaped));
}

}  // namespace
}  // namespace mnistgan

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  try {
    mnistgan::make_idx_seeds(argv[1]);
    mnistgan::make_checkpoint_seeds(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
