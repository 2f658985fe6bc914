// cpu_backend.cpp: the reference implementation of every op in backend.h, on host memory.
//
// Plain loops in the order the math is written (plus the pair symmetry of minibatch
// discrimination), GEMMs through gemm_cpu(). The CUDA backend's tests compare against
// this file, and the finite-difference tests check this file's backward passes.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/cpu_mbd.h"
#include "backends/gemm_cpu.h"
#include "core/backend.h"
#include "core/formulas.h"  // the per-element formulas shared with kernels/
#include "core/philox.h"

namespace mnistgan {
namespace {

// 64-byte aligned, zeroed allocations (cache lines; lets the compiler vectorise freely).
void* alloc_zeroed(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return p;
}

// One op's dropout mask: element i kept or not at the counter's current step.
struct DropoutMask {
  explicit DropoutMask(const Dropout& d)
      : seed(d.seed),
        stream(d.stream),
        step(d.step != nullptr ? static_cast<uint64_t>(*d.step) : 0),
        threshold(dropout_threshold(d.p)),
        scale(dropout_scale(d.p)) {}
  bool keep(uint64_t i) const { return dropout_keep(seed, stream, i, step, threshold); }
  uint64_t seed;
  uint32_t stream;
  uint64_t step;
  uint32_t threshold;
  float scale;
};

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  float* alloc_f32(size_t n) override { return static_cast<float*>(alloc_zeroed(n * 4)); }
  int64_t* alloc_i64(size_t n) override { return static_cast<int64_t*>(alloc_zeroed(n * 8)); }
  int32_t* alloc_i32(size_t n) override { return static_cast<int32_t*>(alloc_zeroed(n * 4)); }
  uint8_t* alloc_u8(size_t n) override { return static_cast<uint8_t*>(alloc_zeroed(n)); }
  void free(void* p) override { std::free(p); }
  void to_backend(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
  }
  void to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }
  void fill_zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void synchronize() override {}

  // X (rows, in), W (out, in), b (out), Y (rows, out); rows ld.x and ld.y floats apart.
  void linear_forward(const float* X, const float* W, const float* b, float* Y, int rows, int in,
                      int out, Activation act, float slope, RowStrides ld,
                      const Dropout& dropout) override {
    check_dropout("linear_forward", dropout, act);
    const int ldy = ld.y != 0 ? ld.y : out;
    gemm_cpu(false, true, rows, out, in, 1.0f, X, ld.x != 0 ? ld.x : in, W, in, 0.0f, Y, ldy);
    const DropoutMask mask(dropout);
    for (int r = 0; r < rows; ++r) {
      float* y = Y + static_cast<size_t>(r) * ldy;
      if (b != nullptr)
        for (int o = 0; o < out; ++o) y[o] += b[o];
      if (act != Activation::kNone)
        for (int o = 0; o < out; ++o) y[o] = activate(y[o], act, slope);
      if (dropout.on())
        for (int o = 0; o < out; ++o)
          y[o] = dropout_output(y[o], mask.keep(static_cast<uint64_t>(r) * out + o), mask.scale);
    }
  }

  // From the saved output Y (see activation_grad).
  void activation_backward(const float* Y, const float* dY, float* dZ, size_t n, Activation act,
                           float slope) override {
    if (act == Activation::kNone) {
      if (dZ != dY) std::memmove(dZ, dY, n * sizeof(float));
      return;
    }
    for (size_t i = 0; i < n; ++i) dZ[i] = activation_grad(Y[i], dY[i], act, slope);
  }

  // dZ (rows, out) = dY * act'(Y), packed here; then dW (out, in) = dZ^T X, db (out) = sum over
  // rows, dX (rows, in) = dZ W: the same products, in the same order, as an activation_backward
  // followed by the GEMMs on a packed dZ.
  void linear_backward(const float* X, const float* W, const float* Y, const float* dY, float* dX,
                       float* dW, float* db, int rows, int in, int out, Activation act,
                       float slope, bool accumulate_dx, RowStrides ld,
                       const Dropout& dropout) override {
    check_dropout("linear_backward", dropout, act);
    const int ldx = ld.x != 0 ? ld.x : in, ldy = ld.y != 0 ? ld.y : out;
    const float* dZ = dY;
    int ldz = ldy;
    if (act != Activation::kNone || ldy != out || dropout.on()) {
      const DropoutMask mask(dropout);
      dz_.resize(static_cast<size_t>(rows) * out);
      for (int r = 0; r < rows; ++r)
        for (int o = 0; o < out; ++o) {
          const size_t at = static_cast<size_t>(r) * ldy + o;
          const size_t i = static_cast<size_t>(r) * out + o;
          dz_[i] = dropout.on()
                       ? dropout_activation_grad(act == Activation::kNone ? 0.0f : Y[at], dY[at],
                                                 act, slope, mask.keep(i), mask.scale)
                   : act == Activation::kNone ? dY[at]
                                              : activation_grad(Y[at], dY[at], act, slope);
        }
      dZ = dz_.data();
      ldz = out;
    }
    if (dW != nullptr) gemm_cpu(true, false, out, in, rows, 1.0f, dZ, ldz, X, ldx, 0.0f, dW, in);
    if (db != nullptr) {
      std::fill(db, db + out, 0.0f);
      for (int r = 0; r < rows; ++r) {
        const float* dz = dZ + static_cast<size_t>(r) * ldz;
        for (int o = 0; o < out; ++o) db[o] += dz[o];
      }
    }
    if (dX != nullptr)
      gemm_cpu(false, false, rows, in, out, 1.0f, dZ, ldz, W, in, accumulate_dx ? 1.0f : 0.0f, dX,
               ldx);
  }

  // X (groups*B, in) packed; see backend.h. The logit layer, then each group's BCE, then the
  // layer's backward: the arithmetic of linear_forward, bce_with_logits and linear_backward.
  void logit_bce(const float* X, const float* w, const float* b, int groups, int B, int in,
                 const float* targets, float grad_scale, float* logits, float* dlogits, float* dX,
                 float* dw, float* db, float* stats) override {
    const int rows = groups * B;
    linear_forward(X, w, b, logits, rows, in, 1, Activation::kNone, 0.0f, {}, {});
    for (int g = 0; g < groups; ++g)
      bce_with_logits(logits + static_cast<size_t>(g) * B, B, targets[g], grad_scale,
                      dlogits + static_cast<size_t>(g) * B, stats != nullptr ? stats + 2 * g : nullptr);
    linear_backward(X, w, nullptr, dlogits, dX, dw, db, rows, in, 1, Activation::kNone, 0.0f,
                    false, {}, {});
  }

  void concat_cols(const float* A, const float* B, float* out, int rows, int a, int b) override {
    for (int r = 0; r < rows; ++r) {
      std::memcpy(out + static_cast<size_t>(r) * (a + b), A + static_cast<size_t>(r) * a,
                  a * sizeof(float));
      std::memcpy(out + static_cast<size_t>(r) * (a + b) + a, B + static_cast<size_t>(r) * b,
                  b * sizeof(float));
    }
  }
  void split_cols(const float* in, float* A, float* B, int rows, int a, int b) override {
    for (int r = 0; r < rows; ++r) {
      if (A != nullptr)
        std::memcpy(A + static_cast<size_t>(r) * a, in + static_cast<size_t>(r) * (a + b),
                    a * sizeof(float));
      if (B != nullptr)
        std::memcpy(B + static_cast<size_t>(r) * b, in + static_cast<size_t>(r) * (a + b) + a,
                    b * sizeof(float));
    }
  }

  // Shapes and math in backend.h; the loops are in cpu_mbd.cpp (on packed O and dO: a strided
  // one is copied through packed scratch).
  void mbd_forward(const float* M, float* O, int groups, int B, int K, int C, int ldo) override {
    if (ldo == 0 || ldo == K) {
      mbd_forward_cpu(M, O, groups, B, K, C);
      return;
    }
    mbd_o_.resize(static_cast<size_t>(groups) * B * K);
    mbd_forward_cpu(M, mbd_o_.data(), groups, B, K, C);
    for (size_t r = 0; r < static_cast<size_t>(groups) * B; ++r)
      std::memcpy(O + r * ldo, &mbd_o_[r * K], K * sizeof(float));
  }
  void mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                    int ldo) override {
    if (ldo == 0 || ldo == K) {
      mbd_backward_cpu(M, dO, dM, groups, B, K, C);
      return;
    }
    mbd_o_.resize(static_cast<size_t>(groups) * B * K);
    for (size_t r = 0; r < static_cast<size_t>(groups) * B; ++r)
      std::memcpy(&mbd_o_[r * K], dO + r * ldo, K * sizeof(float));
    mbd_backward_cpu(M, mbd_o_.data(), dM, groups, B, K, C);
  }

  // Per logit bce_with_logits_terms; sums in double, in index order.
  void bce_with_logits(const float* x, int n, float target, float grad_scale, float* dx,
                       float* stats) override {
    double loss_sum = 0.0, prob_sum = 0.0;
    for (int i = 0; i < n; ++i) {
      const BceTerms e = bce_with_logits_terms(x[i], target);
      loss_sum += e.loss;
      prob_sum += e.prob;
      if (dx != nullptr) dx[i] = bce_with_logits_grad(e.prob, target, grad_scale, n);
    }
    if (stats != nullptr) {
      stats[0] += static_cast<float>(loss_sum / n);
      stats[1] += static_cast<float>(prob_sum / n);
    }
  }

  // logits (rows, classes), labels (rows); see backend.h. Row by row, the per-row arithmetic
  // of core/formulas.h that kernels/softmax_xent.cu uses too.
  void softmax_cross_entropy(const float* logits, const int32_t* labels, int rows, int classes,
                             float grad_scale, float* dlogits, float* stats) override {
    double loss_sum = 0.0, correct = 0.0;
    for (int r = 0; r < rows; ++r) {
      const float* x = logits + static_cast<size_t>(r) * classes;
      const int label = labels[r];
      const SoftmaxRow row = softmax_row(x, classes);
      loss_sum += softmax_xent_loss(x, label, classes, row);
      correct += label >= 0 && label < classes && row.argmax == label ? 1.0 : 0.0;
      if (dlogits != nullptr) {
        float* d = dlogits + static_cast<size_t>(r) * classes;
        const float scale = grad_scale / static_cast<float>(rows);
        for (int c = 0; c < classes; ++c)
          d[c] = softmax_xent_grad(x[c], c, label, classes, row, scale);
      }
    }
    if (stats != nullptr) {
      stats[0] += static_cast<float>(loss_sum / rows);
      stats[1] += static_cast<float>(correct / rows);
    }
  }

  // Memory-bound: one pass, vectorised. Then the step count, then the EMA (ema_update's
  // arithmetic, with the incremented count).
  void adam_step(float* __restrict params, const float* __restrict grads,
                 float* __restrict m, float* __restrict v, size_t n, const AdamHyper& h,
                 int64_t* step, const float* skip_if_nonzero, float* ema,
                 float ema_decay) override {
    if (ema != nullptr && !(ema_decay >= 0.0f && ema_decay < 1.0f))
      throw std::invalid_argument("adam_step: EMA decay " + std::to_string(ema_decay) +
                                  " is outside [0, 1)");
    if (skip_if_nonzero != nullptr && *skip_if_nonzero != 0.0f) return;
    const AdamCorrections c = adam_corrections(h, *step);
#pragma omp simd
    for (size_t i = 0; i < n; ++i) adam_update(grads[i], params[i], m[i], v[i], h, c);
    ++*step;
    if (ema != nullptr) ema_update(ema, params, n, ema_decay, step, nullptr);
  }

  void ema_update(float* __restrict ema, const float* __restrict params, size_t n, float decay,
                  const int64_t* updates, const float* skip_if_nonzero) override {
    if (!(decay >= 0.0f && decay < 1.0f))
      throw std::invalid_argument("ema_update: decay " + std::to_string(decay) +
                                  " is outside [0, 1)");
    if (skip_if_nonzero != nullptr && *skip_if_nonzero != 0.0f) return;
    const float d = ema_decay_at(*updates, decay);
    const float one_minus_d = 1.0f - d;
#pragma omp simd
    for (size_t i = 0; i < n; ++i) ema[i] = ema_blend(ema[i], params[i], d, one_minus_d);
  }

  void gaussian_noise(float* out, size_t n, uint64_t seed, uint32_t stream,
                      const int64_t* step) override {
    const uint64_t s = step != nullptr ? static_cast<uint64_t>(*step) : 0;
    float four[4];
    for (size_t group = 0; group * 4 < n; ++group) {
      philox_gaussian4(seed, stream, group, s, four);
      for (size_t e = 0; e < 4 && group * 4 + e < n; ++e) out[group * 4 + e] = four[e];
    }
  }

  void gather_batch(const uint8_t* dataset, const int32_t* perm, int n_images, int pixels, int rows,
                    const int64_t* step, int batches_per_step, int batch_offset,
                    int64_t batches_per_epoch, float* out) override {
    for (int r = 0; r < rows; ++r) {
      const int32_t image = perm[gather_perm_index(*step, batches_per_step, batch_offset,
                                                   batches_per_epoch, n_images, rows, r)];
      float* dst = out + static_cast<size_t>(r) * pixels;
      // A row of NaN for an image index outside [0, n_images), as the kernel.
      for (int p = 0; p < pixels; ++p) dst[p] = gathered_pixel(dataset, image, n_images, pixels, p);
    }
  }

  void gather_labels(const uint8_t* labels, const int32_t* perm, int n_images, int rows,
                     const int64_t* step, int batches_per_step, int batch_offset,
                     int64_t batches_per_epoch, int32_t* out) override {
    for (int r = 0; r < rows; ++r) {
      const int32_t image = perm[gather_perm_index(*step, batches_per_step, batch_offset,
                                                   batches_per_epoch, n_images, rows, r)];
      out[r] = gathered_label(labels, image, n_images);
    }
  }

  void random_labels(int32_t* out, size_t n, int classes, uint64_t seed, uint32_t stream,
                     const int64_t* step) override {
    if (classes < 1)
      throw std::invalid_argument("random_labels: classes " + std::to_string(classes) +
                                  " must be >= 1");
    const uint64_t s = step != nullptr ? static_cast<uint64_t>(*step) : 0;
    for (size_t i = 0; i < n; ++i) out[i] = philox_label(seed, stream, i, s, classes);
  }

  void one_hot(const int32_t* labels, float* out, int rows, int classes) override {
    for (int r = 0; r < rows; ++r) {
      float* row = out + static_cast<size_t>(r) * classes;
      for (int c = 0; c < classes; ++c) row[c] = one_hot_value(labels[r], c, classes);
    }
  }

  void increment(int64_t* counter, const float* skip_if_nonzero) override {
    if (skip_if_nonzero != nullptr && *skip_if_nonzero != 0.0f) return;
    ++*counter;
  }

  void accumulate(const float* x, float* acc, size_t n, const float* skip_if_nonzero) override {
    if (skip_if_nonzero != nullptr && *skip_if_nonzero != 0.0f) return;
    for (size_t i = 0; i < n; ++i) acc[i] += x[i];
  }

  void count_nonfinite(const float* x, size_t n, float* count) override {
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) bad += std::isfinite(x[i]) ? 0 : 1;
    *count += static_cast<float>(bad);
  }

 private:
  std::vector<float> dz_;     // linear_backward's packed dZ
  std::vector<float> mbd_o_;  // packed O / dO of a strided minibatch-discrimination call
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace mnistgan
