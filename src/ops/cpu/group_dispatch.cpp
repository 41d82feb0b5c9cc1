// CPU implementations of the group ops (schemas in src/ops/group.cpp): per-group
// reductions (sum, L1, L2, max-abs norms) and per-group scaling, in one pass over the
// weight. Argument checks and the weight's merged tile grid (ops/group_spec.h) here; the
// loops in group_kernels.cpp, for this machine's instruction set.
#include "ops/cpu/group_kernels.h"
#include "ops/cpu/pool_kernels.h"
#include "ops/group_spec.h"

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace fancy {
namespace ops {

const GroupKernels& cpu_group_kernels() {
  switch (cpu_isa()) {
    case CpuIsa::Avx512: return cpu_avx512::group_kernels;
    case CpuIsa::Avx2: return cpu_avx2::group_kernels;
    default: return cpu_default::group_kernels;
  }
}

GroupLayout merge_group_dims(c10::IntArrayRef shape, c10::IntArrayRef block) {
  std::vector<int64_t> s, b;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const bool whole = block[d] >= shape[d], single = block[d] == 1;
    if (!s.empty()) {
      const bool prev_whole = b.back() >= s.back(), prev_single = b.back() == 1;
      if ((whole && prev_whole) || (single && prev_single)) {
        s.back() *= shape[d];
        b.back() = whole ? s.back() : 1;
        continue;
      }
    }
    s.push_back(shape[d]);
    b.push_back(std::min(block[d], shape[d]));
  }
  if (s.empty()) {
    s.push_back(1);
    b.push_back(1);
  }
  GroupLayout L;
  const size_t n = s.size();
  L.size = s;
  L.block = b;
  L.stride.assign(n, 1);
  L.gstride.assign(n, 1);
  for (size_t d = n - 1; d > 0; --d) {
    L.stride[d - 1] = L.stride[d] * s[d];
    L.gstride[d - 1] = L.gstride[d] * ((s[d] + b[d] - 1) / b[d]);
  }
  L.groups = L.gstride[0] * ((s[0] + b[0] - 1) / b[0]);
  return L;
}

namespace {

using at::Tensor;
using Mode = GroupReduce;

// The kernel for x's dtype (float32 or float64, checked by the callers).
void reduce_into(const Tensor& x, double* out, const GroupLayout& L, Mode mode) {
  const auto& k = cpu_group_kernels();
  if (x.scalar_type() == at::kFloat)
    k.reduce_float(x.data_ptr<float>(), out, L, mode);
  else
    k.reduce_double(x.data_ptr<double>(), out, L, mode);
}

void check_weight(const char* op, const Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "fancy::", op,
              ": self must be float32 or float64, got ", x.scalar_type());
}

Tensor reduce(const char* op, const Tensor& self, const std::string& groups, bool ragged, Mode mode) {
  check_weight(op, self);
  const auto block = group_block(op, self.sizes(), groups, ragged);
  const auto grid = group_grid(self.sizes(), block);
  if (self.numel() == 0) return at::zeros(grid, self.options());
  const Tensor x = self.contiguous();
  const GroupLayout L = merge_group_dims(x.sizes(), block);
  Tensor acc = at::empty({L.groups}, x.options().dtype(at::kDouble));
  reduce_into(x, acc.data_ptr<double>(), L, mode);
  if (mode == Mode::SumSq) acc.sqrt_();
  return acc.to(x.scalar_type()).view(grid);
}

Tensor group_norms(const Tensor& self, c10::string_view groups, double p, bool ragged) {
  const char* op = "group_norms";
  TORCH_CHECK(p == 1 || p == 2 || (std::isinf(p) && p > 0), "fancy::", op, ": p must be 1, 2 or inf, got ", p);
  return reduce(op, self, std::string(groups), ragged, p == 1 ? Mode::SumAbs : p == 2 ? Mode::SumSq : Mode::MaxAbs);
}

Tensor group_sum(const Tensor& self, c10::string_view groups, bool ragged) {
  return reduce("group_sum", self, std::string(groups), ragged, Mode::Sum);
}

// Checks scale against the grid and scales self into out (which may be self).
void scale_into(const char* op, const Tensor& self, const Tensor& scale, const std::string& groups, bool ragged,
                Tensor& out) {
  check_weight(op, self);
  const auto block = group_block(op, self.sizes(), groups, ragged);
  const auto grid = group_grid(self.sizes(), block);
  TORCH_CHECK(scale.sizes() == c10::IntArrayRef(grid), "fancy::", op, ": scale must have the shape of the grid of '",
              groups, "' groups ", c10::IntArrayRef(grid), " for a weight of shape ", self.sizes(), ", got ",
              scale.sizes());
  if (self.numel() == 0) return;
  const Tensor s = scale.to(self.scalar_type()).contiguous();
  const GroupLayout L = merge_group_dims(self.sizes(), block);
  const auto& k = cpu_group_kernels();
  if (self.scalar_type() == at::kFloat)
    k.scale_float(self.data_ptr<float>(), out.data_ptr<float>(), s.data_ptr<float>(), L);
  else
    k.scale_double(self.data_ptr<double>(), out.data_ptr<double>(), s.data_ptr<double>(), L);
}

Tensor group_scale(const Tensor& self, const Tensor& scale, c10::string_view groups, bool ragged) {
  const Tensor x = self.contiguous();
  Tensor out = at::empty_like(x);
  scale_into("group_scale", x, scale, std::string(groups), ragged, out);
  return out;
}

Tensor& group_scale_(Tensor& self, const Tensor& scale, c10::string_view groups, bool ragged) {
  TORCH_CHECK(self.is_contiguous(), "fancy::group_scale_: self must be contiguous (got strides ", self.strides(),
              "); use group_scale for other layouts");
  scale_into("group_scale_", self, scale, std::string(groups), ragged, self);
  return self;
}

// The number of elements of each group, in group order: the product of each dim's tile
// extent (smaller only in ragged edge tiles).
std::vector<double> group_sizes(const GroupLayout& L) {
  std::vector<double> sizes{1.0};
  for (size_t d = 0; d < L.size.size(); ++d) {
    std::vector<double> next;
    next.reserve(sizes.size() * static_cast<size_t>((L.size[d] + L.block[d] - 1) / L.block[d]));
    for (const double s : sizes)
      for (int64_t start = 0; start < L.size[d]; start += L.block[d])
        next.push_back(s * static_cast<double>(std::min(L.block[d], L.size[d] - start)));
    sizes.swap(next);
  }
  return sizes;
}

// The length of the runs when every group is a run of consecutive elements (one flat
// dim of tiles, or whole rows of a 2-D layout), else 0.
int64_t contiguous_run(const GroupLayout& L) {
  if (L.size.size() == 1) return L.block[0];
  if (L.size.size() == 2 && L.block[0] == 1 && L.block[1] == L.size[1]) return L.size[1];
  return 0;
}

// grad += scale · ∂/∂w Σ_g c_g ‖w_g‖₂ (c_g = √|g| or 1), nothing allocated the size of
// w: one pass when the groups are runs of consecutive elements (filters, kernels, rows),
// else two (the norms, then the update of grad). Returns scale · Σ_g c_g ‖w_g‖₂.
double group_lasso_grad_(Tensor& grad, const Tensor& self, c10::string_view groups_view, double scale,
                         bool size_weighted, bool ragged) {
  const char* op = "group_lasso_grad_";
  const std::string groups(groups_view);
  check_weight(op, self);
  TORCH_CHECK(grad.sizes() == self.sizes() && grad.scalar_type() == self.scalar_type(), "fancy::", op,
              ": grad must have the weight's shape ", self.sizes(), " and dtype ", self.scalar_type(), ", got ",
              grad.sizes(), " ", grad.scalar_type());
  TORCH_CHECK(std::isfinite(scale) && scale >= 0, "fancy::", op, ": scale must be finite and >= 0, got ", scale);
  const auto block = group_block(op, self.sizes(), groups, ragged);
  if (self.numel() == 0) return 0;
  const Tensor x = self.contiguous();
  Tensor g = grad.is_contiguous() ? grad : grad.contiguous();
  const GroupLayout L = merge_group_dims(x.sizes(), block);
  const auto& k = cpu_group_kernels();
  double penalty = 0;
  if (const int64_t run = contiguous_run(L)) {
    penalty = x.scalar_type() == at::kFloat
                  ? k.lasso_runs_float(x.data_ptr<float>(), g.data_ptr<float>(), x.numel(), run, scale, size_weighted)
                  : k.lasso_runs_double(x.data_ptr<double>(), g.data_ptr<double>(), x.numel(), run, scale,
                                        size_weighted);
  } else {
    std::vector<double> norms(static_cast<size_t>(L.groups));
    reduce_into(x, norms.data(), L, Mode::SumSq);
    const std::vector<double> sizes = size_weighted ? group_sizes(L) : std::vector<double>();
    Tensor factor = at::empty({L.groups}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "group_lasso_grad_", [&] {
      scalar_t* f = factor.data_ptr<scalar_t>();
      for (size_t i = 0; i < norms.size(); ++i) {
        const double n = std::sqrt(norms[i]), c = size_weighted ? std::sqrt(sizes[i]) : 1.0;
        penalty += c * n;
        f[i] = static_cast<scalar_t>(n == 0 ? 0.0 : scale * c / n);  // a zero group: the least-norm subgradient
      }
    });
    if (x.scalar_type() == at::kFloat)
      k.add_scaled_float(x.data_ptr<float>(), g.data_ptr<float>(), factor.data_ptr<float>(), L);
    else
      k.add_scaled_double(x.data_ptr<double>(), g.data_ptr<double>(), factor.data_ptr<double>(), L);
  }
  if (!g.is_same(grad)) grad.copy_(g);
  return scale * penalty;
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, CPU, m) {
  m.impl("group_norms", TORCH_FN(group_norms));
  m.impl("group_sum", TORCH_FN(group_sum));
  m.impl("group_scale", TORCH_FN(group_scale));
  m.impl("group_scale_", TORCH_FN(group_scale_));
  m.impl("group_lasso_grad_", TORCH_FN(group_lasso_grad_));
}

}  // namespace ops
}  // namespace fancy
