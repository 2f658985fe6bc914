// philox.h: Philox4x32-10 counter-based generator (Salmon et al., SC'11), shared by the
// CPU and CUDA backends so both draw the identical noise for a given (seed, stream, step).
//
// Why counter-based: the value at (key, counter) depends on nothing else, so any element
// of any step's noise can be produced independently and in parallel, resume needs no
// generator state beyond the step number, and parallel workers can never draw the same
// numbers by accident (the classic data-loader-worker seeding bug) because each one's
// counter is distinct by construction.
//
// Gaussians: Box-Muller on pairs of uniforms, computed in double and rounded to float, so
// the CPU's libm and CUDA's device math agree to the last float bit in practice.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"  // MNISTGAN_HD

namespace mnistgan {

struct Philox4 {
  uint32_t v[4];
};

MNISTGAN_HD uint32_t philox_mulhi(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// 10 rounds of Philox4x32 on counter c with key (k0, k1).
MNISTGAN_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = philox_mulhi(kMul0, c.v[0]), lo0 = kMul0 * c.v[0];
    const uint32_t hi1 = philox_mulhi(kMul1, c.v[2]), lo1 = kMul1 * c.v[2];
    Philox4 next;
    next.v[0] = hi1 ^ c.v[1] ^ k0;
    next.v[1] = lo1;
    next.v[2] = hi0 ^ c.v[3] ^ k1;
    next.v[3] = lo0;
    c = next;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return c;
}

// The 128 random bits at (index, step) of stream (seed, stream): key = (seed low 32 bits,
// seed high 32 bits ^ stream), counter = (index low, index high, step low, step high).
MNISTGAN_HD Philox4 philox_draw(uint64_t seed, uint32_t stream, uint64_t index, uint64_t step) {
  const Philox4 counter{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                         static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)}};
  return philox4x32_10(counter, static_cast<uint32_t>(seed),
                       static_cast<uint32_t>(seed >> 32) ^ stream);
}

// Uniform in (0, 1], never 0 so log() in Box-Muller is finite. 32 bits -> double.
MNISTGAN_HD double philox_uniform(uint32_t x) {
  return (static_cast<double>(x) + 1.0) * 2.3283064365386963e-10;
}

// The four N(0,1) values for elements [4*group, 4*group + 4) of noise stream
// (seed, stream) at step `step`. Key = (seed low 32 bits, seed high 32 bits ^ stream),
// counter = (group low, group high, step low, step high).
MNISTGAN_HD void philox_gaussian4(uint64_t seed, uint32_t stream, uint64_t group, uint64_t step,
                                  float out[4]) {
  const Philox4 r = philox_draw(seed, stream, group, step);
  constexpr double kTwoPi = 6.283185307179586;
  for (int pair = 0; pair < 2; ++pair) {
    const double u1 = philox_uniform(r.v[2 * pair]);
    const double u2 = philox_uniform(r.v[2 * pair + 1]);
    const double radius = sqrt(-2.0 * log(u1));
    out[2 * pair] = static_cast<float>(radius * cos(kTwoPi * u2));
    out[2 * pair + 1] = static_cast<float>(radius * sin(kTwoPi * u2));
  }
}

// Uniform float in [0, 1) for element i of stream (seed, stream) at `step`; used for
// initialisation and shuffles so those are reproducible across backends too.
MNISTGAN_HD float philox_uniform_float(uint64_t seed, uint32_t stream, uint64_t i, uint64_t step) {
  const Philox4 r = philox_draw(seed, stream, i, step);
  return static_cast<float>(r.v[0] >> 8) * (1.0f / 16777216.0f);  // 24 bits -> [0, 1)
}

// A label uniform in [0, classes) for element i of stream (seed, stream) at `step` (the fake
// labels of a conditional run): the first 32 bits of the draw scaled by classes, keeping the
// high part of the 64-bit product (Lemire's multiply-shift; its bias is classes / 2^32, far
// below anything a run could see), so no division and the same integer on every backend.
MNISTGAN_HD int32_t philox_label(uint64_t seed, uint32_t stream, uint64_t i, uint64_t step,
                                 int32_t classes) {
  const Philox4 r = philox_draw(seed, stream, i, step);
  return static_cast<int32_t>((static_cast<uint64_t>(r.v[0]) * static_cast<uint32_t>(classes)) >>
                              32);
}

}  // namespace mnistgan
