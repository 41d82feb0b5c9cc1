#include "fancy/nn/downsample.h"

#include "fancy/nn/fancy_pool.h"
#include "fancy/nn/pool.h"

namespace fancy {
namespace nn {

const std::vector<std::string>& downsample_pool_names() {
  static const std::vector<std::string> names{"max", "min", "avg", "l2", "soft", "stochastic", "mixed"};
  return names;
}

torch::nn::AnyModule make_downsample_pool(const std::string& name, int64_t kernel, int64_t channels) {
  TORCH_CHECK(kernel >= 1, "make_downsample_pool: kernel (", kernel, ") must be at least 1");
  if (name == "max") return torch::nn::AnyModule(MaxPool2d(MaxPool2dOptions(kernel)));
  if (name == "min") return torch::nn::AnyModule(MinPool2d(MinPool2dOptions(kernel)));
  if (name == "avg") return torch::nn::AnyModule(AvgPool2d(AvgPool2dOptions(kernel)));
  if (name == "l2") return torch::nn::AnyModule(LPPool2d(LPPool2dOptions(2.0, kernel)));
  if (name == "soft") return torch::nn::AnyModule(SoftPool2d(WindowOptions<2>(kernel)));
  if (name == "stochastic") return torch::nn::AnyModule(StochasticPool2d(WindowOptions<2>(kernel)));
  if (name == "mixed") return torch::nn::AnyModule(MixedPool2d(WindowOptions<2>(kernel), channels));
  std::string known;
  for (const auto& n : downsample_pool_names()) known += (known.empty() ? "" : ", ") + n;
  TORCH_CHECK(false, "make_downsample_pool: pool '", name, "' is not one of ", known);
}

}  // namespace nn
}  // namespace fancy
