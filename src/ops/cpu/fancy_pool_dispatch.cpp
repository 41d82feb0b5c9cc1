// CPU implementations of the fancy pooling ops' kernel schemas (src/ops/fancy_pool.cpp):
// argument checks, layout, allocation, and the call into fancy_pool_kernels.
#include "ops/cpu/fancy_pool_kernels.h"
#include "ops/cpu/pool_kernels.h"
#include "ops/large_alloc.h"
#include "ops/op_handle.h"

#include <ATen/core/Generator.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>

namespace fancy {
namespace ops {

const FancyPoolKernels& cpu_fancy_pool_kernels() {
  switch (cpu_isa()) {
    case CpuIsa::Avx512: return cpu_avx512::fancy_pool_kernels;
    case CpuIsa::Avx2: return cpu_avx2::fancy_pool_kernels;
    default: return cpu_default::fancy_pool_kernels;
  }
}

namespace {

using at::IntArrayRef;
using at::Tensor;
using TT = std::tuple<Tensor, Tensor>;

void check_float(const char* op, const char* arg, const Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ", arg, " dtype ",
              t.scalar_type(), " is not supported; expected float32 or float64");
}

// The window geometry of a fancy window op (average pooling's rules: padding at most
// half the kernel, no dilation) and the input as a contiguous 5-D tensor.
struct Windowed {
  PoolGeometry g;
  Tensor x5;
  bool channels_last = false;
};

Windowed windowed(const char* op, const Tensor& x, int64_t nd, IntArrayRef k, IntArrayRef s, IntArrayRef p,
                  bool ceil) {
  check_float(op, "input", x);
  Windowed w;
  w.g = window_geometry(op, x, nd, k, s, p, std::vector<int64_t>(nd, 1), ceil, PaddingRule::HalfKernel);
  w.channels_last = (x.dim() == 4 && nd == 2 && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                     !x.is_contiguous()) ||
                    (x.dim() == 5 && nd == 3 && x.is_contiguous(at::MemoryFormat::ChannelsLast3d) &&
                     !x.is_contiguous());
  w.x5 = as_5d(x.contiguous(), nd, w.g);
  return w;
}

// The output back in the caller's rank and the input's memory format.
Tensor finish(const Tensor& y5, const Tensor& x, int64_t nd, bool channels_last) {
  Tensor y = output_view(y5, x, nd);
  if (!channels_last) return y;
  return y.contiguous(nd == 2 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d);
}

Tensor same_shape_5d(const Tensor& t, int64_t nd, const PoolGeometry& g) {
  PoolGeometry tmp = g;
  return as_5d(t.contiguous(), nd, tmp);
}

// ------------------------------------------------------------------ SoftPool / LIP
Tensor weighted_pool(const char* op, const Tensor& x, const Tensor& logits, int64_t nd, IntArrayRef k,
                     IntArrayRef s, IntArrayRef p, bool ceil) {
  Windowed w = windowed(op, x, nd, k, s, p, ceil);
  Tensor l5 = w.x5;
  if (!logits.is_same(x)) {
    TORCH_CHECK(logits.sizes() == x.sizes(), op, ": logits shape ", shape_str(logits.sizes()),
                " must equal the input shape ", shape_str(x.sizes()));
    TORCH_CHECK(logits.scalar_type() == x.scalar_type(), op, ": logits dtype ", logits.scalar_type(),
                " must equal the input dtype ", x.scalar_type());
    l5 = same_shape_5d(logits, nd, w.g);
  }
  Tensor y5 = new_output_5d(w.g, w.x5.options());
  cpu_fancy_pool_kernels().weighted_forward(w.x5, l5, y5, w.g);
  return finish(y5, x, nd, w.channels_last);
}

template <int64_t ND>
Tensor soft_pool(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  return weighted_pool(nd_op_name("soft_pool", ND).c_str(), x, x, ND, k, s, p, ceil);
}

Tensor lip_pool2d(const Tensor& x, const Tensor& logits, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  return weighted_pool("lip_pool2d", x, logits, 2, k, s, p, ceil);
}

// With logits_are_input (SoftPool) the one gradient comes back first and the second is
// empty; output_mask leaves out (empty) the gradients no one needs.
TT weighted_pool_backward(const Tensor& go, const Tensor& x, const Tensor& logits, const Tensor& y,
                          IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil, bool logits_are_input,
                          std::array<bool, 2> output_mask) {
  const int64_t nd = k.size();
  Windowed w = windowed("weighted_pool_backward", x, nd, k, s, p, ceil);
  Tensor l5 = logits_are_input ? w.x5 : same_shape_5d(logits, nd, w.g);
  Tensor y5 = same_shape_5d(y, nd, w.g), go5 = same_shape_5d(go, nd, w.g);
  const bool want_x = output_mask[0] || logits_are_input, want_l = output_mask[1] && !logits_are_input;
  Tensor gx = want_x ? empty_large(w.x5.sizes(), w.x5.options()) : Tensor();
  Tensor gl = want_l ? empty_large(w.x5.sizes(), w.x5.options()) : Tensor();
  if (want_x || want_l) cpu_fancy_pool_kernels().weighted_backward(go5, w.x5, l5, y5, gx, gl, logits_are_input, w.g);
  return {want_x ? finish(gx, x, nd, w.channels_last) : at::empty({0}, x.options()),
          want_l ? finish(gl, x, nd, w.channels_last) : at::empty({0}, x.options())};
}

// ------------------------------------------------------------------ stochastic
// Called when the kernel saw a value that is not >= 0 (it checks as it reads).
[[noreturn]] void refuse_negative(const char* op, const Tensor& x) {
  const double lowest = x.min().item<double>();
  const std::string value = std::isnan(lowest) ? "NaN" : c10::str(lowest);
  TORCH_CHECK(false, op, ": stochastic pooling needs non-negative activations (p_i = a_i / sum a), "
              "but the input holds ", value, "; apply ReLU (or another non-negative activation) first");
}

// Training when a seed is given (see the composite stochastic_pool{1,2,3}d), else evaluation;
// indices only when asked for (int64, twice the output's bytes).
TT stochastic_pool_forward(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil,
                           c10::optional<int64_t> seed, bool return_indices) {
  const int64_t nd = k.size();
  const std::string name = nd_op_name("stochastic_pool", nd);
  TORCH_CHECK(seed.has_value() || !return_indices, name, ": return_indices needs training=True (evaluation ",
              "takes the probability-weighted mean, not one element)");
  Windowed w = windowed(name.c_str(), x, nd, k, s, p, ceil);
  TORCH_CHECK(w.g.plane_in() < (int64_t(1) << 31), name, ": planes of 2^31 or more elements are not supported ",
              "(positions are kept in 32 bits)");
  Tensor y5 = new_output_5d(w.g, w.x5.options());
  Tensor i5 = return_indices ? new_output_5d(w.g, w.x5.options().dtype(at::kLong)) : Tensor();
  const uint64_t u = static_cast<uint64_t>(seed.value_or(0));
  if (!cpu_fancy_pool_kernels().stochastic_forward(w.x5, seed.has_value(), u, y5, return_indices ? &i5 : nullptr,
                                                   w.g)) {
    refuse_negative(name.c_str(), x);
  }
  return {finish(y5, x, nd, w.channels_last),
          return_indices ? finish(i5, x, nd, w.channels_last) : at::empty({0}, x.options().dtype(at::kLong))};
}

Tensor stochastic_pool_train_backward(const Tensor& go, const Tensor& x, int64_t seed, IntArrayRef k, IntArrayRef s,
                                      IntArrayRef p, bool ceil) {
  const int64_t nd = k.size();
  const char* op = "stochastic_pool_train_backward";
  Windowed w = windowed(op, x, nd, k, s, p, ceil);
  TORCH_CHECK(go.numel() == w.g.N * w.g.C * w.g.plane_out(), op, ": grad_output (shape ", shape_str(go.sizes()),
              ") does not match the pooled shape of the input");
  Tensor go5 = same_shape_5d(go, nd, w.g);
  Tensor gx = empty_large(w.x5.sizes(), w.x5.options());
  cpu_fancy_pool_kernels().stochastic_train_backward(go5, w.x5, static_cast<uint64_t>(seed), gx, w.g);
  return finish(gx, x, nd, w.channels_last);
}

Tensor stochastic_pool_eval_backward(const Tensor& go, const Tensor& x, const Tensor& y, IntArrayRef k,
                                     IntArrayRef s, IntArrayRef p, bool ceil) {
  const int64_t nd = k.size();
  Windowed w = windowed("stochastic_pool_eval_backward", x, nd, k, s, p, ceil);
  Tensor y5 = same_shape_5d(y, nd, w.g), go5 = same_shape_5d(go, nd, w.g);
  Tensor gx = empty_large(w.x5.sizes(), w.x5.options()).zero_();
  cpu_fancy_pool_kernels().stochastic_eval_backward(go5, w.x5, y5, gx, w.g);
  return finish(gx, x, nd, w.channels_last);
}

// ------------------------------------------------------------------ GeM (global)
// x: (N, C, L). Returns y (N, C) and, per row, mean z^p and mean z^p·ln z (float64).
std::tuple<Tensor, Tensor, Tensor> gem_pool_global(const Tensor& x, const Tensor& p, double eps) {
  const char* op = "gem_pool_global";
  check_float(op, "input", x);
  TORCH_CHECK(x.dim() == 3 && x.size(2) >= 1, op, ": input must be (N, C, L) with L >= 1, got shape ",
              shape_str(x.sizes()));
  TORCH_CHECK(p.numel() == 1, op, ": p must hold one value, got shape ", shape_str(p.sizes()));
  TORCH_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  const Tensor rows = x.reshape({-1, x.size(2)}).contiguous();
  Tensor y = at::empty({rows.size(0)}, x.options());
  Tensor S = at::empty({rows.size(0)}, x.options().dtype(at::kDouble));
  Tensor Tm = at::empty({rows.size(0)}, x.options().dtype(at::kDouble));
  cpu_fancy_pool_kernels().gem_forward(rows, p.item<double>(), eps, y, S, Tm);
  return {y.view({x.size(0), x.size(1)}), S, Tm};
}

TT gem_pool_global_backward(const Tensor& go, const Tensor& x, const Tensor& p, double eps, const Tensor& y,
                            const Tensor& S, const Tensor& Tm, std::array<bool, 2> output_mask) {
  const char* op = "gem_pool_global_backward";
  TORCH_CHECK(x.dim() == 3 && go.sizes() == y.sizes() && y.numel() == x.size(0) * x.size(1) &&
                  S.numel() == y.numel() && Tm.numel() == y.numel(),
              op, ": shapes do not match (input ", shape_str(x.sizes()), ", grad_output ", shape_str(go.sizes()),
              ", result ", shape_str(y.sizes()), ")");
  const double pv = p.item<double>();
  const Tensor rows = x.reshape({-1, x.size(2)}).contiguous();
  const Tensor gof = go.reshape({-1}).contiguous(), yf = y.reshape({-1}).contiguous();
  Tensor gx;
  if (output_mask[0]) {
    gx = empty_large(rows.sizes(), rows.options());
    cpu_fancy_pool_kernels().gem_backward(gof, rows, pv, eps, yf, S, gx);
    gx = gx.view(x.sizes());
  }
  Tensor gp;
  if (output_mask[1]) {
    // ∂y/∂p = y·(Tm/(p·S) − ln S/p²), summed over rows in order.
    const Tensor g64 = gof.to(at::kDouble), y64 = yf.to(at::kDouble);
    const double *gq = g64.data_ptr<double>(), *yq = y64.data_ptr<double>();
    const double *sq = S.data_ptr<double>(), *tq = Tm.data_ptr<double>();
    double acc = 0;
    for (int64_t r = 0; r < y64.numel(); ++r) acc += gq[r] * yq[r] * (tq[r] / (pv * sq[r]) - std::log(sq[r]) / (pv * pv));
    gp = at::full(p.sizes(), acc, p.options());
  }
  return {output_mask[0] ? gx : at::empty({0}, x.options()), output_mask[1] ? gp : at::empty({0}, p.options())};
}

// ------------------------------------------------------------------ mixed pooling
// alpha as the kernel reads it: mode 0 (one value), 1 (one per channel) or 2 (one per
// output, in the output's shape), contiguous, in the input's dtype.
struct MixedAlpha {
  Tensor a;
  int mode;
};

MixedAlpha mixed_alpha(const char* op, const Tensor& alpha, const Tensor& x, int64_t nd, const PoolGeometry& g) {
  TORCH_CHECK(alpha.scalar_type() == x.scalar_type(), op, ": alpha dtype ", alpha.scalar_type(),
              " must equal the input dtype ", x.scalar_type());
  if (alpha.numel() == 1) return {alpha.reshape({1}).contiguous(), 0};
  if (alpha.dim() == 1 && alpha.numel() == g.C) return {alpha.contiguous(), 1};
  PoolGeometry tmp = g;
  const Tensor y_like = output_view(new_output_5d(g, x.options()), x, nd);
  TORCH_CHECK(alpha.sizes() == y_like.sizes(), op, ": alpha must hold one value, one per channel (", g.C,
              ") or one per output ", shape_str(y_like.sizes()), ", got shape ", shape_str(alpha.sizes()));
  return {as_5d(alpha.contiguous(), nd, tmp), 2};
}

Tensor mixed_pool_tiled(const Tensor& x, const Tensor& alpha, IntArrayRef k) {
  const char* op = "mixed_pool_tiled";
  const int64_t nd = k.size();
  Windowed w = windowed(op, x, nd, k, k, std::vector<int64_t>(nd, 0), false);
  const MixedAlpha a = mixed_alpha(op, alpha, x, nd, w.g);
  Tensor y5 = new_output_5d(w.g, w.x5.options());
  cpu_fancy_pool_kernels().mixed_forward(w.x5, a.a, a.mode, y5, w.g);
  return finish(y5, x, nd, w.channels_last);
}

TT mixed_pool_tiled_backward(const Tensor& go, const Tensor& x, const Tensor& alpha, IntArrayRef k,
                             std::array<bool, 2> output_mask) {
  const char* op = "mixed_pool_tiled_backward";
  const int64_t nd = k.size();
  Windowed w = windowed(op, x, nd, k, k, std::vector<int64_t>(nd, 0), false);
  const MixedAlpha a = mixed_alpha(op, alpha, x, nd, w.g);
  TORCH_CHECK(!(output_mask[1] && a.mode == 2), op, ": no gradient for an alpha per output (random mixing)");
  Tensor go5 = same_shape_5d(go, nd, w.g);
  Tensor gx = output_mask[0] ? empty_large(w.x5.sizes(), w.x5.options()) : Tensor();
  const int64_t rows = w.g.N * w.g.C * w.g.dim[0].out * w.g.dim[1].out;
  Tensor row_sums = output_mask[1] ? at::empty({rows}, x.options()) : Tensor();
  cpu_fancy_pool_kernels().mixed_backward(go5, w.x5, a.a, a.mode, gx, row_sums, w.g);
  Tensor galpha;
  if (output_mask[1]) {
    // ∂α = Σ go·(max − mean): the rows' sums added in order (any thread count, same bits).
    galpha = at::zeros({a.mode == 0 ? int64_t(1) : w.g.C}, at::TensorOptions().dtype(at::kDouble));
    double* gp = galpha.data_ptr<double>();
    const Tensor rs = row_sums.to(at::kDouble);
    const double* rp = rs.data_ptr<double>();
    const int64_t per_channel = rows / (w.g.N * w.g.C);
    for (int64_t r = 0; r < rows; ++r) gp[a.mode == 0 ? 0 : (r / per_channel) % w.g.C] += rp[r];
    galpha = galpha.to(alpha.scalar_type()).view(alpha.sizes());
  }
  return {output_mask[0] ? finish(gx, x, nd, w.channels_last) : at::empty({0}, x.options()),
          output_mask[1] ? galpha : at::empty({0}, x.options())};
}

// ------------------------------------------------------------------ sort pooling
Tensor sort_pool2d_forward(const Tensor& x, const Tensor& weights, IntArrayRef k, IntArrayRef s) {
  const char* op = "sort_pool2d";
  TORCH_CHECK(weights.dim() == 1 && weights.numel() >= 1, op, ": weights must be a non-empty 1-D tensor ",
              "(one weight per kept rank), got shape ", shape_str(weights.sizes()));
  Windowed w = windowed(op, x, 2, k, s, {0, 0}, false);
  const int64_t window = w.g.dim[1].k * w.g.dim[2].k;
  TORCH_CHECK(weights.numel() <= window, op, ": ", weights.numel(), " weights but a ", w.g.dim[1].k, "x",
              w.g.dim[2].k, " window holds only ", window, " values (weights must be at most the window size)");
  TORCH_CHECK(weights.scalar_type() == x.scalar_type(), op, ": weights dtype ", weights.scalar_type(),
              " must equal the input dtype ", x.scalar_type());
  Tensor y5 = new_output_5d(w.g, w.x5.options());
  cpu_fancy_pool_kernels().sort_forward(w.x5, weights.contiguous(), y5, w.g);
  return finish(y5, x, 2, w.channels_last);
}

TT sort_pool2d_backward(const Tensor& go, const Tensor& x, const Tensor& weights, IntArrayRef k, IntArrayRef s) {
  const char* op = "sort_pool2d_backward";
  Windowed w = windowed(op, x, 2, k, s, {0, 0}, false);
  TORCH_CHECK(go.numel() == w.g.N * w.g.C * w.g.plane_out(), op, ": grad_output (shape ", shape_str(go.sizes()),
              ") does not match the pooled shape of the input");
  Tensor gx = empty_large(w.x5.sizes(), x.options());
  Tensor gw = at::empty({weights.numel()}, weights.options());
  cpu_fancy_pool_kernels().sort_backward(same_shape_5d(go, 2, w.g), w.x5, weights.contiguous(), gx, gw, w.g);
  return {finish(gx, x, 2, w.channels_last), gw};
}

// ------------------------------------------------------------------ k-max
TT kmax_pool(const Tensor& x, int64_t k, int64_t dim) {
  const char* op = "kmax_pool";
  check_float(op, "input", x);
  TORCH_CHECK(x.dim() >= 1, op, ": input must have at least one dim");
  const int64_t d = c10::maybe_wrap_dim(dim, x.dim());
  const int64_t L = x.size(d);
  TORCH_CHECK(k >= 1, op, ": k must be at least 1, got ", k);
  TORCH_CHECK(k <= L, op, ": k = ", k, " is larger than dim ", dim, " of the input (size ", L, ")");
  Tensor xt = x.movedim(d, -1).contiguous();
  Tensor rows = xt.view({-1, L});
  Tensor values = at::empty({rows.size(0), k}, x.options());
  Tensor indices = at::empty({rows.size(0), k}, x.options().dtype(at::kLong));
  cpu_fancy_pool_kernels().kmax_forward(rows, k, values, indices);
  std::vector<int64_t> shape(xt.sizes().begin(), xt.sizes().end());
  shape.back() = k;
  return {values.view(shape).movedim(-1, d), indices.view(shape).movedim(-1, d)};
}

// grad_output and indices: the forward's (..., k) along `dim`; the gradient has self's sizes.
Tensor kmax_pool_backward(const Tensor& go, const Tensor& indices, IntArrayRef self_sizes, int64_t dim) {
  const char* op = "kmax_pool_backward";
  check_float(op, "grad_output", go);
  TORCH_CHECK(indices.scalar_type() == at::kLong && indices.sizes() == go.sizes() &&
                  go.dim() == int64_t(self_sizes.size()),
              op, ": indices (", indices.scalar_type(), ", shape ", shape_str(indices.sizes()),
              ") must be int64 and match grad_output ", shape_str(go.sizes()), " and the input's rank");
  const int64_t d = c10::maybe_wrap_dim(dim, go.dim());
  const int64_t L = self_sizes[d], k = go.size(d);
  const Tensor gt = go.movedim(d, -1).contiguous().view({-1, k});
  const Tensor it = indices.movedim(d, -1).contiguous().view({-1, k});
  Tensor gx = empty_large({gt.size(0), L}, go.options());
  cpu_fancy_pool_kernels().kmax_backward(gt, it, gx);
  std::vector<int64_t> shape(self_sizes.begin(), self_sizes.end());
  shape.erase(shape.begin() + d);
  shape.push_back(L);
  return gx.view(shape).movedim(-1, d);
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, CPU, m) {
  m.impl("soft_pool1d", TORCH_FN(soft_pool<1>));
  m.impl("soft_pool2d", TORCH_FN(soft_pool<2>));
  m.impl("soft_pool3d", TORCH_FN(soft_pool<3>));
  m.impl("lip_pool2d", TORCH_FN(lip_pool2d));
  m.impl("weighted_pool_backward", TORCH_FN(weighted_pool_backward));
  m.impl("stochastic_pool_forward", TORCH_FN(stochastic_pool_forward));
  m.impl("stochastic_pool_train_backward", TORCH_FN(stochastic_pool_train_backward));
  m.impl("stochastic_pool_eval_backward", TORCH_FN(stochastic_pool_eval_backward));
  m.impl("gem_pool_global", TORCH_FN(gem_pool_global));
  m.impl("gem_pool_global_backward", TORCH_FN(gem_pool_global_backward));
  m.impl("mixed_pool_tiled", TORCH_FN(mixed_pool_tiled));
  m.impl("mixed_pool_tiled_backward", TORCH_FN(mixed_pool_tiled_backward));
  m.impl("sort_pool2d_forward", TORCH_FN(sort_pool2d_forward));
  m.impl("sort_pool2d_backward", TORCH_FN(sort_pool2d_backward));
  m.impl("kmax_pool", TORCH_FN(kmax_pool));
  m.impl("kmax_pool_backward", TORCH_FN(kmax_pool_backward));
}

}  // namespace ops
}  // namespace fancy
