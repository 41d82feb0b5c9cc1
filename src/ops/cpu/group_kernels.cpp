// CPU loops of the group ops, compiled once per instruction set (FANCY_CPU_NS); the
// argument checks and the registration are in group_dispatch.cpp.
#include "ops/cpu/group_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#ifndef FANCY_CPU_NS
#error "FANCY_CPU_NS must name the instruction-set namespace"
#endif

namespace fancy {
namespace ops {
namespace FANCY_CPU_NS {
namespace {

using Mode = GroupReduce;
using Layout = GroupLayout;

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
  } else if (n < 32) {
    // Short groups (3×3 kernels): a plain loop; the 16-lane set-up below costs more than
    // the sum.
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += term<M>(static_cast<double>(x[i]));
    return total;
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

// Groups that span dim 0 whole (channels, columns): one double per element of a row
// takes the elementwise terms of every row in turn (a vector loop over contiguous
// memory; threads own column ranges, so no partial results), then each group's cells of
// that row buffer are combined.
constexpr int64_t kMaxRowBuffer = int64_t{1} << 22;

template <Mode M, typename T>
void reduce_down_rows(const T* x, double* out, const Layout& L) {
  const int64_t rows = L.size[0], row = L.stride[0];
  std::vector<double> acc(static_cast<size_t>(row));
  at::parallel_for(0, row, std::max<int64_t>(256, kGrain / rows), [&](int64_t j0, int64_t j1) {
    double* a = acc.data();
    for (int64_t j = j0; j < j1; ++j) a[j] = term<M>(static_cast<double>(x[j]));
    for (int64_t r = 1; r < rows; ++r) {
      const T* xr = x + r * row;
      for (int64_t j = j0; j < j1; ++j) a[j] = combine<M>(a[j], term<M>(static_cast<double>(xr[j])));
    }
  });
  // The terms are already taken: sums fold by Sum, maxima by MaxAbs (of values >= 0).
  constexpr Mode Fold = M == Mode::MaxAbs ? Mode::MaxAbs : Mode::Sum;
  reduce_slab<Fold>(acc.data(), out, L, 1);
}

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
  if (L.size.size() > 1 && row <= kMaxRowBuffer) return reduce_down_rows<M>(x, out, L);
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

// y[i] = x[i] · scale[group(i)] (y may be x), or y[i] += … when Add, over the slab of
// dims d...
template <bool Add, typename T>
inline void put(T& y, T v) {
  if constexpr (Add) y += v; else y = v;
}

template <bool Add, typename T>
void scale_slab(const T* x, T* y, const T* s, const Layout& L, size_t d) {
  const int64_t S = L.size[d], B = L.block[d];
  if (d + 1 == L.size.size()) {
    if (B == 1) {
      for (int64_t i = 0; i < S; ++i) put<Add>(y[i], x[i] * s[i]);
      return;
    }
    for (int64_t i = 0; i < S; i += B) {
      const T f = s[i / B];
      const int64_t e = std::min(S, i + B);
      for (int64_t j = i; j < e; ++j) put<Add>(y[j], x[j] * f);
    }
    return;
  }
  for (int64_t i = 0; i < S; ++i)
    scale_slab<Add>(x + i * L.stride[d], y + i * L.stride[d], s + (i / B) * L.gstride[d], L, d + 1);
}

template <bool Add, typename T>
void scale_groups(const T* x, T* y, const T* s, const Layout& L) {
  if (L.size.size() == 1) {
    at::parallel_for(0, L.size[0], kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) put<Add>(y[i], x[i] * s[i / L.block[0]]);
    });
    return;
  }
  const int64_t row = L.stride[0];
  if (L.block[0] >= L.size[0] && row <= kMaxRowBuffer) {
    // Groups span dim 0 whole: every row has the same factors, so spread them over one
    // row once and run plain vector loops over the rows.
    std::vector<T> ones(static_cast<size_t>(row), T(1)), f(static_cast<size_t>(row));
    scale_slab<false>(ones.data(), f.data(), s, L, 1);
    at::parallel_for(0, L.size[0], std::max<int64_t>(1, kGrain / row), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * row;
        T* yr = y + r * row;
        for (int64_t j = 0; j < row; ++j) put<Add>(yr[j], xr[j] * f[j]);
      }
    });
    return;
  }
  at::parallel_for(0, L.size[0], std::max<int64_t>(1, kGrain / L.stride[0]), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      scale_slab<Add>(x + r * L.stride[0], y + r * L.stride[0], s + (r / L.block[0]) * L.gstride[0], L, 1);
  });
}

// Groups [g0, g1) of lasso_runs: grad += x · scale · c_g / ‖x_g‖, returns Σ c_g ‖x_g‖.
// R > 0 is the run length known at compile time (the last group may still be shorter).
template <int R, typename T>
double lasso_group_range(const T* x, T* grad, int64_t n, int64_t run, int64_t g0, int64_t g1, double scale,
                         bool size_weighted) {
  double p = 0;
  for (int64_t g = g0; g < g1; ++g) {
    const T* xg = x + g * run;
    T* gg = grad + g * run;
    const int64_t len = std::min(run, n - g * run);
    double ss = 0;
    if (R > 0 && len == R) {
      for (int k = 0; k < R; ++k) ss += static_cast<double>(xg[k]) * static_cast<double>(xg[k]);
    } else {
      ss = reduce_run<Mode::SumSq>(xg, len);
    }
    const double norm = std::sqrt(ss);
    const double weight = size_weighted ? std::sqrt(static_cast<double>(len)) : 1.0;
    p += weight * norm;
    if (norm == 0) continue;  // a zero group: the least-norm subgradient, 0
    const T f = static_cast<T>(scale * weight / norm);
    if (R > 0 && len == R) {
      for (int k = 0; k < R; ++k) gg[k] += xg[k] * f;
    } else {
      for (int64_t i = 0; i < len; ++i) gg[i] += xg[i] * f;
    }
  }
  return p;
}

// Group lasso's gradient over groups that are runs of `run` consecutive elements. Fixed
// chunks of groups (not thread ranges) carry the partial penalties, which are added in
// chunk order: the same penalty for any thread count.
template <typename T>
double lasso_runs(const T* x, T* grad, int64_t n, int64_t run, double scale, bool size_weighted) {
  const int64_t groups = (n + run - 1) / run;
  const int64_t per_chunk = std::max<int64_t>(1, kGrain / run);
  const int64_t chunks = (groups + per_chunk - 1) / per_chunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t g0 = c * per_chunk, g1 = std::min(groups, g0 + per_chunk);
      if (run == 1) {
        // One element per group (1×1 kernels): ‖x_g‖ = |x|, a vector loop over the chunk.
        const T* xc = x + g0;
        T* gc = grad + g0;
        const T s = static_cast<T>(scale);
        partial[c] = reduce_run<Mode::SumAbs>(xc, g1 - g0);
        for (int64_t i = 0; i < g1 - g0; ++i) {
          const T a = std::abs(xc[i]);
          gc[i] += a == 0 ? T(0) : xc[i] * (s / a);  // NaN stays NaN, as through autograd
        }
        continue;
      }
      switch (run) {  // straight-line code for the common kernel sizes
        case 4: partial[c] = lasso_group_range<4>(x, grad, n, run, g0, g1, scale, size_weighted); break;
        case 9: partial[c] = lasso_group_range<9>(x, grad, n, run, g0, g1, scale, size_weighted); break;
        case 25: partial[c] = lasso_group_range<25>(x, grad, n, run, g0, g1, scale, size_weighted); break;
        default: partial[c] = lasso_group_range<0>(x, grad, n, run, g0, g1, scale, size_weighted);
      }
    }
  });
  double total = 0;
  for (const double p : partial) total += p;
  return total;
}

template <typename T>
void reduce_any(const T* x, double* out, const Layout& L, Mode mode) {
  switch (mode) {
    case Mode::Sum: return reduce_groups<Mode::Sum>(x, out, L);
    case Mode::SumSq: return reduce_groups<Mode::SumSq>(x, out, L);
    case Mode::SumAbs: return reduce_groups<Mode::SumAbs>(x, out, L);
    case Mode::MaxAbs: return reduce_groups<Mode::MaxAbs>(x, out, L);
  }
}

}  // namespace

extern const GroupKernels group_kernels{reduce_any<float>,         reduce_any<double>,
                                        scale_groups<false, float>, scale_groups<false, double>,
                                        scale_groups<true, float>,  scale_groups<true, double>,
                                        lasso_runs<float>,          lasso_runs<double>};

}  // namespace FANCY_CPU_NS
}  // namespace ops
}  // namespace fancy
