// `fancy pose`: stacked hourglass pose estimation on synthetic people (or a COCO keypoint
// dataset): synth (export images + COCO ground truth), train, eval (OKS AP through the
// keypoint evaluator, PCK@0.2), predict (skeleton and heatmaps drawn over an image).
#include <CLI/CLI.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli_util.h"
#include "fancy/keypoints/eval.h"
#include "fancy/keypoints/pose_metrics.h"
#include "fancy/nn/autocast.h"
#include "fancy/nn/downsample.h"
#include "fancy/pose/data.h"
#include "fancy/pose/synthetic.h"

namespace fs = std::filesystem;
namespace pose = fancy::pose;
namespace kp = fancy::keypoints;
using nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

// Where people come from: synthetic (seed) or a COCO dataset.
struct Source {
  std::optional<pose::SyntheticPeople> synthetic;
  std::optional<pose::CocoPeople> coco;
  std::string coco_annotations;
  int64_t size() const { return synthetic ? INT64_MAX : static_cast<int64_t>(coco->size()); }
  // image, box, keypoints (image coordinates), image id, area
  struct Person {
    cv::Mat image;
    std::array<float, 4> box;
    std::vector<float> keypoints;
    int64_t image_id;
  };
  Person get(int64_t i) const {
    if (synthetic) {
      auto s = synthetic->get(i);
      return {s.image, s.box, std::vector<float>(s.keypoints.begin(), s.keypoints.end()), i + 1};
    }
    const auto& p = (*coco)[static_cast<size_t>(i)];
    return {coco->image(static_cast<size_t>(i)), p.box, p.keypoints, p.image_id};
  }
};

Source make_source(const std::string& coco, const std::string& images, uint64_t seed, int64_t image_size) {
  Source s;
  if (!coco.empty()) {
    s.coco.emplace(coco, images);
    s.coco_annotations = coco;
    if (s.coco->joints() != pose::kCocoJoints)
      std::cerr << "pose: " << coco << " has " << s.coco->joints() << " keypoints; flip pairs are COCO's 17\n";
  } else {
    s.synthetic.emplace(pose::SyntheticOptions().seed(seed).image_size(image_size));
  }
  return s;
}

pose::HourglassOptions model_options(const json& c) {
  return pose::HourglassOptions()
      .stacks(c.at("stacks"))
      .order(c.at("order"))
      .features(c.at("features"))
      .residuals(c.at("residuals"))
      .joints(c.at("joints"))
      .input_size(c.at("input_size"))
      .pool(c.at("pool").get<std::string>())
      .bf16(c.value("precision", "fp32") == "bf16");  // models trained before the option: fp32
}

// auto: bf16 where the CPU computes it natively, fp32 elsewhere.
std::string resolve_precision(const std::string& precision) {
  if (precision != "auto") return precision;
  return fancy::nn::native_bf16() ? "bf16" : "fp32";
}

json read_config(const std::string& dir) {
  const auto path = fs::path(dir) / "config.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": not found (is " + dir + " a model trained by `fancy pose train`?)");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": malformed JSON: " + e.what());
  }
}

void save_weights(torch::nn::Module& model, torch::optim::Optimizer* opt, const json& progress, const fs::path& path) {
  torch::serialize::OutputArchive a;
  model.save(a);
  if (opt) {
    torch::serialize::OutputArchive o;
    opt->save(o);
    a.write("optimizer", o);
    const auto text = progress.dump();
    a.write("progress", torch::from_blob(const_cast<char*>(text.data()), {static_cast<int64_t>(text.size())},
                                         torch::kUInt8).clone());
  }
  const auto tmp = path.string() + ".tmp";
  a.save_to(tmp);
  fs::rename(tmp, path);  // a reader never sees half a checkpoint
}

json load_weights(torch::nn::Module& model, torch::optim::Optimizer* opt, const fs::path& path) {
  if (!fs::exists(path)) throw std::runtime_error(path.string() + ": checkpoint not found");
  torch::serialize::InputArchive a;
  try {
    a.load_from(path.string());
    model.load(a);
    if (opt) {
      torch::serialize::InputArchive o;
      a.read("optimizer", o);
      opt->load(o);
      torch::Tensor p;
      a.read("progress", p);
      const auto* bytes = reinterpret_cast<const char*>(p.data_ptr<uint8_t>());
      return json::parse(std::string(bytes, static_cast<size_t>(p.numel())));
    }
  } catch (const c10::Error& e) {
    throw std::runtime_error(path.string() + ": not a checkpoint of this model (truncated, or another configuration): " +
                             e.what_without_backtrace());
  }
  return json::object();
}

struct EvalReport {
  kp::EvalResult coco;
  double pck = 0;
  json results;  // COCO results
};

// Crops each person by its ground-truth box, predicts (flip test), maps the decoded
// keypoints back to the image, and scores them with the keypoint evaluator.
EvalReport evaluate(pose::StackedHourglass& model, const Source& src, int64_t count, const pose::CropOptions& crop,
                    bool flip, pose::Decode decode, int64_t batch, const fs::path& gt_path) {
  if (src.synthetic && !fs::exists(gt_path)) src.synthetic->write_coco(gt_path.string(), "", 0, count);
  const auto gt = kp::load_ground_truth(src.synthetic ? gt_path.string() : src.coco_annotations);
  EvalReport r;
  r.results = json::array();
  std::vector<double> pred_xy, gt_xy, norm;
  std::vector<uint8_t> visible;
  kp::EvalOptions options;  // only the images of the people scored (a COCO file may hold more)
  for (int64_t first = 0; first < count; first += batch) {
    std::vector<pose::PersonCrop> crops;
    std::vector<Source::Person> people;
    for (int64_t i = first; i < std::min(count, first + batch); ++i) {
      people.push_back(src.get(i));
      crops.push_back(pose::crop_person(people.back().image, people.back().box, people.back().keypoints, crop));
    }
    const auto images = pose::make_batch(crops, crop).first;
    const auto d =
        pose::decode_heatmaps(pose::predict_heatmaps(model, images, flip), decode, crop.sigma()).to(torch::kDouble);
    for (size_t n = 0; n < crops.size(); ++n) {
      const auto k = pose::transform_points(d[static_cast<int64_t>(n)], pose::invert(crops[n].image_to_heatmap));
      const auto a = k.accessor<double, 2>();
      std::vector<double> flat;
      double score = 0;
      for (int64_t j = 0; j < k.size(0); ++j) {
        flat.insert(flat.end(), {a[j][0], a[j][1], a[j][2]});
        score += a[j][2] / static_cast<double>(k.size(0));
        pred_xy.insert(pred_xy.end(), {a[j][0], a[j][1]});
        const auto& g = people[n].keypoints;
        gt_xy.insert(gt_xy.end(), {g[j * 3], g[j * 3 + 1]});
        visible.push_back(g[j * 3 + 2] > 0);
      }
      norm.push_back(std::max(people[n].box[2], people[n].box[3]));
      options.image_ids.push_back(people[n].image_id);
      r.results.push_back({{"image_id", people[n].image_id}, {"category_id", 1}, {"keypoints", flat}, {"score", score}});
    }
  }
  std::sort(options.image_ids.begin(), options.image_ids.end());
  options.image_ids.erase(std::unique(options.image_ids.begin(), options.image_ids.end()), options.image_ids.end());
  r.coco = kp::evaluate(gt, kp::parse_detections(r.results.dump(), "predictions"), options);
  r.pck = kp::pck(pred_xy, gt_xy, visible, norm, model->options().joints(), 0.2).mean;
  return r;
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(pose::StackedHourglass& model, const std::string& name, double lr) {
  if (name == "rmsprop") return std::make_unique<torch::optim::RMSprop>(model->parameters(), torch::optim::RMSpropOptions(lr));
  if (name == "adam") return std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(lr));
  throw std::runtime_error("pose train: --optimizer '" + name + "' is not rmsprop or adam");
}

struct TrainArgs {
  std::string out, coco, images, optimizer = "adam", pool = "max", schedule = "linear", precision = "auto";
  double minutes = 30, lr = 2e-3, eval_minutes = 3;
  int64_t steps = 0, stacks = 2, features = 128, order = 4, residuals = 1, input_size = 128, batch = 8;
  int64_t image_size = 160, val_count = 200, threads = 2;
  uint64_t seed = 1, val_seed = 2;
  bool resume = false;
};

int train(const TrainArgs& a) {
  fs::create_directories(a.out);
  json config;
  if (a.resume) {
    config = read_config(a.out);
  } else {
    const int64_t joints = a.coco.empty() ? pose::kCocoJoints : pose::CocoPeople(a.coco, a.images).joints();
    config = {{"stacks", a.stacks},   {"order", a.order},           {"features", a.features},
              {"residuals", a.residuals}, {"joints", joints},       {"input_size", a.input_size},
              {"pool", a.pool},       {"optimizer", a.optimizer},   {"lr", a.lr},
              {"batch", a.batch},     {"seed", a.seed},             {"val_seed", a.val_seed},
              {"image_size", a.image_size}, {"coco", a.coco},       {"images", a.images},
              {"val_count", a.val_count}, {"schedule", a.schedule}, {"precision", resolve_precision(a.precision)}};
    fancy::cli::write_atomically(fs::path(a.out) / "config.json", config.dump(1) + "\n");
  }
  torch::manual_seed(config.at("seed").get<uint64_t>());
  pose::StackedHourglass model(model_options(config));
  auto opt = make_optimizer(model, config.at("optimizer"), config.at("lr"));
  const auto crop = pose::CropOptions().input_size(config.at("input_size"));
  const auto train_src = make_source(config.at("coco"), config.at("images"), config.at("seed"), config.at("image_size"));
  const auto val_src = make_source(config.at("coco"), config.at("images"), config.at("val_seed"), config.at("image_size"));
  const int64_t B = config.at("batch");
  json progress = {{"step", 0}, {"seconds", 0.0}, {"best_ap", -1.0}};
  json history = json::array();
  const auto hist_path = fs::path(a.out) / "history.json";
  if (a.resume) {
    progress = load_weights(*model, opt.get(), fs::path(a.out) / "last.pt");
    if (fs::exists(hist_path)) history = json::parse(std::ifstream(hist_path));
    std::cerr << "pose: resuming at step " << progress["step"] << "\n";
  }
  std::cout << "model: " << config["stacks"] << " stacks, F " << config["features"] << ", " << config["input_size"]
            << " px, pool " << config["pool"] << ", " << config.value("precision", "fp32") << ": "
            << pose::count_parameters(*model) << " parameters\n";
  int64_t step = progress["step"];
  double seconds = progress["seconds"];
  const double budget = a.minutes * 60;
  auto start = clock_type::now();
  double last_eval = step == 0 ? -1e30 : seconds, loss_sum = 0;  // validate at step 0 too
  int64_t loss_n = 0, images_done = 0;
  auto elapsed = [&] { return seconds + std::chrono::duration<double>(clock_type::now() - start).count(); };
  model->train();
  while (true) {
    const bool done = (a.steps > 0 && step >= a.steps) || (a.steps == 0 && elapsed() >= budget);
    if (done || elapsed() - last_eval >= a.eval_minutes * 60) {
      const int64_t val_count = std::min(config.at("val_count").get<int64_t>(), val_src.size());
      const auto r = evaluate(model, val_src, val_count, crop, true, pose::Decode::Dark, 32,
                              fs::path(a.out) / ("val_gt_" + std::to_string(val_count) + ".json"));
      last_eval = elapsed();
      const double loss = loss_n ? loss_sum / loss_n : 0;
      history.push_back({{"step", step}, {"minutes", last_eval / 60}, {"train_loss", loss}, {"val_ap", r.coco.stats[0]},
                         {"val_pck", r.pck}});
      std::cerr << "\rstep " << step << " (" << std::fixed << std::setprecision(1) << last_eval / 60
                << " min): train loss " << std::setprecision(5) << loss << ", val AP " << std::setprecision(4)
                << r.coco.stats[0] << ", PCK@0.2 " << r.pck << "\n";
      loss_sum = 0;
      loss_n = 0;
      progress = {{"step", step}, {"seconds", last_eval}, {"best_ap", std::max(progress["best_ap"].get<double>(), r.coco.stats[0])}};
      if (r.coco.stats[0] >= progress["best_ap"].get<double>()) save_weights(*model, nullptr, {}, fs::path(a.out) / "best.pt");
      save_weights(*model, opt.get(), progress, fs::path(a.out) / "last.pt");
      fancy::cli::write_atomically(hist_path, history.dump(1) + "\n");
      if (done) break;
    }
    // linear: the rate falls to 5 % of its start over the budget (steps or minutes).
    const double done_share = a.steps > 0 ? static_cast<double>(step) / a.steps : elapsed() / budget;
    set_lr(*opt, config.at("lr").get<double>() *
                     (config.at("schedule") == "linear" ? std::max(0.05, 1 - done_share) : 1.0));
    std::vector<pose::PersonCrop> crops;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t i = train_src.synthetic ? step * B + b : (step * B + b) % train_src.size();
      std::mt19937_64 rng(pose::sample_seed(config.at("seed").get<uint64_t>() + 1, static_cast<uint64_t>(step * B + b)));
      const auto p = train_src.get(i);
      crops.push_back(pose::crop_person(p.image, p.box, p.keypoints, crop, &rng));
    }
    auto [images, targets] = pose::make_batch(crops, crop);
    opt->zero_grad();
    auto loss = pose::heatmap_loss(model->forward(images), targets);
    loss.backward();
    opt->step();
    loss_sum += loss.item<double>();
    ++loss_n;
    ++step;
    images_done += B;
    if (step % 10 == 0) {
      const double run = std::chrono::duration<double>(clock_type::now() - start).count();
      std::cerr << "\rstep " << step << " loss " << std::fixed << std::setprecision(5) << loss_sum / loss_n << " "
                << std::setprecision(1) << images_done / run << " img/s, " << elapsed() / 60 << " min   " << std::flush;
    }
  }
  std::cout << "trained " << step << " steps in " << std::fixed << std::setprecision(1) << elapsed() / 60 << " min; model in "
            << a.out << " (best.pt: best validation AP, last.pt: resume)\n";
  fancy::cli::run_python(fancy::cli::share_file("plot_pose.py"), {hist_path.string(), (fs::path(a.out) / "learning_curve.png").string()});
  return 0;
}

pose::StackedHourglass load_model(const std::string& dir, const std::string& weights, json* config_out = nullptr) {
  const auto config = read_config(dir);
  pose::StackedHourglass model(model_options(config));
  load_weights(*model, nullptr, fs::path(dir) / weights);
  if (config_out) *config_out = config;
  return model;
}

int eval(const std::string& dir, const std::string& weights, const std::string& coco, const std::string& images,
         int64_t count, uint64_t seed, bool flip, const std::string& decode, int64_t batch) {
  json config;
  auto model = load_model(dir, weights, &config);
  const auto crop = pose::CropOptions().input_size(config.at("input_size"));
  const bool synthetic = coco.empty() && config.at("coco").get<std::string>().empty();
  const auto src = make_source(coco.empty() ? config.at("coco").get<std::string>() : coco,
                               coco.empty() ? config.at("images").get<std::string>() : images,
                               seed ? seed : config.at("val_seed").get<uint64_t>() + 1000, config.at("image_size"));
  const int64_t n = std::min<int64_t>(count, src.size());
  const auto tag = synthetic ? "synthetic_seed" + std::to_string(seed ? seed : config.at("val_seed").get<uint64_t>() + 1000) + "_" + std::to_string(n) : std::string("coco");
  const auto t0 = clock_type::now();
  const auto r = evaluate(model, src, n, crop, flip, pose::parse_decode(decode, "pose eval: --decode"), batch,
                          fs::path(dir) / ("eval_gt_" + tag + ".json"));
  const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  fancy::cli::write_atomically(fs::path(dir) / ("results_" + tag + ".json"), r.results.dump() + "\n");
  std::cout << kp::summary_text(r.coco);
  std::cout << "PCK@0.2 (of the box's longer side): " << std::fixed << std::setprecision(4) << r.pck << "\n";
  std::cout << n << " people" << (synthetic ? " (held-out synthetic)" : "") << ", flip test " << (flip ? "on" : "off")
            << ", decoding " << decode << ", " << std::setprecision(1) << n / s << " people/s\n";
  json report = {{"stats", r.coco.stats}, {"pck_0.2", r.pck}, {"people", n}, {"images", r.coco.images},
                 {"ground_truths", r.coco.ground_truths}, {"flip_test", flip}, {"decode", decode}, {"weights", weights}};
  fancy::cli::write_atomically(fs::path(dir) / ("eval_" + tag + ".json"), report.dump(1) + "\n");
  return 0;
}

std::vector<float> parse_box(const std::string& text) {
  std::vector<float> v;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stof(item));
  if (v.size() != 4 || v[2] <= 0 || v[3] <= 0)
    throw std::runtime_error("pose predict: --box '" + text + "' must be x,y,w,h with w, h > 0");
  return v;
}

int predict(const std::string& dir, const std::string& weights, const std::string& image_path, const std::string& box_text,
            const std::string& out, bool all_stacks, bool flip, const std::string& decode) {
  json config;
  auto model = load_model(dir, weights, &config);
  if (!fs::exists(image_path)) throw std::runtime_error(image_path + ": image not found");
  cv::Mat image = cv::imread(image_path, cv::IMREAD_COLOR);
  if (image.empty()) throw std::runtime_error(image_path + ": cannot decode the image");
  std::array<float, 4> box{0, 0, static_cast<float>(image.cols), static_cast<float>(image.rows)};
  if (!box_text.empty()) {
    const auto b = parse_box(box_text);
    std::copy(b.begin(), b.end(), box.begin());
  }
  const auto crop_opts = pose::CropOptions().input_size(config.at("input_size"));
  const auto crop = pose::crop_person(image, box, {}, crop_opts);
  const auto images = crop.image.unsqueeze(0);
  std::vector<torch::Tensor> maps;
  if (all_stacks) {
    torch::NoGradGuard no_grad;
    model->eval();
    maps = model->forward(images);
  } else {
    maps.push_back(pose::predict_heatmaps(model, images, flip));
  }
  const auto back = pose::invert(crop.image_to_heatmap);
  std::vector<cv::Mat> panels;
  for (const auto& m : maps) {
    // Heatmaps (max over joints) warped back onto the image, as a colour overlay.
    const auto h = m[0].amax(0).clamp(0, 1).mul(255).to(torch::kUInt8).contiguous();
    cv::Mat small(static_cast<int>(h.size(0)), static_cast<int>(h.size(1)), CV_8UC1, h.data_ptr<uint8_t>());
    cv::Mat big, colour, panel;
    const cv::Mat inv = (cv::Mat_<double>(2, 3) << back[0], back[1], back[2] + 0.5 * (back[0] + back[1]) - 0.5, back[3],
                         back[4], back[5] + 0.5 * (back[3] + back[4]) - 0.5);
    cv::warpAffine(small, big, inv, image.size(), cv::INTER_LINEAR);
    cv::applyColorMap(big, colour, cv::COLORMAP_JET);
    cv::Mat weight;
    big.convertTo(weight, CV_32F, 1.0 / 255);
    cv::cvtColor(weight, weight, cv::COLOR_GRAY2BGR);
    cv::Mat img_f, col_f;
    image.convertTo(img_f, CV_32FC3);
    colour.convertTo(col_f, CV_32FC3);
    panel = img_f.mul(cv::Scalar::all(1) - 0.6 * weight) + col_f.mul(0.6 * weight);
    panel.convertTo(panel, CV_8UC3);
    const auto k = pose::transform_points(
        pose::decode_heatmaps(m[0], pose::parse_decode(decode, "pose predict: --decode"), crop_opts.sigma())
            .to(torch::kDouble),
        back);
    const auto a = k.accessor<double, 2>();
    const int thick = std::max(1, image.cols / 150);
    for (const auto& e : pose::coco_skeleton()) {
      const int i = e[0] - 1, j = e[1] - 1;
      if (i >= k.size(0) || j >= k.size(0)) continue;
      cv::line(panel, cv::Point2d(a[i][0], a[i][1]), cv::Point2d(a[j][0], a[j][1]), cv::Scalar(0, 255, 0), thick,
               cv::LINE_AA);
    }
    for (int64_t j = 0; j < k.size(0); ++j) {
      cv::circle(panel, cv::Point2d(a[j][0], a[j][1]), thick + 1, cv::Scalar(0, 0, 255), cv::FILLED, cv::LINE_AA);
      std::cout << std::left << std::setw(15) << (j < pose::kCocoJoints ? pose::coco_keypoint_names()[j] : std::to_string(j))
                << std::fixed << std::setprecision(1) << " x " << a[j][0] << " y " << a[j][1] << " score "
                << std::setprecision(3) << a[j][2] << "\n";
    }
    panels.push_back(panel);
  }
  cv::Mat sheet;
  cv::hconcat(panels, sheet);
  std::vector<uchar> png;
  if (!cv::imencode(".png", sheet, png)) throw std::runtime_error(out + ": cannot encode the picture");
  fancy::cli::write_atomically(out, std::string(png.begin(), png.end()));
  std::cout << "picture: " << out << (all_stacks ? " (one panel per stack, no flip test)" : "") << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fancy pose: stacked hourglass pose estimation (COCO-17 keypoints) on synthetic people or a COCO "
               "keypoint dataset."};
  app.require_subcommand(1);
  app.fallthrough();  // --threads may follow the subcommand
  int64_t threads = 2;
  app.add_option("--threads", threads, "CPU threads for torch and OpenCV")->check(CLI::PositiveNumber)->capture_default_str();

  auto* sy = app.add_subcommand("synth", "render synthetic people: PNG images and their COCO keypoint ground truth");
  std::string synth_out;
  int64_t synth_count = 100, synth_size = 160, synth_first = 0;
  uint64_t synth_seed = 2;
  sy->add_option("--out", synth_out, "output folder (gt.json, images/)")->required();
  sy->add_option("--count", synth_count, "people to render")->check(CLI::PositiveNumber)->capture_default_str();
  sy->add_option("--first", synth_first, "index of the first one")->check(CLI::NonNegativeNumber)->capture_default_str();
  sy->add_option("--seed", synth_seed, "seed (training uses 1, validation 2, `eval` 1002)")->capture_default_str();
  sy->add_option("--size", synth_size, "image side in pixels")->capture_default_str();

  auto* tr = app.add_subcommand("train", "train a stacked hourglass; writes DIR/config.json, best.pt, last.pt, "
                                         "history.json, learning_curve.png");
  TrainArgs ta;
  tr->add_option("--out", ta.out, "model folder")->required();
  tr->add_option("--minutes", ta.minutes, "wall-clock budget, validation included")->capture_default_str();
  tr->add_option("--steps", ta.steps, "stop after this many steps instead (0: use --minutes)")->capture_default_str();
  tr->add_option("--stacks", ta.stacks, "hourglass stacks")->capture_default_str();
  tr->add_option("--features", ta.features, "channels inside the hourglasses")->capture_default_str();
  tr->add_option("--order", ta.order, "hourglass order (pooling steps)")->capture_default_str();
  tr->add_option("--residuals", ta.residuals, "residual modules per level")->capture_default_str();
  tr->add_option("--input-size", ta.input_size, "network input side (heatmaps: a quarter)")->capture_default_str();
  tr->add_option("--pool", ta.pool, "down-sampling pool: max, min, avg, l2, soft, stochastic, mixed")->capture_default_str();
  tr->add_option("--batch", ta.batch, "people per step")->capture_default_str();
  tr->add_option("--optimizer", ta.optimizer, "rmsprop or adam")->capture_default_str();
  tr->add_option("--lr", ta.lr, "learning rate (the default is for Adam; RMSprop as pose-hg-train: 2.5e-4)")->capture_default_str();
  tr->add_option("--schedule", ta.schedule, "learning rate: constant, or linear down to 5 % over the budget")
      ->check(CLI::IsMember({"constant", "linear"}))->capture_default_str();
  tr->add_option("--precision", ta.precision,
                 "bf16: convolutions in bfloat16 (autocast; weights stay float32), about 2x faster on CPUs with "
                 "AVX512-BF16/AMX; fp32; auto: bf16 where the CPU has it. Eval and predict use the model's")
      ->check(CLI::IsMember({"auto", "bf16", "fp32"}))->capture_default_str();
  tr->add_option("--seed", ta.seed, "seed of the weights, the synthetic training people and the augmentation")->capture_default_str();
  tr->add_option("--val-seed", ta.val_seed, "seed of the synthetic validation people")->capture_default_str();
  tr->add_option("--val-count", ta.val_count, "validation people (OKS AP during training)")->capture_default_str();
  tr->add_option("--eval-minutes", ta.eval_minutes, "validate and checkpoint every N minutes")->capture_default_str();
  tr->add_option("--image-size", ta.image_size, "synthetic image side")->capture_default_str();
  tr->add_option("--coco", ta.coco, "train on a COCO keypoint file instead of synthetic people");
  tr->add_option("--images", ta.images, "the COCO file's image folder");
  tr->add_flag("--resume", ta.resume, "continue from DIR/last.pt with DIR/config.json");

  auto* ev = app.add_subcommand("eval", "OKS AP/AR (the keypoint evaluator) and PCK@0.2 on held-out people; "
                                        "writes DIR/results_*.json and eval_*.json");
  std::string ev_dir, ev_weights = "best.pt", ev_coco, ev_images;
  int64_t ev_count = 1000, ev_batch = 32;
  uint64_t ev_seed = 0;
  bool no_flip = false;
  ev->add_option("--model", ev_dir, "model folder")->required();
  ev->add_option("--weights", ev_weights, "checkpoint in the folder")->capture_default_str();
  ev->add_option("--count", ev_count, "people")->capture_default_str();
  ev->add_option("--seed", ev_seed, "synthetic seed (0: validation seed + 1000, never seen in training)")->capture_default_str();
  ev->add_option("--batch", ev_batch, "people per forward pass")->capture_default_str();
  ev->add_option("--coco", ev_coco, "evaluate on a COCO keypoint file (crops from its boxes)");
  ev->add_option("--images", ev_images, "the COCO file's image folder");
  ev->add_flag("--no-flip", no_flip, "without the flip test");
  std::string ev_decode = "dark", pr_decode = "dark";
  const auto decode_help = "sub-pixel decoding: quarter (arg-max + ¼ px toward the higher neighbour, Newell et al.) "
                           "or dark (Newton step on the smoothed log heatmap, Zhang et al. 2020)";
  ev->add_option("--decode", ev_decode, decode_help)
      ->check(CLI::IsMember({"quarter", "dark"}))
      ->capture_default_str();

  auto* pr = app.add_subcommand("predict", "keypoints of the person in IMAGE, drawn over it with the heatmaps");
  std::string pr_dir, pr_weights = "best.pt", pr_image, pr_box, pr_out = "pose.png";
  bool all_stacks = false, pr_no_flip = false;
  pr->add_option("image", pr_image, "image file")->required();
  pr->add_option("--model", pr_dir, "model folder")->required();
  pr->add_option("--weights", pr_weights, "checkpoint in the folder")->capture_default_str();
  pr->add_option("--box", pr_box, "person box x,y,w,h (default: the whole image)");
  pr->add_option("--out", pr_out, "picture to write (PNG)")->capture_default_str();
  pr->add_flag("--all-stacks", all_stacks, "one panel per stack (without the flip test)");
  pr->add_flag("--no-flip", pr_no_flip, "without the flip test");
  pr->add_option("--decode", pr_decode, decode_help)->check(CLI::IsMember({"quarter", "dark"}))->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(static_cast<int>(threads));
    cv::setNumThreads(static_cast<int>(threads));
    if (sy->parsed()) {
      pose::SyntheticPeople people(pose::SyntheticOptions().seed(synth_seed).image_size(synth_size));
      people.write_coco((fs::path(synth_out) / "gt.json").string(), (fs::path(synth_out) / "images").string(),
                        synth_first, synth_count);
      std::cout << synth_count << " people in " << synth_out << "/images, ground truth " << synth_out << "/gt.json\n";
      return 0;
    }
    if (tr->parsed()) return train(ta);
    if (ev->parsed()) return eval(ev_dir, ev_weights, ev_coco, ev_images, ev_count, ev_seed, !no_flip, ev_decode, ev_batch);
    if (pr->parsed()) return predict(pr_dir, pr_weights, pr_image, pr_box, pr_out, all_stacks, !pr_no_flip, pr_decode);
  } catch (const c10::Error& e) {
    std::cerr << "fancy pose: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "fancy pose: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
