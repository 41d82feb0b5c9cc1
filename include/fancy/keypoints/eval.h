// COCO keypoint evaluation (OKS, greedy matching, accumulation, the 10 summary
// numbers) with pycocotools' exact arithmetic; see docs/keypoints.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fancy/keypoints/coco.h"

namespace fancy::keypoints {

// Per-keypoint standard deviations, computed as the published literals / 10.0 in
// double exactly as the reference tools do (.26/10 is 0.026000000000000002).
std::vector<double> coco_sigmas();       // 17 COCO body keypoints
std::vector<double> crowdpose_sigmas();  // 14 CrowdPose keypoints

// Which rules to follow where the reference tools differ.
enum class Rules {
  pycocotools,  // cocoapi: ignore = iscrowd or num_keypoints == 0
  xtcocotools,  // xtcocoapi (CrowdPose, WholeBody): ignore from the visible count,
                // detections without a visible keypoint dropped, box area when the
                // ground truth has no `area`
};

struct EvalOptions {
  std::vector<double> sigmas;          // empty: COCO's 17 (checked against K)
  Rules rules = Rules::pycocotools;
  bool area_from_box = false;          // OKS scale 0.53*w*h of the GT box (use_area=False)
  std::vector<int64_t> image_ids;      // empty: every image of the ground truth
  std::vector<int64_t> category_ids;   // empty: every category
  std::vector<int64_t> max_dets{20};   // the summary uses the largest
  bool crowd_split = false;            // CrowdPose easy/medium/hard by crowdIndex
  // pycocotools quirks, kept by default; each can be switched off.
  bool gt_id_zero_never_matched = true;  // it stores "unmatched" as id 0
  bool ignore_overwritten_by_iscrowd = true;  // the file's `ignore` field is dropped
  int threads = 0;                     // 0: hardware threads
};

struct CategoryBreakdown {
  int64_t id = 0;
  std::string name;
  std::array<double, 10> stats{};  // the 10 numbers for this category alone
};

struct KeypointBreakdown {
  std::string name;
  double sigma = 0;
  int64_t pairs = 0;                 // matched pairs with this keypoint labelled
  double mean_oks_term = 0;          // mean exp(-d^2 / (2 s^2 k^2))
  double mean_normalized_error = 0;  // mean d / sqrt(s^2), s^2 the OKS area
};

struct Timings {  // seconds
  // set by evaluate_files; with threads, load_results spans both loads (they overlap)
  double load_gt = 0, load_results = 0;
  double oks = 0, match = 0, accumulate = 0, summarize = 0;
};

struct EvalResult {
  // AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl (maxDets = the largest).
  std::array<double, 10> stats{};
  // pycocotools' eval arrays, C order: precision [T][R][K][A][M], recall [T][K][A][M].
  std::vector<double> iou_thresholds, recall_thresholds;
  std::vector<int64_t> category_ids, max_dets;
  std::vector<std::string> area_labels{"all", "medium", "large"};
  std::vector<double> precision, recall, scores;
  std::vector<CategoryBreakdown> per_category;
  std::vector<KeypointBreakdown> per_keypoint;  // at OKS 0.5, area "all"
  // CrowdPose: mean of precision over (T, R, K, M) per crowdIndex class, -1 entries
  // included, as xtcocotools prints them (unrounded here).
  bool has_crowd_split = false;
  std::array<double, 3> crowd_ap{-1, -1, -1};  // easy, medium, hard
  int64_t images = 0, ground_truths = 0, detections = 0;
  Timings timings;

  double precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const;
};

// Validates the detections against the ground truth (unknown images or categories,
// keypoint counts) and evaluates. Throws Error with a clear message on bad input.
EvalResult evaluate(const GroundTruth& gt, const Detections& dt, const EvalOptions& options = {});

// Loads the ground truth and the results (concurrently when options.threads allows)
// and evaluates them; timings include both loads.
EvalResult evaluate_files(const std::string& gt_path, const std::string& results_path,
                          const EvalOptions& options = {}, const Layout& layout = {});

// The 10 summary lines, as pycocotools prints them.
std::string summary_text(const EvalResult& result);
// The result as JSON: {"stats": [...], "stat_names": [...], breakdowns, curves}.
std::string result_json(const EvalResult& result);

// COCO-WholeBody: body, foot, face, left hand, right hand and whole body, each with
// its sigmas and score key (xtcocotools' keypoints_<part>).
struct WholeBodyPart {
  std::string name;
  Layout layout;
  std::vector<double> sigmas;
};
std::vector<WholeBodyPart> wholebody_parts();

}  // namespace fancy::keypoints
