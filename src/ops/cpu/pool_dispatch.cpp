// CPU implementations of the pooling schemas: argument checks and shapes from
// ops/pool_geometry.h, then the kernel for this machine's instruction set.
#include "ops/cpu/pool_kernels.h"
#include "ops/large_alloc.h"
#include "ops/op_handle.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstdlib>
#include <string>

namespace fancy {
namespace ops {

CpuIsa cpu_isa() {
#if defined(__x86_64__) || defined(_M_X64)
  static const CpuIsa best = [] {
    // FANCY_CPU=default|avx2|avx512 caps the instruction set (for comparisons and for
    // machines whose wide vectors are slow).
    const char* cap = std::getenv("FANCY_CPU");
    const std::string want = cap ? cap : "avx512";
    if (want == "default") return CpuIsa::Default;
    if (want == "avx512" && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
      return CpuIsa::Avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::Avx2;
    return CpuIsa::Default;
  }();
  return best;
#else
  return CpuIsa::Default;
#endif
}

const PoolKernels& cpu_pool_kernels() {
  switch (cpu_isa()) {
    case CpuIsa::Avx512: return cpu_avx512::pool_kernels;
    case CpuIsa::Avx2: return cpu_avx2::pool_kernels;
    default: return cpu_default::pool_kernels;
  }
}

namespace {

using at::IntArrayRef;
using at::Tensor;
using TT = std::tuple<Tensor, Tensor>;

// t (5-D) in the layout g asks for.
Tensor in_layout(const Tensor& t5, bool channels_last) {
  if (!channels_last) return t5.contiguous();
  return t5.permute({0, 2, 3, 4, 1}).contiguous().permute({0, 4, 1, 2, 3});
}

// A tensor shaped like g's input side, in g's layout: zeros, or left uninitialised for a
// kernel that writes every element itself.
Tensor input_5d(const PoolGeometry& g, const at::TensorOptions& opt, bool zeroed = true) {
  const auto& d = g.dim;
  const bool cl = g.channels_last;
  const std::vector<int64_t> shape = cl ? std::vector<int64_t>{g.N, d[0].in, d[1].in, d[2].in, g.C}
                                        : std::vector<int64_t>{g.N, g.C, d[0].in, d[1].in, d[2].in};
  Tensor t = empty_large(shape, opt);
  if (zeroed) t.zero_();
  return cl ? t.permute({0, 4, 1, 2, 3}) : t;
}

PaddingRule max_padding_rule(int64_t nd) {
  // ATen checks max_pool2d's padding against the dilated kernel, 1-D and 3-D against k.
  return nd == 2 ? PaddingRule::HalfEffectiveKernel : PaddingRule::HalfKernel;
}

template <int64_t ND>
TT extremum_pool(Reduce op, const char* stem, bool want_idx, const Tensor& x, IntArrayRef k,
                 IntArrayRef s, IntArrayRef p, IntArrayRef d, bool ceil) {
  const std::string name = nd_op_name(stem, ND);
  PoolParams pp;
  pp.g = window_geometry(name.c_str(), x, ND, k, s, p, d, ceil, max_padding_rule(ND));
  pp.op = op;
  Tensor x5 = as_5d(x, ND, pp.g);
  Tensor y5 = new_output_5d(pp.g, x.options());
  Tensor i5 = want_idx ? new_output_5d(pp.g, x.options().dtype(at::kLong)) : Tensor();
  cpu_pool_kernels().forward(x5, y5, want_idx ? &i5 : nullptr, pp);
  return {output_view(y5, x, ND), want_idx ? output_view(i5, x, ND) : Tensor()};
}

template <int64_t ND>
Tensor max_pool(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, IntArrayRef d, bool c) {
  return std::get<0>(extremum_pool<ND>(Reduce::Max, "max_pool", false, x, k, s, p, d, c));
}
template <int64_t ND>
TT max_pool_with_indices(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, IntArrayRef d, bool c) {
  return extremum_pool<ND>(Reduce::Max, "max_pool", true, x, k, s, p, d, c);
}
template <int64_t ND>
Tensor min_pool(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, IntArrayRef d, bool c) {
  return std::get<0>(extremum_pool<ND>(Reduce::Min, "min_pool", false, x, k, s, p, d, c));
}
template <int64_t ND>
TT min_pool_with_indices(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, IntArrayRef d, bool c) {
  return extremum_pool<ND>(Reduce::Min, "min_pool", true, x, k, s, p, d, c);
}

std::vector<int64_t> ones(int64_t nd) { return std::vector<int64_t>(nd, 1); }

PoolParams avg_params(const char* name, const Tensor& x, int64_t nd, IntArrayRef k, IntArrayRef s,
                      IntArrayRef p, bool ceil, bool cip, c10::optional<int64_t> div) {
  PoolParams pp;
  pp.g = window_geometry(name, x, nd, k, s, p, ones(nd), ceil, PaddingRule::HalfKernel);
  pp.op = Reduce::Avg;
  pp.count_include_pad = cip;
  if (div) {
    TORCH_CHECK(*div != 0, name, ": divisor_override must be non-zero, got ", *div);
    TORCH_CHECK(*div > 0, name, ": divisor_override must be positive, got ", *div);
    pp.divisor_override = *div;
  }
  return pp;
}

template <int64_t ND>
Tensor avg_pool(const Tensor& x, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil, bool cip,
                c10::optional<int64_t> div) {
  const std::string name = nd_op_name("avg_pool", ND);
  PoolParams pp = avg_params(name.c_str(), x, ND, k, s, p, ceil, cip, div);
  Tensor x5 = as_5d(x, ND, pp.g);
  Tensor y5 = new_output_5d(pp.g, x.options());
  cpu_pool_kernels().forward(x5, y5, nullptr, pp);
  return output_view(y5, x, ND);
}

PoolParams lp_params(const char* name, const Tensor& x, int64_t nd, double norm, IntArrayRef k,
                     IntArrayRef s, IntArrayRef p, bool ceil) {
  TORCH_CHECK(norm > 0 && !std::isnan(norm), name, ": norm_type must be positive (or inf), got ", norm);
  PoolParams pp;
  pp.g = window_geometry(name, x, nd, k, s, p, ones(nd), ceil, PaddingRule::HalfKernel);
  pp.op = Reduce::Lp;
  pp.norm_type = norm;
  return pp;
}

template <int64_t ND>
Tensor lp_pool(const Tensor& x, double norm, IntArrayRef k, IntArrayRef s, bool ceil, IntArrayRef p) {
  const std::string name = nd_op_name("lp_pool", ND);
  PoolParams pp = lp_params(name.c_str(), x, ND, norm, k, s, p, ceil);
  Tensor x5 = as_5d(x, ND, pp.g);
  Tensor y5 = new_output_5d(pp.g, x.options());
  cpu_pool_kernels().forward(x5, y5, nullptr, pp);
  return output_view(y5, x, ND);
}

template <int64_t ND>
Tensor adaptive_avg_pool(const Tensor& x, IntArrayRef out) {
  const std::string name = nd_op_name("adaptive_avg_pool", ND);
  PoolParams pp;
  pp.g = adaptive_geometry(name.c_str(), x, ND, out);
  pp.op = Reduce::Avg;
  Tensor x5 = as_5d(x, ND, pp.g);
  Tensor y5 = new_output_5d(pp.g, x.options());
  cpu_pool_kernels().forward(x5, y5, nullptr, pp);
  return output_view(y5, x, ND);
}

template <int64_t ND>
TT adaptive_max_pool(const Tensor& x, IntArrayRef out) {
  const std::string name = nd_op_name("adaptive_max_pool", ND);
  PoolParams pp;
  pp.g = adaptive_geometry(name.c_str(), x, ND, out);
  pp.op = Reduce::Max;
  Tensor x5 = as_5d(x, ND, pp.g);
  Tensor y5 = new_output_5d(pp.g, x.options());
  Tensor i5 = new_output_5d(pp.g, x.options().dtype(at::kLong));
  cpu_pool_kernels().forward(x5, y5, &i5, pp);
  return {output_view(y5, x, ND), output_view(i5, x, ND)};
}

// Global pooling reads x in place (or a copy, for odd strides) and writes the final output
// directly: the kernels look only at data pointers and the geometry. The composite it
// replaces (flatten → 1-D pooling → 5-D views → reshape) took ten view ops a call; after an
// op that streams through the caches (as a network's previous layer does) each one
// missed, and on 64×32×28×28 channels-last max they cost 20–40 µs against a 120 µs kernel.
Tensor global_pool(Reduce op, const char* name, const Tensor& x, bool keepdim) {
  PoolParams pp;
  pp.op = op;
  const Tensor rows = global_rows(name, x, pp.g);
  // Output in the input's memory format: the same memory either way, only the strides differ.
  c10::optional<at::MemoryFormat> format;
  if (keepdim && pp.g.channels_last && x.dim() == 4) format = at::MemoryFormat::ChannelsLast;
  if (keepdim && pp.g.channels_last && x.dim() == 5) format = at::MemoryFormat::ChannelsLast3d;
  Tensor y = at::empty(global_output_shape(x, keepdim), x.options(), format);
  if (y.numel() > 0) cpu_pool_kernels().forward(rows, y, nullptr, pp);
  return y;
}

Tensor global_avg_pool(const Tensor& x, bool keepdim) {
  return global_pool(Reduce::Avg, "global_avg_pool", x, keepdim);
}

Tensor global_max_pool(const Tensor& x, bool keepdim) {
  return global_pool(Reduce::Max, "global_max_pool", x, keepdim);
}

// Geometry of unpooling: `in` is the unpooled (output) side, `out` the pooled input.
PoolGeometry unpool_geometry(const char* name, const Tensor& x, const Tensor& indices, int64_t nd,
                             IntArrayRef k, IntArrayRef s, IntArrayRef p, at::OptionalIntArrayRef size) {
  check_input(name, x, nd);
  TORCH_CHECK(indices.scalar_type() == at::kLong, name, ": indices must be int64, got ",
              indices.scalar_type());
  TORCH_CHECK(indices.sizes() == x.sizes(), name, ": indices shape ", shape_str(indices.sizes()),
              " must equal the input shape ", shape_str(x.sizes()));
  auto len = [&](const char* arg, IntArrayRef v) {
    TORCH_CHECK(static_cast<int64_t>(v.size()) == nd, name, ": ", arg, " must have ", nd,
                " elements, got ", shape_str(v));
  };
  len("kernel_size", k);
  if (!s.empty()) len("stride", s);
  len("padding", p);
  PoolGeometry g;
  const int64_t r = x.dim();
  g.N = r == nd + 2 ? x.size(0) : 1;
  g.C = x.size(r - nd - 1);
  std::vector<int64_t> def(nd);
  for (int64_t i = 0; i < nd; ++i) {
    const int64_t kk = k[i], ss = s.empty() ? kk : s[i], pd = p[i];
    TORCH_CHECK(kk > 0, name, ": kernel_size must be positive, got ", shape_str(k));
    TORCH_CHECK(ss > 0, name, ": stride must be positive, got ", shape_str(s));
    TORCH_CHECK(pd >= 0, name, ": padding must be non-negative, got ", shape_str(p));
    def[i] = (x.size(r - nd + i) - 1) * ss - 2 * pd + kk;
  }
  std::vector<int64_t> want = def;
  if (size.has_value()) {
    IntArrayRef os = *size;
    TORCH_CHECK(static_cast<int64_t>(os.size()) == nd || static_cast<int64_t>(os.size()) == nd + 2,
                name, ": output_size must have ", nd, " or ", nd + 2, " elements, got ", shape_str(os));
    for (int64_t i = 0; i < nd; ++i) {
      const int64_t v = os[os.size() - nd + i], ss = s.empty() ? k[i] : s[i];
      TORCH_CHECK(v > def[i] - ss && v < def[i] + ss, name, ": output_size ", shape_str(os),
                  " does not fit: spatial dim ", i, " must lie strictly between ", def[i] - ss,
                  " and ", def[i] + ss, " (the default size ", def[i], " ± stride)");
      want[i] = v;
    }
  }
  for (int64_t i = 0; i < nd; ++i) {
    TORCH_CHECK(want[i] > 0, name, ": output size ", shape_str(want), " is empty");
    g.dim[3 - nd + i].in = want[i];
    g.dim[3 - nd + i].out = x.size(r - nd + i);
  }
  return g;
}

template <int64_t ND>
Tensor max_unpool(const Tensor& x, const Tensor& indices, IntArrayRef k, IntArrayRef s, IntArrayRef p,
                  at::OptionalIntArrayRef size) {
  const std::string name = nd_op_name("max_unpool", ND);
  PoolGeometry g = unpool_geometry(name.c_str(), x, indices, ND, k, s, p, size);
  Tensor x5 = as_5d(x, ND, g);
  PoolGeometry gi = g;
  Tensor i5 = in_layout(as_5d(indices, ND, gi), g.channels_last);
  Tensor y5 = input_5d(g, x.options());
  cpu_pool_kernels().unpool_forward(x5, i5, y5, g, name.c_str());
  return output_view(y5, x, ND);
}

// ------------------------------------------------------------------- backward ops
// Geometry of a backward call from the input (self) and the output-side tensor.
PoolGeometry grad_geometry(const char* name, const Tensor& self, const Tensor& out_side, int64_t nd) {
  TORCH_CHECK(nd >= 1 && nd <= 3, name, ": spatial_dims must be 1, 2 or 3, got ", nd);
  TORCH_CHECK(out_side.dim() == self.dim(), name, ": grad_output has ", out_side.dim(),
              " dims but the input has ", self.dim());
  PoolGeometry g;
  const int64_t r = self.dim();
  g.N = r == nd + 2 ? self.size(0) : 1;
  g.C = self.size(r - nd - 1);
  for (int64_t i = 0; i < nd; ++i) {
    g.dim[3 - nd + i].in = self.size(r - nd + i);
    g.dim[3 - nd + i].out = out_side.size(r - nd + i);
  }
  return g;
}

Tensor pool_index_backward(const Tensor& grad_out, const Tensor& self, const Tensor& indices, int64_t nd) {
  PoolGeometry g = grad_geometry("pool_index_backward", self, grad_out, nd);
  TORCH_CHECK(indices.sizes() == grad_out.sizes(), "pool_index_backward: indices shape ",
              shape_str(indices.sizes()), " must equal grad_output shape ", shape_str(grad_out.sizes()));
  as_5d(self, nd, g);  // decides the layout of the gradient: the input's
  PoolGeometry tmp = g;
  Tensor go5 = in_layout(as_5d(grad_out, nd, tmp), g.channels_last);
  Tensor i5 = in_layout(as_5d(indices, nd, tmp), g.channels_last);
  Tensor gi5 = input_5d(g, grad_out.options(), /*zeroed=*/false);  // the kernel zeroes it
  cpu_pool_kernels().index_backward(go5, i5, gi5, g);
  return output_view(gi5, self, nd);
}

Tensor window_backward(const Tensor& grad_out, const Tensor& self, const Tensor& result, PoolParams pp,
                       int64_t nd) {
  Tensor x5 = as_5d(self, nd, pp.g);
  PoolGeometry tmp = pp.g;
  Tensor go5 = in_layout(as_5d(grad_out, nd, tmp), pp.g.channels_last);
  Tensor y5 = result.defined() ? in_layout(as_5d(result, nd, tmp), pp.g.channels_last) : Tensor();
  Tensor gi5 = input_5d(pp.g, grad_out.options(), /*zeroed=*/false);  // the kernel zeroes it
  cpu_pool_kernels().window_backward(go5, x5, y5, gi5, pp);
  return output_view(gi5, self, nd);
}

void check_grad_shape(const char* name, const Tensor& grad_out, const PoolGeometry& g, int64_t nd) {
  const int64_t r = grad_out.dim();
  for (int64_t i = 0; i < nd; ++i) {
    TORCH_CHECK(grad_out.size(r - nd + i) == g.dim[3 - nd + i].out, name, ": grad_output shape ",
                shape_str(grad_out.sizes()), " does not match the pooled size");
  }
}

Tensor avg_pool_backward(const Tensor& grad_out, const Tensor& self, IntArrayRef k, IntArrayRef s,
                         IntArrayRef p, bool ceil, bool cip, c10::optional<int64_t> div) {
  const int64_t nd = k.size();
  PoolParams pp = avg_params("avg_pool_backward", self, nd, k, s, p, ceil, cip, div);
  check_grad_shape("avg_pool_backward", grad_out, pp.g, nd);
  return window_backward(grad_out, self, Tensor(), pp, nd);
}

Tensor lp_pool_backward(const Tensor& grad_out, const Tensor& self, const Tensor& result, double norm,
                        IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
  const int64_t nd = k.size();
  PoolParams pp = lp_params("lp_pool_backward", self, nd, norm, k, s, p, ceil);
  check_grad_shape("lp_pool_backward", grad_out, pp.g, nd);
  return window_backward(grad_out, self, result, pp, nd);
}

Tensor adaptive_avg_pool_backward(const Tensor& grad_out, const Tensor& self, int64_t nd) {
  PoolParams pp;
  pp.g = grad_geometry("adaptive_avg_pool_backward", self, grad_out, nd);
  pp.g.adaptive = true;
  pp.op = Reduce::Avg;
  return window_backward(grad_out, self, Tensor(), pp, nd);
}

Tensor max_unpool_backward(const Tensor& grad_out, const Tensor& indices, int64_t nd) {
  // Here `in` is the unpooled side (grad_out) and `out` the pooled one (indices).
  PoolGeometry g = grad_geometry("max_unpool_backward", grad_out, indices, nd);
  PoolGeometry tmp = g;
  Tensor i5 = as_5d(indices, nd, g);
  Tensor go5 = in_layout(as_5d(grad_out, nd, tmp), g.channels_last);
  Tensor gi5 = new_output_5d(g, grad_out.options());
  cpu_pool_kernels().unpool_backward(go5, i5, gi5, g);
  return output_view(gi5, indices, nd);
}

template <int64_t ND>
void register_nd(torch::Library& m) {
  m.impl(nd_op_name("max_pool", ND).c_str(), TORCH_FN(max_pool<ND>));
  m.impl((nd_op_name("max_pool", ND) + "_with_indices").c_str(), TORCH_FN(max_pool_with_indices<ND>));
  m.impl(nd_op_name("min_pool", ND).c_str(), TORCH_FN(min_pool<ND>));
  m.impl((nd_op_name("min_pool", ND) + "_with_indices").c_str(), TORCH_FN(min_pool_with_indices<ND>));
  m.impl(nd_op_name("avg_pool", ND).c_str(), TORCH_FN(avg_pool<ND>));
  m.impl(nd_op_name("lp_pool", ND).c_str(), TORCH_FN(lp_pool<ND>));
  m.impl(nd_op_name("adaptive_avg_pool", ND).c_str(), TORCH_FN(adaptive_avg_pool<ND>));
  m.impl(nd_op_name("adaptive_max_pool", ND).c_str(), TORCH_FN(adaptive_max_pool<ND>));
  m.impl(nd_op_name("max_unpool", ND).c_str(), TORCH_FN(max_unpool<ND>));
}

}  // namespace

TORCH_LIBRARY_IMPL(fancy, CPU, m) {
  register_nd<1>(m);
  register_nd<2>(m);
  register_nd<3>(m);
  m.impl("global_avg_pool", TORCH_FN(global_avg_pool));
  m.impl("global_max_pool", TORCH_FN(global_max_pool));
  m.impl("pool_index_backward", TORCH_FN(pool_index_backward));
  m.impl("avg_pool_backward", TORCH_FN(avg_pool_backward));
  m.impl("lp_pool_backward", TORCH_FN(lp_pool_backward));
  m.impl("adaptive_avg_pool_backward", TORCH_FN(adaptive_avg_pool_backward));
  m.impl("max_unpool_backward", TORCH_FN(max_unpool_backward));
}

}  // namespace ops
}  // namespace fancy
