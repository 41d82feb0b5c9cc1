// fancy::pose: the stacked hourglass's topology (exact parameter counts of the original),
// heatmap targets and decoding (round trip), flip test geometry, crop affines, the loss,
// a tiny training run and bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "fancy/keypoints/eval.h"
#include "fancy/nn/downsample.h"
#include "fancy/norm.h"
#include "fancy/pose/data.h"
#include "fancy/pose/heatmap.h"
#include "fancy/pose/hourglass.h"
#include "fancy/pose/synthetic.h"

namespace pose = fancy::pose;
namespace kp = fancy::keypoints;

namespace {

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing: " << part;
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find(part), std::string::npos)
        << "message: " << e.what_without_backtrace() << "\nexpected to contain: " << part;
  }
}

// Keypoints (N, J, 3) uniformly inside [lo, hi)², all labelled.
torch::Tensor random_keypoints(int64_t N, int64_t J, double lo, double hi, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  auto k = torch::ones({N, J, 3}, torch::kDouble);
  k.narrow(2, 0, 2).uniform_(lo, hi, g);
  return k;
}

}  // namespace

// design.md §8: trainable parameters of pose-hg-train's topology (BN affine included,
// one residual per level), counted on the same network built with PyTorch.
TEST(StackedHourglass, ParameterCountsEqualTheOriginal) {
  torch::NoGradGuard no_grad;
  auto count = [](int64_t stacks, int64_t features, int64_t joints) {
    return pose::count_parameters(*pose::StackedHourglass(
        pose::HourglassOptions().stacks(stacks).features(features).joints(joints)));
  };
  EXPECT_EQ(count(1, 256, 17), 3426705);
  EXPECT_EQ(count(2, 256, 17), 6571170);
  EXPECT_EQ(count(8, 256, 17), 25437960);
  EXPECT_EQ(count(8, 256, 16), 25434112);
  EXPECT_EQ(count(2, 128, 17), 1744930);
}

TEST(StackedHourglass, EveryStackGivesQuarterSizeHeatmaps) {
  torch::manual_seed(1);
  for (const std::string pool : {"max", "soft", "mixed"}) {
    pose::StackedHourglass net(
        pose::HourglassOptions().stacks(2).features(16).joints(5).order(3).input_size(64).pool(pool));
    const auto out = net->forward(torch::randn({2, 3, 64, 64}));
    ASSERT_EQ(out.size(), 2u) << pool;
    for (const auto& h : out) EXPECT_EQ(h.sizes(), (std::vector<int64_t>{2, 5, 16, 16})) << pool;
    EXPECT_FALSE(torch::allclose(out[0], out[1])) << pool;  // the second stack refines the first
  }
  // Mixed pooling adds its learnable α (one per channel) at every down-sampling: the stem's
  // 128 and F = 16 per hourglass level.
  auto params = [](const std::string& pool) {
    return pose::count_parameters(*pose::StackedHourglass(
        pose::HourglassOptions().stacks(2).features(16).order(3).input_size(64).pool(pool)));
  };
  EXPECT_EQ(params("mixed") - params("max"), 128 + 2 * 3 * 16);
  EXPECT_EQ(params("soft"), params("max"));
}

TEST(StackedHourglass, ResidualsPerLevelAndOrderChangeTheTopology) {
  // order n adds n hourglass levels of 3·residuals + (1 at the bottom) residual modules.
  auto params = [](int64_t order, int64_t residuals) {
    return pose::count_parameters(*pose::StackedHourglass(
        pose::HourglassOptions().stacks(1).features(32).order(order).residuals(residuals).input_size(128)));
  };
  const int64_t F = 32, M = F / 2;  // Residual(F, F): BN, 1×1 F→M, BN, 3×3 M→M, BN, 1×1 M→F
  const int64_t residual = 2 * F + (F * M + M) + 2 * M + (M * M * 9 + M) + 2 * M + (M * F + F);
  EXPECT_EQ(params(3, 1) - params(2, 1), 3 * residual);
  EXPECT_EQ(params(2, 2) - params(2, 1), (3 * 2 + 1 + 1) * residual);  // 3 per level, bottom, head
}

TEST(Heatmaps, DecodingRecoversTheKeypointWithinAQuarterPixel) {
  for (double sigma : {1.0, 2.0}) {
    const auto k = random_keypoints(8, 17, 2.0, 62.0, 3);
    const auto t = pose::render_heatmaps(k, 64, 64, sigma);
    EXPECT_EQ(t.heatmaps.sizes(), (std::vector<int64_t>{8, 17, 64, 64}));
    EXPECT_TRUE(t.weights.eq(1).all().item<bool>());
    const auto d = pose::decode_heatmaps(t.heatmaps).to(torch::kDouble);
    const auto err = (d.narrow(2, 0, 2) - k.narrow(2, 0, 2)).abs();
    EXPECT_LE(err.max().item<double>(), 0.25 + 1e-6) << "sigma " << sigma;
    EXPECT_GT(d.select(2, 2).min().item<double>(), 0.6);  // the peak pixel is near the keypoint
  }
}

// DARK's Newton step on the smoothed log map recovers a Gaussian's centre far inside a
// quarter pixel (the 3σ cut and the zero padding of the blur near the border keep it from
// exact); on a map with noise it stays within the quarter rule's bound; bad names fail.
TEST(Heatmaps, DarkDecodingRecoversTheKeypointWellInsideAQuarterPixel) {
  for (double sigma : {1.0, 2.0}) {
    const auto k = random_keypoints(8, 17, 6.0, 58.0, 4);
    const auto t = pose::render_heatmaps(k, 64, 64, sigma);
    const auto d = pose::decode_heatmaps(t.heatmaps, pose::Decode::Dark, sigma).to(torch::kDouble);
    const auto err = (d.narrow(2, 0, 2) - k.narrow(2, 0, 2)).abs();
    EXPECT_LE(err.max().item<double>(), 0.05) << "sigma " << sigma;
    const auto q = pose::decode_heatmaps(t.heatmaps).to(torch::kDouble);
    EXPECT_LT(err.mean().item<double>(), 0.2 * (q.narrow(2, 0, 2) - k.narrow(2, 0, 2)).abs().mean().item<double>());
    EXPECT_TRUE(torch::equal(d.select(2, 2), q.select(2, 2)));  // the peak value is the map's maximum
    torch::manual_seed(7);
    const auto noisy = t.heatmaps + 0.02 * torch::randn_like(t.heatmaps);
    const auto dn = pose::decode_heatmaps(noisy, pose::Decode::Dark, sigma).to(torch::kDouble);
    EXPECT_LE((dn.narrow(2, 0, 2) - k.narrow(2, 0, 2)).abs().max().item<double>(), 1.5) << "sigma " << sigma;
  }
  // A keypoint on the border pixel: the quarter rule's fallback, no NaN.
  auto edge = torch::tensor({{{0.5, 10.3, 2.0}}}, torch::kDouble);
  const auto de = pose::decode_heatmaps(pose::render_heatmaps(edge, 16, 16, 1.0).heatmaps, pose::Decode::Dark);
  EXPECT_TRUE(de.isfinite().all().item<bool>());
  EXPECT_NEAR(de[0][0][0].item<double>(), 0.5, 1e-6);
  try {
    pose::parse_decode("argmax", "pose eval: --decode");
    ADD_FAILURE() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("pose eval: --decode: decoding must be 'quarter' or 'dark', got 'argmax'"),
              std::string::npos);
  }
}

TEST(Heatmaps, GaussianIsExactAndMaxCombined) {
  auto k = torch::zeros({1, 2, 1, 3}, torch::kDouble);  // two persons, one joint
  k[0][0][0] = torch::tensor({5.5, 5.5, 2.0}, torch::kDouble);
  k[0][1][0] = torch::tensor({7.0, 5.5, 1.0}, torch::kDouble);
  const auto t = pose::render_heatmaps(k, 12, 12, 1.5);
  const auto m = t.heatmaps[0][0];
  EXPECT_FLOAT_EQ(m[5][5].item<float>(), 1.0f);  // pixel (5, 5) is centred on (5.5, 5.5)
  for (int x = 0; x < 12; ++x) {
    const double a = std::exp(-std::pow(x + 0.5 - 5.5, 2) / (2 * 1.5 * 1.5));
    const double b = std::exp(-std::pow(x + 0.5 - 7.0, 2) / (2 * 1.5 * 1.5));
    const double want = std::abs(x + 0.5 - 5.5) <= 4.5 || std::abs(x + 0.5 - 7.0) <= 4.5 ? std::max(a, b) : 0.0;
    EXPECT_NEAR(m[5][x].item<float>(), want, 1e-6) << "x " << x;
  }
  EXPECT_EQ(m[0][0].item<float>(), 0.0f);  // beyond 3σ
}

TEST(Heatmaps, UnlabelledAndOffMapJointsGiveZeroMapsAndZeroWeight) {
  auto k = torch::tensor({{{3.0, 3.0, 0.0}, {-20.0, 4.0, 2.0}, {4.0, 4.0, 1.0}, {-1.0, 4.0, 1.0}}}, torch::kDouble);
  const auto t = pose::render_heatmaps(k, 8, 8, 1.0);
  EXPECT_EQ(t.weights[0][0].item<float>(), 0.0f);
  EXPECT_EQ(t.weights[0][1].item<float>(), 0.0f);
  EXPECT_EQ(t.weights[0][2].item<float>(), 1.0f);
  EXPECT_EQ(t.weights[0][3].item<float>(), 1.0f);  // just off the map, its Gaussian still reaches in
  EXPECT_EQ(t.heatmaps[0][0].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(t.heatmaps[0][1].abs().sum().item<float>(), 0.0f);
}

TEST(Heatmaps, FlippingTheMapsIsRenderingTheFlippedKeypoints) {
  const auto k = random_keypoints(4, 17, 1.0, 47.0, 5);
  const auto& pairs = pose::coco_flip_pairs();
  const auto a = pose::flip_heatmaps(pose::render_heatmaps(k, 48, 48, 1.0).heatmaps, pairs);
  const auto b = pose::render_heatmaps(pose::flip_keypoints(k, 48, pairs), 48, 48, 1.0).heatmaps;
  EXPECT_TRUE(torch::allclose(a, b, 0, 1e-6));
  // Left and right swap: the left eye's map (1) comes from the right eye's (2).
  const auto h = pose::render_heatmaps(k, 48, 48, 1.0).heatmaps;
  EXPECT_TRUE(torch::equal(pose::flip_heatmaps(h, pairs).select(1, 1), h.select(1, 2).flip({-1})));
  EXPECT_TRUE(torch::equal(pose::flip_heatmaps(pose::flip_heatmaps(h, pairs), pairs), h));
  // The flip test: the maps of the flipped image (b), flipped back, decode to the original keypoints.
  const auto d = pose::decode_heatmaps(pose::flip_heatmaps(b, pairs)).to(torch::kDouble);
  EXPECT_LE((d.narrow(2, 0, 2) - k.narrow(2, 0, 2)).abs().max().item<double>(), 0.25 + 1e-6);
}

TEST(Heatmaps, CropAffineRoundTripsAndMapsTheBoxOntoTheCrop) {
  const auto m = pose::crop_affine(120, 80, 200, 30, 256);
  const auto c = pose::transform_points(torch::tensor({{120.0, 80.0}}, torch::kDouble), m);
  EXPECT_NEAR(c[0][0].item<double>(), 128, 1e-9);
  EXPECT_NEAR(c[0][1].item<double>(), 128, 1e-9);
  const auto p = torch::tensor({{10.0, 20.0}, {300.0, -5.0}, {120.0, 180.0}}, torch::kDouble);
  const auto back = pose::transform_points(pose::transform_points(p, m), pose::invert(m));
  EXPECT_TRUE(torch::allclose(back, p, 0, 1e-9));
  // Unrotated: the box's left edge goes to 0 and its right edge to 256.
  const auto u = pose::transform_points(torch::tensor({{20.0, 80.0}, {220.0, 80.0}}, torch::kDouble),
                                        pose::crop_affine(120, 80, 200, 0, 256));
  EXPECT_NEAR(u[0][0].item<double>(), 0, 1e-9);
  EXPECT_NEAR(u[1][0].item<double>(), 256, 1e-9);
  // 90° counter-clockwise: a point right of the centre moves above it (y down).
  const auto r = pose::transform_points(torch::tensor({{170.0, 80.0}}, torch::kDouble),
                                        pose::crop_affine(120, 80, 200, 90, 256));
  EXPECT_NEAR(r[0][0].item<double>(), 128, 1e-9);
  EXPECT_NEAR(r[0][1].item<double>(), 128 - 64, 1e-9);
  // Image → heatmap (crop / 4) → image, through render and decode: within a quarter of a
  // heatmap pixel, i.e. 0.25 · 4 · 200 / 256 image pixels.
  const auto to_map = pose::scale_affine(m, 0.25);
  const auto k = torch::cat({torch::tensor({{100.0, 60.0}, {150.0, 120.0}, {60.0, 30.0}}, torch::kDouble),
                             torch::ones({3, 1}, torch::kDouble)}, 1).unsqueeze(0);
  const auto t = pose::render_heatmaps(pose::transform_points(k, to_map), 64, 64, 1.0);
  const auto d = pose::transform_points(pose::decode_heatmaps(t.heatmaps).to(torch::kDouble), pose::invert(to_map));
  EXPECT_LE((d.narrow(2, 0, 2) - k.narrow(2, 0, 2)).abs().max().item<double>(), 0.25 * 4 * 200 / 256 + 1e-6);
}

TEST(Heatmaps, LossIsTheWeightedMeanSquaredErrorSummedOverStacks) {
  auto k = torch::tensor({{{3.0, 3.0, 1.0}, {5.0, 5.0, 0.0}}}, torch::kDouble);
  const auto t = pose::render_heatmaps(k, 8, 8, 1.0);
  const auto a = torch::rand({1, 2, 8, 8}), b = torch::rand({1, 2, 8, 8});
  const auto want = ((a[0][0] - t.heatmaps[0][0]).square().sum() + (b[0][0] - t.heatmaps[0][0]).square().sum()) /
                    (2 * 8 * 8);
  EXPECT_NEAR(pose::heatmap_loss({a, b}, t).item<double>(), want.item<double>(), 1e-6);
}

// Two joints: the centres of a bright square and a dark one on a grey 32 px image.
// Weights are channels-last; the input's layout does not change the result; bf16 autocast
// stays close to float32, returns float32 heatmaps, trains through every pool's backward
// (fancy's pools run on a float copy) and leaves autocast off afterwards.
// The residuals' BN → ReLU is fancy's fused op: it must be exactly what the module's
// own forward and a ReLU give, running statistics and the batch counter included.
TEST(StackedHourglass, FusedBatchNormReluIsTheModulesForwardThenRelu) {
  torch::manual_seed(3);
  torch::nn::BatchNorm2d fused(8), plain(8);
  const auto x = (torch::randn({4, 8, 6, 6}) * 2 + 1).contiguous(torch::MemoryFormat::ChannelsLast);
  for (const bool training : {true, false}) {
    fused->train(training);
    plain->train(training);
    for (int step = 0; step < 2; ++step) {
      const auto a = fancy::nn::batch_norm_relu(*fused, x), b = torch::relu(plain->forward(x));
      EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5)) << (training ? "training" : "eval");
      EXPECT_TRUE(a.is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  EXPECT_TRUE(torch::allclose(fused->running_mean, plain->running_mean, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(fused->running_var, plain->running_var, 1e-6, 1e-7));
  EXPECT_EQ(fused->num_batches_tracked.item<int64_t>(), 2);
  EXPECT_EQ(plain->num_batches_tracked.item<int64_t>(), 2);
  EXPECT_THROW(fancy::nn::batch_norm_relu(*fused, torch::randn({4, 8})), c10::Error);
}

TEST(StackedHourglass, ChannelsLastAndBf16AutocastAgreeWithFloat) {
  for (const std::string pool : {"max", "soft", "mixed"}) {
    auto make = [&](bool bf16) {
      torch::manual_seed(3);
      return pose::StackedHourglass(
          pose::HourglassOptions().stacks(2).features(16).joints(3).order(2).input_size(32).pool(pool).bf16(bf16));
    };
    auto fp32 = make(false), bf16 = make(true);
    for (const auto& p : fp32->parameters())
      if (p.dim() == 4) EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast)) << pool;
    fp32->eval();
    bf16->eval();
    const auto x = torch::randn({2, 3, 32, 32});
    torch::NoGradGuard no_grad;
    const auto a = fp32->forward(x).back(), b = bf16->forward(x).back();
    EXPECT_TRUE(torch::equal(a, fp32->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).back())) << pool;
    EXPECT_EQ(b.scalar_type(), torch::kFloat) << pool;
    const double scale = a.abs().max().item<double>(), diff = (a - b).abs().max().item<double>();
    EXPECT_LT(diff, 0.05 * scale) << pool << ": bf16 differs by " << diff << " at scale " << scale;
    EXPECT_GT(diff, 0) << pool << ": bf16 did not run";
    EXPECT_EQ(torch::mm(torch::ones({2, 2}), torch::ones({2, 2})).scalar_type(), torch::kFloat) << "autocast left on";
  }
  torch::manual_seed(3);
  pose::StackedHourglass net(
      pose::HourglassOptions().stacks(1).features(16).joints(3).order(2).input_size(32).pool("soft").bf16(true));
  net->forward(torch::randn({2, 3, 32, 32}))[0].square().sum().backward();
  for (const auto& p : net->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
  }
}

namespace {
// Trains a tiny hourglass to find two squares; returns the held-out loss (before, after).
std::pair<double, double> tiny_training(bool bf16) {
  torch::manual_seed(0);
  torch::set_num_threads(1);
  pose::StackedHourglass net(
      pose::HourglassOptions().stacks(2).features(32).joints(2).order(2).input_size(32).bf16(bf16));
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(2e-3));
  std::mt19937 rng(1);
  auto batch = [&](int64_t n) {
    auto images = torch::full({n, 3, 32, 32}, 0.5);
    auto k = torch::ones({n, 2, 3}, torch::kDouble);
    std::uniform_int_distribution<int> pos(4, 24);
    for (int64_t i = 0; i < n; ++i)
      for (int j = 0; j < 2; ++j) {
        const int x = pos(rng), y = pos(rng);
        images[i].narrow(1, y, 4).narrow(2, x, 4).fill_(j == 0 ? 1.0 : 0.0);
        k[i][j][0] = (x + 2) / 4.0;  // the square's centre on the 8 px heatmap
        k[i][j][1] = (y + 2) / 4.0;
      }
    return std::make_pair(images, pose::render_heatmaps(k, 8, 8, 1.0));
  };
  auto [test_images, test_targets] = batch(32);
  auto eval_loss = [&] {
    torch::NoGradGuard no_grad;
    net->eval();
    const double l = pose::heatmap_loss(net->forward(test_images), test_targets).item<double>();
    net->train();
    return l;
  };
  const double before = eval_loss();
  for (int step = 0; step < 150; ++step) {
    auto [images, targets] = batch(16);
    opt.zero_grad();
    pose::heatmap_loss(net->forward(images), targets).backward();
    opt.step();
  }
  return {before, eval_loss()};
}
}  // namespace

TEST(StackedHourglass, TinyTrainingLowersTheLoss) {
  for (const bool bf16 : {false, true}) {
    const auto [before, after] = tiny_training(bf16);
    EXPECT_LT(after, before / 10) << (bf16 ? "bf16" : "fp32") << " loss " << before << " -> " << after;
  }
}

TEST(StackedHourglass, BadInputIsAClearError) {
  expect_error([] { pose::StackedHourglass(pose::HourglassOptions().input_size(200)); },
               "input_size (200) must be a multiple of 4·2^order = 64");
  expect_error([] { pose::StackedHourglass(pose::HourglassOptions().stacks(0)); }, "stacks (0) must be at least 1");
  expect_error([] { pose::StackedHourglass(pose::HourglassOptions().features(15)); }, "features (15) must be even");
  expect_error([] { pose::StackedHourglass(pose::HourglassOptions().pool("median")); },
               "pool 'median' is not one of max, min, avg, l2, soft, stochastic, mixed");
  pose::StackedHourglass net(pose::HourglassOptions().stacks(1).features(8).order(1).input_size(8));
  expect_error([&] { net->forward(torch::zeros({1, 3, 16, 16})); }, "images must be (N, 3, 8, 8), got [1, 3, 16, 16]");
  expect_error([] { pose::render_heatmaps(torch::zeros({2, 17}), 8, 8); },
               "keypoints must be (N, J, 3) or (N, P, J, 3), got [2, 17]");
  expect_error([] { pose::render_heatmaps(torch::zeros({1, 2, 3}), 8, 8, 0); }, "sigma (0) must be positive");
  expect_error([] { pose::flip_heatmaps(torch::zeros({1, 5, 4, 4}), pose::coco_flip_pairs()); },
               "joint pair (5, 6) is out of range for 5 joints");
  expect_error([] { pose::invert({1, 2, 0, 2, 4, 0}); }, "the affine map is singular");
  expect_error([] { pose::heatmap_loss({torch::zeros({1, 2, 4, 4})}, pose::render_heatmaps(torch::zeros({1, 3, 3}), 8, 8)); },
               "stack 0 has heatmaps [1, 2, 4, 4] but the targets are [1, 3, 8, 8]");
}

// --- SyntheticPeople ---------------------------------------------------------------

TEST(SyntheticPeople, SameSeedAndIndexGiveTheSameSampleInAnyOrder) {
  pose::SyntheticPeople a(pose::SyntheticOptions().seed(3)), b(pose::SyntheticOptions().seed(3)),
      c(pose::SyntheticOptions().seed(4));
  const auto s7 = a.get(7);
  b.get(2);  // another sample first changes nothing
  const auto t7 = b.get(7);
  EXPECT_EQ(cv::norm(s7.image, t7.image, cv::NORM_INF), 0);
  EXPECT_EQ(s7.keypoints, t7.keypoints);
  EXPECT_EQ(s7.box, t7.box);
  EXPECT_GT(cv::norm(s7.image, c.get(7).image, cv::NORM_L1), 0);
  EXPECT_NE(s7.keypoints, a.get(8).keypoints);
}

TEST(SyntheticPeople, KeypointsFollowCocoRules) {
  pose::SyntheticPeople people(pose::SyntheticOptions().seed(1).image_size(128));
  int hidden = 0, visible = 0, outside = 0;
  const int n = 200;
  for (int i = 0; i < n; ++i) {
    const auto s = people.get(i);
    ASSERT_EQ(s.image.rows, 128);
    ASSERT_EQ(s.image.cols, 128);
    ASSERT_EQ(s.image.type(), CV_8UC3);
    int labelled = 0;
    for (int j = 0; j < pose::kCocoJoints; ++j) {
      const float x = s.keypoints[j * 3], y = s.keypoints[j * 3 + 1], v = s.keypoints[j * 3 + 2];
      ASSERT_TRUE(v == 0 || v == 1 || v == 2) << "sample " << i << " joint " << j;
      if (v == 0) {
        EXPECT_EQ(x, 0) << "sample " << i;  // COCO: unlabelled keypoints are (0, 0, 0)
        EXPECT_EQ(y, 0);
        ++outside;
      } else {
        EXPECT_TRUE(x >= 0 && y >= 0 && x < 128 && y < 128) << "sample " << i << " joint " << j;
        ++labelled;
        (v == 1 ? hidden : visible)++;
      }
    }
    EXPECT_EQ(s.num_keypoints, labelled);
    EXPECT_GT(s.area, 0) << "sample " << i;
    EXPECT_TRUE(s.box[0] >= 0 && s.box[1] >= 0 && s.box[0] + s.box[2] <= 128 && s.box[1] + s.box[3] <= 128);
    EXPECT_LE(s.area, s.box[2] * s.box[3]);
  }
  // Mostly visible people, some hidden joints (occluders, faces from behind), a few cut off.
  EXPECT_GT(visible, n * 17 * 0.7);
  EXPECT_GT(hidden, n * 17 * 0.04);
  EXPECT_LT(outside, n * 17 * 0.1);
}

TEST(SyntheticPeople, CocoGroundTruthIsReadByTheEvaluatorAndScoresItselfOne) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "fancy_synthetic_people";
  std::filesystem::remove_all(dir);
  pose::SyntheticPeople people(pose::SyntheticOptions().seed(2).image_size(96));
  people.write_coco((dir / "gt.json").string(), (dir / "images").string(), 10, 20);
  ASSERT_TRUE(std::filesystem::exists(dir / "images" / "00000010.png"));
  ASSERT_TRUE(std::filesystem::exists(dir / "images" / "00000029.png"));
  EXPECT_FALSE(std::filesystem::exists(dir / "gt.json.tmp"));
  const auto gt = kp::load_ground_truth((dir / "gt.json").string());
  // Results = the ground truth itself, score 1: AP 1.
  std::string results = "[";
  for (int i = 10; i < 30; ++i) {
    const auto s = people.get(i);
    results += std::string(i > 10 ? "," : "") + "{\"image_id\":" + std::to_string(i + 1) +
               ",\"category_id\":1,\"score\":1,\"keypoints\":[";
    for (int j = 0; j < pose::kCocoJoints * 3; ++j) results += (j ? "," : "") + std::to_string(s.keypoints[j]);
    results += "]}";
  }
  results += "]";
  const auto r = kp::evaluate(gt, kp::parse_detections(results, "results"));
  EXPECT_EQ(r.images, 20);
  EXPECT_DOUBLE_EQ(r.stats[0], 1.0);
  const cv::Mat png = cv::imread((dir / "images" / "00000012.png").string());
  EXPECT_EQ(cv::norm(png, people.get(12).image, cv::NORM_INF), 0);  // lossless
}

TEST(SyntheticPeople, BadOptionsAreClearErrors) {
  expect_error([] { pose::SyntheticPeople(pose::SyntheticOptions().image_size(16)); },
               "image_size (16) must be at least 32");
  expect_error([] { pose::SyntheticPeople(pose::SyntheticOptions().min_height(0.9).max_height(0.5)); },
               "need 0 < min_height (0.9) <= max_height (0.5)");
  expect_error([] { pose::SyntheticPeople().get(-1); }, "index (-1) must be >= 0");
}

// --- crops and the COCO reader -------------------------------------------------------

TEST(PersonCrop, KeypointsAndPixelsFollowTheSameMap) {
  cv::Mat image(150, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  image.at<cv::Vec3b>(60, 70) = cv::Vec3b(255, 255, 255);  // pixel centre (70.5, 60.5)
  const std::vector<float> k{70.5f, 60.5f, 2.f, 80.f, 80.f, 1.f, 500.f, 10.f, 2.f};
  const auto c = pose::crop_person(image, {50, 40, 60, 80}, k, pose::CropOptions().input_size(128), nullptr, {});
  EXPECT_EQ(c.image.sizes(), (std::vector<int64_t>{3, 128, 128}));
  // The box centre (80, 80) lands on the heatmap's centre; side 1.25 · 80 = 100 px → 32.
  EXPECT_NEAR(c.keypoints[1][0].item<float>(), 16, 1e-4);
  EXPECT_NEAR(c.keypoints[1][1].item<float>(), 16, 1e-4);
  EXPECT_EQ(c.keypoints[2][2].item<float>(), 0);  // outside the crop: unlabelled
  // The dot's brightest crop pixel is where the map sends its centre (crop = 4 × heatmap).
  const auto flat = c.image[0].flatten().argmax().item<int64_t>();
  const double cx = (flat % 128) + 0.5, cy = (flat / 128) + 0.5;
  EXPECT_NEAR(cx, 4 * c.keypoints[0][0].item<float>(), 1.0);
  EXPECT_NEAR(cy, 4 * c.keypoints[0][1].item<float>(), 1.0);
}

TEST(PersonCrop, FlipAugmentationMirrorsPixelsAndSwapsJoints) {
  pose::SyntheticPeople people(pose::SyntheticOptions().seed(5).image_size(128));
  const auto s = people.get(0);
  const std::vector<float> k(s.keypoints.begin(), s.keypoints.end());
  const auto o = pose::CropOptions().input_size(64).scale_sigma(0).rotation_prob(0).colour(0).flip_prob(1);
  std::mt19937_64 rng(1);
  const auto plain = pose::crop_person(s.image, s.box, k, o);
  const auto flipped = pose::crop_person(s.image, s.box, k, o, &rng);
  EXPECT_LT((flipped.image - plain.image.flip({-1})).abs().max().item<float>(), 2.5f / 255);
  const auto& pairs = pose::coco_flip_pairs();
  const auto want = pose::flip_keypoints(plain.keypoints, 16, pairs);
  const auto labelled = want.select(1, 2) > 0;
  EXPECT_TRUE(torch::equal(labelled, flipped.keypoints.select(1, 2) > 0));
  EXPECT_LT((flipped.keypoints - want).narrow(1, 0, 2).abs().max().item<float>(), 1e-4);
  // Mapping the flipped crop's keypoints back gives the original ones, left and right swapped.
  const auto back = pose::transform_points(flipped.keypoints.to(torch::kDouble), pose::invert(flipped.image_to_heatmap));
  EXPECT_NEAR(back[5][0].item<double>(), s.keypoints[6 * 3], 1e-3);  // left shoulder ← right shoulder
}

namespace {
void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}
std::string kps(int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::string(i % 3 == 2 ? "2" : "10");
  return s + "]";
}
}  // namespace

TEST(CocoPeople, ReadsPeopleAndNamesWhatIsWrong) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "fancy_coco_people";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "img");
  cv::imwrite((dir / "img" / "a.png").string(), cv::Mat(40, 40, CV_8UC3, cv::Scalar(1, 2, 3)));
  write_text(dir / "img" / "broken.png", "not a png");
  const std::string cats = R"("categories":[{"id":1,"name":"person","keypoints":)" + std::string("[") +
                           [] { std::string s; for (int i = 0; i < 17; ++i) s += (i ? ",\"k" : "\"k") + std::to_string(i) + "\""; return s; }() + "]}]";
  const std::string images = R"("images":[{"id":1,"file_name":"a.png"},{"id":2,"file_name":"missing.png"},{"id":3,"file_name":"broken.png"}])";
  auto ann = [&](const std::string& annotations) {
    write_text(dir / "gt.json", "{" + images + "," + cats + ",\"annotations\":[" + annotations + "]}");
    return (dir / "gt.json").string();
  };
  const std::string good = R"({"id":5,"image_id":1,"bbox":[1,2,30,30],"area":100,"iscrowd":0,"keypoints":)" + kps(51) + "}";
  const std::string crowd = R"({"id":6,"image_id":1,"bbox":[1,2,30,30],"iscrowd":1,"keypoints":)" + kps(51) + "}";
  const std::string unlabelled = R"({"id":7,"image_id":1,"bbox":[1,2,30,30],"keypoints":)" + std::string(
      "[" + [] { std::string s; for (int i = 0; i < 51; ++i) s += i ? ",0" : "0"; return s; }() + "]") + "}";
  const std::string missing = R"({"id":8,"image_id":2,"bbox":[1,2,30,30],"keypoints":)" + kps(51) + "}";
  const std::string broken = R"({"id":9,"image_id":3,"bbox":[1,2,30,30],"keypoints":)" + kps(51) + "}";
  pose::CocoPeople people(ann(good + "," + crowd + "," + unlabelled + "," + missing + "," + broken),
                          (dir / "img").string());
  ASSERT_EQ(people.size(), 3u);  // the crowd and the unlabelled person are skipped
  EXPECT_EQ(people.joints(), 17);
  EXPECT_EQ(people[0].annotation_id, 5);
  EXPECT_EQ(people.image(0).rows, 40);
  expect_error([&] { people.image(1); }, "missing.png: image not found (annotation 8)");
  expect_error([&] { people.image(2); }, "broken.png: cannot decode the image (annotation 9)");
  expect_error([&] { pose::CocoPeople(ann(R"({"id":3,"image_id":1,"bbox":[1,2,3,4],"keypoints":[1,2,2,4,5,2]})"), ""); },
               "annotations[0] (id 3): keypoints has 6 numbers, expected 3 × 17 joints = 51");
  expect_error([&] { pose::CocoPeople(ann(R"({"id":3,"image_id":1,"bbox":[1,2,3,4]})"), ""); },
               "annotations[0] (id 3): missing field 'keypoints'");
  expect_error([&] { pose::CocoPeople(ann(R"({"id":4,"image_id":9,"bbox":[1,2,3,4],"keypoints":)" + kps(51) + "}"), ""); },
               "image_id 9 is not in 'images'");
  expect_error([&] { pose::CocoPeople((dir / "nope.json").string(), ""); }, "nope.json: cannot read the annotations");
}
