// Autograd for the fused fancy pooling ops (the composite ones get theirs from the ops
// they call). Each backward calls a backward op of the dispatcher or plain ATen ops, so
// any backend with the forward kernels gets gradients. Double backward is refused.
#include "ops/autograd/autograd_common.h"
#include "ops/op_handle.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <array>
#include <functional>

namespace fancy {
namespace ops {
namespace {

using at::IntArrayRef;
using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using TT = std::tuple<Tensor, Tensor>;
using IntVec = std::vector<int64_t>;

void save_window(AutogradContext* ctx, const std::string& name, IntArrayRef k, IntArrayRef s, IntArrayRef p,
                 bool ceil) {
  ctx->saved_data["name"] = name;
  ctx->saved_data["k"] = k.vec();
  ctx->saved_data["s"] = s.empty() ? k.vec() : s.vec();
  ctx->saved_data["p"] = p.vec();
  ctx->saved_data["ceil"] = ceil;
}

using WeightedBackward = TT(const Tensor&, const Tensor&, const Tensor&, const Tensor&, IntArrayRef, IntArrayRef,
                            IntArrayRef, bool, bool, std::array<bool, 2>);

// SoftPool and LIP share one kernel: y = Σ x·e^l / Σ e^l, SoftPool with l = x (so its
// gradient is the sum of the two: w_i(1 + x_i − y)).
struct WeightedPoolFunction : torch::autograd::Function<WeightedPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& logits, bool soft,
                               const std::string& name, IntVec k, IntVec s, IntVec p, bool ceil,
                               const std::function<Tensor(const Tensor&, const Tensor&)>& run) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor y = run(x, logits);
    ctx->save_for_backward({x, logits, y});
    ctx->saved_data["soft"] = soft;
    save_window(ctx, name, k, s, p, ceil);
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto& sd = ctx->saved_data;
    refuse_double_backward(sd["name"].toStringRef());
    static auto op = op_handle<WeightedBackward>("weighted_pool_backward");
    auto v = ctx->get_saved_variables();
    const bool soft = sd["soft"].toBool();
    // Only the gradients autograd needs (LIP's logits are often a fixed map).
    const std::array<bool, 2> mask{ctx->needs_input_grad(0), !soft && ctx->needs_input_grad(1)};
    auto [gx, gl] = op.call(grads[0].contiguous(), v[0], soft ? v[0] : v[1], v[2], sd["k"].toIntVector(),
                            sd["s"].toIntVector(), sd["p"].toIntVector(), sd["ceil"].toBool(), soft, mask);
    if (!mask[0]) gx = Tensor();
    if (!mask[1]) gl = Tensor();
    if (soft) return {gx, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    return {gx, gl, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

template <int64_t ND>
Tensor soft_pool(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  static const std::string name = nd_op_name("soft_pool", ND);
  static auto op = op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool)>(name);
  auto run = [&](const Tensor& t, const Tensor&) { return op.call(t, k, s, p, ceil); };
  return WeightedPoolFunction::apply(x, x, true, name, k.vec(), s.vec(), p.vec(), ceil, run)[0];
}

Tensor lip_pool2d(const Tensor& x, const Tensor& logits, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  static auto op = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool)>(
      "lip_pool2d");
  auto run = [&](const Tensor& t, const Tensor& l) { return op.call(t, l, k, s, p, ceil); };
  return WeightedPoolFunction::apply(x, logits, false, "lip_pool2d", k.vec(), s.vec(), p.vec(), ceil, run)[0];
}

// Stochastic pooling's kernel op. Training (a seed): the gradient goes to the sampled
// element, which the backward op finds again from x and the seed (a zero-sum window passes
// none), so nothing beyond x is kept. Evaluation: d(Σa²/Σa)/da_i = (2a_i − y)/Σa.
struct StochasticPoolFunction : torch::autograd::Function<StochasticPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, IntVec k, IntVec s, IntVec p, bool ceil,
                               c10::optional<int64_t> seed, bool return_indices) {
    static auto op = op_handle<TT(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool, c10::optional<int64_t>,
                                  bool)>("stochastic_pool_forward");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, idx] = op.call(x, k, s, p, ceil, seed, return_indices);
    ctx->save_for_backward(seed ? variable_list{x} : variable_list{x, y});
    if (seed) ctx->saved_data["seed"] = *seed;
    save_window(ctx, nd_op_name("stochastic_pool", k.size()), k, s, p, ceil);
    ctx->mark_non_differentiable({idx});
    pass_undefined_grads(ctx);
    return {y, idx};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto& sd = ctx->saved_data;
    refuse_double_backward(sd["name"].toStringRef());
    if (!grads[0].defined()) return variable_list(7);
    auto v = ctx->get_saved_variables();
    const auto k = sd["k"].toIntVector(), s = sd["s"].toIntVector(), p = sd["p"].toIntVector();
    const bool ceil = sd["ceil"].toBool();
    Tensor gx;
    if (sd.count("seed")) {
      static auto op = op_handle<Tensor(const Tensor&, const Tensor&, int64_t, IntArrayRef, IntArrayRef, IntArrayRef,
                                        bool)>("stochastic_pool_train_backward");
      gx = op.call(grads[0], v[0], sd["seed"].toInt(), k, s, p, ceil);
    } else {
      static auto op = op_handle<Tensor(const Tensor&, const Tensor&, const Tensor&, IntArrayRef, IntArrayRef,
                                        IntArrayRef, bool)>("stochastic_pool_eval_backward");
      gx = op.call(grads[0].contiguous(), v[0], v[1], k, s, p, ceil);
    }
    return {gx, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

TT stochastic_pool_forward(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil,
                           c10::optional<int64_t> seed, bool return_indices) {
  auto out = StochasticPoolFunction::apply(x, k.vec(), s.vec(), p.vec(), ceil, seed, return_indices);
  return {out[0], out[1]};
}

// Global GeM: the forward keeps mean z^p and mean z^p·ln z per row for ∂x and ∂p.
struct GemFunction : torch::autograd::Function<GemFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& p, double eps) {
    static auto op = op_handle<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, double)>(
        "gem_pool_global");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, S, Tm] = op.call(x, p, eps);
    ctx->save_for_backward({x, p, y, S, Tm});
    ctx->saved_data["eps"] = eps;
    ctx->mark_non_differentiable({S, Tm});
    pass_undefined_grads(ctx);
    return {y, S, Tm};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("gem_pool");
    if (!grads[0].defined()) return variable_list(3);
    static auto op = op_handle<TT(const Tensor&, const Tensor&, const Tensor&, double, const Tensor&, const Tensor&,
                                  const Tensor&, std::array<bool, 2>)>("gem_pool_global_backward");
    auto v = ctx->get_saved_variables();
    const std::array<bool, 2> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1)};
    auto [gx, gp] = op.call(grads[0], v[0], v[1], ctx->saved_data["eps"].toDouble(), v[2], v[3], v[4], mask);
    return {mask[0] ? gx : Tensor(), mask[1] ? gp : Tensor(), Tensor()};
  }
};

std::tuple<Tensor, Tensor, Tensor> gem_pool_global(const Tensor& x, const Tensor& p, double eps) {
  auto out = GemFunction::apply(x, p, eps);
  return {out[0], out[1], out[2]};
}

// Mixed pooling over tiled windows: ∂x and ∂α from one backward op (only those needed).
struct MixedPoolFunction : torch::autograd::Function<MixedPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& alpha, IntVec k) {
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef)>("mixed_pool_tiled");
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor y = op.call(x, alpha, k);
    ctx->save_for_backward({x, alpha});
    ctx->saved_data["k"] = k;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("mixed_pool");
    static auto op = op_handle<TT(const Tensor&, const Tensor&, const Tensor&, IntArrayRef, std::array<bool, 2>)>(
        "mixed_pool_tiled_backward");
    auto v = ctx->get_saved_variables();
    const std::array<bool, 2> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1)};
    auto [gx, ga] = op.call(grads[0].contiguous(), v[0], v[1], ctx->saved_data["k"].toIntVector(), mask);
    return {mask[0] ? gx : Tensor(), mask[1] ? ga : Tensor(), Tensor()};
  }
};

Tensor mixed_pool_tiled(const Tensor& x, const Tensor& alpha, IntArrayRef k) {
  return MixedPoolFunction::apply(x, alpha, k.vec())[0];
}

// Sort pooling: y = Σ_j w_j · x[rank_j]; the backward op ranks the windows of x again and
// gives ∂/∂x[rank_j] += go·w_j and ∂/∂w_j = Σ go·x[rank_j] (nothing kept but x and w).
struct SortPoolFunction : torch::autograd::Function<SortPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& w, IntVec k, IntVec s) {
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef)>("sort_pool2d_forward");
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor y = op.call(x, w, k, s);
    ctx->save_for_backward({x, w});
    ctx->saved_data["k"] = k;
    ctx->saved_data["s"] = s.empty() ? k : s;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("sort_pool2d");
    static auto op = op_handle<TT(const Tensor&, const Tensor&, const Tensor&, IntArrayRef, IntArrayRef)>(
        "sort_pool2d_backward");
    auto v = ctx->get_saved_variables();
    auto [gx, gw] = op.call(grads[0], v[0], v[1], ctx->saved_data["k"].toIntVector(),
                            ctx->saved_data["s"].toIntVector());
    return {gx, gw, Tensor(), Tensor()};
  }
};

Tensor sort_pool2d_forward(const Tensor& x, const Tensor& w, IntArrayRef k, IntArrayRef s) {
  return SortPoolFunction::apply(x, w, k.vec(), s.vec())[0];
}

// k-max: the gradient goes back to the kept positions.
struct KmaxFunction : torch::autograd::Function<KmaxFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, int64_t k, int64_t dim) {
    static auto op = op_handle<TT(const Tensor&, int64_t, int64_t)>("kmax_pool");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [values, indices] = op.call(x, k, dim);
    ctx->save_for_backward({indices});
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["dim"] = c10::maybe_wrap_dim(dim, x.dim());
    ctx->mark_non_differentiable({indices});
    pass_undefined_grads(ctx);
    return {values, indices};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward("kmax_pool");
    if (!grads[0].defined()) return variable_list(3);
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, int64_t)>("kmax_pool_backward");
    const Tensor idx = ctx->get_saved_variables()[0];
    return {op.call(grads[0], idx, ctx->saved_data["sizes"].toIntVector(), ctx->saved_data["dim"].toInt()), Tensor(),
            Tensor()};
  }
};

TT kmax_pool(const Tensor& x, int64_t k, int64_t dim) {
  auto out = KmaxFunction::apply(x, k, dim);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, Autograd, m) {
  m.impl("soft_pool1d", TORCH_FN(soft_pool<1>));
  m.impl("soft_pool2d", TORCH_FN(soft_pool<2>));
  m.impl("soft_pool3d", TORCH_FN(soft_pool<3>));
  m.impl("lip_pool2d", TORCH_FN(lip_pool2d));
  m.impl("stochastic_pool_forward", TORCH_FN(stochastic_pool_forward));
  m.impl("gem_pool_global", TORCH_FN(gem_pool_global));
  m.impl("mixed_pool_tiled", TORCH_FN(mixed_pool_tiled));
  m.impl("sort_pool2d_forward", TORCH_FN(sort_pool2d_forward));
  m.impl("kmax_pool", TORCH_FN(kmax_pool));
}

}  // namespace ops
}  // namespace fancy
