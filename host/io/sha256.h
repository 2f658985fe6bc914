// sha256.h: SHA-256 (FIPS 180-4), small and dependency-free, to name the feature
// classifier's weights: an evaluation records the digest of the classifier it used, so two
// evaluations are comparable only when their digests match.
#pragma once

#include <array>
#include <cstddef>  // size_t
#include <cstdint>
#include <string>

namespace mnistgan {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t bytes);
  std::array<uint8_t, 32> finish();  // the object must not be updated afterwards

 private:
  void compress(const uint8_t block[64]);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex digest of `bytes` bytes at `data`.
std::string sha256_hex(const void* data, size_t bytes);

}  // namespace mnistgan
