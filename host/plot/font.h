// font.h: text for the charts and picture captions, rendered from a TrueType font (DejaVu
// Sans, from Debian's fonts-dejavu-core) that is compiled into the binary, so a statically
// linked mnistgan carried to a bare GPU machine draws the same text with no font files or
// shared libraries there. Rasterised by stb_truetype (libstb-dev), anti-aliased, any case,
// UTF-8 (characters the font lacks are drawn as its missing-glyph box).
#pragma once

#include <cstdint>  // uint8_t
#include <string>

#include "io/image_io.h"  // RgbImage

namespace mnistgan {

// Text size as a scale: capital letters are 7 * scale pixels tall (the height of the 5x7
// bitmap font the charts used before, so layouts keep their proportions).
// Width in pixels of `text` (UTF-8) set at `scale`: the sum of advances and kerning.
int text_width(const std::string& text, int scale);

// Draws `text` (UTF-8) with the top of its capital letters at y and its pen starting at x;
// descenders reach about 2 * scale pixels below the capitals. Anti-aliased: each pixel is
// blended towards rgb by the glyph's coverage. Pixels outside the image are skipped.
// Returns x + text_width(text, scale).
int draw_text(RgbImage& image, int x, int y, const std::string& text, const uint8_t rgb[3],
              int scale);

}  // namespace mnistgan
