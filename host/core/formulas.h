// formulas.h: the per-element formulas that the CPU reference (host/backends/cpu_backend.cpp)
// and the kernels (kernels/*.cu) share, written once. The loops, reductions and memory
// layouts around them stay with each side; only the arithmetic on one element lives here.
//
// Rounding (host_device.h): *_rn helpers where the kernel must round exactly as the CPU
// (Adam, EMA, pixel scaling: bitwise identical on every backend); plain operators where
// the backends are compared at a tolerance and nvcc may fuse (activations, BCE).
// Math functions are the global float ones (expf, tanhf, ...): libm's on the host, CUDA's
// on the device.
#pragma once

#include <math.h>  // expf, log1pf, fabsf, fmaxf, tanhf, pow, sqrt (global names, device too)

#include <cstdint>  // int64_t, uint8_t, uint32_t, uint64_t

#include "core/op_types.h"     // Activation, AdamHyper, Dropout
#include "core/host_device.h"  // MNISTGAN_HD, add_rn..., quiet_nan
#include "core/philox.h"       // philox_draw (dropout masks)

namespace mnistgan {

// ---- activations --------------------------------------------------------------------------

// act(z). LeakyReLU: z > 0 ? z : slope z.
MNISTGAN_HD float activate(float z, Activation act, float slope) {
  switch (act) {
    case Activation::kLeakyRelu:
      return z > 0.0f ? z : slope * z;
    case Activation::kTanh:
      return tanhf(z);
    default:
      return z;
  }
}

// dL/dz from the saved output y = act(z) and g = dL/dy. y > 0 iff z > 0 for a positive
// slope, so the LeakyReLU derivative reads the output and the pre-activation need not be
// kept; tanh' = 1 - y^2.
MNISTGAN_HD float activation_grad(float y, float g, Activation act, float slope) {
  switch (act) {
    case Activation::kLeakyRelu:
      return y > 0.0f ? g : slope * g;
    case Activation::kTanh:
      return g * (1.0f - y * y);
    default:
      return g;
  }
}

// ---- inverted dropout (op_types.h's Dropout) ----------------------------------------------

// The integer a kept element's 32 random bits reach: p 2^32, exact in double for a float p
// (24-bit mantissa), truncated; below 2^32 for every p < 1.
MNISTGAN_HD uint32_t dropout_threshold(float p) {
  return static_cast<uint32_t>(static_cast<double>(p) * 4294967296.0);
}

// The kept elements' scale 1 / (1 - p), in double, rounded to float.
MNISTGAN_HD float dropout_scale(float p) {
  return static_cast<float>(1.0 / (1.0 - static_cast<double>(p)));
}

// Whether element i survives at `step`: the first word of the Philox draw (seed, stream, i,
// step) against the threshold. Integer only, so bitwise the same on every backend.
MNISTGAN_HD bool dropout_keep(uint64_t seed, uint32_t stream, uint64_t i, uint64_t step,
                              uint32_t threshold) {
  return philox_draw(seed, stream, i, step).v[0] >= threshold;
}

// Forward: a = act(z) of a kept element times the scale, 0 for a dropped one.
MNISTGAN_HD float dropout_output(float a, bool keep, float scale) {
  return keep ? a * scale : 0.0f;
}

// Backward through dropout and the activation, given y = dropout_output(act(z)) and g = dL/dy:
// dL/dz = act'(z) scale g for a kept element, 0 for a dropped one. act' is read from y as in
// activation_grad: for LeakyReLU y's sign is act(z)'s (scale > 0); tanh's 1 - act(z)^2 cannot
// be read from a scaled y, so dropout takes LeakyReLU or no activation (the launchers check).
MNISTGAN_HD float dropout_activation_grad(float y, float g, Activation act, float slope, bool keep,
                                          float scale) {
  return keep ? activation_grad(y, g * scale, act, slope) : 0.0f;
}

// ---- binary cross-entropy on logits -------------------------------------------------------

struct BceTerms {
  float loss;  // -t log(sigmoid(x)) - (1 - t) log(1 - sigmoid(x))
  float prob;  // sigmoid(x)
};

// One logit x with target t. exp of a non-positive number only: no overflow for any x.
//   log(1 + e^x) - x t = max(x, 0) - x t + log1p(e^-|x|)
//   sigmoid(x) = 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) for x < 0
MNISTGAN_HD BceTerms bce_with_logits_terms(float x, float target) {
  const float ex = expf(-fabsf(x));
  const float loss = fmaxf(x, 0.0f) - x * target + log1pf(ex);
  const float prob = x >= 0.0f ? 1.0f / (1.0f + ex) : ex / (1.0f + ex);
  return {loss, prob};
}

// d(grad_scale * mean loss)/dx for one of n logits: grad_scale (sigmoid(x) - t) / n.
MNISTGAN_HD float bce_with_logits_grad(float prob, float target, float grad_scale, int n) {
  return grad_scale * (prob - target) / static_cast<float>(n);
}

// ---- softmax cross-entropy, one row ------------------------------------------------------

// Of logits x (classes): the maximum, the first index holding it, and sum_c exp(x_c - max).
struct SoftmaxRow {
  float max;
  int argmax;
  float sum;
};
MNISTGAN_HD SoftmaxRow softmax_row(const float* x, int classes) {
  SoftmaxRow s{x[0], 0, 0.0f};
  for (int c = 1; c < classes; ++c)
    if (x[c] > s.max) s.max = x[c], s.argmax = c;
  for (int c = 0; c < classes; ++c) s.sum += expf(x[c] - s.max);
  return s;
}

// log(sum exp(x)) - x_label = log(sum exp(x - max)) - (x_label - max); NaN for a label
// outside [0, classes).
MNISTGAN_HD float softmax_xent_loss(const float* x, int label, int classes, const SoftmaxRow& s) {
  return label >= 0 && label < classes ? logf(s.sum) - (x[label] - s.max) : quiet_nan();
}

// scale (softmax(x)_c - [c == label]) for logit x_c; NaN for a label outside [0, classes).
MNISTGAN_HD float softmax_xent_grad(float x_c, int c, int label, int classes, const SoftmaxRow& s,
                                    float scale) {
  return label >= 0 && label < classes
             ? scale * (expf(x_c - s.max) / s.sum - (c == label ? 1.0f : 0.0f))
             : quiet_nan();
}

// ---- Adam ---------------------------------------------------------------------------------

// The learning-rate schedule's factor for update t = step + 1, in double: 1 for a constant lr
// (h.lr_decay_updates == 0); with linear decay over T = h.lr_decay_updates updates,
// 1 - (t - 1) / T = (T - step) / T, so update 1 uses the full lr, update T uses lr / T, and
// an update past T uses 0. t counts the updates applied (a skipped update under
// --nan-policy skip-step leaves the step count, so the schedule, where it was).
MNISTGAN_HD double adam_lr_scale(const AdamHyper& h, int64_t step) {
  if (h.lr_decay_updates <= 0) return 1.0;
  if (step >= h.lr_decay_updates) return 0.0;
  return static_cast<double>(h.lr_decay_updates - step) / static_cast<double>(h.lr_decay_updates);
}

// The bias corrections of update t = step + 1, in double from the float hyperparameters,
// then rounded to float: step_size = lr_t / (1 - b1^t) with lr_t = lr * adam_lr_scale (exactly
// lr when constant, so a constant run's bits do not depend on the schedule code),
// bc2_sqrt = sqrt(1 - b2^t).
struct AdamCorrections {
  float step_size;
  float bc2_sqrt;
};
MNISTGAN_HD AdamCorrections adam_corrections(const AdamHyper& h, int64_t step) {
  const double t = static_cast<double>(step + 1);
  const double lr_t = static_cast<double>(h.lr) * adam_lr_scale(h, step);
  return {static_cast<float>(lr_t / (1.0 - pow(static_cast<double>(h.beta1), t))),
          static_cast<float>(sqrt(1.0 - pow(static_cast<double>(h.beta2), t)))};
}

// One parameter p with gradient g and moments m, v, every operation rounded on its own:
//   m = b1 m + (1 - b1) g;  v = b2 v + ((1 - b2) g) g
//   p -= (step_size m) / (sqrt(v) / bc2_sqrt + eps)
MNISTGAN_HD void adam_update(float g, float& p, float& m, float& v, const AdamHyper& h,
                             AdamCorrections c) {
  const float mi = add_rn(mul_rn(h.beta1, m), mul_rn(sub_rn(1.0f, h.beta1), g));
  const float vi = add_rn(mul_rn(h.beta2, v), mul_rn(mul_rn(sub_rn(1.0f, h.beta2), g), g));
  m = mi;
  v = vi;
  const float denom = add_rn(div_rn(sqrt_rn(vi), c.bc2_sqrt), h.eps);
  p = sub_rn(p, div_rn(mul_rn(c.step_size, mi), denom));
}

// ---- EMA of the generator -----------------------------------------------------------------

// The decay after `updates` optimiser updates: min(decay, (1 + t) / (10 + t)) in double,
// rounded to float (the warm-up lets the average forget the initial weights quickly).
MNISTGAN_HD float ema_decay_at(int64_t updates, float decay) {
  const double t = static_cast<double>(updates);
  const double warm = (1.0 + t) / (10.0 + t);
  return static_cast<float>(warm < decay ? warm : static_cast<double>(decay));
}

// ema = d ema + (1 - d) p, with one_minus_d = 1 - d computed once by the caller.
MNISTGAN_HD float ema_blend(float ema, float p, float d, float one_minus_d) {
  return add_rn(mul_rn(d, ema), mul_rn(one_minus_d, p));
}

// ---- the data batch -----------------------------------------------------------------------

// The element of perm (2, n_images) that names row r of the batch queued at `step`:
//   batch = step * batches_per_step + batch_offset, slot = (batch / batches_per_epoch) % 2,
//   b = batch % batches_per_epoch, index = slot * n_images + b * rows + r.
MNISTGAN_HD int64_t gather_perm_index(int64_t step, int batches_per_step, int batch_offset,
                                      int64_t batches_per_epoch, int n_images, int rows, int r) {
  const int64_t batch = step * batches_per_step + batch_offset;
  const int64_t slot = (batch / batches_per_epoch) % 2;
  const int64_t b = batch % batches_per_epoch;
  return slot * n_images + b * rows + r;
}

// A uint8 pixel scaled to [-1, 1]: v / 127.5 - 1.
MNISTGAN_HD float scale_pixel(uint8_t v) {
  return sub_rn(div_rn(static_cast<float>(v), 127.5f), 1.0f);
}

// Pixel p of image `image` of dataset (n_images, pixels), scaled; a quiet NaN for an image
// index outside [0, n_images): a corrupt permutation shows as NaN in the batch and the
// losses, not as an out-of-bounds read.
MNISTGAN_HD float gathered_pixel(const uint8_t* dataset, int32_t image, int n_images, int pixels,
                                 int p) {
  if (image < 0 || image >= n_images) return quiet_nan();
  return scale_pixel(dataset[static_cast<size_t>(image) * pixels + p]);
}

// The label of image `image`, or -1 for an index outside [0, n_images) (as gathered_pixel).
MNISTGAN_HD int32_t gathered_label(const uint8_t* labels, int32_t image, int n_images) {
  return image >= 0 && image < n_images ? static_cast<int32_t>(labels[image]) : -1;
}

// Element c of the one-hot row of `label` over `classes`: 1 or 0, and a quiet NaN in every
// element for a label outside [0, classes), so a bad label cannot pass as a digit.
MNISTGAN_HD float one_hot_value(int32_t label, int c, int classes) {
  if (label < 0 || label >= classes) return quiet_nan();
  return c == label ? 1.0f : 0.0f;
}

}  // namespace mnistgan
