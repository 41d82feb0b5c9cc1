#pragma once
// torch::nn-style modules for fancy's pooling ops, with chained options:
//   fancy::nn::MaxPool2d pool(fancy::nn::MaxPool2dOptions(3).stride(2));
//   auto y = pool(x);
#include "fancy/pool.h"

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <ostream>

namespace fancy {
namespace nn {

using fancy::AvgPool1dOptions;
using fancy::AvgPool2dOptions;
using fancy::AvgPool3dOptions;
using fancy::LPPool1dOptions;
using fancy::LPPool2dOptions;
using fancy::LPPool3dOptions;
using fancy::MaxPool1dOptions;
using fancy::MaxPool2dOptions;
using fancy::MaxPool3dOptions;
using fancy::MaxUnpool1dOptions;
using fancy::MaxUnpool2dOptions;
using fancy::MaxUnpool3dOptions;
using fancy::MinPool1dOptions;
using fancy::MinPool2dOptions;
using fancy::MinPool3dOptions;

namespace detail {
template <size_t D>
std::ostream& print_array(std::ostream& s, const torch::ExpandingArray<D>& a) {
  s << "[";
  for (size_t i = 0; i < D; ++i) s << (i ? ", " : "") << (*a)[i];
  return s << "]";
}
}  // namespace detail

// Max or min pooling (Min = true) with the same window options.
template <size_t D, bool Min>
class ExtremumPoolImpl : public torch::nn::Cloneable<ExtremumPoolImpl<D, Min>> {
 public:
  explicit ExtremumPoolImpl(MaxPoolOptions<D> options) : options(std::move(options)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) {
    return Min ? fancy::min_pool<D>(x, options) : fancy::max_pool<D>(x, options);
  }
  std::tuple<at::Tensor, at::Tensor> forward_with_indices(const at::Tensor& x) {
    return Min ? fancy::min_pool_with_indices<D>(x, options)
               : fancy::max_pool_with_indices<D>(x, options);
  }
  void pretty_print(std::ostream& s) const override {
    s << "fancy::nn::" << (Min ? "MinPool" : "MaxPool") << D << "d(kernel_size=";
    detail::print_array(s, options.kernel_size()) << ", stride=";
    detail::print_array(s, options.stride()) << ", padding=";
    detail::print_array(s, options.padding()) << ")";
  }
  MaxPoolOptions<D> options;
};

template <size_t D>
class AvgPoolImpl : public torch::nn::Cloneable<AvgPoolImpl<D>> {
 public:
  explicit AvgPoolImpl(AvgPoolOptions<D> options) : options(std::move(options)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return fancy::avg_pool<D>(x, options); }
  void pretty_print(std::ostream& s) const override {
    s << "fancy::nn::AvgPool" << D << "d(kernel_size=";
    detail::print_array(s, options.kernel_size()) << ")";
  }
  AvgPoolOptions<D> options;
};

template <size_t D>
class LPPoolImpl : public torch::nn::Cloneable<LPPoolImpl<D>> {
 public:
  explicit LPPoolImpl(LPPoolOptions<D> options) : options(std::move(options)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return fancy::lp_pool<D>(x, options); }
  void pretty_print(std::ostream& s) const override {
    s << "fancy::nn::LPPool" << D << "d(norm_type=" << options.norm_type() << ", kernel_size=";
    detail::print_array(s, options.kernel_size()) << ")";
  }
  LPPoolOptions<D> options;
};

template <size_t D>
class AdaptiveAvgPoolImpl : public torch::nn::Cloneable<AdaptiveAvgPoolImpl<D>> {
 public:
  explicit AdaptiveAvgPoolImpl(torch::ExpandingArray<D> output_size) : output_size(output_size) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return fancy::adaptive_avg_pool<D>(x, output_size); }
  void pretty_print(std::ostream& s) const override {
    s << "fancy::nn::AdaptiveAvgPool" << D << "d(output_size=";
    detail::print_array(s, output_size) << ")";
  }
  torch::ExpandingArray<D> output_size;
};

template <size_t D>
class AdaptiveMaxPoolImpl : public torch::nn::Cloneable<AdaptiveMaxPoolImpl<D>> {
 public:
  explicit AdaptiveMaxPoolImpl(torch::ExpandingArray<D> output_size) : output_size(output_size) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) {
    return std::get<0>(fancy::adaptive_max_pool<D>(x, output_size));
  }
  std::tuple<at::Tensor, at::Tensor> forward_with_indices(const at::Tensor& x) {
    return fancy::adaptive_max_pool<D>(x, output_size);
  }
  void pretty_print(std::ostream& s) const override {
    s << "fancy::nn::AdaptiveMaxPool" << D << "d(output_size=";
    detail::print_array(s, output_size) << ")";
  }
  torch::ExpandingArray<D> output_size;
};

template <size_t D>
class MaxUnpoolImpl : public torch::nn::Cloneable<MaxUnpoolImpl<D>> {
 public:
  explicit MaxUnpoolImpl(MaxUnpoolOptions<D> options) : options(std::move(options)) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x, const at::Tensor& indices,
                     const c10::optional<std::vector<int64_t>>& output_size = c10::nullopt) {
    MaxUnpoolOptions<D> o = options;
    if (output_size) o.output_size(output_size);
    return fancy::max_unpool<D>(x, indices, o);
  }
  void pretty_print(std::ostream& s) const override {
    s << "fancy::nn::MaxUnpool" << D << "d(kernel_size=";
    detail::print_array(s, options.kernel_size()) << ")";
  }
  MaxUnpoolOptions<D> options;
};

// Global pooling over every dim after (N, C); keepdim keeps them as size 1.
template <bool Max>
class GlobalPoolImpl : public torch::nn::Cloneable<GlobalPoolImpl<Max>> {
 public:
  explicit GlobalPoolImpl(bool keepdim = false) : keepdim(keepdim) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) {
    return Max ? fancy::global_max_pool(x, keepdim) : fancy::global_avg_pool(x, keepdim);
  }
  void pretty_print(std::ostream& s) const override {
    s << "fancy::nn::Global" << (Max ? "Max" : "Avg") << "Pool(keepdim=" << keepdim << ")";
  }
  bool keepdim;
};

#define FANCY_POOL_MODULES(D)                                            \
  TORCH_MODULE_IMPL(MaxPool##D##d, ExtremumPoolImpl<D FANCY_COMMA false>); \
  TORCH_MODULE_IMPL(MinPool##D##d, ExtremumPoolImpl<D FANCY_COMMA true>);  \
  TORCH_MODULE_IMPL(AvgPool##D##d, AvgPoolImpl<D>);                        \
  TORCH_MODULE_IMPL(LPPool##D##d, LPPoolImpl<D>);                          \
  TORCH_MODULE_IMPL(AdaptiveAvgPool##D##d, AdaptiveAvgPoolImpl<D>);        \
  TORCH_MODULE_IMPL(AdaptiveMaxPool##D##d, AdaptiveMaxPoolImpl<D>);        \
  TORCH_MODULE_IMPL(MaxUnpool##D##d, MaxUnpoolImpl<D>)
#define FANCY_COMMA ,
FANCY_POOL_MODULES(1);
FANCY_POOL_MODULES(2);
FANCY_POOL_MODULES(3);
#undef FANCY_POOL_MODULES
#undef FANCY_COMMA
TORCH_MODULE_IMPL(GlobalAvgPool, GlobalPoolImpl<false>);
TORCH_MODULE_IMPL(GlobalMaxPool, GlobalPoolImpl<true>);

}  // namespace nn
}  // namespace fancy
