// toy_stats.h: how close two 1-D samples are, for `mnistgan toy` (the 1-D Gaussian GAN demo).
// All exact on the empirical distributions, in double precision, on the host:
//
//   moments(x)            mean, standard deviation, skewness and excess kurtosis of x (n),
//                         population (1/n) moments: std = sqrt(m2), skew = m3 / m2^1.5,
//                         excess kurtosis = m4 / m2^2 - 3 (0 for a Gaussian, -1.2 for a
//                         uniform, -2 for two equal spikes)
//   ks_statistic(a, b)    two-sample Kolmogorov-Smirnov statistic sup_t |F_a(t) - F_b(t)|,
//                         F the empirical CDFs; 0 for identical samples, 1 for disjoint ones
//   wasserstein1(a, b)    earth mover's distance = integral over t of |F_a(t) - F_b(t)|; for
//                         equal sizes it is mean_i |a_(i) - b_(i)| over the sorted samples,
//                         and W1(a, a + c) = |c|
//
// Each takes its samples by value (they are sorted internally) and throws
// std::invalid_argument on an empty sample or a non-finite value.
#pragma once

#include <vector>

namespace mnistgan {

struct Moments {
  double mean = 0, std = 0, skewness = 0, excess_kurtosis = 0;
};

// skewness and excess_kurtosis are 0 when std is 0 (a sample of one value), where they
// are undefined: a fully collapsed generator is visible in std = 0 instead.
Moments moments(const std::vector<float>& x);
double ks_statistic(std::vector<float> a, std::vector<float> b);
double wasserstein1(std::vector<float> a, std::vector<float> b);

}  // namespace mnistgan
