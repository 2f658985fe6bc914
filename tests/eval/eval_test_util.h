// eval_test_util.h: what the evaluation tests share: fresh output folders, a synthetic
// 10-class MNIST stand-in, and a small feature classifier trained once per test process.
//
//   fresh_dir(name)          an empty folder under the test temp dir, named eval_<name>
//   synthetic_split(n, s)    n synthetic 28x28 "digits" of 10 classes, seeded by s
//   trained()                the classifier with its backend and data (real MNIST when
//                            data/mnist has it, else the synthetic split), cached on disk
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "core/backend.h"
#include "eval/classifier.h"
#include "io/idx.h"
#include "run_test_util.h"  // runtest::fresh_dir
#include "test_paths.h"     // testpaths::source_dir

namespace mnistgan {
namespace evaltest {

namespace fs = std::filesystem;

// Fresh folders carry this subsystem's prefix; see runtest::fresh_dir.
inline fs::path fresh_dir(const std::string& name) { return runtest::fresh_dir("eval_" + name); }

// Ten classes of synthetic 28x28 "digits": class c is a bar at column 2 + 2.5c of random
// height, plus noise; a classifier learns them in a fraction of an epoch.
inline MnistSplit synthetic_split(int count, uint32_t seed) {
  MnistSplit s;
  s.images.count = count;
  s.images.rows = s.images.cols = 28;
  s.images.pixels.resize(static_cast<size_t>(count) * 784);
  s.labels.resize(count);
  std::mt19937 gen(seed);
  for (int i = 0; i < count; ++i) {
    const int cls = static_cast<int>(gen() % 10), x0 = 2 + cls * 5 / 2, width = 2;
    const int y0 = 2 + gen() % 8, y1 = 18 + gen() % 8;
    s.labels[i] = static_cast<uint8_t>(cls);
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        const bool on = x >= x0 && x < x0 + width && y >= y0 && y < y1;
        s.images.pixels[static_cast<size_t>(i) * 784 + y * 28 + x] =
            static_cast<uint8_t>(on ? 150 + gen() % 106 : gen() % 40);
      }
  }
  return s;
}

struct TrainedClassifier {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Classifier> classifier;
  MnistSplit train, test;
  bool real_mnist = false;
  double accuracy = 0;
};

// ctest runs every TEST in a process of its own, so the weights are also kept in a file
// under the test temp dir, keyed by the data source and this test binary's build (size and
// modification time): the processes of one ctest run train once, a rebuild trains afresh.
inline fs::path classifier_cache_file(bool real_mnist) {
  const fs::path exe = fs::read_symlink("/proc/self/exe");
  return fs::path(::testing::TempDir()) /
         ("mnistgan_eval_classifier_" + std::string(real_mnist ? "mnist" : "synthetic") + "_" +
          std::to_string(fs::file_size(exe)) + "_" +
          std::to_string(fs::last_write_time(exe).time_since_epoch().count()) + ".bin");
}

// Trained once per test process, for every test that needs it: on 20,000 MNIST images for
// 3 epochs (about 10 s on 2 cores), or on the synthetic set when MNIST is absent.
inline TrainedClassifier& trained() {
  static TrainedClassifier t = [] {
    TrainedClassifier r;
    r.backend = make_cpu_backend();
    const fs::path dir = fs::path(testpaths::source_dir()) / "data" / "mnist";
    try {
      r.train = load_mnist(dir.string(), "train");
      r.test = load_mnist(dir.string(), "t10k");
      r.real_mnist = true;
    } catch (const DataError&) {
      r.train = synthetic_split(6000, 1);
      r.test = synthetic_split(3000, 2);
    }
    r.classifier = std::make_unique<Classifier>(*r.backend, 1000);
    const fs::path cache = classifier_cache_file(r.real_mnist);
    if (fs::exists(cache)) {
      try {
        r.accuracy = load_classifier(cache.string(), *r.classifier).test_accuracy;
        return r;
      } catch (const std::exception&) {
        // Unreadable: train again and replace it.
      }
    }
    r.classifier->init_params(5);
    ClassifierOptions options;
    options.epochs = 3;
    options.train_limit = 20000;
    options.max_shift = 0;
    options.verbose = false;
    options.seed = 5;
    r.accuracy = train_classifier(*r.backend, *r.classifier, r.train, r.test, options);
    ClassifierInfo info;
    info.seed = options.seed;
    info.epochs = options.epochs;
    info.test_accuracy = r.accuracy;
    save_classifier(cache.string(), *r.classifier, info);  // atomic: parallel writers are safe
    return r;
  }();
  return t;
}

}  // namespace evaltest
}  // namespace mnistgan
