// test_image_io.cpp: make_grid's layout and pixel mapping, PNG and GIF files checked byte by
// byte (signature, IHDR, tEXt with its CRC, GIF header) and decoded back with independent
// readers (stb_image, giflib's decoder), and the atomic-write guarantees of atomic_file.h.
#include <gif_lib.h>  // DGifOpenFileName, DGifSlurp: an independent GIF decoder
#include <gtest/gtest.h>
#include <sys/stat.h>  // chmod
#include <unistd.h>    // geteuid
#include <zlib.h>      // crc32, to check the tEXt chunks' CRC

#include <algorithm>   // std::sort
#include <cmath>       // NAN, INFINITY, std::sin
#include <cstdint>     // uint8_t, uint32_t
#include <cstdlib>     // mkdtemp, getenv
#include <cstring>     // std::memcmp
#include <filesystem>  // directory listing, recursive removal of the temp dir
#include <stdexcept>   // std::runtime_error, std::invalid_argument, std::logic_error
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/image_io.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mnistgan_test_XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + templ);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Runs f, expects an IoError, returns its message ("" and a test failure otherwise).
template <class F>
std::string io_error_of(F&& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IoError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected IoError, nothing was thrown";
  return "";
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

uint32_t be32(const std::string& bytes, size_t at) {
  return (uint32_t{static_cast<uint8_t>(bytes[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(bytes[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(bytes[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(bytes[at + 3])};
}

uint32_t le16(const std::string& bytes, size_t at) {
  return uint32_t{static_cast<uint8_t>(bytes[at])} |
         (uint32_t{static_cast<uint8_t>(bytes[at + 1])} << 8);
}

GrayImage test_image(int width, int height, int seed) {
  GrayImage image;
  image.width = width;
  image.height = height;
  for (int i = 0; i < width * height; ++i)
    image.pixels.push_back(static_cast<uint8_t>(i * 7 + seed * 31));
  return image;
}

// ---- make_grid ---------------------------------------------------------------------------

TEST(MakeGrid, LayoutMatchesTorchvision) {
  // 5 images of (2, 3), 3 per row, padding 2: 3 columns, 2 rows.
  const int n = 5, h = 2, w = 3, nrow = 3, pad = 2;
  // Image k pixel (y, x) holds the value that maps to pixel k*6 + y*3 + x.
  std::vector<float> images(n * h * w);
  for (int i = 0; i < n * h * w; ++i) images[i] = static_cast<float>(i) / 127.5f - 1.0f;

  const GrayImage grid = make_grid(images.data(), n, h, w, nrow, pad);
  ASSERT_EQ(grid.width, 3 * (w + pad) + pad);   // 17
  ASSERT_EQ(grid.height, 2 * (h + pad) + pad);  // 10
  ASSERT_EQ(grid.pixels.size(), size_t{17 * 10});

  std::vector<uint8_t> expected(grid.pixels.size(), 0);  // padding and the empty slot: black
  for (int k = 0; k < n; ++k) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const int gy = pad + (k / nrow) * (h + pad) + y;
        const int gx = pad + (k % nrow) * (w + pad) + x;
        expected[gy * grid.width + gx] = static_cast<uint8_t>(k * h * w + y * w + x);
      }
    }
  }
  EXPECT_EQ(grid.pixels, expected);

  // A few positions spelled out. Image 0 pixel (0, 0) at (2, 2); image 4 = row 1, column 1,
  // its pixel (1, 2) at y = 2 + 4 + 1 = 7, x = 2 + 5 + 2 = 9.
  auto at = [&](int y, int x) { return int{grid.pixels[y * grid.width + x]}; };
  EXPECT_EQ(at(2, 2), 0 + 0);
  EXPECT_EQ(at(2, 3), 1);
  EXPECT_EQ(at(3, 2), 3);
  EXPECT_EQ(at(2, 7), 6);   // image 1 starts at x = 2 + 5
  EXPECT_EQ(at(6, 2), 18);  // image 3 starts at y = 2 + 4
  EXPECT_EQ(at(7, 9), 29);  // image 4, pixel (1, 2)
  EXPECT_EQ(at(6, 12), 0);  // slot 5 is empty
  EXPECT_EQ(at(0, 0), 0);   // border
  EXPECT_EQ(at(2, 5), 0);   // gap between images 0 and 1
  EXPECT_EQ(at(9, 16), 0);  // bottom-right border
}

TEST(MakeGrid, PixelMapping) {
  // One (1, 10) image, no padding: the grid is the image.
  const std::vector<float> x = {-1.0f, 1.0f, 0.0f,     -0.5f,     2.0f,
                                -3.0f, NAN,  INFINITY, -INFINITY, 0.999f};
  const GrayImage grid = make_grid(x.data(), 1, 1, 10, 1, 0);
  ASSERT_EQ(grid.width, 10);
  ASSERT_EQ(grid.height, 1);
  // round((x + 1) * 127.5): -1 -> 0, 1 -> 255, 0 -> 127.5 -> 128, -0.5 -> 63.75 -> 64,
  // out of range clamps, non-finite -> 0, 0.999 -> 254.87 -> 255.
  const std::vector<uint8_t> expected = {0, 255, 128, 64, 255, 0, 0, 0, 0, 255};
  EXPECT_EQ(grid.pixels, expected);
}

TEST(MakeGrid, FewerImagesThanNrow) {
  const std::vector<float> images(2, 1.0f);  // two (1, 1) images
  const GrayImage grid = make_grid(images.data(), 2, 1, 1, /*nrow=*/8, /*padding=*/1);
  EXPECT_EQ(grid.width, 2 * 2 + 1);  // min(n, nrow) columns, as torchvision
  EXPECT_EQ(grid.height, 3);
  const std::vector<uint8_t> expected = {0, 0,   0, 0,   0,  //
                                         0, 255, 0, 255, 0,  //
                                         0, 0,   0, 0,   0};
  EXPECT_EQ(grid.pixels, expected);
}

TEST(MakeGrid, RejectsBadArguments) {
  const std::vector<float> images(16, 0.0f);
  EXPECT_THROW(make_grid(images.data(), 0, 2, 2, 1), std::invalid_argument);
  EXPECT_THROW(make_grid(images.data(), -1, 2, 2, 1), std::invalid_argument);
  EXPECT_THROW(make_grid(images.data(), 1, 2, 2, 0), std::invalid_argument);
  EXPECT_THROW(make_grid(images.data(), 1, 2, 2, 1, -1), std::invalid_argument);
  EXPECT_THROW(make_grid(images.data(), 1, 0, 2, 1), std::invalid_argument);
  EXPECT_THROW(make_grid(images.data(), 1, 2, 0, 1), std::invalid_argument);
  EXPECT_THROW(make_grid(nullptr, 1, 2, 2, 1), std::invalid_argument);
  EXPECT_NO_THROW(make_grid(images.data(), 4, 2, 2, 2, 0));
}

// ---- PNG ---------------------------------------------------------------------------------

TEST(Png, WriteThenReadBack) {
  TempDir tmp;
  const std::string path = tmp / "grid.png";
  const GrayImage image = test_image(7, 5, 1);
  write_png(path, image, {{"seed", "42"}, {"step", "1000"}});

  const std::string bytes = read_file(path, 1 << 20);
  ASSERT_GE(bytes.size(), size_t{8 + 25});
  const unsigned char signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  EXPECT_EQ(std::memcmp(bytes.data(), signature, 8), 0);
  // IHDR: length 13, type, width, height, bit depth, colour type (0 = grayscale).
  EXPECT_EQ(be32(bytes, 8), 13u);
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(be32(bytes, 16), 7u);
  EXPECT_EQ(be32(bytes, 20), 5u);
  EXPECT_EQ(static_cast<int>(static_cast<uint8_t>(bytes[24])), 8);
  EXPECT_EQ(static_cast<int>(static_cast<uint8_t>(bytes[25])), 0);

  // The tEXt chunks follow IHDR in order, each with a correct CRC over type + data.
  size_t at = 8 + 25;
  for (const auto& [keyword, text] : PngText{{"seed", "42"}, {"step", "1000"}}) {
    const std::string data = keyword + std::string(1, '\0') + text;
    ASSERT_LE(at + 12 + data.size(), bytes.size());
    EXPECT_EQ(be32(bytes, at), data.size());
    EXPECT_EQ(bytes.substr(at + 4, 4), "tEXt");
    EXPECT_EQ(bytes.substr(at + 8, data.size()), data);
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(&bytes[at + 4]),
                            static_cast<uInt>(4 + data.size()));
    EXPECT_EQ(be32(bytes, at + 8 + data.size()), static_cast<uint32_t>(crc)) << keyword;
    at += 12 + data.size();
  }
  EXPECT_EQ(bytes.substr(bytes.size() - 8, 4), "IEND");

  const GrayImage back = read_png_gray(path);
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.height, 5);
  EXPECT_EQ(back.pixels, image.pixels);
  EXPECT_EQ(list_dir(tmp.path()), std::vector<std::string>{"grid.png"});  // no temp left
}

TEST(Png, GridRoundTripWithoutText) {
  TempDir tmp;
  std::vector<float> images(4 * 28 * 28);
  for (size_t i = 0; i < images.size(); ++i) images[i] = std::sin(0.01f * i);
  const GrayImage grid = make_grid(images.data(), 4, 28, 28, 2);
  write_png(tmp / "g.png", grid);
  const GrayImage back = read_png_gray(tmp / "g.png");
  EXPECT_EQ(back.width, grid.width);
  EXPECT_EQ(back.height, grid.height);
  EXPECT_EQ(back.pixels, grid.pixels);
}

TEST(Png, RejectsBadInput) {
  TempDir tmp;
  GrayImage bad = test_image(4, 4, 0);
  bad.pixels.pop_back();
  EXPECT_THROW(write_png(tmp / "a.png", bad), std::invalid_argument);
  EXPECT_THROW(write_png(tmp / "a.png", GrayImage{}), std::invalid_argument);
  const GrayImage ok = test_image(4, 4, 0);
  EXPECT_THROW(write_png(tmp / "a.png", ok, {{"", "x"}}), std::invalid_argument);
  EXPECT_THROW(write_png(tmp / "a.png", ok, {{" seed", "x"}}), std::invalid_argument);
  EXPECT_THROW(write_png(tmp / "a.png", ok, {{std::string(80, 'k'), "x"}}), std::invalid_argument);
  EXPECT_THROW(write_png(tmp / "a.png", ok,
                         {{"seed", std::string("4\0"
                                               "2",
                                               3)}}),
               std::invalid_argument);
  EXPECT_TRUE(list_dir(tmp.path()).empty());
}

TEST(Png, ReadErrorsNameThePath) {
  TempDir tmp;
  const std::string missing = tmp / "missing.png";
  std::string message = io_error_of([&] { read_png_gray(missing); });
  EXPECT_TRUE(starts_with(message, missing)) << message;

  const std::string garbage = tmp / "garbage.png";
  write_file_atomic(garbage, std::string("not a png at all"));
  message = io_error_of([&] { read_png_gray(garbage); });
  EXPECT_TRUE(starts_with(message, garbage)) << message;
}

TEST(Png, WriteErrorNamesThePath) {
  TempDir tmp;
  const std::string path = tmp / "no_such_dir/grid.png";
  const std::string message = io_error_of([&] { write_png(path, test_image(3, 3, 0)); });
  EXPECT_TRUE(starts_with(message, path)) << message;
}

// ---- GIF ---------------------------------------------------------------------------------

TEST(Gif, ThreeFramesDecodeBack) {
  TempDir tmp;
  const std::string path = tmp / "progress.gif";
  const int w = 10, h = 6, delay = 20;
  GifWriter writer(delay);
  std::vector<GrayImage> frames;
  for (int f = 0; f < 3; ++f) {
    frames.push_back(test_image(w, h, f));
    writer.add_frame(frames.back());
  }
  EXPECT_EQ(writer.frame_count(), 3u);
  writer.write(path);

  const std::string bytes = read_file(path, 1 << 20);
  ASSERT_GE(bytes.size(), size_t{13});
  EXPECT_EQ(bytes.substr(0, 6), "GIF89a");
  EXPECT_EQ(le16(bytes, 6), static_cast<uint32_t>(w));  // logical screen width
  EXPECT_EQ(le16(bytes, 8), static_cast<uint32_t>(h));  // logical screen height
  EXPECT_EQ(static_cast<uint8_t>(bytes.back()), 0x3B);  // trailer ';'

  int error = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &error);
  ASSERT_NE(gif, nullptr) << GifErrorString(error);
  ASSERT_EQ(DGifSlurp(gif), GIF_OK) << GifErrorString(gif->Error);
  EXPECT_EQ(gif->SWidth, w);
  EXPECT_EQ(gif->SHeight, h);
  ASSERT_EQ(gif->ImageCount, 3);
  ASSERT_NE(gif->SColorMap, nullptr);
  EXPECT_EQ(gif->SColorMap->ColorCount, 256);
  for (int f = 0; f < 3; ++f) {
    const SavedImage& image = gif->SavedImages[f];
    ASSERT_EQ(image.ImageDesc.Width, w);
    ASSERT_EQ(image.ImageDesc.Height, h);
    std::vector<uint8_t> gray(w * h);
    for (int i = 0; i < w * h; ++i) {
      const GifColorType& c = gif->SColorMap->Colors[image.RasterBits[i]];
      EXPECT_TRUE(c.Red == c.Green && c.Green == c.Blue);
      gray[i] = c.Red;
    }
    EXPECT_EQ(gray, frames[f].pixels) << "frame " << f;
    GraphicsControlBlock gcb;
    ASSERT_EQ(DGifSavedExtensionToGCB(gif, f, &gcb), GIF_OK);
    EXPECT_EQ(gcb.DelayTime, delay);
  }
  // The looping extension comes before the first frame, so giflib attaches it to frame 0.
  bool found_loop = false;
  const SavedImage& first = gif->SavedImages[0];
  for (int i = 0; i < first.ExtensionBlockCount; ++i) {
    const ExtensionBlock& block = first.ExtensionBlocks[i];
    if (block.Function == APPLICATION_EXT_FUNC_CODE && block.ByteCount == 11 &&
        std::memcmp(block.Bytes, "NETSCAPE2.0", 11) == 0) {
      found_loop = true;
      ASSERT_LT(i + 1, first.ExtensionBlockCount);
      const ExtensionBlock& sub = first.ExtensionBlocks[i + 1];
      ASSERT_EQ(sub.ByteCount, 3);
      EXPECT_EQ(sub.Bytes[0], 1);  // sub-block id: loop count
      EXPECT_EQ(sub.Bytes[1], 0);  // 0 = loop forever
      EXPECT_EQ(sub.Bytes[2], 0);
    }
  }
  EXPECT_TRUE(found_loop);
  DGifCloseFile(gif, &error);
  EXPECT_EQ(list_dir(tmp.path()), std::vector<std::string>{"progress.gif"});
}

TEST(Gif, RejectsMisuse) {
  EXPECT_THROW(GifWriter(-1), std::invalid_argument);
  EXPECT_THROW(GifWriter(65536), std::invalid_argument);
  GifWriter writer;
  EXPECT_THROW(writer.write("/nonexistent/x.gif"), std::logic_error);
  writer.add_frame(test_image(4, 3, 0));
  EXPECT_THROW(writer.add_frame(test_image(3, 4, 0)), std::invalid_argument);
  EXPECT_THROW(writer.add_frame(GrayImage{}), std::invalid_argument);
  EXPECT_EQ(writer.frame_count(), 1u);
  const std::string path = "/nonexistent_mnistgan_dir/x.gif";
  const std::string message = io_error_of([&] { writer.write(path); });
  EXPECT_TRUE(starts_with(message, path)) << message;
}

// ---- atomic_file -------------------------------------------------------------------------

TEST(AtomicFile, MissingDirectoryThrowsAndLeavesNothing) {
  TempDir tmp;
  const std::string path = tmp / "no_such_dir/metrics.csv";
  const std::string message = io_error_of([&] { write_file_atomic(path, std::string("a,b\n")); });
  EXPECT_TRUE(starts_with(message, path + ": ")) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  EXPECT_TRUE(list_dir(tmp.path()).empty());
}

TEST(AtomicFile, FailedRenameRemovesTheTemporaryFile) {
  TempDir tmp;
  // A directory where the file should go: the temporary file is written, the rename fails.
  const std::string path = tmp / "target";
  fs::create_directory(path);
  const std::string message = io_error_of([&] { write_file_atomic(path, std::string("data")); });
  EXPECT_TRUE(starts_with(message, path + ": ")) << message;
  EXPECT_EQ(list_dir(tmp.path()), std::vector<std::string>{"target"});
  EXPECT_TRUE(fs::is_directory(path));
}

TEST(AtomicFile, OverwriteReplacesTheWholeFile) {
  TempDir tmp;
  const std::string path = tmp / "file.bin";
  write_file_atomic(path, std::string(10000, 'a'));
  EXPECT_EQ(read_file(path, 1 << 20), std::string(10000, 'a'));
  const std::string binary("short\0with\xff nul", 15);
  write_file_atomic(path, binary.data(), binary.size());
  EXPECT_EQ(read_file(path, 1 << 20), binary);  // no tail of the longer old contents
  write_file_atomic(path, nullptr, 0);
  EXPECT_EQ(read_file(path, 1 << 20), "");
  EXPECT_EQ(list_dir(tmp.path()), std::vector<std::string>{"file.bin"});
}

TEST(AtomicFile, ReadFileErrorsNameThePath) {
  TempDir tmp;
  const std::string missing = tmp / "missing";
  std::string message = io_error_of([&] { read_file(missing, 100); });
  EXPECT_TRUE(starts_with(message, missing + ": ")) << message;

  const std::string big = tmp / "big";
  write_file_atomic(big, std::string("12345"));
  EXPECT_EQ(read_file(big, 5), "12345");
  message = io_error_of([&] { read_file(big, 4); });
  EXPECT_TRUE(starts_with(message, big + ": ")) << message;

  message = io_error_of([&] { read_file(tmp.path(), 100); });
  EXPECT_TRUE(starts_with(message, tmp.path() + ": ")) << message;
}

TEST(AtomicFile, EnsureWritableDirCreatesParents) {
  TempDir tmp;
  const std::string dir = tmp / "runs/x/samples";
  ensure_writable_dir(dir);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_TRUE(list_dir(dir).empty());  // the probe file is gone
  ensure_writable_dir(dir);            // existing: fine
  ensure_writable_dir(dir + "/");      // trailing slash: fine
}

TEST(AtomicFile, EnsureWritableDirUnderARegularFileThrows) {
  TempDir tmp;
  const std::string file = tmp / "file";
  write_file_atomic(file, std::string("x"));
  const std::string dir = file + "/sub";
  std::string message = io_error_of([&] { ensure_writable_dir(dir); });
  EXPECT_TRUE(starts_with(message, dir + ": ")) << message;
  EXPECT_NE(message.find("Not a directory"), std::string::npos) << message;

  message = io_error_of([&] { ensure_writable_dir(file); });
  EXPECT_TRUE(starts_with(message, file + ": ")) << message;
}

TEST(AtomicFile, EnsureWritableDirReadOnlyThrows) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores permission bits";
  TempDir tmp;
  const std::string dir = tmp / "ro";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string message = io_error_of([&] { ensure_writable_dir(dir); });
  EXPECT_TRUE(starts_with(message, dir + ": ")) << message;
  fs::permissions(dir, fs::perms::owner_all);
}

}  // namespace
}  // namespace mnistgan
