// toy_plot.h: the picture `mnistgan toy` ends with: the real and the generated samples'
// histograms overlaid on one pair of axes, with numbered ticks, a title and a legend, drawn
// into an RGB image with a built-in 5x7 pixel font (no plotting library needed).
#pragma once

#include <cstdint>  // uint8_t
#include <string>
#include <vector>

#include "image_io.h"  // RgbImage

namespace mnistgan {

struct HistogramPlotText {
  std::string title;            // top line, e.g. "SEED 1  MBD 5X3  STEP 5000"
  std::string real_label;       // legend entry of the real sample
  std::string generated_label;  // legend entry of the generated sample
};

// Density histograms (count / (n * bin width), so both integrate to 1) of real and generated
// (finite values; either may be any size >= 1) over `bins` equal bins spanning both samples'
// 0.1%-99.9% quantiles plus a margin. The y axis stops at 1.15x the taller real bar or at
// 4x it when the generated one is taller (a collapsed generator is one huge spike); a
// clipped bar is marked with its true peak density. Real is blue, generated orange.
// Text is drawn in upper case. Throws std::invalid_argument on empty samples, bins < 2 or
// a size below 320x200.
RgbImage plot_histograms(const std::vector<float>& real, const std::vector<float>& generated,
                         const HistogramPlotText& text, int width = 800, int height = 480,
                         int bins = 80);

// Draws `text` (upper-cased; characters without a glyph are blank) with its top-left
// corner at (x, y), each font pixel a scale x scale square; pixels outside are skipped.
// Returns the x just past the last character. 6 * scale pixels per character.
int draw_text(RgbImage& image, int x, int y, const std::string& text, const uint8_t rgb[3],
              int scale);

}  // namespace mnistgan
