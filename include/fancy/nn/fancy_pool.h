#pragma once
// torch::nn-style modules for the fancy pooling family, with chained options and their
// learnable parameters registered:
//   fancy::nn::SoftPool2d soft(fancy::WindowOptions<2>(2));
//   fancy::nn::GeM gem;                                   // p learnable, init 3
//   fancy::nn::MixedPool2d mix(fancy::WindowOptions<2>(2), /*channels=*/64);
#include "fancy/fancy_pool.h"

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace fancy {
namespace nn {

template <size_t D>
class SoftPoolImpl : public torch::nn::Cloneable<SoftPoolImpl<D>> {
 public:
  explicit SoftPoolImpl(WindowOptions<D> options) : options(std::move(options)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return fancy::soft_pool<D>(x, options); }
  WindowOptions<D> options;
};

// Samples in training mode (from `generator` when set), Σa²/Σa in eval mode.
template <size_t D>
class StochasticPoolImpl : public torch::nn::Cloneable<StochasticPoolImpl<D>> {
 public:
  explicit StochasticPoolImpl(WindowOptions<D> options, c10::optional<at::Generator> generator = c10::nullopt)
      : options(std::move(options)), generator(std::move(generator)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) {
    return std::get<0>(fancy::stochastic_pool<D>(x, options, this->is_training(), generator, false));
  }
  WindowOptions<D> options;
  c10::optional<at::Generator> generator;
};

// α·max + (1 − α)·avg with α learnable (one, or one per channel when channels > 0).
template <size_t D>
class MixedPoolImpl : public torch::nn::Cloneable<MixedPoolImpl<D>> {
 public:
  explicit MixedPoolImpl(WindowOptions<D> options, int64_t channels = 0, double alpha0 = 0.5)
      : options(std::move(options)), channels(channels), alpha0(alpha0) {
    reset();
  }
  void reset() override {
    alpha = this->register_parameter(
        "alpha", channels > 0 ? torch::full({channels}, alpha0) : torch::full({}, alpha0));
  }
  at::Tensor forward(const at::Tensor& x) { return fancy::mixed_pool<D>(x, alpha.to(x.dtype()), options); }
  WindowOptions<D> options;
  int64_t channels;
  double alpha0;
  at::Tensor alpha;
};

// GeM with a learnable p (init 3); global unless a kernel is given.
class GeMImpl : public torch::nn::Cloneable<GeMImpl> {
 public:
  explicit GeMImpl(double p0 = 3.0, double eps = 1e-6) : p0(p0), eps(eps) { reset(); }
  void reset() override { p = register_parameter("p", torch::full({}, p0)); }
  at::Tensor forward(const at::Tensor& x) { return fancy::gem_pool(x, p.to(x.dtype()), eps); }
  double p0, eps;
  at::Tensor p;
};

// sort_pool2d with `ranks` learnable weights (softmax-normalised, initially equal).
class SortPool2dImpl : public torch::nn::Cloneable<SortPool2dImpl> {
 public:
  SortPool2dImpl(int64_t kernel_size, int64_t ranks) : kernel_size(kernel_size), ranks(ranks) { reset(); }
  void reset() override { weights = register_parameter("weights", torch::zeros({ranks})); }
  at::Tensor forward(const at::Tensor& x) { return fancy::sort_pool2d(x, weights.to(x.dtype()), kernel_size); }
  int64_t kernel_size, ranks;
  at::Tensor weights;
};

// Gated max/avg mixing with a learnable k×k gate (initially 0: an even mix).
class GatedPool2dImpl : public torch::nn::Cloneable<GatedPool2dImpl> {
 public:
  explicit GatedPool2dImpl(WindowOptions<2> options) : options(std::move(options)) { reset(); }
  void reset() override {
    gate = register_parameter("gate", torch::zeros({(*options.kernel_size())[0], (*options.kernel_size())[1]}));
  }
  at::Tensor forward(const at::Tensor& x) { return fancy::gated_pool2d(x, gate.to(x.dtype()), options); }
  WindowOptions<2> options;
  at::Tensor gate;
};

class SpatialPyramidPool2dImpl : public torch::nn::Cloneable<SpatialPyramidPool2dImpl> {
 public:
  explicit SpatialPyramidPool2dImpl(std::vector<int64_t> levels = {1, 2, 4}, std::string mode = "max")
      : levels(std::move(levels)), mode(std::move(mode)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return fancy::spatial_pyramid_pool2d(x, levels, mode); }
  std::vector<int64_t> levels;
  std::string mode;
};

class HorizontalPyramidPoolImpl : public torch::nn::Cloneable<HorizontalPyramidPoolImpl> {
 public:
  explicit HorizontalPyramidPoolImpl(std::vector<int64_t> bins = {1, 2, 4, 8, 16}) : bins(std::move(bins)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return fancy::horizontal_pyramid_pool(x, bins); }
  std::vector<int64_t> bins;
};

#define FANCY_FANCY_MODULES(D)                          \
  using SoftPool##D##dImpl = SoftPoolImpl<D>;           \
  TORCH_MODULE(SoftPool##D##d);                         \
  using StochasticPool##D##dImpl = StochasticPoolImpl<D>; \
  TORCH_MODULE(StochasticPool##D##d);                   \
  using MixedPool##D##dImpl = MixedPoolImpl<D>;         \
  TORCH_MODULE(MixedPool##D##d);
FANCY_FANCY_MODULES(1)
FANCY_FANCY_MODULES(2)
FANCY_FANCY_MODULES(3)
#undef FANCY_FANCY_MODULES
TORCH_MODULE(GeM);
TORCH_MODULE(SortPool2d);
TORCH_MODULE(GatedPool2d);
TORCH_MODULE(SpatialPyramidPool2d);
TORCH_MODULE(HorizontalPyramidPool);

}  // namespace nn
}  // namespace fancy
