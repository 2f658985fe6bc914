// plot.cpp: see plot.h.
#include "plot/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mnistgan {

namespace {

void put(RgbImage& image, int x, int y, const uint8_t rgb[3]) {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * 3];
  p[0] = rgb[0], p[1] = rgb[1], p[2] = rgb[2];
}

// Mixes rgb over the pixel with weight alpha (so two translucent fills show their overlap).
void blend(RgbImage& image, int x, int y, const uint8_t rgb[3], float alpha) {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * 3];
  for (int c = 0; c < 3; ++c)
    p[c] = static_cast<uint8_t>(std::lround(p[c] * (1.0f - alpha) + rgb[c] * alpha));
}

void fill_rect(RgbImage& image, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y)
    for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) put(image, x, y, rgb);
}

// Tick spacing 1, 2 or 5 x 10^k giving about `target` intervals over span.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * power >= raw) return m * power;
  return 10.0 * power;
}

std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::fabs(value) < step * 1e-6 ? 0.0 : value);
  return buf;
}

double quantile(std::vector<float> x, double q) {
  const size_t k = static_cast<size_t>(q * static_cast<double>(x.size() - 1));
  std::nth_element(x.begin(), x.begin() + k, x.end());
  return x[k];
}

// count / (n * width) per bin over [lo, hi); values outside are dropped.
std::vector<double> density(const std::vector<float>& x, double lo, double hi, int bins) {
  std::vector<double> d(bins, 0.0);
  const double width = (hi - lo) / bins;
  for (float v : x) {
    const double b = std::floor((v - lo) / width);
    if (b >= 0 && b < bins) d[static_cast<int>(b)] += 1.0;
  }
  for (double& v : d) v /= static_cast<double>(x.size()) * width;
  return d;
}

constexpr int kScale = 2;  // capitals 14 pixels tall (font.h): readable at 100%
const uint8_t kWhite[3] = {255, 255, 255}, kBlack[3] = {0, 0, 0}, kGrid[3] = {225, 225, 225};

// The plotting area of one chart: data coordinates [x_lo, x_hi] x [y_lo, y_hi] mapped to the
// pixels inside the margins; y is clamped to the range.
struct Frame {
  int left, top, plot_w, plot_h;
  double x_lo, x_hi, y_lo, y_hi;
  int px(double v) const {
    return left + static_cast<int>(std::lround((v - x_lo) / (x_hi - x_lo) * plot_w));
  }
  int py(double v) const {
    const double clamped = std::max(y_lo, std::min(v, y_hi));
    return top + plot_h - static_cast<int>(std::lround((clamped - y_lo) / (y_hi - y_lo) * plot_h));
  }
};

// Grid lines with numbered ticks on both axes, the axes themselves, the axis labels and a
// centred title: everything of a chart but its data and legend.
void draw_frame(RgbImage& image, const Frame& f, const std::string& title,
                const std::string& x_label, const std::string& y_label) {
  const double x_step = nice_step(f.x_hi - f.x_lo, 8), y_step = nice_step(f.y_hi - f.y_lo, 5);
  for (double t = std::ceil(f.x_lo / x_step) * x_step; t <= f.x_hi + 1e-9 * x_step; t += x_step) {
    const int x = f.px(t);
    fill_rect(image, x, f.top, x, f.top + f.plot_h, kGrid);
    fill_rect(image, x, f.top + f.plot_h, x, f.top + f.plot_h + 5, kBlack);
    const std::string label = tick_label(t, x_step);
    draw_text(image, x - text_width(label, kScale) / 2, f.top + f.plot_h + 10, label, kBlack,
              kScale);
  }
  for (double t = std::ceil(f.y_lo / y_step) * y_step; t <= f.y_hi + 1e-9 * y_step; t += y_step) {
    const int y = f.py(t);
    fill_rect(image, f.left, y, f.left + f.plot_w, y, kGrid);
    fill_rect(image, f.left - 5, y, f.left, y, kBlack);
    const std::string label = tick_label(t, y_step);
    draw_text(image, f.left - 10 - text_width(label, kScale), y - 7, label, kBlack, kScale);
  }
  draw_text(image, f.left + (f.plot_w - text_width(x_label, kScale)) / 2,
            f.top + f.plot_h + 34, x_label, kBlack, kScale);
  draw_text(image, 8, f.top - 22, y_label, kBlack, kScale);
  draw_text(image, (image.width - text_width(title, kScale)) / 2, 10, title, kBlack, kScale);
}

// The two axis lines, drawn last so the data does not cover them.
void draw_axes(RgbImage& image, const Frame& f) {
  fill_rect(image, f.left, f.top, f.left, f.top + f.plot_h, kBlack);
  fill_rect(image, f.left, f.top + f.plot_h, f.left + f.plot_w, f.top + f.plot_h, kBlack);
}

// Legend entries top-right inside the frame, one per line: a colour swatch and the label.
void draw_legend(RgbImage& image, const Frame& f,
                 const std::vector<std::pair<std::string, const uint8_t*>>& entries) {
  int widest = 0;
  for (const auto& e : entries) widest = std::max(widest, text_width(e.first, kScale));
  const int x = f.left + f.plot_w - widest - 36;
  int y = f.top + 8;
  for (const auto& e : entries) {
    fill_rect(image, x - 4, y - 3, f.left + f.plot_w - 6, y + 16, kWhite);
    fill_rect(image, x, y, x + 20, y + 13, e.second);
    draw_text(image, x + 28, y, e.first, kBlack, kScale);
    y += 22;
  }
}

// A line of the given thickness from (x0, y0) to (x1, y1) (DDA: one dot per pixel step).
void draw_line(RgbImage& image, int x0, int y0, int x1, int y1, const uint8_t rgb[3],
               int thickness) {
  const int steps = std::max(std::abs(x1 - x0), std::abs(y1 - y0));
  for (int i = 0; i <= steps; ++i) {
    const double a = steps == 0 ? 0.0 : static_cast<double>(i) / steps;
    const int x = static_cast<int>(std::lround(x0 + a * (x1 - x0)));
    const int y = static_cast<int>(std::lround(y0 + a * (y1 - y0)));
    fill_rect(image, x, y, x + thickness - 1, y + thickness - 1, rgb);
  }
}

RgbImage blank_image(int width, int height) {
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.assign(static_cast<size_t>(width) * height * 3, 255);
  return image;
}

}  // namespace

RgbImage plot_histograms(const std::vector<float>& real, const std::vector<float>& generated,
                         const HistogramPlotText& text, int width, int height, int bins) {
  if (real.empty() || generated.empty())
    throw std::invalid_argument("plot_histograms: both samples need at least one value");
  if (bins < 2 || width < 320 || height < 200)
    throw std::invalid_argument("plot_histograms: need bins >= 2 and at least 320x200 pixels");

  static const uint8_t kReal[3] = {31, 119, 180}, kRealEdge[3] = {15, 60, 120},
                       kGen[3] = {255, 127, 14}, kGenEdge[3] = {170, 70, 0};
  constexpr float kFillAlpha = 0.5f;
  const int left = 80, right = 20, top = 56, bottom = 56;
  const int plot_w = width - left - right, plot_h = height - top - bottom;
  RgbImage image = blank_image(width, height);

  // x range: both samples' 0.1%..99.9% quantiles, widened 5% each side.
  double lo = std::min(quantile(real, 0.001), quantile(generated, 0.001));
  double hi = std::max(quantile(real, 0.999), quantile(generated, 0.999));
  if (!(hi > lo)) hi = lo + 1.0;
  const double pad = 0.05 * (hi - lo);
  lo -= pad, hi += pad;
  const std::vector<double> d_real = density(real, lo, hi, bins);
  const std::vector<double> d_gen = density(generated, lo, hi, bins);
  const double real_peak = *std::max_element(d_real.begin(), d_real.end());
  const double gen_peak = *std::max_element(d_gen.begin(), d_gen.end());
  double y_max = 1.15 * std::max(real_peak, std::min(gen_peak, 4.0 * real_peak));
  if (!(y_max > 0)) y_max = 1.15 * gen_peak;
  if (!(y_max > 0)) y_max = 1.0;

  const Frame frame{left, top, plot_w, plot_h, lo, hi, 0.0, y_max};
  auto py = [&](double d) { return frame.py(d); };
  draw_frame(image, frame, text.title, "x", "density");

  // Bars: translucent fills (overlap shows as a mix), then each histogram's outline on top.
  const double bin_px = static_cast<double>(plot_w) / bins;
  for (const auto* hist : {&d_real, &d_gen}) {
    const uint8_t* fill = hist == &d_real ? kReal : kGen;
    for (int b = 0; b < bins; ++b) {
      const int x0 = left + static_cast<int>(std::lround(b * bin_px));
      const int x1 = left + static_cast<int>(std::lround((b + 1) * bin_px)) - 1;
      for (int y = py((*hist)[b]); y < top + plot_h; ++y)
        for (int x = x0; x <= x1; ++x) blend(image, x, y, fill, kFillAlpha);
    }
  }
  for (const auto* hist : {&d_real, &d_gen}) {
    const uint8_t* edge = hist == &d_real ? kRealEdge : kGenEdge;
    int previous_y = top + plot_h;
    for (int b = 0; b <= bins; ++b) {
      const int x = left + static_cast<int>(std::lround(b * bin_px));
      const int y = b < bins ? py((*hist)[b]) : top + plot_h;
      fill_rect(image, x, previous_y, x, y, edge);  // the step's vertical
      if (b < bins) {
        const int x1 = left + static_cast<int>(std::lround((b + 1) * bin_px));
        fill_rect(image, x, y, x1, y, edge);
      }
      previous_y = y;
    }
  }
  // A generated spike taller than the axis: say how tall it really is.
  if (gen_peak > y_max) {
    const int b = static_cast<int>(std::max_element(d_gen.begin(), d_gen.end()) - d_gen.begin());
    char buf[48];
    std::snprintf(buf, sizeof(buf), "PEAK %.3g >", gen_peak);
    const int x = left + static_cast<int>(std::lround((b + 0.5) * bin_px));
    draw_text(image, std::max(left + 4, x - text_width(buf, kScale) - 4), top + 4, buf, kGenEdge,
              kScale);
  }

  draw_axes(image, frame);
  draw_legend(image, frame, {{text.real_label, kReal}, {text.generated_label, kGen}});
  return image;
}

RgbImage plot_lines(const std::vector<LineSeries>& series, const LinePlotText& text,
                    const std::vector<double>& reference_y, int width, int height) {
  if (width < 320 || height < 200)
    throw std::invalid_argument("plot_lines: need at least 320x200 pixels");
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const LineSeries& line : series) {
    if (line.x.size() != line.y.size())
      throw std::invalid_argument("plot_lines: series '" + line.label + "' has " +
                                  std::to_string(line.x.size()) + " x and " +
                                  std::to_string(line.y.size()) + " y values");
    for (size_t i = 0; i < line.x.size(); ++i) {
      if (!std::isfinite(line.x[i]) || !std::isfinite(line.y[i])) continue;
      x_lo = std::min(x_lo, line.x[i]), x_hi = std::max(x_hi, line.x[i]);
      y_lo = std::min(y_lo, line.y[i]), y_hi = std::max(y_hi, line.y[i]);
    }
  }
  for (double r : reference_y) y_lo = std::min(y_lo, r), y_hi = std::max(y_hi, r);
  if (!(x_hi >= x_lo)) x_lo = 0, x_hi = 1;  // nothing finite yet: an empty frame
  if (!(y_hi >= y_lo)) y_lo = 0, y_hi = 1;
  if (!(x_hi > x_lo)) x_hi = x_lo + 1;
  if (!(y_hi > y_lo)) y_lo -= 0.5, y_hi += 0.5;
  const double pad = 0.05 * (y_hi - y_lo);
  y_lo -= pad, y_hi += pad;

  RgbImage image = blank_image(width, height);
  const int left = 80, right = 20, top = 56, bottom = 56;
  const Frame frame{left, top, width - left - right, height - top - bottom, x_lo, x_hi, y_lo, y_hi};
  draw_frame(image, frame, text.title, text.x_label, text.y_label);
  static const uint8_t kReference[3] = {150, 150, 150};
  for (double r : reference_y)  // dashed
    for (int x = frame.left; x < frame.left + frame.plot_w; x += 12)
      fill_rect(image, x, frame.py(r), std::min(x + 6, frame.left + frame.plot_w), frame.py(r),
                kReference);
  std::vector<std::pair<std::string, const uint8_t*>> legend;
  for (const LineSeries& line : series) {
    bool have_previous = false;
    int px0 = 0, py0 = 0;
    for (size_t i = 0; i < line.x.size(); ++i) {
      if (!std::isfinite(line.x[i]) || !std::isfinite(line.y[i])) {
        have_previous = false;  // a gap, not a line through the missing point
        continue;
      }
      const int px = frame.px(line.x[i]), py = frame.py(line.y[i]);
      if (have_previous) draw_line(image, px0, py0, px, py, line.rgb, 2);
      if (line.markers) fill_rect(image, px - 3, py - 3, px + 3, py + 3, line.rgb);
      px0 = px, py0 = py, have_previous = true;
    }
    legend.push_back({line.label, line.rgb});
  }
  draw_axes(image, frame);
  draw_legend(image, frame, legend);
  return image;
}

RgbImage stack_vertically(const std::vector<RgbImage>& panels) {
  if (panels.empty()) throw std::invalid_argument("stack_vertically: no panels");
  RgbImage out;
  out.width = panels[0].width;
  for (const RgbImage& p : panels) {
    if (p.width != out.width)
      throw std::invalid_argument("stack_vertically: panels of different widths");
    out.height += p.height;
    out.pixels.insert(out.pixels.end(), p.pixels.begin(), p.pixels.end());
  }
  return out;
}

}  // namespace mnistgan
