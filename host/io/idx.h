// idx.h: reading and writing MNIST-format IDX files (LeCun's format: a big-endian header
// 00 00 <type> <rank>, then <rank> uint32 dimensions, then the data row-major).
//
//   images: magic 0x00000803 (type 0x08 = ubyte, rank 3), dims (count, rows, cols)
//   labels: magic 0x00000801 (type 0x08 = ubyte, rank 1), dims (count)
//
// Files may be raw or gzip-compressed; gzip is detected by its magic bytes (1f 8b), never by
// the name. Every check failure throws DataError with a one-line message that starts with the
// file's path, says what is wrong and, where it helps, what to do. The loaders never trust
// the header for an allocation: a raw file must have exactly the size the header promises
// before anything is allocated, and gzip data is inflated chunk by chunk into a buffer that
// never grows past the header's size, failing as soon as the stream is longer or shorter.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mnistgan {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An IDX image file in memory.
struct IdxImages {
  int64_t count = 0;
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> pixels;  // (count, rows*cols), row-major, 0 = background
};

// Largest rows or cols a loader accepts; MNIST is 28x28.
constexpr int kIdxMaxSide = 4096;

// Reads an image file (raw or gzip). Throws DataError.
IdxImages load_idx_images(const std::string& path);

// Reads a label file (raw or gzip); labels is (count). Labels are not range-checked here
// (MNIST-format sets other than MNIST may have more than 10 classes). Throws DataError.
std::vector<uint8_t> load_idx_labels(const std::string& path);

// The same loaders on a file's bytes already in memory (raw or gzip, data[0..size) is not
// copied); `source` names the input in messages. They share every check with the file
// loaders above (only the file is not opened), which is what the fuzz targets in fuzz/ rely
// on. Throw DataError.
IdxImages parse_idx_images(const uint8_t* data, size_t size, const std::string& source);
std::vector<uint8_t> parse_idx_labels(const uint8_t* data, size_t size, const std::string& source);

// One split of an MNIST-format dataset: images.count == labels.size().
struct MnistSplit {
  IdxImages images;
  std::vector<uint8_t> labels;  // (count)
};

// Loads split "train" or "t10k" from dir: <dir>/<split>-images-idx3-ubyte and
// <dir>/<split>-labels-idx1-ubyte, each also accepted with a .gz suffix (the raw file is
// preferred when both exist). Throws DataError when a file is missing or bad, or when the
// image and label counts differ.
MnistSplit load_mnist(const std::string& dir, const std::string& split);

// Write raw (uncompressed) IDX files, for tests and tools that make small synthetic
// datasets. The data must be consistent (pixels.size() == count*rows*cols, every dimension
// at least 1 and loadable by the loaders above); otherwise, or when the write fails, they
// throw DataError. The file is written in place, not atomically.
void write_idx_images(const std::string& path, const IdxImages& images);
void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels);

}  // namespace mnistgan
