#include "fancy/pose/hourglass.h"

#include "fancy/nn/autocast.h"
#include "fancy/nn/downsample.h"
#include "fancy/norm.h"

namespace fancy::pose {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2));
}

torch::nn::Sequential residuals(int64_t n, int64_t features) {
  torch::nn::Sequential s;
  for (int64_t i = 0; i < n; ++i) s->push_back(Residual(features, features));
  return s;
}

// A Sequential with no modules is the identity (residuals = 0 is allowed).
torch::Tensor run(torch::nn::Sequential& s, const torch::Tensor& x) { return s->is_empty() ? x : s->forward(x); }

// fancy's pooling backward kernels are float32/float64: under bf16 autocast the pool
// runs on a float copy (a 2×2 pool is cheap next to the convolutions around it).
torch::Tensor pool_in_float(torch::nn::AnyModule& pool, const torch::Tensor& x) {
  if (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble) return pool.forward(x);
  return pool.forward(x.to(torch::kFloat)).to(x.scalar_type());
}

}  // namespace

ResidualImpl::ResidualImpl(int64_t in, int64_t out) {
  TORCH_CHECK(in >= 1 && out >= 2 && out % 2 == 0, "Residual: channels in (", in, ") and out (", out,
              ") must be positive, out even (the bottleneck has out / 2)");
  const int64_t mid = out / 2;
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(in));
  conv1 = register_module("conv1", conv(in, mid, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(mid));
  conv2 = register_module("conv2", conv(mid, mid, 3));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(mid));
  conv3 = register_module("conv3", conv(mid, out, 1));
  if (in != out) skip = register_module("skip", conv(in, out, 1));
}

torch::Tensor ResidualImpl::forward(const torch::Tensor& x) {
  // BN → ReLU as one fused op (fancy/norm.h): two passes over the map instead of five.
  auto y = conv1(fancy::nn::batch_norm_relu(*bn1, x));
  y = conv2(fancy::nn::batch_norm_relu(*bn2, y));
  y = conv3(fancy::nn::batch_norm_relu(*bn3, y));
  return y.add_(skip ? skip(x) : x);  // in place: a convolution's backward does not need its output
}

HourglassImpl::HourglassImpl(int64_t order, int64_t features, int64_t n, const std::string& pool_name) {
  TORCH_CHECK(order >= 1, "Hourglass: order (", order, ") must be at least 1");
  TORCH_CHECK(n >= 0, "Hourglass: residuals (", n, ") must be >= 0");
  upper = register_module("upper", residuals(n, features));
  pool = fancy::nn::make_downsample_pool(pool_name, 2, features);
  register_module("pool", pool.ptr());
  before = register_module("before", residuals(n, features));
  if (order > 1) {
    inner = std::make_shared<HourglassImpl>(order - 1, features, n, pool_name);
    register_module("inner", inner);
  } else {
    bottom = register_module("bottom", residuals(n, features));
  }
  after = register_module("after", residuals(n, features));
}

torch::Tensor HourglassImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.size(-1) % 2 == 0 && x.size(-2) % 2 == 0, "Hourglass: feature maps of ", x.size(-2), "×",
              x.size(-1), " cannot be halved; the input size must be divisible by 4·2^order");
  auto low = run(before, pool_in_float(pool, x));
  low = inner ? inner->forward(low) : run(bottom, low);
  low = run(after, low);
  const auto up = torch::upsample_nearest2d(low, {x.size(2), x.size(3)});
  return run(upper, x) + up;
}

StackedHourglassImpl::StackedHourglassImpl(HourglassOptions o) : options_(std::move(o)) {
  const int64_t F = options_.features(), J = options_.joints();
  TORCH_CHECK(options_.stacks() >= 1, "StackedHourglass: stacks (", options_.stacks(), ") must be at least 1");
  TORCH_CHECK(F >= 2 && F % 2 == 0, "StackedHourglass: features (", F, ") must be even and positive");
  TORCH_CHECK(J >= 1, "StackedHourglass: joints (", J, ") must be at least 1");
  const int64_t div = int64_t{4} << options_.order();
  TORCH_CHECK(options_.input_size() >= div && options_.input_size() % div == 0, "StackedHourglass: input_size (",
              options_.input_size(), ") must be a multiple of 4·2^order = ", div);
  stem = register_module("stem", torch::nn::Sequential(conv(3, 64, 7, 2), torch::nn::BatchNorm2d(64),
                                                       torch::nn::ReLU(), Residual(64, 128)));
  stem_pool = fancy::nn::make_downsample_pool(options_.pool(), 2, 128);
  register_module("stem_pool", stem_pool.ptr());
  stem_tail = register_module("stem_tail", torch::nn::Sequential(Residual(128, 128), Residual(128, F)));
  hourglasses = register_module("hourglasses", torch::nn::ModuleList());
  heads = register_module("heads", torch::nn::ModuleList());
  to_heatmaps = register_module("to_heatmaps", torch::nn::ModuleList());
  merge_features = register_module("merge_features", torch::nn::ModuleList());
  merge_heatmaps = register_module("merge_heatmaps", torch::nn::ModuleList());
  for (int64_t s = 0; s < options_.stacks(); ++s) {
    hourglasses->push_back(Hourglass(options_.order(), F, options_.residuals(), options_.pool()));
    auto head = residuals(options_.residuals(), F);
    head->push_back(conv(F, F, 1));
    head->push_back(torch::nn::BatchNorm2d(F));
    head->push_back(torch::nn::ReLU());
    heads->push_back(head);
    to_heatmaps->push_back(conv(F, J, 1));
    if (s + 1 < options_.stacks()) {
      merge_features->push_back(conv(F, F, 1));
      merge_heatmaps->push_back(conv(J, F, 1));
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

std::vector<torch::Tensor> StackedHourglassImpl::forward(const torch::Tensor& images) {
  const int64_t S = options_.input_size();
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == S && images.size(3) == S,
              "StackedHourglass: images must be (N, 3, ", S, ", ", S, "), got ", images.sizes());
  fancy::nn::CpuAutocast autocast(options_.bf16());
  auto x = stem->forward(images.contiguous(torch::MemoryFormat::ChannelsLast));
  x = stem_tail->forward(pool_in_float(stem_pool, x));
  std::vector<torch::Tensor> out;
  for (int64_t s = 0; s < options_.stacks(); ++s) {
    auto features = hourglasses[s]->as<Hourglass>()->forward(x);
    features = heads[s]->as<torch::nn::Sequential>()->forward(features);
    auto heatmaps = to_heatmaps[s]->as<torch::nn::Conv2d>()->forward(features);
    out.push_back(heatmaps.scalar_type() == torch::kBFloat16 ? heatmaps.to(torch::kFloat) : heatmaps);
    if (s + 1 < options_.stacks())
      x = x + merge_features[s]->as<torch::nn::Conv2d>()->forward(features) +
          merge_heatmaps[s]->as<torch::nn::Conv2d>()->forward(heatmaps);
  }
  return out;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace fancy::pose
