// The fancy pooling family from C++: functions and modules reach the dispatcher's ops and
// agree with compositions of LibTorch ops (the full sweep and gradchecks are in
// tests/python/test_fancy_pool.py).
#include "fancy/fancy_pool.h"
#include "fancy/nn/fancy_pool.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

namespace F = torch::nn::functional;

at::Tensor rand_d(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::rand(shape, gen, torch::kDouble);
}

TEST(FancyPool, SoftPoolEqualsSoftmaxWeightedSumPerWindow) {
  auto x = rand_d({2, 3, 4, 6}, 1);
  auto y = fancy::soft_pool<2>(x, fancy::WindowOptions<2>(2));
  auto w = x.unfold(2, 2, 2).unfold(3, 2, 2).reshape({2, 3, 2, 3, 4});
  auto ref = (torch::softmax(w, -1) * w).sum(-1);
  EXPECT_TRUE(torch::allclose(y, ref, 1e-12, 1e-12));
  fancy::nn::SoftPool2d module(fancy::WindowOptions<2>(2));
  EXPECT_TRUE(torch::equal(module(x), y));
}

TEST(FancyPool, StochasticSameSeedSameDraws) {
  auto x = rand_d({2, 4, 8, 8}, 2);
  auto a = fancy::stochastic_pool<2>(x, fancy::WindowOptions<2>(2), true, at::make_generator<at::CPUGeneratorImpl>(5));
  auto b = fancy::stochastic_pool<2>(x, fancy::WindowOptions<2>(2), true, at::make_generator<at::CPUGeneratorImpl>(5));
  EXPECT_TRUE(torch::equal(std::get<1>(a), std::get<1>(b)));
  fancy::nn::StochasticPool2d module(fancy::WindowOptions<2>(2));
  module->eval();
  auto s1 = F::avg_pool2d(x, F::AvgPool2dFuncOptions(2)) * 4;
  auto s2 = F::avg_pool2d(x * x, F::AvgPool2dFuncOptions(2)) * 4;
  EXPECT_TRUE(torch::allclose(module(x), s2 / s1, 1e-12, 1e-12));
}

TEST(FancyPool, NegativeInputForStochasticPoolingIsAClearError) {
  auto x = -rand_d({1, 1, 4, 4}, 3);
  try {
    fancy::stochastic_pool<2>(x, fancy::WindowOptions<2>(2), true);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("stochastic_pool2d: stochastic pooling needs non-negative activations"),
              std::string::npos)
        << e.what();
  }
}

TEST(FancyPool, KmaxKeepsOriginalOrder) {
  auto x = torch::tensor({{1.0, 5.0, 2.0, 4.0, 3.0}}, torch::kDouble);
  auto [v, i] = fancy::kmax_pool(x, 3);
  EXPECT_TRUE(torch::equal(i, torch::tensor({{1, 3, 4}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(v, torch::tensor({{5.0, 4.0, 3.0}}, torch::kDouble)));
}

TEST(FancyPool, ModulesRegisterTheirLearnableParameters) {
  fancy::nn::GeM gem;
  fancy::nn::MixedPool2d mix(fancy::WindowOptions<2>(2), 8);
  fancy::nn::SortPool2d sort(2, 3);
  fancy::nn::GatedPool2d gated(fancy::WindowOptions<2>(3).stride(2));
  EXPECT_EQ(gem->parameters().size(), 1u);
  EXPECT_EQ(mix->alpha.numel(), 8);
  EXPECT_EQ(sort->weights.numel(), 3);
  EXPECT_EQ(gated->gate.sizes(), (std::vector<int64_t>{3, 3}));
  auto x = rand_d({2, 8, 9, 9}, 4).to(torch::kFloat);
  EXPECT_EQ(gated(x).sizes(), (std::vector<int64_t>{2, 8, 4, 4}));
  EXPECT_EQ(fancy::nn::SpatialPyramidPool2d()(x).sizes(), (std::vector<int64_t>{2, 8 * 21}));
  EXPECT_EQ(fancy::nn::HorizontalPyramidPool(std::vector<int64_t>{1, 3})(x).sizes(), (std::vector<int64_t>{2, 8, 4}));
}

}  // namespace
