// What the evaluator prints and writes: pycocotools' 10 summary lines, the JSON
// report with breakdowns and curves, and COCO-WholeBody's part definitions.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "fancy/keypoints/eval.h"

namespace fancy::keypoints {

std::string summary_text(const EvalResult& r) {
  static const char* kTitle[2] = {"Average Recall", "Average Precision"};
  static const char* kType[2] = {"(AR)", "(AP)"};
  static const char* kIou[5] = {"0.50:0.95", "0.50", "0.75", "0.50:0.95", "0.50:0.95"};
  static const char* kArea[5] = {"all", "all", "all", "medium", "large"};
  const long max_det = r.max_dets.empty() ? 20 : static_cast<long>(r.max_dets.back());
  std::string out;
  char line[160];
  for (int i = 0; i < 10; ++i) {
    const int ap = i < 5;
    std::snprintf(line, sizeof(line), " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3ld ] = %0.3f\n", kTitle[ap],
                  kType[ap], kIou[i % 5], kArea[i % 5], max_det, r.stats[i]);
    out += line;
  }
  if (r.has_crowd_split) {
    static const char* kClass[3] = {"easy", "medium", "hard"};
    for (int c = 0; c < 3; ++c) {
      std::snprintf(line, sizeof(line), " %-18s %s @[ IoU=%-9s | type=%6s | maxDets=%3ld ] = %0.3f\n",
                    "Average Precision", "(AP)", "0.50:0.95", kClass[c], max_det, r.crowd_ap[c]);
      out += line;
    }
  }
  return out;
}

namespace {

const char* kStatNames[10] = {"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"};

nlohmann::json stats_object(const std::array<double, 10>& s) {
  nlohmann::json o = nlohmann::json::object();
  for (int i = 0; i < 10; ++i) o[kStatNames[i]] = s[i];
  return o;
}

}  // namespace

std::string result_json(const EvalResult& r) {
  using nlohmann::json;
  json j;
  j["stats"] = std::vector<double>(r.stats.begin(), r.stats.end());
  j["stat_names"] = std::vector<std::string>(kStatNames, kStatNames + 10);
  j["summary"] = stats_object(r.stats);
  j["counts"] = {{"images", r.images}, {"ground_truths", r.ground_truths}, {"detections", r.detections}};
  json cats = json::array();
  for (const auto& c : r.per_category)
    cats.push_back({{"id", c.id}, {"name", c.name}, {"stats", stats_object(c.stats)}});
  j["per_category"] = cats;
  // Per area range: AP and AR over all thresholds.
  json areas = json::object();
  for (int a = 0; a < 3; ++a) {
    const int ap = a == 0 ? 0 : 2 + a, ar = a == 0 ? 5 : 7 + a;
    areas[r.area_labels[a]] = {{"AP", r.stats[ap]}, {"AR", r.stats[ar]}};
  }
  j["per_area"] = areas;
  json kps = json::array();
  for (const auto& k : r.per_keypoint)
    kps.push_back({{"name", k.name},
                   {"sigma", k.sigma},
                   {"pairs", k.pairs},
                   {"mean_oks_term", k.mean_oks_term},
                   {"mean_normalized_error", k.mean_normalized_error}});
  j["per_keypoint"] = kps;
  // Precision-recall curves (area "all", the largest maxDets): per category, at OKS
  // 0.50, 0.75 and each threshold.
  const size_t T = r.iou_thresholds.size(), R = r.recall_thresholds.size(), M = r.max_dets.size();
  json curves = json::array();
  for (size_t k = 0; k < r.category_ids.size(); ++k) {
    json per_t = json::array();
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> p(R);
      for (size_t i = 0; i < R; ++i) p[i] = r.precision_at(t, i, k, 0, M - 1);
      per_t.push_back({{"oks", r.iou_thresholds[t]}, {"precision", p}});
    }
    curves.push_back({{"category_id", r.category_ids[k]}, {"curves", per_t}});
  }
  j["pr_curves"] = {{"recall", r.recall_thresholds}, {"categories", curves}};
  if (r.has_crowd_split) j["crowd"] = {{"AP_easy", r.crowd_ap[0]}, {"AP_medium", r.crowd_ap[1]}, {"AP_hard", r.crowd_ap[2]}};
  j["timings_s"] = {{"load_gt", r.timings.load_gt},
                    {"load_results", r.timings.load_results},
                    {"oks", r.timings.oks},
                    {"match", r.timings.match},
                    {"accumulate", r.timings.accumulate},
                    {"summarize", r.timings.summarize}};
  return j.dump(1);
}

// COCO-WholeBody's parts and sigmas (the literals of its evaluation, used as given).
std::vector<WholeBodyPart> wholebody_parts() {
  const std::vector<double> body{0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
                                 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089};
  const std::vector<double> foot{0.068, 0.066, 0.066, 0.092, 0.094, 0.094};
  const std::vector<double> face{
      0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037, 0.038,
      0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009,
      0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009, 0.007,
      0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008,
      0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01,  0.008};
  const std::vector<double> hand{0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
                                 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02,  0.019, 0.022, 0.031};
  std::vector<double> whole = body;
  for (const auto* part : {&foot, &face, &hand, &hand}) whole.insert(whole.end(), part->begin(), part->end());
  return {
      {"body", Layout{{"keypoints"}, "score"}, body},
      {"foot", Layout{{"foot_kpts"}, "foot_score"}, foot},
      {"face", Layout{{"face_kpts"}, "face_score"}, face},
      {"lefthand", Layout{{"lefthand_kpts"}, "lefthand_score"}, hand},
      {"righthand", Layout{{"righthand_kpts"}, "righthand_score"}, hand},
      {"wholebody",
       Layout{{"keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts"}, "wholebody_score"},
       whole},
  };
}

}  // namespace fancy::keypoints
