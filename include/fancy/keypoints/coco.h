// COCO keypoint data: ground truth and detection results, loaded with simdjson.
// Independent of LibTorch (a process that links it pays ~0.75 s to start).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fancy::keypoints {

// Every loader and evaluator error: the message names the file (or "<memory>"), the
// record, the field, the value and the rule.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Which JSON fields hold the keypoints (concatenated in this order) and the score.
// COCO: {"keypoints"}, "score". COCO-WholeBody parts use their own fields and score
// keys (foot_kpts / foot_score, ...); a result without the part's score key falls
// back to "score", as xtcocotools does.
struct Layout {
  std::vector<std::string> keys{"keypoints"};
  std::string score_key = "score";
};

struct Image {
  int64_t id = 0;
  double crowd_index = std::numeric_limits<double>::quiet_NaN();  // CrowdPose only
};

struct Category {
  int64_t id = 0;
  std::string name;
  std::vector<std::string> keypoint_names;
  std::vector<std::array<int64_t, 2>> skeleton;  // 1-based joint pairs, as in COCO
};

struct Annotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::vector<double> keypoints;  // x, y, v per keypoint, in Layout order
  std::array<double, 4> bbox{};   // x, y, w, h
  double area = 0;
  bool has_area = false;
  bool iscrowd = false;
  int64_t num_keypoints = -1;  // -1: field absent
  int ignore = -1;             // the file's `ignore` field; -1: absent
};

struct GroundTruth {
  std::string source;  // file name, for messages
  std::vector<std::string> keypoint_keys{"keypoints"};  // the Layout it was read with
  std::vector<Image> images;
  std::vector<Annotation> annotations;
  std::vector<Category> categories;
};

// Detections, column by column: record i is image_id[i], category_id[i], score[i],
// keypoints[i*3K .. (i+1)*3K) and, when has_bbox, bbox[4i .. 4i+4).
struct Detections {
  std::string source;
  int64_t keypoint_count = 0;  // K
  std::vector<int64_t> image_id;
  std::vector<int64_t> category_id;
  std::vector<double> score;
  std::vector<double> keypoints;
  bool has_bbox = false;
  std::vector<double> bbox;
  size_t size() const { return score.size(); }
};

GroundTruth load_ground_truth(const std::string& path, const Layout& layout = {});
GroundTruth parse_ground_truth(std::string_view json, const std::string& source = "<memory>",
                               const Layout& layout = {});
Detections load_detections(const std::string& path, const Layout& layout = {});
Detections parse_detections(std::string_view json, const std::string& source = "<memory>",
                            const Layout& layout = {});

}  // namespace fancy::keypoints
