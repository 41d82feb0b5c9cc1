#pragma once
// batch_norm_relu: batch normalisation followed by ReLU as one operator — the
// "BN → ReLU" that opens every pre-activation residual block (ResNet v2, the stacked
// hourglass). Same results as torch::batch_norm then relu (running statistics updated
// the same way: unbiased variance, momentum), in two passes over the data forward and
// two backward where the pair of ATen ops takes five and four, and no intermediate
// tensor. float32, float64 and bfloat16 input (bfloat16 with float32 weights, as CPU
// autocast leaves them), contiguous or channels-last; docs/pose.md has the formulas.
//
//   auto y = fancy::batch_norm_relu(x, bn->running_mean, bn->running_var, bn->weight, bn->bias,
//                                   /*training=*/true);
//   auto y = fancy::nn::batch_norm_relu(*bn, x);  // a torch::nn::BatchNorm2d's parameters and mode
#include <ATen/core/Tensor.h>
#include <torch/nn/modules/batchnorm.h>

namespace fancy {

// Mirrors torch.nn.functional.batch_norm(input, running_mean, running_var, weight, bias,
// training, momentum, eps), then ReLU. In training the running statistics (when given)
// are updated in place; in evaluation they are used and must be given.
at::Tensor batch_norm_relu(const at::Tensor& input, const at::Tensor& running_mean, const at::Tensor& running_var,
                           const at::Tensor& weight = {}, const at::Tensor& bias = {}, bool training = false,
                           double momentum = 0.1, double eps = 1e-5);

namespace nn {

// relu(bn(x)) in one operator, with bn's parameters, buffers, momentum, eps and mode
// (num_batches_tracked counts as in bn.forward). Falls back to bn.forward + relu for
// what the fused op does not cover (a cumulative moving average: momentum unset).
// (A C++ module deriving from BatchNorm2dImpl does not link against Debian's libtorch —
// BatchNormImplBase<2>::pretty_print is not exported — so C++ code calls this on its
// BatchNorm2d; Python has fancy.nn.BatchNormReLU2d.)
at::Tensor batch_norm_relu(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x);

}  // namespace nn
}  // namespace fancy
