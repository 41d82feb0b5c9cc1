// The fancy pooling family's schemas (declared once, here), the ops that are
// compositions of other fancy ops (CompositeImplicitAutograd: their gradients come from
// the ops they call), and the C++ entry points of include/fancy/fancy_pool.h.
// Fused kernels: ops/cpu/fancy_pool_*; their autograd: ops/autograd/fancy_pool_autograd.cpp.
#include "fancy/fancy_pool.h"

#include "ops/op_handle.h"
#include "ops/pool_geometry.h"

#include <ATen/ops/bernoulli.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/conv2d.h>
#include <ATen/ops/full.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/stack.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <string>

TORCH_LIBRARY_FRAGMENT(fancy, m) {
  for (int nd = 1; nd <= 3; ++nd) {
    const std::string n = std::to_string(nd), d = n + "d";
    const std::string window = "int[" + n + "] kernel_size, int[" + n + "] stride=[], int[" + n + "] padding=0, "
                               "bool ceil_mode=False";
    m.def(("soft_pool" + d + "(Tensor self, " + window + ") -> Tensor").c_str());
    m.def(("stochastic_pool" + d + "(Tensor self, " + window +
           ", bool training=True, Generator? generator=None, bool return_indices=False) -> (Tensor, Tensor)").c_str());
    m.def(("mixed_pool" + d + "(Tensor self, Tensor alpha, " + window +
           ", bool training=False, bool random=False, Generator? generator=None) -> Tensor").c_str());
  }
  m.def("lip_pool2d(Tensor self, Tensor logits, int[2] kernel_size, int[2] stride=[], int[2] padding=0, "
        "bool ceil_mode=False) -> Tensor");
  m.def("sort_pool2d(Tensor self, Tensor weights, int[2] kernel_size, int[2] stride=[], bool softmax=True) -> Tensor");
  m.def("gated_pool2d(Tensor self, Tensor gate, int[2] kernel_size, int[2] stride=[], int[2] padding=0) -> Tensor");
  m.def("kmax_pool(Tensor self, int k, int dim=-1) -> (Tensor, Tensor)");
  m.def("dynamic_kmax_pool(Tensor self, int layer, int num_layers, int k_top, Tensor? lengths=None, int dim=-1) "
        "-> (Tensor, Tensor, Tensor)");
  m.def("gem_pool(Tensor self, Tensor p, float eps=1e-6, int[]? kernel_size=None, int[]? stride=None, "
        "bool keepdim=False) -> Tensor");
  m.def("spatial_pyramid_pool2d(Tensor self, int[] levels, str mode=\"max\") -> Tensor");
  m.def("set_pool(Tensor self, int dim=1, str mode=\"max\", Tensor? lengths=None) -> Tensor");
  m.def("horizontal_pyramid_pool(Tensor self, int[] bins=[1, 2, 4, 8, 16]) -> Tensor");
  // Kernel-level ops the above use; backends implement them, autograd calls the backward ones.
  m.def("weighted_pool_backward(Tensor grad_output, Tensor self, Tensor logits, Tensor result, "
        "int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, bool logits_are_input=False, "
        "bool[2] output_mask=[True, True]) -> (Tensor, Tensor)");
  m.def("stochastic_pool_forward(Tensor self, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, "
        "int? seed, bool return_indices) -> (Tensor, Tensor)");
  m.def("stochastic_pool_train_backward(Tensor grad_output, Tensor self, int seed, int[] kernel_size, int[] stride, "
        "int[] padding, bool ceil_mode) -> Tensor");
  m.def("stochastic_pool_eval_backward(Tensor grad_output, Tensor self, Tensor result, int[] kernel_size, "
        "int[] stride, int[] padding, bool ceil_mode) -> Tensor");
  m.def("kmax_pool_backward(Tensor grad_output, Tensor indices, int[] self_sizes, int dim) -> Tensor");
  m.def("gem_pool_global(Tensor self, Tensor p, float eps) -> (Tensor, Tensor, Tensor)");
  m.def("gem_pool_global_backward(Tensor grad_output, Tensor self, Tensor p, float eps, Tensor result, "
        "Tensor mean_pow, Tensor mean_pow_log, bool[2] output_mask) -> (Tensor, Tensor)");
  m.def("mixed_pool_tiled(Tensor self, Tensor alpha, int[] kernel_size) -> Tensor");
  m.def("mixed_pool_tiled_backward(Tensor grad_output, Tensor self, Tensor alpha, int[] kernel_size, "
        "bool[2] output_mask) -> (Tensor, Tensor)");
  m.def("sort_pool2d_forward(Tensor self, Tensor weights, int[2] kernel_size, int[2] stride) -> Tensor");
  m.def("sort_pool2d_backward(Tensor grad_output, Tensor self, Tensor weights, int[2] kernel_size, int[2] stride) "
        "-> (Tensor, Tensor)");
}

namespace fancy {
namespace ops {
namespace {

using at::IntArrayRef;
using at::Tensor;
using TT = std::tuple<Tensor, Tensor>;
using TTT = std::tuple<Tensor, Tensor, Tensor>;
using IntVec = std::vector<int64_t>;

Tensor max_pool_nd(const Tensor& x, int64_t nd, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  auto op = op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef, bool)>(
      nd_op_name("max_pool", nd));
  return op.call(x, k, s, p, IntVec(nd, 1), ceil);
}

Tensor avg_pool_nd(const Tensor& x, int64_t nd, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  auto op = op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool, bool,
                             c10::optional<int64_t>)>(nd_op_name("avg_pool", nd));
  return op.call(x, k, s, p, ceil, true, c10::nullopt);
}

Tensor adaptive_nd(const char* mode, const Tensor& x, IntArrayRef out) {
  const int64_t nd = out.size();
  if (std::string(mode) == "max") {
    auto op = op_handle<TT(const Tensor&, IntArrayRef)>(nd_op_name("adaptive_max_pool", nd));
    return std::get<0>(op.call(x, out));
  }
  auto op = op_handle<Tensor(const Tensor&, IntArrayRef)>(nd_op_name("adaptive_avg_pool", nd));
  return op.call(x, out);
}

void check_mode(const char* op, const std::string& mode, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (mode == a) return;
    list += list.empty() ? std::string("'") + a + "'" : std::string(", '") + a + "'";
  }
  TORCH_CHECK(false, "fancy::", op, ": unknown mode '", mode, "'; expected one of ", list);
}

// Whether pooling windows `k` tile x (stride = kernel, no padding, no partial window) in
// one of the shapes the fused kernels keep in registers: 2 or 3 wide, 1-D; 2×2 or 3×3,
// 2-D; 1×2×2 or 1×3×3, 3-D.
bool windows_tile(const Tensor& x, int64_t nd, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  if (!(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) || k.size() != size_t(nd)) return false;
  if (!(s.empty() || s == k)) return false;
  for (int64_t v : p) {
    if (v != 0) return false;
  }
  const int64_t last = k.back();
  if (last != 2 && last != 3) return false;
  if (nd >= 2 && k[nd - 2] != last) return false;
  if (nd == 3 && k[0] != 1) return false;
  for (int64_t i = 0; i < nd; ++i) {
    if (ceil && x.size(x.dim() - nd + i) % k[i] != 0) return false;  // a partial last window
  }
  return true;
}

// Stochastic pooling (Zeiler & Fergus 2013): training draws one 64-bit seed from the
// generator and passes it to the kernel op, whose picks are a counter-based function of
// it, so its backward finds them again from the input and the seed (nothing stored; int64
// indices only when asked for). Evaluation: Σa²/Σa.
template <int64_t ND>
TT stochastic_pool(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil, bool training,
                   c10::optional<at::Generator> gen, bool return_indices) {
  static auto op = op_handle<TT(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool, c10::optional<int64_t>,
                                bool)>("stochastic_pool_forward");
  const std::string name = nd_op_name("stochastic_pool", ND);
  TORCH_CHECK(static_cast<int64_t>(k.size()) == ND, name, ": kernel_size must have ", ND, " element",
              ND > 1 ? "s" : "", ", got ", shape_str(k));
  c10::optional<int64_t> seed;
  if (training) {
    seed = at::randint(std::numeric_limits<int64_t>::max(), {1}, gen, at::TensorOptions().dtype(at::kLong))
               .item<int64_t>();
  }
  return op.call(x, k, s, p, ceil, seed, return_indices);
}

// α·max + (1 − α)·avg (Yu et al. 2014). α: a scalar or one per channel (learnable), or with
// `random` a 0/1 draw per output in training (its expectation, 1/2, in evaluation). Windows
// that tile the input run one fused kernel; the others compose max and average pooling.
template <int64_t ND>
Tensor mixed_pool(const Tensor& x, const Tensor& alpha, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil,
                  bool training, bool random, c10::optional<at::Generator> gen) {
  const std::string name = nd_op_name("mixed_pool", ND);
  static auto fused = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef)>("mixed_pool_tiled");
  const bool tiled = windows_tile(x, ND, k, s, p, ceil);
  if (!random) {
    const int64_t C = x.size(x.dim() - ND - 1);
    TORCH_CHECK(alpha.numel() == 1 || (alpha.dim() == 1 && alpha.numel() == C), "fancy::", name,
                ": alpha must hold one value or one per channel (", C, "), got shape ",
                shape_str(alpha.sizes()));
    if (tiled) return fused.call(x, alpha.reshape({-1}).to(x.scalar_type()), k);
  } else if (tiled) {
    if (!training) return fused.call(x, at::full({1}, 0.5, x.options()), k);
    // The draws as the composition makes them: one per output, from the generator.
    IntVec out(x.sizes().begin(), x.sizes().end());
    for (int64_t i = 0; i < ND; ++i) out[x.dim() - ND + i] /= k[i];
    return fused.call(x, at::bernoulli(at::full(out, 0.5, x.options()), gen), k);
  }
  const Tensor mx = max_pool_nd(x, ND, k, s, p, ceil);
  const Tensor av = avg_pool_nd(x, ND, k, s, p, ceil);
  Tensor a;
  if (random) {
    a = training ? at::bernoulli(at::full(mx.sizes(), 0.5, mx.options()), gen) : at::full({}, 0.5, mx.options());
  } else {
    const int64_t C = x.size(x.dim() - ND - 1);
    TORCH_CHECK(alpha.numel() == 1 || (alpha.dim() == 1 && alpha.numel() == C), "fancy::", name,
                ": alpha must hold one value or one per channel (", C, "), got shape ",
                shape_str(alpha.sizes()));
    IntVec shape(ND + 1, 1);
    shape[0] = alpha.numel();
    a = alpha.numel() == 1 ? alpha.reshape({}) : alpha.view(shape);
  }
  return a * mx + (1 - a) * av;
}

// σ(ωᵀx_R)·max + (1 − σ(ωᵀx_R))·avg (Lee et al. 2016): one k×k gate ω shared by the channels.
Tensor gated_pool2d(const Tensor& x, const Tensor& gate, IntArrayRef k, IntArrayRef s, IntArrayRef p) {
  TORCH_CHECK(x.dim() == 3 || x.dim() == 4, "fancy::gated_pool2d: input must be (C, H, W) or (N, C, H, W), got ",
              x.dim(), "-D");
  TORCH_CHECK(k.size() == 2, "fancy::gated_pool2d: kernel_size must have 2 values, got ", k.size());
  TORCH_CHECK(gate.dim() == 2 && gate.size(0) == k[0] && gate.size(1) == k[1],
              "fancy::gated_pool2d: gate must have the kernel's shape [", k[0], ", ", k[1], "], got ",
              shape_str(gate.sizes()));
  const Tensor xb = x.dim() == 3 ? x.unsqueeze(0) : x;
  const Tensor mx = max_pool_nd(xb, 2, k, s, p, false);
  const Tensor av = avg_pool_nd(xb, 2, k, s, p, false);
  const IntVec st = s.empty() ? k.vec() : s.vec();
  const int64_t N = xb.size(0), C = xb.size(1);
  Tensor g = at::conv2d(xb.reshape({N * C, 1, xb.size(2), xb.size(3)}), gate.view({1, 1, k[0], k[1]}), {}, st, p)
                 .view({N, C, mx.size(2), mx.size(3)})
                 .sigmoid();
  Tensor y = g * mx + (1 - g) * av;
  return x.dim() == 3 ? y.squeeze(0) : y;
}

// Sort pooling: each window sorted descending, its top K values weighted by softmax(w)
// (or w), by the fused kernel op, whose backward ranks the windows again.
Tensor sort_pool2d(const Tensor& x, const Tensor& weights, IntArrayRef k, IntArrayRef s, bool softmax) {
  static auto op = op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef)>("sort_pool2d_forward");
  TORCH_CHECK(weights.dim() == 1 && weights.numel() >= 1, "fancy::sort_pool2d: weights must be a non-empty ",
              "1-D tensor (one weight per kept rank), got shape ", shape_str(weights.sizes()));
  return op.call(x, softmax ? weights.softmax(0) : weights, k, s);
}

// DCNN's dynamic k-max pooling: k = max(k_top, ceil((L − l)/L · s)) per sequence of length s.
TTT dynamic_kmax_pool(const Tensor& x, int64_t layer, int64_t num_layers, int64_t k_top,
                      const c10::optional<Tensor>& lengths, int64_t dim) {
  const char* op = "fancy::dynamic_kmax_pool";
  static auto kmax = op_handle<TT(const Tensor&, int64_t, int64_t)>("kmax_pool");
  TORCH_CHECK(x.dim() >= 2, op, ": input must be batched (N, ..., L), got ", x.dim(), "-D");
  TORCH_CHECK(num_layers >= 1, op, ": num_layers must be at least 1, got ", num_layers);
  TORCH_CHECK(layer >= 1 && layer <= num_layers, op, ": layer must be in [1, num_layers = ", num_layers, "], got ",
              layer);
  TORCH_CHECK(k_top >= 1, op, ": k_top must be at least 1, got ", k_top);
  const int64_t d = c10::maybe_wrap_dim(dim, x.dim());
  TORCH_CHECK(d != 0, op, ": dim ", dim, " is the batch dim; the sequence dim must be another one");
  const int64_t N = x.size(0), L = x.size(d);
  Tensor len;
  if (lengths.has_value() && lengths->defined()) {
    TORCH_CHECK(lengths->dim() == 1 && lengths->size(0) == N, op, ": lengths must have shape [", N,
                "] (one per sequence), got ", shape_str(lengths->sizes()));
    TORCH_CHECK(!at::isFloatingType(lengths->scalar_type()), op, ": lengths must be integers, got ",
                lengths->scalar_type());
    len = lengths->to(at::kLong).cpu();
  } else {
    len = at::full({N}, L, at::TensorOptions().dtype(at::kLong));
  }
  const int64_t* lp = len.data_ptr<int64_t>();
  IntVec kept(N);
  int64_t K = 0;
  for (int64_t b = 0; b < N; ++b) {
    TORCH_CHECK(lp[b] >= 1 && lp[b] <= L, op, ": lengths[", b, "] = ", lp[b], " is outside [1, ", L,
                "] (the sequence dim's size)");
    const double share = double(num_layers - layer) / double(num_layers);
    const int64_t k = std::max<int64_t>(k_top, static_cast<int64_t>(std::ceil(share * double(lp[b]))));
    kept[b] = std::min(k, lp[b]);  // a sequence shorter than k keeps all it has
    K = std::max(K, kept[b]);
  }
  std::vector<Tensor> vals, idxs;
  for (int64_t b = 0; b < N; ++b) {
    const Tensor xs = x.select(0, b).narrow(d - 1, 0, lp[b]);  // padding is never a candidate
    auto [v, i] = kmax.call(xs, kept[b], d - 1);
    if (kept[b] < K) {  // shorter outputs are padded with 0 (values) and −1 (indices)
      IntVec pad_shape(v.sizes().begin(), v.sizes().end());
      pad_shape[d - 1] = K - kept[b];
      v = at::cat({v, at::zeros(pad_shape, v.options())}, d - 1);
      i = at::cat({i, at::full(pad_shape, -1, i.options())}, d - 1);
    }
    vals.push_back(v);
    idxs.push_back(i);
  }
  return {at::stack(vals), at::stack(idxs), at::tensor(kept, at::TensorOptions().dtype(at::kLong))};
}

// GeM (Radenović et al.): avg(clamp(x, eps)^p)^(1/p), global or windowed, p learnable.
Tensor gem_pool(const Tensor& x, const Tensor& p, double eps, at::OptionalIntArrayRef k, at::OptionalIntArrayRef s,
                bool keepdim) {
  const char* op = "fancy::gem_pool";
  TORCH_CHECK(p.numel() == 1, op, ": p must hold one value, got shape ", shape_str(p.sizes()));
  TORCH_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  if (!k.has_value()) {
    TORCH_CHECK(x.dim() >= 3, op, ": global pooling needs an (N, C, *spatial) input with at least one spatial dim, ",
                "got a ", x.dim(), "-D input");
  }
  if (!k.has_value() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble)) {
    // One fused pass per (n, c) row (and one for the backward): z^p as exp(p·ln z).
    static auto fused = op_handle<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, double)>(
        "gem_pool_global");
    const Tensor rows = x.flatten(2);  // (N, C, L), as global_avg_pool
    const Tensor y = std::get<0>(fused.call(rows, p.reshape({}).to(x.scalar_type()), eps));
    return y.reshape(global_output_shape(x, keepdim));
  }
  const Tensor pp = p.reshape({});
  const Tensor xp = x.clamp_min(eps).pow(pp);
  if (!k.has_value()) {
    static auto gap = op_handle<Tensor(const Tensor&, bool)>("global_avg_pool");
    return gap.call(xp, keepdim).pow(1 / pp);
  }
  const int64_t nd = k->size();
  TORCH_CHECK(nd >= 1 && nd <= 3, op, ": kernel_size must have 1 to 3 values, got ", nd);
  const IntVec st = s.has_value() ? s->vec() : IntVec();
  return avg_pool_nd(xp, nd, *k, st, IntVec(nd, 0), false).pow(1 / pp);
}

// Spatial pyramid pooling (He et al. 2014): n×n bins per level, flattened and concatenated.
Tensor spatial_pyramid_pool2d(const Tensor& x, IntArrayRef levels, c10::string_view mode) {
  const char* op = "spatial_pyramid_pool2d";
  check_mode(op, std::string(mode), {"max", "avg"});
  TORCH_CHECK(!levels.empty(), "fancy::", op, ": levels must not be empty");
  TORCH_CHECK(x.dim() == 3 || x.dim() == 4, "fancy::", op, ": input must be (C, H, W) or (N, C, H, W), got ",
              x.dim(), "-D");
  std::vector<Tensor> parts;
  for (int64_t n : levels) {
    TORCH_CHECK(n >= 1, "fancy::", op, ": every level must be at least 1, got ", n);
    parts.push_back(adaptive_nd(std::string(mode).c_str(), x, {n, n}).flatten(x.dim() - 3));
  }
  return at::cat(parts, -1);
}

// Set pooling (GaitSet): max, mean or median over the set dim, each sample over its own
// first lengths[b] elements when lengths is given.
Tensor set_reduce(const Tensor& x, int64_t dim, const std::string& mode) {
  if (mode == "max") return std::get<0>(x.max(dim));
  if (mode == "mean") return x.mean(dim);
  return std::get<0>(x.median(dim));
}

Tensor set_pool(const Tensor& x, int64_t dim, c10::string_view mode_sv, const c10::optional<Tensor>& lengths) {
  const char* op = "set_pool";
  const std::string mode(mode_sv);
  check_mode(op, mode, {"max", "mean", "median"});
  TORCH_CHECK(x.dim() >= 1, "fancy::", op, ": input must have at least one dim");
  const int64_t d = c10::maybe_wrap_dim(dim, x.dim());
  TORCH_CHECK(x.size(d) > 0, "fancy::", op, ": the set dim ", dim, " is empty (a set needs at least one element)");
  if (!lengths.has_value() || !lengths->defined()) return set_reduce(x, d, mode);
  TORCH_CHECK(d != 0, "fancy::", op, ": with lengths, dim 0 is the batch and the set dim must be another one");
  const int64_t N = x.size(0), S = x.size(d);
  TORCH_CHECK(lengths->dim() == 1 && lengths->size(0) == N, "fancy::", op, ": lengths must have shape [", N,
              "] (one per sample), got ", shape_str(lengths->sizes()));
  TORCH_CHECK(!at::isFloatingType(lengths->scalar_type()), "fancy::", op, ": lengths must be integers, got ",
              lengths->scalar_type());
  const Tensor len = lengths->to(at::kLong).cpu();
  std::vector<Tensor> out;
  for (int64_t b = 0; b < N; ++b) {
    const int64_t n = len.data_ptr<int64_t>()[b];
    TORCH_CHECK(n >= 1 && n <= S, "fancy::", op, ": lengths[", b, "] = ", n, " is outside [1, ", S,
                "]; an empty set has no ", mode);
    out.push_back(set_reduce(x.select(0, b).narrow(d - 1, 0, n), d - 1, mode));
  }
  return at::stack(out);
}

// Horizontal pyramid pooling (GaitSet): for each bin count b, b horizontal strips, each
// mean + max; the strips of all bins concatenated: (N, C, Σb).
Tensor horizontal_pyramid_pool(const Tensor& x, IntArrayRef bins) {
  const char* op = "fancy::horizontal_pyramid_pool";
  TORCH_CHECK(x.dim() == 3 || x.dim() == 4, op, ": input must be (C, H, W) or (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK(!bins.empty(), op, ": bins must not be empty");
  const int64_t H = x.size(x.dim() - 2);
  std::vector<Tensor> parts;
  for (int64_t b : bins) {
    TORCH_CHECK(b >= 1 && b <= H, op, ": every bin count must be in [1, H = ", H, "], got ", b);
    parts.push_back((adaptive_nd("avg", x, {b, 1}) + adaptive_nd("max", x, {b, 1})).squeeze(-1));
  }
  return at::cat(parts, -1);
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, CompositeImplicitAutograd, m) {
  m.impl("stochastic_pool1d", TORCH_FN(stochastic_pool<1>));
  m.impl("stochastic_pool2d", TORCH_FN(stochastic_pool<2>));
  m.impl("stochastic_pool3d", TORCH_FN(stochastic_pool<3>));
  m.impl("mixed_pool1d", TORCH_FN(mixed_pool<1>));
  m.impl("mixed_pool2d", TORCH_FN(mixed_pool<2>));
  m.impl("mixed_pool3d", TORCH_FN(mixed_pool<3>));
  m.impl("gated_pool2d", TORCH_FN(gated_pool2d));
  m.impl("sort_pool2d", TORCH_FN(sort_pool2d));
  m.impl("dynamic_kmax_pool", TORCH_FN(dynamic_kmax_pool));
  m.impl("gem_pool", TORCH_FN(gem_pool));
  m.impl("spatial_pyramid_pool2d", TORCH_FN(spatial_pyramid_pool2d));
  m.impl("set_pool", TORCH_FN(set_pool));
  m.impl("horizontal_pyramid_pool", TORCH_FN(horizontal_pyramid_pool));
}

}  // namespace ops
}  // namespace fancy

// ------------------------------------------------------------------ C++ entry points
namespace fancy {

using at::IntArrayRef;
using at::Tensor;

template <size_t D>
Tensor soft_pool(const Tensor& x, const WindowOptions<D>& o) {
  static auto op = ops::op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool)>(
      ops::nd_op_name("soft_pool", D));
  return op.call(x, *o.kernel_size(), *o.stride(), *o.padding(), o.ceil_mode());
}

Tensor lip_pool2d(const Tensor& x, const Tensor& logits, const WindowOptions<2>& o) {
  static auto op = ops::op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool)>(
      "lip_pool2d");
  return op.call(x, logits, *o.kernel_size(), *o.stride(), *o.padding(), o.ceil_mode());
}

template <size_t D>
std::tuple<Tensor, Tensor> stochastic_pool(const Tensor& x, const WindowOptions<D>& o, bool training,
                                           c10::optional<at::Generator> generator, bool return_indices) {
  static auto op = ops::op_handle<std::tuple<Tensor, Tensor>(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef,
                                                             bool, bool, c10::optional<at::Generator>, bool)>(
      ops::nd_op_name("stochastic_pool", D));
  return op.call(x, *o.kernel_size(), *o.stride(), *o.padding(), o.ceil_mode(), training, generator,
                 training && return_indices);  // evaluation has no indices: (Σa²/Σa, empty)
}

template <size_t D>
Tensor mixed_pool(const Tensor& x, const Tensor& alpha, const WindowOptions<D>& o, bool training, bool random,
                  c10::optional<at::Generator> generator) {
  static auto op = ops::op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool,
                                         bool, bool, c10::optional<at::Generator>)>(ops::nd_op_name("mixed_pool", D));
  return op.call(x, alpha, *o.kernel_size(), *o.stride(), *o.padding(), o.ceil_mode(), training, random, generator);
}

Tensor gated_pool2d(const Tensor& x, const Tensor& gate, const WindowOptions<2>& o) {
  static auto op =
      ops::op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef)>("gated_pool2d");
  return op.call(x, gate, *o.kernel_size(), *o.stride(), *o.padding());
}

Tensor sort_pool2d(const Tensor& x, const Tensor& weights, torch::ExpandingArray<2> kernel_size,
                   c10::optional<torch::ExpandingArray<2>> stride, bool softmax) {
  static auto op =
      ops::op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef, bool)>("sort_pool2d");
  return op.call(x, weights, *kernel_size, stride ? IntArrayRef(**stride) : IntArrayRef(), softmax);
}

std::tuple<Tensor, Tensor> kmax_pool(const Tensor& x, int64_t k, int64_t dim) {
  static auto op = ops::op_handle<std::tuple<Tensor, Tensor>(const Tensor&, int64_t, int64_t)>("kmax_pool");
  return op.call(x, k, dim);
}

std::tuple<Tensor, Tensor, Tensor> dynamic_kmax_pool(const Tensor& x, int64_t layer, int64_t num_layers,
                                                     int64_t k_top, const c10::optional<Tensor>& lengths,
                                                     int64_t dim) {
  static auto op = ops::op_handle<std::tuple<Tensor, Tensor, Tensor>(
      const Tensor&, int64_t, int64_t, int64_t, const c10::optional<Tensor>&, int64_t)>("dynamic_kmax_pool");
  return op.call(x, layer, num_layers, k_top, lengths, dim);
}

Tensor gem_pool(const Tensor& x, const Tensor& p, double eps, c10::optional<std::vector<int64_t>> kernel_size,
                c10::optional<std::vector<int64_t>> stride, bool keepdim) {
  static auto op = ops::op_handle<Tensor(const Tensor&, const Tensor&, double, at::OptionalIntArrayRef,
                                         at::OptionalIntArrayRef, bool)>("gem_pool");
  at::OptionalIntArrayRef k, s;
  if (kernel_size) k = IntArrayRef(*kernel_size);
  if (stride) s = IntArrayRef(*stride);
  return op.call(x, p, eps, k, s, keepdim);
}

Tensor spatial_pyramid_pool2d(const Tensor& x, std::vector<int64_t> levels, const std::string& mode) {
  static auto op = ops::op_handle<Tensor(const Tensor&, IntArrayRef, c10::string_view)>("spatial_pyramid_pool2d");
  return op.call(x, levels, mode);
}

Tensor set_pool(const Tensor& x, int64_t dim, const std::string& mode, const c10::optional<Tensor>& lengths) {
  static auto op =
      ops::op_handle<Tensor(const Tensor&, int64_t, c10::string_view, const c10::optional<Tensor>&)>("set_pool");
  return op.call(x, dim, mode, lengths);
}

Tensor horizontal_pyramid_pool(const Tensor& x, std::vector<int64_t> bins) {
  static auto op = ops::op_handle<Tensor(const Tensor&, IntArrayRef)>("horizontal_pyramid_pool");
  return op.call(x, bins);
}

#define FANCY_INSTANTIATE(D)                                                                                   \
  template Tensor soft_pool<D>(const Tensor&, const WindowOptions<D>&);                                        \
  template std::tuple<Tensor, Tensor> stochastic_pool<D>(const Tensor&, const WindowOptions<D>&, bool,          \
                                                         c10::optional<at::Generator>, bool);                  \
  template Tensor mixed_pool<D>(const Tensor&, const Tensor&, const WindowOptions<D>&, bool, bool,              \
                                c10::optional<at::Generator>);
FANCY_INSTANTIATE(1)
FANCY_INSTANTIATE(2)
FANCY_INSTANTIATE(3)
#undef FANCY_INSTANTIATE

}  // namespace fancy
