// fancy::keypoints against pycocotools' published numbers (../shared/testdata) and
// hand-checked edge cases. Torch-free: this binary links only the keypoint library.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "fancy/keypoints/eval.h"
#include "fancy/keypoints/pose_metrics.h"

namespace kp = fancy::keypoints;
namespace fs = std::filesystem;

namespace {

const fs::path kTestdata = fs::path(FANCY_TESTDATA_DIR) / "keypoints";

#define REQUIRE_TESTDATA()                                                                                   \
  if (!fs::exists(kTestdata / "expected.json"))                                                              \
  GTEST_SKIP() << "keypoint test pairs not found at " << kTestdata                                           \
               << " (they live in ../shared/testdata next to the repository; CI has them)"

// Reads expected.json's array for a pair with a tiny parser of our own evaluator's
// loader: the file is a JSON object, so pull the numbers after "<name>": [ by hand.
std::vector<double> expected_stats(const std::string& name) {
  std::ifstream f(kTestdata / "expected.json");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  size_t at = text.find("\"" + name + "\": [");
  EXPECT_NE(at, std::string::npos) << name;
  at = text.find('[', at) + 1;
  const size_t end = text.find(']', at);
  std::vector<double> v;
  std::stringstream nums(text.substr(at, end - at));
  std::string item;
  while (std::getline(nums, item, ',')) v.push_back(std::stod(item));
  return v;
}

kp::EvalResult eval_pair(const std::string& folder, kp::EvalOptions opt = {}) {
  return kp::evaluate_files((kTestdata / folder / "gt.json").string(), (kTestdata / folder / "dt.json").string(), opt);
}

// ---- a tiny COCO builder for hand-checked cases --------------------------------

struct Person {
  int64_t id, image;
  double x, y, w, h;  // box; keypoints are laid out inside it
  bool crowd = false;
  bool labelled = true;
  double area = -1;  // default: w*h
  int ignore = -1;
  int64_t category = 1;
};

std::string pose(double x, double y, double w, double h, bool labelled) {
  std::string s = "[";
  for (int j = 0; j < 17; ++j) {
    const double px = x + w * (0.1 + 0.05 * j), py = y + h * (0.05 + 0.055 * j);
    s += (j ? "," : "") + std::to_string(labelled ? px : 0.0) + "," + std::to_string(labelled ? py : 0.0) + "," +
         (labelled ? "2" : "0");
  }
  return s + "]";
}

std::string ground_truth(const std::vector<int64_t>& images, const std::vector<Person>& people,
                         bool second_category = false) {
  std::string s = "{\"images\": [";
  for (size_t i = 0; i < images.size(); ++i) s += (i ? "," : "") + std::string("{\"id\":") + std::to_string(images[i]) + "}";
  s += "], \"categories\": [{\"id\": 1, \"name\": \"person\"}";
  if (second_category) s += ", {\"id\": 2, \"name\": \"robot\"}";
  s += "], \"annotations\": [";
  for (size_t i = 0; i < people.size(); ++i) {
    const auto& p = people[i];
    s += (i ? "," : "") + std::string("{\"id\":") + std::to_string(p.id) + ",\"image_id\":" + std::to_string(p.image) +
         ",\"category_id\":" + std::to_string(p.category) + ",\"iscrowd\":" + (p.crowd ? "1" : "0") +
         ",\"num_keypoints\":" + (p.labelled ? "17" : "0") + ",\"area\":" +
         std::to_string(p.area >= 0 ? p.area : p.w * p.h) + ",\"bbox\":[" + std::to_string(p.x) + "," +
         std::to_string(p.y) + "," + std::to_string(p.w) + "," + std::to_string(p.h) + "],\"keypoints\":" +
         pose(p.x, p.y, p.w, p.h, p.labelled) + (p.ignore >= 0 ? ",\"ignore\":" + std::to_string(p.ignore) : "") +
         "}";
  }
  return s + "]}";
}

struct Det {
  int64_t image;
  double x, y, w, h, score;
  int64_t category = 1;
};

std::string results(const std::vector<Det>& dets) {
  std::string s = "[";
  for (size_t i = 0; i < dets.size(); ++i) {
    const auto& d = dets[i];
    s += (i ? "," : "") + std::string("{\"image_id\":") + std::to_string(d.image) +
         ",\"category_id\":" + std::to_string(d.category) + ",\"score\":" + std::to_string(d.score) +
         ",\"keypoints\":" + pose(d.x, d.y, d.w, d.h, true) + "}";
  }
  return s + "]";
}

kp::EvalResult run(const std::string& gt, const std::string& dt, kp::EvalOptions opt = {}) {
  return kp::evaluate(kp::parse_ground_truth(gt, "gt.json"), kp::parse_detections(dt, "dt.json"), opt);
}

// Expects an Error whose message contains every fragment.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const kp::Error& e) {
    for (const auto& frag : fragments) EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
  }
}

const double kHalfAP = 510.0 / 1010.0;  // precision 1 up to recall 0.5, then 0: 51 of 101 points, 10 thresholds

}  // namespace

// ---- the reference pairs --------------------------------------------------------

TEST(KeypointsReference, FasterCocoEvalPairEqualsPycocotools) {
  REQUIRE_TESTDATA();
  const auto r = eval_pair("fce_keypoints");
  const auto want = expected_stats("fce_keypoints");
  ASSERT_EQ(want.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r.stats[i], want[i]) << "stat " << i;
}

TEST(KeypointsReference, XtcocoPairEqualsPycocotools) {
  REQUIRE_TESTDATA();
  const auto r = eval_pair("xtcoco_example");
  const auto want = expected_stats("xtcoco_example");
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r.stats[i], want[i]) << "stat " << i;
}

TEST(KeypointsReference, SameNumbersForAnyThreadCount) {
  REQUIRE_TESTDATA();
  kp::EvalOptions one, two;
  one.threads = 1;
  two.threads = 2;
  const auto a = eval_pair("fce_keypoints", one), b = eval_pair("fce_keypoints", two);
  EXPECT_EQ(a.stats, b.stats);
  EXPECT_EQ(a.precision, b.precision);
}

TEST(KeypointsReference, CrowdPoseEqualsPublishedNumbers) {
  REQUIRE_TESTDATA();
  kp::EvalOptions opt;
  opt.sigmas = kp::crowdpose_sigmas();
  opt.rules = kp::Rules::xtcocotools;
  opt.area_from_box = true;
  opt.crowd_split = true;
  const auto r = eval_pair("crowdpose_example", opt);
  EXPECT_EQ(r.stats[0], 0.7877215935879303);
  EXPECT_EQ(r.stats[1], 0.9881188118811886);
  EXPECT_EQ(r.stats[2], 0.7314356435643564);
  EXPECT_EQ(r.stats[5], 0.8222222222222223);
  EXPECT_EQ(r.stats[6], 1.0);
  EXPECT_EQ(r.stats[7], 0.7777777777777778);
  ASSERT_TRUE(r.has_crowd_split);
  // Published rounded to 4 digits, as xtcocotools prints them.
  EXPECT_EQ(std::round(r.crowd_ap[0] * 1e4) / 1e4, 1.0);
  EXPECT_EQ(std::round(r.crowd_ap[1] * 1e4) / 1e4, 0.9802);
  EXPECT_EQ(std::round(r.crowd_ap[2] * 1e4) / 1e4, 0.4116);
}

TEST(KeypointsReference, CocoSigmasAreLiteralsOverTenInDouble) {
  const auto s = kp::coco_sigmas();
  ASSERT_EQ(s.size(), 17u);
  EXPECT_EQ(s[0], 0.026000000000000002);  // .26 / 10, not the literal 0.026
  EXPECT_EQ(s[11], 0.10700000000000001);
  EXPECT_EQ(kp::crowdpose_sigmas().size(), 14u);
}

TEST(KeypointsReference, WholeBodyRunsAndIsConsistentWithItsParts) {
  REQUIRE_TESTDATA();
  double lo = 2, hi = -2, whole = -5;
  for (const auto& part : kp::wholebody_parts()) {
    kp::EvalOptions opt;
    opt.sigmas = part.sigmas;
    opt.rules = kp::Rules::xtcocotools;
    const auto r = kp::evaluate_files((kTestdata / "wholebody_example/gt.json").string(),
                                      (kTestdata / "wholebody_example/dt.json").string(), opt, part.layout);
    EXPECT_GT(r.stats[0], 0.0) << part.name;
    EXPECT_LE(r.stats[0], 1.0) << part.name;
    if (part.name == "wholebody") {
      whole = r.stats[0];
      EXPECT_EQ(part.sigmas.size(), 133u);
    } else {
      lo = std::min(lo, r.stats[0]);
      hi = std::max(hi, r.stats[0]);
    }
  }
  // Whole-body OKS averages the parts' keypoint terms, so its AP lies between theirs.
  EXPECT_GE(whole, lo);
  EXPECT_LE(whole, hi);
}

// ---- hand-checked edge cases --------------------------------------------------
// (A lone true positive has precision 1/(1 + eps) in pycocotools, so "1" is checked
// to 1e-12; the exact last bits are the reference pairs' business.)--

TEST(KeypointsEdge, PerfectResultsGiveOne) {
  const auto gt = ground_truth({1, 2}, {{1, 1, 10, 10, 100, 200}, {2, 2, 50, 60, 80, 120}});
  const auto r = run(gt, results({{1, 10, 10, 100, 200, 0.9}, {2, 50, 60, 80, 120, 0.8}}));
  EXPECT_NEAR(r.stats[0], 1.0, 1e-12);
  EXPECT_NEAR(r.stats[5], 1.0, 1e-12);
}

TEST(KeypointsEdge, GroundTruthWithoutLabelledKeypointsUsesTheBoxRule) {
  // Person 2 has no labelled keypoint: it is ignored, and OKS against it is measured
  // from the box grown to [x-w, x+2w] x [y-h, y+2h]. A detection inside that box has
  // OKS 1 with it, so it is matched to an ignored GT and ignored, not a false positive.
  const auto gt = ground_truth({1}, {{1, 1, 0, 0, 100, 200}, {2, 1, 400, 0, 100, 200, false, false}});
  const auto inside = run(gt, results({{1, 0, 0, 100, 200, 0.8}, {1, 420, 20, 50, 50, 0.95}}));
  EXPECT_NEAR(inside.stats[0], 1.0, 1e-12);
  // Far outside the grown box: OKS ~0, so the higher-scored detection is a false positive.
  const auto outside = run(gt, results({{1, 0, 0, 100, 200, 0.8}, {1, 2000, 2000, 50, 50, 0.95}}));
  EXPECT_NEAR(outside.stats[0], 0.5, 1e-12);  // precision 1/2 at every recall level
}

TEST(KeypointsEdge, CrowdGroundTruthAbsorbsDetectionsWithoutPenalty) {
  Person crowd{2, 1, 300, 0, 150, 300, true};
  const auto gt = ground_truth({1}, {{1, 1, 0, 0, 100, 200}, crowd});
  const auto r = run(gt, results({{1, 300, 0, 150, 300, 0.9}, {1, 300, 0, 150, 300, 0.85}, {1, 0, 0, 100, 200, 0.8}}));
  EXPECT_NEAR(r.stats[0], 1.0, 1e-12);  // both crowd matches are ignored
  EXPECT_NEAR(r.stats[5], 1.0, 1e-12);
}

TEST(KeypointsEdge, AreasExactlyAtTheRangeEdgesBelongToBothRanges) {
  Person medium_edge{1, 1, 0, 0, 20, 60};
  medium_edge.area = 32.0 * 32.0;
  auto r = run(ground_truth({1}, {medium_edge}), results({{1, 0, 0, 20, 60, 0.9}}));
  EXPECT_NEAR(r.stats[3], 1.0, 1e-12);   // APm: 32^2 is medium
  EXPECT_EQ(r.stats[4], -1.0);  // APl: no large GT
  Person large_edge{1, 1, 0, 0, 60, 200};
  large_edge.area = 96.0 * 96.0;
  r = run(ground_truth({1}, {large_edge}), results({{1, 0, 0, 60, 200, 0.9}}));
  EXPECT_NEAR(r.stats[3], 1.0, 1e-12);  // 96^2 is medium ...
  EXPECT_NEAR(r.stats[4], 1.0, 1e-12);  // ... and large
}

TEST(KeypointsEdge, OnlyTheTwentyBestDetectionsPerImageCount) {
  std::vector<Det> dets;
  for (int i = 0; i < 24; ++i) dets.push_back({1, 1000.0 + 50 * i, 1000, 50, 50, 0.9 - 0.01 * i});
  dets.push_back({1, 0, 0, 100, 200, 0.5});  // the true pose ranks 25th
  const auto gt = ground_truth({1}, {{1, 1, 0, 0, 100, 200}});
  EXPECT_EQ(run(gt, results(dets)).stats[0], 0.0);
  kp::EvalOptions opt;
  opt.max_dets = {30};
  // 24 false positives before the true positive: precision 1/25 at recall 1.
  EXPECT_NEAR(run(gt, results(dets), opt).stats[0], 1.0 / 25.0, 1e-15);
}

TEST(KeypointsEdge, EqualScoresAcrossImagesKeepImageIdOrder) {
  // Image 1's detection is right, image 2's is wrong; equal scores keep the order of
  // sorted image ids, so the true positive comes first.
  auto gt = ground_truth({1, 2}, {{1, 1, 0, 0, 100, 200}, {2, 2, 0, 0, 100, 200}});
  auto r = run(gt, results({{2, 900, 900, 50, 50, 0.7}, {1, 0, 0, 100, 200, 0.7}}));
  EXPECT_NEAR(r.stats[0], kHalfAP, 1e-12);
  // The same with the ids swapped: the false positive comes first.
  gt = ground_truth({1, 2}, {{1, 2, 0, 0, 100, 200}, {2, 1, 0, 0, 100, 200}});
  r = run(gt, results({{1, 900, 900, 50, 50, 0.7}, {2, 0, 0, 100, 200, 0.7}}));
  EXPECT_NEAR(r.stats[0], 255.0 / 1010.0, 1e-12);
}

TEST(KeypointsEdge, ImagesWithOnlyGroundTruthOrOnlyDetections) {
  const auto gt = ground_truth({1, 2, 3}, {{1, 1, 0, 0, 100, 200}, {2, 2, 0, 0, 100, 200}});
  const auto r = run(gt, results({{1, 0, 0, 100, 200, 0.9}, {3, 0, 0, 100, 200, 0.5}}));
  EXPECT_NEAR(r.stats[0], kHalfAP, 1e-12);  // recall 1/2 at precision 1, then a false positive
  EXPECT_NEAR(r.stats[5], 0.5, 1e-12);
}

TEST(KeypointsEdge, EmptyResultsScoreZero) {
  const auto r = run(ground_truth({1}, {{1, 1, 0, 0, 100, 200}}), "[]");
  EXPECT_EQ(r.stats[0], 0.0);
  EXPECT_EQ(r.stats[5], 0.0);
}

TEST(KeypointsEdge, CategoryWithoutGroundTruthIsLeftOut) {
  const auto gt = ground_truth({1}, {{1, 1, 0, 0, 100, 200}}, /*second_category=*/true);
  auto dets = std::vector<Det>{{1, 0, 0, 100, 200, 0.9}, {1, 300, 300, 50, 50, 0.95, 2}};
  const auto r = run(gt, results(dets));
  EXPECT_NEAR(r.stats[0], 1.0, 1e-12);  // category 2's -1 entries are not averaged in
  ASSERT_EQ(r.per_category.size(), 2u);
  EXPECT_EQ(r.per_category[1].id, 2);
  for (double v : r.per_category[1].stats) EXPECT_EQ(v, -1.0);
  // Its precision entries stay -1.
  EXPECT_EQ(r.precision_at(0, 0, 1, 0, 0), -1.0);
}

TEST(KeypointsEdge, GroundTruthIdZeroQuirkCanBeSwitchedOff) {
  const auto gt = ground_truth({1}, {{0, 1, 0, 0, 100, 200}});
  const auto dt = results({{1, 0, 0, 100, 200, 0.9}});
  EXPECT_EQ(run(gt, dt).stats[0], 0.0);  // pycocotools: id 0 reads as "unmatched"
  kp::EvalOptions opt;
  opt.gt_id_zero_never_matched = false;
  EXPECT_NEAR(run(gt, dt, opt).stats[0], 1.0, 1e-12);
}

TEST(KeypointsEdge, IgnoreFieldQuirkCanBeSwitchedOff) {
  Person p{1, 1, 0, 0, 100, 200};
  p.ignore = 1;
  const auto gt = ground_truth({1}, {p});
  const auto dt = results({{1, 0, 0, 100, 200, 0.9}});
  EXPECT_NEAR(run(gt, dt).stats[0], 1.0, 1e-12);  // pycocotools overwrites ignore with iscrowd
  kp::EvalOptions opt;
  opt.ignore_overwritten_by_iscrowd = false;
  EXPECT_EQ(run(gt, dt, opt).stats[0], -1.0);  // the only GT is ignored: nothing to score
}

TEST(KeypointsEdge, DetectionAreaComesFromTheBoxWhenTheFirstResultHasOne) {
  // A small detection (box 10x10) unmatched: ignored in the large range only if its
  // area is outside it; with keypoint extent area it would be large.
  Person big{1, 1, 0, 0, 200, 300};
  const auto gt = ground_truth({1}, {big});
  const std::string dt = "[{\"image_id\":1,\"category_id\":1,\"score\":0.9,\"bbox\":[900,900,10,10],\"keypoints\":" +
                         pose(900, 900, 200, 300, true) + "},{\"image_id\":1,\"category_id\":1,\"score\":0.8,"
                         "\"bbox\":[0,0,200,300],\"keypoints\":" + pose(0, 0, 200, 300, true) + "}]";
  const auto r = run(gt, dt);
  EXPECT_NEAR(r.stats[4], 1.0, 1e-12);      // APl: the unmatched 10x10 detection is outside "large": ignored
  EXPECT_NEAR(r.stats[0], 0.5, 1e-12);  // AP over all areas: it is a false positive ranked first
}

// ---- bad input ------------------------------------------------------------------

TEST(KeypointsErrors, MalformedJsonNamesTheFileAndLine) {
  expect_error([] { kp::parse_detections("[{\"image_id\": 1,,}]", "dt.json"); }, {"dt.json", "malformed JSON", "line 1"});
  expect_error([] { kp::parse_ground_truth("{\"images\": [", "gt.json"); }, {"gt.json", "malformed JSON"});
  expect_error([] { kp::load_ground_truth("/nonexistent/gt.json"); }, {"/nonexistent/gt.json", "cannot read"});
}

TEST(KeypointsErrors, NaNCoordinatesAreRefused) {
  expect_error([] { kp::parse_detections("[{\"image_id\":1,\"category_id\":1,\"score\":1,\"keypoints\":[NaN,1,2]}]", "dt.json"); },
               {"dt.json", "NaN", "line 1"});
}

TEST(KeypointsErrors, MissingFieldsAreNamed) {
  expect_error([] { kp::parse_detections("[{\"image_id\":1,\"keypoints\":[1,2,3],\"score\":1}]", "dt.json"); },
               {"dt.json", "results[0]", "category_id", "missing"});
  expect_error([] { kp::parse_detections("[{\"image_id\":1,\"category_id\":1,\"keypoints\":[1,2,3]}]", "dt.json"); },
               {"results[0]", "score", "missing"});
  expect_error([] { kp::parse_ground_truth("{\"images\":[],\"categories\":[]}", "gt.json"); }, {"gt.json", "annotations"});
  expect_error(
      [] {
        kp::parse_ground_truth("{\"images\":[{\"id\":1}],\"categories\":[{\"id\":1}],\"annotations\":[{\"id\":7,"
                               "\"image_id\":1,\"category_id\":1,\"keypoints\":[1,2,2]}]}",
                               "gt.json");
      },
      {"gt.json", "annotations[0] (id 7)", "bbox", "missing"});
}

TEST(KeypointsErrors, NonNumericValuesAreNamed) {
  expect_error([] { kp::parse_detections("[{\"image_id\":1,\"category_id\":1,\"score\":\"high\",\"keypoints\":[1,2,3]}]", "dt.json"); },
               {"results[0]", "score", "must be a number", "a string"});
  expect_error([] { kp::parse_detections("[{\"image_id\":1,\"category_id\":1,\"score\":1,\"keypoints\":[1,\"2\",3]}]", "dt.json"); },
               {"results[0]", "keypoints[1]", "must be a number"});
  expect_error([] { kp::parse_detections("[{\"image_id\":1.5,\"category_id\":1,\"score\":1,\"keypoints\":[1,2,3]}]", "dt.json"); },
               {"results[0]", "image_id", "integer"});
}

TEST(KeypointsErrors, KeypointsOfTheWrongLength) {
  const auto gt = ground_truth({1}, {{1, 1, 0, 0, 100, 200}});
  expect_error([&] { run(gt, "[{\"image_id\":1,\"category_id\":1,\"score\":1,\"keypoints\":[1,2,3,4]}]"); },
               {"results[0]", "keypoints", "multiple of 3"});
  expect_error([&] { run(gt, "[{\"image_id\":1,\"category_id\":1,\"score\":1,\"keypoints\":[1,2,3]}]"); },
               {"dt.json", "1 keypoints", "expected 17"});
  // A later record with another count than the first.
  const auto p = pose(0, 0, 10, 10, true);
  expect_error([&] { run(gt, "[{\"image_id\":1,\"category_id\":1,\"score\":1,\"keypoints\":" + p +
                               "},{\"image_id\":1,\"category_id\":1,\"score\":1,\"keypoints\":[1,2,3]}]"); },
               {"results[1]", "1 keypoints", "results[0] holds 17"});
}

TEST(KeypointsErrors, ResultsForUnknownImagesOrCategories) {
  const auto gt = ground_truth({1}, {{1, 1, 0, 0, 100, 200}});
  expect_error([&] { run(gt, results({{5, 0, 0, 100, 200, 0.9}})); }, {"dt.json", "results[0]", "image_id 5", "gt.json"});
  expect_error([&] { run(gt, results({{1, 0, 0, 100, 200, 0.9, 3}})); }, {"results[0]", "category_id 3"});
}

TEST(KeypointsErrors, SigmasOfTheWrongLength) {
  const std::string gt =
      "{\"images\":[{\"id\":1}],\"categories\":[{\"id\":1,\"name\":\"person\",\"keypoints\":[\"a\",\"b\"]}],"
      "\"annotations\":[{\"id\":1,\"image_id\":1,\"category_id\":1,\"num_keypoints\":2,\"area\":100,\"bbox\":[0,0,10,10],"
      "\"keypoints\":[1,1,2,2,2,2]}]}";
  kp::EvalOptions opt;
  opt.sigmas = {0.1, 0.1, 0.1};
  expect_error([&] { run(gt, "[]", opt); }, {"sigmas", "3 values", "names 2 keypoints"});
  opt.sigmas = {0.1, -1};
  expect_error([&] { run(gt, "[]", opt); }, {"sigmas", "positive"});
}

TEST(KeypointsErrors, DuplicateIdsAndDanglingReferences) {
  expect_error([] { kp::parse_ground_truth("{\"images\":[{\"id\":1},{\"id\":1}],\"categories\":[],\"annotations\":[]}", "gt.json"); },
               {"gt.json", "images[1]", "used by another image"});
  expect_error(
      [] {
        kp::parse_ground_truth("{\"images\":[{\"id\":1}],\"categories\":[{\"id\":1}],\"annotations\":[{\"id\":1,"
                               "\"image_id\":9,\"category_id\":1,\"bbox\":[0,0,1,1],\"keypoints\":[]}]}",
                               "gt.json");
      },
      {"annotations[0] (id 1)", "image_id", "9"});
}

// ---- OKS-NMS and PCK ------------------------------------------------------------

TEST(KeypointsPoseMetrics, OksNmsDropsNearDuplicatesKeepsDistinctPoses) {
  const auto s = kp::coco_sigmas();
  std::vector<double> kps;
  auto add = [&](double dx) {
    for (int j = 0; j < 17; ++j) kps.insert(kps.end(), {10.0 * j + dx, 5.0 * j, 2.0});
  };
  add(0);     // pose 0
  add(0.5);   // pose 1: a near duplicate of pose 0
  add(500);   // pose 2: elsewhere
  const auto keep = kp::oks_nms(kps, {0.8, 0.9, 0.7}, {10000, 10000, 10000}, s, 0.9);
  ASSERT_EQ(keep.size(), 2u);
  EXPECT_EQ(keep[0], 1);  // highest score first
  EXPECT_EQ(keep[1], 2);
  // OKS of identical poses is 1.
  EXPECT_DOUBLE_EQ(kp::oks_pair(kps.data(), kps.data(), 100, 100, s), 1.0);
  EXPECT_THROW(kp::oks_nms(kps, {1, 2}, {1, 1}, s, 0.9), kp::Error);
}

TEST(KeypointsPoseMetrics, PckhUsesSixTenthsOfTheHeadDiagonal) {
  // Head box 30x40: diagonal 50, head size 30. Keypoint errors 10, 20 and 40 px.
  const auto head = kp::mpii_head_sizes({0, 0, 30, 40});
  ASSERT_EQ(head.size(), 1u);
  EXPECT_DOUBLE_EQ(head[0], 30.0);
  const std::vector<double> gt{0, 0, 0, 0, 0, 0, 0, 0};
  const std::vector<double> pred{10, 0, 0, 20, 40, 0, 0, 0};
  const auto r = kp::pck(pred, gt, {1, 1, 1, 0}, head, 4, 0.5);  // threshold 15 px
  EXPECT_EQ(r.counted, 3);
  EXPECT_DOUBLE_EQ(r.mean, 1.0 / 3.0);
  EXPECT_EQ(r.per_keypoint[0], 1.0);
  EXPECT_EQ(r.per_keypoint[1], 0.0);
  EXPECT_EQ(r.per_keypoint[3], -1.0);  // never visible
  EXPECT_THROW(kp::pck(pred, gt, {1, 1, 1, 0}, {0.0}, 4, 0.5), kp::Error);
}
