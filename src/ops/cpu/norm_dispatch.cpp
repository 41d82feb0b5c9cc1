// CPU implementation of batch_norm_relu (schemas in src/ops/norm.cpp): argument checks,
// the memory layout, the per-channel coefficients and the running statistics here; the
// passes over the data in norm_kernels.cpp, for this machine's instruction set.
//
// Forward, with mean μ and invstd σ = 1/√(var + eps) per channel:
//   y = max(0, x·k + h),  k = γσ, h = β − μγσ
// Backward, with gz = g where y > 0 (else 0) and M elements per channel:
//   ∂β = Σ gz,  ∂γ = σ Σ gz (x − μ)
//   training:   ∂x = γσ (gz − Σgz / M − (x − μ) σ² Σgz(x − μ) / M) = a·gz + b·x + d
//   evaluation: ∂x = γσ·gz (μ and σ are constants)
#include "ops/cpu/norm_kernels.h"
#include "ops/cpu/pool_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <tuple>
#include <vector>

namespace fancy {
namespace ops {

const NormKernels& cpu_norm_kernels() {
  switch (cpu_isa()) {
    case CpuIsa::Avx512: return cpu_avx512::norm_kernels;
    case CpuIsa::Avx2: return cpu_avx2::norm_kernels;
    default: return cpu_default::norm_kernels;
  }
}

namespace {

using at::Tensor;
using OptTensor = c10::optional<Tensor>;
constexpr const char* kOp = "fancy::batch_norm_relu";

bool defined(const OptTensor& t) { return t.has_value() && t->defined(); }

// The memory format the op reads and writes: channels-last stays channels-last, any
// other layout is made contiguous.
at::MemoryFormat layout_of(const Tensor& x) {
  if (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous())
    return at::MemoryFormat::ChannelsLast;
  if (x.dim() == 5 && x.is_contiguous(at::MemoryFormat::ChannelsLast3d) && !x.is_contiguous())
    return at::MemoryFormat::ChannelsLast3d;
  return at::MemoryFormat::Contiguous;
}

ChannelLayout channel_layout(const Tensor& x, at::MemoryFormat format) {
  const int64_t C = x.size(1), outer = x.size(0);
  const int64_t inner = x.numel() / std::max<int64_t>(1, outer * C);
  if (format == at::MemoryFormat::Contiguous) return {outer, C, inner};
  return {outer * inner, C, 1};
}

// A per-channel argument as float64 values (`fill` when absent). Read in place: the op
// runs once per layer per step, and small tensor ops (detach, to, copy) would cost more
// than the passes over a small map.
std::vector<double> channel_values(const OptTensor& t, int64_t C, double fill) {
  std::vector<double> v(C, fill);
  if (!defined(t)) return v;
  const Tensor d = t->is_contiguous() ? *t : t->contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, d.scalar_type(), "batch_norm_relu", [&] {
    const scalar_t* p = d.data_ptr<scalar_t>();
    for (int64_t c = 0; c < C; ++c) v[c] = static_cast<double>(p[c]);
  });
  return v;
}

// A new 1-D tensor of dtype st holding v.
Tensor to_tensor(const std::vector<double>& v, at::ScalarType st) {
  Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(st));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, st, "batch_norm_relu", [&] {
    scalar_t* p = t.data_ptr<scalar_t>();
    for (size_t c = 0; c < v.size(); ++c) p[c] = static_cast<scalar_t>(v[c]);
  });
  return t;
}

// buffer ← (1 − momentum)·buffer + momentum·v, in place (a running statistic).
void update_running(const Tensor& buffer, const std::vector<double>& v, double momentum) {
  TORCH_CHECK(buffer.is_contiguous(), kOp, ": running statistics must be contiguous");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, buffer.scalar_type(), "batch_norm_relu", [&] {
    scalar_t* p = buffer.data_ptr<scalar_t>();
    for (size_t c = 0; c < v.size(); ++c)
      p[c] = static_cast<scalar_t>((1 - momentum) * static_cast<double>(p[c]) + momentum * v[c]);
  });
}

void check_channel_arg(const OptTensor& t, const char* name, int64_t C) {
  if (!defined(t)) return;
  TORCH_CHECK(t->dim() == 1 && t->size(0) == C, kOp, ": ", name, " must have one value per channel (shape [", C,
              "]), got shape ", t->sizes());
  TORCH_CHECK(at::isFloatingType(t->scalar_type()), kOp, ": ", name, " must be floating point, got ",
              t->scalar_type());
}

void check_input(const Tensor& x) {
  TORCH_CHECK(x.dim() >= 2, kOp, ": input must have at least 2 dims (N, C, …), got ", x.dim(), "-D input");
  const auto st = x.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kDouble || st == at::kBFloat16, kOp,
              ": input must be float32, float64 or bfloat16, got ", st);
}

// float32 for float32 and bfloat16 input (as ATen saves them), float64 for float64.
at::ScalarType stats_type(const Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

std::tuple<Tensor, Tensor, Tensor> batch_norm_relu_forward(const Tensor& input, const OptTensor& running_mean,
                                                           const OptTensor& running_var, const OptTensor& weight,
                                                           const OptTensor& bias, bool training, double momentum,
                                                           double eps) {
  check_input(input);
  const int64_t C = input.size(1);
  check_channel_arg(weight, "weight", C);
  check_channel_arg(bias, "bias", C);
  check_channel_arg(running_mean, "running_mean", C);
  check_channel_arg(running_var, "running_var", C);
  TORCH_CHECK(defined(running_mean) == defined(running_var), kOp,
              ": running_mean and running_var must be given together (got only ",
              defined(running_mean) ? "running_mean" : "running_var", ")");
  TORCH_CHECK(training || defined(running_mean), kOp,
              ": running_mean and running_var must be given in evaluation mode (training=False)");
  TORCH_CHECK(eps >= 0 && std::isfinite(eps), kOp, ": eps (", eps, ") must be finite and >= 0");
  const auto format = layout_of(input);
  const Tensor x = input.contiguous(format);
  const ChannelLayout l = channel_layout(x, format);
  const int64_t M = l.per_channel();
  TORCH_CHECK(!training || M > 1, kOp, ": training needs more than 1 value per channel, got input of shape ",
              input.sizes());
  const auto& k = cpu_norm_kernels();
  std::vector<double> mean(C), var(C);
  if (training) {
    k.channel_stats(x.scalar_type(), x.data_ptr(), l, mean.data(), var.data());
    if (defined(running_mean)) {  // as torch: the running variance is the unbiased one
      const double unbiased = static_cast<double>(M) / static_cast<double>(M - 1);
      std::vector<double> v(var);
      for (double& e : v) e *= unbiased;
      update_running(*running_mean, mean, momentum);
      update_running(*running_var, v, momentum);
    }
  } else {
    mean = channel_values(running_mean, C, 0);
    var = channel_values(running_var, C, 0);
  }
  const auto gamma = channel_values(weight, C, 1), beta = channel_values(bias, C, 0);
  std::vector<double> invstd(C), scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    invstd[c] = 1 / std::sqrt(var[c] + eps);
    scale[c] = gamma[c] * invstd[c];
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  Tensor y = at::empty_like(x, x.options(), format);
  if (x.numel() > 0) k.affine_relu(x.scalar_type(), x.data_ptr(), y.data_ptr(), l, scale.data(), shift.data());
  return {y, to_tensor(mean, stats_type(x)), to_tensor(invstd, stats_type(x))};
}

Tensor batch_norm_relu(const Tensor& input, const OptTensor& running_mean, const OptTensor& running_var,
                       const OptTensor& weight, const OptTensor& bias, bool training, double momentum, double eps) {
  return std::get<0>(batch_norm_relu_forward(input, running_mean, running_var, weight, bias, training, momentum, eps));
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_relu_backward(const Tensor& grad_output, const Tensor& input,
                                                            const Tensor& output, const OptTensor& weight,
                                                            const Tensor& mean_t, const Tensor& invstd_t,
                                                            bool training, std::array<bool, 3> mask) {
  check_input(input);
  const int64_t C = input.size(1);
  TORCH_CHECK(grad_output.sizes() == input.sizes() && output.sizes() == input.sizes(), kOp,
              ": grad_output ", grad_output.sizes(), " and output ", output.sizes(), " must have the input's shape ",
              input.sizes());
  check_channel_arg(weight, "weight", C);
  check_channel_arg(mean_t, "mean", C);
  check_channel_arg(invstd_t, "invstd", C);
  const auto format = layout_of(input);
  const auto st = input.scalar_type();
  const Tensor x = input.contiguous(format), y = output.to(st).contiguous(format);
  const Tensor g = grad_output.to(st).contiguous(format);
  const ChannelLayout l = channel_layout(x, format);
  const auto& k = cpu_norm_kernels();
  const auto mean = channel_values(mean_t, C, 0), invstd = channel_values(invstd_t, C, 0);
  const auto gamma = channel_values(weight, C, 1);
  const bool need_sums = mask[1] || mask[2] || (mask[0] && training);
  std::vector<double> sum_g(C, 0.0), sum_gx(C, 0.0);
  if (need_sums && x.numel() > 0)
    k.relu_grad_sums(st, g.data_ptr(), x.data_ptr(), y.data_ptr(), l, mean.data(), sum_g.data(), sum_gx.data());
  Tensor gx, gw, gb;
  if (mask[0]) {
    std::vector<double> a(C), b(C, 0.0), d(C, 0.0);
    const double M = static_cast<double>(l.per_channel());
    for (int64_t c = 0; c < C; ++c) {
      a[c] = gamma[c] * invstd[c];
      if (training) {
        b[c] = -a[c] * invstd[c] * invstd[c] * sum_gx[c] / M;
        d[c] = -a[c] * sum_g[c] / M - b[c] * mean[c];
      }
    }
    gx = at::empty_like(x, x.options(), format);
    if (x.numel() > 0)
      k.input_grad(st, g.data_ptr(), x.data_ptr(), y.data_ptr(), gx.data_ptr(), l, a.data(), b.data(), d.data());
  }
  const auto param_type = defined(weight) ? weight->scalar_type() : stats_type(x);
  if (mask[1]) {
    std::vector<double> v(C);
    for (int64_t c = 0; c < C; ++c) v[c] = sum_gx[c] * invstd[c];
    gw = to_tensor(v, param_type);
  }
  if (mask[2]) gb = to_tensor(sum_g, param_type);
  return {gx, gw, gb};
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, CPU, m) {
  m.impl("batch_norm_relu", TORCH_FN(batch_norm_relu));
  m.impl("batch_norm_relu_forward", TORCH_FN(batch_norm_relu_forward));
  m.impl("batch_norm_relu_backward", TORCH_FN(batch_norm_relu_backward));
}

}  // namespace ops
}  // namespace fancy
