// Structured regularization: the group ops against an independent float64 loop over
// groups, penalties and gradients against plain torch compositions, proximal steps
// against their closed forms, pruning against the unpruned network, and bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "fancy/regularize.h"

namespace reg = fancy::regularize;
using at::Tensor;

namespace {

// The norms by walking every element and computing its group from its index.
Tensor reference_norms(const Tensor& w, const std::vector<int64_t>& block, double p) {
  const auto shape = w.sizes().vec();
  std::vector<int64_t> grid(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) grid[d] = (shape[d] + block[d] - 1) / block[d];
  Tensor out = torch::zeros(grid, torch::kDouble);
  auto flat = w.to(torch::kDouble).contiguous().flatten();
  auto o = out.flatten();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    int64_t rest = i, g = 0, gstride = 1;
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      const int64_t idx = rest % shape[d];
      rest /= shape[d];
      g += (idx / block[d]) * gstride;
      gstride *= grid[d];
    }
    const double v = std::abs(flat[i].item<double>());
    const double cur = o[g].item<double>();
    o[g] = p == 1 ? cur + v : p == 2 ? cur + v * v : std::max(cur, v);
  }
  return p == 2 ? out.sqrt() : out;
}

struct Case {
  std::vector<int64_t> shape;
  std::string groups;
  std::vector<int64_t> block;
  bool ragged = false;
};

}  // namespace

TEST(GroupOps, NormsEqualALoopOverGroupsForEverySpec) {
  torch::manual_seed(0);
  const std::vector<Case> cases = {
      {{6, 4, 3, 3}, "filters", {1, 4, 3, 3}},   {{6, 4, 3, 3}, "channels", {6, 1, 3, 3}},
      {{6, 4, 3, 3}, "kernels", {1, 1, 3, 3}},   {{7, 5}, "rows", {1, 5}},
      {{7, 5}, "columns", {7, 1}},               {{6, 4, 3}, "elements", {1, 1, 1}},
      {{6, 4, 3, 3}, "all", {6, 4, 3, 3}},       {{8, 6}, "block:2x3", {2, 3}},
      {{7, 5}, "block:3x2", {3, 2}, true},       {{6, 4, 3, 3}, "dims:0,2", {6, 1, 3, 1}},
      {{3, 5, 2, 4}, "dims:-1", {1, 1, 1, 4}},   {{300, 700}, "columns", {300, 1}},
      {{40000}, "block:7", {7}, true},
  };
  for (const auto& c : cases)
    for (double p : {1.0, 2.0, double(INFINITY)}) {
      const Tensor w = torch::randn(c.shape, torch::kDouble);
      const Tensor got = reg::group_norms(w, c.groups, p, c.ragged);
      const Tensor want = reference_norms(w, c.block, p);
      ASSERT_EQ(got.sizes(), want.sizes()) << c.groups;
      EXPECT_TRUE(torch::allclose(got, want, 1e-12, 1e-12)) << c.groups << " p=" << p;
      // float32 accumulates in double: within float rounding of the float64 result.
      const Tensor got32 = reg::group_norms(w.to(torch::kFloat), c.groups, p, c.ragged);
      EXPECT_TRUE(torch::allclose(got32.to(torch::kDouble), want, 1e-6, 1e-6)) << c.groups << " p=" << p;
    }
}

TEST(GroupOps, EmptyWeightsGiveAnEmptyGrid) {
  EXPECT_EQ(reg::group_norms(torch::zeros({0, 3, 3, 3}), "filters").sizes(), (c10::IntArrayRef{0, 1, 1, 1}));
  EXPECT_EQ(reg::group_norms(torch::zeros({4, 0}), "columns").sizes(), (c10::IntArrayRef{1, 0}));
}

TEST(GroupOps, SameResultForAnyThreadCount) {
  torch::manual_seed(1);
  const Tensor w = torch::randn({512, 256, 3, 3});
  for (const char* g : {"filters", "channels", "kernels", "all"}) {
    at::set_num_threads(1);
    const Tensor one = reg::group_norms(w, g);
    at::set_num_threads(2);
    const Tensor two = reg::group_norms(w, g);
    at::set_num_threads(1);
    EXPECT_TRUE(torch::equal(one, two)) << g;
  }
}

TEST(Penalties, GroupLassoAndGradientEqualATorchComposition) {
  torch::manual_seed(2);
  const Tensor w0 = torch::randn({8, 5, 3, 3}, torch::kDouble);
  auto check = [&](const std::string& groups, const std::function<Tensor(const Tensor&)>& ref) {
    Tensor a = w0.clone().requires_grad_(), b = w0.clone().requires_grad_();
    const Tensor pa = reg::group_lasso(a, groups), pb = ref(b);
    pa.backward();
    pb.backward();
    EXPECT_NEAR(pa.item<double>(), pb.item<double>(), 1e-10) << groups;
    EXPECT_TRUE(torch::allclose(a.grad(), b.grad(), 1e-10, 1e-10)) << groups;
  };
  check("filters", [](const Tensor& w) { return w.reshape({8, -1}).norm(2, 1).sum(); });
  check("channels", [](const Tensor& w) { return w.transpose(0, 1).reshape({5, -1}).norm(2, 1).sum(); });
  check("kernels", [](const Tensor& w) { return w.reshape({40, 9}).norm(2, 1).sum(); });
  check("all", [](const Tensor& w) { return w.norm(); });
  // Size weighting, L1, squared L2, elastic net, sparse group lasso.
  const Tensor w = w0.clone();
  EXPECT_NEAR(reg::group_lasso(w, "filters", true).item<double>(),
              std::sqrt(45.0) * w.reshape({8, -1}).norm(2, 1).sum().item<double>(), 1e-10);
  EXPECT_NEAR(reg::l1(w).item<double>(), w.abs().sum().item<double>(), 1e-10);
  EXPECT_NEAR(reg::l2(w).item<double>(), std::sqrt(w.pow(2).sum().item<double>()), 1e-10);
  EXPECT_NEAR(reg::elastic_net(w, 0.3).item<double>(),
              0.3 * w.abs().sum().item<double>() + 0.35 * w.pow(2).sum().item<double>(), 1e-10);
  EXPECT_NEAR(reg::sparse_group_lasso(w, "channels", 0.25).item<double>(),
              0.25 * w.abs().sum().item<double>() +
                  0.75 * w.transpose(0, 1).reshape({5, -1}).norm(2, 1).sum().item<double>(),
              1e-10);
  // The chapter's printed "group" term is plain squared L2, whatever the groups.
  EXPECT_NEAR(reg::group_sum_of_squares(w, "filters").item<double>(), w.pow(2).sum().item<double>(), 1e-9);
  // A zero group has gradient 0 (not NaN).
  Tensor z = w0.clone();
  z[3].zero_();
  z.requires_grad_();
  reg::group_lasso(z, "filters").backward();
  EXPECT_TRUE(z.grad()[3].eq(0).all().item<bool>());
  EXPECT_FALSE(z.grad().isnan().any().item<bool>());
}

// The fused gradient equals autograd's gradient of the same penalty (float64), adds to
// what .grad holds, returns the penalty, and handles size weighting, ragged tiles, zero
// groups and a non-contiguous grad.
TEST(Penalties, FusedGroupLassoGradientEqualsAutograd) {
  torch::manual_seed(4);
  Tensor w = torch::randn({6, 5, 3, 3}, torch::kDouble);
  w[2].zero_();
  struct Case {
    std::string groups;
    bool size_weighted, ragged;
  };
  for (const Case& c : {Case{"filters", false, false}, Case{"channels", true, false}, Case{"kernels", false, false},
                        Case{"block:4x2x3x3", true, true}, Case{"dims:0,2", false, false}}) {
    Tensor leaf = w.clone().requires_grad_();
    const Tensor expected = 0.37 * reg::group_lasso(leaf, c.groups, c.size_weighted, c.ragged);
    expected.backward();
    const Tensor start = torch::randn_like(w);
    Tensor grad = start.clone();
    const double value = reg::add_group_lasso_grad_(grad, w, c.groups, 0.37, c.size_weighted, c.ragged);
    EXPECT_NEAR(value, expected.item<double>(), 1e-10) << c.groups;
    EXPECT_TRUE(torch::allclose(grad - start, leaf.grad(), 1e-10, 1e-12)) << c.groups;
    EXPECT_TRUE((grad - start)[2].eq(0).all().item<bool>() || c.groups != "filters") << "zero filter";
  }
  // A channels-last grad (as a channels-last model's parameters have) gets the same values.
  Tensor leaf = w.clone().requires_grad_();
  reg::group_lasso(leaf, "filters").backward();
  Tensor cl = torch::zeros_like(w).contiguous(torch::MemoryFormat::ChannelsLast);
  reg::add_group_lasso_grad_(cl, w, "filters");
  EXPECT_TRUE(cl.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::allclose(cl, leaf.grad(), 1e-10, 1e-12));
  // float32 agrees with float64 to float precision.
  Tensor g32 = torch::zeros({6, 5, 3, 3});
  reg::add_group_lasso_grad_(g32, w.to(torch::kFloat), "filters");
  EXPECT_TRUE(torch::allclose(g32.to(torch::kDouble), leaf.grad(), 1e-5, 1e-6));
  // Regularizer::add_gradients equals penalty() + backward, for group lasso and L1 alike.
  torch::manual_seed(5);
  torch::nn::Sequential a(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)), torch::nn::Linear(4, 2));
  torch::nn::Sequential b(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)), torch::nn::Linear(4, 2));
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  const reg::Regularizer r({{"type:Conv2d", "group_lasso", "filters", 0.1}, {"type:Linear", "l1", "", 0.2}});
  const Tensor pa = r.penalty(*a);
  pa.backward();
  const double pb = r.add_gradients(*b);
  EXPECT_NEAR(pa.item<double>(), pb, 1e-5);
  for (size_t i = 0; i < a->parameters().size(); ++i) {
    const auto& ga = a->parameters()[i].grad();
    const auto& gb = b->parameters()[i].grad();
    if (!ga.defined()) {
      EXPECT_FALSE(gb.defined() && gb.ne(0).any().item<bool>()) << "parameter " << i;
      continue;
    }
    EXPECT_TRUE(torch::allclose(ga, gb, 1e-5, 1e-6)) << "parameter " << i;
  }
}

// Every loop of the fused gradient: groups of 1 (1×1 kernels), fixed-size runs (2×2, 3×3
// and 5×5 kernels), other runs (rows), ragged 1-D tiles with size weights, groups
// spanning dim 0 (columns, channels: the row-buffer loops), several chunks of groups,
// zero groups and zero elements — against autograd in float64, and the same float32
// result with 1 and 2 threads.
TEST(Penalties, FusedGroupLassoGradientCoversEveryLoop) {
  struct Case {
    std::vector<int64_t> shape;
    std::string groups;
    bool size_weighted, ragged;
  };
  const std::vector<Case> cases = {
      {{300, 200, 1, 1}, "kernels", false, false}, {{8, 3, 2, 2}, "kernels", true, false},
      {{7, 5, 3, 3}, "kernels", true, false},      {{7, 3, 5, 5}, "kernels", false, false},
      {{40, 30}, "rows", true, false},             {{40, 30}, "columns", true, false},
      {{10}, "block:4", true, true},               {{9, 7}, "block:4x3", true, true},
      {{64, 130, 3, 3}, "channels", true, false},  {{1200, 40, 3, 3}, "filters", false, false}};
  for (const Case& c : cases) {
    torch::manual_seed(6);
    Tensor w = torch::randn(c.shape, torch::kDouble);
    w.view(-1).slice(0, 0, 5).zero_();  // a zero element / a zero group of one
    if (w.dim() > 1) w[1].zero_();
    Tensor leaf = w.clone().requires_grad_();
    const Tensor expected = 0.37 * reg::group_lasso(leaf, c.groups, c.size_weighted, c.ragged);
    expected.backward();
    Tensor grad = torch::zeros_like(w);
    const double value = reg::add_group_lasso_grad_(grad, w, c.groups, 0.37, c.size_weighted, c.ragged);
    EXPECT_NEAR(value, expected.item<double>(), 1e-9 * std::abs(value)) << c.groups;
    EXPECT_TRUE(torch::allclose(grad, leaf.grad(), 1e-10, 1e-12)) << c.groups;
    const Tensor w32 = w.to(torch::kFloat);
    Tensor g1 = torch::zeros_like(w32), g2 = torch::zeros_like(w32);
    at::set_num_threads(1);
    const double v1 = reg::add_group_lasso_grad_(g1, w32, c.groups, 0.37, c.size_weighted, c.ragged);
    at::set_num_threads(2);
    const double v2 = reg::add_group_lasso_grad_(g2, w32, c.groups, 0.37, c.size_weighted, c.ragged);
    at::set_num_threads(1);
    EXPECT_EQ(v1, v2) << c.groups;
    EXPECT_TRUE(torch::equal(g1, g2)) << c.groups;
    EXPECT_TRUE(torch::allclose(g1.to(torch::kDouble), leaf.grad(), 1e-4, 1e-6)) << c.groups;
  }
}

TEST(Prox, GroupSoftThresholdingZeroesSmallGroupsAndKeepsDirections) {
  torch::manual_seed(3);
  Tensor w = torch::randn({10, 4, 3, 3}, torch::kDouble);
  w.slice(0, 0, 4).mul_(0.05);  // four small filters
  const Tensor before = w.clone();
  const Tensor norms = before.reshape({10, -1}).norm(2, 1);
  const double step = 0.5;
  reg::prox_group_lasso_(w, "filters", step);
  for (int64_t f = 0; f < 10; ++f) {
    const double n = norms[f].item<double>();
    if (n <= step) {
      EXPECT_TRUE(w[f].eq(0).all().item<bool>()) << f;  // exactly zero
    } else {
      EXPECT_TRUE(torch::allclose(w[f], before[f] * (1 - step / n), 1e-12, 1e-14)) << f;
    }
  }
  EXPECT_GE(w.reshape({10, -1}).abs().amax(1).eq(0).sum().item<int64_t>(), 4);
  // L1: the closed form sign(w) max(|w| − t, 0).
  Tensor v = torch::randn({1000}, torch::kDouble);
  const Tensor want = v.sign() * (v.abs() - 0.3).clamp_min(0);
  reg::prox_l1_(v, 0.3);
  EXPECT_TRUE(torch::equal(v, want));
  // Distiller thresholding by mean |w|.
  Tensor t = before.clone();
  const int64_t zeroed = reg::threshold_groups_(t, "filters", 0.1, "mean");
  const Tensor mean = before.reshape({10, -1}).abs().mean(1);
  EXPECT_EQ(zeroed, mean.le(0.1).sum().item<int64_t>());
  EXPECT_TRUE(t.reshape({10, -1}).abs().amax(1).eq(0).equal(mean.le(0.1)));
}

TEST(Regularizer, RulesSelectByNameTypeAndWholeModel) {
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)), torch::nn::ReLU(),
                            torch::nn::Flatten(), torch::nn::Linear(4 * 26 * 26, 10));
  const auto params = reg::named_parameters(*net);
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].name, "0.weight");
  EXPECT_EQ(params[0].module_type, "Conv2d");
  reg::Regularizer by_type({{"type:Conv2d", "group_lasso", "filters", 0.5}});
  EXPECT_NEAR(by_type.penalty(*net).item<double>(),
              0.5 * net[0]->as<torch::nn::Conv2d>()->weight.reshape({4, -1}).norm(2, 1).sum().item<double>(), 1e-5);
  reg::Regularizer all({{"*", "l1", "", 0.1}});  // weights of rank >= 2: conv and linear, no biases
  const double l1 = net[0]->as<torch::nn::Conv2d>()->weight.abs().sum().item<double>() +
                    net[3]->as<torch::nn::Linear>()->weight.abs().sum().item<double>();
  EXPECT_NEAR(all.penalty(*net).item<double>(), 0.1 * l1, 1e-3);
  const auto glob = reg::Regularizer::from_json(R"({"rules": [{"target": "3.*", "penalty": "l2", "lambda": 1}]})");
  EXPECT_EQ(glob.select(glob.rules()[0], params).size(), 2u);  // 3.weight and 3.bias
}

TEST(Regularizer, BadInputGivesClearErrors) {
  auto expect_error = [](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning: " << part;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  const Tensor conv = torch::randn({8, 4, 3, 3});
  expect_error([&] { reg::group_norms(conv, "rows"); }, "groups 'rows' need a 2-D weight, got a weight of shape [8, 4, 3, 3]");
  expect_error([&] { reg::group_norms(conv, "block:3x2x3x3"); }, "tile size 3 does not divide dim 0 of size 8");
  EXPECT_EQ(reg::group_norms(conv, "block:3x2x3x3", 2, true).sizes(), (c10::IntArrayRef{3, 2, 1, 1}));
  expect_error([&] { reg::group_norms(conv, "block:2x2"); }, "give 2 tile sizes for a weight of rank 4");
  expect_error([&] { reg::group_norms(conv, "dims:4"); }, "dim 4 is out of range");
  expect_error([&] {
    Tensor g = torch::zeros({8, 4});
    reg::add_group_lasso_grad_(g, conv);
  }, "group_lasso_grad_: grad must have the weight's shape [8, 4, 3, 3] and dtype Float, got [8, 4] Float");
  expect_error([&] {
    Tensor g = torch::zeros_like(conv);
    reg::add_group_lasso_grad_(g, conv, "filters", -1);
  }, "group_lasso_grad_: scale must be finite and >= 0, got -1");
  expect_error([&] { reg::group_norms(conv, "blocks"); }, "unknown groups 'blocks'");
  expect_error([&] { reg::group_norms(conv, "filters", 3); }, "p must be 1, 2 or inf, got 3");
  expect_error([&] { reg::group_norms(conv.to(torch::kLong), "filters"); }, "must be float32 or float64");
  expect_error([&] { reg::Regularizer({{"*", "group_lasso", "filters", -1}}); }, "lambda must be finite and >= 0, got -1");
  expect_error([&] { reg::Regularizer({{"*", "lasso", "filters", 1}}); }, "unknown penalty 'lasso'");
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)));
  expect_error([&] { reg::Regularizer({{"conv9.weight", "l1", "", 1}}).penalty(*net); },
               "target 'conv9.weight' matches no parameter; the model has: 0.weight, 0.bias");
  expect_error([&] { reg::Regularizer({{"0.weight", "group_lasso", "columns", 1}}).penalty(*net); },
               "parameter '0.weight' (shape [4, 1, 3, 3]): fancy::regularize: groups 'columns' need a 2-D weight");
  expect_error([] { reg::Regularizer::from_json(R"([{"target": "*", "lamda": 1}])", "reg.json"); },
               "reg.json: rule 0: unknown field 'lamda'");
  expect_error([] { reg::Regularizer::from_json(R"([{"lambda": "big"}])", "reg.json"); },
               "reg.json: rule 0: field 'lambda' must be a number, got \"big\"");
  Tensor leaf = torch::randn({4, 4}).requires_grad_();
  expect_error([&] { reg::group_scale_(leaf, torch::ones({4, 1}), "rows"); }, "must run under no_grad");
  expect_error([&] { reg::group_scale(conv, torch::ones({4})); }, "scale must have the shape of the grid");
}

// A layer whose filters are all zero (a strong λ) keeps one, and the network stays exact.
TEST(Pruning, ALayerWithEveryFilterZeroKeepsOne) {
  torch::manual_seed(5);
  namespace nn = torch::nn;
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 4, 3)), nn::ReLU(), nn::Conv2d(nn::Conv2dOptions(4, 6, 3)),
                     nn::ReLU(), nn::Flatten(), nn::Linear(6 * 4 * 4, 3));
  {
    torch::NoGradGuard g;
    net[2]->as<nn::Conv2d>()->weight.zero_();
  }
  auto result = reg::prune(net, {1, 8, 8});
  ASSERT_EQ(result.layers.size(), 2u);
  EXPECT_EQ(result.layers[0].after, 4);
  EXPECT_EQ(result.layers[1].after, 1);
  const Tensor x = torch::randn({5, 1, 8, 8});
  EXPECT_TRUE(torch::allclose(net->forward(x), result.net->forward(x), 1e-5, 1e-5));
}

TEST(Pruning, PrunedNetworkEqualsTheOriginalAndIsSmaller) {
  torch::manual_seed(4);
  namespace nn = torch::nn;
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 8, 3)), nn::BatchNorm2d(8), nn::ReLU(),
                     nn::Conv2d(nn::Conv2dOptions(8, 12, 3).padding(1)), nn::BatchNorm2d(12), nn::ReLU(),
                     nn::MaxPool2d(2), nn::Conv2d(nn::Conv2dOptions(12, 6, 3).bias(false)), nn::ReLU(),
                     nn::Flatten(), nn::Linear(6 * 3 * 3, 16), nn::ReLU(), nn::Linear(16, 5));
  {
    torch::NoGradGuard g;
    for (auto& b : net->buffers())
      if (b.is_floating_point()) b.uniform_(0.5, 1.5);  // running statistics that matter
    for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.1);
    auto conv0 = net[0]->as<nn::Conv2d>(), conv3 = net[3]->as<nn::Conv2d>(), conv7 = net[7]->as<nn::Conv2d>();
    conv0->weight[1].zero_();  // the next conv pads: removable only if its activation is 0
    conv0->bias[1] = 5;        // relu(bn(5)) > 0: kept
    conv0->weight[5].zero_();
    conv0->bias[5] = -100;     // relu(bn(-100)) = 0: removed
    conv3->weight[2].zero_();  // the next conv does not pad: constants folded, removed
    conv3->weight[7].zero_();
    conv7->weight[4].zero_();  // then Flatten + Linear: folded
    net[10]->as<nn::Linear>()->weight[9].zero_();
  }
  net->eval();
  auto result = reg::prune(net, {1, 12, 12});
  ASSERT_EQ(result.layers.size(), 4u);
  EXPECT_EQ(result.layers[0].after, 7);
  EXPECT_EQ(result.layers[0].kept_nonzero_constant, 1);
  EXPECT_EQ(result.layers[1].after, 10);
  EXPECT_EQ(result.layers[2].after, 5);
  EXPECT_EQ(result.layers[3].after, 15);
  const Tensor x = torch::randn({7, 1, 12, 12});
  const Tensor y0 = net->forward(x), y1 = result.net->forward(x);
  EXPECT_TRUE(torch::allclose(y0, y1, 1e-5, 1e-5)) << (y0 - y1).abs().max();
  const auto before = reg::sparsity_report(net, {1, 12, 12});
  const auto after = reg::sparsity_report(result.net, {1, 12, 12});
  EXPECT_LT(after.params, before.params);
  EXPECT_LT(after.macs, before.macs);
  EXPECT_NEAR(before.layers[0].filters, 2.0 / 8, 1e-12);
  EXPECT_EQ(before.layers[0].rows, -1);  // rows apply to 2-D weights only
  EXPECT_NE(before.table().find("| 0.weight | 8×1×3×3 | 72 |"), std::string::npos) << before.table();
}
