// eval.cpp: see eval.h.
#include "eval/eval.h"

#include <algorithm>  // std::min, std::max
#include <chrono>
#include <cmath>  // std::exp
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/config.h"             // TrainConfig, model_shape_of
#include "core/shuffle.h"            // epoch_permutation
#include "io/atomic_file.h"          // write_file_atomic
#include "model/model_checkpoint.h"  // load_checkpoint, restore_model
#include "model/sample.h"            // stored_model

namespace mnistgan {
namespace {

// Rows through the classifier per forward call.
constexpr int kEmbedChunk = 1000;
// The floor's training subset: epoch_permutation(seed ^ salt, 0) so it is not the order of
// the GAN's first epoch for the same seed.
constexpr uint64_t kFloorSubsetSalt = 0xF100250B5E7ull;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// An empty set with room for n rows (on the backend too).
FeatureSet empty_feature_set(Backend& backend, int64_t n) {
  FeatureSet out;
  out.features.reserve(static_cast<size_t>(n) * kClassifierFeatures);
  out.probs.reserve(static_cast<size_t>(n) * kClassifierClasses);
  out.backend_features =
      BackendBuffer<float>(backend, static_cast<size_t>(n) * kClassifierFeatures);
  return out;
}

// Runs x (rows, 784) on the backend through the classifier; appends features (on the host
// and on the backend) and softmax probabilities (in double) to `out`.
void embed_chunk(Backend& backend, Classifier& classifier, const float* x, int rows,
                 FeatureSet& out) {
  const float* logits = classifier.forward(x, rows);
  const size_t feature_offset = out.features.size(), prob_offset = out.probs.size();
  const size_t feature_bytes = static_cast<size_t>(rows) * kClassifierFeatures * sizeof(float);
  out.features.resize(feature_offset + static_cast<size_t>(rows) * kClassifierFeatures);
  out.probs.resize(prob_offset + static_cast<size_t>(rows) * kClassifierClasses);
  backend.copy(out.backend_features.get() + feature_offset, classifier.features(), feature_bytes);
  backend.to_host(out.features.data() + feature_offset, classifier.features(), feature_bytes);
  std::vector<float> host_logits(static_cast<size_t>(rows) * kClassifierClasses);
  backend.to_host(host_logits.data(), logits, host_logits.size() * sizeof(float));
  for (int r = 0; r < rows; ++r) {
    const float* l = host_logits.data() + static_cast<size_t>(r) * kClassifierClasses;
    double* p = out.probs.data() + prob_offset + static_cast<size_t>(r) * kClassifierClasses;
    const double max = *std::max_element(l, l + kClassifierClasses);
    double sum = 0.0;
    for (int c = 0; c < kClassifierClasses; ++c) sum += p[c] = std::exp(l[c] - max);
    for (int c = 0; c < kClassifierClasses; ++c) p[c] /= sum;
  }
  out.n += rows;
}

// n images produced chunk by chunk on the host by fill(start, rows, out (rows, 784)).
template <class Fill>
FeatureSet embed_host_chunks(Backend& backend, Classifier& classifier, int64_t n, Fill&& fill) {
  const int chunk = std::min(kEmbedChunk, classifier.max_rows());
  FeatureSet out = empty_feature_set(backend, n);
  std::vector<float> host(static_cast<size_t>(chunk) * kClassifierInput);
  const BackendBuffer<float> x(backend, host.size());
  for (int64_t start = 0; start < n; start += chunk) {
    const int rows = static_cast<int>(std::min<int64_t>(chunk, n - start));
    fill(start, rows, host.data());
    backend.to_backend(x.get(), host.data(), static_cast<size_t>(rows) * kClassifierInput * 4);
    embed_chunk(backend, classifier, x.get(), rows, out);
  }
  return out;
}

}  // namespace

void to_json(nlohmann::json& j, const EvalMetrics& m) {
  j = nlohmann::json::object();
  for (const auto& [name, value] : eval_figures(m)) j[name] = value;
  // Counts stay JSON integers (eval_figures holds them as doubles for metrics.csv).
  j["classes_hit"] = m.histogram.classes_hit;
  j["classes_half_share"] = m.histogram.classes_half_share;
  j["class_counts"] = m.histogram.counts;
  if (m.conditional) {
    // NaN (a digit with fewer than 2 samples) is not JSON: null.
    nlohmann::json frechet = nlohmann::json::array();
    for (double f : m.conditional->class_frechet)
      frechet.push_back(std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(nullptr));
    j["conditional"] = {{"accuracy", m.conditional->accuracy},
                        {"class_accuracy", m.conditional->class_accuracy},
                        {"class_frechet", frechet}};
  }
}

std::vector<std::pair<std::string, double>> eval_figures(const EvalMetrics& m) {
  return {{"frechet_distance", m.frechet},
          {"classifier_score", m.score.mean},
          {"classifier_score_std", m.score.std},
          {"classes_hit", m.histogram.classes_hit},
          {"classes_half_share", m.histogram.classes_half_share},
          {"kl_uniform_nats", m.histogram.kl_uniform},
          {"precision_k3", m.prdc.precision},
          {"recall_k3", m.prdc.recall},
          {"density_k5", m.prdc.density},
          {"coverage_k5", m.prdc.coverage}};
}

FeatureSet embed_images(Backend& backend, Classifier& classifier, const float* images, int64_t n) {
  return embed_host_chunks(backend, classifier, n, [&](int64_t start, int rows, float* out) {
    std::copy(images + start * kClassifierInput, images + (start + rows) * kClassifierInput, out);
  });
}

FeatureSet embed_pixels(Backend& backend, Classifier& classifier, const uint8_t* pixels,
                        int64_t n) {
  return embed_host_chunks(backend, classifier, n, [&](int64_t start, int rows, float* out) {
    images_to_unit_range(pixels + start * kClassifierInput,
                         static_cast<size_t>(rows) * kClassifierInput, out);
  });
}

std::vector<int32_t> generator_eval_labels(int64_t n) {
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i % kDigitClasses);
  return labels;
}

FeatureSet embed_generator(Backend& backend, Gan& gan, Classifier& classifier, int64_t n,
                           uint64_t seed) {
  const ModelShape& shape = gan.shape();
  if (shape.image_pixels != kClassifierInput)
    throw std::invalid_argument("eval: the generator makes " + std::to_string(shape.image_pixels) +
                                "-pixel images; the classifier takes 28x28 = 784");
  const int chunk = std::min(gan.max_batch(), classifier.max_rows());
  const size_t z_count = static_cast<size_t>(n) * shape.latent_dim;
  const BackendBuffer<float> z(backend, z_count);
  const BackendBuffer<float> images(backend, static_cast<size_t>(chunk) * kClassifierInput);
  // A conditional generator is asked for every digit equally: sample i for digit i % 10.
  const std::vector<int32_t> asked =
      gan.conditional() ? generator_eval_labels(n) : std::vector<int32_t>{};
  BackendBuffer<int32_t> labels;
  if (!asked.empty()) {
    labels = BackendBuffer<int32_t>(backend, asked.size());
    backend.to_backend(labels.get(), asked.data(), labels.bytes());
  }
  FeatureSet out = empty_feature_set(backend, n);
  // One draw for all n samples: the set does not depend on the chunk size.
  backend.gaussian_noise(z.get(), z_count, seed, kNoiseStreamEval, nullptr);
  for (int64_t start = 0; start < n; start += chunk) {
    const int rows = static_cast<int>(std::min<int64_t>(chunk, n - start));
    gan.sample_forward(z.get() + start * shape.latent_dim, images.get(), rows,
                       labels ? labels.get() + start : nullptr);
    embed_chunk(backend, classifier, images.get(), rows, out);
  }
  return out;
}

EvalReference::EvalReference(Backend& backend, Classifier& classifier, const MnistSplit& train,
                             const MnistSplit& test, int64_t n, uint64_t seed, bool per_class) {
  if (n < kDensityCoverageK + 1 || n < kEvalScoreSplits)
    throw std::invalid_argument("eval: need at least " + std::to_string(kDensityCoverageK + 1) +
                                " samples, got " + std::to_string(n));
  for (const MnistSplit* split : {&train, &test}) {
    if (split->images.rows * split->images.cols != kClassifierInput)
      throw std::invalid_argument("eval: images are " + std::to_string(split->images.rows) + "x" +
                                  std::to_string(split->images.cols) +
                                  "; the classifier takes 28x28 MNIST digits");
    if (split->images.count < n)
      throw std::invalid_argument("eval: " + std::to_string(n) +
                                  " samples asked for but a split has only " +
                                  std::to_string(split->images.count) + " images; lower --samples");
  }
  test_ = embed_pixels(backend, classifier, test.images.pixels.data(), n);
  test_frechet_ = frechet_reference(gaussian_stats(test_.features.data(), n, kClassifierFeatures));
  std::vector<std::vector<float>> radii =
      knn_radii_squared(backend, test_.features.data(), n, kClassifierFeatures,
                        {kPrecisionRecallK, kDensityCoverageK}, test_.backend_features.get());
  radii3_ = std::move(radii[0]);
  radii5_ = std::move(radii[1]);
  const std::vector<int32_t> order =
      epoch_permutation(seed ^ kFloorSubsetSalt, 0, static_cast<int>(train.images.count));
  std::vector<uint8_t> subset(static_cast<size_t>(n) * kClassifierInput);
  for (int64_t i = 0; i < n; ++i)
    std::copy_n(train.images.pixels.data() + static_cast<size_t>(order[i]) * kClassifierInput,
                kClassifierInput, subset.data() + static_cast<size_t>(i) * kClassifierInput);
  if (!per_class) {
    floor_ = evaluate(backend, embed_pixels(backend, classifier, subset.data(), n));
    return;
  }
  // Each digit's test images' Gaussian: the references of the per-class Frechet distances.
  for (int k = 0; k < kClassifierClasses; ++k) {
    std::vector<float> features;
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (test.labels[i] != k) continue;
      const float* row = test_.features.data() + i * kClassifierFeatures;
      features.insert(features.end(), row, row + kClassifierFeatures);
      ++count;
    }
    if (count < 2)
      throw std::invalid_argument("eval: the first " + std::to_string(n) +
                                  " test images have fewer than 2 of digit " + std::to_string(k) +
                                  "; raise --samples");
    class_frechet_.push_back(
        frechet_reference(gaussian_stats(features.data(), count, kClassifierFeatures)));
  }
  std::vector<int32_t> subset_labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) subset_labels[i] = train.labels[order[i]];
  floor_ = evaluate(backend, embed_pixels(backend, classifier, subset.data(), n), &subset_labels);
}

ConditionalMetrics EvalReference::conditional_metrics(const FeatureSet& samples,
                                                      const std::vector<int32_t>& asked) const {
  if (class_frechet_.empty())
    throw std::logic_error("EvalReference: conditional figures need per_class references");
  if (asked.size() != static_cast<size_t>(samples.n))
    throw std::invalid_argument("eval: " + std::to_string(asked.size()) + " asked digits for " +
                                std::to_string(samples.n) + " samples");
  ConditionalMetrics c;
  std::vector<int64_t> total(kClassifierClasses, 0), correct(kClassifierClasses, 0);
  std::vector<std::vector<float>> features(kClassifierClasses);
  int64_t all_correct = 0;
  for (int64_t i = 0; i < samples.n; ++i) {
    const int32_t k = asked[i];
    if (k < 0 || k >= kClassifierClasses)
      throw std::invalid_argument("eval: asked digit " + std::to_string(k) + " is not 0-9");
    const double* p = samples.probs.data() + i * kClassifierClasses;
    // The classifier's reading: the first maximum, as class_histogram counts it.
    const int read = static_cast<int>(std::max_element(p, p + kClassifierClasses) - p);
    ++total[k];
    if (read == k) ++correct[k], ++all_correct;
    const float* row = samples.features.data() + i * kClassifierFeatures;
    features[k].insert(features[k].end(), row, row + kClassifierFeatures);
  }
  c.accuracy = static_cast<double>(all_correct) / static_cast<double>(samples.n);
  for (int k = 0; k < kClassifierClasses; ++k) {
    c.class_accuracy.push_back(total[k] > 0 ? static_cast<double>(correct[k]) / total[k] : NAN);
    c.class_frechet.push_back(
        total[k] >= 2
            ? frechet_distance(gaussian_stats(features[k].data(), total[k], kClassifierFeatures),
                               class_frechet_[k])
            : NAN);
  }
  return c;
}

EvalMetrics EvalReference::evaluate(Backend& backend, const FeatureSet& samples,
                                    const std::vector<int32_t>* asked) const {
  if (samples.n < kDensityCoverageK + 1 || samples.n < kEvalScoreSplits)
    throw std::invalid_argument("eval: too few samples (" + std::to_string(samples.n) + ")");
  EvalMetrics m;
  m.frechet = frechet_distance(
      gaussian_stats(samples.features.data(), samples.n, kClassifierFeatures), test_frechet_);
  m.score = classifier_score(samples.probs, samples.n, kClassifierClasses, kEvalScoreSplits);
  m.histogram = class_histogram(samples.probs, samples.n, kClassifierClasses);
  // Both sets' features are still on the backend that embedded them (when that is this one).
  auto resident = [&backend](const FeatureSet& set) {
    return set.backend_features.on(backend) ? set.backend_features.get() : nullptr;
  };
  m.prdc = prdc(backend, test_.features.data(), test_.n, samples.features.data(), samples.n,
                kClassifierFeatures, radii3_, radii5_, resident(test_), resident(samples));
  if (asked != nullptr) m.conditional = conditional_metrics(samples, *asked);
  return m;
}

Evaluator::Evaluator(Backend& backend, const std::string& classifier_path, const MnistSplit& train,
                     const MnistSplit& test, int64_t n, uint64_t seed, bool conditional)
    : backend_(backend), seed_(seed) {
  classifier_ = std::make_unique<Classifier>(backend, kEmbedChunk);
  info_ = load_classifier(classifier_path, *classifier_);
  reference_ =
      std::make_unique<EvalReference>(backend, *classifier_, train, test, n, seed, conditional);
}

EvalMetrics Evaluator::evaluate_generator(Gan& gan) {
  const FeatureSet samples = embed_generator(backend_, gan, *classifier_, reference_->n(), seed_);
  if (!gan.conditional()) return reference_->evaluate(backend_, samples);
  const std::vector<int32_t> asked = generator_eval_labels(reference_->n());
  return reference_->evaluate(backend_, samples, &asked);
}

std::string format_eval_table(const EvalMetrics& model, const EvalMetrics& floor) {
  std::string text;
  char line[160];
  std::snprintf(line, sizeof(line), "%-22s %18s %18s\n", "metric", "model", "floor (real)");
  text += line;
  auto row = [&](const char* name, const std::string& a, const std::string& b) {
    std::snprintf(line, sizeof(line), "%-22s %18s %18s\n", name, a.c_str(), b.c_str());
    text += line;
  };
  auto num = [](const char* format, double value) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), format, value);
    return std::string(buf);
  };
  auto score = [&](const ScoreResult& s) { return num("%.3f", s.mean) + num(" +- %.3f", s.std); };
  row("frechet_distance", num("%.3f", model.frechet), num("%.3f", floor.frechet));
  row("classifier_score", score(model.score), score(floor.score));
  row("classes_hit", num("%.0f", model.histogram.classes_hit),
      num("%.0f", floor.histogram.classes_hit));
  row("classes_half_share", num("%.0f", model.histogram.classes_half_share),
      num("%.0f", floor.histogram.classes_half_share));
  row("kl_uniform_nats", num("%.4f", model.histogram.kl_uniform),
      num("%.4f", floor.histogram.kl_uniform));
  row("precision_k3", num("%.4f", model.prdc.precision), num("%.4f", floor.prdc.precision));
  row("recall_k3", num("%.4f", model.prdc.recall), num("%.4f", floor.prdc.recall));
  row("density_k5", num("%.4f", model.prdc.density), num("%.4f", floor.prdc.density));
  row("coverage_k5", num("%.4f", model.prdc.coverage), num("%.4f", floor.prdc.coverage));
  if (model.conditional) {
    // The floor's figures are the real training subset's, read against its own labels.
    const ConditionalMetrics& m = *model.conditional;
    const ConditionalMetrics* f = floor.conditional ? &*floor.conditional : nullptr;
    auto floor_num = [&](const char* format, double value) {
      return f != nullptr ? num(format, value) : std::string("-");
    };
    row("conditional_accuracy", num("%.4f", m.accuracy), floor_num("%.4f", f ? f->accuracy : 0));
    for (int k = 0; k < kClassifierClasses; ++k) {
      const std::string name = "accuracy_digit_" + std::to_string(k);
      row(name.c_str(), num("%.4f", m.class_accuracy[k]),
          floor_num("%.4f", f ? f->class_accuracy[k] : 0));
    }
    for (int k = 0; k < kClassifierClasses; ++k) {
      const std::string name = "frechet_digit_" + std::to_string(k);
      row(name.c_str(), num("%.3f", m.class_frechet[k]),
          floor_num("%.3f", f ? f->class_frechet[k] : 0));
    }
  }
  return text;
}

void EvalOptions::validate() const {
  if (checkpoint.empty()) throw std::invalid_argument("--checkpoint: required");
  if (classifier.empty()) throw std::invalid_argument("--classifier: required");
  if (samples < kEvalScoreSplits || samples > 60000)
    throw std::invalid_argument("--samples: must be between 10 and 60000");
  validate_device_flag(device);
}

void run_eval(const EvalOptions& options) {
  options.validate();
  const auto start = std::chrono::steady_clock::now();
  const Checkpoint ck = load_checkpoint(options.checkpoint);
  // The same checks as `mnistgan sample`: a stored config is validated before a model is
  // built from it.
  const StoredModel stored = stored_model(ck, options.checkpoint);
  const TrainConfig& config = stored.config;
  const int rows = stored.rows, cols = stored.cols;
  if (rows != 28 || cols != 28)
    throw CheckpointError(options.checkpoint + ": the model makes " + std::to_string(rows) + "x" +
                          std::to_string(cols) + " images; eval needs 28x28 MNIST digits");
  std::unique_ptr<Backend> backend = make_backend(options.device);
  // The classifier first: a missing one is the likeliest mistake and costs nothing to find.
  Classifier classifier(*backend, kEmbedChunk);
  const ClassifierInfo info = load_classifier(options.classifier, classifier);
  Gan gan(*backend, model_shape_of(config, kClassifierInput), kEmbedChunk, 1);
  restore_model(*backend, gan, ck, options.checkpoint, /*with_optimizer=*/false);
  gan.sample_from_ema(!options.raw_generator);
  const MnistSplit train = load_mnist(options.data_dir, "train");
  const MnistSplit test = load_mnist(options.data_dir, "t10k");
  const double load_s = seconds_since(start);

  const auto reference_start = std::chrono::steady_clock::now();
  const EvalReference reference(*backend, classifier, train, test, options.samples, options.seed,
                                config.conditional);
  const double reference_s = seconds_since(reference_start);
  const auto model_start = std::chrono::steady_clock::now();
  const std::vector<int32_t> asked =
      config.conditional ? generator_eval_labels(options.samples) : std::vector<int32_t>{};
  const EvalMetrics model = reference.evaluate(
      *backend, embed_generator(*backend, gan, classifier, options.samples, options.seed),
      config.conditional ? &asked : nullptr);
  const double model_s = seconds_since(model_start);

  const int64_t step = stored.step;
  std::printf(
      "mnistgan eval: %s (step %lld, %s) | %lld samples vs %lld MNIST test images | seed "
      "%llu | %s\n",
      options.checkpoint.c_str(), static_cast<long long>(step), generator_label(gan),
      static_cast<long long>(options.samples), static_cast<long long>(options.samples),
      static_cast<unsigned long long>(options.seed), backend->name().c_str());
  std::printf("classifier: %s | test accuracy %.4f | sha256 %s\n", options.classifier.c_str(),
              info.test_accuracy, info.weights_sha256.c_str());
  std::printf("%s", format_eval_table(model, reference.floor()).c_str());
  std::printf("time: %.1fs load, %.1fs real features + floor, %.1fs model\n", load_s, reference_s,
              model_s);
  if (!options.json.empty()) {
    nlohmann::json j = {
        {"checkpoint", options.checkpoint},
        {"step", step},
        {"generator", generator_label(gan)},
        {"seed", options.seed},
        {"samples", options.samples},
        {"device", backend->name()},
        {"classifier",
         {{"path", options.classifier},
          {"sha256", info.weights_sha256},
          {"test_accuracy", info.test_accuracy},
          {"seed", info.seed},
          {"epochs", info.epochs}}},
        {"model", model},
        {"floor", reference.floor()},
        {"seconds", {{"load", load_s}, {"reference", reference_s}, {"model", model_s}}}};
    write_file_atomic(options.json, j.dump(2) + "\n");
    std::printf("wrote %s\n", options.json.c_str());
  }
}

}  // namespace mnistgan
