// test_util.h: small helpers for tests that move data through a Backend and compare results.
//
//   random_vector(n, seed, lo, hi)   uniform floats in [lo, hi), never exactly zero (a zero
//                                    hides sign, bias and scaling bugs)
//   upload(backend, host_vector)     a backend buffer holding a copy, freed automatically
//   download(backend, ptr, n)        the n elements at ptr, as a host vector
//   expect_close(got, want, atol, rtol, what)
//                                    |got - want| <= atol + rtol |want| elementwise; on failure
//                                    reports the worst element and the first few mismatches
//   expect_bitwise_equal(got, want, what)
//                                    the same bits (for ops that must match exactly)
//   is_cuda_emulation(backend)       the CUDA backend built against tests/cuda_emu (CPU)
//
// Plain C++ and GoogleTest only, so it builds with or without CUDA.
#pragma once

#include <gtest/gtest.h>

#include <cmath>      // std::fabs, std::isnan
#include <cstdint>    // uint32_t
#include <cstring>    // std::memcmp
#include <random>     // std::mt19937, std::uniform_real_distribution
#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::invalid_argument
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"  // BackendBuffer: what alloc and upload return
#include "core/op_checks.h"       // check_close: the comparison the op table uses

namespace mnistgan {
namespace test {

// An uninitialised backend buffer of n elements of T (float, int64_t, int32_t or uint8_t):
// NaN bytes on the CUDA emulation, so an op that reads what it should only write shows.
template <class T>
BackendBuffer<T> alloc(Backend& backend, size_t n) {
  return BackendBuffer<T>(backend, n);
}
// The same, zeroed: for counters and accumulated sums that an op adds to.
template <class T>
BackendBuffer<T> zeros(Backend& backend, size_t n) {
  return BackendBuffer<T>::zeroed(backend, n);
}

template <class T>
BackendBuffer<T> upload(Backend& backend, const std::vector<T>& host) {
  BackendBuffer<T> p(backend, host.size());
  if (!host.empty()) backend.to_backend(p.get(), host.data(), host.size() * sizeof(T));
  return p;
}

template <class T>
std::vector<T> download(Backend& backend, const T* p, size_t n) {
  std::vector<T> host(n);
  if (n != 0) backend.to_host(host.data(), p, n * sizeof(T));
  return host;
}

// The emulated device names itself "CPU emulation of sm_90" (tests/cuda_emu/emu.cpp); tests
// use this to drop only the shapes that are too slow to emulate, never their checks.
inline bool is_cuda_emulation(const Backend& backend) {
  return backend.name().find("CPU emulation") != std::string::npos;
}

inline std::vector<float> random_vector(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  if (!(lo < hi)) throw std::invalid_argument("random_vector: need lo < hi");
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(gen);
    while (x == 0.0f);
  }
  return v;
}

// True when every element passes; otherwise records one failure that names `what`, the
// count of mismatches, the worst element (largest error beyond its tolerance) and the
// first few mismatches. NaN in got or want counts as a mismatch unless both are NaN.
inline bool expect_close(const std::vector<float>& got, const std::vector<float>& want, double atol,
                         double rtol, const std::string& what) {
  const std::string mismatch = check_close(got, want, Tolerance{atol, rtol}, what, nullptr);
  if (!mismatch.empty()) ADD_FAILURE() << mismatch;
  return mismatch.empty();
}

inline bool expect_bitwise_equal(const std::vector<float>& got, const std::vector<float>& want,
                                 const std::string& what) {
  if (got.size() != want.size()) {
    ADD_FAILURE() << what << ": size " << got.size() << ", expected " << want.size();
    return false;
  }
  constexpr size_t kShowFirst = 5;
  size_t bad = 0;
  std::ostringstream first;
  first.precision(9);
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) == 0) continue;
    if (bad < kShowFirst) first << "\n  [" << i << "] got " << got[i] << ", want " << want[i];
    ++bad;
  }
  if (bad == 0) return true;
  ADD_FAILURE() << what << ": " << bad << " of " << got.size()
                << " elements differ bitwise; first:" << first.str();
  return false;
}

}  // namespace test
}  // namespace mnistgan
