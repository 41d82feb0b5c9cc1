// OKS-NMS (HRNet / mmpose) and PCK / PCKh (MPII).
#include "fancy/keypoints/pose_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "fancy/keypoints/coco.h"
#include "keypoints/numpy_math.h"

namespace fancy::keypoints {

double oks_pair(const double* a, const double* b, double area_a, double area_b, const std::vector<double>& sigmas,
                double vis_threshold) {
  const size_t K = sigmas.size();
  std::vector<double> terms;
  terms.reserve(K);
  const double area = (area_a + area_b) / 2 + 2.220446049250313e-16;
  for (size_t t = 0; t < K; ++t) {
    if (vis_threshold >= 0 && !(a[3 * t + 2] > vis_threshold && b[3 * t + 2] > vis_threshold)) continue;
    const double var = (sigmas[t] * 2) * (sigmas[t] * 2);
    const double dx = b[3 * t] - a[3 * t], dy = b[3 * t + 1] - a[3 * t + 1];
    terms.push_back(std::exp(-((dx * dx + dy * dy) / var / area / 2)));
  }
  return terms.empty() ? 0.0 : numpy::sum(terms) / static_cast<double>(terms.size());
}

std::vector<int64_t> oks_nms(const std::vector<double>& keypoints, const std::vector<double>& scores,
                             const std::vector<double>& areas, const std::vector<double>& sigmas, double threshold,
                             double vis_threshold) {
  const size_t n = scores.size(), K = sigmas.size();
  if (keypoints.size() != n * 3 * K)
    throw Error("oks_nms: keypoints has " + std::to_string(keypoints.size()) + " values; expected " +
                std::to_string(n * 3 * K) + " (poses x keypoints x 3)");
  if (areas.size() != n)
    throw Error("oks_nms: areas has " + std::to_string(areas.size()) + " values; expected one per pose (" +
                std::to_string(n) + ")");
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return scores[x] > scores[y]; });
  std::vector<char> removed(n, 0);
  std::vector<int64_t> keep;
  for (size_t i = 0; i < n; ++i) {
    const int64_t p = order[i];
    if (removed[p]) continue;
    keep.push_back(p);
    for (size_t j = i + 1; j < n; ++j) {
      const int64_t q = order[j];
      if (removed[q]) continue;
      if (oks_pair(&keypoints[p * 3 * K], &keypoints[q * 3 * K], areas[p], areas[q], sigmas, vis_threshold) >
          threshold)
        removed[q] = 1;
    }
  }
  return keep;
}

PckResult pck(const std::vector<double>& pred, const std::vector<double>& gt, const std::vector<uint8_t>& visible,
              const std::vector<double>& normalizer, int64_t keypoint_count, double alpha) {
  const size_t K = static_cast<size_t>(keypoint_count), n = normalizer.size();
  if (pred.size() != n * K * 2 || gt.size() != n * K * 2 || visible.size() != n * K)
    throw Error("pck: pred and gt need samples x keypoints x 2 values and visible samples x keypoints flags (" +
                std::to_string(n) + " samples from normalizer, " + std::to_string(K) + " keypoints)");
  if (!(alpha > 0)) throw Error("pck: alpha must be positive, got " + std::to_string(alpha));
  PckResult r;
  std::vector<int64_t> hit(K), seen(K);
  int64_t hits = 0;
  for (size_t s = 0; s < n; ++s) {
    if (!(normalizer[s] > 0))
      throw Error("pck: normalizer[" + std::to_string(s) + "] must be positive, got " + std::to_string(normalizer[s]));
    for (size_t k = 0; k < K; ++k) {
      if (!visible[s * K + k]) continue;
      const double dx = pred[(s * K + k) * 2] - gt[(s * K + k) * 2];
      const double dy = pred[(s * K + k) * 2 + 1] - gt[(s * K + k) * 2 + 1];
      const bool ok = std::sqrt(dx * dx + dy * dy) / normalizer[s] <= alpha;
      hit[k] += ok;
      ++seen[k];
      hits += ok;
      ++r.counted;
    }
  }
  for (size_t k = 0; k < K; ++k) r.per_keypoint.push_back(seen[k] ? double(hit[k]) / seen[k] : -1.0);
  r.mean = r.counted ? double(hits) / r.counted : -1.0;
  return r;
}

std::vector<double> mpii_head_sizes(const std::vector<double>& head_boxes) {
  if (head_boxes.size() % 4) throw Error("mpii_head_sizes: head boxes are x1, y1, x2, y2 quadruples");
  std::vector<double> out;
  for (size_t i = 0; i < head_boxes.size(); i += 4) {
    const double dx = head_boxes[i + 2] - head_boxes[i], dy = head_boxes[i + 3] - head_boxes[i + 1];
    out.push_back(0.6 * std::sqrt(dx * dx + dy * dy));  // SC_BIAS * diagonal
  }
  return out;
}

}  // namespace fancy::keypoints
