// fuzz_idx_labels: the IDX label loader on arbitrary bytes, raw or gzip. Any input either
// loads (at least one label) or throws DataError; no crash, no UB.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    if (mnistgan::parse_idx_labels(data, size, "fuzz-labels").empty()) std::abort();
  } catch (const mnistgan::DataError&) {
  }
  return 0;
}
