// libFuzzer target for the keypoint loaders and the evaluator behind them: any input
// must give either a result or a fancy::keypoints::Error, never a crash, a sanitizer
// report or a hang. Built with clang (-fsanitize=fuzzer,address,undefined) when
// clang++ is present; ctest runs it for a bounded time (see docs/keypoints.md for a
// longer run).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fancy/keypoints/eval.h"

namespace kp = fancy::keypoints;

namespace {

const char* kGroundTruth =
    R"({"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1, "name": "p", "keypoints": ["a", "b"]}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "num_keypoints": 2, "area": 900,
                         "bbox": [0, 0, 30, 30], "keypoints": [5, 5, 2, 20, 20, 1]},
                        {"id": 2, "image_id": 2, "category_id": 1, "num_keypoints": 0, "area": 400, "iscrowd": 1,
                         "bbox": [10, 10, 20, 20], "keypoints": [0, 0, 0, 0, 0, 0]}]})";

const char* kResults =
    R"([{"image_id": 1, "category_id": 1, "score": 0.9, "keypoints": [5, 6, 1, 19, 20, 1]},
        {"image_id": 2, "category_id": 1, "score": 0.4, "keypoints": [15, 15, 1, 40, 40, 1]}])";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kp::EvalOptions options;
  options.sigmas = {0.05, 0.07};
  options.threads = 1;
  static const kp::GroundTruth fixed_gt = kp::parse_ground_truth(kGroundTruth, "gt");
  static const kp::Detections fixed_dt = kp::parse_detections(kResults, "dt");
  try {  // the input as results, against a fixed ground truth
    const auto dt = kp::parse_detections(text, "fuzz");
    kp::evaluate(fixed_gt, dt, options);
  } catch (const kp::Error&) {
  }
  try {  // the input as ground truth, against fixed results
    const auto gt = kp::parse_ground_truth(text, "fuzz");
    kp::evaluate(gt, fixed_dt, options);
    kp::EvalOptions crowd = options;
    crowd.rules = kp::Rules::xtcocotools;
    crowd.area_from_box = true;
    crowd.crowd_split = true;
    kp::evaluate(gt, fixed_dt, crowd);
  } catch (const kp::Error&) {
  }
  return 0;
}
