#pragma once
// fancy pooling: the classic family (max, min, average, Lp, adaptive, global, unpooling)
// as LibTorch operators with forward and backward. Every function here calls the op
// declared in the dispatcher (`torch.ops.fancy.<name>`), so C++, the nn modules and
// Python reach the same kernel. Semantics follow PyTorch's (docs/pooling.md).
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>
#include <torch/expanding_array.h>

#include <tuple>
#include <vector>

namespace fancy {

// Window options shared by max and min pooling: stride defaults to kernel_size.
template <size_t D>
struct MaxPoolOptions {
  MaxPoolOptions(torch::ExpandingArray<D> kernel_size)  // NOLINT: implicit like LibTorch
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  TORCH_ARG(torch::ExpandingArray<D>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<D>, stride);
  TORCH_ARG(torch::ExpandingArray<D>, padding) = 0;
  TORCH_ARG(torch::ExpandingArray<D>, dilation) = 1;
  TORCH_ARG(bool, ceil_mode) = false;
};
using MaxPool1dOptions = MaxPoolOptions<1>;
using MaxPool2dOptions = MaxPoolOptions<2>;
using MaxPool3dOptions = MaxPoolOptions<3>;
template <size_t D>
using MinPoolOptions = MaxPoolOptions<D>;
using MinPool1dOptions = MinPoolOptions<1>;
using MinPool2dOptions = MinPoolOptions<2>;
using MinPool3dOptions = MinPoolOptions<3>;

template <size_t D>
struct AvgPoolOptions {
  AvgPoolOptions(torch::ExpandingArray<D> kernel_size)  // NOLINT
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  TORCH_ARG(torch::ExpandingArray<D>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<D>, stride);
  TORCH_ARG(torch::ExpandingArray<D>, padding) = 0;
  TORCH_ARG(bool, ceil_mode) = false;
  TORCH_ARG(bool, count_include_pad) = true;
  TORCH_ARG(c10::optional<int64_t>, divisor_override) = c10::nullopt;
};
using AvgPool1dOptions = AvgPoolOptions<1>;
using AvgPool2dOptions = AvgPoolOptions<2>;
using AvgPool3dOptions = AvgPoolOptions<3>;

// Lp pooling (Σ|x|^p · K/divisor)^(1/p), p > 0 or +inf (max of |x|); p = 2 is L2 pooling.
// As PyTorch: a window cut short by ceil_mode is scaled up to the full kernel volume K.
template <size_t D>
struct LPPoolOptions {
  LPPoolOptions(double norm_type, torch::ExpandingArray<D> kernel_size)
      : norm_type_(norm_type), kernel_size_(kernel_size), stride_(kernel_size) {}
  TORCH_ARG(double, norm_type);
  TORCH_ARG(torch::ExpandingArray<D>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<D>, stride);
  TORCH_ARG(bool, ceil_mode) = false;
  TORCH_ARG(torch::ExpandingArray<D>, padding) = 0;  // an extension: zeros, as avg_pool's
};
using LPPool1dOptions = LPPoolOptions<1>;
using LPPool2dOptions = LPPoolOptions<2>;
using LPPool3dOptions = LPPoolOptions<3>;

template <size_t D>
struct MaxUnpoolOptions {
  MaxUnpoolOptions(torch::ExpandingArray<D> kernel_size)  // NOLINT
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  TORCH_ARG(torch::ExpandingArray<D>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<D>, stride);
  TORCH_ARG(torch::ExpandingArray<D>, padding) = 0;
  // The unpooled spatial size (D values, or N, C and D values); default (in−1)·s − 2p + k.
  TORCH_ARG(c10::optional<std::vector<int64_t>>, output_size) = c10::nullopt;
};
using MaxUnpool1dOptions = MaxUnpoolOptions<1>;
using MaxUnpool2dOptions = MaxUnpoolOptions<2>;
using MaxUnpool3dOptions = MaxUnpoolOptions<3>;

// ---- functions (D = 1, 2, 3); `_with_indices` also returns int64 flat indices --------
template <size_t D> at::Tensor max_pool(const at::Tensor& x, const MaxPoolOptions<D>& o);
template <size_t D>
std::tuple<at::Tensor, at::Tensor> max_pool_with_indices(const at::Tensor& x, const MaxPoolOptions<D>& o);
template <size_t D> at::Tensor min_pool(const at::Tensor& x, const MinPoolOptions<D>& o);
template <size_t D>
std::tuple<at::Tensor, at::Tensor> min_pool_with_indices(const at::Tensor& x, const MinPoolOptions<D>& o);
template <size_t D> at::Tensor avg_pool(const at::Tensor& x, const AvgPoolOptions<D>& o);
template <size_t D> at::Tensor lp_pool(const at::Tensor& x, const LPPoolOptions<D>& o);
template <size_t D>
at::Tensor adaptive_avg_pool(const at::Tensor& x, torch::ExpandingArray<D> output_size);
template <size_t D>
std::tuple<at::Tensor, at::Tensor> adaptive_max_pool(const at::Tensor& x,
                                                     torch::ExpandingArray<D> output_size);
template <size_t D>
at::Tensor max_unpool(const at::Tensor& x, const at::Tensor& indices, const MaxUnpoolOptions<D>& o);

// Mean / max over every dim after (N, C), for any number of spatial dims.
at::Tensor global_avg_pool(const at::Tensor& x, bool keepdim = false);
at::Tensor global_max_pool(const at::Tensor& x, bool keepdim = false);

// Named forms, as torch::nn::functional spells them.
#define FANCY_POOL_NAMED(D)                                                                       \
  inline at::Tensor max_pool##D##d(const at::Tensor& x, const MaxPoolOptions<D>& o) {             \
    return max_pool<D>(x, o);                                                                     \
  }                                                                                               \
  inline std::tuple<at::Tensor, at::Tensor> max_pool##D##d_with_indices(                          \
      const at::Tensor& x, const MaxPoolOptions<D>& o) {                                          \
    return max_pool_with_indices<D>(x, o);                                                        \
  }                                                                                               \
  inline at::Tensor min_pool##D##d(const at::Tensor& x, const MinPoolOptions<D>& o) {             \
    return min_pool<D>(x, o);                                                                     \
  }                                                                                               \
  inline std::tuple<at::Tensor, at::Tensor> min_pool##D##d_with_indices(                          \
      const at::Tensor& x, const MinPoolOptions<D>& o) {                                          \
    return min_pool_with_indices<D>(x, o);                                                        \
  }                                                                                               \
  inline at::Tensor avg_pool##D##d(const at::Tensor& x, const AvgPoolOptions<D>& o) {             \
    return avg_pool<D>(x, o);                                                                     \
  }                                                                                               \
  inline at::Tensor lp_pool##D##d(const at::Tensor& x, const LPPoolOptions<D>& o) {               \
    return lp_pool<D>(x, o);                                                                      \
  }                                                                                               \
  inline at::Tensor adaptive_avg_pool##D##d(const at::Tensor& x, torch::ExpandingArray<D> s) {    \
    return adaptive_avg_pool<D>(x, s);                                                            \
  }                                                                                               \
  inline at::Tensor adaptive_max_pool##D##d(const at::Tensor& x, torch::ExpandingArray<D> s) {    \
    return std::get<0>(adaptive_max_pool<D>(x, s));                                               \
  }                                                                                               \
  inline std::tuple<at::Tensor, at::Tensor> adaptive_max_pool##D##d_with_indices(                 \
      const at::Tensor& x, torch::ExpandingArray<D> s) {                                          \
    return adaptive_max_pool<D>(x, s);                                                            \
  }                                                                                               \
  inline at::Tensor max_unpool##D##d(const at::Tensor& x, const at::Tensor& i,                    \
                                     const MaxUnpoolOptions<D>& o) {                              \
    return max_unpool<D>(x, i, o);                                                                \
  }
FANCY_POOL_NAMED(1)
FANCY_POOL_NAMED(2)
FANCY_POOL_NAMED(3)
#undef FANCY_POOL_NAMED

}  // namespace fancy
