#pragma once
// fancy pooling, the "fancy" family: SoftPool, LIP, stochastic, mixed and gated, sort,
// k-max and dynamic k-max, GeM, spatial pyramid, GaitSet's set and horizontal pyramid
// pooling. Each function calls `torch.ops.fancy.<name>` through the dispatcher, so C++,
// the nn modules (fancy/nn/fancy_pool.h) and Python reach the same kernel. Formulas,
// references and conventions: docs/pooling.md.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>
#include <torch/expanding_array.h>

#include <string>
#include <tuple>
#include <vector>

namespace fancy {

// Windows of the fancy window ops: average pooling's rules (stride defaults to the
// kernel, padding ≤ kernel/2, padded cells excluded from every sum).
template <size_t D>
struct WindowOptions {
  WindowOptions(torch::ExpandingArray<D> kernel_size)  // NOLINT: implicit like LibTorch
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  TORCH_ARG(torch::ExpandingArray<D>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<D>, stride);
  TORCH_ARG(torch::ExpandingArray<D>, padding) = 0;
  TORCH_ARG(bool, ceil_mode) = false;
};

// SoftPool: Σ softmax(x)_i x_i over each window (window maximum subtracted first).
template <size_t D>
at::Tensor soft_pool(const at::Tensor& x, const WindowOptions<D>& o);
// LIP: Σ x·e^logit / Σ e^logit over each window; gradients to x and logits.
at::Tensor lip_pool2d(const at::Tensor& x, const at::Tensor& logits, const WindowOptions<2>& o);
// Stochastic pooling: training samples a_i with p = a/Σa (from `generator`) and returns
// (values, indices usable by max_unpool; empty when return_indices is false); evaluation
// returns (Σa²/Σa, empty).
template <size_t D>
std::tuple<at::Tensor, at::Tensor> stochastic_pool(const at::Tensor& x, const WindowOptions<D>& o, bool training,
                                                   c10::optional<at::Generator> generator = c10::nullopt,
                                                   bool return_indices = true);
// α·max + (1 − α)·avg; α scalar or per channel, or `random` 0/1 per output in training.
template <size_t D>
at::Tensor mixed_pool(const at::Tensor& x, const at::Tensor& alpha, const WindowOptions<D>& o, bool training = false,
                      bool random = false, c10::optional<at::Generator> generator = c10::nullopt);
// σ(ωᵀx_R)·max + (1 − σ)·avg with a k×k gate ω.
at::Tensor gated_pool2d(const at::Tensor& x, const at::Tensor& gate, const WindowOptions<2>& o);
// Each window sorted descending; top len(weights) values weighted by softmax(weights).
at::Tensor sort_pool2d(const at::Tensor& x, const at::Tensor& weights, torch::ExpandingArray<2> kernel_size,
                       c10::optional<torch::ExpandingArray<2>> stride = c10::nullopt, bool softmax = true);
// The k largest values along dim in their original order, and their positions.
std::tuple<at::Tensor, at::Tensor> kmax_pool(const at::Tensor& x, int64_t k, int64_t dim = -1);
// DCNN: k = max(k_top, ceil((L − l)/L · s)) per sequence; returns (values, indices, kept
// lengths); shorter outputs are padded with 0 and index −1.
std::tuple<at::Tensor, at::Tensor, at::Tensor> dynamic_kmax_pool(const at::Tensor& x, int64_t layer,
                                                                 int64_t num_layers, int64_t k_top,
                                                                 const c10::optional<at::Tensor>& lengths = c10::nullopt,
                                                                 int64_t dim = -1);
// GeM: avg(clamp(x, eps)^p)^(1/p), global (no kernel) or windowed.
at::Tensor gem_pool(const at::Tensor& x, const at::Tensor& p, double eps = 1e-6,
                    c10::optional<std::vector<int64_t>> kernel_size = c10::nullopt,
                    c10::optional<std::vector<int64_t>> stride = c10::nullopt, bool keepdim = false);
// Fixed-length (N, C·Σn²) features for any input size; mode "max" or "avg".
at::Tensor spatial_pyramid_pool2d(const at::Tensor& x, std::vector<int64_t> levels, const std::string& mode = "max");
// max / mean / median over the set dim; each sample over its first lengths[b] elements.
at::Tensor set_pool(const at::Tensor& x, int64_t dim = 1, const std::string& mode = "max",
                    const c10::optional<at::Tensor>& lengths = c10::nullopt);
// GaitSet's horizontal pyramid: mean + max of each of b horizontal strips, for each b.
at::Tensor horizontal_pyramid_pool(const at::Tensor& x, std::vector<int64_t> bins = {1, 2, 4, 8, 16});

}  // namespace fancy
