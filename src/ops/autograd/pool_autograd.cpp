// Autograd for the pooling ops: each op's Autograd kernel runs the forward below
// autograd and records a node whose backward calls the matching backward op
// (pool_index_backward, avg_pool_backward, ...), so any backend that implements those
// schemas gets gradients for free. Double backward is refused with a clear error.
#include "ops/autograd/autograd_common.h"
#include "ops/op_handle.h"
#include "ops/pool_geometry.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

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

bool needs_grad(const Tensor& x) { return at::GradMode::is_enabled() && x.requires_grad(); }

// Max, min and adaptive max pooling: the gradient goes to the recorded indices.
struct IndexPoolFunction : torch::autograd::Function<IndexPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x,
                               const std::function<TT(const Tensor&)>& run, int64_t nd,
                               const std::string& name) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, idx] = run(x);
    ctx->save_for_backward({x, idx});
    ctx->saved_data["nd"] = nd;
    ctx->saved_data["name"] = name;
    ctx->mark_non_differentiable({idx});
    pass_undefined_grads(ctx);
    return {y, idx};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward(ctx->saved_data["name"].toStringRef());
    if (!grads[0].defined()) return variable_list(4);
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t)>(
        "pool_index_backward");
    auto saved = ctx->get_saved_variables();
    return {op.call(grads[0], saved[0], saved[1], ctx->saved_data["nd"].toInt()), Tensor(),
            Tensor(), Tensor()};
  }
};

template <int64_t ND>
struct Extremum {
  using Sig = TT(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef, bool);
  using PlainSig = Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef, bool);

  template <const char* Stem>
  static TT with_indices(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p,
                         IntArrayRef d, bool c) {
    static const std::string name = nd_op_name(Stem, ND) + "_with_indices";
    static auto op = op_handle<Sig>(name);
    IntVec kv(k.vec()), sv(s.vec()), pv(p.vec()), dv(d.vec());
    auto run = [&](const Tensor& t) { return op.call(t, kv, sv, pv, dv, c); };
    auto out = IndexPoolFunction::apply(x, run, ND, name);
    return {out[0], out[1]};
  }

  template <const char* Stem>
  static Tensor values(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p,
                       IntArrayRef d, bool c) {
    if (!needs_grad(x)) {
      // No graph to build: the forward without indices is the fastest.
      static auto plain = op_handle<PlainSig>(nd_op_name(Stem, ND));
      at::AutoDispatchBelowADInplaceOrView guard;
      return plain.call(x, k, s, p, d, c);
    }
    return std::get<0>(with_indices<Stem>(x, k, s, p, d, c));
  }
};

constexpr char kMax[] = "max_pool";
constexpr char kMin[] = "min_pool";

template <int64_t ND>
TT adaptive_max_pool(const Tensor& x, IntArrayRef out) {
  static const std::string name = nd_op_name("adaptive_max_pool", ND);
  static auto op = op_handle<TT(const Tensor&, IntArrayRef)>(name);
  IntVec ov(out.vec());
  auto run = [&](const Tensor& t) { return op.call(t, ov); };
  auto r = IndexPoolFunction::apply(x, run, ND, name);
  return {r[0], r[1]};
}

// Average pooling (windowed and adaptive) and Lp pooling: the backward op recomputes
// the windows from the arguments stored here.
struct AvgPoolFunction : torch::autograd::Function<AvgPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const std::string& name,
                               IntVec k, IntVec s, IntVec p, bool ceil, bool cip,
                               c10::optional<int64_t> div, const std::function<Tensor(const Tensor&)>& run) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor y = run(x);
    ctx->save_for_backward({x});
    ctx->saved_data["name"] = name;
    ctx->saved_data["k"] = k;
    ctx->saved_data["s"] = s.empty() ? k : s;
    ctx->saved_data["p"] = p;
    ctx->saved_data["ceil"] = ceil;
    ctx->saved_data["cip"] = cip;
    ctx->saved_data["div"] = div;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto& sd = ctx->saved_data;
    refuse_double_backward(sd["name"].toStringRef());
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef,
                                      IntArrayRef, bool, bool, c10::optional<int64_t>)>("avg_pool_backward");
    Tensor gi = op.call(grads[0], ctx->get_saved_variables()[0], sd["k"].toIntVector(),
                        sd["s"].toIntVector(), sd["p"].toIntVector(), sd["ceil"].toBool(),
                        sd["cip"].toBool(), sd["div"].toOptional<int64_t>());
    return {gi, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

template <int64_t ND>
Tensor avg_pool(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil, bool cip,
                c10::optional<int64_t> div) {
  static const std::string name = nd_op_name("avg_pool", ND);
  static auto op = op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool, bool,
                                    c10::optional<int64_t>)>(name);
  auto run = [&](const Tensor& t) { return op.call(t, k, s, p, ceil, cip, div); };
  if (!needs_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return run(x);
  }
  return AvgPoolFunction::apply(x, name, k.vec(), s.vec(), p.vec(), ceil, cip, div, run)[0];
}

struct LpPoolFunction : torch::autograd::Function<LpPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const std::string& name,
                               double norm, IntVec k, IntVec s, IntVec p, bool ceil,
                               const std::function<Tensor(const Tensor&)>& run) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor y = run(x);
    ctx->save_for_backward({x, y});
    ctx->saved_data["name"] = name;
    ctx->saved_data["norm"] = norm;
    ctx->saved_data["k"] = k;
    ctx->saved_data["s"] = s.empty() ? k : s;
    ctx->saved_data["p"] = p;
    ctx->saved_data["ceil"] = ceil;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto& sd = ctx->saved_data;
    refuse_double_backward(sd["name"].toStringRef());
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, const Tensor&, double, IntArrayRef,
                                      IntArrayRef, IntArrayRef, bool)>("lp_pool_backward");
    auto saved = ctx->get_saved_variables();
    Tensor gi = op.call(grads[0], saved[0], saved[1], sd["norm"].toDouble(), sd["k"].toIntVector(),
                        sd["s"].toIntVector(), sd["p"].toIntVector(), sd["ceil"].toBool());
    return {gi, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

template <int64_t ND>
Tensor lp_pool(const Tensor& x, double norm, IntArrayRef k, IntArrayRef s, bool ceil, IntArrayRef p) {
  static const std::string name = nd_op_name("lp_pool", ND);
  static auto op = op_handle<Tensor(const Tensor&, double, IntArrayRef, IntArrayRef, bool, IntArrayRef)>(name);
  auto run = [&](const Tensor& t) { return op.call(t, norm, k, s, ceil, p); };
  if (!needs_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return run(x);
  }
  return LpPoolFunction::apply(x, name, norm, k.vec(), s.vec(), p.vec(), ceil, run)[0];
}

// Adaptive average pooling and unpooling need only the spatial rank in backward.
struct AdaptiveAvgFunction : torch::autograd::Function<AdaptiveAvgFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const std::string& name,
                               int64_t nd, const std::function<Tensor(const Tensor&)>& run) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor y = run(x);
    ctx->save_for_backward({x});
    ctx->saved_data["name"] = name;
    ctx->saved_data["nd"] = nd;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward(ctx->saved_data["name"].toStringRef());
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, int64_t)>("adaptive_avg_pool_backward");
    return {op.call(grads[0], ctx->get_saved_variables()[0], ctx->saved_data["nd"].toInt()),
            Tensor(), Tensor(), Tensor()};
  }
};

template <int64_t ND>
Tensor adaptive_avg_pool(const Tensor& x, IntArrayRef out) {
  static const std::string name = nd_op_name("adaptive_avg_pool", ND);
  static auto op = op_handle<Tensor(const Tensor&, IntArrayRef)>(name);
  auto run = [&](const Tensor& t) { return op.call(t, out); };
  if (!needs_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return run(x);
  }
  return AdaptiveAvgFunction::apply(x, name, ND, run)[0];
}

struct UnpoolFunction : torch::autograd::Function<UnpoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& indices,
                               const std::string& name, int64_t nd,
                               const std::function<Tensor(const Tensor&)>& run) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor y = run(x);
    ctx->save_for_backward({indices});
    ctx->saved_data["name"] = name;
    ctx->saved_data["nd"] = nd;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    refuse_double_backward(ctx->saved_data["name"].toStringRef());
    static auto op = op_handle<Tensor(const Tensor&, const Tensor&, int64_t)>("max_unpool_backward");
    return {op.call(grads[0], ctx->get_saved_variables()[0], ctx->saved_data["nd"].toInt()),
            Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

template <int64_t ND>
Tensor max_unpool(const Tensor& x, const Tensor& indices, IntArrayRef k, IntArrayRef s, IntArrayRef p,
                  at::OptionalIntArrayRef size) {
  static const std::string name = nd_op_name("max_unpool", ND);
  static auto op = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef,
                                    at::OptionalIntArrayRef)>(name);
  auto run = [&](const Tensor& t) { return op.call(t, indices, k, s, p, size); };
  if (!needs_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return run(x);
  }
  return UnpoolFunction::apply(x, indices, name, ND, run)[0];
}

// Global pooling. Without a graph to build, the op's own kernel (no indices, no views).
// With one, the 1-D adaptive op over the flattened spatial dims (a view for contiguous and
// channels-last inputs), whose autograd records the backward: indices for max.
template <bool Max>
Tensor global_pool(const Tensor& x, bool keepdim) {
  constexpr const char* name = Max ? "global_max_pool" : "global_avg_pool";
  if (!needs_grad(x)) {
    static auto op = op_handle<Tensor(const Tensor&, bool)>(name);
    at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(x, keepdim);
  }
  check_global_rank(name, x);
  const Tensor rows = x.flatten(2);
  if (Max) {
    static auto op = op_handle<TT(const Tensor&, IntArrayRef)>("adaptive_max_pool1d");
    return std::get<0>(op.call(rows, {1})).reshape(global_output_shape(x, keepdim));
  }
  static auto op = op_handle<Tensor(const Tensor&, IntArrayRef)>("adaptive_avg_pool1d");
  return op.call(rows, {1}).reshape(global_output_shape(x, keepdim));
}

template <int64_t ND>
void register_nd(torch::Library& m) {
  m.impl(nd_op_name("max_pool", ND).c_str(), TORCH_FN(Extremum<ND>::template values<kMax>));
  m.impl((nd_op_name("max_pool", ND) + "_with_indices").c_str(),
         TORCH_FN(Extremum<ND>::template with_indices<kMax>));
  m.impl(nd_op_name("min_pool", ND).c_str(), TORCH_FN(Extremum<ND>::template values<kMin>));
  m.impl((nd_op_name("min_pool", ND) + "_with_indices").c_str(),
         TORCH_FN(Extremum<ND>::template with_indices<kMin>));
  m.impl(nd_op_name("avg_pool", ND).c_str(), TORCH_FN(avg_pool<ND>));
  m.impl(nd_op_name("lp_pool", ND).c_str(), TORCH_FN(lp_pool<ND>));
  m.impl(nd_op_name("adaptive_avg_pool", ND).c_str(), TORCH_FN(adaptive_avg_pool<ND>));
  m.impl(nd_op_name("adaptive_max_pool", ND).c_str(), TORCH_FN(adaptive_max_pool<ND>));
  m.impl(nd_op_name("max_unpool", ND).c_str(), TORCH_FN(max_unpool<ND>));
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, Autograd, m) {
  register_nd<1>(m);
  register_nd<2>(m);
  register_nd<3>(m);
  m.impl("global_avg_pool", TORCH_FN(global_pool<false>));
  m.impl("global_max_pool", TORCH_FN(global_pool<true>));
}

}  // namespace ops
}  // namespace fancy
