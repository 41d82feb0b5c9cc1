// The few pieces of numpy arithmetic whose exact order shows in the last bit of
// pycocotools' results.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace fancy::keypoints::numpy {

// np.add.reduce on a contiguous float64 array: pairwise summation with 8 running
// partial sums in blocks of up to 128 (numpy/core/src/umath/loops_utils.h.src),
// added to the identity 0.0.
inline double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

inline double sum(const std::vector<double>& v) { return 0.0 + pairwise_sum(v.data(), v.size()); }

// np.mean of a float64 vector (sum, then one division by the count).
inline double mean(const std::vector<double>& v) { return sum(v) / static_cast<double>(v.size()); }

// np.linspace(start, stop, num) with endpoint: start + i*step, the last one exact.
inline std::vector<double> linspace(double start, double stop, size_t num) {
  std::vector<double> y(num);
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (size_t i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  y[num - 1] = stop;
  return y;
}

// np.round(x, decimals) for the CrowdPose classes: rint(x * 10^d) / 10^d.
inline double round_decimals(double x, int decimals) {
  double scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  return std::nearbyint(x * scale) / scale;
}

}  // namespace fancy::keypoints::numpy
