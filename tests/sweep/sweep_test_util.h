// sweep_test_util.h: what the sweep tests share: a tiny synthetic dataset with both splits,
// an (untrained, seeded) feature classifier so evaluations are cheap and deterministic, a
// tiny grid file, and comparisons of two runs' outputs.
//
//   sweep_data_dir()           512 train + 200 test synthetic 28x28 images of 10 classes
//   sweep_classifier()         a classifier file with seeded initial weights
//   tiny_train_flags()         the fixed train flags of the tests' grids (12 steps, a final
//                              evaluation of 50 samples, checkpoints every 4)
//   write_grid(dir, json)      writes dir/grid.json
//   expect_same_run(a, b)      two run folders: latest checkpoints bitwise equal (header too,
//                              but for config.out_dir), same grids, same eval.json figures
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/backend.h"
#include "eval/classifier.h"
#include "eval/eval_test_util.h"  // synthetic_split
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/idx.h"
#include "run_test_util.h"

namespace mnistgan {
namespace sweeptest {

namespace fs = std::filesystem;

inline fs::path sweep_data_dir() {
  static const fs::path dir = [] {
    const fs::path d = runtest::fresh_dir("sweep_data");
    const MnistSplit train = evaltest::synthetic_split(512, 11);
    const MnistSplit test = evaltest::synthetic_split(200, 12);
    write_idx_images((d / "train-images-idx3-ubyte").string(), train.images);
    write_idx_labels((d / "train-labels-idx1-ubyte").string(), train.labels);
    write_idx_images((d / "t10k-images-idx3-ubyte").string(), test.images);
    write_idx_labels((d / "t10k-labels-idx1-ubyte").string(), test.labels);
    return d;
  }();
  return dir;
}

// Evaluations only need a fixed feature map to be deterministic; untrained weights keep the
// tests fast (the figures mean little, the ranking and the plumbing are what is tested).
inline fs::path sweep_classifier() {
  static const fs::path path = [] {
    const fs::path p = runtest::fresh_dir("sweep_classifier") / "classifier.bin";
    std::unique_ptr<Backend> backend = make_cpu_backend();
    Classifier classifier(*backend, 256);
    classifier.init_params(3);
    ClassifierInfo info;
    info.seed = 3;
    save_classifier(p.string(), classifier, info);
    return p;
  }();
  return path;
}

inline nlohmann::ordered_json tiny_train_flags() {
  return {{"data", sweep_data_dir().string()},
          {"batch-size", 32},
          {"hidden-g", {32, 64}},
          {"hidden-d", {64, 32}},
          {"mbd-kernels", 5},
          {"mbd-dims", 3},
          {"steps", 12},
          {"log-every", 4},
          {"checkpoint-every", 4},
          {"eval-samples", 50},
          {"classifier", sweep_classifier().string()}};
}

inline fs::path write_grid(const fs::path& dir, const nlohmann::ordered_json& grid) {
  const fs::path path = dir / "grid.json";
  write_file_atomic(path.string(), grid.dump(2) + "\n");
  return path;
}

inline std::string file_bytes(const fs::path& path) { return read_file(path.string(), 1 << 28); }

inline void expect_same_run(const fs::path& want_dir, const fs::path& got_dir) {
  SCOPED_TRACE(want_dir.string() + " vs " + got_dir.string());
  const Checkpoint want = load_checkpoint((want_dir / "latest.ckpt").string());
  const Checkpoint got = load_checkpoint((got_dir / "latest.ckpt").string());
  nlohmann::json want_header = want.header, got_header = got.header;
  want_header["config"].erase("out_dir");
  got_header["config"].erase("out_dir");
  EXPECT_EQ(want_header, got_header);
  runtest::same_tensors(want, got, got_dir.string());
  // The grids of every step are the same images (and PNG bytes, metadata included).
  for (const auto& entry : fs::directory_iterator(want_dir / "samples")) {
    const fs::path other = got_dir / "samples" / entry.path().filename();
    ASSERT_TRUE(fs::exists(other)) << other;
    EXPECT_EQ(file_bytes(entry.path()), file_bytes(other)) << other;
  }
  if (fs::exists(want_dir / "eval.json")) {
    nlohmann::json a = nlohmann::json::parse(file_bytes(want_dir / "eval.json"));
    nlohmann::json b = nlohmann::json::parse(file_bytes(got_dir / "eval.json"));
    EXPECT_EQ(a.at("model"), b.at("model"));
    EXPECT_EQ(a.at("floor"), b.at("floor"));
    EXPECT_EQ(a.at("step"), b.at("step"));
  }
}

}  // namespace sweeptest
}  // namespace mnistgan
