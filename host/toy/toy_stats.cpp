// toy_stats.cpp: see toy_stats.h.
#include "toy/toy_stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mnistgan {

namespace {

void check_sample(const std::vector<float>& x, const char* what) {
  if (x.empty()) throw std::invalid_argument(std::string(what) + ": empty sample");
  for (float v : x)
    if (!std::isfinite(v))
      throw std::invalid_argument(std::string(what) + ": sample holds a non-finite value");
}

// Checks both samples and sorts them (the copies ks_statistic and wasserstein1 take by value).
void check_and_sort(std::vector<float>& a, std::vector<float>& b, const char* what) {
  check_sample(a, what);
  check_sample(b, what);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
}

}  // namespace

Moments moments(const std::vector<float>& x) {
  check_sample(x, "moments");
  const double n = static_cast<double>(x.size());
  double sum = 0;
  for (float v : x) sum += v;
  Moments m;
  m.mean = sum / n;
  // Two passes: central moments from deviations, so a large mean (4) costs no precision.
  double m2 = 0, m3 = 0, m4 = 0;
  for (float v : x) {
    const double d = v - m.mean, d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  m2 /= n, m3 /= n, m4 /= n;
  m.std = std::sqrt(m2);
  if (m2 > 0) {
    m.skewness = m3 / (m2 * m.std);
    m.excess_kurtosis = m4 / (m2 * m2) - 3.0;
  }
  return m;
}

// Both functions walk the merged sorted samples. At each distinct value t, every element
// equal to t in either sample is consumed before F_a(t) and F_b(t) are compared, so ties
// (within or across the samples) are counted exactly as the step functions have them.
double ks_statistic(std::vector<float> a, std::vector<float> b) {
  check_and_sort(a, b, "ks_statistic");
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  size_t i = 0, j = 0;
  double worst = 0;
  while (i < a.size() && j < b.size()) {
    const float t = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == t) ++i;
    while (j < b.size() && b[j] == t) ++j;
    worst = std::max(worst, std::fabs(i / na - j / nb));
  }
  return worst;  // past the end of either sample the gap only shrinks to 0
}

double wasserstein1(std::vector<float> a, std::vector<float> b) {
  check_and_sort(a, b, "wasserstein1");
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  // W1 = sum over the gaps between consecutive distinct values t_k < t_{k+1} of
  //      |F_a(t_k) - F_b(t_k)| * (t_{k+1} - t_k)
  size_t i = 0, j = 0;
  double total = 0;
  double previous = std::min(a[0], b[0]);
  while (i < a.size() || j < b.size()) {
    const double t = j == b.size() ? a[i] : i == a.size() ? b[j] : std::min(a[i], b[j]);
    total += std::fabs(i / na - j / nb) * (t - previous);
    while (i < a.size() && a[i] == t) ++i;
    while (j < b.size() && b[j] == t) ++j;
    previous = t;
  }
  return total;
}

}  // namespace mnistgan
