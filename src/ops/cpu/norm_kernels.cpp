// CPU loops of batch_norm_relu, compiled once per instruction set (FANCY_CPU_NS); the
// argument checks, the per-channel coefficients and the registration are in
// norm_dispatch.cpp.
//
// Sums: each block of rows (channels-last) or each (n, c) run (contiguous) is summed
// into its own float64 slot by whichever thread owns it, and the slots are added in
// block order, so the result does not depend on the thread count. The statistics sum
// x − x[0, c] (a per-channel shift), so E[(x − s)²] − E[x − s]² does not cancel.
#include "ops/cpu/norm_kernels.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <vector>

#ifndef FANCY_CPU_NS
#error "FANCY_CPU_NS must name the instruction-set namespace"
#endif

namespace fancy {
namespace ops {
namespace FANCY_CPU_NS {
namespace {

using L = ChannelLayout;

constexpr int64_t kBlockRows = 64;         // rows of a channels-last block summed into one slot
constexpr int64_t kGrainElements = 32768;  // elements per task of the element-wise passes

// float for float32 and bfloat16 data, double for float64.
template <typename T>
using acc_t = std::conditional_t<std::is_same<T, double>::value, double, float>;

template <typename A>
std::vector<A> cast(const double* v, int64_t n) {
  return std::vector<A>(v, v + n);
}

inline int64_t blocks_of(const L& l) {
  return l.inner == 1 ? (l.outer + kBlockRows - 1) / kBlockRows : l.outer * l.channels;
}

// Sums two per-channel quantities over every element: fill(b, s1, s2) adds block b's
// elements into its own slots s1, s2 (zeroed); the slots are then added in block order
// into out1, out2.
//   channels-last: block b = rows [b·64, b·64 + 64), a slot holds 2·C sums;
//   contiguous:    block b = the run (n, c) = (b / C, b % C), a slot holds 2 sums.
template <typename Fill>
void sum_blocks(const L& l, double* out1, double* out2, Fill fill) {
  const int64_t C = l.channels, blocks = blocks_of(l), width = l.inner == 1 ? C : 1;
  std::vector<double> slots(static_cast<size_t>(blocks * 2 * width), 0.0);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / (l.inner == 1 ? kBlockRows * C : l.inner));
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) fill(b, slots.data() + b * 2 * width, slots.data() + b * 2 * width + width);
  });
  std::fill(out1, out1 + C, 0.0);
  std::fill(out2, out2 + C, 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    const double* s = slots.data() + b * 2 * width;
    if (l.inner == 1) {
      for (int64_t c = 0; c < C; ++c) out1[c] += s[c], out2[c] += s[C + c];
    } else {
      out1[b % C] += s[0];
      out2[b % C] += s[1];
    }
  }
}

// Σ (x − shift) and Σ (x − shift)² of one contiguous run, in kLanes interleaved partial
// sums added at the end: a fixed order, and a loop body GCC vectorises (a plain
// reduction it may not reorder, and one with a select it keeps scalar).
constexpr int64_t kLanes = 16;

template <typename T>
void run_stats(const T* __restrict x, int64_t n, double shift, double* s1, double* s2) {
  double a1[kLanes] = {}, a2[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) {
      const double d = static_cast<double>(x[i + k]) - shift;
      a1[k] += d;
      a2[k] += d * d;
    }
  }
  for (int64_t k = 0; i < n; ++i, ++k) {
    const double d = static_cast<double>(x[i]) - shift;
    a1[k] += d;
    a2[k] += d * d;
  }
  double t1 = 0, t2 = 0;
  for (int64_t k = 0; k < kLanes; ++k) t1 += a1[k], t2 += a2[k];
  *s1 = t1;
  *s2 = t2;
}

template <typename T>
void stats(const T* x, const L& l, double* mean, double* var) {
  const int64_t C = l.channels, inner = l.inner;
  std::vector<double> shift(C);
  for (int64_t c = 0; c < C; ++c) shift[c] = static_cast<double>(x[c * inner]);
  const double* s = shift.data();
  sum_blocks(l, mean, var, [&](int64_t b, double* s1, double* s2) {
    if (inner == 1) {
      const int64_t r1 = std::min(l.outer, (b + 1) * kBlockRows);
      for (int64_t r = b * kBlockRows; r < r1; ++r) {
        const T* row = x + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const double d = static_cast<double>(row[c]) - s[c];
          s1[c] += d;
          s2[c] += d * d;
        }
      }
    } else {
      run_stats(x + b * inner, inner, s[b % C], s1, s2);
    }
  });
  const double n = static_cast<double>(l.per_channel());
  for (int64_t c = 0; c < C; ++c) {
    const double m = mean[c] / n;
    var[c] = std::max(0.0, var[c] / n - m * m);
    mean[c] = m + s[c];
  }
}

// Runs fn(first, count, c) over every stretch of elements that share one channel
// (channels-last: fn(row, C, -1) with c varying inside), in parallel.
template <typename Fn>
void for_each_stretch(const L& l, Fn fn) {
  if (l.inner == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, l.channels));
    at::parallel_for(0, l.outer, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) fn(r * l.channels, l.channels, int64_t{-1});
    });
  } else {
    const int64_t grain = std::max<int64_t>(1, kGrainElements / l.inner);
    at::parallel_for(0, l.outer * l.channels, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) fn(b * l.inner, l.inner, b % l.channels);
    });
  }
}

template <typename A>
inline A relu(A v) {
  return v < A(0) ? A(0) : v;  // NaN < 0 is false: NaN stays
}

template <typename T>
void affine_relu(const T* x, T* y, const L& l, const double* scale, const double* shift) {
  using A = acc_t<T>;
  const auto k = cast<A>(scale, l.channels), h = cast<A>(shift, l.channels);
  const A *kp = k.data(), *hp = h.data();
  for_each_stretch(l, [&](int64_t first, int64_t n, int64_t c) {
    const T* xi = x + first;
    T* yi = y + first;
    if (c < 0) {
      for (int64_t j = 0; j < n; ++j) yi[j] = T(relu(static_cast<A>(xi[j]) * kp[j] + hp[j]));
    } else {
      const A kc = kp[c], hc = hp[c];
      for (int64_t j = 0; j < n; ++j) yi[j] = T(relu(static_cast<A>(xi[j]) * kc + hc));
    }
  });
}

// g where the forward's output was positive (torch's threshold_backward: y <= 0 → 0).
// Both values are loaded before the select, so the loops vectorise (a blend, not a branch).
template <typename T, typename A>
inline A masked(T g, T y) {
  const A gv = static_cast<A>(g), yv = static_cast<A>(y);
  return yv <= A(0) ? A(0) : gv;
}

// The same for the backward's sums, Σ gz and Σ gz·(x − m).

template <typename T>
void run_grad_sums(const T* __restrict g, const T* __restrict y, const T* __restrict x, int64_t n, double m,
                   double* s1, double* s2) {
  double a1[kLanes] = {}, a2[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) {
      const double gz = masked<T, acc_t<T>>(g[i + k], y[i + k]);
      a1[k] += gz;
      a2[k] += gz * (static_cast<double>(x[i + k]) - m);
    }
  }
  for (int64_t k = 0; i < n; ++i, ++k) {
    const double gz = masked<T, acc_t<T>>(g[i], y[i]);
    a1[k] += gz;
    a2[k] += gz * (static_cast<double>(x[i]) - m);
  }
  double t1 = 0, t2 = 0;
  for (int64_t k = 0; k < kLanes; ++k) t1 += a1[k], t2 += a2[k];
  *s1 = t1;
  *s2 = t2;
}

template <typename T>
void relu_grad_sums(const T* g, const T* x, const T* y, const L& l, const double* mean, double* sum_g,
                    double* sum_gx) {
  const int64_t C = l.channels, inner = l.inner;
  sum_blocks(l, sum_g, sum_gx, [&](int64_t b, double* s1, double* s2) {
    if (inner == 1) {
      const int64_t r1 = std::min(l.outer, (b + 1) * kBlockRows);
      // restrict and the select in A: without them GCC keeps this loop scalar, with a branch.
      double* __restrict a1 = s1;
      double* __restrict a2 = s2;
      const double* __restrict mu = mean;
      for (int64_t r = b * kBlockRows; r < r1; ++r) {
        const T* __restrict gr = g + r * C;
        const T* __restrict yr = y + r * C;
        const T* __restrict xr = x + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const double gz = masked<T, acc_t<T>>(gr[c], yr[c]);
          a1[c] += gz;
          a2[c] += gz * (static_cast<double>(xr[c]) - mu[c]);
        }
      }
    } else {
      run_grad_sums(g + b * inner, y + b * inner, x + b * inner, inner, mean[b % C], s1, s2);
    }
  });
}

template <typename T>
void input_grad(const T* g, const T* x, const T* y, T* gx, const L& l, const double* a, const double* b,
                const double* d) {
  using A = acc_t<T>;
  const auto av = cast<A>(a, l.channels), bv = cast<A>(b, l.channels), dv = cast<A>(d, l.channels);
  const A *ap = av.data(), *bp = bv.data(), *dp = dv.data();
  for_each_stretch(l, [&](int64_t first, int64_t n, int64_t c) {
    const T *gi = g + first, *xi = x + first, *yi = y + first;
    T* o = gx + first;
    if (c < 0) {
      for (int64_t j = 0; j < n; ++j)
        o[j] = T(masked<T, A>(gi[j], yi[j]) * ap[j] + static_cast<A>(xi[j]) * bp[j] + dp[j]);
    } else {
      const A ac = ap[c], bc = bp[c], dc = dp[c];
      for (int64_t j = 0; j < n; ++j) o[j] = T(masked<T, A>(gi[j], yi[j]) * ac + static_cast<A>(xi[j]) * bc + dc);
    }
  });
}

// One entry per function: the dtype picks the instantiation.
#define FANCY_NORM_TYPES(st, CALL)                                       \
  switch (st) {                                                          \
    case c10::ScalarType::Float: { using T = float; CALL; break; }       \
    case c10::ScalarType::Double: { using T = double; CALL; break; }     \
    case c10::ScalarType::BFloat16: { using T = c10::BFloat16; CALL; break; } \
    default: TORCH_CHECK(false, "fancy::batch_norm_relu: no kernel for ", st); \
  }

void stats_any(c10::ScalarType st, const void* x, const L& l, double* mean, double* var) {
  FANCY_NORM_TYPES(st, stats(static_cast<const T*>(x), l, mean, var));
}
void affine_relu_any(c10::ScalarType st, const void* x, void* y, const L& l, const double* scale,
                     const double* shift) {
  FANCY_NORM_TYPES(st, affine_relu(static_cast<const T*>(x), static_cast<T*>(y), l, scale, shift));
}
void relu_grad_sums_any(c10::ScalarType st, const void* g, const void* x, const void* y, const L& l,
                        const double* mean, double* sum_g, double* sum_gx) {
  FANCY_NORM_TYPES(st, relu_grad_sums(static_cast<const T*>(g), static_cast<const T*>(x), static_cast<const T*>(y),
                                      l, mean, sum_g, sum_gx));
}
void input_grad_any(c10::ScalarType st, const void* g, const void* x, const void* y, void* gx, const L& l,
                    const double* a, const double* b, const double* d) {
  FANCY_NORM_TYPES(st, input_grad(static_cast<const T*>(g), static_cast<const T*>(x), static_cast<const T*>(y),
                                  static_cast<T*>(gx), l, a, b, d));
}
#undef FANCY_NORM_TYPES

}  // namespace

extern const NormKernels norm_kernels{stats_any, affine_relu_any, relu_grad_sums_any, input_grad_any};

}  // namespace FANCY_CPU_NS
}  // namespace ops
}  // namespace fancy
