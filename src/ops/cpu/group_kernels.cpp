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
  at::parallel_for(0, L.size[0], std::max<int64_t>(1, kGrain / L.stride[0]), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      scale_slab<Add>(x + r * L.stride[0], y + r * L.stride[0], s + (r / L.block[0]) * L.gstride[0], L, 1);
  });
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
                                        scale_groups<true, float>,  scale_groups<true, double>};

}  // namespace FANCY_CPU_NS
}  // namespace ops
}  // namespace fancy
