// classifier.cpp: see classifier.h.
#include "eval/classifier.h"

#include <algorithm>  // std::min, std::max
#include <chrono>
#include <cmath>    // std::sqrt
#include <cstdio>   // std::fprintf
#include <cstring>  // std::memcpy
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/philox.h"     // philox_draw, philox_uniform_float
#include "core/shuffle.h"    // epoch_permutation
#include "io/atomic_file.h"  // IoError
#include "io/checkpoint.h"   // the file container
#include "io/sha256.h"

namespace mnistgan {
namespace {

constexpr const char* kClassifierKind = "mnist_classifier";
constexpr int kClassifierFormat = 1;
// Philox streams of the classifier (distinct from the GAN's init streams 0x10000+).
constexpr uint32_t kClassifierInitStream = 0x20000u;  // + tensor index
constexpr uint32_t kClassifierShiftStream = 0x21000u;
// Shuffles use epoch_permutation(seed ^ this, epoch): not the GAN's order for the same seed.
constexpr uint64_t kClassifierShuffleSalt = 0xC1A551F1E5ull;
// The learning rate decays linearly to lr / kLrDecayFactor by the last step: Adam at a
// fixed 1e-3 keeps bouncing around the last few tenths of a percent of test accuracy.
constexpr float kLrDecayFactor = 20.0f;

void check_split(const MnistSplit& split, const std::string& what) {
  if (split.images.rows * split.images.cols != kClassifierInput)
    throw std::invalid_argument(what + ": images are " + std::to_string(split.images.rows) + "x" +
                                std::to_string(split.images.cols) +
                                "; the classifier takes 28x28 MNIST digits");
  for (uint8_t label : split.labels)
    if (label >= kClassifierClasses)
      throw std::invalid_argument(what + ": label " + std::to_string(label) +
                                  " is not a digit 0-9");
}

// One training image with its random shift: out (784) in [-1, 1]; background fills the
// pixels shifted in.
void shifted_image(const uint8_t* image, int dx, int dy, float* out) {
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const int sx = x - dx, sy = y - dy;
      const bool inside = sx >= 0 && sx < 28 && sy >= 0 && sy < 28;
      out[y * 28 + x] = inside ? image[sy * 28 + sx] / 127.5f - 1.0f : -1.0f;
    }
}

}  // namespace

void ClassifierOptions::validate() const {
  if (data_dir.empty()) throw std::invalid_argument("--data: required");
  if (out.empty()) throw std::invalid_argument("--out: required");
  if (epochs < 1 || epochs > 1000) throw std::invalid_argument("--epochs: must be 1..1000");
  if (batch_size < 1 || batch_size > 8192)
    throw std::invalid_argument("--batch-size: must be 1..8192");
  if (!(lr > 0.0f) || lr > 1.0f) throw std::invalid_argument("--lr: must be in (0, 1]");
  if (max_shift < 0 || max_shift > 8) throw std::invalid_argument("--max-shift: must be 0..8");
  if (!(min_accuracy >= 0.0 && min_accuracy <= 1.0))
    throw std::invalid_argument("--min-accuracy: must be in [0, 1]");
  validate_device_flag(device);
}

Classifier::Classifier(Backend& backend, int max_rows) : backend_(backend), max_rows_(max_rows) {
  if (max_rows < 1) throw std::invalid_argument("Classifier: max_rows must be >= 1");
  const int widths[4] = {kClassifierInput, kClassifierHidden, kClassifierFeatures,
                         kClassifierClasses};
  for (int l = 0; l < 3; ++l) {
    LinearLayer layer;
    layer.in = widths[l];
    layer.out = widths[l + 1];
    // ReLU is LeakyReLU with slope 0; the last layer gives raw logits.
    layer.act = l < 2 ? Activation::kLeakyRelu : Activation::kNone;
    const std::string name = "C.fc" + std::to_string(l);
    layer.weight = net_.add_tensor(name + ".weight", {layer.out, layer.in});
    layer.bias = net_.add_tensor(name + ".bias", {layer.out});
    layers_.push_back(layer);
    acts_.emplace_back(backend_, static_cast<size_t>(max_rows) * layer.out);
  }
  net_.allocate(backend_);
  scratch_a_ = BackendBuffer<float>(backend_, static_cast<size_t>(max_rows) * kClassifierHidden);
  scratch_b_ = BackendBuffer<float>(backend_, static_cast<size_t>(max_rows) * kClassifierHidden);
}

void Classifier::init_params(uint64_t seed) {
  std::vector<float> host(net_.size, 0.0f);
  for (size_t t = 0; t < net_.tensors.size(); ++t) {
    const ParamTensor& tensor = net_.tensors[t];
    if (tensor.shape.size() != 2) continue;  // biases stay 0
    // He uniform for ReLU: U(-b, b), b = sqrt(2) * sqrt(3 / fan_in).
    const float bound = std::sqrt(6.0f / static_cast<float>(tensor.shape[1]));
    for (size_t i = 0; i < tensor.size; ++i)
      host[tensor.offset + i] =
          bound * (2.0f * philox_uniform_float(seed, kClassifierInitStream + t, i, 0) - 1.0f);
  }
  upload_params(host);
  backend_.fill_zero(net_.adam_m, net_.size * sizeof(float));
  backend_.fill_zero(net_.adam_v, net_.size * sizeof(float));
  backend_.fill_zero(net_.adam_step, sizeof(int64_t));
}

const float* Classifier::forward(const float* x, int rows) {
  if (rows < 1 || rows > max_rows_)
    throw std::invalid_argument("Classifier::forward: rows = " + std::to_string(rows) +
                                ", allocated for 1.." + std::to_string(max_rows_));
  // ReLU is LeakyReLU with slope 0.
  mlp_forward(backend_, net_.params, layers_, x, outputs(), rows, /*slope=*/0.0f);
  return acts_.back().get();
}

void Classifier::backward(const float* x, const float* dlogits, int rows) {
  mlp_backward(backend_, net_.params, net_.grads, layers_, x, outputs(), dlogits, rows,
               /*slope=*/0.0f, {scratch_a_.get(), scratch_b_.get()}, /*d_x=*/nullptr);
}

std::vector<float*> Classifier::outputs() const {
  std::vector<float*> out;
  for (const BackendBuffer<float>& act : acts_) out.push_back(act.get());
  return out;
}

void Classifier::adam_step(const AdamHyper& hyper) {
  backend_.adam_step(net_.params, net_.grads, net_.adam_m, net_.adam_v, net_.size, hyper,
                     net_.adam_step);  // t += 1 in the same op
}

std::vector<float> Classifier::download_params() {
  std::vector<float> host(net_.size);
  backend_.to_host(host.data(), net_.params, host.size() * sizeof(float));
  return host;
}

void Classifier::upload_params(const std::vector<float>& params) {
  if (params.size() != net_.size)
    throw std::invalid_argument("Classifier::upload_params: " + std::to_string(params.size()) +
                                " values for " + std::to_string(net_.size) + " parameters");
  backend_.to_backend(net_.params, params.data(), params.size() * sizeof(float));
}

std::string Classifier::weights_sha256() {
  const std::vector<float> host = download_params();
  static_assert(sizeof(float) == 4, "float32 weights");
  // The hash is of little-endian bytes; this project only builds for little-endian hosts
  // (the checkpoint format makes the same assumption).
  return sha256_hex(host.data(), host.size() * sizeof(float));
}

void images_to_unit_range(const uint8_t* pixels, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = pixels[i] / 127.5f - 1.0f;
}

double classifier_accuracy(Backend& backend, Classifier& classifier, const MnistSplit& split) {
  check_split(split, "classifier_accuracy");
  const int n = static_cast<int>(split.images.count);
  const int chunk = classifier.max_rows();
  const BackendBuffer<float> x(backend, static_cast<size_t>(chunk) * kClassifierInput);
  const BackendBuffer<int32_t> labels(backend, chunk);
  const BackendBuffer<float> stats(backend, 2);
  std::vector<float> host_x(static_cast<size_t>(chunk) * kClassifierInput);
  std::vector<int32_t> host_labels(chunk);
  double correct = 0;
  for (int start = 0; start < n; start += chunk) {
    const int rows = std::min(chunk, n - start);
    images_to_unit_range(split.images.pixels.data() + static_cast<size_t>(start) * kClassifierInput,
                         static_cast<size_t>(rows) * kClassifierInput, host_x.data());
    for (int r = 0; r < rows; ++r) host_labels[r] = split.labels[start + r];
    backend.to_backend(x.get(), host_x.data(), static_cast<size_t>(rows) * kClassifierInput * 4);
    backend.to_backend(labels.get(), host_labels.data(),
                       static_cast<size_t>(rows) * sizeof(int32_t));
    backend.fill_zero(stats.get(), 2 * sizeof(float));
    const float* logits = classifier.forward(x.get(), rows);
    backend.softmax_cross_entropy(logits, labels.get(), rows, kClassifierClasses, 1.0f, nullptr,
                                  stats.get());
    float host_stats[2];
    backend.to_host(host_stats, stats.get(), sizeof(host_stats));
    correct += static_cast<double>(host_stats[1]) * rows;
  }
  return n > 0 ? correct / n : 0.0;
}

double train_classifier(Backend& backend, Classifier& classifier, const MnistSplit& train,
                        const MnistSplit& test, const ClassifierOptions& options) {
  options.validate();
  check_split(train, "train_classifier: training set");
  const int n_images = static_cast<int>(
      options.train_limit > 0 ? std::min<int64_t>(options.train_limit, train.images.count)
                              : train.images.count);
  const int batch = std::min(options.batch_size, classifier.max_rows());
  const int batches_per_epoch = n_images / batch;  // the remainder changes every epoch
  if (batches_per_epoch < 1)
    throw std::invalid_argument("train_classifier: " + std::to_string(n_images) +
                                " training images make no batch of " + std::to_string(batch));
  const int64_t total_batches = static_cast<int64_t>(batches_per_epoch) * options.epochs;

  const BackendBuffer<float> x_buffer(backend, static_cast<size_t>(batch) * kClassifierInput);
  const BackendBuffer<float> dlogits_buffer(backend,
                                            static_cast<size_t>(batch) * kClassifierClasses);
  const BackendBuffer<int32_t> labels_buffer(backend, batch);
  const BackendBuffer<float> stats_buffer(backend, 2);
  float* x = x_buffer.get();
  float* dlogits = dlogits_buffer.get();
  int32_t* labels = labels_buffer.get();
  float* stats = stats_buffer.get();
  std::vector<float> host_x(static_cast<size_t>(batch) * kClassifierInput);
  std::vector<int32_t> host_labels(batch);
  const auto start_time = std::chrono::steady_clock::now();
  int64_t done = 0;
  double test_accuracy = 0;  // after the latest epoch when verbose (epochs >= 1), else unset
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const std::vector<int32_t> perm =
        epoch_permutation(options.seed ^ kClassifierShuffleSalt, epoch, n_images);
    backend.fill_zero(stats, 2 * sizeof(float));
    for (int b = 0; b < batches_per_epoch; ++b, ++done) {
      for (int r = 0; r < batch; ++r) {
        const int image = perm[static_cast<size_t>(b) * batch + r];
        int dx = 0, dy = 0;
        if (options.max_shift > 0) {
          const Philox4 draw = philox_draw(options.seed, kClassifierShiftStream,
                                           static_cast<uint64_t>(image), epoch);
          const uint32_t span = 2 * options.max_shift + 1;
          dx = static_cast<int>(draw.v[0] % span) - options.max_shift;
          dy = static_cast<int>(draw.v[1] % span) - options.max_shift;
        }
        shifted_image(train.images.pixels.data() + static_cast<size_t>(image) * kClassifierInput,
                      dx, dy, host_x.data() + static_cast<size_t>(r) * kClassifierInput);
        host_labels[r] = train.labels[image];
      }
      backend.to_backend(x, host_x.data(), host_x.size() * sizeof(float));
      backend.to_backend(labels, host_labels.data(), host_labels.size() * sizeof(int32_t));
      const float* logits = classifier.forward(x, batch);
      backend.softmax_cross_entropy(logits, labels, batch, kClassifierClasses, 1.0f, dlogits,
                                    stats);
      classifier.backward(x, dlogits, batch);
      AdamHyper hyper;
      hyper.beta1 = 0.9f;
      const float progress = static_cast<float>(done) / static_cast<float>(total_batches);
      hyper.lr = options.lr * (1.0f - progress * (1.0f - 1.0f / kLrDecayFactor));
      classifier.adam_step(hyper);
    }
    if (options.verbose) {
      float host_stats[2];
      backend.to_host(host_stats, stats, sizeof(host_stats));
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
      test_accuracy = classifier_accuracy(backend, classifier, test);
      std::fprintf(stderr,
                   "classifier: epoch %d/%d | train loss %.4f acc %.4f | test acc %.4f | %.1fs\n",
                   epoch + 1, options.epochs, host_stats[0] / batches_per_epoch,
                   host_stats[1] / batches_per_epoch, test_accuracy, seconds);
    }
  }
  // Verbose output has already measured the final weights (the last epoch's line).
  return options.verbose ? test_accuracy : classifier_accuracy(backend, classifier, test);
}

ClassifierInfo save_classifier(const std::string& path, Classifier& classifier,
                               ClassifierInfo info) {
  const std::vector<float> params = classifier.download_params();
  info.weights_sha256 = sha256_hex(params.data(), params.size() * sizeof(float));
  Checkpoint file;
  file.header = {
      {"kind", kClassifierKind},
      {"format", kClassifierFormat},
      {"layers", {kClassifierInput, kClassifierHidden, kClassifierFeatures, kClassifierClasses}},
      {"seed", info.seed},
      {"epochs", info.epochs},
      {"test_accuracy", info.test_accuracy},
      {"weights_sha256", info.weights_sha256}};
  for (const ParamTensor& tensor : classifier.network().tensors)
    file.tensors.push_back({tensor.name, tensor.shape,
                            std::vector<float>(params.begin() + tensor.offset,
                                               params.begin() + tensor.offset + tensor.size)});
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) ensure_writable_dir(parent.string());
  save_checkpoint(path, file);
  return info;
}

ClassifierInfo load_classifier(const std::string& path, Classifier& classifier) {
  if (!std::filesystem::exists(path))
    throw IoError(path + ": no feature classifier here; make it with `" + kClassifierCommand +
                  " --out " + path + "` (about 75 s on 2 CPU cores), or pass " +
                  "--classifier FILE");
  const Checkpoint file = load_checkpoint(path);
  if (file.header.value("kind", std::string()) != kClassifierKind)
    throw CheckpointError(path + ": not a feature classifier (header kind is '" +
                          file.header.value("kind", std::string("none")) + "'); make one with `" +
                          kClassifierCommand + "`");
  // header_int, not value(): a hand-edited 1e300 must be an error, not a UB cast.
  const int64_t format = header_int(file.header, "format", 0, path);
  if (format != kClassifierFormat)
    throw CheckpointError(path + ": classifier format " + std::to_string(format) +
                          " is not the supported " + std::to_string(kClassifierFormat) +
                          "; remake it with `" + kClassifierCommand + "`");
  std::vector<float> params(classifier.network().size);
  for (const ParamTensor& tensor : classifier.network().tensors) {
    const CheckpointTensor* stored = file.find(tensor.name);
    if (stored == nullptr || stored->shape != tensor.shape)
      throw CheckpointError(path + ": tensor " + tensor.name + " is missing or mis-shaped");
    std::memcpy(params.data() + tensor.offset, stored->data.data(), tensor.size * sizeof(float));
  }
  ClassifierInfo info;
  info.seed = header_uint(file.header, "seed", 0, path);
  const int64_t epochs = header_int(file.header, "epochs", 0, path);
  if (epochs < 0 || epochs > 1000000)
    throw CheckpointError(path + ": header 'epochs' is " + std::to_string(epochs) +
                          ", not a plausible epoch count");
  info.epochs = static_cast<int>(epochs);
  info.test_accuracy = file.header.value("test_accuracy", 0.0);
  info.weights_sha256 = sha256_hex(params.data(), params.size() * sizeof(float));
  if (info.weights_sha256 != file.header.value("weights_sha256", std::string()))
    throw CheckpointError(path + ": weights' SHA-256 " + info.weights_sha256 +
                          " differs from the one recorded in the header; remake the file with `" +
                          kClassifierCommand + "`");
  classifier.upload_params(params);
  return info;
}

int run_classifier_command(const ClassifierOptions& options) {
  options.validate();
  const MnistSplit train = load_mnist(options.data_dir, "train");
  const MnistSplit test = load_mnist(options.data_dir, "t10k");
  check_split(test, options.data_dir + "/t10k");
  std::unique_ptr<Backend> backend = make_backend(options.device);
  // Fail before training when the output cannot be written.
  const std::filesystem::path parent = std::filesystem::path(options.out).parent_path();
  ensure_writable_dir(parent.empty() ? "." : parent.string());
  std::fprintf(stderr,
               "mnistgan classifier: MLP 784-512-256-10 on %s | %lld images | %d epochs | "
               "batch %d | Adam %g | shifts +-%d px | seed %llu\n",
               backend->name().c_str(), static_cast<long long>(train.images.count), options.epochs,
               options.batch_size, options.lr, options.max_shift,
               static_cast<unsigned long long>(options.seed));
  Classifier classifier(*backend, std::max(options.batch_size, 1000));
  classifier.init_params(options.seed);
  const double accuracy = train_classifier(*backend, classifier, train, test, options);
  std::printf("test accuracy: %.4f (%lld MNIST test images)\n", accuracy,
              static_cast<long long>(test.images.count));
  if (accuracy < options.min_accuracy) {
    std::fprintf(stderr,
                 "mnistgan classifier: NOT SAVED: test accuracy %.4f is below --min-accuracy "
                 "%.4f; train longer (--epochs) or with another --seed\n",
                 accuracy, options.min_accuracy);
    return 1;
  }
  ClassifierInfo info;
  info.seed = options.seed;
  info.epochs = options.epochs;
  info.test_accuracy = accuracy;
  info = save_classifier(options.out, classifier, info);
  std::printf("saved %s (sha256 %s)\n", options.out.c_str(), info.weights_sha256.c_str());
  return 0;
}

}  // namespace mnistgan
