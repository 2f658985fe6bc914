// image_io.h: every picture mnistgan writes. Generator samples (tanh output in [-1, 1]) are
// tiled into a grayscale grid (make_grid, laid out as torchvision.utils.make_grid does) and
// saved as PNG with the seed and step as tEXt metadata (train's grid per sampling step,
// `mnistgan sample`), and train collects its grids into an animated GIF of the run; charts
// (plot.h: curves.png, the toy's histogram) are RGB PNGs. Every file is written atomically
// (see atomic_file.h); read_png_gray reloads earlier grids so a resumed run can rebuild its GIF.
#pragma once

#include <cstddef>  // size_t
#include <cstdint>  // uint8_t
#include <string>
#include <utility>  // std::pair
#include <vector>

#include "io/atomic_file.h"  // IoError

namespace mnistgan {

// An 8-bit grayscale image, row-major: pixels[y * width + x], size width * height.
struct GrayImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

// An 8-bit RGB image, row-major: pixels[(y * width + x) * 3 + channel], size 3 * width * height.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

// PNG tEXt metadata, (keyword, text) pairs, e.g. {"seed", "42"}, {"step", "1000"}.
using PngText = std::vector<std::pair<std::string, std::string>>;

// images is (n, height, width) floats, tanh output in [-1, 1]. Returns a grid of
// min(n, nrow) images per row and ceil(n / nrow) rows, with `padding` pixels of black (0)
// between and around the images, as torchvision.utils.make_grid lays it out:
//   grid width  = min(n, nrow) * (width + padding) + padding
//   grid height = ceil(n / nrow) * (height + padding) + padding
// Image k sits at row k / nrow, column k % nrow. Pixel p = round((x + 1) * 127.5) clamped to
// [0, 255], so -1 -> 0 and 1 -> 255; non-finite values (a diverged generator) map to 0.
// Throws std::invalid_argument on n <= 0, height <= 0, width <= 0, nrow <= 0, padding < 0,
// a null `images`, or a grid too large for an int.
GrayImage make_grid(const float* images, int n, int height, int width, int nrow, int padding = 2);

// Writes `image` as an 8-bit grayscale PNG, atomically. Each (keyword, text) of `text`
// becomes a tEXt chunk right after IHDR (keyword 1-79 printable Latin-1 characters without
// leading, trailing or double spaces; text without NUL), else std::invalid_argument.
// Throws std::invalid_argument on an empty or inconsistent image, IoError naming `path` on
// an encoding or write failure.
void write_png(const std::string& path, const GrayImage& image, const PngText& text = {});

// As write_png, for an 8-bit RGB image (colour type 2); std::invalid_argument when the
// pixel count is not 3 * width * height.
void write_png_rgb(const std::string& path, const RgbImage& image, const PngText& text = {});

// Reads a PNG (any colour type or bit depth; colour is converted to gray, 16 bits to 8).
// Throws IoError naming `path` when the file is missing, too large or not a decodable PNG.
GrayImage read_png_gray(const std::string& path);
// The same from a PNG file's bytes; `path` names them in the IoError.
GrayImage decode_png_gray(const std::string& bytes, const std::string& path);

// An animated GIF of equally sized grayscale frames: a 256-level gray global palette (so a
// pixel value is its palette index, lossless), a NETSCAPE2.0 extension that loops forever,
// and the same delay on every frame. Frames are kept in memory until write().
class GifWriter {
 public:
  // delay_centiseconds: time each frame is shown, 0..65535 (std::invalid_argument otherwise).
  explicit GifWriter(int delay_centiseconds = 50);

  // Copies `frame`. Every frame must have the first frame's size (std::invalid_argument
  // otherwise, also on an empty or inconsistent image, or a side above GIF's 65535).
  void add_frame(const GrayImage& frame);
  size_t frame_count() const { return frames_.size(); }
  int width() const { return frames_.empty() ? 0 : frames_.front().width; }
  int height() const { return frames_.empty() ? 0 : frames_.front().height; }

  // Encodes all frames and writes them to `path` atomically. Throws std::logic_error when no
  // frame was added, IoError naming `path` on an encoding or write failure.
  void write(const std::string& path) const;

 private:
  int delay_centiseconds_;
  std::vector<GrayImage> frames_;
};

}  // namespace mnistgan
