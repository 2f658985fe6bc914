// fuzz_idx_images: the IDX image loader on arbitrary bytes, raw or gzip (the loader detects
// gzip by its magic, so gzip seeds keep the fuzzer exploring the inflate path too).
// Contract under test (idx.h): any input either loads, consistently with its header, or
// throws DataError; no crash, no UB, no allocation larger than the data can justify.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const mnistgan::IdxImages images = mnistgan::parse_idx_images(data, size, "fuzz-images");
    // A successful load must agree with itself: count*rows*cols pixels.
    const uint64_t expected = static_cast<uint64_t>(images.count) *
                              static_cast<uint64_t>(images.rows) *
                              static_cast<uint64_t>(images.cols);
    if (images.count < 1 || images.rows < 1 || images.cols < 1 ||
        images.rows > mnistgan::kIdxMaxSide || images.cols > mnistgan::kIdxMaxSide ||
        images.pixels.size() != expected)
      std::abort();
  } catch (const mnistgan::DataError&) {
    // The documented way to refuse a bad file.
  }
  return 0;
}
