#include "fancy/pose/synthetic.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <c10/util/Exception.h>

namespace fancy::pose {

const std::vector<std::string>& coco_keypoint_names() {
  static const std::vector<std::string> names{
      "nose",        "left_eye",       "right_eye", "left_ear",   "right_ear",   "left_shoulder",
      "right_shoulder", "left_elbow",  "right_elbow", "left_wrist", "right_wrist", "left_hip",
      "right_hip",   "left_knee",      "right_knee", "left_ankle", "right_ankle"};
  return names;
}

const std::vector<std::array<int, 2>>& coco_skeleton() {
  static const std::vector<std::array<int, 2>> s{{16, 14}, {14, 12}, {17, 15}, {15, 13}, {12, 13}, {6, 12}, {7, 13},
                                                 {6, 7},   {6, 8},   {7, 9},   {8, 10},  {9, 11},  {2, 3},  {1, 2},
                                                 {1, 3},   {2, 4},   {3, 5},   {4, 6},   {5, 7}};
  return s;
}

namespace {

enum Joint { kNose, kLEye, kREye, kLEar, kREar, kLSho, kRSho, kLElb, kRElb, kLWri, kRWri, kLHip, kRHip, kLKne, kRKne, kLAnk, kRAnk };

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(g); }
  double normal(double m, double s) { return std::normal_distribution<double>(m, s)(g); }
  bool chance(double p) { return uniform(0, 1) < p; }
  int integer(int a, int b) { return std::uniform_int_distribution<int>(a, b)(g); }
  cv::Scalar colour() { return cv::Scalar(integer(0, 255), integer(0, 255), integer(0, 255)); }
};

using P = cv::Point2d;
P rotate(const P& v, double rad) { return {v.x * std::cos(rad) - v.y * std::sin(rad), v.x * std::sin(rad) + v.y * std::cos(rad)}; }
double deg(double d) { return d * M_PI / 180.0; }
// Drawing uses 4 fractional bits for sub-pixel positions (and radii).
int fx(double v) { return static_cast<int>(std::lround(v * 16)); }
cv::Point px(const P& p) { return cv::Point(fx(p.x), fx(p.y)); }

// Thick anti-aliased segment (coordinates with 4 fractional bits), drawn into the image
// and into the person mask.
void limb(cv::Mat& img, cv::Mat& mask, const P& a, const P& b, double width, const cv::Scalar& c) {
  const int w = std::max(1, static_cast<int>(std::lround(width)));
  cv::line(img, px(a), px(b), c, w, cv::LINE_AA, 4);
  cv::line(mask, px(a), px(b), cv::Scalar(255), w, cv::LINE_8, 4);
  for (const P& end : {a, b}) {  // round joints
    cv::circle(img, px(end), fx(width / 2), c, cv::FILLED, cv::LINE_AA, 4);
    cv::circle(mask, px(end), fx(width / 2), cv::Scalar(255), cv::FILLED, cv::LINE_8, 4);
  }
}

void background(cv::Mat& img, Rng& r, double clutter) {
  const int S = img.rows;
  const cv::Scalar a = r.colour(), b = r.colour();
  const double angle = r.uniform(0, 2 * M_PI);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const double t = 0.5 + 0.5 * std::sin(angle) * (x - S / 2.0) / S + 0.5 * std::cos(angle) * (y - S / 2.0) / S;
      auto& p = img.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) p[c] = cv::saturate_cast<uchar>(a[c] * (1 - t) + b[c] * t);
    }
  const int shapes = static_cast<int>(std::lround(clutter * r.integer(8, 24)));
  for (int i = 0; i < shapes; ++i) {
    const cv::Point c(r.integer(0, S - 1), r.integer(0, S - 1));
    const int size = r.integer(S / 20, S / 4);
    switch (r.integer(0, 3)) {
      case 0: cv::rectangle(img, c, c + cv::Point(r.integer(-size, size), r.integer(-size, size)), r.colour(), cv::FILLED); break;
      case 1: cv::circle(img, c, size / 2, r.colour(), cv::FILLED, cv::LINE_AA); break;
      case 2: cv::line(img, c, c + cv::Point(r.integer(-2 * size, 2 * size), r.integer(-2 * size, 2 * size)), r.colour(),
                       r.integer(1, 4), cv::LINE_AA); break;
      default:  // a limb-like distractor: thick rounded bar in a skin or clothing tone
        cv::line(img, c, c + cv::Point(r.integer(-size, size), r.integer(-size, size)), r.colour(),
                 std::max(2, S / r.integer(18, 30)), cv::LINE_AA);
    }
  }
}

// Multiplies the masked pixels by stripes or blotches: clothing texture.
void texture(cv::Mat& img, const cv::Mat& mask, Rng& r) {
  const int kind = r.integer(0, 2);
  if (kind == 0) return;  // plain
  const double period = r.uniform(3, 10), angle = r.uniform(0, M_PI), depth = r.uniform(0.15, 0.35);
  const double ca = std::cos(angle), sa = std::sin(angle), phase = r.uniform(0, 2 * M_PI);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      if (!mask.at<uchar>(y, x)) continue;
      const double u = (x * ca + y * sa) * 2 * M_PI / period + phase;
      const double f = 1 + depth * (kind == 1 ? (std::sin(u) > 0 ? 1 : -1) : std::sin(u) * std::sin(0.7 * u + y * 0.3));
      auto& p = img.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) p[c] = cv::saturate_cast<uchar>(p[c] * f);
    }
}

cv::Scalar skin(Rng& r) {
  static const cv::Scalar tones[] = {{189, 224, 255}, {135, 180, 234}, {96, 133, 198}, {60, 90, 141}, {40, 60, 95}};
  const cv::Scalar t = tones[r.integer(0, 4)];
  return t * r.uniform(0.85, 1.15);
}

}  // namespace

uint64_t sample_seed(uint64_t seed, uint64_t index) { return splitmix(splitmix(seed) ^ index); }

SyntheticPeople::SyntheticPeople(SyntheticOptions o) : options_(std::move(o)) {
  TORCH_CHECK(options_.image_size() >= 32, "SyntheticPeople: image_size (", options_.image_size(), ") must be at least 32");
  TORCH_CHECK(options_.min_height() > 0 && options_.min_height() <= options_.max_height(),
              "SyntheticPeople: need 0 < min_height (", options_.min_height(), ") <= max_height (",
              options_.max_height(), ")");
  TORCH_CHECK(options_.occlusion() >= 0 && options_.occlusion() <= 1, "SyntheticPeople: occlusion (",
              options_.occlusion(), ") must be a probability");
}

PersonSample SyntheticPeople::get(int64_t index) const {
  TORCH_CHECK(index >= 0, "SyntheticPeople.get: index (", index, ") must be >= 0");
  Rng r(sample_seed(options_.seed(), static_cast<uint64_t>(index)));
  const int S = static_cast<int>(options_.image_size());
  PersonSample s;
  s.image = cv::Mat(S, S, CV_8UC3);
  background(s.image, r, options_.clutter());

  // --- the pose, in image pixels (y down) ---
  const double u = r.uniform(options_.min_height(), options_.max_height()) * S;  // body height
  auto len = [&](double f) { return f * u * r.uniform(0.9, 1.1); };
  const double theta = deg(r.uniform(-options_.max_rotation(), options_.max_rotation()));
  const P up = rotate(P(0, -1), theta + deg(r.normal(0, 8)));  // torso direction (lean)
  const P right = P(-up.y, up.x);                                // image-right for an upright body
  // Facing: yaw 0 = towards the camera (the person's left on the image's right), 180 = away.
  const double f = r.uniform(0, 1);
  const double yaw = deg(f < 0.5 ? r.uniform(-35, 35) : f < 0.75 ? 180 + r.uniform(-35, 35)
                                                            : (r.chance(0.5) ? 1 : -1) * r.uniform(55, 88));
  const double cw = std::cos(yaw), sw = std::sin(yaw);
  const double width = (cw >= 0 ? 1 : -1) * std::max(std::abs(cw), 0.25);  // signed: left side's offset along `right`
  const bool away = cw < 0, profile = std::abs(sw) > 0.8;
  const P hip = P(S / 2.0, S / 2.0) + P(r.uniform(-0.18, 0.18) * S, r.uniform(-0.12, 0.22) * S) - up * (0.05 * u);
  const P neck = hip + up * len(0.30);
  std::array<P, kCocoJoints> k;
  k[kLSho] = neck + right * (len(0.11) * width);
  k[kRSho] = neck - right * (len(0.11) * width);
  k[kLHip] = hip + right * (len(0.085) * width);
  k[kRHip] = hip - right * (len(0.085) * width);
  const double r_head = len(0.065);
  const P head = neck + rotate(up, deg(r.normal(0, 12))) * len(0.12);
  const P hup = (head - neck) * (1.0 / cv::norm(head - neck)), hright(-hup.y, hup.x);
  k[kNose] = head + hright * (0.6 * r_head * sw * (away ? -1 : 1)) - hup * (0.15 * r_head);
  for (int side : {+1, -1}) {
    const double lat = side * cw;  // left (+1) / right (−1) offset, mirrored when facing away
    k[side > 0 ? kLEye : kREye] = head + hright * (r_head * (0.38 * lat + 0.45 * sw)) + hup * (0.2 * r_head);
    k[side > 0 ? kLEar : kREar] = head + hright * (r_head * (0.95 * lat - 0.2 * sw));
  }
  // Arms and legs: angle from "down the torso" swinging outward, then a bend at the elbow/knee.
  auto chain = [&](int root, int mid, int end, int side, double a_lo, double a_hi, double bend_hi, double l1, double l2) {
    const P outward = right * (side * (width >= 0 ? 1.0 : -1.0));
    const double a = deg(r.uniform(a_lo, a_hi));
    const P dir1 = (-up) * std::cos(a) + outward * std::sin(a);
    k[mid] = k[root] + dir1 * len(l1);
    const P dir2 = rotate(dir1, deg(r.uniform(0, bend_hi)) * (r.chance(0.5) ? 1 : -1));
    k[end] = k[mid] + dir2 * len(l2);
  };
  chain(kLSho, kLElb, kLWri, +1, -25, 165, 150, 0.16, 0.14);
  chain(kRSho, kRElb, kRWri, -1, -25, 165, 150, 0.16, 0.14);
  chain(kLHip, kLKne, kLAnk, +1, -15, 70, 120, 0.25, 0.24);
  chain(kRHip, kRKne, kRAnk, -1, -15, 70, 120, 0.25, 0.24);

  // --- drawing: far limbs, legs, torso, head, near limbs ---
  cv::Mat person = cv::Mat::zeros(S, S, CV_8UC1), clothes = cv::Mat::zeros(S, S, CV_8UC1);
  const cv::Scalar shirt = r.colour(), trousers = r.colour() * 0.8, sk = skin(r), hair = r.colour() * 0.3;
  const double arm_w = len(0.05), leg_w = len(0.075);
  const bool left_far = profile ? (sw > 0) == !away : false;  // in profile one side is behind the torso
  auto arm = [&](int sh, int el, int wr) {
    limb(s.image, clothes, k[sh], k[el], arm_w * 1.1, shirt);
    limb(s.image, person, k[el], k[wr], arm_w, sk);
    limb(s.image, person, k[sh], k[el], arm_w * 1.1, shirt);
  };
  auto leg = [&](int hp, int kn, int an) {
    limb(s.image, clothes, k[hp], k[kn], leg_w, trousers);
    limb(s.image, clothes, k[kn], k[an], leg_w * 0.85, trousers);
    limb(s.image, person, k[hp], k[kn], leg_w, trousers);
    limb(s.image, person, k[kn], k[an], leg_w * 0.85, trousers);
    limb(s.image, person, k[an], k[an] + rotate(-up, deg(90) * (r.chance(0.5) ? 1 : -1)) * len(0.05), leg_w * 0.6,
         hair);  // a shoe
  };
  if (profile) (left_far ? arm(kLSho, kLElb, kLWri) : arm(kRSho, kRElb, kRWri));
  leg(kLHip, kLKne, kLAnk);
  leg(kRHip, kRKne, kRAnk);
  {
    std::vector<cv::Point> torso{px(k[kLSho] + up * (0.02 * u)), px(k[kRSho] + up * (0.02 * u)), px(k[kRHip]),
                                 px(k[kLHip])};
    const double pad = std::abs(width) * 0.03 * u;  // a body, not a wire frame
    torso[0] = px(k[kLSho] + right * (pad * (width > 0 ? 1 : -1)));
    torso[1] = px(k[kRSho] - right * (pad * (width > 0 ? 1 : -1)));
    cv::fillConvexPoly(s.image, torso, shirt, cv::LINE_AA, 4);
    cv::fillConvexPoly(person, torso, cv::Scalar(255), cv::LINE_8, 4);
    cv::fillConvexPoly(clothes, torso, cv::Scalar(255), cv::LINE_8, 4);
    limb(s.image, person, neck, neck + (head - neck) * 0.5, len(0.045), sk);
  }
  cv::circle(s.image, px(head), fx(r_head), away ? hair : sk, cv::FILLED, cv::LINE_AA, 4);
  cv::circle(person, px(head), fx(r_head), cv::Scalar(255), cv::FILLED, cv::LINE_8, 4);
  if (!away) {  // hair on top, eyes as dots
    cv::ellipse(s.image, px(head + hup * (0.35 * r_head)), cv::Size(fx(r_head), fx(r_head * 0.6)),
                std::atan2(hright.y, hright.x) * 180 / M_PI, 180, 360, hair, cv::FILLED, cv::LINE_AA, 4);
    for (int e : {kLEye, kREye}) cv::circle(s.image, px(k[e]), fx(std::max(0.7, r_head / 6)), hair * 0.5,
                                            cv::FILLED, cv::LINE_AA, 4);
  }
  if (profile) (left_far ? arm(kRSho, kRElb, kRWri) : arm(kLSho, kLElb, kLWri));
  else {
    arm(kLSho, kLElb, kLWri);
    arm(kRSho, kRElb, kRWri);
  }
  cv::bitwise_and(clothes, person, clothes);
  texture(s.image, clothes, r);

  // Visibility from the pose: faces seen from behind, the far ear and eye in profile.
  std::array<int, kCocoJoints> v;
  v.fill(2);
  if (away) v[kNose] = v[kLEye] = v[kREye] = 1;
  if (profile) {
    const bool left_hidden = (sw > 0) != away;  // turning right hides the left side of the face
    v[left_hidden ? kLEar : kREar] = 1;
    v[left_hidden ? kLEye : kREye] = 1;
  }

  // An occluding object in front of the person.
  if (r.chance(options_.occlusion())) {
    cv::Mat occ = cv::Mat::zeros(S, S, CV_8UC1);
    const P c = k[r.integer(0, kCocoJoints - 1)] + P(r.normal(0, 0.05 * u), r.normal(0, 0.05 * u));
    const cv::Size half(static_cast<int>(r.uniform(0.08, 0.2) * u), static_cast<int>(r.uniform(0.08, 0.2) * u));
    const cv::Scalar colour = r.colour();
    if (r.chance(0.5)) {
      cv::rectangle(occ, cv::Point(c) - cv::Point(half), cv::Point(c) + cv::Point(half), cv::Scalar(255), cv::FILLED);
    } else {
      cv::ellipse(occ, cv::Point(c), half, r.uniform(0, 180), 0, 360, cv::Scalar(255), cv::FILLED);
    }
    s.image.setTo(colour, occ);
    texture(s.image, occ, r);
    person.setTo(0, occ);
    for (int j = 0; j < kCocoJoints; ++j) {
      const cv::Point q(static_cast<int>(std::floor(k[j].x)), static_cast<int>(std::floor(k[j].y)));
      if (q.inside(cv::Rect(0, 0, S, S)) && occ.at<uchar>(q)) v[j] = 1;
    }
  }

  // Noise and blur.
  if (options_.noise() > 0) {
    cv::Mat noise(S, S, CV_16SC3);
    cv::theRNG().state = r.g();
    cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(r.uniform(0, options_.noise())));
    cv::Mat img16;
    s.image.convertTo(img16, CV_16SC3);
    img16 += noise;
    img16.convertTo(s.image, CV_8UC3);
  }
  if (r.chance(0.3)) cv::GaussianBlur(s.image, s.image, cv::Size(3, 3), 0);

  for (int j = 0; j < kCocoJoints; ++j) {
    const bool inside = k[j].x >= 0 && k[j].y >= 0 && k[j].x < S && k[j].y < S;
    s.keypoints[j * 3] = inside ? static_cast<float>(k[j].x) : 0;
    s.keypoints[j * 3 + 1] = inside ? static_cast<float>(k[j].y) : 0;
    s.keypoints[j * 3 + 2] = inside ? static_cast<float>(v[j]) : 0;
    s.num_keypoints += inside;
  }
  const cv::Rect box = cv::boundingRect(person);
  s.box = {static_cast<float>(box.x), static_cast<float>(box.y), static_cast<float>(box.width),
           static_cast<float>(box.height)};
  s.area = static_cast<float>(cv::countNonZero(person));
  return s;
}

void SyntheticPeople::write_coco(const std::string& path, const std::string& image_dir, int64_t first,
                                 int64_t count) const {
  TORCH_CHECK(first >= 0 && count >= 0, "SyntheticPeople.write_coco: first (", first, ") and count (", count,
              ") must be >= 0");
  if (!image_dir.empty()) std::filesystem::create_directories(image_dir);
  nlohmann::json images = nlohmann::json::array(), annotations = nlohmann::json::array();
  for (int64_t i = first; i < first + count; ++i) {
    const auto s = get(i);
    char name[32];
    std::snprintf(name, sizeof(name), "%08lld.png", static_cast<long long>(i));
    if (!image_dir.empty()) {
      const auto file = (std::filesystem::path(image_dir) / name).string();
      TORCH_CHECK(cv::imwrite(file, s.image), "SyntheticPeople.write_coco: cannot write ", file);
    }
    images.push_back({{"id", i + 1}, {"file_name", name}, {"width", s.image.cols}, {"height", s.image.rows}});
    annotations.push_back({{"id", i + 1},
                           {"image_id", i + 1},
                           {"category_id", 1},
                           {"keypoints", std::vector<float>(s.keypoints.begin(), s.keypoints.end())},
                           {"num_keypoints", s.num_keypoints},
                           {"bbox", std::vector<float>(s.box.begin(), s.box.end())},
                           {"area", s.area},
                           {"iscrowd", 0}});
  }
  nlohmann::json skeleton = nlohmann::json::array();
  for (const auto& e : coco_skeleton()) skeleton.push_back({e[0], e[1]});
  const nlohmann::json gt = {{"images", images},
                             {"annotations", annotations},
                             {"categories",
                              {{{"id", 1},
                                {"name", "person"},
                                {"supercategory", "person"},
                                {"keypoints", coco_keypoint_names()},
                                {"skeleton", skeleton}}}}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    TORCH_CHECK(out, "SyntheticPeople.write_coco: cannot write ", tmp);
    out << gt.dump();
    TORCH_CHECK(out.good(), "SyntheticPeople.write_coco: error writing ", tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace fancy::pose
