// test_classifier.cpp: the feature classifier and the embedding the evaluation measures in.
// Training returns the final weights' accuracy; with a GPU, features and k-NN radii on CUDA
// match the CPU; and with a small classifier trained here (real MNIST when data/mnist has
// it, a synthetic 10-class set otherwise): real vs real lands near the floor, one class
// gives KL ~ ln 10, noise makes the Frechet distance and precision worse step by step, and
// a saved classifier loads back with its digest checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>  // std::snprintf
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda_test.h"  // CudaTest
#include "eval/classifier.h"
#include "eval/eval.h"
#include "eval/eval_metrics.h"
#include "eval_test_util.h"  // fresh_dir, synthetic_split, trained
#include "io/atomic_file.h"  // IoError
#include "io/checkpoint.h"
#include "io/idx.h"
#include "test_util.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using evaltest::fresh_dir;
using evaltest::synthetic_split;
using evaltest::trained;
using evaltest::TrainedClassifier;
using test::expect_close;
using test::random_vector;

// GPU tests: skipped without a device (tests/cuda_test.h).
using EvalCuda = test::CudaTest;

// The classifier's features and the k-NN distances on the GPU against the CPU: both are
// GEMM-bound, so the tolerances are of a GEMM's size (core/op_checks.h: FP32, K <= 784).
TEST_F(EvalCuda, FeaturesAndRadiiMatchCpu) {
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  Classifier on_cpu(*cpu, 128), on_gpu(*gpu, 128);
  on_cpu.init_params(3);
  on_gpu.init_params(3);
  const int n = 300;  // not a multiple of the 128-row chunks
  const std::vector<float> images = random_vector(static_cast<size_t>(n) * 784, 41);
  const FeatureSet a = embed_images(*cpu, on_cpu, images.data(), n);
  const FeatureSet b = embed_images(*gpu, on_gpu, images.data(), n);
  expect_close(b.features, a.features, 2e-4, 1e-4, "classifier features, cuda vs cpu");
  for (size_t i = 0; i < a.probs.size(); ++i) ASSERT_NEAR(b.probs[i], a.probs[i], 1e-4) << i;
  const auto radii_cpu = knn_radii_squared(*cpu, a.features.data(), n, 256, {3, 5});
  const auto radii_gpu = knn_radii_squared(*gpu, a.features.data(), n, 256, {3, 5});
  for (int k = 0; k < 2; ++k)
    expect_close(radii_gpu[k], radii_cpu[k], 1e-3, 1e-4, "k-NN radii, cuda vs cpu");
}

// Verbose training measures the test accuracy after every epoch and returns the last
// figure it printed instead of measuring the final weights again: the same figure a quiet
// run returns, and the final weights' accuracy.
TEST(ClassifierTraining, VerboseAndQuietReturnTheFinalWeightsAccuracy) {
  auto backend = make_cpu_backend();
  const MnistSplit train = synthetic_split(512, 3), test = synthetic_split(300, 4);
  ClassifierOptions options;
  options.epochs = 2;
  options.batch_size = 64;
  options.seed = 11;
  double accuracy[2] = {-1, -1};
  std::string log;
  for (const bool verbose : {false, true}) {
    Classifier classifier(*backend, 128);
    classifier.init_params(options.seed);
    options.verbose = verbose;
    ::testing::internal::CaptureStderr();
    accuracy[verbose] = train_classifier(*backend, classifier, train, test, options);
    log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(accuracy[verbose], classifier_accuracy(*backend, classifier, test)) << verbose;
  }
  EXPECT_EQ(accuracy[1], accuracy[0]);
  EXPECT_GT(accuracy[1], 0.5);  // two short epochs on the separable synthetic classes
  // The last epoch's line (the verbose run's log) printed the returned figure.
  const size_t last = log.find("epoch 2/2 |");
  ASSERT_NE(last, std::string::npos) << log;
  char printed[32];
  std::snprintf(printed, sizeof(printed), "| test acc %.4f |", accuracy[1]);
  EXPECT_NE(log.find(printed, last), std::string::npos) << log;
}

// ---- with a trained classifier ----------------------------------------------------------

constexpr int64_t kTestSamples = 2000;

TEST(EvalWithClassifier, ShortTrainingIsAccurate) {
  TrainedClassifier& t = trained();
  // 3 epochs on 20,000 images: ~96% on MNIST; the synthetic classes are trivially separable.
  EXPECT_GT(t.accuracy, t.real_mnist ? 0.95 : 0.99);
}

TEST(EvalWithClassifier, RealVersusRealLandsNearTheFloor) {
  TrainedClassifier& t = trained();
  const EvalReference reference(*t.backend, *t.classifier, t.train, t.test, kTestSamples, 1);
  const EvalMetrics& floor = reference.floor();
  // Another random training subset (seeded differently from the floor's) against the same
  // test images.
  std::vector<int> order(t.train.images.count);
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(77));
  std::vector<uint8_t> other_pixels(static_cast<size_t>(kTestSamples) * 784);
  for (int64_t i = 0; i < kTestSamples; ++i)
    std::copy_n(t.train.images.pixels.data() + static_cast<size_t>(order[i]) * 784, 784,
                other_pixels.data() + i * 784);
  const EvalMetrics other = reference.evaluate(
      *t.backend, embed_pixels(*t.backend, *t.classifier, other_pixels.data(), kTestSamples));
  // Both are finite-sample estimates of "no difference": the Frechet distance sits at the
  // sampling bias (a few tenths of the per-feature variance sum), the rest near their ideal.
  EXPECT_LT(other.frechet, 2.0 * floor.frechet + 0.05);
  EXPECT_GT(other.frechet, 0.5 * floor.frechet - 0.05);
  EXPECT_NEAR(other.prdc.precision, floor.prdc.precision, 0.05);
  EXPECT_NEAR(other.prdc.recall, floor.prdc.recall, 0.05);
  EXPECT_NEAR(other.prdc.coverage, floor.prdc.coverage, 0.05);
  EXPECT_NEAR(other.score.mean, floor.score.mean, 0.05 * floor.score.mean);
  EXPECT_EQ(other.histogram.classes_hit, 10);
  EXPECT_EQ(other.histogram.classes_half_share, 10);
  EXPECT_LT(other.histogram.kl_uniform, 0.02);
  EXPECT_GT(floor.prdc.precision, 0.6);
  EXPECT_GT(floor.prdc.recall, 0.6);
  EXPECT_GT(floor.score.mean, 8.0);
}

TEST(EvalWithClassifier, OneClassGivesKlNearLn10) {
  TrainedClassifier& t = trained();
  std::vector<uint8_t> ones;
  int64_t n = 0;
  for (int64_t i = 0; i < t.test.images.count; ++i)
    if (t.test.labels[i] == 1) {
      ones.insert(ones.end(), t.test.images.pixels.begin() + i * 784,
                  t.test.images.pixels.begin() + (i + 1) * 784);
      ++n;
    }
  ASSERT_GE(n, 100);
  const FeatureSet set = embed_pixels(*t.backend, *t.classifier, ones.data(), n);
  const ClassHistogram h = class_histogram(set.probs, n, 10);
  // A few misclassified ones move KL below ln 10 = 2.303 by about their fraction times ln 10.
  EXPECT_GT(h.kl_uniform, std::log(10.0) - 0.15);
  EXPECT_EQ(h.classes_half_share, 1);
  EXPECT_LT(classifier_score(set.probs, n, 10, 10).mean, 1.5);
}

TEST(EvalWithClassifier, NoiseMakesFrechetAndPrecisionWorseStepByStep) {
  TrainedClassifier& t = trained();
  const EvalReference reference(*t.backend, *t.classifier, t.train, t.test, kTestSamples, 1);
  std::mt19937 gen(9);
  std::normal_distribution<float> normal;
  std::vector<float> clean(static_cast<size_t>(kTestSamples) * 784);
  images_to_unit_range(t.train.images.pixels.data(), clean.size(), clean.data());
  std::vector<float> noise(clean.size());
  for (float& e : noise) e = normal(gen);
  double last_frechet = -1, last_precision = 2;
  // Steps that move precision clearly on each data set (synthetic bars on a dark, noisy
  // background lose their realism much sooner than digits).
  const std::vector<float> sigmas = t.real_mnist ? std::vector<float>{0.0f, 0.4f, 0.7f, 1.0f}
                                                 : std::vector<float>{0.0f, 0.05f, 0.1f, 0.2f};
  for (float sigma : sigmas) {
    std::vector<float> noisy(clean.size());
    for (size_t i = 0; i < clean.size(); ++i)
      noisy[i] = std::clamp(clean[i] + sigma * noise[i], -1.0f, 1.0f);
    const EvalMetrics m = reference.evaluate(
        *t.backend, embed_images(*t.backend, *t.classifier, noisy.data(), kTestSamples));
    EXPECT_GT(m.frechet, last_frechet) << "sigma " << sigma;
    EXPECT_LT(m.prdc.precision, last_precision) << "sigma " << sigma;
    last_frechet = m.frechet;
    last_precision = m.prdc.precision;
  }
}

TEST(EvalWithClassifier, SaveAndLoadKeepWeightsAndCheckTheDigest) {
  TrainedClassifier& t = trained();
  const fs::path dir = fresh_dir("classifier");
  const std::string path = (dir / "sub" / "c.bin").string();
  ClassifierInfo info;
  info.seed = 5;
  info.epochs = 2;
  info.test_accuracy = t.accuracy;
  info = save_classifier(path, *t.classifier, info);
  EXPECT_EQ(info.weights_sha256, t.classifier->weights_sha256());
  Classifier loaded(*t.backend, 16);
  const ClassifierInfo back = load_classifier(path, loaded);
  EXPECT_EQ(back.weights_sha256, info.weights_sha256);
  EXPECT_EQ(back.seed, 5u);
  EXPECT_DOUBLE_EQ(back.test_accuracy, t.accuracy);
  EXPECT_EQ(loaded.download_params(), t.classifier->download_params());

  // A header digest that does not match the weights is refused.
  Checkpoint file = load_checkpoint(path);
  file.header["weights_sha256"] = std::string(64, '0');
  save_checkpoint(path, file);
  try {
    load_classifier(path, loaded);
    ADD_FAILURE() << "a wrong digest was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("SHA-256"), std::string::npos) << e.what();
  }
  // A missing file names the command that makes it.
  try {
    load_classifier((dir / "absent.bin").string(), loaded);
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("mnistgan classifier"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mnistgan
