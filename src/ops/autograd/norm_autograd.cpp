// Autograd of batch_norm_relu (schemas in src/ops/norm.cpp): the forward op returns the
// statistics the backward op needs; the running statistics are buffers, never
// differentiated.
#include "ops/autograd/autograd_common.h"
#include "ops/op_handle.h"

#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <tuple>

namespace fancy {
namespace ops {
namespace {

using at::Tensor;
using OptTensor = c10::optional<Tensor>;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool requires_grad(const OptTensor& t) { return t.has_value() && t->defined() && t->requires_grad(); }

// Optional tensors stay optional: autograd::Function skips an absent one (an undefined
// Tensor argument would not do).
struct BatchNormReluFunction : torch::autograd::Function<BatchNormReluFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const OptTensor& running_mean,
                        const OptTensor& running_var, const OptTensor& weight, const OptTensor& bias, bool training,
                        double momentum, double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = op_handle<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const OptTensor&, const OptTensor&,
                                                                  const OptTensor&, const OptTensor&, bool, double,
                                                                  double)>("batch_norm_relu_forward");
    auto [y, mean, invstd] = op.call(x, running_mean, running_var, weight, bias, training, momentum, eps);
    ctx->save_for_backward({x, y, weight.value_or(Tensor()), mean, invstd});
    ctx->saved_data["training"] = training;
    // Which gradients to compute (needs_input_grad counts only the tensors given).
    ctx->saved_data["weight_grad"] = requires_grad(weight);
    ctx->saved_data["bias_grad"] = requires_grad(bias);
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("batch_norm_relu");
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto v = ctx->get_saved_variables();
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->saved_data["weight_grad"].toBool(),
                                   ctx->saved_data["bias_grad"].toBool()};
    static auto op = op_handle<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                                  const OptTensor&, const Tensor&, const Tensor&, bool,
                                                                  std::array<bool, 3>)>("batch_norm_relu_backward");
    const OptTensor weight = v[2].defined() ? OptTensor(v[2]) : c10::nullopt;
    auto [gx, gw, gb] = op.call(grads[0], v[0], v[1], weight, v[3], v[4], ctx->saved_data["training"].toBool(), mask);
    return {gx, Tensor(), Tensor(), gw, gb, Tensor(), Tensor(), Tensor()};
  }
};

Tensor batch_norm_relu(const Tensor& x, const OptTensor& running_mean, const OptTensor& running_var,
                       const OptTensor& weight, const OptTensor& bias, bool training, double momentum, double eps) {
  return BatchNormReluFunction::apply(x, running_mean, running_var, weight, bias, training, momentum, eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, Autograd, m) { m.impl("batch_norm_relu", TORCH_FN(batch_norm_relu)); }

}  // namespace ops
}  // namespace fancy
