// Autograd of the group ops (schemas in src/ops/group.cpp). Gradients are computed with
// the ops themselves, one pass over the weight each:
//   ∂‖w_g‖₂/∂w_i = w_i / ‖w_g‖₂ (0 for a zero group: the subgradient of least norm)
//   ∂‖w_g‖₁/∂w_i = sign(w_i)
//   ∂‖w_g‖∞/∂w_i = sign(w_i) / n_g on the n_g elements where |w_i| = ‖w_g‖∞ (as torch's
//                  amax spreads ties), else 0
//   group_scale: ∂/∂w = group_scale(grad, scale), ∂/∂scale_g = Σ_{i∈g} grad_i · w_i
#include "ops/autograd/autograd_common.h"
#include "ops/op_handle.h"

#include <ATen/ops/ones_like.h>
#include <ATen/ops/where.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>

namespace fancy {
namespace ops {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

Tensor call_norms(const Tensor& w, const std::string& groups, double p, bool ragged) {
  static auto op = op_handle<Tensor(const Tensor&, c10::string_view, double, bool)>("group_norms");
  return op.call(w, groups, p, ragged);
}
Tensor call_sum(const Tensor& w, const std::string& groups, bool ragged) {
  static auto op = op_handle<Tensor(const Tensor&, c10::string_view, bool)>("group_sum");
  return op.call(w, groups, ragged);
}
Tensor call_scale(const Tensor& w, const Tensor& s, const std::string& groups, bool ragged) {
  static auto op = op_handle<Tensor(const Tensor&, const Tensor&, c10::string_view, bool)>("group_scale");
  return op.call(w, s, groups, ragged);
}

struct GroupNormsFunction : torch::autograd::Function<GroupNormsFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& w, const std::string& groups, double p, bool ragged) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor norms = call_norms(w, groups, p, ragged);
    ctx->save_for_backward({w, norms});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["p"] = p;
    ctx->saved_data["ragged"] = ragged;
    return norms;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("group_norms");
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto v = ctx->get_saved_variables();
    const Tensor &w = v[0], &norms = v[1], &g = grads[0];
    const std::string groups = ctx->saved_data["groups"].toStringRef();
    const double p = ctx->saved_data["p"].toDouble();
    const bool ragged = ctx->saved_data["ragged"].toBool();
    Tensor gw;
    if (p == 2) {
      gw = call_scale(w, at::where(norms > 0, g / norms, at::zeros_like(norms)), groups, ragged);
    } else if (p == 1) {
      gw = call_scale(w.sign(), g, groups, ragged);
    } else {
      const Tensor at_max = (w.abs() == call_scale(at::ones_like(w), norms, groups, ragged)).to(w.scalar_type());
      const Tensor count = call_sum(at_max, groups, ragged);
      gw = call_scale(w.sign() * at_max, g / count, groups, ragged);
    }
    return {gw, Tensor(), Tensor(), Tensor()};
  }
};

struct GroupSumFunction : torch::autograd::Function<GroupSumFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& w, const std::string& groups, bool ragged) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({w});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["ragged"] = ragged;
    return call_sum(w, groups, ragged);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("group_sum");
    at::AutoDispatchBelowADInplaceOrView guard;
    const Tensor w = ctx->get_saved_variables()[0];
    return {call_scale(at::ones_like(w), grads[0], ctx->saved_data["groups"].toStringRef(),
                       ctx->saved_data["ragged"].toBool()),
            Tensor(), Tensor()};
  }
};

struct GroupScaleFunction : torch::autograd::Function<GroupScaleFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& w, const Tensor& s, const std::string& groups,
                        bool ragged) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({w, s});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["ragged"] = ragged;
    return call_scale(w, s, groups, ragged);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("group_scale");
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto v = ctx->get_saved_variables();
    const std::string groups = ctx->saved_data["groups"].toStringRef();
    const bool ragged = ctx->saved_data["ragged"].toBool();
    Tensor gw, gs;
    if (ctx->needs_input_grad(0)) gw = call_scale(grads[0], v[1], groups, ragged);
    if (ctx->needs_input_grad(1)) gs = call_sum(grads[0] * v[0], groups, ragged).to(v[1].scalar_type());
    return {gw, gs, Tensor(), Tensor()};
  }
};

Tensor group_norms(const Tensor& w, c10::string_view groups, double p, bool ragged) {
  return GroupNormsFunction::apply(w, std::string(groups), p, ragged);
}
Tensor group_sum(const Tensor& w, c10::string_view groups, bool ragged) {
  return GroupSumFunction::apply(w, std::string(groups), ragged);
}
Tensor group_scale(const Tensor& w, const Tensor& s, c10::string_view groups, bool ragged) {
  return GroupScaleFunction::apply(w, s, std::string(groups), ragged);
}

// The in-place form is for updates outside the graph (proximal steps, thresholding).
Tensor& group_scale_(Tensor& w, const Tensor& s, c10::string_view groups, bool ragged) {
  TORCH_CHECK(!at::GradMode::is_enabled() || !(w.requires_grad() || s.requires_grad()), "fancy::group_scale_: ",
              "an in-place update of a tensor that requires grad must run under no_grad (torch::NoGradGuard); "
              "use group_scale inside a graph");
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = op_handle<Tensor&(Tensor&, const Tensor&, c10::string_view, bool)>("group_scale_");
    op.call(w, s, groups, ragged);
  }
  w.unsafeGetTensorImpl()->bump_version();  // as ADInplaceOrView would for an in-place op
  return w;
}

// Writes a gradient, outside any graph: the weight may require grad, grad may not.
double group_lasso_grad_(Tensor& grad, const Tensor& w, c10::string_view groups, double scale, bool size_weighted,
                         bool ragged) {
  TORCH_CHECK(!at::GradMode::is_enabled() || !grad.requires_grad(), "fancy::group_lasso_grad_: grad must not ",
              "require grad (pass the weight's .grad, or run under no_grad)");
  double penalty;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = op_handle<double(Tensor&, const Tensor&, c10::string_view, double, bool, bool)>(
        "group_lasso_grad_");
    penalty = op.call(grad, w.detach(), groups, scale, size_weighted, ragged);
  }
  grad.unsafeGetTensorImpl()->bump_version();
  return penalty;
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, Autograd, m) {
  m.impl("group_norms", TORCH_FN(group_norms));
  m.impl("group_sum", TORCH_FN(group_sum));
  m.impl("group_scale", TORCH_FN(group_scale));
  m.impl("group_scale_", TORCH_FN(group_scale_));
  m.impl("group_lasso_grad_", TORCH_FN(group_lasso_grad_));
}

}  // namespace ops
}  // namespace fancy
