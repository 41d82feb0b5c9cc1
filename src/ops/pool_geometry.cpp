#include "ops/pool_geometry.h"

#include "ops/large_alloc.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <sstream>

namespace fancy {
namespace ops {

std::string shape_str(at::IntArrayRef v) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << "]";
  return s.str();
}

static int64_t div_floor(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  int64_t out = div_floor(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

void check_input(const char* op, const at::Tensor& input, int64_t nd, bool allow_bfloat16) {
  const int64_t r = input.dim();
  static const char* names[] = {"", "(N, C, L)", "(N, C, H, W)", "(N, C, D, H, W)"};
  TORCH_CHECK(r == nd + 1 || r == nd + 2, op, ": input must be ", nd + 1, "-D (unbatched) or ",
              nd + 2, "-D ", names[nd], ", got a ", r, "-D input of shape ",
              shape_str(input.sizes()));
  auto st = input.scalar_type();
  bool ok = st == at::kFloat || st == at::kDouble || (allow_bfloat16 && st == at::kBFloat16);
  TORCH_CHECK(ok, op, ": input dtype ", st, " is not supported; expected float32, float64",
              allow_bfloat16 ? " or bfloat16" : "");
  for (int64_t i = r - nd - 1; i < r; ++i) {
    TORCH_CHECK(input.size(i) > 0, op, ": input dim ", i, " must be non-empty (only the batch ",
                "dim may be 0), got input of shape ", shape_str(input.sizes()));
  }
}

static void fill_batch(PoolGeometry& g, const at::Tensor& input, int64_t nd) {
  const int64_t r = input.dim();
  g.N = (r == nd + 2) ? input.size(0) : 1;
  g.C = input.size(r - nd - 1);
  for (int64_t i = 0; i < 3; ++i) g.dim[i] = WindowDim{};
  for (int64_t i = 0; i < nd; ++i) g.dim[3 - nd + i].in = input.size(r - nd + i);
}

static void check_len(const char* op, const char* arg, at::IntArrayRef v, int64_t nd) {
  TORCH_CHECK(static_cast<int64_t>(v.size()) == nd, op, ": ", arg, " must have ", nd,
              " element", nd > 1 ? "s" : "", ", got ", shape_str(v));
}

PoolGeometry window_geometry(const char* op, const at::Tensor& input, int64_t nd,
                             at::IntArrayRef kernel_size, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                             PaddingRule padding_rule) {
  check_input(op, input, nd);
  check_len(op, "kernel_size", kernel_size, nd);
  if (!stride.empty()) check_len(op, "stride", stride, nd);
  check_len(op, "padding", padding, nd);
  check_len(op, "dilation", dilation, nd);
  PoolGeometry g;
  fill_batch(g, input, nd);
  for (int64_t i = 0; i < nd; ++i) {
    const int64_t k = kernel_size[i];
    const int64_t s = stride.empty() ? k : stride[i];
    const int64_t p = padding[i], d = dilation[i];
    TORCH_CHECK(k > 0, op, ": kernel_size must be positive, got ", shape_str(kernel_size));
    TORCH_CHECK(s > 0, op, ": stride must be positive, got ", shape_str(stride));
    TORCH_CHECK(d > 0, op, ": dilation must be positive, got ", shape_str(dilation));
    TORCH_CHECK(p >= 0, op, ": padding must be non-negative, got ", shape_str(padding));
    const int64_t limit = padding_rule == PaddingRule::HalfKernel ? k / 2 : ((k - 1) * d + 1) / 2;
    TORCH_CHECK(p <= limit, op, ": padding (", p, ") must be at most half the ",
                padding_rule == PaddingRule::HalfKernel ? "kernel size (" : "effective kernel size (",
                padding_rule == PaddingRule::HalfKernel ? k : (k - 1) * d + 1, "), i.e. at most ",
                limit);
    WindowDim& w = g.dim[3 - nd + i];
    w.k = k; w.s = s; w.p = p; w.d = d;
    w.out = pooled_size(w.in, k, s, p, d, ceil_mode);
  }
  bool empty = false;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < nd; ++i) {
    out.push_back(g.dim[3 - nd + i].out);
    empty |= out.back() <= 0;
  }
  TORCH_CHECK(!empty, op, ": output size ", shape_str(out), " is empty for input of shape ",
              shape_str(input.sizes()), " with kernel_size ", shape_str(kernel_size),
              ", padding ", shape_str(padding), " and dilation ", shape_str(dilation),
              "; each spatial size plus twice the padding must be at least dilation·(kernel_size−1)+1");
  return g;
}

PoolGeometry adaptive_geometry(const char* op, const at::Tensor& input, int64_t nd,
                               at::IntArrayRef output_size) {
  check_input(op, input, nd);
  check_len(op, "output_size", output_size, nd);
  PoolGeometry g;
  fill_batch(g, input, nd);
  g.adaptive = true;
  for (int64_t i = 0; i < nd; ++i) {
    TORCH_CHECK(output_size[i] > 0, op, ": output_size must be positive, got ",
                shape_str(output_size));
    g.dim[3 - nd + i].out = output_size[i];
  }
  return g;
}

// True when x (N, C, *spatial) has C innermost and N and the spatial dims dense around it
// in order. Size-1 dims may have any stride: nothing steps along them.
static bool is_channels_last_any_rank(const at::Tensor& x) {
  if (x.size(1) <= 1 || x.stride(1) != 1) return false;
  int64_t expected = x.size(1);
  for (int64_t i = x.dim() - 1; i >= 2; --i) {
    if (x.size(i) != 1 && x.stride(i) != expected) return false;
    expected *= x.size(i);
  }
  return x.size(0) == 1 || x.stride(0) == expected;
}

void check_global_rank(const char* op, const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 3, "fancy::", op, ": input must be (N, C, *spatial) with at least one ",
              "spatial dim, got a ", x.dim(), "-D input of shape ", shape_str(x.sizes()));
}

std::vector<int64_t> global_output_shape(const at::Tensor& x, bool keepdim) {
  std::vector<int64_t> shape{x.size(0), x.size(1)};
  if (keepdim) shape.resize(x.dim(), 1);
  return shape;
}

at::Tensor global_rows(const char* op, const at::Tensor& x, PoolGeometry& g) {
  check_global_rank(op, x);
  const auto st = x.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kDouble || st == at::kBFloat16, "fancy::", op,
              ": input dtype ", st, " is not supported; expected float32, float64 or bfloat16");
  g = PoolGeometry{};
  g.N = x.size(0);
  g.C = x.size(1);
  g.adaptive = true;
  int64_t L = 1;
  for (int64_t i = 1; i < x.dim(); ++i) {
    TORCH_CHECK(x.size(i) > 0, "fancy::", op, ": input dim ", i, " must be non-empty (only the ",
                "batch dim may be 0), got input of shape ", shape_str(x.sizes()));
    if (i >= 2) L *= x.size(i);
  }
  g.dim[2].in = L;  // out = 1: D and H stay 1 → 1
  if (x.is_contiguous()) return x;
  g.channels_last = x.size(1) > 1 && x.stride(1) == 1;
  if (!g.channels_last) return x.contiguous();
  return is_channels_last_any_rank(x) ? x : x.movedim(1, -1).contiguous().movedim(-1, 1);
}

// True when the (N, C, D, H, W) view has C innermost and N, D, H, W dense around it.
static bool is_channels_last_5d(const at::Tensor& t5) {
  return t5.permute({0, 2, 3, 4, 1}).is_contiguous() && t5.size(1) > 1 && !t5.is_contiguous();
}

at::Tensor as_5d(const at::Tensor& t, int64_t nd, PoolGeometry& g) {
  at::Tensor v = t;
  if (t.dim() == nd + 1) v = v.unsqueeze(0);
  for (int64_t i = nd; i < 3; ++i) v = v.unsqueeze(2);
  if (v.is_contiguous()) {
    g.channels_last = false;
    return v;
  }
  if (is_channels_last_5d(v)) {
    g.channels_last = true;
    return v;
  }
  // Any other strides: copy into the layout the input suggests.
  const bool cl = (t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast)) ||
                  (t.dim() == 5 && t.is_contiguous(at::MemoryFormat::ChannelsLast3d)) ||
                  (t.dim() >= 3 && t.stride(t.dim() - nd - 1) == 1 && t.size(t.dim() - nd - 1) > 1);
  g.channels_last = cl;
  if (cl) return v.permute({0, 2, 3, 4, 1}).contiguous().permute({0, 4, 1, 2, 3});
  return v.contiguous();
}

at::Tensor new_output_5d(const PoolGeometry& g, const at::TensorOptions& options) {
  const auto& d = g.dim;
  if (g.channels_last) {
    return empty_large({g.N, d[0].out, d[1].out, d[2].out, g.C}, options).permute({0, 4, 1, 2, 3});
  }
  return empty_large({g.N, g.C, d[0].out, d[1].out, d[2].out}, options);
}

at::Tensor output_view(const at::Tensor& out5, const at::Tensor& like, int64_t nd) {
  at::Tensor v = out5;
  for (int64_t i = nd; i < 3; ++i) v = v.squeeze(2);
  if (like.dim() == nd + 1) v = v.squeeze(0);
  return v;
}

}  // namespace ops
}  // namespace fancy
