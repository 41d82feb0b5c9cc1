// CPU kernels of the group ops (schemas in src/ops/group.cpp): per-group reductions
// (sum, L1, L2, max-abs norms) and per-group scaling, in one pass over the weight.
//
// The weight is read as its tile grid (ops/group_spec.h) with neighbouring dims merged
// where they are both whole-tile or both tile-1, so a conv weight's filters, channels
// and kernels become 2 or 3 flat dims and the inner loops run over contiguous memory.
// Work is split so that each group is summed in memory order by one thread: the result
// is the same for any thread count.
#include "ops/group_spec.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
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
namespace {

using at::Tensor;

// The weight as merged dims: size, tile, element stride and grid stride per dim.
struct Layout {
  std::vector<int64_t> size, block, stride, gstride;
  int64_t groups = 1;
};

Layout merge_dims(c10::IntArrayRef shape, c10::IntArrayRef block) {
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
  Layout L;
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

enum class Mode { Sum, SumSq, SumAbs, MaxAbs };

template <Mode M, typename T>
inline T term(T d) {
  if constexpr (M == Mode::Sum) return d;
  if constexpr (M == Mode::SumSq) return d * d;
  return std::abs(d);
}

// Reduction of n contiguous values in a fixed order (the same for any thread count);
// the max propagates NaN.
template <Mode M, typename T>
double reduce_run(const T* x, int64_t n) {
  if constexpr (M == Mode::MaxAbs) {
    double m = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = std::abs(static_cast<double>(x[i]));
      m = (v > m || std::isnan(v)) ? v : m;
    }
    return m;
  } else {
    // 16 independent partial sums in T (vector chains that hide the add latency and
    // need no conversion), flushed into a double every 512 values so float stays exact
    // to ~1e-7 relative however long the group.
    double total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 512) {
      const int64_t e = std::min(n, i0 + 512);
      T a[16] = {0};
      int64_t i = i0;
      for (; i + 16 <= e; i += 16)
        for (int j = 0; j < 16; ++j) a[j] += static_cast<T>(term<M>(x[i + j]));
      for (; i < e; ++i) a[i % 16] += static_cast<T>(term<M>(x[i]));
      for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; ++j) a[j] += a[j + w];
      total += static_cast<double>(a[0]);
    }
    return total;
  }
}

template <Mode M>
double combine(double a, double b) {
  if constexpr (M == Mode::MaxAbs) return (b > a || std::isnan(b)) ? b : a;
  return a + b;
}

// Accumulates the slab x[i_d, i_{d+1}, …] (dims d.. of the layout) into out.
template <Mode M, typename T>
void reduce_slab(const T* x, double* out, const Layout& L, size_t d) {
  const int64_t S = L.size[d], B = L.block[d];
  if (d + 1 == L.size.size()) {
    if (B == 1) {  // every element its own group along this dim
      for (int64_t i = 0; i < S; ++i) out[i] = combine<M>(out[i], term<M>(static_cast<double>(x[i])));
      return;
    }
    for (int64_t i = 0; i < S; i += B) out[i / B] = combine<M>(out[i / B], reduce_run<M>(x + i, std::min(B, S - i)));
    return;
  }
  for (int64_t i = 0; i < S; ++i) reduce_slab<M>(x + i * L.stride[d], out + (i / B) * L.gstride[d], L, d + 1);
}

// Rows [r0, r1) of dim 0 into out (out points at the groups of those rows' grid row).
template <Mode M, typename T>
void reduce_rows(const T* x, double* out, const Layout& L, int64_t r0, int64_t r1) {
  if (L.size.size() == 1) {
    // One dim: tiles of the row itself.
    const int64_t B = L.block[0];
    if (B == 1) {
      for (int64_t i = r0; i < r1; ++i) out[i] = combine<M>(out[i], term<M>(static_cast<double>(x[i])));
      return;
    }
    for (int64_t i = r0; i < r1;) {
      const int64_t end = std::min(r1, (i / B + 1) * B);
      out[i / B] = combine<M>(out[i / B], reduce_run<M>(x + i, end - i));
      i = end;
    }
    return;
  }
  for (int64_t r = r0; r < r1; ++r) reduce_slab<M>(x + r * L.stride[0], out + (r / L.block[0]) * L.gstride[0], L, 1);
}

constexpr int64_t kGrain = 1 << 15;  // elements per task, at least

// out[g] = reduction of group g. When dim 0 indexes groups, each task owns whole grid
// rows; otherwise fixed chunks of rows (independent of the thread count) are reduced
// into partial results that are then combined in chunk order.
template <Mode M, typename T>
void reduce_groups(const T* x, double* out, const Layout& L) {
  const int64_t S0 = L.size[0], B0 = L.block[0], G0 = (S0 + B0 - 1) / B0;
  const int64_t row = L.size.size() == 1 ? 1 : L.stride[0];
  std::fill(out, out + L.groups, 0.0);
  if (G0 > 1) {  // tasks own whole grid rows (whole tiles of a 1-D layout)
    at::parallel_for(0, G0, std::max<int64_t>(1, kGrain / (B0 * row)), [&](int64_t g0, int64_t g1) {
      reduce_rows<M>(x, out, L, g0 * B0, std::min(S0, g1 * B0));
    });
    return;
  }
  const int64_t rows_per_chunk = std::max<int64_t>(1, kGrain / row);
  const int64_t chunks = (S0 + rows_per_chunk - 1) / rows_per_chunk;
  // Partial results cost chunks × groups doubles: worth it only when that is small.
  if (chunks == 1 || chunks * L.groups > (int64_t{1} << 22)) return reduce_rows<M>(x, out, L, 0, S0);
  std::vector<double> partial(static_cast<size_t>(chunks * L.groups), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      reduce_rows<M>(x, partial.data() + c * L.groups, L, c * rows_per_chunk, std::min(S0, (c + 1) * rows_per_chunk));
  });
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t g = 0; g < L.groups; ++g) out[g] = combine<M>(out[g], partial[static_cast<size_t>(c * L.groups + g)]);
}

// y[i] = x[i] · scale[group(i)] over the slab of dims d.. (y may be x).
template <typename T>
void scale_slab(const T* x, T* y, const T* s, const Layout& L, size_t d) {
  const int64_t S = L.size[d], B = L.block[d];
  if (d + 1 == L.size.size()) {
    if (B == 1) {
      for (int64_t i = 0; i < S; ++i) y[i] = x[i] * s[i];
      return;
    }
    for (int64_t i = 0; i < S; i += B) {
      const T f = s[i / B];
      const int64_t e = std::min(S, i + B);
      for (int64_t j = i; j < e; ++j) y[j] = x[j] * f;
    }
    return;
  }
  for (int64_t i = 0; i < S; ++i)
    scale_slab(x + i * L.stride[d], y + i * L.stride[d], s + (i / B) * L.gstride[d], L, d + 1);
}

template <typename T>
void scale_groups(const T* x, T* y, const T* s, const Layout& L) {
  if (L.size.size() == 1) {
    at::parallel_for(0, L.size[0], kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) y[i] = x[i] * s[i / L.block[0]];
    });
    return;
  }
  at::parallel_for(0, L.size[0], std::max<int64_t>(1, kGrain / L.stride[0]), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      scale_slab(x + r * L.stride[0], y + r * L.stride[0], s + (r / L.block[0]) * L.gstride[0], L, 1);
  });
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
  const Layout L = merge_dims(x.sizes(), block);
  Tensor acc = at::empty({L.groups}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "group_reduce", [&] {
    const scalar_t* px = x.data_ptr<scalar_t>();
    double* po = acc.data_ptr<double>();
    switch (mode) {
      case Mode::Sum: return reduce_groups<Mode::Sum>(px, po, L);
      case Mode::SumSq: return reduce_groups<Mode::SumSq>(px, po, L);
      case Mode::SumAbs: return reduce_groups<Mode::SumAbs>(px, po, L);
      case Mode::MaxAbs: return reduce_groups<Mode::MaxAbs>(px, po, L);
    }
  });
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
  const Layout L = merge_dims(self.sizes(), block);
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "group_scale", [&] {
    if (self.numel() == 0) return;
    scale_groups(self.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), L);
  });
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

}  // namespace

TORCH_LIBRARY_IMPL(fancy, CPU, m) {
  m.impl("group_norms", TORCH_FN(group_norms));
  m.impl("group_sum", TORCH_FN(group_sum));
  m.impl("group_scale", TORCH_FN(group_scale));
  m.impl("group_scale_", TORCH_FN(group_scale_));
}

}  // namespace ops
}  // namespace fancy
