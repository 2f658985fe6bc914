// classifier.h: the MNIST feature classifier that `mnistgan eval` measures samples with,
// and the `mnistgan classifier` command that trains it.
//
//   x (B, 784) in [-1, 1] -> Linear 512 -> ReLU -> Linear 256 -> ReLU = features (B, 256)
//     -> Linear 10 = logits (B, 10)
//
// Built from the same Backend ops and MLP passes (model/mlp.h) as the GAN (ReLU is LeakyReLU
// with slope 0), so it runs on the CPU and the GPU alike. The 256-d post-ReLU features are
// the space of the Frechet distance and the k-NN metrics; the softmax of the logits gives
// p(y|x) for the classifier score and the class histogram. A classifier file records its seed, test
// accuracy and the SHA-256 of its weights, which every evaluation copies into its output so figures
// made with different classifiers are never compared by mistake.
//
// File format: the checkpoint container (checkpoint.h: magic, version, JSON header,
// tensors, CRC-32, written atomically) with header "kind": "mnist_classifier".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"  // BackendBuffer
#include "io/idx.h"
#include "model/mlp.h"    // LinearLayer, mlp_forward, mlp_backward
#include "model/model.h"  // Network

namespace mnistgan {

constexpr int kClassifierInput = 784;
constexpr int kClassifierHidden = 512;
constexpr int kClassifierFeatures = 256;  // the penultimate layer: the feature space
constexpr int kClassifierClasses = 10;
constexpr const char* kDefaultClassifierPath = "models/mnist_classifier.bin";
// The command that makes the default classifier, quoted by every "missing" message.
constexpr const char* kClassifierCommand = "mnistgan classifier --data data/mnist";

struct ClassifierOptions {
  std::string data_dir = "data/mnist";       // --data: MNIST IDX files (train and t10k)
  std::string out = kDefaultClassifierPath;  // --out: where the classifier is saved
  int epochs = 12;                           // --epochs
  uint64_t seed = 1;                         // --seed: init, shuffle and augmentation
  std::string device = "auto";               // --device: cpu | cuda | auto
  int batch_size = 128;                      // --batch-size
  float lr = 1e-3f;                          // --lr: Adam, decayed linearly to lr/20
  int max_shift = 2;                         // --max-shift: random shifts of +-N px (0: off)
  double min_accuracy = 0.98;                // --min-accuracy: refuse to save below this
  // Train on the first n training images only (0: all); for tests.
  int64_t train_limit = 0;
  bool verbose = true;    // one line per epoch on stderr
  void validate() const;  // throws std::invalid_argument naming the flag
};

// What a classifier file records besides its weights.
struct ClassifierInfo {
  uint64_t seed = 0;
  int epochs = 0;
  double test_accuracy = 0;    // on the 10,000 MNIST test images
  std::string weights_sha256;  // of the little-endian float32 parameters, in file order
};

class Classifier {
 public:
  // Activations for up to max_rows rows at a time.
  Classifier(Backend& backend, int max_rows);
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // He-uniform for ReLU (bound sqrt(6 / fan_in)), biases 0, drawn from Philox(seed).
  void init_params(uint64_t seed);

  // x (rows, 784) -> logits (rows, 10); rows <= max_rows. The returned buffer and
  // features() stay valid until the next forward.
  const float* forward(const float* x, int rows);
  const float* features() const { return acts_[1].get(); }  // (rows, 256), post-ReLU
  // dlogits (rows, 10) -> network().grads (overwritten). Needs the last forward's x.
  void backward(const float* x, const float* dlogits, int rows);
  void adam_step(const AdamHyper& hyper);  // one step over every parameter, t += 1

  // Host copies of the parameters, and their SHA-256 (little-endian float32 bytes).
  std::vector<float> download_params();
  void upload_params(const std::vector<float>& params);
  std::string weights_sha256();

  Network& network() { return net_; }
  int max_rows() const { return max_rows_; }

 private:
  std::vector<float*> outputs() const;  // acts_' pointers, for mlp_forward/backward

  Backend& backend_;
  int max_rows_;
  Network net_;
  std::vector<LinearLayer> layers_;
  // Each layer's output: (rows, 512), (rows, 256), (rows, 10).
  std::vector<BackendBuffer<float>> acts_;
  BackendBuffer<float> scratch_a_;  // gradient ping-pong, (rows, 512)
  BackendBuffer<float> scratch_b_;
};

// Images (n, 784) uint8 -> floats in [-1, 1], as the generator's tanh output is scaled.
void images_to_unit_range(const uint8_t* pixels, size_t count, float* out);

// Fraction of `split` classified correctly (in chunks of the classifier's max_rows).
double classifier_accuracy(Backend& backend, Classifier& classifier, const MnistSplit& split);

// Trains from the current parameters (call init_params first) on `train`, printing one
// line per epoch when options.verbose; returns the accuracy on `test`.
double train_classifier(Backend& backend, Classifier& classifier, const MnistSplit& train,
                        const MnistSplit& test, const ClassifierOptions& options);

// Atomic save; info.weights_sha256 is computed here and returned filled in.
ClassifierInfo save_classifier(const std::string& path, Classifier& classifier,
                               ClassifierInfo info);
// Loads weights into `classifier`; checks kind, shapes and the SHA-256. A missing file
// throws IoError whose message quotes the command that makes it.
ClassifierInfo load_classifier(const std::string& path, Classifier& classifier);

// `mnistgan classifier`: train, measure on MNIST test, save when accurate enough. Returns
// the exit code (0, or 1 when the accuracy is below options.min_accuracy: nothing saved).
int run_classifier_command(const ClassifierOptions& options);

}  // namespace mnistgan
