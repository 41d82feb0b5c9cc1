// The group ops' schemas (declared once, here) and their C++ entry points
// (include/fancy/regularize.h). CPU: ops/cpu/group_dispatch.cpp (loops in group_kernels.cpp); autograd:
// ops/autograd/group_autograd.cpp; group specs: ops/group_spec.h.
#include "fancy/regularize.h"
#include "ops/group_spec.h"
#include "ops/op_handle.h"

#include <torch/library.h>

namespace {

// The grid of groups of a weight of this shape (no tensor: a shape check callers can
// make before touching the weight).
std::vector<int64_t> group_grid(std::vector<int64_t> shape, c10::string_view groups, bool ragged) {
  return fancy::ops::group_grid(shape, fancy::ops::group_block("group_grid", shape, std::string(groups), ragged));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fancy, m) {
  m.def("group_grid(int[] shape, str groups=\"filters\", bool ragged=False) -> int[]", TORCH_FN(group_grid));
  // ‖w_g‖_p for every group g (p = 1, 2 or inf), shaped as the grid of groups.
  m.def("group_norms(Tensor self, str groups=\"filters\", float p=2, bool ragged=False) -> Tensor");
  // Σ_{i∈g} w_i for every group g, shaped as the grid of groups.
  m.def("group_sum(Tensor self, str groups=\"filters\", bool ragged=False) -> Tensor");
  // w_i · scale[g(i)]: every group multiplied by its own factor (scale has the grid's shape).
  m.def("group_scale(Tensor self, Tensor scale, str groups=\"filters\", bool ragged=False) -> Tensor");
  m.def("group_scale_(Tensor(a!) self, Tensor scale, str groups=\"filters\", bool ragged=False) -> Tensor(a!)");
  // grad += scale · ∂/∂self Σ_g c_g ‖self_g‖₂ in place, fused (no graph, no temporary the
  // size of self); returns scale · Σ_g c_g ‖self_g‖₂. c_g = √|g| when size_weighted.
  m.def("group_lasso_grad_(Tensor(a!) grad, Tensor self, str groups=\"filters\", float scale=1, "
        "bool size_weighted=False, bool ragged=False) -> float");
}

namespace fancy {
namespace regularize {

using at::Tensor;

Tensor group_norms(const Tensor& w, const std::string& groups, double p, bool ragged) {
  static auto op = ops::op_handle<Tensor(const Tensor&, c10::string_view, double, bool)>("group_norms");
  return op.call(w, groups, p, ragged);
}

Tensor group_sum(const Tensor& w, const std::string& groups, bool ragged) {
  static auto op = ops::op_handle<Tensor(const Tensor&, c10::string_view, bool)>("group_sum");
  return op.call(w, groups, ragged);
}

Tensor group_scale(const Tensor& w, const Tensor& scale, const std::string& groups, bool ragged) {
  static auto op = ops::op_handle<Tensor(const Tensor&, const Tensor&, c10::string_view, bool)>("group_scale");
  return op.call(w, scale, groups, ragged);
}

Tensor& group_scale_(Tensor& w, const Tensor& scale, const std::string& groups, bool ragged) {
  static auto op = ops::op_handle<Tensor&(Tensor&, const Tensor&, c10::string_view, bool)>("group_scale_");
  return op.call(w, scale, groups, ragged);
}

double add_group_lasso_grad_(Tensor& grad, const Tensor& w, const std::string& groups, double scale,
                             bool size_weighted, bool ragged) {
  static auto op = ops::op_handle<double(Tensor&, const Tensor&, c10::string_view, double, bool, bool)>(
      "group_lasso_grad_");
  return op.call(grad, w, groups, scale, size_weighted, ragged);
}

}  // namespace regularize
}  // namespace fancy
