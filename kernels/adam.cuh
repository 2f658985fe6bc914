// adam.cuh: one Adam step over a flat parameter buffer, as torch.optim.Adam (no weight
// decay), with the step count's increment and optionally the EMA of the parameters folded in,
// in a single launch.
//
//   params, grads, m, v (n); step: device int64, Adam's t - 1 (read on the device so the
//   launch can be replayed from a CUDA graph).
//   t = *step + 1;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr_t / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   lr_t = lr * adam_lr_scale(hyper, t - 1) (core/formulas.h): lr, or linear decay to zero over
//   hyper.lr_decay_updates updates, from model z's own count step[z]
//   then, with ema (n): d = ema_decay_at(t, decay); ema = d ema + (1 - d) p (the updated p)
//   and *step = t.
//   skip_if_nonzero (optional, device float): the whole update is a no-op when it is != 0
//   (the divergence guard's skip-step policy), the step count and the EMA included.
//   models: blockIdx.y; model z's params, grads, m, v and ema start z * ms.<name> floats
//   further on, its step is step[z * ms.step], its skip flag skip_if_nonzero[z * ms.skip],
//   its ticket tickets[z] (tickets: `models` counters); with hypers and ema_decays (device arrays
//   of `models`, or nullptr) its hyperparameters hypers[z] and EMA decay ema_decays[z] instead
//   of hyper and ema_decay.
// The increment: every block reads *step before it takes a ticket (integer atomic) on a
// counter; the last block to take one has seen every block's read, so it alone writes
// *step = t and re-zeroes the counter for the next launch.
//
// Version: grid-stride, one element per thread per iteration. The bias corrections are
// computed in double once per block (thread 0, shared memory), then rounded to float as
// the CPU reference does. The element update uses explicitly rounded intrinsics (no FMA
// contraction), so it matches the CPU reference bit for bit given the same corrections.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t
#include <cstdint>  // int64_t

#include "core/op_types.h"  // AdamHyper

namespace mnistgan {

constexpr int kAdamThreads = 256;

// Element strides between consecutive models' buffers (adam_step's `models`).
struct AdamModelStrides {
  long long params = 0, grads = 0, m = 0, v = 0, ema = 0, step = 0, skip = 0;
};
// Models' buffers packed one after another: n floats apart, steps and skip flags adjacent.
inline AdamModelStrides packed_adam_strides(size_t n) {
  const long long f = static_cast<long long>(n);
  return {f, f, f, f, f, 1, 1};
}

// n == 0 does nothing. Throws std::invalid_argument on null pointers or a decay outside
// [0, 1) with ema.
// skip_if_nonzero: optional device float; when *skip_if_nonzero != 0 (read by the kernel, so
// graph replays see the current value) every thread returns at once and nothing changes.
// tickets: one zero-initialised device word per model, owned by the caller, left zeroed.
void adam_step(float* params, const float* grads, float* m, float* v, size_t n,
               const AdamHyper& hyper, int64_t* step, unsigned* tickets, cudaStream_t stream,
               const float* skip_if_nonzero = nullptr, float* ema = nullptr,
               float ema_decay = 0.0f, int models = 1, const AdamModelStrides& ms = {},
               const AdamHyper* hypers = nullptr, const float* ema_decays = nullptr);

}  // namespace mnistgan
