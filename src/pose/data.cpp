#include "fancy/pose/data.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

namespace fancy::pose {

PersonCrop crop_person(const cv::Mat& image, const std::array<float, 4>& box, const std::vector<float>& keypoints,
                       const CropOptions& o, std::mt19937_64* rng,
                       const std::vector<std::pair<int64_t, int64_t>>& flip_pairs) {
  TORCH_CHECK(!image.empty() && image.type() == CV_8UC3, "crop_person: needs a non-empty 8-bit BGR image");
  TORCH_CHECK(box[2] > 0 && box[3] > 0, "crop_person: box (", box[0], ", ", box[1], ", ", box[2], ", ", box[3],
              ") must have a positive width and height");
  TORCH_CHECK(keypoints.size() % 3 == 0, "crop_person: keypoints must be J × 3 numbers, got ", keypoints.size());
  TORCH_CHECK(o.input_size() % 4 == 0, "crop_person: input_size (", o.input_size(), ") must be a multiple of 4");
  const int S = static_cast<int>(o.input_size());
  double side = o.margin() * std::max(box[2], box[3]), degrees = 0;
  bool flip = false;
  cv::Scalar gain(1, 1, 1);
  if (rng) {
    std::normal_distribution<double> normal(0, 1);
    std::uniform_real_distribution<double> uniform(0, 1);
    side *= std::pow(2.0, std::clamp(normal(*rng), -2.0, 2.0) * o.scale_sigma());
    const double rot = std::clamp(normal(*rng), -2.0, 2.0) * o.rotation_sigma();
    if (uniform(*rng) < o.rotation_prob()) degrees = rot;
    flip = uniform(*rng) < o.flip_prob();
    for (int c = 0; c < 3; ++c) gain[c] = 1 - o.colour() + 2 * o.colour() * uniform(*rng);
  }
  Affine m = crop_affine(box[0] + box[2] / 2.0, box[1] + box[3] / 2.0, side, degrees, S);
  if (flip) m = {-m[0], -m[1], S - m[2], m[3], m[4], m[5]};  // then mirror the crop: x → S − x
  // warpAffine samples pixel centres at integer coordinates; ours are at + 0.5.
  const cv::Mat cv_m = (cv::Mat_<double>(2, 3) << m[0], m[1], m[2] + 0.5 * (m[0] + m[1]) - 0.5, m[3], m[4],
                        m[5] + 0.5 * (m[3] + m[4]) - 0.5);
  cv::Mat crop;
  cv::warpAffine(image, crop, cv_m, cv::Size(S, S), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
  cv::cvtColor(crop, crop, cv::COLOR_BGR2RGB);
  auto img = torch::from_blob(crop.data, {S, S, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat).div_(255);
  if (rng) img = (img * torch::tensor({gain[2], gain[1], gain[0]}, torch::kFloat).view({3, 1, 1})).clamp_(0, 1);

  PersonCrop out;
  out.image = img.contiguous();
  out.image_to_heatmap = scale_affine(m, 0.25);
  const int64_t J = static_cast<int64_t>(keypoints.size() / 3);
  auto k = torch::from_blob(const_cast<float*>(keypoints.data()), {J, 3}, torch::kFloat).to(torch::kDouble);
  k = transform_points(k, out.image_to_heatmap);
  // Joints that left the crop are unlabelled for training.
  const double H = S / 4.0;
  const auto x = k.select(1, 0), y = k.select(1, 1);
  const auto outside = (x < 0) | (y < 0) | (x >= H) | (y >= H);
  k.select(1, 2).masked_fill_(outside, 0);
  if (flip) k = k.index_select(0, [&] {
    std::vector<int64_t> order(static_cast<size_t>(J));
    for (int64_t j = 0; j < J; ++j) order[j] = j;
    for (const auto& [a, b] : flip_pairs)
      if (a < J && b < J) std::swap(order[a], order[b]);
    return torch::tensor(order, torch::kLong);
  }());
  out.keypoints = k.to(torch::kFloat);
  return out;
}

std::pair<torch::Tensor, HeatmapTargets> make_batch(const std::vector<PersonCrop>& crops, const CropOptions& o) {
  TORCH_CHECK(!crops.empty(), "make_batch: no crops");
  std::vector<torch::Tensor> images, keypoints;
  for (const auto& c : crops) {
    images.push_back(c.image);
    keypoints.push_back(c.keypoints);
  }
  const int64_t H = o.input_size() / 4;
  return {torch::stack(images), render_heatmaps(torch::stack(keypoints), H, H, o.sigma())};
}

torch::Tensor predict_heatmaps(StackedHourglass& model, const torch::Tensor& images, bool flip_test,
                               const std::vector<std::pair<int64_t, int64_t>>& flip_pairs) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  auto h = model->forward(images).back();
  if (flip_test) h = 0.5 * (h + flip_heatmaps(model->forward(images.flip({-1})).back(), flip_pairs));
  model->train(was_training);
  return h;
}

namespace {
const nlohmann::json& field(const nlohmann::json& j, const char* name, const std::string& where) {
  TORCH_CHECK(j.is_object() && j.contains(name), where, ": missing field '", name, "'");
  return j.at(name);
}
}  // namespace

CocoPeople::CocoPeople(const std::string& path, const std::string& image_dir) {
  std::ifstream in(path);
  TORCH_CHECK(in, path, ": cannot read the annotations");
  nlohmann::json gt;
  try {
    in >> gt;
  } catch (const nlohmann::json::exception& e) {
    TORCH_CHECK(false, path, ": malformed JSON: ", e.what());
  }
  const auto& cats = field(gt, "categories", path);
  TORCH_CHECK(cats.is_array() && !cats.empty(), path, ": 'categories' must be a non-empty array");
  const auto& names = field(cats[0], "keypoints", path + ": categories[0]");
  joints_ = static_cast<int64_t>(names.size());
  TORCH_CHECK(joints_ >= 1, path, ": categories[0] has no keypoint names");
  std::map<int64_t, std::string> files;
  const auto& images = field(gt, "images", path);
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string where = path + ": images[" + std::to_string(i) + "]";
    files[field(images[i], "id", where).get<int64_t>()] =
        (std::filesystem::path(image_dir) / field(images[i], "file_name", where).get<std::string>()).string();
  }
  const auto& anns = field(gt, "annotations", path);
  for (size_t i = 0; i < anns.size(); ++i) {
    const auto& a = anns[i];
    const std::string where = path + ": annotations[" + std::to_string(i) + "]" +
                              (a.contains("id") ? " (id " + a["id"].dump() + ")" : "");
    CocoPerson p;
    p.annotation_id = a.value("id", int64_t{0});
    p.image_id = field(a, "image_id", where).get<int64_t>();
    if (a.value("iscrowd", 0) != 0) continue;
    const auto& kps = field(a, "keypoints", where);
    TORCH_CHECK(kps.is_array() && static_cast<int64_t>(kps.size()) == 3 * joints_, where, ": keypoints has ",
                kps.size(), " numbers, expected 3 × ", joints_, " joints = ", 3 * joints_);
    p.keypoints = kps.get<std::vector<float>>();
    int labelled = 0;
    for (int64_t j = 0; j < joints_; ++j) labelled += p.keypoints[j * 3 + 2] > 0;
    if (labelled == 0) continue;  // nothing to learn from
    const auto box = field(a, "bbox", where).get<std::vector<float>>();
    TORCH_CHECK(box.size() == 4 && box[2] > 0 && box[3] > 0, where, ": bbox must be [x, y, w, h] with w, h > 0");
    std::copy(box.begin(), box.end(), p.box.begin());
    p.area = a.value("area", box[2] * box[3]);
    const auto f = files.find(p.image_id);
    TORCH_CHECK(f != files.end(), where, ": image_id ", p.image_id, " is not in 'images'");
    p.file = f->second;
    people_.push_back(std::move(p));
  }
}

cv::Mat CocoPeople::image(size_t i) const {
  TORCH_CHECK(i < people_.size(), "CocoPeople.image: index ", i, " is out of range (", people_.size(), " people)");
  const auto& file = people_[i].file;
  TORCH_CHECK(std::filesystem::exists(file), file, ": image not found (annotation ", people_[i].annotation_id, ")");
  cv::Mat img = cv::imread(file, cv::IMREAD_COLOR);
  TORCH_CHECK(!img.empty(), file, ": cannot decode the image (annotation ", people_[i].annotation_id, ")");
  return img;
}

}  // namespace fancy::pose
