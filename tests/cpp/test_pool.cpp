// The C++ API and modules of the classic pooling family: values against LibTorch's own
// ops, and a clear error (op, argument, value, rule) for every bad input.
#include "fancy/nn/pool.h"
#include "fancy/pool.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace {

namespace tf = torch::nn::functional;

// Runs f and returns the c10::Error message ("" when nothing was thrown).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

#define EXPECT_ERROR(expr, ...)                                        \
  do {                                                                 \
    const std::string msg = error_of([&] { (void)(expr); });           \
    ASSERT_FALSE(msg.empty()) << #expr " did not throw";               \
    for (const char* part : {__VA_ARGS__}) {                           \
      EXPECT_NE(msg.find(part), std::string::npos)                     \
          << "message lacks \"" << part << "\": " << msg;              \
    }                                                                  \
  } while (0)

TEST(PoolApi, MaxPoolMatchesLibTorchWithIndices) {
  torch::manual_seed(1);
  auto x = torch::randn({2, 5, 13, 11});
  auto [y, i] = fancy::max_pool2d_with_indices(x, fancy::MaxPool2dOptions(3).stride(2).padding(1));
  auto [ry, ri] = tf::max_pool2d_with_indices(x, tf::MaxPool2dFuncOptions(3).stride(2).padding(1));
  EXPECT_TRUE(torch::equal(y, ry));
  EXPECT_TRUE(torch::equal(i, ri));
}

TEST(PoolApi, ModulesWithChainedOptions) {
  torch::manual_seed(2);
  auto x = torch::randn({2, 3, 12, 12}).contiguous(torch::MemoryFormat::ChannelsLast);
  fancy::nn::MaxPool2d pool(fancy::nn::MaxPool2dOptions(3).stride(2).ceil_mode(true));
  auto y = pool(x);
  EXPECT_TRUE(torch::equal(y, tf::max_pool2d(x, tf::MaxPool2dFuncOptions(3).stride(2).ceil_mode(true))));
  EXPECT_TRUE(y.is_contiguous(torch::MemoryFormat::ChannelsLast));

  fancy::nn::AvgPool3d avg(fancy::nn::AvgPool3dOptions(2).count_include_pad(false).padding(1));
  auto x3 = torch::randn({1, 2, 5, 6, 7});
  EXPECT_TRUE(torch::allclose(avg(x3), tf::avg_pool3d(x3, tf::AvgPool3dFuncOptions(2).padding(1).count_include_pad(false)),
                              1e-6, 1e-6));

  fancy::nn::MinPool1d minp(fancy::nn::MinPool1dOptions(2));
  auto x1 = torch::randn({3, 4, 9});
  EXPECT_TRUE(torch::equal(minp(x1), -tf::max_pool1d(-x1, tf::MaxPool1dFuncOptions(2))));

  fancy::nn::LPPool2d lp(fancy::nn::LPPool2dOptions(2.0, 2));
  EXPECT_TRUE(torch::allclose(lp(x), tf::lp_pool2d(x.abs(), tf::LPPool2dFuncOptions(2.0, 2)), 1e-6, 1e-6));

  fancy::nn::GlobalAvgPool gap;
  EXPECT_TRUE(torch::allclose(gap(x), x.mean({2, 3}), 1e-6, 1e-6));
  fancy::nn::AdaptiveMaxPool2d amp(torch::ExpandingArray<2>({3, 4}));
  EXPECT_TRUE(torch::equal(amp(x), tf::adaptive_max_pool2d(x, tf::AdaptiveMaxPool2dFuncOptions({3, 4}))));
  std::ostringstream s;
  s << *pool;
  EXPECT_NE(s.str().find("MaxPool2d(kernel_size=[3, 3]"), std::string::npos);
}

TEST(PoolApi, BackwardThroughTheCppFunction) {
  auto x = torch::randn({2, 3, 8, 8}, torch::kDouble).requires_grad_();
  fancy::avg_pool2d(x, fancy::AvgPool2dOptions(2)).sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), torch::full_like(x, 0.25)));
}

TEST(PoolErrors, WindowArguments) {
  auto x = torch::randn({1, 2, 8, 8});
  EXPECT_ERROR(fancy::max_pool2d(x, fancy::MaxPool2dOptions(0)), "max_pool2d", "kernel_size", "[0, 0]",
               "must be positive");
  EXPECT_ERROR(fancy::max_pool2d(x, fancy::MaxPool2dOptions(2).stride(0)), "max_pool2d", "stride",
               "must be positive");
  EXPECT_ERROR(fancy::max_pool2d(x, fancy::MaxPool2dOptions(2).padding(-1)), "max_pool2d", "padding",
               "non-negative");
  EXPECT_ERROR(fancy::max_pool2d(x, fancy::MaxPool2dOptions(2).padding(2)), "max_pool2d", "padding (2)",
               "at most half the effective kernel size (2)");
  EXPECT_ERROR(fancy::avg_pool2d(x, fancy::AvgPool2dOptions(3).padding(2)), "avg_pool2d", "padding (2)",
               "at most half the kernel size (3)");
  EXPECT_ERROR(fancy::max_pool2d(x, fancy::MaxPool2dOptions(2).dilation(0)), "max_pool2d", "dilation",
               "must be positive");
  EXPECT_ERROR(fancy::min_pool3d(torch::randn({2, 8, 8}), fancy::MinPool3dOptions(2)), "min_pool3d",
               "4-D (unbatched) or 5-D", "got a 3-D input");
  EXPECT_ERROR(fancy::max_pool1d(torch::randn({5}), fancy::MaxPool1dOptions(2)), "max_pool1d",
               "got a 1-D input");
  EXPECT_ERROR(fancy::max_pool2d(torch::randn({1, 1, 3, 3}), fancy::MaxPool2dOptions(5)), "max_pool2d",
               "output size [0, 0] is empty", "dilation·(kernel_size−1)+1");
  EXPECT_ERROR(fancy::avg_pool2d(torch::ones({1, 1, 4, 4}, torch::kLong), fancy::AvgPool2dOptions(2)),
               "avg_pool2d", "dtype Long", "float32, float64 or bfloat16");
  EXPECT_ERROR(fancy::lp_pool2d(x, fancy::LPPool2dOptions(0.0, 2)), "lp_pool2d", "norm_type", "positive");
  EXPECT_ERROR(fancy::avg_pool2d(x, fancy::AvgPool2dOptions(2).divisor_override(0)), "avg_pool2d",
               "divisor_override", "non-zero");
  EXPECT_ERROR(fancy::max_pool2d(torch::randn({1, 2, 0, 4}), fancy::MaxPool2dOptions(2)), "max_pool2d",
               "non-empty");
}

TEST(PoolErrors, AdaptiveOutputSize) {
  auto x = torch::randn({1, 2, 8, 8});
  EXPECT_ERROR(fancy::adaptive_avg_pool2d(x, {0, 3}), "adaptive_avg_pool2d", "output_size", "[0, 3]",
               "positive");
  EXPECT_ERROR(fancy::adaptive_max_pool2d(x, {2, -1}), "adaptive_max_pool2d", "output_size", "positive");
  EXPECT_ERROR(fancy::global_avg_pool(torch::randn({3, 4})), "global_avg_pool", "at least one spatial dim");
  EXPECT_ERROR(fancy::global_max_pool(torch::randn({3, 4})), "global_max_pool", "at least one spatial dim");
  EXPECT_ERROR(fancy::global_max_pool(torch::ones({2, 3, 4}, torch::kInt)), "global_max_pool", "dtype Int",
               "float32, float64 or bfloat16");
  EXPECT_ERROR(fancy::global_avg_pool(torch::randn({2, 3, 0, 4})), "global_avg_pool", "dim 2", "[2, 3, 0, 4]",
               "non-empty");
}

TEST(PoolErrors, Unpooling) {
  auto x = torch::randn({1, 2, 8, 8});
  auto [y, i] = fancy::max_pool2d_with_indices(x, fancy::MaxPool2dOptions(2));
  // output_size must lie strictly within default ± stride
  EXPECT_ERROR(fancy::max_unpool2d(y, i, fancy::MaxUnpool2dOptions(2).output_size(std::vector<int64_t>{11, 8})),
               "max_unpool2d", "output_size [11, 8] does not fit", "strictly between 6 and 10");
  EXPECT_ERROR(fancy::max_unpool2d(y, i, fancy::MaxUnpool2dOptions(2).output_size(std::vector<int64_t>{8})),
               "max_unpool2d", "output_size must have 2 or 4 elements");
  EXPECT_ERROR(fancy::max_unpool2d(y, i.slice(3, 0, 2), fancy::MaxUnpool2dOptions(2)), "max_unpool2d",
               "indices shape [1, 2, 4, 2] must equal the input shape [1, 2, 4, 4]");
  EXPECT_ERROR(fancy::max_unpool2d(y, i.to(torch::kInt), fancy::MaxUnpool2dOptions(2)), "max_unpool2d",
               "indices must be int64");
  auto bad = i.clone();
  bad[0][1][2][3] = 64;
  EXPECT_ERROR(fancy::max_unpool2d(y, bad, fancy::MaxUnpool2dOptions(2)), "max_unpool2d", "index 64",
               "outside the output plane of 64 elements");
  bad[0][1][2][3] = -3;
  EXPECT_ERROR(fancy::max_unpool2d(y, bad, fancy::MaxUnpool2dOptions(2)), "index -3");
  // and the valid case puts every maximum back where it came from
  auto u = fancy::max_unpool2d(y, i, fancy::MaxUnpool2dOptions(2));
  EXPECT_TRUE(torch::equal(u.flatten(2).gather(2, i.flatten(2)), y.flatten(2)));
  EXPECT_EQ(u.ne(0).sum().item<int64_t>(), y.ne(0).sum().item<int64_t>());
}

TEST(PoolErrors, DoubleBackwardIsRefused) {
  auto x = torch::randn({1, 2, 6, 6}, torch::kDouble).requires_grad_();
  auto y = fancy::max_pool2d(x, fancy::MaxPool2dOptions(2)).sum();
  EXPECT_ERROR(torch::autograd::grad({y}, {x}, {}, true, true), "max_pool2d_with_indices",
               "double backward (create_graph=True) is not supported");
}

TEST(PoolThreads, SameResultForAnyThreadCount) {
  torch::manual_seed(3);
  auto x = torch::randn({4, 7, 31, 29}, torch::kDouble).requires_grad_();
  auto run = [&](int threads) {
    at::set_num_threads(threads);
    x.mutable_grad() = torch::Tensor();
    auto y = fancy::avg_pool2d(x, fancy::AvgPool2dOptions(3).stride(2).padding(1));
    (y * y).sum().backward();
    return std::make_pair(y.detach(), x.grad().clone());
  };
  auto [y1, g1] = run(1);
  auto [y2, g2] = run(2);
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(g1, g2));
}

}  // namespace
