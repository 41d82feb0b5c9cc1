#pragma once
// SyntheticPeople: rendered people with the COCO-17 skeleton and exact keypoints, so pose
// estimation can be trained and scored without a photo dataset.
//
// Each image holds one person: a 2-D articulated body (torso, head with face keypoints,
// two-segment arms and legs) with a random pose within joint-angle limits, body
// proportions, facing (front, back, profile), scale, rotation and position; limbs drawn
// as textured thick segments in clothing and skin colours, the far side behind the
// torso; on a cluttered background (gradients, shapes, limb-like distractors); partial
// occlusion by objects in front; pixel noise and blur. Keypoints follow COCO: v = 2
// visible, v = 1 labelled but hidden (under an occluder, or the far ear in profile),
// v = 0 outside the image. Sample i depends only on (seed, i): deterministic, any order,
// any thread.
//
//   fancy::pose::SyntheticPeople people(fancy::pose::SyntheticOptions().seed(1));
//   auto s = people.get(42);   // s.image (H, W, 3) uint8 BGR, s.keypoints (17, 3), s.box
//   people.write_coco("val.json", "val_images", 0, 1000);  // ground truth for the evaluator
#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/arg.h>

namespace fancy::pose {

constexpr int kCocoJoints = 17;
// nose, left_eye, right_eye, left_ear, right_ear, left_shoulder, right_shoulder,
// left_elbow, right_elbow, left_wrist, right_wrist, left_hip, right_hip, left_knee,
// right_knee, left_ankle, right_ankle
const std::vector<std::string>& coco_keypoint_names();
// COCO's skeleton: 19 limbs as 1-based joint pairs, as in person_keypoints_*.json.
const std::vector<std::array<int, 2>>& coco_skeleton();

// A seed for sample `index` of a stream seeded by `seed` (splitmix64 of both): samples
// independent of the order and the thread they are drawn in.
uint64_t sample_seed(uint64_t seed, uint64_t index);

struct SyntheticOptions {
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, image_size) = 160;       // square images
  TORCH_ARG(double, min_height) = 0.45;       // person height as a share of the image side
  TORCH_ARG(double, max_height) = 0.85;
  TORCH_ARG(double, max_rotation) = 40;       // degrees, whole body
  TORCH_ARG(double, occlusion) = 0.35;        // probability of an occluding object
  TORCH_ARG(double, clutter) = 1.0;           // 0: plain background; 1: full clutter
  TORCH_ARG(double, noise) = 6.0;             // max std of the pixel noise (0–255 scale)
};

struct PersonSample {
  cv::Mat image;                     // image_size × image_size, CV_8UC3 (BGR)
  std::array<float, kCocoJoints * 3> keypoints{};  // x, y, v (COCO: 0 = outside the image)
  std::array<float, 4> box{};        // x, y, w, h of the visible person
  float area = 0;                    // visible person pixels
  int num_keypoints = 0;             // joints with v > 0
};

class SyntheticPeople {
 public:
  explicit SyntheticPeople(SyntheticOptions options = {});
  PersonSample get(int64_t index) const;
  const SyntheticOptions& options() const { return options_; }
  // COCO keypoint ground truth for samples [first, first + count): image ids first + 1 …,
  // file names NNNNNNNN.png; with image_dir set the images are written there too.
  // Written to a temporary name and renamed.
  void write_coco(const std::string& path, const std::string& image_dir, int64_t first, int64_t count) const;

 private:
  SyntheticOptions options_;
};

}  // namespace fancy::pose
