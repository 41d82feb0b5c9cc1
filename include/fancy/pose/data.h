#pragma once
// Top-down pose data: a person's box → an affine crop of the network's input size (with
// the training augmentation), targets on the quarter-size heatmap grid, a COCO keypoint
// dataset reader, and prediction with the flip test.
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "fancy/pose/heatmap.h"
#include "fancy/pose/hourglass.h"

namespace fancy::pose {

struct CropOptions {
  TORCH_ARG(int64_t, input_size) = 128;
  TORCH_ARG(double, margin) = 1.25;  // crop side = margin · the box's longer side
  TORCH_ARG(double, sigma) = 1.0;    // target Gaussian on the heatmap, pixels
  // Augmentation (pose-hg-train's recipe), used when a generator is given:
  TORCH_ARG(double, scale_sigma) = 0.25;      // crop side × 2^N(0, σ), clipped to ±2σ
  TORCH_ARG(double, rotation_sigma) = 30;     // degrees, N(0, σ) clipped to ±2σ …
  TORCH_ARG(double, rotation_prob) = 0.4;     // … applied with this probability
  TORCH_ARG(double, flip_prob) = 0.5;         // mirror with left/right joints swapped
  TORCH_ARG(double, colour) = 0.4;            // each channel × U(1 − c, 1 + c)
};

struct PersonCrop {
  torch::Tensor image;      // (3, S, S) float in [0, 1], RGB
  torch::Tensor keypoints;  // (J, 3): x, y on the heatmap grid, v (0 when outside the crop)
  Affine image_to_heatmap;  // maps image coordinates onto the heatmap grid
};

// The crop around `box` (x, y, w, h) of a BGR image; keypoints (J × 3, image
// coordinates, may be empty) follow it. With `rng`, the augmentation is applied.
PersonCrop crop_person(const cv::Mat& image, const std::array<float, 4>& box, const std::vector<float>& keypoints,
                       const CropOptions& options, std::mt19937_64* rng = nullptr,
                       const std::vector<std::pair<int64_t, int64_t>>& flip_pairs = coco_flip_pairs());

// Stacks crops into a batch: images (N, 3, S, S) and heatmap targets (N, J, S/4, S/4).
std::pair<torch::Tensor, HeatmapTargets> make_batch(const std::vector<PersonCrop>& crops, const CropOptions& options);

// Last stack's heatmaps (N, J, S/4, S/4) in eval mode, averaged with those of the mirrored
// images (flipped back, joints swapped) when flip_test is set.
torch::Tensor predict_heatmaps(StackedHourglass& model, const torch::Tensor& images, bool flip_test = true,
                               const std::vector<std::pair<int64_t, int64_t>>& flip_pairs = coco_flip_pairs());

// A COCO keypoint dataset (person_keypoints_*.json + an image folder) for top-down
// training: one record per non-crowd person with at least one labelled keypoint.
struct CocoPerson {
  int64_t image_id = 0, annotation_id = 0;
  std::string file;  // image path
  std::array<float, 4> box{};
  std::vector<float> keypoints;  // J × 3
  float area = 0;
};

class CocoPeople {
 public:
  // Errors name the file, the record and the field: a missing field, keypoints whose
  // length is not 3 × the category's keypoint count, an annotation of an unknown image.
  CocoPeople(const std::string& annotations, const std::string& image_dir);
  size_t size() const { return people_.size(); }
  const CocoPerson& operator[](size_t i) const { return people_[i]; }
  int64_t joints() const { return joints_; }
  // The person's image (BGR); a missing or unreadable file is an error naming it.
  cv::Mat image(size_t i) const;

 private:
  std::vector<CocoPerson> people_;
  int64_t joints_ = 0;
};

}  // namespace fancy::pose
