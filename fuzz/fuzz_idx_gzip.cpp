// fuzz_idx_gzip: the IDX loaders on valid gzip streams of fuzzed content. Mutating a gzip
// file directly mostly breaks its CRC, so here the fuzzer writes the decompressed bytes and
// the target compresses them, which drives the chunked inflate and the output-buffer growth
// with arbitrary headers (lying counts, short and long data) the way a real .gz would.
//
// Input: byte 0 is the mode, the rest is the uncompressed content.
//   mode & 0x0f: deflate level (0..9; higher values clamp to 9)
//   mode & 0x10: split the content into two concatenated gzip members
//   mode & 0x20: cut the compressed stream short by (mode >> 6) + 1 bytes
// Oracle besides "no crash": unless the stream was cut, the gzip file must load exactly when
// the same content stored raw loads, and to the same result.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "io/idx.h"

namespace {

// parse()'s result, or nothing when it rejects the input with a DataError.
template <typename Parse>
auto parsed(Parse parse) -> std::optional<decltype(parse())> {
  try {
    return parse();
  } catch (const mnistgan::DataError&) {
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const uint8_t* content = data + 1;
  const size_t content_size = size - 1;
  const int level = std::min(mode & 0x0f, 9);
  std::string gz;
  if (mode & 0x10) {
    const size_t half = content_size / 2;
    gz = mnistgan::gzip_member(content, half, level) +
         mnistgan::gzip_member(content + half, content_size - half, level);
  } else {
    gz = mnistgan::gzip_member(content, content_size, level);
  }
  if (mode & 0x20) gz.resize(gz.size() - std::min<size_t>(gz.size(), (mode >> 6) + 1));
  const auto* bytes = reinterpret_cast<const uint8_t*>(gz.data());
  // Content that is itself gzip would be inflated when read raw, so it has no raw twin.
  const bool comparable =
      !(mode & 0x20) && !(content_size >= 2 && content[0] == 0x1f && content[1] == 0x8b);

  // The gzip file and the raw content, parsed with the same loader: both fail or both give
  // the same result.
  const auto images_gz =
      parsed([&] { return mnistgan::parse_idx_images(bytes, gz.size(), "fuzz-images.gz"); });
  const auto images_raw =
      parsed([&] { return mnistgan::parse_idx_images(content, content_size, "fuzz-images"); });
  const auto same_images = [](const mnistgan::IdxImages& a, const mnistgan::IdxImages& b) {
    return a.pixels == b.pixels && a.count == b.count && a.rows == b.rows && a.cols == b.cols;
  };
  if (comparable && (images_gz.has_value() != images_raw.has_value() ||
                     (images_gz && !same_images(*images_gz, *images_raw))))
    std::abort();
  const auto labels_gz =
      parsed([&] { return mnistgan::parse_idx_labels(bytes, gz.size(), "fuzz-labels.gz"); });
  const auto labels_raw =
      parsed([&] { return mnistgan::parse_idx_labels(content, content_size, "fuzz-labels"); });
  if (comparable && labels_gz != labels_raw) std::abort();
  return 0;
}
