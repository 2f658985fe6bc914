// image_io.cpp: sample grids as PNG (stb_image_write, plus our own tEXt chunks) and as an
// animated GIF (giflib), PNG reading (stb_image). Everything is encoded in memory first and
// then handed to write_file_atomic, so no encoder ever writes a file directly.
#include "io/image_io.h"

#include <gif_lib.h>  // EGifOpen and friends, GifMakeMapObject, DGif* error codes
#include <zlib.h>     // crc32 for the tEXt chunks

#include <algorithm>  // std::min, std::clamp
#include <climits>    // INT_MAX
#include <cmath>      // std::isfinite, std::round
#include <memory>     // std::unique_ptr
#include <new>        // std::bad_alloc
#include <stdexcept>  // std::invalid_argument, std::logic_error

// stb's single-file implementations live in this translation unit only. Only in-memory
// encoding/decoding is used (files go through write_file_atomic/read_file), and only PNG.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>  // stbi_write_png_to_func
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_ONLY_PNG
#include <stb_image.h>  // stbi_load_from_memory, stbi_failure_reason
#pragma GCC diagnostic pop

namespace mnistgan {
namespace {

// A PNG to reload is one sample grid: far below this. The cap only guards against reading
// some unrelated huge file by mistake.
constexpr size_t kMaxPngBytes = size_t{256} << 20;
// GIF stores its logical screen and frame sizes in 16 bits.
constexpr int kMaxGifSide = 65535;

// p = round((x + 1) * 127.5), clamped; NaN and +-inf (a diverged generator) become black.
uint8_t to_pixel(float x) {
  if (!std::isfinite(x)) return 0;
  const double p = std::round((static_cast<double>(x) + 1.0) * 127.5);
  return static_cast<uint8_t>(std::clamp(p, 0.0, 255.0));
}

void check_image(const GrayImage& image, const char* who) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height)) {
    throw std::invalid_argument(std::string(who) + ": image is " + std::to_string(image.width) +
                                "x" + std::to_string(image.height) + " with " +
                                std::to_string(image.pixels.size()) +
                                " pixels; need width, height > 0 and width * height pixels");
  }
}

// ---- PNG tEXt chunks ---------------------------------------------------------------------

void append_be32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

// PNG spec 11.3.4.3: keyword 1-79 Latin-1 printable characters (32-126, 161-255), no
// leading, trailing or consecutive spaces; the text may be empty but holds no NUL.
void check_text_entry(const std::string& keyword, const std::string& text) {
  bool ok = !keyword.empty() && keyword.size() <= 79 && keyword.front() != ' ' &&
            keyword.back() != ' ' && keyword.find("  ") == std::string::npos;
  for (unsigned char c : keyword) ok = ok && ((c >= 32 && c <= 126) || c >= 161);
  if (!ok) {
    throw std::invalid_argument("write_png: invalid tEXt keyword '" + keyword +
                                "': use 1-79 printable Latin-1 characters, no leading, "
                                "trailing or double spaces");
  }
  if (text.find('\0') != std::string::npos) {
    throw std::invalid_argument("write_png: tEXt text for '" + keyword + "' contains a NUL byte");
  }
}

// A chunk is length (big-endian, data only), type, data, CRC-32 of type + data.
std::string text_chunk(const std::string& keyword, const std::string& text) {
  std::string body = "tEXt" + keyword;
  body.push_back('\0');
  body += text;
  std::string chunk;
  append_be32(chunk, static_cast<uint32_t>(body.size() - 4));
  chunk += body;
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(body.data()),
                          static_cast<uInt>(body.size()));
  append_be32(chunk, static_cast<uint32_t>(crc));
  return chunk;
}

// stb_image_write's callback cannot report failure; remember a failed append instead of
// letting std::bad_alloc unwind through C code.
struct MemorySink {
  std::string bytes;
  bool failed = false;
};

void png_sink(void* context, void* data, int size) {
  auto* sink = static_cast<MemorySink*>(context);
  try {
    sink->bytes.append(static_cast<const char*>(data), static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    sink->failed = true;
  }
}

// ---- GIF ---------------------------------------------------------------------------------

int gif_sink(GifFileType* gif, const GifByteType* data, int size) {
  auto* sink = static_cast<MemorySink*>(gif->UserData);
  try {
    sink->bytes.append(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    sink->failed = true;
    return 0;  // a short write: giflib reports E_GIF_ERR_WRITE_FAILED
  }
  return size;
}

std::string gif_error_text(int code) {
  const char* text = GifErrorString(code);
  return text != nullptr ? text : "giflib error " + std::to_string(code);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    EGifCloseFile(gif, &error);
  }
};

struct ColorMapFree {
  void operator()(ColorMapObject* map) const { GifFreeMapObject(map); }
};

}  // namespace

GrayImage make_grid(const float* images, int n, int height, int width, int nrow, int padding) {
  if (images == nullptr || n <= 0 || height <= 0 || width <= 0 || nrow <= 0 || padding < 0) {
    throw std::invalid_argument(
        "make_grid: need images != null, n > 0, height > 0, width > 0, nrow > 0, "
        "padding >= 0; got n=" +
        std::to_string(n) + " height=" + std::to_string(height) +
        " width=" + std::to_string(width) + " nrow=" + std::to_string(nrow) +
        " padding=" + std::to_string(padding));
  }
  // As torchvision: never wider than the number of images.
  const int64_t cols = std::min(n, nrow);
  const int64_t rows = (static_cast<int64_t>(n) + nrow - 1) / nrow;
  const int64_t grid_w = cols * (width + int64_t{padding}) + padding;
  const int64_t grid_h = rows * (height + int64_t{padding}) + padding;
  if (grid_w > INT_MAX || grid_h > INT_MAX) {
    throw std::invalid_argument("make_grid: a grid of " + std::to_string(grid_w) + "x" +
                                std::to_string(grid_h) + " pixels is too large");
  }
  GrayImage grid;
  grid.width = static_cast<int>(grid_w);
  grid.height = static_cast<int>(grid_h);
  grid.pixels.assign(static_cast<size_t>(grid_w) * static_cast<size_t>(grid_h), 0);
  const size_t image_size = static_cast<size_t>(height) * static_cast<size_t>(width);
  for (int k = 0; k < n; ++k) {
    const float* image = images + static_cast<size_t>(k) * image_size;  // (height, width)
    const int64_t y0 = padding + (k / nrow) * (height + int64_t{padding});
    const int64_t x0 = padding + (k % nrow) * (width + int64_t{padding});
    for (int y = 0; y < height; ++y) {
      uint8_t* out = grid.pixels.data() + (y0 + y) * grid_w + x0;
      const float* in = image + static_cast<size_t>(y) * width;
      for (int x = 0; x < width; ++x) out[x] = to_pixel(in[x]);
    }
  }
  return grid;
}

namespace {

// pixels (height, width, channels) 8-bit, channels 1 (gray) or 3 (RGB); checked by callers.
void encode_png(const std::string& path, int width, int height, int channels, const uint8_t* pixels,
                const PngText& text) {
  for (const auto& [keyword, value] : text) check_text_entry(keyword, value);

  MemorySink sink;
  const int ok =
      stbi_write_png_to_func(png_sink, &sink, width, height, channels, pixels, width * channels);
  if (!ok || sink.failed) throw IoError(path + ": cannot encode PNG (out of memory)");
  std::string& png = sink.bytes;

  // stb writes signature (8 bytes), then IHDR: length 13, "IHDR", 13 data bytes, CRC = 25
  // bytes. tEXt may go anywhere between IHDR and IEND; right after IHDR keeps it findable.
  constexpr size_t kAfterIhdr = 8 + 4 + 4 + 13 + 4;
  if (png.size() < kAfterIhdr || png.compare(12, 4, "IHDR") != 0) {
    throw IoError(path + ": cannot encode PNG (unexpected encoder output)");
  }
  std::string chunks;
  for (const auto& [keyword, value] : text) chunks += text_chunk(keyword, value);
  png.insert(kAfterIhdr, chunks);

  write_file_atomic(path, png);
}

}  // namespace

void write_png(const std::string& path, const GrayImage& image, const PngText& text) {
  check_image(image, "write_png");
  encode_png(path, image.width, image.height, 1, image.pixels.data(), text);
}

void write_png_rgb(const std::string& path, const RgbImage& image, const PngText& text) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != 3 * static_cast<size_t>(image.width) * image.height) {
    throw std::invalid_argument("write_png_rgb: image is " + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + " with " +
                                std::to_string(image.pixels.size()) +
                                " bytes; need width, height > 0 and 3 * width * height bytes");
  }
  encode_png(path, image.width, image.height, 3, image.pixels.data(), text);
}

GrayImage read_png_gray(const std::string& path) {
  return decode_png_gray(read_file(path, kMaxPngBytes), path);
}

GrayImage decode_png_gray(const std::string& bytes, const std::string& path) {
  int width = 0, height = 0, channels_in_file = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &width, &height, &channels_in_file,
                            /*desired_channels=*/1),
      stbi_image_free);
  if (!pixels) throw IoError(path + ": cannot decode PNG: " + stbi_failure_reason());
  GrayImage image;
  image.width = width;
  image.height = height;
  image.pixels.assign(pixels.get(),
                      pixels.get() + static_cast<size_t>(width) * static_cast<size_t>(height));
  return image;
}

GifWriter::GifWriter(int delay_centiseconds) : delay_centiseconds_(delay_centiseconds) {
  if (delay_centiseconds < 0 || delay_centiseconds > 65535) {
    throw std::invalid_argument("GifWriter: delay_centiseconds must be in 0..65535, got " +
                                std::to_string(delay_centiseconds));
  }
}

void GifWriter::add_frame(const GrayImage& frame) {
  check_image(frame, "GifWriter::add_frame");
  if (frame.width > kMaxGifSide || frame.height > kMaxGifSide) {
    throw std::invalid_argument("GifWriter::add_frame: a " + std::to_string(frame.width) + "x" +
                                std::to_string(frame.height) +
                                " frame is larger than GIF's 65535x65535");
  }
  if (!frames_.empty() && (frame.width != width() || frame.height != height())) {
    throw std::invalid_argument("GifWriter::add_frame: frame is " + std::to_string(frame.width) +
                                "x" + std::to_string(frame.height) + ", earlier frames are " +
                                std::to_string(width()) + "x" + std::to_string(height()));
  }
  frames_.push_back(frame);
}

void GifWriter::write(const std::string& path) const {
  if (frames_.empty()) throw std::logic_error("GifWriter::write(" + path + "): no frames added");

  MemorySink sink;
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(EGifOpen(&sink, gif_sink, &error));
  if (!gif) throw IoError(path + ": cannot start GIF encoder: " + gif_error_text(error));
  auto check = [&](int rc, const char* step) {
    if (rc == GIF_ERROR) {
      throw IoError(path + ": cannot encode GIF (" + step +
                    "): " + gif_error_text(sink.failed ? E_GIF_ERR_NOT_ENOUGH_MEM : gif->Error));
    }
  };
  // Extensions (looping, frame delay) need GIF89a; 87a readers would ignore them anyway.
  EGifSetGifVersion(gif.get(), true);

  // A gray ramp, so a pixel value is its own palette index and frames are stored losslessly.
  GifColorType ramp[256];
  for (int i = 0; i < 256; ++i) {
    ramp[i].Red = ramp[i].Green = ramp[i].Blue = static_cast<GifByteType>(i);
  }
  std::unique_ptr<ColorMapObject, ColorMapFree> palette(GifMakeMapObject(256, ramp));
  if (!palette) throw IoError(path + ": cannot encode GIF: out of memory");
  // EGifPutScreenDesc copies the palette.
  check(EGifPutScreenDesc(gif.get(), width(), height(), /*ColorRes=*/8, /*BackGround=*/0,
                          palette.get()),
        "screen descriptor");

  // NETSCAPE2.0 application extension: sub-block 1 = loop count (little-endian, 0 = forever).
  static const char kNetscape[] = "NETSCAPE2.0";
  static const GifByteType kLoopForever[3] = {1, 0, 0};
  check(EGifPutExtensionLeader(gif.get(), APPLICATION_EXT_FUNC_CODE), "loop extension");
  check(EGifPutExtensionBlock(gif.get(), 11, kNetscape), "loop extension");
  check(EGifPutExtensionBlock(gif.get(), 3, kLoopForever), "loop extension");
  check(EGifPutExtensionTrailer(gif.get()), "loop extension");

  GraphicsControlBlock gcb;
  gcb.DisposalMode = DISPOSE_DO_NOT;  // each frame covers the whole screen anyway
  gcb.UserInputFlag = false;
  gcb.DelayTime = delay_centiseconds_;
  gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType gcb_bytes[4];
  const size_t gcb_size = EGifGCBToExtension(&gcb, gcb_bytes);

  // EGifPutLine masks its input in place, so it gets a copy, never the frame itself.
  std::vector<GifPixelType> line(static_cast<size_t>(width()));
  for (const GrayImage& frame : frames_) {
    check(
        EGifPutExtension(gif.get(), GRAPHICS_EXT_FUNC_CODE, static_cast<int>(gcb_size), gcb_bytes),
        "frame delay");
    check(EGifPutImageDesc(gif.get(), 0, 0, frame.width, frame.height, /*Interlace=*/false,
                           /*ColorMap=*/nullptr),
          "image descriptor");
    for (int y = 0; y < frame.height; ++y) {
      std::copy_n(frame.pixels.data() + static_cast<size_t>(y) * frame.width, frame.width,
                  line.data());
      check(EGifPutLine(gif.get(), line.data(), frame.width), "pixels");
    }
  }
  // Closing writes the trailer byte and frees the encoder whatever the outcome.
  const int rc = EGifCloseFile(gif.release(), &error);
  if (rc == GIF_ERROR || sink.failed) {
    throw IoError(path + ": cannot encode GIF (close): " +
                  gif_error_text(sink.failed ? E_GIF_ERR_NOT_ENOUGH_MEM : error));
  }
  write_file_atomic(path, sink.bytes);
}

}  // namespace mnistgan
