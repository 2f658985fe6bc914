// font.cpp: see font.h.
#include "plot/font.h"

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::lround, std::floor
#include <cstdio>     // std::fprintf
#include <cstdlib>    // std::abort
#include <vector>

#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC  // the rasteriser's symbols stay private to this file
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  // the parts of stb_truetype not used here
#include "stb_truetype.h"
#pragma GCC diagnostic pop

// The font file's bytes, placed in .rodata by the assembler (MNISTGAN_FONT_FILE is its path,
// set by CMake; the object is rebuilt when the file changes).
asm(R"(
  .section .rodata
  .balign 16
  .globl mnistgan_font_ttf
  .type mnistgan_font_ttf,@object
mnistgan_font_ttf:
  .incbin ")" MNISTGAN_FONT_FILE R"("
  .globl mnistgan_font_ttf_end
mnistgan_font_ttf_end:
  .byte 0
  .previous
)");
extern "C" const unsigned char mnistgan_font_ttf[];
extern "C" const unsigned char mnistgan_font_ttf_end[];

namespace mnistgan {

namespace {

struct Font {
  stbtt_fontinfo info{};
  float cap_height_units = 0;  // height of 'H' in font units
};

const Font& font() {
  static const Font f = [] {
    Font font;
    const unsigned char* data = mnistgan_font_ttf;
    if (mnistgan_font_ttf_end - mnistgan_font_ttf < 12 ||
        stbtt_InitFont(&font.info, data, stbtt_GetFontOffsetForIndex(data, 0)) == 0) {
      std::fprintf(stderr, "mnistgan: the compiled-in font is not a TrueType font\n");
      std::abort();  // a build defect, not a user error
    }
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    stbtt_GetCodepointBox(&font.info, 'H', &x0, &y0, &x1, &y1);
    font.cap_height_units = static_cast<float>(y1);
    return font;
  }();
  return f;
}

// Pixels per font unit at `scale` (capitals 7 * scale pixels tall).
float pixels_per_unit(int scale) { return 7.0f * static_cast<float>(scale) / font().cap_height_units; }

// The code points of UTF-8 text; a malformed or truncated sequence gives U+FFFD and
// decoding resumes at the next byte.
std::vector<int> code_points(const std::string& text) {
  std::vector<int> out;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    const int extra = lead < 0x80 ? 0 : (lead >> 5) == 0x6 ? 1 : (lead >> 4) == 0xe ? 2
                                         : (lead >> 3) == 0x1e ? 3 : -1;
    bool ok = extra >= 0 && i + static_cast<size_t>(extra) < text.size();
    int cp = extra == 0 ? lead : lead & (0x3f >> extra);
    for (int k = 1; ok && k <= extra; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      ok = (next & 0xc0) == 0x80;
      cp = (cp << 6) | (next & 0x3f);
    }
    if (!ok) {
      out.push_back(0xfffd);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<size_t>(extra) + 1;
  }
  return out;
}

// Pen positions (in pixels, from 0) of every glyph and the total advance.
struct Layout {
  std::vector<int> glyphs;
  std::vector<float> pen_x;
  float width = 0;
};

Layout layout(const std::string& text, int scale) {
  const stbtt_fontinfo& info = font().info;
  const float s = pixels_per_unit(scale);
  Layout l;
  float pen = 0;
  int previous = 0;
  for (int cp : code_points(text)) {
    const int glyph = stbtt_FindGlyphIndex(&info, cp);
    if (previous != 0) pen += s * static_cast<float>(stbtt_GetGlyphKernAdvance(&info, previous, glyph));
    int advance = 0, lsb = 0;
    stbtt_GetGlyphHMetrics(&info, glyph, &advance, &lsb);
    l.glyphs.push_back(glyph);
    l.pen_x.push_back(pen);
    pen += s * static_cast<float>(advance);
    previous = glyph;
  }
  l.width = pen;
  return l;
}

}  // namespace

int text_width(const std::string& text, int scale) {
  return static_cast<int>(std::lround(layout(text, scale).width));
}

int draw_text(RgbImage& image, int x, int y, const std::string& text, const uint8_t rgb[3],
              int scale) {
  const stbtt_fontinfo& info = font().info;
  const float s = pixels_per_unit(scale);
  const float baseline = static_cast<float>(y) + 7.0f * static_cast<float>(scale);
  const Layout l = layout(text, scale);
  std::vector<unsigned char> coverage;
  for (size_t g = 0; g < l.glyphs.size(); ++g) {
    const float gx = static_cast<float>(x) + l.pen_x[g];
    const float ix = std::floor(gx), iy = std::floor(baseline);
    const float shift_x = gx - ix, shift_y = baseline - iy;
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    stbtt_GetGlyphBitmapBoxSubpixel(&info, l.glyphs[g], s, s, shift_x, shift_y, &x0, &y0, &x1, &y1);
    const int w = x1 - x0, h = y1 - y0;
    if (w <= 0 || h <= 0) continue;  // a space
    coverage.assign(static_cast<size_t>(w) * h, 0);
    stbtt_MakeGlyphBitmapSubpixel(&info, coverage.data(), w, h, w, s, s, shift_x, shift_y,
                                  l.glyphs[g]);
    const int left = static_cast<int>(ix) + x0, top = static_cast<int>(iy) + y0;
    for (int r = 0; r < h; ++r) {
      const int py = top + r;
      if (py < 0 || py >= image.height) continue;
      for (int c = 0; c < w; ++c) {
        const int px = left + c;
        const unsigned a = coverage[static_cast<size_t>(r) * w + c];
        if (px < 0 || px >= image.width || a == 0) continue;
        uint8_t* p = &image.pixels[(static_cast<size_t>(py) * image.width + px) * 3];
        for (int k = 0; k < 3; ++k)
          p[k] = static_cast<uint8_t>((p[k] * (255u - a) + rgb[k] * a + 127u) / 255u);
      }
    }
  }
  return x + static_cast<int>(std::lround(l.width));
}

}  // namespace mnistgan
