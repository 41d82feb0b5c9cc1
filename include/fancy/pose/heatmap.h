#pragma once
// Heatmap targets, decoding, flip test and crop geometry for top-down pose estimation.
//
// Coordinates are continuous: pixel (i, j) of an image or heatmap covers
// [j, j + 1) × [i, i + 1), so its centre is (j + 0.5, i + 0.5), flipping a width-W map
// is x → W − x, and scaling by s maps pixel edges onto pixel edges. Keypoint tensors are
// (…, J, 3): x, y and a visibility / score (v > 0: labelled).
#include <string>
#include <torch/torch.h>

#include <array>
#include <utility>
#include <vector>

namespace fancy::pose {

struct HeatmapTargets {
  torch::Tensor heatmaps;  // (N, J, H, W)
  torch::Tensor weights;   // (N, J): 1 for labelled joints whose Gaussian touches the map, else 0
};

// Gaussian targets exp(−‖c − k‖² / 2σ²) at the pixel centres c around each keypoint k
// (heatmap coordinates; peak 1 at k, cut at 3σ), max-combined over the persons of a
// sample: keypoints (N, J, 3) or (N, P, J, 3). Unlabelled joints give zero maps and zero
// weight.
HeatmapTargets render_heatmaps(const torch::Tensor& keypoints, int64_t height, int64_t width, double sigma = 1.0);

// How a heatmap's maximum becomes a sub-pixel position.
enum class Decode {
  // The arg-max pixel, moved a quarter pixel toward the higher neighbour on each axis
  // (not on the border): Newell et al.'s rule, as pose-hg-train and mmpose's default.
  Quarter,
  // DARK (Zhang et al., CVPR 2020): the map smoothed by the target's Gaussian, then one
  // Newton step on its logarithm from the arg-max pixel, −H⁻¹∇ (finite differences),
  // which recovers the centre of a Gaussian exactly; the quarter rule where the step is
  // not defined (border, flat or non-concave log).
  Dark,
};
// Per joint: the decoded position + 0.5 for the pixel centre. heatmaps (…, J, H, W) →
// (…, J, 3): x, y in heatmap coordinates and the peak value. `sigma` is the targets' σ
// (Dark only).
torch::Tensor decode_heatmaps(const torch::Tensor& heatmaps, Decode method = Decode::Quarter, double sigma = 1.0);
// "quarter" or "dark"; anything else is an error naming `what`.
Decode parse_decode(const std::string& name, const char* what);

// Mean squared error between every stack's heatmaps and the targets, joints weighted,
// summed over the stacks (intermediate supervision).
torch::Tensor heatmap_loss(const std::vector<torch::Tensor>& stacks, const HeatmapTargets& targets);

// Left/right joint pairs of COCO's 17 keypoints (eyes, ears, shoulders, …, ankles).
const std::vector<std::pair<int64_t, int64_t>>& coco_flip_pairs();
// Mirror heatmaps (…, J, H, W) left–right and swap the paired joints: the heatmaps of a
// flipped image become heatmaps of the original.
torch::Tensor flip_heatmaps(const torch::Tensor& heatmaps, const std::vector<std::pair<int64_t, int64_t>>& pairs);
// Mirror keypoints (…, J, 3) of an image of width `width` and swap the paired joints.
torch::Tensor flip_keypoints(const torch::Tensor& keypoints, double width,
                             const std::vector<std::pair<int64_t, int64_t>>& pairs);

// A 2×3 affine map [a b c; d e f]: (x, y) → (a x + b y + c, d x + e y + f).
using Affine = std::array<double, 6>;
// Image → crop: a square of side `box` centred on (cx, cy), rotated by `degrees`
// (counter-clockwise in the image), onto an out_size × out_size crop.
Affine crop_affine(double cx, double cy, double box, double degrees, int64_t out_size);
Affine invert(const Affine& m);
Affine scale_affine(const Affine& m, double s);  // then scale the result by s (crop → heatmap: 1/4)
// Points (…, 2+) through the map; columns past the second are copied.
torch::Tensor transform_points(const torch::Tensor& points, const Affine& m);

}  // namespace fancy::pose
