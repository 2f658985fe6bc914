// test_idx.cpp: the IDX loader (host/io/idx.h) on files the tests write themselves: round trips
// raw and gzip, every kind of bad file (each must throw DataError naming the file, never
// crash or allocate what a lying header promises), load_mnist on a synthetic folder, and the
// real MNIST train and test sets when scripts/fetch_mnist.sh has put them in data/mnist/.
#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp
#include <zlib.h>    // gzopen, gzwrite: gzip files for the loader to read

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "io/idx.h"
#include "test_paths.h"  // source_dir

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// An IDX file's bytes: 00 00 <type> <rank>, the dims big-endian, then data.
Bytes idx_bytes(std::vector<uint32_t> dims, const Bytes& data, uint8_t type = 0x08) {
  Bytes b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) put_be32(b, d);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Bytes random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

IdxImages random_images(int64_t count, int rows, int cols, uint32_t seed) {
  IdxImages im;
  im.count = count;
  im.rows = rows;
  im.cols = cols;
  im.pixels = random_bytes(static_cast<size_t>(count * rows * cols), seed);
  return im;
}

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(f.good()) << path;
}

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Gzip of b, written by zlib's gzip file API (one member per call to write).
void write_gzip(const std::string& path, const Bytes& b, const char* mode = "wb") {
  gzFile gz = gzopen(path.c_str(), mode);
  ASSERT_NE(gz, nullptr) << path;
  ASSERT_EQ(gzwrite(gz, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "mnistgan_idx_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string dir_;
};

// Runs fn, which must throw DataError whose message starts with path and contains every
// one of parts.
void expect_data_error(const std::function<void()>& fn, const std::string& path,
                       const std::vector<std::string>& parts = {}) {
  try {
    fn();
    ADD_FAILURE() << "no DataError for " << path;
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type for " << path << ": " << e.what();
  }
}

void expect_images_error(const std::string& path, const std::vector<std::string>& parts = {}) {
  expect_data_error([&] { load_idx_images(path); }, path, parts);
}
void expect_labels_error(const std::string& path, const std::vector<std::string>& parts = {}) {
  expect_data_error([&] { load_idx_labels(path); }, path, parts);
}

// ---- good files ---------------------------------------------------------------------------

TEST_F(IdxTest, RawRoundTrip) {
  const IdxImages im = random_images(7, 28, 28, 1);
  const Bytes labels = {0, 1, 2, 3, 4, 5, 9};
  write_idx_images(path("im"), im);
  write_idx_labels(path("lb"), labels);
  EXPECT_EQ(read_bytes(path("im")).size(), 16u + 7 * 28 * 28);
  EXPECT_EQ(read_bytes(path("lb")).size(), 8u + 7);

  const IdxImages back = load_idx_images(path("im"));
  EXPECT_EQ(back.count, 7);
  EXPECT_EQ(back.rows, 28);
  EXPECT_EQ(back.cols, 28);
  EXPECT_EQ(back.pixels, im.pixels);
  EXPECT_EQ(load_idx_labels(path("lb")), labels);
}

TEST_F(IdxTest, RawNonSquareHeaderIsBigEndian) {
  // 3 images of 2x5: dims 00000003 00000002 00000005.
  const Bytes data = random_bytes(3 * 2 * 5, 2);
  write_bytes(path("im"), idx_bytes({3, 2, 5}, data));
  const IdxImages im = load_idx_images(path("im"));
  EXPECT_EQ(im.count, 3);
  EXPECT_EQ(im.rows, 2);
  EXPECT_EQ(im.cols, 5);
  EXPECT_EQ(im.pixels, data);
}

TEST_F(IdxTest, GzipRoundTrip) {
  // Larger than the loader's first 1 MiB output chunk, so the buffer has to grow.
  const IdxImages im = random_images(2000, 28, 28, 3);
  const Bytes labels = random_bytes(2000, 4);
  write_gzip(path("im.gz"), idx_bytes({2000, 28, 28}, im.pixels));
  write_gzip(path("lb.gz"), idx_bytes({2000}, labels));
  const IdxImages back = load_idx_images(path("im.gz"));
  EXPECT_EQ(back.count, 2000);
  EXPECT_EQ(back.pixels, im.pixels);
  EXPECT_EQ(load_idx_labels(path("lb.gz")), labels);
}

TEST_F(IdxTest, GzipDetectedByMagicNotName) {
  const Bytes labels = {3, 1, 4, 1, 5};
  write_gzip(path("gzip_without_suffix"), idx_bytes({5}, labels));
  write_bytes(path("raw_with_suffix.gz"), idx_bytes({5}, labels));
  EXPECT_EQ(load_idx_labels(path("gzip_without_suffix")), labels);
  EXPECT_EQ(load_idx_labels(path("raw_with_suffix.gz")), labels);
}

TEST_F(IdxTest, GzipConcatenatedMembers) {
  // `cat a.gz b.gz` is a valid gzip file of a then b; gunzip accepts it, so do we.
  const Bytes file = idx_bytes({6}, {1, 2, 3, 4, 5, 6});
  write_gzip(path("lb.gz"), Bytes(file.begin(), file.begin() + 9));
  write_gzip(path("lb.gz"), Bytes(file.begin() + 9, file.end()), "ab");
  EXPECT_EQ(load_idx_labels(path("lb.gz")), Bytes({1, 2, 3, 4, 5, 6}));
}

// ---- bad files ----------------------------------------------------------------------------

TEST_F(IdxTest, MissingFile) {
  expect_images_error(path("nope"), {"no such file", "fetch_mnist.sh"});
  expect_labels_error(path("nope"), {"no such file", "fetch_mnist.sh"});
}

TEST_F(IdxTest, DirectoryIsNotAFile) {
  fs::create_directory(path("sub"));
  expect_images_error(path("sub"), {"not a regular file"});
}

TEST_F(IdxTest, EmptyFile) {
  write_bytes(path("empty"), {});
  expect_images_error(path("empty"), {"empty"});
  expect_labels_error(path("empty"), {"empty"});
}

TEST_F(IdxTest, WrongMagic) {
  write_bytes(path("junk"), random_bytes(100, 5));
  expect_images_error(path("junk"), {"not an IDX file"});
  const std::string html = "<html><body>403 Forbidden</body></html>";
  write_bytes(path("html"), Bytes(html.begin(), html.end()));
  expect_images_error(path("html"), {"not an IDX file", "HTML"});
  // Fewer bytes than a magic number.
  write_bytes(path("short"), {0, 0, 8});
  expect_labels_error(path("short"), {"too short"});
}

TEST_F(IdxTest, WrongElementType) {
  // 0x0d = float; same size per element would not matter, the type is refused.
  write_bytes(path("float"), idx_bytes({4}, {0, 0, 0, 0}, 0x0d));
  expect_labels_error(path("float"), {"type 0x0d"});
}

TEST_F(IdxTest, WrongRank) {
  write_idx_labels(path("lb"), {1, 2, 3});
  write_idx_images(path("im"), random_images(3, 4, 4, 6));
  expect_images_error(path("lb"), {"rank 1, expected 3", "labels file"});
  expect_labels_error(path("im"), {"rank 3, expected 1", "images file"});
  write_bytes(path("rank2"), idx_bytes({2, 2}, {1, 2, 3, 4}));
  expect_images_error(path("rank2"), {"rank 2"});
}

TEST_F(IdxTest, TruncatedHeader) {
  Bytes b = idx_bytes({10, 28, 28}, {});
  b.resize(10);  // magic + 1.5 dims
  write_bytes(path("im"), b);
  expect_images_error(path("im"), {"truncated header"});
}

TEST_F(IdxTest, ZeroDimension) {
  write_bytes(path("im0"), idx_bytes({0, 28, 28}, {}));
  expect_images_error(path("im0"), {"zero dimension"});
  write_bytes(path("rows0"), idx_bytes({5, 0, 28}, {}));
  expect_images_error(path("rows0"), {"zero dimension"});
  write_bytes(path("lb0"), idx_bytes({0}, {}));
  expect_labels_error(path("lb0"), {"zero dimension"});
}

TEST_F(IdxTest, ImageSideTooLarge) {
  write_bytes(path("im"), idx_bytes({1, 5000, 1}, random_bytes(5000, 7)));
  expect_images_error(path("im"), {"5000", "not supported"});
}

TEST_F(IdxTest, TruncatedData) {
  // The message the README quotes: header size against file size, and what to do.
  write_bytes(path("im"), idx_bytes({60000, 28, 28}, random_bytes(1000 - 16, 8)));
  expect_images_error(
      path("im"),
      {"truncated: header says 60000x28x28 = 47040016 bytes, file has 1000", "fetch_mnist.sh"});
  write_bytes(path("lb"), idx_bytes({10}, {1, 2, 3}));
  expect_labels_error(path("lb"), {"truncated"});
}

TEST_F(IdxTest, TrailingBytes) {
  write_bytes(path("im"), idx_bytes({2, 3, 3}, random_bytes(2 * 9 + 5, 9)));
  expect_images_error(path("im"), {"5 trailing bytes"});
  write_bytes(path("lb"), idx_bytes({3}, {1, 2, 3, 4}));
  expect_labels_error(path("lb"), {"1 trailing bytes"});
}

TEST_F(IdxTest, HugeHeaderRawFailsBeforeAllocating) {
  // 2^31 x 28 x 28 is 1.7 TB and 2^32-1 x 4096 x 4096 is 2^56 bytes: allocating either would
  // throw std::bad_alloc (not DataError) and fail this test.
  write_bytes(path("im"), idx_bytes({1u << 31, 28, 28}, random_bytes(64, 10)));
  expect_images_error(path("im"), {"truncated", "2147483648x28x28"});
  write_bytes(path("max"), idx_bytes({UINT32_MAX, 4096, 4096}, random_bytes(64, 11)));
  expect_images_error(path("max"), {"truncated"});
  write_bytes(path("lb"), idx_bytes({UINT32_MAX}, {1, 2}));
  expect_labels_error(path("lb"), {"truncated"});
}

TEST_F(IdxTest, HugeHeaderGzipFailsBeforeAllocating) {
  write_gzip(path("im.gz"), idx_bytes({1u << 31, 28, 28}, random_bytes(64, 12)));
  expect_images_error(path("im.gz"), {"more than a gzip file", "can hold"});
  write_gzip(path("max.gz"), idx_bytes({UINT32_MAX, 4096, 4096}, {}));
  expect_images_error(path("max.gz"), {"can hold"});
}

TEST_F(IdxTest, GzipShorterThanHeader) {
  // The header's 2000 images are plausible for the file size (random data does not
  // compress), so this reaches the inflate loop, which runs out of data at 1000.
  write_gzip(path("im.gz"), idx_bytes({2000, 28, 28}, random_bytes(1000 * 784, 13)));
  expect_images_error(path("im.gz"), {"truncated", "(decompressed)", "file has 784016"});
}

TEST_F(IdxTest, GzipLongerThanHeader) {
  write_gzip(path("im.gz"), idx_bytes({10, 28, 28}, random_bytes(11 * 784, 14)));
  expect_images_error(path("im.gz"), {"longer than its header"});
  write_gzip(path("lb.gz"), idx_bytes({3}, {1, 2, 3, 4}));
  expect_labels_error(path("lb.gz"), {"longer than its header"});
}

TEST_F(IdxTest, CorruptGzip) {
  write_gzip(path("good.gz"), idx_bytes({50, 28, 28}, random_bytes(50 * 784, 15)));
  const Bytes good = read_bytes(path("good.gz"));
  ASSERT_GT(good.size(), 100u);

  Bytes bad_crc = good;  // the trailer is CRC32 then ISIZE, little-endian
  bad_crc[bad_crc.size() - 8] ^= 0xff;
  write_bytes(path("crc.gz"), bad_crc);
  expect_images_error(path("crc.gz"), {"corrupt gzip"});

  Bytes bad_method = good;  // byte 2 is the compression method, 8 = deflate
  bad_method[2] = 7;
  write_bytes(path("method.gz"), bad_method);
  expect_images_error(path("method.gz"), {"corrupt gzip"});

  // Flipped bits in the deflate data: zlib reports bad codes, or the CRC catches them.
  for (int i = 0; i < 20; ++i) {
    Bytes flipped = good;
    const size_t at = 20 + static_cast<size_t>(i) * (good.size() - 40) / 20;
    flipped[at] ^= 0x5a;
    const std::string p = path("flip" + std::to_string(i) + ".gz");
    write_bytes(p, flipped);
    expect_images_error(p);
  }

  Bytes garbage = good;  // trailing bytes that are not another gzip member
  garbage.insert(garbage.end(), {'j', 'u', 'n', 'k'});
  write_bytes(path("garbage.gz"), garbage);
  expect_images_error(path("garbage.gz"), {"corrupt gzip"});
}

TEST_F(IdxTest, TruncatedGzip) {
  write_gzip(path("good.gz"), idx_bytes({50, 28, 28}, random_bytes(50 * 784, 16)));
  const Bytes good = read_bytes(path("good.gz"));
  for (size_t keep : {size_t{2}, size_t{10}, good.size() / 2, good.size() - 4, good.size() - 1}) {
    const std::string p = path("cut" + std::to_string(keep) + ".gz");
    write_bytes(p, Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep)));
    expect_images_error(p, {"truncated gzip"});
  }
}

TEST_F(IdxTest, WritersRejectInconsistentData) {
  IdxImages im = random_images(2, 3, 3, 17);
  im.pixels.pop_back();
  expect_data_error([&] { write_idx_images(path("im"), im); }, path("im"), {"pixels"});
  IdxImages empty;
  expect_data_error([&] { write_idx_images(path("im"), empty); }, path("im"));
  expect_data_error([&] { write_idx_labels(path("lb"), {}); }, path("lb"));
  expect_data_error([&] { write_idx_labels(path("no/such/dir/lb"), {1}); }, path("no/such/dir/lb"),
                    {"cannot open"});
}

// ---- load_mnist ---------------------------------------------------------------------------

TEST_F(IdxTest, LoadMnistSyntheticDir) {
  const IdxImages train = random_images(12, 28, 28, 18);
  const Bytes train_labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1};
  write_idx_images(path("train-images-idx3-ubyte"), train);
  write_idx_labels(path("train-labels-idx1-ubyte"), train_labels);
  // The raw file is preferred over a .gz beside it (this one has different content).
  write_gzip(path("train-images-idx3-ubyte.gz"),
             idx_bytes({12, 28, 28}, random_bytes(12 * 784, 19)));
  // t10k only as .gz.
  const IdxImages test = random_images(5, 28, 28, 20);
  const Bytes test_labels = {9, 8, 7, 6, 5};
  write_gzip(path("t10k-images-idx3-ubyte.gz"), idx_bytes({5, 28, 28}, test.pixels));
  write_gzip(path("t10k-labels-idx1-ubyte.gz"), idx_bytes({5}, test_labels));

  const MnistSplit tr = load_mnist(dir_, "train");
  EXPECT_EQ(tr.images.count, 12);
  EXPECT_EQ(tr.images.pixels, train.pixels);
  EXPECT_EQ(tr.labels, train_labels);
  const MnistSplit te = load_mnist(dir_ + "/", "t10k");
  EXPECT_EQ(te.images.count, 5);
  EXPECT_EQ(te.images.pixels, test.pixels);
  EXPECT_EQ(te.labels, test_labels);
}

TEST_F(IdxTest, LoadMnistErrors) {
  expect_data_error([&] { load_mnist(dir_, "train"); }, path("train-images-idx3-ubyte"),
                    {"no such file", "train-images-idx3-ubyte.gz", "fetch_mnist.sh"});
  expect_data_error([&] { load_mnist(dir_, "valid"); }, dir_, {"unknown MNIST split 'valid'"});

  write_idx_images(path("train-images-idx3-ubyte"), random_images(4, 28, 28, 21));
  expect_data_error([&] { load_mnist(dir_, "train"); }, path("train-labels-idx1-ubyte"),
                    {"no such file"});
  write_idx_labels(path("train-labels-idx1-ubyte"), {1, 2, 3});
  expect_data_error([&] { load_mnist(dir_, "train"); }, path("train-images-idx3-ubyte"),
                    {"4 images", "3 labels", path("train-labels-idx1-ubyte")});
}

// ---- the real data, when fetched ----------------------------------------------------------

void check_real_split(const std::string& split, int64_t count) {
  const MnistSplit s = load_mnist(testpaths::source_dir() + "/data/mnist", split);
  ASSERT_EQ(s.images.count, count);
  ASSERT_EQ(s.images.rows, 28);
  ASSERT_EQ(s.images.cols, 28);
  ASSERT_EQ(s.images.pixels.size(), static_cast<size_t>(count) * 784);
  ASSERT_EQ(s.labels.size(), static_cast<size_t>(count));
  // Pixels are ink on a zero background using the whole 0..255 range; about 19% are ink and
  // the mean is about 33 (0.13 * 255) in both splits.
  EXPECT_EQ(*std::min_element(s.images.pixels.begin(), s.images.pixels.end()), 0);
  EXPECT_EQ(*std::max_element(s.images.pixels.begin(), s.images.pixels.end()), 255);
  const double mean =
      std::accumulate(s.images.pixels.begin(), s.images.pixels.end(), 0.0) / s.images.pixels.size();
  EXPECT_NEAR(mean, 33.3, 1.5);
  // Every image's corner is background.
  for (int64_t i = 0; i < count; ++i) EXPECT_EQ(s.images.pixels[i * 784], 0) << "image " << i;
  std::array<int64_t, 10> per_class{};
  for (uint8_t l : s.labels) {
    ASSERT_LT(l, 10);
    ++per_class[l];
  }
  for (int c = 0; c < 10; ++c) EXPECT_GT(per_class[c], count / 20) << "class " << c;
}

TEST(IdxRealData, MnistTrainAndTest) {
  const std::string dir = testpaths::source_dir() + "/data/mnist";
  if (!fs::exists(dir + "/train-images-idx3-ubyte"))
    GTEST_SKIP() << "MNIST not in " << dir << "; run `bash scripts/fetch_mnist.sh`";
  check_real_split("train", 60000);
  check_real_split("t10k", 10000);
}

}  // namespace
}  // namespace mnistgan
