// Pose metrics used around the evaluator: OKS-NMS (HRNet / mmpose) and PCK / PCKh.
#pragma once

#include <cstdint>
#include <vector>

namespace fancy::keypoints {

// OKS between two poses of K keypoints (x, y, v triples) whose areas are averaged,
// as OKS-NMS uses it. Keypoints count only where both visibilities exceed
// vis_threshold (mmpose's rule); with vis_threshold < 0 every keypoint counts.
double oks_pair(const double* a, const double* b, double area_a, double area_b,
                const std::vector<double>& sigmas, double vis_threshold = -1.0);

// Greedy OKS non-maximum suppression: keep the highest score, drop every remaining
// pose whose OKS with it exceeds `threshold`, repeat. Returns the kept indices in
// score order (ties: lower index first). keypoints holds N*K*3 values.
std::vector<int64_t> oks_nms(const std::vector<double>& keypoints, const std::vector<double>& scores,
                             const std::vector<double>& areas, const std::vector<double>& sigmas,
                             double threshold, double vis_threshold = -1.0);

// PCK: a keypoint is correct when its distance to the ground truth is at most
// alpha * normalizer of its sample. pred and gt hold N*K*2 coordinates, visible N*K
// flags (only visible keypoints count), normalizer N values.
struct PckResult {
  std::vector<double> per_keypoint;  // share correct per keypoint (-1: never visible)
  double mean = 0;                   // over every visible keypoint of every sample
  int64_t counted = 0;
};
PckResult pck(const std::vector<double>& pred, const std::vector<double>& gt,
              const std::vector<uint8_t>& visible, const std::vector<double>& normalizer,
              int64_t keypoint_count, double alpha);

// MPII's head size: SC_BIAS (0.6) times the diagonal of the head box (x1, y1, x2, y2),
// the normalizer of PCKh.
std::vector<double> mpii_head_sizes(const std::vector<double>& head_boxes);

}  // namespace fancy::keypoints
