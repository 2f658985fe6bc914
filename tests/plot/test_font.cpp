// Tests of host/plot/font.h: the compiled-in TrueType font's metrics, mixed case, UTF-8 and
// clipping.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plot/font.h"

namespace mnistgan {
namespace {

RgbImage white(int width, int height) {
  return RgbImage{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, 255)};
}

// The bounding box of every pixel that is not white: {x0, y0, x1, y1}, or x0 = -1 when none.
std::vector<int> ink_box(const RgbImage& image) {
  std::vector<int> box{-1, -1, -1, -1};
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * 3];
      if (p[0] == 255 && p[1] == 255 && p[2] == 255) continue;
      if (box[0] < 0) box = {x, y, x, y};
      box[0] = std::min(box[0], x), box[1] = std::min(box[1], y);
      box[2] = std::max(box[2], x), box[3] = std::max(box[3], y);
    }
  return box;
}

const uint8_t kBlack[3] = {0, 0, 0};

TEST(Font, CapitalsAreSevenPixelsPerScaleTallFromTheGivenTop) {
  for (int scale : {1, 2, 3}) {
    RgbImage image = white(200, 60);
    draw_text(image, 10, 10, "HEH", kBlack, scale);
    const std::vector<int> box = ink_box(image);
    ASSERT_GE(box[0], 0) << "scale " << scale << " drew nothing";
    // Anti-aliasing may add one partly covered row at either edge.
    EXPECT_NEAR(box[1], 10, 1) << "scale " << scale;
    EXPECT_NEAR(box[3] - box[1] + 1, 7 * scale, 2) << "scale " << scale;
    EXPECT_NEAR(box[0], 10, 2 * scale) << "scale " << scale;
  }
}

TEST(Font, ReturnsThePenPositionAndWidthGrowsWithTextAndScale) {
  RgbImage image = white(300, 40);
  const int end = draw_text(image, 5, 5, "Frechet 12.5", kBlack, 2);
  EXPECT_EQ(end, 5 + text_width("Frechet 12.5", 2));
  EXPECT_GT(text_width("Frechet 12.5", 2), text_width("Frechet", 2));
  EXPECT_NEAR(text_width("mnist", 3), 1.5 * text_width("mnist", 2), 2.0);
  EXPECT_EQ(text_width("", 2), 0);
  // The ink stays inside [x, end) give or take a glyph's side bearing.
  const std::vector<int> box = ink_box(image);
  EXPECT_LE(box[2], end + 2);
}

TEST(Font, LowerAndUpperCaseAreDifferentGlyphs) {
  RgbImage lower = white(120, 40), upper = white(120, 40);
  draw_text(lower, 4, 8, "step", kBlack, 2);
  draw_text(upper, 4, 8, "STEP", kBlack, 2);
  EXPECT_NE(lower.pixels, upper.pixels);
  // Lower case x-height letters start below the capitals' top.
  RgbImage x_only = white(60, 40);
  draw_text(x_only, 4, 8, "a", kBlack, 2);
  EXPECT_GT(ink_box(x_only)[1], 8 + 2);
}

TEST(Font, Utf8CharactersRenderAndMalformedBytesDoNotCrash) {
  RgbImage image = white(200, 40);
  EXPECT_GT(draw_text(image, 2, 8, "Fr\u00e9chet \u00b1 \u03c3", kBlack, 2), 2);
  EXPECT_GE(ink_box(image)[0], 0);
  // A lone continuation byte and a truncated sequence are replacement characters.
  EXPECT_GT(text_width(std::string("a\x80") + "b\xe2", 2), text_width("ab", 2));
}

TEST(Font, TextOffTheImageIsClippedNotWrittenOutOfBounds) {
  RgbImage image = white(40, 20);
  draw_text(image, 30, 12, "8888", kBlack, 3);
  draw_text(image, -25, -10, "gyp", kBlack, 3);
  EXPECT_EQ(image.pixels.size(), 40u * 20u * 3u);
  EXPECT_GE(ink_box(image)[0], 0);
}

TEST(Font, InkIsAntiAliasedTowardsTheColour) {
  RgbImage image = white(80, 30);
  const uint8_t red[3] = {200, 0, 0};
  draw_text(image, 4, 6, "O", red, 3);
  bool partial = false, full = false;
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    const uint8_t g = image.pixels[i + 1];
    partial |= g > 0 && g < 255;
    full |= g == 0 && image.pixels[i] == 200;
  }
  EXPECT_TRUE(partial);
  EXPECT_TRUE(full);
}

}  // namespace
}  // namespace mnistgan
