// eval.h: `mnistgan eval` and the evaluation inside `mnistgan train --eval-every`.
//
// Both compare n generated samples (default 10,000, noise seeded) with the first n MNIST
// test images, in the feature classifier's space (classifier.h, metrics in eval_metrics.h),
// and put beside every figure its floor: the same metric for n training images (a seeded
// subset) against the same test images, i.e. what a perfect generator would score given
// the finite sample sizes.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "eval/classifier.h"
#include "eval/eval_metrics.h"
#include "io/idx.h"
#include "model/model.h"

namespace mnistgan {

// Noise stream of the evaluation's generated samples (see backend.h's other streams).
constexpr uint32_t kNoiseStreamEval = 0x7fff0003u;
constexpr int64_t kEvalSamples = 10000;
constexpr int kEvalScoreSplits = 10;

// A set of images seen by the classifier: features (n, 256) and p(y|x) (n, 10). The
// features are also kept where the classifier made them, on its backend (which must
// outlive the set), for the k-NN metrics' GEMMs; move-only.
struct FeatureSet {
  int64_t n = 0;
  std::vector<float> features;
  std::vector<double> probs;
  BackendBuffer<float> backend_features;  // the same (n, 256) on the backend
};

// How well images match the digit they stand for: for a conditional generator the digit it
// was asked for (generator_eval_labels), for the floor's real images their own label.
struct ConditionalMetrics {
  double accuracy = 0;                 // fraction whose classifier argmax is that digit
  std::vector<double> class_accuracy;  // (10): the same among the images of digit k
  // (10): Frechet distance of the images of digit k against the test images of digit k
  // (NaN when fewer than 2 images of k were evaluated).
  std::vector<double> class_frechet;
};

struct EvalMetrics {
  double frechet = 0;
  ScoreResult score;
  ClassHistogram histogram;
  PrdcResult prdc;
  std::optional<ConditionalMetrics> conditional;  // conditional generators (and their floor)
};
void to_json(nlohmann::json& j, const EvalMetrics& m);

// Rows of the printed table and columns of metrics.csv: name and value, in a fixed order
// (the unconditional figures; a conditional evaluation's go to the table and the JSON).
std::vector<std::pair<std::string, double>> eval_figures(const EvalMetrics& m);

// Runs `images` (n, 784), floats in [-1, 1] on the host, through the classifier.
FeatureSet embed_images(Backend& backend, Classifier& classifier, const float* images, int64_t n);
// The same for uint8 MNIST pixels (n, 784).
FeatureSet embed_pixels(Backend& backend, Classifier& classifier, const uint8_t* pixels, int64_t n);
// The digits a conditional generator is asked for in an evaluation of n samples: sample i
// asks for i % 10, so every digit is asked for equally (n).
std::vector<int32_t> generator_eval_labels(int64_t n);
// Draws n samples from the generator (gan.sample_forward: the EMA generator when enabled;
// noise: seed, kNoiseStreamEval; a conditional one asked for generator_eval_labels(n)) and
// embeds them, without leaving the backend.
FeatureSet embed_generator(Backend& backend, Gan& gan, Classifier& classifier, int64_t n,
                           uint64_t seed);

// The real side of every comparison, computed once: the test set's features (kept on the
// backend too, which must outlive the reference), Gaussian and k-NN radii, and the floor
// (a seeded training subset of the same size against it). With per_class, also each digit's
// test images' Gaussian, for conditional evaluations (the floor then has them too: the
// training subset's images asked for by their own labels).
class EvalReference {
 public:
  // Uses the first n test images and n training images chosen by Philox(seed).
  EvalReference(Backend& backend, Classifier& classifier, const MnistSplit& train,
                const MnistSplit& test, int64_t n, uint64_t seed, bool per_class = false);
  // asked (samples.n): the digit each sample stands for, for the conditional figures (needs
  // per_class); nullptr: the unconditional figures only.
  EvalMetrics evaluate(Backend& backend, const FeatureSet& samples,
                       const std::vector<int32_t>* asked = nullptr) const;
  const EvalMetrics& floor() const { return floor_; }
  int64_t n() const { return test_.n; }

 private:
  ConditionalMetrics conditional_metrics(const FeatureSet& samples,
                                         const std::vector<int32_t>& asked) const;
  FeatureSet test_;
  FrechetReference test_frechet_;
  std::vector<FrechetReference> class_frechet_;  // (10) with per_class, else empty
  std::vector<float> radii3_, radii5_;
  EvalMetrics floor_;
};

// Everything `train --eval-every` needs: the classifier loaded from `classifier_path`
// (a missing file throws IoError naming the command that makes it) and the reference.
class Evaluator {
 public:
  // conditional: also the per-digit references, for evaluate_generator on a conditional Gan.
  Evaluator(Backend& backend, const std::string& classifier_path, const MnistSplit& train,
            const MnistSplit& test, int64_t n, uint64_t seed, bool conditional = false);
  // A conditional Gan's evaluation has the conditional figures too.
  EvalMetrics evaluate_generator(Gan& gan);
  const EvalMetrics& floor() const { return reference_->floor(); }
  const ClassifierInfo& classifier_info() const { return info_; }

 private:
  Backend& backend_;
  uint64_t seed_;
  std::unique_ptr<Classifier> classifier_;
  ClassifierInfo info_;
  std::unique_ptr<EvalReference> reference_;
};

// The table `mnistgan eval` prints: metric | model | floor.
std::string format_eval_table(const EvalMetrics& model, const EvalMetrics& floor);

struct EvalOptions {
  std::string checkpoint;                           // --checkpoint: a .ckpt (required)
  std::string classifier = kDefaultClassifierPath;  // --classifier
  std::string json;                                 // --json: also write the figures here
  std::string data_dir = "data/mnist";              // --data: MNIST train and t10k
  uint64_t seed = 1;                                // --seed: sample noise and train subset
  std::string device = "auto";                      // --device
  int64_t samples = kEvalSamples;                   // --samples (tests use fewer)
  bool raw_generator = false;  // --raw-generator: G's own weights, not the checkpoint's EMA
  void validate() const;
};

// `mnistgan eval`: prints the table, writes the JSON when asked. Throws on bad input.
void run_eval(const EvalOptions& options);

}  // namespace mnistgan
