// toy_plot.cpp: see toy_plot.h.
#include "toy_plot.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mnistgan {

namespace {

// A 5x7 font: 7 rows of 5 columns per glyph, '#' = ink. Upper case, digits and the
// punctuation the plot's labels use.
struct Glyph {
  char c;
  const char* rows[7];
};

constexpr Glyph kFont[] = {
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
    {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
    {'D', {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."}},
    {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
    {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
    {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
    {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
    {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
    {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
    {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
    {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
    {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
    {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
    {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
    {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
    {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
    {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
    {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
    {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
    {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
    {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
    {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
    {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
    {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
    {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
};

const Glyph* find_glyph(char c) {
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Glyph& g : kFont)
    if (g.c == upper) return &g;
  return nullptr;
}

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

int text_width(const std::string& text, int scale) {
  return static_cast<int>(text.size()) * 6 * scale - scale;
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

}  // namespace

int draw_text(RgbImage& image, int x, int y, const std::string& text, const uint8_t rgb[3],
              int scale) {
  for (char c : text) {
    if (const Glyph* g = find_glyph(c)) {
      for (int row = 0; row < 7; ++row)
        for (int col = 0; col < 5; ++col)
          if (g->rows[row][col] == '#')
            fill_rect(image, x + col * scale, y + row * scale, x + (col + 1) * scale - 1,
                      y + (row + 1) * scale - 1, rgb);
    }
    x += 6 * scale;
  }
  return x;
}

RgbImage plot_histograms(const std::vector<float>& real, const std::vector<float>& generated,
                         const HistogramPlotText& text, int width, int height, int bins) {
  if (real.empty() || generated.empty())
    throw std::invalid_argument("plot_histograms: both samples need at least one value");
  if (bins < 2 || width < 320 || height < 200)
    throw std::invalid_argument("plot_histograms: need bins >= 2 and at least 320x200 pixels");

  static const uint8_t kWhite[3] = {255, 255, 255}, kBlack[3] = {0, 0, 0},
                       kGrid[3] = {225, 225, 225}, kReal[3] = {31, 119, 180},
                       kRealEdge[3] = {15, 60, 120}, kGen[3] = {255, 127, 14},
                       kGenEdge[3] = {170, 70, 0};
  constexpr float kFillAlpha = 0.5f;
  constexpr int kScale = 2;  // font pixels are 2x2: 10x14 characters, readable at 100%
  const int left = 80, right = 20, top = 56, bottom = 56;
  const int plot_w = width - left - right, plot_h = height - top - bottom;

  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.assign(static_cast<size_t>(width) * height * 3, 255);

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

  auto px = [&](double v) {
    return left + static_cast<int>(std::lround((v - lo) / (hi - lo) * plot_w));
  };
  auto py = [&](double d) {
    return top + plot_h - static_cast<int>(std::lround(std::min(d, y_max) / y_max * plot_h));
  };

  // Grid lines and tick labels.
  const double x_step = nice_step(hi - lo, 8), y_step = nice_step(y_max, 5);
  for (double t = std::ceil(lo / x_step) * x_step; t <= hi; t += x_step) {
    const int x = px(t);
    fill_rect(image, x, top, x, top + plot_h, kGrid);
    fill_rect(image, x, top + plot_h, x, top + plot_h + 5, kBlack);
    const std::string label = tick_label(t, x_step);
    draw_text(image, x - text_width(label, kScale) / 2, top + plot_h + 10, label, kBlack, kScale);
  }
  for (double t = 0; t <= y_max; t += y_step) {
    const int y = py(t);
    fill_rect(image, left, y, left + plot_w, y, kGrid);
    fill_rect(image, left - 5, y, left, y, kBlack);
    const std::string label = tick_label(t, y_step);
    draw_text(image, left - 10 - text_width(label, kScale), y - 7, label, kBlack, kScale);
  }

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

  // Axes, labels, title, legend.
  fill_rect(image, left, top, left, top + plot_h, kBlack);
  fill_rect(image, left, top + plot_h, left + plot_w, top + plot_h, kBlack);
  draw_text(image, left + (plot_w - text_width("X", kScale)) / 2, height - 22, "X", kBlack, kScale);
  draw_text(image, 8, top - 22, "DENSITY", kBlack, kScale);
  draw_text(image, (width - text_width(text.title, kScale)) / 2, 10, text.title, kBlack, kScale);
  int legend_y = top + 8;
  for (int entry = 0; entry < 2; ++entry) {
    const std::string& label = entry == 0 ? text.real_label : text.generated_label;
    const uint8_t* colour = entry == 0 ? kReal : kGen;
    const int x = left + plot_w - text_width(label, kScale) - 36;
    fill_rect(image, x - 4, legend_y - 3, left + plot_w - 6, legend_y + 16, kWhite);
    fill_rect(image, x, legend_y, x + 20, legend_y + 13, colour);
    draw_text(image, x + 28, legend_y, label, kBlack, kScale);
    legend_y += 22;
  }
  return image;
}

}  // namespace mnistgan
