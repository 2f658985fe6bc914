// plot.h: the charts mnistgan draws, into RGB images (no plotting library needed), with
// numbered ticks, axis labels, a title and a legend in the compiled-in font (font.h):
//   plot_histograms  the picture `mnistgan toy` ends with (real vs generated densities)
//   plot_lines       one panel of line series against a shared x (train's curves.png)
#pragma once

#include <cstdint>  // uint8_t
#include <string>
#include <vector>

#include "io/image_io.h"  // RgbImage
#include "plot/font.h"    // draw_text, text_width

namespace mnistgan {

struct HistogramPlotText {
  std::string title;            // top line, e.g. "Seed 1, MBD 5x3, step 5000"
  std::string real_label;       // legend entry of the real sample
  std::string generated_label;  // legend entry of the generated sample
};

// Density histograms (count / (n * bin width), so both integrate to 1) of real and generated
// (finite values; either may be any size >= 1) over `bins` equal bins spanning both samples'
// 0.1%-99.9% quantiles plus a margin. The y axis stops at 1.15x the taller real bar or at
// 4x it when the generated one is taller (a collapsed generator is one huge spike); a
// clipped bar is marked with its true peak density. Real is blue, generated orange.
// Throws std::invalid_argument on empty samples, bins < 2 or
// a size below 320x200.
RgbImage plot_histograms(const std::vector<float>& real, const std::vector<float>& generated,
                         const HistogramPlotText& text, int width = 800, int height = 480,
                         int bins = 80);

struct LineSeries {
  std::string label;          // legend entry
  std::vector<double> x, y;   // same length; a non-finite point leaves a gap in the line
  uint8_t rgb[3] = {0, 0, 0};
  bool markers = false;       // a dot at every point (for sparse series: evaluations)
};

struct LinePlotText {
  std::string title, x_label, y_label;
};

// Every series as a 2-pixel polyline over axes spanning all finite points and the
// reference_y values (drawn as dashed grey lines, e.g. 0.5 for D's equilibrium), the y range
// padded 5%. Series without finite points only show in the legend. Throws
// std::invalid_argument on mismatched x/y lengths or a size below 320x200.
RgbImage plot_lines(const std::vector<LineSeries>& series, const LinePlotText& text,
                    const std::vector<double>& reference_y = {}, int width = 800,
                    int height = 300);

// Panels of one width, top to bottom, as one image.
RgbImage stack_vertically(const std::vector<RgbImage>& panels);

}  // namespace mnistgan
