#pragma once
// What the autograd kernels of fancy's ops share.
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <string>

namespace fancy {
namespace ops {

// Backward kernels compute gradients with the ops' own backward kernels, which have no
// autograd of their own: asking for a second derivative is an error that says so.
inline void refuse_double_backward(const std::string& op) {
  TORCH_CHECK(!at::GradMode::is_enabled(), "fancy::", op, ": double backward (create_graph=True) is not supported");
}

// For a Function whose extra outputs (indices, ranks, statistics) are not differentiable.
// By default autograd hands backward a zero tensor for each output without a gradient —
// for int64 indices twice the pooled output's size, allocated and cleared on every
// backward (measured: stochastic pooling's backward held 24.5 MB more than its result).
// Its backward then sees an undefined grads[0] only when nothing flows back at all.
inline void pass_undefined_grads(torch::autograd::AutogradContext* ctx) { ctx->set_materialize_grads(false); }

}  // namespace ops
}  // namespace fancy
