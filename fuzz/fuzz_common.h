// fuzz_common.h: what the fuzz targets, fuzz_make_seeds and tests/io/test_fuzz_found.cpp share:
// the small model a fuzzed checkpoint is restored into (small so that a restore costs
// microseconds, not the ~37 MB of the default model), the synthetic images it trains on,
// gzip in memory and the checkpoint CRC fix-up.
#pragma once

#include <zlib.h>  // deflateInit2, deflate: gzip members in memory; crc32

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config.h"
#include "io/idx.h"

namespace mnistgan {

// The run every seed checkpoint comes from: 4x4 images, G 4-8-16, D 16-8-[mbd 2x2]-1.
inline TrainConfig fuzz_config() {
  TrainConfig c;
  c.device = "cpu";
  c.epochs = 1;
  c.batch_size = 2;
  c.latent_dim = 4;
  c.hidden_g = {8};
  c.hidden_d = {8};
  c.mbd_kernels = 2;
  c.mbd_dims = 2;
  c.seed = 7;
  return c;
}

// 8 images of 4x4 pixels, a different ramp each: (8, 16).
inline IdxImages fuzz_images() {
  IdxImages images;
  images.count = 8;
  images.rows = 4;
  images.cols = 4;
  for (int i = 0; i < 8 * 16; ++i) images.pixels.push_back(static_cast<uint8_t>(i * 37));
  return images;
}

// One gzip member (header, deflate data at `level` 0..9, CRC and length trailer).
inline std::string gzip_member(const uint8_t* data, size_t size, int level) {
  z_stream zs{};
  // 16 + MAX_WBITS: write a gzip wrapper rather than a zlib one.
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out(deflateBound(&zs, static_cast<uLong>(size)) + 32, '\0');
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  const int ret = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (ret != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  return out;
}

// Rewrites the CRC-32 trailer of checkpoint bytes (over everything after the 8-byte magic,
// stored in the last 4 bytes) to match: a mutated file almost never has a valid CRC, and
// without the fix-up nothing past that check (header, tensor table, restore) is reached.
// Returns whether it changed anything (false when the CRC matched or bytes is too short).
inline bool fix_checkpoint_crc(std::string& bytes) {
  if (bytes.size() < 8 + 4 + 4) return false;
  const size_t end = bytes.size() - 4;
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  const uint32_t crc =
      static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), p + 8, static_cast<uInt>(end - 8)));
  if (std::memcmp(&crc, p + end, 4) == 0) return false;
  std::memcpy(&bytes[end], &crc, 4);
  return true;
}

}  // namespace mnistgan
