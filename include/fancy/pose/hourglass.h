#pragma once
// Stacked Hourglass networks (Newell, Yang and Deng 2016), as pose-hg-train builds them.
//
// A hourglass of order n is a residual U-Net: the upper branch keeps the resolution
// (residual modules), the lower branch pools 2×2, runs residuals, a hourglass of order
// n − 1 (a residual at n = 1) and residuals, and is up-sampled ×2 (nearest) and added to
// the upper branch — n adds in all. Stem: 7×7/2 conv + BN + ReLU, Residual(64→128),
// pool 2×2, Residual(128→128), Residual(128→F): a 256 px image gives 64 px maps. Each
// stack ends in residuals, a 1×1 conv + BN + ReLU and a 1×1 conv to one heatmap per
// joint; between stacks x ← x + 1×1(features) + 1×1(heatmaps). Every stack's heatmaps
// are returned (intermediate supervision).
//
// Weights and activations are channels-last (NHWC), oneDNN's own layout, so no reorder
// runs around each convolution; bf16 = true runs the convolutions in bfloat16 (figures in
// docs/benchmarks.md).
//
//   fancy::pose::StackedHourglass net(fancy::pose::HourglassOptions().stacks(2).features(128));
//   std::vector<torch::Tensor> heatmaps = net->forward(images);  // one (N, J, H/4, W/4) per stack
#include <torch/torch.h>

#include <string>
#include <vector>

namespace fancy::pose {

struct HourglassOptions {
  TORCH_ARG(int64_t, stacks) = 8;
  TORCH_ARG(int64_t, order) = 4;      // depth of the recursion (pooling steps inside a hourglass)
  TORCH_ARG(int64_t, features) = 256;  // F: channels inside the hourglasses
  TORCH_ARG(int64_t, residuals) = 1;  // residual modules per level and branch (nModules)
  TORCH_ARG(int64_t, joints) = 17;
  TORCH_ARG(int64_t, input_size) = 256;  // square input; heatmaps are input_size / 4
  // Every 2×2 down-sampling (stem and hourglasses): a name of
  // fancy::nn::make_downsample_pool (max, min, avg, l2, soft, stochastic, mixed).
  TORCH_ARG(std::string, pool) = "max";
  // Convolutions in bfloat16 (autocast; weights, batch-norm statistics, pools and the
  // returned heatmaps stay float32). Worth it where fancy::nn::native_bf16() holds.
  TORCH_ARG(bool, bf16) = false;
};

// Pre-activation bottleneck: BN-ReLU-1×1(in→out/2), BN-ReLU-3×3, BN-ReLU-1×1(→out);
// the skip is the identity when in = out, else a 1×1 conv.
class ResidualImpl : public torch::nn::Module {
 public:
  ResidualImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, skip{nullptr};
};
TORCH_MODULE(Residual);

class HourglassImpl : public torch::nn::Module {
 public:
  HourglassImpl(int64_t order, int64_t features, int64_t residuals, const std::string& pool);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Sequential upper{nullptr}, before{nullptr}, after{nullptr};
  torch::nn::AnyModule pool;
  std::shared_ptr<HourglassImpl> inner;  // order > 1
  torch::nn::Sequential bottom{nullptr};  // order == 1
};
TORCH_MODULE(Hourglass);

class StackedHourglassImpl : public torch::nn::Module {
 public:
  explicit StackedHourglassImpl(HourglassOptions options = {});
  // images (N, 3, S, S) with S = input_size → heatmaps of every stack, (N, joints, S/4, S/4).
  std::vector<torch::Tensor> forward(const torch::Tensor& images);
  const HourglassOptions& options() const { return options_; }

 private:
  HourglassOptions options_;
  torch::nn::Sequential stem{nullptr};
  torch::nn::AnyModule stem_pool;
  torch::nn::Sequential stem_tail{nullptr};
  torch::nn::ModuleList hourglasses{nullptr}, heads{nullptr}, to_heatmaps{nullptr}, merge_features{nullptr},
      merge_heatmaps{nullptr};
};
TORCH_MODULE(StackedHourglass);

// Trainable parameters (batch-norm affine included).
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace fancy::pose
