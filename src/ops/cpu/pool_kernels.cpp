// CPU kernels of the pooling family, compiled once per instruction set (FANCY_CPU_NS).
//
// Contiguous (NCDHW) inputs are processed one output row at a time, channels-last inputs
// one output position at a time with the innermost loop along C (docs/pooling.md has the
// paths). The scan order inside a window is always d, h, w, as in ATen, so ties keep the
// first element and NaN propagates exactly as PyTorch does.
#include "ops/cpu/pool_kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#ifndef FANCY_CPU_NS
#error "FANCY_CPU_NS must name the instruction-set namespace"
#endif

namespace fancy {
namespace ops {
namespace FANCY_CPU_NS {
namespace {

// Accumulate bfloat16 in float, float in float (as ATen), double in double.
template <typename T>
using acc_t = std::conditional_t<std::is_same<T, double>::value, double, float>;

// Half-open range of input positions a window covers along one dim, stepping by `step`.
struct Span {
  int64_t start, end, step;
};

inline Span window(const WindowDim& w, int64_t o, bool adaptive) {
  if (adaptive) return {(o * w.in) / w.out, ((o + 1) * w.in + w.out - 1) / w.out, 1};
  int64_t start = o * w.s - w.p;
  const int64_t end = std::min(start + (w.k - 1) * w.d + 1, w.in);
  while (start < 0) start += w.d;
  return {start, end, w.d};
}

// Every window's span along D, H and W, computed once per call: adaptive bounds take two
// 64-bit divisions each, which cost more than a small window's work when done per output.
struct WindowSpans {
  std::array<std::vector<Span>, 3> dim;
  explicit WindowSpans(const PoolGeometry& g) {
    for (int d = 0; d < 3; ++d) {
      dim[d].resize(g.dim[d].out);
      for (int64_t o = 0; o < g.dim[d].out; ++o) dim[d][o] = window(g.dim[d], o, g.adaptive);
    }
  }
};

// Prefetches the n bytes from p, a 64-byte line at a time.
inline void prefetch_lines(const char* p, int64_t n) {
  for (int64_t b = 0; b < n; b += 64) __builtin_prefetch(p + b);
}

// How many positions a span holds.
inline int64_t span_count(const Span& sp) {
  return sp.end > sp.start ? (sp.end - sp.start + sp.step - 1) / sp.step : 0;
}

// The outputs [lo, hi) along one dim whose whole window lies inside the input (the rest
// are clipped by its ends). Computed once per call: its two 64-bit divisions per output row
// had cost as much as the 3×3/3 max pooling of a 28-wide row.
struct Interior {
  int64_t lo, hi;
};
inline Interior interior(const WindowDim& w) {
  const int64_t last = w.in - 1 - (w.k - 1) * w.d + w.p;  // the last window start inside, + pad
  const int64_t lo = std::min((w.p + w.s - 1) / w.s, w.out);
  const int64_t hi = std::max(lo, std::min(last >= 0 ? last / w.s + 1 : 0, w.out));
  return {lo, hi};
}

// Average-pooling divisor along one dim (ATen's rule: with count_include_pad the window
// is clipped to the padded input, otherwise to the input).
inline int64_t divisor_1d(const WindowDim& w, int64_t o, bool adaptive, bool include_pad) {
  if (adaptive) {
    const Span sp = window(w, o, true);
    return sp.end - sp.start;
  }
  const int64_t start = o * w.s - w.p;
  if (include_pad) return std::min(start + w.k, w.in + w.p) - start;
  return std::min(start + w.k, w.in) - std::max<int64_t>(start, 0);
}

// How each reduction folds a value in and what it starts from.
enum class Fold { Max, Min, Sum, SumAbs, SumSq, SumPow, MaxAbs };

inline Fold fold_of(const PoolParams& p) {
  switch (p.op) {
    case Reduce::Max: return Fold::Max;
    case Reduce::Min: return Fold::Min;
    case Reduce::Avg: return Fold::Sum;
    case Reduce::Lp:
      if (std::isinf(p.norm_type)) return Fold::MaxAbs;
      if (p.norm_type == 1.0) return Fold::SumAbs;
      if (p.norm_type == 2.0) return Fold::SumSq;
      return Fold::SumPow;
  }
  return Fold::Sum;
}

// The fold that combines values already transformed by F (|x|, x², |x|^p).
constexpr Fold combine_of(Fold f) {
  return f == Fold::Max || f == Fold::MaxAbs ? Fold::Max : f == Fold::Min ? Fold::Min : Fold::Sum;
}

template <typename A>
inline A fold_init(Fold f) {
  if (f == Fold::Max || f == Fold::MaxAbs) return -std::numeric_limits<A>::infinity();
  if (f == Fold::Min) return std::numeric_limits<A>::infinity();
  return A(0);
}

// Row update: acc[o] ⊕= row[o*S + off] for o in [lo, hi). S = 0 means runtime stride s.
// Written as plain selects so the compiler vectorises them.
template <Fold F, int S, bool Idx, typename T, typename A>
inline void fold_row(const T* __restrict row, A* __restrict acc, int64_t* __restrict idx,
                     int64_t lo, int64_t hi, int64_t s_rt, int64_t off, int64_t base, A p) {
  const int64_t s = S ? S : s_rt;
  for (int64_t o = lo; o < hi; ++o) {
    const A v = static_cast<A>(row[o * s + off]);
    if (F == Fold::Max || F == Fold::Min || F == Fold::MaxAbs) {
      const A u = F == Fold::MaxAbs ? std::abs(v) : v;
      const bool take = (F == Fold::Min ? (u < acc[o]) : (u > acc[o])) || (u != u);
      acc[o] = take ? u : acc[o];
      if (Idx) idx[o] = take ? base + o * s + off : idx[o];
    } else if (F == Fold::Sum) {
      acc[o] += v;
    } else if (F == Fold::SumAbs) {
      acc[o] += std::abs(v);
    } else if (F == Fold::SumSq) {
      acc[o] += v * v;
    } else {
      acc[o] += std::pow(std::abs(v), p);
    }
  }
}

// F's transform of one value (|x|, x², |x|^p) and F's combine, for the fused paths.
template <Fold F, typename A>
inline A transform(A v, A p) {
  if (F == Fold::MaxAbs || F == Fold::SumAbs) return std::abs(v);
  if (F == Fold::SumSq) return v * v;
  if (F == Fold::SumPow) return std::pow(std::abs(v), p);
  return v;
}
template <Fold F, typename A>
inline A combine(A a, A v) {
  if (F == Fold::Max || F == Fold::MaxAbs) return (v > a || v != v) ? v : a;
  if (F == Fold::Min) return (v < a || v != v) ? v : a;
  return a + v;
}

// "v replaces a" for max-like and min folds: strictly better, or NaN (NaN propagates and,
// as in ATen, a later NaN takes the index).
template <Fold F, typename A>
inline bool takes(A v, A a) {
  return (F == Fold::Min ? v < a : v > a) || v != v;
}

// The extreme a of a span whose vector fold ignored NaN, made exact: the span's first NaN
// if it has one (odd: its probe saw a NaN or ±inf), and for a = 0 the span's first zero —
// −0 and +0 compare equal, so the lanes may hold either, and ATen's scan keeps the first.
// (A plane of zeros — a dead ReLU channel — finds it at once.)
template <Fold F, typename T, typename A>
A rescan_extreme(const T* __restrict v, int64_t n, A p, A a, bool odd) {
  if (odd) {
    for (int64_t k = 0; k < n; ++k) {
      const A x = static_cast<A>(v[k]);
      if (x != x) return x;
    }
  }
  if (a == A(0)) {
    for (int64_t k = 0; k < n; ++k) {
      const A x = transform<F>(static_cast<A>(v[k]), p);
      if (x == A(0)) return x;
    }
  }
  return a;
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
// reduce_span's lanes for float max and min in explicit vectors: (the lanes' extreme,
// any NaN or ±inf). The portable loop zeroed its 64 lane values with a string store and
// combined them in scalar code, which cost as much as folding a 784-value plane (a global
// max of 28×28 maps ran at 0.8× PyTorch).
template <Fold F>
inline float extreme_lanes_avx2(const float* __restrict v, int64_t n, bool& odd) {
  const __m256 init = _mm256_set1_ps(fold_init<float>(F)), zero = _mm256_setzero_ps();
  auto fold = [](__m256 a, __m256 x) { return F == Fold::Max ? _mm256_max_ps(x, a) : _mm256_min_ps(x, a); };
  // Four probes, one per vector: with two, each took two dependent FMAs (8 cycles) per 32
  // values, a chain that set the speed of cache-resident planes (a stand-alone copy over
  // 128 planes of 784 values: 7.2 µs with two, 5.4 µs with four).
  __m256 r0 = init, r1 = init, r2 = init, r3 = init, pr0 = zero, pr1 = zero, pr2 = zero, pr3 = zero;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + 8), x2 = _mm256_loadu_ps(v + i + 16),
                 x3 = _mm256_loadu_ps(v + i + 24);
    r0 = fold(r0, x0);
    r1 = fold(r1, x1);
    r2 = fold(r2, x2);
    r3 = fold(r3, x3);
    pr0 = _mm256_fmadd_ps(x0, zero, pr0);  // x·0: NaN exactly for NaN and ±inf
    pr1 = _mm256_fmadd_ps(x1, zero, pr1);
    pr2 = _mm256_fmadd_ps(x2, zero, pr2);
    pr3 = _mm256_fmadd_ps(x3, zero, pr3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(v + i);
    r0 = fold(r0, x);
    pr0 = _mm256_fmadd_ps(x, zero, pr0);
  }
  if (i < n) {  // the last 1–7 values; the other lanes read as 0 (probe) and the identity (fold)
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 x = _mm256_maskload_ps(v + i, live);
    r1 = fold(r1, _mm256_blendv_ps(init, x, _mm256_castsi256_ps(live)));
    pr1 = _mm256_fmadd_ps(x, zero, pr1);
  }
  __m256 r = fold(fold(r0, r1), fold(r2, r3));
  r = fold(r, _mm256_permute2f128_ps(r, r, 1));
  r = fold(r, _mm256_permute_ps(r, 0x4E));
  r = fold(r, _mm256_permute_ps(r, 0xB1));
  const __m256 pr = _mm256_add_ps(_mm256_add_ps(pr0, pr1), _mm256_add_ps(pr2, pr3));
  odd = _mm256_movemask_ps(_mm256_cmp_ps(pr, pr, _CMP_UNORD_Q)) != 0;
  return _mm256_cvtss_f32(r);
}

// reduce_span's 32 lanes for float sums (average, L1, L2) in explicit vectors, with the
// same lane of every value, the same masked remainder and the same pairwise combination,
// so the result is the portable loop's. That loop's lane zeroing and scalar combination
// had left a global average of 28×28 maps at 0.8–0.9× PyTorch's mean.
template <Fold F>
inline float sum_lanes_avx2(const float* __restrict v, int64_t n) {
  auto add = [](__m256 a, __m256 x) {
    if (F == Fold::SumSq) return _mm256_fmadd_ps(x, x, a);
    if (F == Fold::SumAbs) return _mm256_add_ps(a, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x));
    return _mm256_add_ps(a, x);
  };
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) a[k] = add(a[k], _mm256_loadu_ps(v + i + 8 * k));
  }
  // The last 0–31 values into the first lanes; the others add 0, which leaves them as they
  // are (a lane that starts at +0 never holds −0).
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int k = 0; k < 4 && i + 8 * k < n; ++k) {
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n - i - 8 * k)), iota);
    a[k] = add(a[k], _mm256_maskload_ps(v + i + 8 * k, live));
  }
  __m256 r = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}
#endif

// Fold of a long contiguous span into one value, with 32 independent lanes so the
// reduction runs at memory speed instead of at the latency of one add or max. Max and
// min ignore NaN in the vector loop and add x·0 alongside, which turns NaN only when an
// element is NaN or ±inf; in that rare case the span is rescanned for a NaN.
template <Fold F, typename T, typename A>
A reduce_span(const T* __restrict v, int64_t n, A p) {
  constexpr Fold C = combine_of(F);
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value && std::is_same<A, float>::value && (F == Fold::Max || F == Fold::Min)) {
    bool odd = false;
    const A a = extreme_lanes_avx2<F>(v, n, odd);
    return rescan_extreme<F>(v, n, p, a, odd);
  }
  if constexpr (std::is_same<T, float>::value && std::is_same<A, float>::value &&
                (F == Fold::Sum || F == Fold::SumAbs || F == Fold::SumSq)) {
    return sum_lanes_avx2<F>(v, n);
  }
#endif
  constexpr int L = 32;
  A lane[L], probe[L];
  for (int j = 0; j < L; ++j) {
    lane[j] = fold_init<A>(C);
    probe[j] = A(0);
  }
  // Lanes [0, m) take v[i0 .. i0 + m).
  auto fold_lanes = [&](int64_t i0, int64_t m) {
    for (int j = 0; j < m; ++j) {
      const A x = transform<F>(static_cast<A>(v[i0 + j]), p);
      if (C == Fold::Sum) {
        lane[j] += x;
      } else {
        lane[j] = C == Fold::Max ? (x > lane[j] ? x : lane[j]) : (x < lane[j] ? x : lane[j]);
        probe[j] += x * A(0);
      }
    }
  };
  int64_t i = 0;
  for (; i + L <= n; i += L) fold_lanes(i, L);
  // The remainder into the first lanes too (masked vectors, not a scalar loop: a 784-long
  // global pool has 16 left over per row).
  fold_lanes(i, n - i);
  // Lanes combined pairwise (log2 L dependent steps instead of L).
  for (int w = L / 2; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) {
      lane[j] = combine<C>(lane[j], lane[j + w]);
      probe[j] += probe[j + w];
    }
  }
  if (C == Fold::Sum) return lane[0];
  return rescan_extreme<F>(v, n, p, lane[0], probe[0] != probe[0]);
}

// acc[o] = fold of src[o*S − p + kw], kw < K, for interior outputs [lo, hi): one pass,
// the window unrolled, no accumulator read. Tr applies F's transform to src.
template <Fold F, bool Tr, int S, int K, typename T, typename A>
void fold_window_interior(const T* __restrict src, A* __restrict acc, int64_t lo, int64_t hi,
                          int64_t pad, A p) {
  constexpr Fold C = combine_of(F);
  for (int64_t o = lo; o < hi; ++o) {
    const T* t = src + o * S - pad;
    A a = static_cast<A>(t[0]);
    if (Tr) a = transform<F>(a, p);
    for (int kw = 1; kw < K; ++kw) {
      A v = static_cast<A>(t[kw]);
      if (Tr) v = transform<F>(v, p);
      a = combine<C>(a, v);
    }
    acc[o] = a;
  }
}

// Folds one input row (length W) into the output-row accumulator for regular windows.
// Outputs whose whole window lies inside [0, W) (wi = interior(w)) take the vector path.
template <Fold F, bool Idx, typename T, typename A>
void fold_input_row(const T* row, A* acc, int64_t* idx, const WindowDim& w, Interior wi, int64_t base, A p) {
  const int64_t lo = wi.lo, hi = wi.hi;
  for (int64_t kw = 0; kw < w.k; ++kw) {
    const int64_t off = kw * w.d - w.p;
    if (w.s == 1) fold_row<F, 1, Idx>(row, acc, idx, lo, hi, 1, off, base, p);
    else if (w.s == 2) fold_row<F, 2, Idx>(row, acc, idx, lo, hi, 2, off, base, p);
    else fold_row<F, 0, Idx>(row, acc, idx, lo, hi, w.s, off, base, p);
  }
  // Border outputs: clip each window, same scan order.
  auto border = [&](int64_t o) {
    const Span sp = window(w, o, false);
    for (int64_t i = sp.start; i < sp.end; i += sp.step) {
      fold_row<F, 1, Idx>(row, acc + o, idx ? idx + o : nullptr, 0, 1, 1, i, base, p);
    }
  };
  for (int64_t o = 0; o < lo; ++o) border(o);
  for (int64_t o = hi; o < w.out; ++o) border(o);
}

// Stride-2 windows of K taps: the row is split once into its even and odd elements, so
// every tap becomes a stride-1 read (src[2o + j] is even[o + j/2] or odd[o + (j−1)/2])
// instead of a strided one the compiler would gather. `scratch` holds W + 2 values.
template <Fold F, bool Tr, int K, typename T, typename A>
void fold_stride2_deinterleaved(const T* __restrict src, A* __restrict acc, int64_t lo, int64_t hi,
                                const WindowDim& w, A p, A* __restrict scratch) {
  constexpr Fold C = combine_of(F);
  const int64_t half = (w.in + 1) / 2;
  A* ev = scratch;
  A* od = scratch + half + 1;
  for (int64_t j = 0; j < w.in / 2; ++j) {
    ev[j] = Tr ? transform<F>(static_cast<A>(src[2 * j]), p) : static_cast<A>(src[2 * j]);
    od[j] = Tr ? transform<F>(static_cast<A>(src[2 * j + 1]), p) : static_cast<A>(src[2 * j + 1]);
  }
  if (w.in % 2) ev[w.in / 2] = Tr ? transform<F>(static_cast<A>(src[w.in - 1]), p) : static_cast<A>(src[w.in - 1]);
  const A* tap[K];
  for (int j = 0; j < K; ++j) {
    const int64_t off = j - w.p;  // src index 2o + off
    tap[j] = (off % 2 == 0) ? ev + off / 2 : od + (off - 1) / 2;
  }
  for (int64_t o = lo; o < hi; ++o) {
    A a = tap[0][o];
    for (int j = 1; j < K; ++j) a = combine<C>(a, tap[j][o]);
    acc[o] = a;
  }
}

// Strides up to which the sliding fold beats K strided taps per output: below 8 with
// 8-lane vectors; in the portable build's 4-lane compare-and-select folds 4×4/4 measured
// even with the strided taps and 5×5/5 1.11× their time (64×32×28×28).
#if defined(__AVX2__)
constexpr int64_t kSlidingStrideLimit = 8;
#else
constexpr int64_t kSlidingStrideLimit = 4;
#endif

// acc[o] = src[o·S − pad] ⊕ src[o·S − pad + d] ⊕ … (K taps) for the interior outputs
// [lo, hi), C being Max, Min (NaN-exact, as combine) or Sum (from +0, as fold_row): first
// every window start j the outputs use, m[j] = the fold of the K taps from j, in vector
// blocks of 8 starts, then acc[o] = m[o·S − pad] (m is acc itself when S = 1). Below
// kSlidingStrideLimit that is fewer operations than K scalar taps per output: 3×3/3,
// 4×4/4 and 5×5/5 max pooling on 28×28 maps had run at 16–26 % of the read rate in
// strided scalar folds, and 5×5/1 at 3 %. `scratch` holds (hi − 1 − lo)·S + 1 values,
// and acc w.out + 7.
template <Fold C, typename T, typename A>
void fold_interior_sliding(const T* __restrict src, A* __restrict acc, int64_t lo, int64_t hi, const WindowDim& w,
                           A* __restrict scratch) {
  static_assert(C == Fold::Max || C == Fold::Min || C == Fold::Sum, "a combine");
  const int64_t n = (hi - 1 - lo) * w.s + 1;  // window starts from j0 = lo·S − pad
  const T* s = src + lo * w.s - w.p;
#if defined(__AVX2__)
  if constexpr (std::is_same<T, float>::value && std::is_same<A, float>::value) {
    float* __restrict m = w.s == 1 && n >= 8 ? acc + lo : scratch;
    int64_t j = 0;
    auto block = [&](int64_t b) {
      const float* p = s + b;
      __m256 a = _mm256_loadu_ps(p);
      if (C == Fold::Sum) a = _mm256_add_ps(_mm256_setzero_ps(), a);
      for (int64_t k = 1; k < w.k; ++k) {
        const __m256 v = _mm256_loadu_ps(p + k * w.d);
        if (C == Fold::Sum) {
          a = _mm256_add_ps(a, v);
        } else {  // combine: max_ps(v, a) keeps a on ties and NaN; a NaN v replaces it
          const __m256 e = C == Fold::Max ? _mm256_max_ps(v, a) : _mm256_min_ps(v, a);
          a = _mm256_blendv_ps(e, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
      }
      _mm256_storeu_ps(m + b, a);
    };
    for (; j + 8 <= n; j += 8) block(j);
    if (j < n && n >= 8) {  // the last block overlaps the one before: same values again
      block(n - 8);
      j = n;
    }
    for (; j < n; ++j) {
      float a = s[j];
      if (C == Fold::Sum) a = 0.0f + a;
      for (int64_t k = 1; k < w.k; ++k) a = combine<C>(a, s[j + k * w.d]);
      m[j] = a;
    }
    if (m == scratch) {
      // The pick in masked 8-lane gathers and full stores (acc has 7 values to spare past
      // w.out; the caller's border outputs come after): acc written in scalar stores had
      // stalled the vector loads that read it next (no store-to-load forwarding), 10–15 %
      // of 3×3/3 pooling on 28×28 maps.
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256i at = _mm256_mullo_epi32(lane, _mm256_set1_epi32(static_cast<int32_t>(w.s)));
      for (int64_t o = lo; o < hi; o += 8) {
        const __m256i left = _mm256_set1_epi32(static_cast<int32_t>(hi - o));
        const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(left, lane));
        _mm256_storeu_ps(acc + o, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), m + (o - lo) * w.s, at, live, 4));
      }
    }
    return;
  }
#endif
  // Other types and builds: a pass over the starts per tap, which the compiler vectorises
  // (a loop over the taps inside one over the starts stayed scalar: 2–3× slower).
  A* __restrict m = w.s == 1 ? acc + lo : scratch;
  for (int64_t i = 0; i < n; ++i) m[i] = C == Fold::Sum ? A(0) + static_cast<A>(s[i]) : static_cast<A>(s[i]);
  for (int64_t k = 1; k < w.k; ++k) {
    const T* __restrict sk = s + k * w.d;
    for (int64_t i = 0; i < n; ++i) m[i] = combine<C>(m[i], static_cast<A>(sk[i]));
  }
  if (w.s != 1) {
    for (int64_t o = lo; o < hi; ++o) acc[o] = m[(o - lo) * w.s];
  }
}

// The whole fold of one (already vertically folded, or single) row into acc, which it
// overwrites: the common windows (k ≤ 3, stride 1 or 2, no dilation) take one fused pass,
// other windows of stride < 8 a sliding fold (max, min, sums). wi = interior(w);
// scratch holds w.in + 4 values, acc w.out + 7 (fold_interior_sliding).
template <Fold F, bool Tr, typename T, typename A>
void fold_row_horizontal(const T* row, A* acc, const WindowDim& w, Interior wi, A p, A* scratch) {
  const int64_t lo = wi.lo, hi = wi.hi;
  constexpr Fold Fr = Tr ? F : combine_of(F);
  if (w.d == 1 && w.k >= 64) {  // long windows (e.g. a global pool): one reduction each
    for (int64_t o = 0; o < w.out; ++o) {
      const Span sp = window(w, o, false);
      acc[o] = sp.start < sp.end ? reduce_span<Fr>(row + sp.start, sp.end - sp.start, p) : fold_init<A>(Fr);
    }
    return;
  }
  const bool fused = w.d == 1 && w.k <= 3 && w.s <= 2;
  // Fr == combine_of(Fr): no transform left to apply (max, min, average).
  const bool sliding = !fused && w.s < kSlidingStrideLimit && Fr == combine_of(Fr);
  if (lo == hi || !(fused || sliding)) {
    std::fill(acc, acc + w.out, fold_init<A>(Fr));
    fold_input_row<Fr, false>(row, acc, nullptr, w, wi, 0, p);
    return;
  }
#define FANCY_FUSED(S, K) fold_window_interior<F, Tr, S, K>(row, acc, lo, hi, w.p, p)
  if (sliding) {
    if constexpr (Fr == combine_of(Fr)) fold_interior_sliding<Fr>(row, acc, lo, hi, w, scratch);
  } else if (w.s == 1) {
    if (w.k == 1) FANCY_FUSED(1, 1); else if (w.k == 2) FANCY_FUSED(1, 2); else FANCY_FUSED(1, 3);
  } else if (w.k == 3) {
    fold_stride2_deinterleaved<F, Tr, 3>(row, acc, lo, hi, w, p, scratch);
  } else {
    if (w.k == 1) FANCY_FUSED(2, 1); else if (w.k == 2) FANCY_FUSED(2, 2); else FANCY_FUSED(2, 3);
  }
#undef FANCY_FUSED
  // Border outputs: the window clipped, in one loop (a fold_row call per element had
  // taken twice the sliding fold's time on 5×5/1 windows).
  auto border = [&](int64_t o) {
    constexpr Fold C = combine_of(Fr);
    const Span sp = window(w, o, false);
    A a = fold_init<A>(Fr);
    for (int64_t i = sp.start; i < sp.end; i += sp.step) a = combine<C>(a, transform<Fr>(static_cast<A>(row[i]), p));
    acc[o] = a;
  };
  for (int64_t o = 0; o < lo; ++o) border(o);
  for (int64_t o = hi; o < w.out; ++o) border(o);
}

// t[i] = max (or min) over the rows of rows[r][i] with the plain vector max, which drops
// NaN; returns whether some element was NaN, so that the caller redoes the fold
// NaN-exactly (half the instructions of the NaN-propagating select). In AVX2 and AVX-512
// builds float rows of 16 or more are folded 16 columns at a time over all the rows in
// registers and stored once, the last partial block overlapping the one before (an element
// folded twice changes neither t nor the NaN test), and NaN is an OR of unordered
// compares. Until session 30 every row went through t; until session 31 the NaN test was
// a sum of x·0 into a 16-float array on the stack: a chain of dependent adds (4 cycles a
// row) and then store-to-load stalls summing it, a third of 5×5/1 pooling's time on 28×28
// maps. The same block fold in plain loops was left scalar by GCC.
template <Fold F, typename T, typename A>
bool fold_rows_extreme_probed(const T* const* rows, int64_t n_rows, A* __restrict t, int64_t n) {
  constexpr int L = 16;  // the portable path's explicit lanes: a float sum only vectorises so
#if defined(__AVX2__)
  if constexpr (std::is_same<T, float>::value && std::is_same<A, float>::value) {
    if (n >= L) {  // max_ps(a, x) is (a > x ? a : x), NaN included
      __m256 nan = _mm256_setzero_ps();
      auto block = [&](int64_t i) {
        __m256 a0 = _mm256_set1_ps(fold_init<float>(F)), a1 = a0;
        for (int64_t r = 0; r < n_rows; ++r) {
          const __m256 x0 = _mm256_loadu_ps(rows[r] + i), x1 = _mm256_loadu_ps(rows[r] + i + 8);
          a0 = F == Fold::Min ? _mm256_min_ps(a0, x0) : _mm256_max_ps(a0, x0);
          a1 = F == Fold::Min ? _mm256_min_ps(a1, x1) : _mm256_max_ps(a1, x1);
          nan = _mm256_or_ps(nan, _mm256_cmp_ps(x0, x1, _CMP_UNORD_Q));
        }
        _mm256_storeu_ps(t + i, a0);
        _mm256_storeu_ps(t + i + 8, a1);
      };
      int64_t i = 0;
      for (; i + L <= n; i += L) block(i);
      if (i < n) block(n - L);
      return !_mm256_testz_ps(nan, nan);
    }
  }
#endif
  // Other types and builds: row after row through t, which the compiler vectorises; the
  // NaN test sums x·0 (NaN for NaN and ±inf) in lanes.
  for (int64_t i = 0; i < n; ++i) t[i] = fold_init<A>(F);
  A probe = A(0);
  for (int64_t r = 0; r < n_rows; ++r) {
    const T* __restrict row = rows[r];
    A lane[L] = {}, tail = A(0);
    int64_t i = 0;
    for (; i + L <= n; i += L) {
      for (int j = 0; j < L; ++j) {
        const A v = static_cast<A>(row[i + j]);
        const A a = t[i + j];
        t[i + j] = F == Fold::Min ? (a < v ? a : v) : (a > v ? a : v);
        lane[j] += v * A(0);
      }
    }
    for (; i < n; ++i) {
      const A v = static_cast<A>(row[i]);
      t[i] = F == Fold::Min ? (t[i] < v ? t[i] : v) : (t[i] > v ? t[i] : v);
      tail += v * A(0);
    }
    for (int j = 0; j < L; ++j) tail += lane[j];
    probe += tail;
  }
  return probe != probe;
}

// Folds one input row into the accumulator for adaptive windows (long windows when the
// output is small, e.g. global pooling); indices take adaptive_extreme_and_index instead.
template <Fold F, typename T, typename A>
void fold_input_row_adaptive(const T* row, A* acc, const std::vector<Span>& spans, A p) {
  constexpr Fold C = combine_of(F);
  for (size_t o = 0; o < spans.size(); ++o) {
    const Span sp = spans[o];
    const int64_t n = sp.end - sp.start;
    if (n >= 64) {
      acc[o] = combine<C>(acc[o], reduce_span<F>(row + sp.start, n, p));
    } else {
      // In a local: acc may alias row (both float), so acc[o] itself would be stored and
      // reloaded per element, a chain that had made this loop a fifth of adaptive average
      // 7×7 pooling on 28×28 maps.
      A a = acc[o];
      for (int64_t i = sp.start; i < sp.end; ++i) a = combine<C>(a, transform<F>(static_cast<A>(row[i]), p));
      acc[o] = a;
    }
  }
}

// Max or min with indices over wide or adaptive windows, in two steps. The window's rows
// are folded column by column into (t, tr): each column's extreme and the ordinal of its
// row in the window (32-bit, so values and ordinals fill the same vector lanes). Then
// each output picks among its window's columns. ATen scans d, h, w and keeps the first
// extreme, i.e. the smallest flat index among equal values; a NaN always wins and the
// last one (largest index) is kept. Both steps apply that rule, so the result is ATen's.
template <Fold F, typename T, typename A>
void fold_row_with_ordinal(const T* __restrict row, A* __restrict t, int32_t* __restrict tr, int64_t n,
                           int32_t k) {
  for (int64_t i = 0; i < n; ++i) {
    const A v = static_cast<A>(row[i]);
    const bool take = takes<F>(v, t[i]);
    t[i] = take ? v : t[i];
    tr[i] = take ? k : tr[i];
  }
}

template <Fold F, typename T, typename A>
void fold_columns_with_row(const T* const* rows, int64_t n_rows, int64_t w_in, A* __restrict t,
                           int32_t* __restrict tr) {
  for (int64_t i = 0; i < w_in; ++i) {
    t[i] = static_cast<A>(rows[0][i]);
    tr[i] = 0;
  }
  for (int64_t k = 1; k < n_rows; ++k) fold_row_with_ordinal<F>(rows[k], t, tr, w_in, static_cast<int32_t>(k));
}

// The pick, written once as a comparison of (value, position) and once as a maximum of
// 64-bit keys that encode the same order (float only), which needs no branches: high
// word = the value's bits mapped to an order-preserving unsigned integer (−0 as +0, min
// reversed, NaN above everything), low word = the (row ordinal, column) rank, inverted
// except for NaN, so equal values prefer the earlier position and NaNs the later one.
template <Fold F, typename A>
void pick_columns(const A* t, const int32_t* tr, const int64_t* row_base, const std::vector<Span>& wspan,
                  A* acc, int64_t* idx) {
  for (size_t ow = 0; ow < wspan.size(); ++ow) {
    const Span sw = wspan[ow];
    A best = fold_init<A>(F);
    int64_t bi = -1;
    if (sw.start < sw.end) {
      best = t[sw.start];
      bi = row_base[tr[sw.start]] + sw.start;
    }
    for (int64_t c = sw.start + sw.step; c < sw.end; c += sw.step) {
      const A v = t[c];
      const int64_t vi = row_base[tr[c]] + c;
      const bool take = best != best ? (v != v && vi > bi) : (takes<F>(v, best) || (v == best && vi < bi));
      best = take ? v : best;
      bi = take ? vi : bi;
    }
    acc[ow] = best;
    idx[ow] = bi;
  }
}

template <Fold F>
void pick_columns_by_key(const float* t, const int32_t* tr, const int64_t* row_base,
                         const std::vector<Span>& wspan, int64_t w_in, uint64_t* __restrict key, float* acc,
                         int64_t* idx) {
  for (int64_t c = 0; c < w_in; ++c) {
    uint32_t u;
    std::memcpy(&u, &t[c], sizeof u);
    u = u == 0x80000000u ? 0u : u;
    const uint32_t ord = u ^ (static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u);
    const bool nan = t[c] != t[c];
    const uint32_t hi = nan ? 0xFFFFFFFFu : (F == Fold::Min ? ~ord : ord);
    const uint32_t rank = (static_cast<uint32_t>(tr[c]) << 16) | static_cast<uint32_t>(c);
    key[c] = (static_cast<uint64_t>(hi) << 32) | (nan ? rank : ~rank);
  }
  for (size_t ow = 0; ow < wspan.size(); ++ow) {
    const Span sw = wspan[ow];
    uint64_t best = 0;
    if (sw.step == 1) {  // a plain reduction the compiler vectorises (long adaptive windows)
      for (int64_t c = sw.start; c < sw.end; ++c) best = std::max(best, key[c]);
    } else {
      for (int64_t c = sw.start; c < sw.end; c += sw.step) best = std::max(best, key[c]);
    }
    if (best == 0) {  // an empty window
      acc[ow] = fold_init<float>(F);
      idx[ow] = -1;
      continue;
    }
    const uint32_t lo = static_cast<uint32_t>(best);
    const uint32_t rank = (best >> 32) == 0xFFFFFFFFu ? lo : ~lo;
    const int64_t c = rank & 0xFFFFu;
    acc[ow] = t[c];
    idx[ow] = row_base[rank >> 16] + c;
  }
}

template <typename A>
inline A lp_finish(A sum_over_div_times_k, double norm_type) {
  if (norm_type == 1.0) return sum_over_div_times_k;
  if (norm_type == 2.0) return std::sqrt(sum_over_div_times_k);
  return std::pow(sum_over_div_times_k, A(1.0 / norm_type));
}

// Lp's mean of |x|^p times the kernel volume, ATen's sum / div · K. Where the divisor is
// the volume (every window inside the padded input) that is the sum itself, up to the
// rounding of the divide and the multiply. Skipping them leaves L2 pooling its square
// root alone on the unit the three share (L2 3×3/2 on 112×112 maps: from 1.17× to
// 1.14–1.15× the time of average pooling over the same taps).
template <typename A>
inline A lp_scaled_sum(A sum, A div, A kvol) {
  return div == kvol ? sum : sum / div * kvol;
}

template <typename A>
inline A finish(Fold f, A acc, int64_t div, int64_t K, double norm_type) {
  switch (f) {
    case Fold::Max: case Fold::Min: case Fold::MaxAbs: return acc;
    case Fold::Sum: return div == 0 ? A(0) : acc / A(div);
    default: return div == 0 ? A(0) : lp_finish(lp_scaled_sum(acc, A(div), A(K)), norm_type);
  }
}

// Divisors of average and Lp pooling, per dim, computed once per call: the divisor of
// output (od, oh, ow) is the product, or 0 when a window holds no input element.
class DivisorTable {
 public:
  explicit DivisorTable(const PoolParams& p) {
    const bool pad = p.op == Reduce::Lp || p.count_include_pad;
    for (int i = 0; i < 3; ++i) {
      const WindowDim& w = p.g.dim[i];
      f_[i].resize(w.out);
      for (int64_t o = 0; o < w.out; ++o) {
        const Span sp = window(w, o, p.g.adaptive);
        f_[i][o] = sp.start >= sp.end ? 0 : divisor_1d(w, o, p.g.adaptive, pad);
      }
    }
    if (p.op == Reduce::Avg) override_ = p.divisor_override;
  }
  int64_t operator()(int64_t od, int64_t oh, int64_t ow) const {
    const int64_t n = f_[0][od] * f_[1][oh] * f_[2][ow];
    return (n != 0 && override_ > 0) ? override_ : n;
  }
  // The same in parts, for a row of windows none of which is empty: the override if
  // there is one (else 0), or rows(od, oh) · cols()[ow].
  int64_t override_divisor() const { return override_; }
  int64_t rows(int64_t od, int64_t oh) const { return f_[0][od] * f_[1][oh]; }
  const int64_t* cols() const { return f_[2].data(); }

 private:
  std::array<std::vector<int64_t>, 3> f_;
  int64_t override_ = 0;
};

inline int64_t kernel_volume(const PoolGeometry& g) {
  return g.dim[0].k * g.dim[1].k * g.dim[2].k;
}

// Finishing of average / Lp (or nothing), the same arithmetic as finish().
template <Fold F, typename A>
inline A finish_fused(A a, A div, A kvol, A inv_p) {
  if (F == Fold::Sum) return a / div;
  if (F == Fold::SumAbs) return lp_scaled_sum(a, div, kvol);
  if (F == Fold::SumSq) return std::sqrt(lp_scaled_sum(a, div, kvol));
  if (F == Fold::SumPow) return std::pow(lp_scaled_sum(a, div, kvol), inv_p);
  return a;
}

#if defined(__AVX2__)
// The three taps of 8 stride-2 windows starting at p[0], p[2], ..., p[14] (they read
// p[0..16]) split by in-lane shuffles: tap j of window i is p[2i + j]. The lanes come
// out in the order 0 1 4 5 | 2 3 6 7; unshuffle8 restores it.
inline void taps3_stride2(const float* p, __m256& t0, __m256& t1, __m256& t2) {
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  const __m256 c = _mm256_loadu_ps(p + 1), d = _mm256_loadu_ps(p + 9);
  t0 = _mm256_shuffle_ps(a, b, 0x88);
  t1 = _mm256_shuffle_ps(a, b, 0xDD);
  t2 = _mm256_shuffle_ps(c, d, 0xDD);
}
inline __m256 unshuffle8(__m256 v) { return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8)); }

// combine<F> on 8 lanes (F: Max or Min): v replaces a when strictly better or NaN.
// max_ps(v, a) returns a on ties (signed zeros included) and when either is NaN, so
// only a NaN v needs the blend.
template <Fold F>
inline __m256 combine8(__m256 a, __m256 v) {
  const __m256 m = F == Fold::Max ? _mm256_max_ps(v, a) : _mm256_min_ps(v, a);
  return _mm256_blendv_ps(m, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

// One position's 8 lanes folded into (r, ri) for max or min: with indices, v replaces the
// value and its position pv when takes<F> (strictly better, or NaN), else combine8.
template <Fold F, bool Idx>
inline void fold8(__m256& r, __m256i& ri, __m256 v, __m256 pv) {
  if constexpr (Idx) {
    const __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, r, F == Fold::Max ? _CMP_GT_OQ : _CMP_LT_OQ),
                                  _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_ps(r, v, t);
    ri = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(ri), pv, t));
  } else {
    r = combine8<F>(r, v);
  }
}

// fold8 with indices for inputs without NaN (the caller probes for them, see
// cl_extremes_probed): the value takes max_ps, and the position is taken where x is
// strictly better than the value before. The compare is off the value's chain, which is
// then one max a position instead of fold8's compare, OR and blend; channels-last max 4×4/4
// with indices of 64×32×28×28 (AVX2 build, one thread) took 0.74–0.89 of the time.
template <Fold F>
inline void fold8_blind(__m256& r, __m256i& ri, __m256 x, __m256i pv) {
  const __m256 better = _mm256_cmp_ps(x, r, F == Fold::Max ? _CMP_GT_OQ : _CMP_LT_OQ);
  r = F == Fold::Max ? _mm256_max_ps(x, r) : _mm256_min_ps(x, r);
  ri = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(ri), _mm256_castsi256_ps(pv), better));
}

// 8 int32 positions stored as int64.
inline void store_positions8(int64_t* out, __m256i ri) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(ri)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(ri, 1)));
}
// store_positions8 of the lanes where `live` is all ones; the others are not written.
inline void store_positions8(int64_t* out, __m256i ri, __m256i live) {
  auto half = [](__m256i v, int h) {
    return _mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v));
  };
  for (int h = 0; h < 2; ++h) {
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(out + 4 * h), half(live, h), half(ri, h));
  }
}

// Runs step(o) over [lo, hi) N outputs at a time and returns the first output left to the
// caller's scalar loop. The last 1 to N − 1 outputs of a range of N or more get one more
// step ending at hi, which rewrites a few outputs with the same values (an output does not
// depend on which step computes it): on 14- and 56-output rows the scalar loop there
// had cost as much as all the vector steps.
template <int N, class Step>
int64_t steps(int64_t lo, int64_t hi, Step step) {
  int64_t o = lo;
  for (; o + N <= hi; o += N) step(o);
  if (o < hi && hi - lo >= N) {
    step(hi - N);
    o = hi;
  }
  return o;
}

// The K taps (K = 2 or 3) of 8 stride-2 windows starting at p[0], p[2], ..., p[14], in
// taps3_stride2's lane order.
template <int K>
inline void taps_stride2(const float* p, __m256 (&t)[K]) {
  static_assert(K == 2 || K == 3, "2 or 3 taps");
  if constexpr (K == 3) {
    taps3_stride2(p, t[0], t[1], t[2]);
  } else {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    t[0] = _mm256_shuffle_ps(a, b, 0x88);
    t[1] = _mm256_shuffle_ps(a, b, 0xDD);
  }
}

// The vector operations of the stride-2 steps (stride2_avx2 and the 3×3/2 planes' row
// fold), on 8 lanes (AVX2) and on 16 (AVX-512). Taps come out of in-lane shuffles in a
// permuted window order, which `store` undoes.
struct Lanes8 {
  using V = __m256;
  static constexpr int n = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V max(V v, V a) { return _mm256_max_ps(v, a); }
  static V min(V v, V a) { return _mm256_min_ps(v, a); }
  template <Fold F>
  static V combine(V a, V v) { return combine8<F>(a, v); }
  using M = __m256;  // lanes where a NaN was met
  static M no_nan() { return _mm256_setzero_ps(); }
  static M nan_lanes(M m, V a, V b) { return _mm256_or_ps(m, _mm256_cmp_ps(a, b, _CMP_UNORD_Q)); }
  static bool none(M m) { return _mm256_testz_ps(m, m); }
  template <int K>
  static void taps(const float* p, V (&t)[K]) { taps_stride2<K>(p, t); }
  static void store(float* y, V v) { _mm256_storeu_ps(y, unshuffle8(v)); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store_in_order(float* y, V v) { _mm256_storeu_ps(y, v); }
#if defined(__FMA__)
  static V probe(V pr, V x) { return _mm256_fmadd_ps(x, _mm256_setzero_ps(), pr); }  // x·0: NaN for NaN, ±inf
#endif
  static bool any_nan(V v) { return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0; }
  using I = __m256i;  // int32 positions
  static I set1_i(int32_t v) { return _mm256_set1_epi32(v); }
  static I load_i(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store_i(int32_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  template <Fold F>
  static void fold_blind(V& r, I& ri, V x, I pv) { fold8_blind<F>(r, ri, x, pv); }
  static void store_positions(int64_t* out, I ri) { store_positions8(out, ri); }
};
#if defined(__AVX512F__)
struct Lanes16 {
  using V = __m512;
  static constexpr int n = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V sqrt(V a) { return _mm512_sqrt_ps(a); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V max(V v, V a) { return _mm512_max_ps(v, a); }
  static V min(V v, V a) { return _mm512_min_ps(v, a); }
  template <Fold F>
  static V combine(V a, V v) {  // as combine8
    const V m = F == Fold::Max ? _mm512_max_ps(v, a) : _mm512_min_ps(v, a);
    return _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
  }
  using M = __mmask16;
  static M no_nan() { return 0; }
  static M nan_lanes(M m, V a, V b) { return m | _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q); }
  static bool none(M m) { return m == 0; }
  // Tap j of window i is p[2i + j] (reads p[0..32]); the in-lane shuffles leave the
  // windows in the order 0 1 8 9 | 2 3 10 11 | 4 5 12 13 | 6 7 14 15.
  template <int K>
  static void taps(const float* p, V (&t)[K]) {
    static_assert(K == 2 || K == 3, "2 or 3 taps");
    const V a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    t[0] = _mm512_shuffle_ps(a, b, 0x88);
    t[1] = _mm512_shuffle_ps(a, b, 0xDD);
    if constexpr (K == 3) t[2] = _mm512_shuffle_ps(_mm512_loadu_ps(p + 1), _mm512_loadu_ps(p + 17), 0xDD);
  }
  static void store(float* y, V v) {
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    _mm512_storeu_ps(y, _mm512_castpd_ps(_mm512_permutexvar_pd(order, _mm512_castps_pd(v))));
  }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store_in_order(float* y, V v) { _mm512_storeu_ps(y, v); }
  static V probe(V pr, V x) { return _mm512_fmadd_ps(x, _mm512_setzero_ps(), pr); }
  static bool any_nan(V v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0; }
  using I = __m512i;
  static I set1_i(int32_t v) { return _mm512_set1_epi32(v); }
  static I load_i(const int32_t* p) { return _mm512_loadu_si512(p); }
  static void store_i(int32_t* p, I v) { _mm512_storeu_si512(p, v); }
  template <Fold F>
  static void fold_blind(V& r, I& ri, V x, I pv) {  // as fold8_blind
    const __mmask16 better = _mm512_cmp_ps_mask(x, r, F == Fold::Max ? _CMP_GT_OQ : _CMP_LT_OQ);
    r = F == Fold::Max ? _mm512_max_ps(x, r) : _mm512_min_ps(x, r);
    ri = _mm512_mask_mov_epi32(ri, better, pv);
  }
  static void store_positions(int64_t* out, I ri) {
    _mm512_storeu_si512(out, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(ri)));
    _mm512_storeu_si512(out + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(ri, 1)));
  }
};
#endif

// stride2_avx2 in lanes of L.
template <class L, Fold F, int K, int R>
int64_t stride2_lanes(const float* const (&rp)[R], float* __restrict y, int64_t lo, int64_t hi, int64_t pad,
                      float div, float kvol) {
  using V = typename L::V;
  constexpr bool sum = F == Fold::Sum || F == Fold::SumSq || F == Fold::SumAbs;
  static_assert(sum || F == Fold::Max || F == Fold::Min, "a sum or an extreme");
  if constexpr (!sum) {
    // Max and min fold with plain max_ps / min_ps (one instruction instead of combine's
    // three; vblendvps alone is three on Intel's cores), which keep the earlier value on
    // ties as ATen does but drop a NaN tap. Any NaN among the row's inputs shows in `nan`,
    // and then the row is folded again below with combine. The taps t[0] and t[1] of a
    // step cover its inputs p[0..2n − 1]; t[K − 1] adds p[2n].
    typename L::M nan = L::no_nan();
    const int64_t end = steps<L::n>(lo, hi, [&](int64_t o) {
      V a = L::zero();
      for (int r = 0; r < R; ++r) {
        V t[K];
        L::template taps<K>(rp[r] + 2 * o - pad, t);
        nan = L::nan_lanes(nan, t[0], t[K - 1]);
        if (K == 3) nan = L::nan_lanes(nan, t[1], t[1]);
        for (int k = 0; k < K; ++k) {
          if (r == 0 && k == 0) a = t[k];
          else a = F == Fold::Max ? L::max(t[k], a) : L::min(t[k], a);
        }
      }
      L::store(y + o, a);
    });
    if (L::none(nan)) return end;
  }
  const V vdiv = L::set1(div), vk = L::set1(kvol);
  const bool scaled = div != kvol;  // lp_scaled_sum
  return steps<L::n>(lo, hi, [&](int64_t o) {
    V a = L::zero();
    for (int r = 0; r < R; ++r) {
      V t[K];
      L::template taps<K>(rp[r] + 2 * o - pad, t);
      for (int k = 0; k < K; ++k) {
        const V v = F == Fold::SumSq ? L::mul(t[k], t[k]) : F == Fold::SumAbs ? L::abs(t[k]) : t[k];
        if (r == 0 && k == 0 && !sum) a = v;  // sums start from +0, as in direct_interior
        else a = sum ? L::add(a, v) : L::template combine<F>(a, v);
      }
    }
    if constexpr (F == Fold::Sum) a = L::div(a, vdiv);
    if constexpr (F == Fold::SumAbs || F == Fold::SumSq) {
      if (scaled) a = L::mul(L::div(a, vdiv), vk);
      if (F == Fold::SumSq) a = L::sqrt(a);
    }
    L::store(y + o, a);
  });
}

// direct_interior over R × K windows of stride 2 in float (K = 2 or 3), 8 outputs at a
// time (16 with AVX-512 on ranges of 16 or more), in the same scan order and operations:
// sums (average, L1, L2) or extremes (max, min without indices). Returns the first output
// left to the caller's loop.
template <Fold F, int K, int R>
int64_t stride2_avx2(const float* const (&rp)[R], float* __restrict y, int64_t lo, int64_t hi, int64_t pad,
                     float div, float kvol) {
#if defined(__AVX512F__)
  if (hi - lo >= 16) return stride2_lanes<Lanes16, F, K, R>(rp, y, lo, hi, pad, div, kvol);
#endif
  return stride2_lanes<Lanes8, F, K, R>(rp, y, lo, hi, pad, div, kvol);
}
// stride2_avx2 for max and min with indices: each value lane has its int32 position
// beside it (fold8), widened to int64 when stored. rel[r][k] + 2·o is the position of
// tap (r, k) of output o; the caller checks that positions fit int32.
template <Fold F, int K, int R>
int64_t stride2_indices_avx2(const float* const (&rp)[R], const int64_t (&rel)[R][K], float* __restrict y,
                             int64_t* __restrict yi, int64_t lo, int64_t hi, int64_t pad) {
  // 2i for the windows i that taps_stride2 leaves in each lane: 0 1 4 5 | 2 3 6 7.
  const __m256i lane = _mm256_setr_epi32(0, 2, 8, 10, 4, 6, 12, 14);
  return steps<8>(lo, hi, [&](int64_t o) {
    __m256 a = _mm256_setzero_ps();
    __m256i ai = _mm256_setzero_si256();
    for (int r = 0; r < R; ++r) {
      __m256 t[K];
      taps_stride2<K>(rp[r] + 2 * o - pad, t);
      for (int k = 0; k < K; ++k) {
        const __m256i pos = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(rel[r][k] + 2 * o)), lane);
        if (r == 0 && k == 0) {
          a = t[k];
          ai = pos;
        } else {
          fold8<F, true>(a, ai, t[k], _mm256_castsi256_ps(pos));
        }
      }
    }
    _mm256_storeu_ps(y + o, unshuffle8(a));
    store_positions8(yi + o, _mm256_castps_si256(unshuffle8(_mm256_castsi256_ps(ai))));
  });
}

// Max or min with indices over one whole output row of R × K windows at stride s ≥ 3
// (see direct_row_for), 8 outputs at a time: tap (r, k) of outputs o..o+7 is one gather,
// lane i reading column (o + i)·s − pad + k of row r; a row of fewer than 8 outputs takes
// one masked step, and longer ones end with a step overlapping the one before (steps).
// Taps in the padding are left out of the gather and read as −inf (max) or +inf (min),
// which never take; each lane starts from that and the position of its window's first
// element, ATen's own start, so edge windows need no loop of their own. The gathers bound
// it: two chains of folds, or a masked tail step instead of an overlapping one, measured
// the same.
template <Fold F, int K, int R>
void strided_indices_avx2(const float* const* rows, const int64_t* row_base, int64_t w_in, float* __restrict y,
                          int64_t* __restrict yi, int64_t w_out, int64_t s, int64_t pad) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i offset = _mm256_mullo_epi32(lane, _mm256_set1_epi32(static_cast<int32_t>(s)));
  const __m256 never = _mm256_set1_ps(F == Fold::Max ? -std::numeric_limits<float>::infinity()
                                                     : std::numeric_limits<float>::infinity());
  const __m256i before = _mm256_set1_epi32(-1), end = _mm256_set1_epi32(static_cast<int32_t>(w_in));
  auto step = [&](int64_t o, __m256i live) {  // live: all ones in the lanes to compute
    const __m256i start = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(o * s - pad)), offset);
    __m256 a = never;
    __m256i ai = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(row_base[0])),
                                  _mm256_max_epi32(start, _mm256_setzero_si256()));
    for (int r = 0; r < R; ++r) {
      const __m256i base = _mm256_set1_epi32(static_cast<int32_t>(row_base[r]));
      for (int k = 0; k < K; ++k) {
        const __m256i col = _mm256_add_epi32(start, _mm256_set1_epi32(k));
        const __m256i in = _mm256_and_si256(
            live, _mm256_and_si256(_mm256_cmpgt_epi32(col, before), _mm256_cmpgt_epi32(end, col)));
        const __m256 t = _mm256_mask_i32gather_ps(never, rows[r], col, _mm256_castsi256_ps(in), 4);
        fold8<F, true>(a, ai, t, _mm256_castsi256_ps(_mm256_add_epi32(base, col)));
      }
    }
    _mm256_maskstore_ps(y + o, live, a);
    store_positions8(yi + o, ai, live);
  };
  const int64_t o = steps<8>(0, w_out, [&](int64_t o) { step(o, _mm256_set1_epi32(-1)); });
  if (o < w_out) step(o, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(w_out - o)), lane));
}
#endif

// Interior outputs [lo, hi) of one output row, window = R input rows × K columns (stride
// S, or s_rt when S = 0; no dilation along W): one pass, every window element read
// straight from the input, the output (and index) written once. Scan order (row, then column) is ATen's.
// Always inlined into direct_row: as calls of their own, it and direct_edges had made
// pooling on 28×28 maps 5–15 % slower (2×2 max with indices, whose rows have no edges:
// 13–15 %).
template <Fold F, bool Idx, int S, int K, int R, typename T>
__attribute__((always_inline)) inline void direct_interior(const T* const* rows, const int64_t* row_base,
                     T* __restrict y, int64_t* __restrict yi, int64_t lo, int64_t hi, int64_t s_rt, int64_t pad,
                     acc_t<T> p, acc_t<T> div, acc_t<T> kvol, acc_t<T> inv_p) {
  using A = acc_t<T>;
  constexpr Fold C = combine_of(F);
  const T* rp[R];
  int64_t rel[R][K];  // flat input position of each window element, less o·S
  for (int r = 0; r < R; ++r) {
    rp[r] = rows[r];
    for (int kw = 0; kw < K; ++kw) rel[r][kw] = row_base[r] + kw - pad;
  }
  int64_t o = lo;
#if defined(__AVX2__)
  constexpr bool sum = F == Fold::Sum || F == Fold::SumSq || F == Fold::SumAbs;
  constexpr bool vector = sum || F == Fold::Max || F == Fold::Min;
  if constexpr (std::is_same<T, float>::value && !Idx && S == 2 && (K == 2 || K == 3) && vector) {
    o = stride2_avx2<F, K, R>(rp, y, lo, hi, pad, div, kvol);
  }
  // Max and min with indices: in AVX-512 builds 3 taps only. Kernel A/B against the
  // scalar loop below (session 32): 3 taps 0.54–0.86 from 28- to 224-wide maps; 2 taps
  // 0.57–0.63 on 28-wide maps but 1.05–1.12 on 40- to 224-wide ones, where GCC's AVX-512
  // code for the loop is the faster.
#if defined(__AVX512F__)
  constexpr bool stride2_indices = K == 3;
#else
  constexpr bool stride2_indices = K == 2 || K == 3;
#endif
  if constexpr (std::is_same<T, float>::value && Idx && S == 2 && stride2_indices &&
                (F == Fold::Max || F == Fold::Min)) {
    int64_t last = 0;  // the largest position a vector step reads
    for (int r = 0; r < R; ++r) last = std::max(last, rel[r][K - 1] + 2 * hi);
    if (last < int64_t(std::numeric_limits<int32_t>::max())) o = stride2_indices_avx2<F, K, R>(rp, rel, y, yi, lo, hi, pad);
  }
#endif
  const int64_t st = S ? S : s_rt;
  for (; o < hi; ++o) {
    const int64_t at = o * st - pad;
    A a = transform<F>(static_cast<A>(rp[0][at]), p);
    if (C == Fold::Sum) a = A(0) + a;  // sums start from +0 as ATen's do: a window of −0 sums to +0
    int64_t ai = rel[0][0];
    for (int r = 0; r < R; ++r) {
      for (int kw = 0; kw < K; ++kw) {
        if (r == 0 && kw == 0) continue;
        const A v = transform<F>(static_cast<A>(rp[r][at + kw]), p);
        if (Idx) {
          const bool t = takes<F>(v, a);
          a = t ? v : a;
          ai = t ? rel[r][kw] : ai;
        } else {
          a = combine<C>(a, v);
        }
      }
    }
    y[o] = static_cast<T>(finish_fused<F>(a, div, kvol, inv_p));
    if (Idx) yi[o] = ai + o * st;
  }
}

// What direct_row needs beyond the row itself; the same for every row of a call.
template <typename T>
struct DirectCall {
  int64_t lo, hi;  // the interior outputs, whose windows lie inside the row
  int64_t w_out, w_in, s, pad;
  acc_t<T> p, kvol, inv_p;
  const int64_t* col_div;  // DivisorTable::cols()
  int64_t div_override;    // DivisorTable::override_divisor()
  // DivisorTable's divisor of output o in a row of factor row_div (no window is empty).
  int64_t divisor(int64_t row_div, int64_t o) const { return div_override > 0 ? div_override : row_div * col_div[o]; }
};

// Outputs [o0, o1) of a row whose windows the row's ends clip (none is empty): ATen's scan
// order and arithmetic (sums start from 0 as ATen's do), with R and K known at compile
// time. The generic loop over window spans had taken about 20 ns an output there, a
// quarter of the time of 3×3/2 average pooling on 28×28 maps.
template <Fold F, bool Idx, int S, int K, int R, typename T>
__attribute__((always_inline)) inline void direct_edges(const DirectCall<T>& c, const T* const* rows,
                                                       const int64_t* row_base, T* __restrict y,
                                                       int64_t* __restrict yi, int64_t row_div, int64_t o0,
                                                       int64_t o1) {
  using A = acc_t<T>;
  constexpr Fold C = combine_of(F);
  for (int64_t o = o0; o < o1; ++o) {
    const int64_t at = o * (S ? S : c.s) - c.pad;
    const int k0 = static_cast<int>(std::max<int64_t>(0, -at));
    const int k1 = static_cast<int>(std::min<int64_t>(K, c.w_in - at));
    A a = C == Fold::Sum ? A(0) : transform<F>(static_cast<A>(rows[0][at + k0]), c.p);
    int64_t ai = row_base[0] + at + k0;
    for (int r = 0; r < R; ++r) {
      for (int k = k0; k < k1; ++k) {
        if (C != Fold::Sum && r == 0 && k == k0) continue;
        const A v = transform<F>(static_cast<A>(rows[r][at + k]), c.p);
        if (Idx) {
          const bool t = takes<F>(v, a);
          a = t ? v : a;
          ai = t ? row_base[r] + at + k : ai;
        } else {
          a = combine<C>(a, v);
        }
      }
    }
    y[o] = static_cast<T>(finish_fused<F>(a, A(c.divisor(row_div, o)), c.kvol, c.inv_p));
    if (Idx) yi[o] = ai;
  }
}

// One output row of the direct path: the interior in one fused pass, the edges clipped.
// row_div is DivisorTable::rows(od, oh).
template <Fold F, bool Idx, int S, int K, int R, typename T>
void direct_row(const DirectCall<T>& c, const T* const* rows, const int64_t* row_base, T* y, int64_t* yi,
                int64_t row_div) {
  using A = acc_t<T>;
#if defined(__AVX2__)
  if constexpr (std::is_same<T, float>::value && Idx && S == 0 && (F == Fold::Max || F == Fold::Min)) {
    if (row_base[R - 1] + c.w_in <= std::numeric_limits<int32_t>::max()) {  // positions fit int32
      strided_indices_avx2<F, K, R>(rows, row_base, c.w_in, y, yi, c.w_out, c.s, c.pad);
      return;
    }
  }
#endif
  if (c.lo < c.hi) {
    direct_interior<F, Idx, S, K, R, T>(rows, row_base, y, yi, c.lo, c.hi, c.s, c.pad, c.p,
                                        A(c.divisor(row_div, c.lo)), c.kvol, c.inv_p);
  }
  direct_edges<F, Idx, S, K, R, T>(c, rows, row_base, y, yi, row_div, 0, c.lo);
  direct_edges<F, Idx, S, K, R, T>(c, rows, row_base, y, yi, row_div, c.hi, c.w_out);
}

template <typename T>
using DirectFn = void (*)(const DirectCall<T>&, const T* const*, const int64_t*, T*, int64_t*, int64_t);

// Whether direct_interior takes max and min without indices over stride-2 windows with
// stride2_avx2 (float, AVX2 and AVX-512 builds).
template <Fold F, typename T>
constexpr bool stride2_extremes_in_avx2() {
#if defined(__AVX2__)
  return std::is_same<T, float>::value && (F == Fold::Max || F == Fold::Min);
#else
  return false;
#endif
}

// The instantiation for (S, K, R), or nullptr when the window is not one of them. With
// indices, strides of 3 or more take a runtime-stride instantiation (S = 0), which in
// AVX2 and AVX-512 builds does float rows in strided_indices_avx2 (positions in int32);
// the per-row folds they had gone through (a strided pass per tap, index beside value)
// ran 3×3/3 max pooling with indices at 7 % of the read rate on 28×28 maps, 1.8×
// PyTorch. The scalar loops remain for double in AVX-512 builds and for planes whose
// positions overflow int32 (2^31 elements); GCC compiles their select into branches for
// AVX2, which random data mispredicts (2.1–2.6× slower than the folds on 2×2/3), so
// AVX2 builds keep the folds for double.
template <Fold F, bool Idx, typename T>
DirectFn<T> direct_row_for(int64_t S, int64_t K, int64_t R) {
  // Max and min over 3 strided taps per row vectorise poorly in the compiler's hands;
  // without indices the separable path (rows first, then along W) is faster there,
  // unless stride2_avx2 takes them.
  if (!Idx && K == 3 && R > 1 && combine_of(F) != Fold::Sum && !(S == 2 && stride2_extremes_in_avx2<F, T>())) {
    return nullptr;
  }
#define FANCY_DIRECT(s, k, r) \
  if (S == s && K == k && R == r) return &direct_row<F, Idx, s, k, r, T>;
#define FANCY_DIRECT_R(s, k) FANCY_DIRECT(s, k, 1) FANCY_DIRECT(s, k, 2) FANCY_DIRECT(s, k, 3) FANCY_DIRECT(s, k, 4)
  FANCY_DIRECT_R(1, 2) FANCY_DIRECT_R(1, 3) FANCY_DIRECT_R(2, 2) FANCY_DIRECT_R(2, 3)
#if defined(__AVX512F__)
  constexpr bool runtime_stride = Idx;
#elif defined(__AVX2__)
  constexpr bool runtime_stride = Idx && std::is_same<T, float>::value;
#else
  constexpr bool runtime_stride = false;
#endif
  if constexpr (runtime_stride) {
    if (S >= 3) {
      S = 0;
      FANCY_DIRECT_R(0, 2) FANCY_DIRECT_R(0, 3)
    }
  }
#undef FANCY_DIRECT_R
#undef FANCY_DIRECT
  return nullptr;
}

constexpr int64_t kPrefetchRows = 4;
constexpr int64_t kPrefetchMaxRow = 256;  // longer rows stream well on their own
// Taller windows' contiguous blocks stream well on their own; up to 8 rows do not (5×5/5
// on 112-wide rows read at 26–29 % of the read rate without the prefetch, 61 % with it).
constexpr int64_t kPrefetchMaxWindowRows = 8;
constexpr int64_t kPrefetchPositions = 4;  // channels-last: output positions ahead
constexpr int64_t kPrefetchMaxPiece = 1024;  // channels-last: bytes of a window row worth prefetching
constexpr int64_t kPrefetchWideBytes = 8192;  // channels-last wide windows with indices: bytes ahead

// (plane, od, oh) of output row r of an NCDHW output, advanced one row at a time.
struct RowCounter {
  RowCounter(int64_t r, int64_t d_out, int64_t h_out)
      : oh(r % h_out), od((r / h_out) % d_out), plane(r / (h_out * d_out)), D(d_out), H(h_out) {}
  void next() {
    if (++oh < H) return;
    oh = 0;
    if (++od < D) return;
    od = 0;
    ++plane;
  }
  int64_t oh, od, plane, D, H;
};

// ---------------------------------------------------------------- 3×3 / 2, padding 1
// Max or min pooling without indices over 3×3 windows of stride 2 and padding 1 on maps
// of even width (the ResNet stem's pool, W = 2·OW), one (n, c) plane at a time, one
// output row at a time: each input row is folded along W once (output o reads 2o − 1,
// 2o, 2o + 1; the first window, clipped to 2 columns, apart) into a ring of the last
// three folded rows, since it serves two output rows, and each output row combines its
// 2–3 folded rows. Row first, then column: the extreme ATen's scan picks (ties keep the
// earlier row, then column; NaN propagates). The folds use plain max / min instructions
// and a NaN probe; a row with a NaN is folded again NaN-exactly, and so is the combine of
// every output row it serves. Float with AVX-512 takes pool3x3_s2p1_planes below instead, and
// so do float planes up to 64 outputs wide with AVX2 (Narrow3x3x8).
// Kernel A/B on the session-26 Xeon (AVX-512) against the previous session's paths (one
// long fold over the whole plane, or for planes of 16 KB or more the direct path's vector
// steps): 16×64×112×112 0.85–0.96 at one thread, 0.77 at two; 64×64×56×56 0.83–0.87;
// 16×64×224×224 0.86–0.92; 1×64×112×112 (cache-resident) 0.67–0.72; 64×32×28×28
// 1.04–1.06 at one thread, 1.19 at two (14-output rows: two overlapping steps a row).

#if defined(__AVX2__)
// h[o] for o in [o, hi) in steps of L's lanes when the range holds one (the last step
// overlapping, as in steps), and advances o past what it did. Exact: the
// NaN-exact combine; otherwise plain max_ps / min_ps (exact when no input is NaN: they
// keep the earlier value on ties), and the result says whether an input was NaN.
template <class L, Fold F, bool Exact>
bool fold3_stride2_lanes(const float* __restrict x, float* __restrict h, int64_t& o, int64_t hi) {
  typename L::M nan = L::no_nan();
  o = steps<L::n>(o, hi, [&](int64_t i) {
    typename L::V t[3];  // x[2i − 1], x[2i], x[2i + 1]
    L::template taps<3>(x + 2 * i - 1, t);
    if constexpr (Exact) {
      L::store(h + i, L::template combine<F>(L::template combine<F>(t[0], t[1]), t[2]));
    } else {
      nan = L::nan_lanes(L::nan_lanes(nan, t[0], t[2]), t[1], t[1]);
      L::store(h + i, F == Fold::Max ? L::max(t[2], L::max(t[1], t[0])) : L::min(t[2], L::min(t[1], t[0])));
    }
  });
  return !L::none(nan);
}
#endif

// h[o] for o in [lo, hi); whether an input was NaN (then, unless Exact, h is not
// NaN-exact and the caller folds again with Exact).
template <Fold F, bool Exact, typename A>
bool fold3_stride2_range(const A* __restrict x, A* __restrict h, int64_t lo, int64_t hi) {
  int64_t o = lo;
  bool nan = false;
#if defined(__AVX2__)
  if constexpr (std::is_same<A, float>::value && (F == Fold::Max || F == Fold::Min)) {
    // Outputs from in-lane shuffles, one 64-bit permute to restore the lane order. The
    // compiler's own version used three lane-crossing permutes.
    nan = fold3_stride2_lanes<Lanes8, F, Exact>(x, h, o, hi);
  }
#endif
  for (; o < hi; ++o) {
    h[o] = combine<F>(combine<F>(x[2 * o - 1], x[2 * o]), x[2 * o + 1]);
    nan = nan || h[o] != h[o];  // the exact combine keeps any NaN
  }
  return nan;
}

// Row x of 2·n values folded along W into h[0, n), output 0's window clipped to x[0, 2),
// and whether the row held a NaN (then h was folded NaN-exactly).
template <Fold F, typename A>
bool fold3_row(const A* x, A* h, int64_t n) {
  const bool nan = fold3_stride2_range<F, false>(x, h, 1, n) || x[0] != x[0];
  if (nan) fold3_stride2_range<F, true>(x, h, 1, n);
  h[0] = combine<F>(x[0], x[1]);  // the window clipped by the padding
  return nan;
}

// out = a ⊕ b (⊕ c): the folded rows of one output's window in scan order. Exact:
// NaN-exact; otherwise plain max / min, exact when no row holds a NaN.
template <Fold F, bool Exact, typename A>
void combine_rows(const A* __restrict a, const A* __restrict b, const A* __restrict c, A* __restrict out,
                  int64_t n) {
  int64_t o = 0;
#if defined(__AVX2__)
  // Explicit, so that short rows (14 outputs) have no scalar tail: its compares branch,
  // and on real data they mispredict.
  if constexpr (std::is_same<A, float>::value) {
    auto fold = [](__m256 u, __m256 v) {
      return Exact ? combine8<F>(u, v) : F == Fold::Max ? _mm256_max_ps(v, u) : _mm256_min_ps(v, u);
    };
    o = steps<8>(0, n, [&](int64_t i) {
      __m256 r = fold(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
      if (c != nullptr) r = fold(r, _mm256_loadu_ps(c + i));
      _mm256_storeu_ps(out + i, r);
    });
  }
#endif
  for (; o < n; ++o) out[o] = c != nullptr ? combine<F>(combine<F>(a[o], b[o]), c[o]) : combine<F>(a[o], b[o]);
}

template <Fold F, typename T>
bool extreme3x3_s2p1_planes(const T* x, T* y, const PoolGeometry& g) {
  const auto& D = g.dim[0];
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  if (!(D.k == 1 && D.s == 1 && D.p == 0 && !g.adaptive && H.k == 3 && W.k == 3 && H.s == 2 && W.s == 2 &&
        H.p == 1 && W.p == 1 && H.d == 1 && W.d == 1 && W.in == 2 * W.out && H.in >= 2 && W.in >= 2)) {
    return false;
  }
  const int64_t planes = g.N * g.C * D.in, h_out = H.out, w_out = W.out, h_in = H.in, w_in = W.in;
  at::parallel_for(0, planes, 1, [&](int64_t b, int64_t e) {
    // The folded rows (along W) of the last three input rows, row ih in slot ih % 3, and
    // whether each held a NaN (then it was folded NaN-exactly, and so is its combine).
    std::vector<T> ring(3 * w_out);
    bool ring_nan[3] = {false, false, false};
    const int64_t rows_end = e * h_in;  // the input rows of this thread's planes end there
    for (int64_t q = b; q < e; ++q) {
      const T* xp = x + q * h_in * w_in;
      T* yp = y + q * h_out * w_out;
      int64_t folded = 0;  // input rows of this plane folded so far
      for (int64_t oh = 0; oh < h_out; ++oh) {
        const int64_t r0 = std::max<int64_t>(2 * oh - 1, 0), r1 = std::min<int64_t>(2 * oh + 2, h_in);
        for (; folded < r1; ++folded) {
          const T* xr = xp + folded * w_in;
          // Ask for a later input row (of the next plane near the end): the hardware
          // prefetcher alone left this loop waiting on the memory.
          const int64_t later = q * h_in + folded + kPrefetchRows;  // row index in x
          if (later < rows_end) {
            prefetch_lines(reinterpret_cast<const char*>(x + later * w_in), w_in * int64_t(sizeof(T)));
          }
          ring_nan[folded % 3] = fold3_row<F>(xr, ring.data() + (folded % 3) * w_out, w_out);
        }
        const T* rows[3];
        bool nan = false;
        for (int64_t r = r0; r < r1; ++r) {
          rows[r - r0] = ring.data() + (r % 3) * w_out;
          nan = nan || ring_nan[r % 3];
        }
        T* out = yp + oh * w_out;
        const T* third = r1 - r0 == 3 ? rows[2] : nullptr;
        if (r1 - r0 == 1) std::copy(rows[0], rows[0] + w_out, out);
        else if (nan) combine_rows<F, true>(rows[0], rows[1], third, out, w_out);
        else combine_rows<F, false>(rows[0], rows[1], third, out, w_out);
      }
    }
  });
  return true;
}

#if defined(__AVX512F__)
// A row's 3-wide stride-2 windows, 16 outputs at a time from output 0: the taps x[2i − 1],
// x[2i], x[2i + 1] of outputs i in [o, o + 16), in natural lane order. Two loads at the
// row's own alignment (rows of 112 floats start on cache lines: no load splits one) are
// split by two-source permutes into the even and odd values, and x[2i − 1] is the odd
// values shifted one lane, the previous step's last one coming in. Values outside the row
// (x[−1], and from w_in on) read as `pad`, the fold's identity (+0 for sums, ∓inf for
// max / min), so the clipped windows at both ends need no code of their own. Against
// Lanes16::taps (four loads, each split across two cache lines, three in-lane shuffles,
// and a permute to store), this is two loads and three permutes.
class RowTaps16 {
 public:
  RowTaps16(const float* row, int64_t w_in, float pad)
      : row_(row), w_in_(w_in), pad_(_mm512_set1_ps(pad)), odd_(pad_) {}
  // The taps of outputs [o, o + 16); call with o = 0, 16, 32, … in turn.
  void next(int64_t o, __m512 (&t)[3]) {
    const int64_t at = 2 * o;
    if (at + 32 <= w_in_) {
      a_ = _mm512_loadu_ps(row_ + at);
      b_ = _mm512_loadu_ps(row_ + at + 16);
    } else {  // masked lanes are not read, so nothing past the row (or the tensor) is touched
      a_ = _mm512_mask_loadu_ps(pad_, lanes(w_in_ - at), row_ + at);
      b_ = _mm512_mask_loadu_ps(pad_, lanes(w_in_ - at - 16), row_ + at + 16);
    }
    split(a_, b_, odd_, t);
    odd_ = t[2];
  }
  // The taps of the 16 windows over x[at .. at + 32) (a and b), given the odd values of
  // the 16 windows before (odd_before; its last lane is x[at − 1]).
  static void split(__m512 a, __m512 b, __m512 odd_before, __m512 (&t)[3]) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    t[1] = _mm512_permutex2var_ps(a, even, b);
    t[2] = _mm512_permutex2var_ps(a, odd, b);
    t[0] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(t[2]), _mm512_castps_si512(odd_before), 15));
  }
  // nan with the lanes where a value the last step read is NaN.
  __mmask16 nan_lanes(__mmask16 nan) const { return nan | _mm512_cmp_ps_mask(a_, b_, _CMP_UNORD_Q); }
  // The first n lanes (none when n ≤ 0, all when n ≥ 16).
  static __mmask16 lanes(int64_t n) {
    return n <= 0 ? __mmask16(0) : n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
  }

 private:
  const float* row_;
  int64_t w_in_;
  __m512 pad_, odd_, a_, b_;
};
#endif

// ---------------------------------------------------------------- 3×3 / 2, padding 1, AVX-512
// Max, min, average, L1 and L2 pooling without indices over 3×3 windows of stride 2 and
// padding 1 (any size, ceil_mode either way, every divisor rule), float with AVX-512: one
// (n, c) plane at a time, one output row at a time, 16 outputs a step from output 0
// through RowTaps16, with no per-row set-up and no scalar edges. Each output folds its 9
// taps in ATen's scan order (row, then column); taps outside the input read as the fold's
// identity. Sums start from +0, and adding +0 to a sum that starts from +0 changes nothing
// (it cannot become −0), so every output is bit-identical to the direct path's. Max and
// min fold with plain max / min and a NaN probe over the inputs read; a step whose inputs
// held a NaN is folded again with the exact combine.
// Kernel A/B on the session-27 Xeon, one thread unless marked, against the direct path
// (sums: a driver per output row, a scalar first window, 12 loads split across cache
// lines per 16 outputs, 30 ns an input row on cache-resident 112×112 maps) and the ring
// above (max, min): 16×64×112×112 average 0.44, L2 0.67, max 0.70 (0.93 at two threads),
// min 0.86; 64×32×28×28 max and min 0.70. Folding the three rows of each output row in
// registers costs less than storing each folded row into the ring and loading it back.
// Planes up to 64 outputs wide (inputs up to 128: ImageNet's 112×112 stem, 56×56, 28×28)
// go top to bottom instead (Narrow3x3), each input row split into taps once. Kernel A/B
// (session 28) against the row-at-a-time path: 64×32×28×28 max 0.41–0.70, average 0.50–
// 0.54 (41–62 % → 81–105 % of the read rate: the per-row set-up was most of a 14-output
// row); 16×64×56×56 max 0.59–0.82; 16×64×112×112 max 0.75–0.80, min 0.75–0.81, average
// 0.90–0.94, L2 1.0; two threads max 0.75–0.84, average 0.83–0.86.
#if defined(__AVX512F__)
// A 3×3 window's sum of 9 (or of |x|, x²) into its output: average divides by the divisor;
// Lp is lp_scaled_sum, sum / div · 9 where the divisor is not the volume (rarely), then the
// root for L2.
template <Fold F>
__m512 finish3x3(__m512 a, __m512 div) {
  if constexpr (F == Fold::Sum) {
    return _mm512_div_ps(a, div);
  } else {
    const __m512 kvol = _mm512_set1_ps(9.0f);
    const __mmask16 scaled = _mm512_cmp_ps_mask(div, kvol, _CMP_NEQ_UQ);
    if (scaled) a = _mm512_mask_mul_ps(a, scaled, _mm512_div_ps(a, div), kvol);
    return F == Fold::SumSq ? _mm512_sqrt_ps(a) : a;
  }
}

template <Fold F, int R>
void pool3x3_s2p1_row(const float* const* rows, int64_t w_in, float* __restrict y, int64_t w_out, float row_div,
                      const float* col_div, float div_override) {
  constexpr bool sum = F == Fold::Sum || F == Fold::SumAbs || F == Fold::SumSq;
  const float pad = sum ? 0.0f : fold_init<float>(F);
  RowTaps16 taps[3] = {RowTaps16(rows[0], w_in, pad), RowTaps16(rows[1], w_in, pad),
                       RowTaps16(rows[2], w_in, pad)};  // the first R are used
  // The probe covers the inputs a step loads; the last of them is also the next step's
  // first tap (x[2i − 1] of its output 0), so a NaN there makes both steps exact.
  bool nan_before = false;
  for (int64_t o = 0; o < w_out; o += 16) {
    __m512 t[3][3];
    __mmask16 loaded_nan = 0;
    for (int r = 0; r < R; ++r) {
      taps[r].next(o, t[r]);
      if (!sum) loaded_nan = taps[r].nan_lanes(loaded_nan);
    }
    const bool nan = loaded_nan != 0 || nan_before;
    nan_before = loaded_nan != 0;
    __m512 a = _mm512_setzero_ps();
    if constexpr (sum) {
      for (int r = 0; r < R; ++r) {
        for (int k = 0; k < 3; ++k) {
          const __m512 v = t[r][k];
          a = _mm512_add_ps(a, F == Fold::SumSq ? _mm512_mul_ps(v, v) : F == Fold::SumAbs ? _mm512_abs_ps(v) : v);
        }
      }
      const __m512 div = div_override > 0 ? _mm512_set1_ps(div_override)
                                          : _mm512_mul_ps(_mm512_set1_ps(row_div), _mm512_loadu_ps(col_div + o));
      a = finish3x3<F>(a, div);
    } else {
      a = t[0][0];
      for (int r = 0; r < R; ++r) {
        for (int k = r == 0 ? 1 : 0; k < 3; ++k) {
          a = F == Fold::Max ? _mm512_max_ps(t[r][k], a) : _mm512_min_ps(t[r][k], a);  // ties keep a
        }
      }
      if (nan) {  // a NaN tap was dropped: the NaN-exact combine, in the same order
        a = t[0][0];
        for (int r = 0; r < R; ++r) {
          for (int k = r == 0 ? 1 : 0; k < 3; ++k) a = Lanes16::combine<F>(a, t[r][k]);
        }
      }
    }
    _mm512_mask_storeu_ps(y + o, RowTaps16::lanes(w_out - o), a);
  }
}

// Planes at most 16·S outputs wide (S ≤ 4: inputs up to 128 wide), one plane at a time,
// top to bottom. Output row oh folds input rows 2·oh − 1, 2·oh and 2·oh + 1; the first
// of them was the last of the row above, so its taps stay in registers instead of being
// loaded and split again: two rows a step instead of three. Rows outside the input load
// nothing (an empty mask) and read as the fold's identity, like the values outside a
// row, so the first and last output rows (and ceil_mode's) run the same code. Max and
// min probe each row for NaN; an output row whose three rows held one is folded again
// with the exact combine, out of line so that the taps stay in registers. The loops over
// steps, rows and taps are unrolled before GCC places the arrays (else `top`, indexed by
// the step, lives on the stack: a store and a load per tap and step; 0.95–0.97 of the
// time on 16×64×112×112 once unrolled).
#define FANCY_UNROLL _Pragma("GCC unroll 16")
template <Fold F, int S>
class Narrow3x3 {
 public:
  static constexpr bool sum = F == Fold::Sum || F == Fold::SumAbs || F == Fold::SumSq;
  using Taps = __m512[S][3];

  Narrow3x3(const float* x, int64_t h_in, int64_t w_in)
      : x_(x), h_in_(h_in), w_in_(w_in), pad_(_mm512_set1_ps(sum ? 0.0f : fold_init<float>(F))) {
    FANCY_UNROLL for (int s = 0; s < S; ++s) {
      load_a_[s] = RowTaps16::lanes(w_in - 32 * s);
      load_b_[s] = RowTaps16::lanes(w_in - 32 * s - 16);
    }
  }
  // The taps of step s of input row r of the plane at xp, given the odd values of step
  // s − 1 (updated); the lanes of NaN values read.
  __mmask16 step(const float* xp, int64_t r, int s, __m512& odd, __m512 (&t)[3]) const {
    const bool inside = r < h_in_;  // r ≥ 0 always: row −1 is the initial identity
    const float* at = xp + r * w_in_ + 32 * s;  // past the plane when !inside, but then nothing is read
    const __m512 a = _mm512_mask_loadu_ps(pad_, inside ? load_a_[s] : __mmask16(0), at);
    const __m512 b = _mm512_mask_loadu_ps(pad_, inside ? load_b_[s] : __mmask16(0), at + 16);
    RowTaps16::split(a, b, odd, t);
    odd = t[2];
    return sum ? __mmask16(0) : _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
  }
  void row(const float* xp, int64_t r, Taps& t) const {
    __m512 odd = pad_;
    FANCY_UNROLL for (int s = 0; s < S; ++s) step(xp, r, s, odd, t[s]);
  }
  void identity(Taps& t) const {
    FANCY_UNROLL for (int s = 0; s < S; ++s) t[s][0] = t[s][1] = t[s][2] = pad_;
  }
  // The fold of step s of three rows' taps, in scan order (max / min: plain, ties keep the
  // earlier; exact = NaN-propagating).
  template <bool exact = false>
  static __m512 fold(const __m512 (&t0)[3], const __m512 (&t1)[3], const __m512 (&t2)[3], __m512 div) {
    const __m512* rows[3] = {t0, t1, t2};
    if constexpr (sum) {
      __m512 a = _mm512_setzero_ps();
      FANCY_UNROLL for (int r = 0; r < 3; ++r) {
        FANCY_UNROLL for (int k = 0; k < 3; ++k) {
          const __m512 v = rows[r][k];
          a = _mm512_add_ps(a, F == Fold::SumSq ? _mm512_mul_ps(v, v) : F == Fold::SumAbs ? _mm512_abs_ps(v) : v);
        }
      }
      return finish3x3<F>(a, div);
    } else {
      __m512 a = rows[0][0];
      FANCY_UNROLL for (int r = 0; r < 3; ++r) {
        for (int k = r == 0 ? 1 : 0; k < 3; ++k) {
          const __m512 v = rows[r][k];
          a = exact ? Lanes16::combine<F>(a, v) : F == Fold::Max ? _mm512_max_ps(v, a) : _mm512_min_ps(v, a);
        }
      }
      return a;
    }
  }
  // Output row oh of the plane at xp with the exact combine (a NaN was read).
  __attribute__((noinline)) void exact_row(const float* xp, int64_t oh, float* y, const __mmask16* store) const {
    Taps t0, t1, t2;
    if (oh > 0) {
      row(xp, 2 * oh - 1, t0);
    } else {
      identity(t0);
    }
    row(xp, 2 * oh, t1);
    row(xp, 2 * oh + 1, t2);
    FANCY_UNROLL for (int s = 0; s < S; ++s) _mm512_mask_storeu_ps(y + 16 * s, store[s], fold<true>(t0[s], t1[s], t2[s], pad_));
  }

  // Planes [b, e) into y (h_out × w_out each); div holds each output's divisor (sums), rows
  // of S·16.
  void planes(int64_t b, int64_t e, float* y, int64_t h_out, int64_t w_out, const float* div) const {
    __mmask16 store[S];
    FANCY_UNROLL for (int s = 0; s < S; ++s) store[s] = RowTaps16::lanes(w_out - 16 * s);
    const char* end = reinterpret_cast<const char*>(x_ + e * h_in_ * w_in_);
    const int64_t two_rows = 2 * w_in_ * int64_t(sizeof(float));
    for (int64_t q = b; q < e; ++q) {
      const float* xp = x_ + q * h_in_ * w_in_;
      float* yp = y + q * h_out * w_out;
      Taps top;  // the taps of input row 2·oh − 1
      identity(top);
      bool nan_top = false;
      for (int64_t oh = 0; oh < h_out; ++oh, yp += w_out) {
        // The two rows that the output row kPrefetchRows below adds (into the next plane
        // near the bottom), as the row path does: one thread alone does not keep enough
        // lines in flight from L3 or memory without it.
        const char* ahead = reinterpret_cast<const char*>(xp + (2 * oh + 2 * kPrefetchRows) * w_in_);
        for (int64_t off = 0; off < two_rows && ahead + off < end; off += 64) __builtin_prefetch(ahead + off);
        __m512 odd_mid = pad_, odd_bottom = pad_;
        __mmask16 nan_mid = 0, nan_bottom = 0;
        FANCY_UNROLL for (int s = 0; s < S; ++s) {  // step by step, so that only the top row's taps are kept
          __m512 mid[3], bottom[3];
          nan_mid |= step(xp, 2 * oh, s, odd_mid, mid);
          nan_bottom |= step(xp, 2 * oh + 1, s, odd_bottom, bottom);
          const __m512 d = sum ? _mm512_loadu_ps(div + (oh * S + s) * 16) : pad_;
          _mm512_mask_storeu_ps(yp + 16 * s, store[s], fold(top[s], mid, bottom, d));
          FANCY_UNROLL for (int k = 0; k < 3; ++k) top[s][k] = bottom[k];
        }
        if (!sum && (nan_top || nan_mid || nan_bottom)) exact_row(xp, oh, yp, store);
        nan_top = nan_bottom != 0;
      }
    }
  }

 private:
  const float* x_;
  int64_t h_in_, w_in_;
  __m512 pad_;
  __mmask16 load_a_[S], load_b_[S];
};
#undef FANCY_UNROLL
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
// The AVX2 build's 3×3/2 pad 1 planes up to 64 outputs wide (max, min, average, L1, L2;
// float, no indices): an output row at a time, S steps of 8 outputs, each input row's taps
// from taps3_stride2's four loads and three in-lane shuffles at x[2o − 1] (o the step's
// first output), loaded once and kept for the output row below (in registers while they
// fit). Loads that reach past the row (x[−1], x[w_in] on) are masked, their lanes the
// fold's identity; rows outside the input are the identity without loads.
// Max and min keep less: "a unless v is strictly better" over any tree whose leaves are
// in scan order gives the first maximal element in scan order, as ATen's loop does (signed
// zeros included: they tie), so each input row is folded along W once and an output is
// the fold of its three rows' folds, two operations a step instead of eight dependent
// ones. A NaN anywhere in an output row's three rows sends the row through the exact
// combine in scan order instead.
// Before, 14-output rows went through the ring (max, min) or the direct path (sums), each
// with a per-row driver that cost more than the row's arithmetic. Kernel A/B of the AVX2
// build on the session-28 Xeon, new / old: 64×32×28×28 max 0.44, min 0.43, average 0.47,
// L2 0.46; 16×64×56×56 0.41–0.56; 16×64×112×112 0.61–0.68 (two threads 0.63–0.71).
// The step count is a template parameter and the step, row and tap loops are unrolled
// (session 29), so the masks, flags and carried taps of a step are no longer indexed at
// run time: new / old 0.59–0.77 (max, min) and 0.72–0.97 (average, L2) on 64×32×28×28,
// 0.79–1.01 on 16×64×112×112. L2 adds x·x with an explicit FMA, so that no build's
// contraction choice changes its rounding (ATen's composition rounds x² first; both are
// within the tests' 1e-6 of the float64 one).
#define FANCY_UNROLL _Pragma("GCC unroll 16")
template <Fold F, int S>
class Narrow3x3x8 {
 public:
  static constexpr bool sum = F == Fold::Sum || F == Fold::SumAbs || F == Fold::SumSq;
  using Taps = __m256[3];

  Narrow3x3x8(const float* x, int64_t h_in, int64_t w_in, int64_t w_out)
      : x_(x), h_in_(h_in), w_in_(w_in), w_out_(w_out), last_(std::max<int64_t>(w_out - 8, 0)),
        pad_(_mm256_set1_ps(sum ? 0.0f : fold_init<float>(F))) {
    for (int s = 0; s < S; ++s) {
      const int64_t o = start(s), at[4] = {2 * o - 1, 2 * o + 7, 2 * o, 2 * o + 8};  // a, b, c, d
      for (int j = 0; j < 4; ++j) {
        alignas(32) int32_t m[8];
        full_[s][j] = true;
        for (int l = 0; l < 8; ++l) {
          m[l] = at[j] + l >= 0 && at[j] + l < w_in ? -1 : 0;
          full_[s][j] = full_[s][j] && m[l];
        }
        load_[s][j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
        inner_full_ = inner_full_ && (full_[s][j] || s + j == 0);
      }
    }
    alignas(32) int32_t m[8];
    for (int l = 0; l < 8; ++l) m[l] = l < w_out - (kOverlap ? 0 : 8 * (S - 1)) ? -1 : 0;
    short_store_ = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
  }

  // Planes [b, e) into y; div holds each output's divisor (sums), rows of S·8.
  void planes(int64_t b, int64_t e, float* y, int64_t h_out, const float* div) const {
    if (inner_full_) {
      planes<true>(b, e, y, h_out, div);
    } else {
      planes<false>(b, e, y, h_out, div);
    }
  }

 private:
  // Inner: every load but x[−1] (step 0's first) lies inside the row (28 and 112 wide, for
  // instance), so no load tests full_ (a compare and branch a load). Kernel alone, 2048
  // planes of 28×28 in a quiet phase: 10.2–10.3 ns an output row against 10.5–10.8 (max),
  // 10.2 against 10.8 (L2); the row then reads at about x.sum()'s rate.
  template <bool Inner>
  void planes(int64_t b, int64_t e, float* y, int64_t h_out, const float* div) const {
    const char* end = reinterpret_cast<const char*>(x_ + e * h_in_ * w_in_);
    const int64_t two_rows = 2 * w_in_ * int64_t(sizeof(float));
    Taps top[S];      // sums: the taps of input row 2·oh − 1
    __m256 top_h[S];  // max, min: that row folded along W
    for (int64_t q = b; q < e; ++q) {
      const float* xp = x_ + q * h_in_ * w_in_;
      FANCY_UNROLL for (int s = 0; s < S; ++s) top[s][0] = top[s][1] = top[s][2] = top_h[s] = pad_;
      bool nan_top = false;
      for (int64_t oh = 0; oh < h_out; ++oh) {
        float* yr = y + (q * h_out + oh) * w_out_;
        const char* ahead = reinterpret_cast<const char*>(xp + (2 * oh + 2 * kPrefetchRows) * w_in_);
        for (int64_t off = 0; off < two_rows && ahead + off < end; off += 64) __builtin_prefetch(ahead + off);
        __m256 nan_mid = _mm256_setzero_ps(), nan_bottom = _mm256_setzero_ps();
        FANCY_UNROLL for (int s = 0; s < S; ++s) {
          Taps mid, bottom;
          taps<Inner>(xp, 2 * oh, s, mid, nan_mid);
          taps<Inner>(xp, 2 * oh + 1, s, bottom, nan_bottom);
          __m256 a;
          if constexpr (sum) {
            a = unshuffle8(fold(top[s], mid, bottom));
            a = finish(a, _mm256_loadu_ps(div + oh * S * 8 + start(s)));
            FANCY_UNROLL for (int k = 0; k < 3; ++k) top[s][k] = bottom[k];
          } else {
            const __m256 bottom_h = keep(keep(bottom[0], bottom[1]), bottom[2]);
            a = unshuffle8(keep(keep(top_h[s], keep(keep(mid[0], mid[1]), mid[2])), bottom_h));
            top_h[s] = bottom_h;
          }
          store(yr, s, a);
        }
        const bool nan_here = !_mm256_testz_ps(nan_bottom, nan_bottom);
        if (!sum && (nan_top || nan_here || !_mm256_testz_ps(nan_mid, nan_mid))) exact_row(xp, oh, yr);
        nan_top = nan_here;
      }
    }
  }

  // The taps of step s of input row r (identity outside the input), in taps3_stride2's
  // lane order; nan gains the lanes of NaN values loaded at x[2o .. 2o + 16) (o =
  // start(s)), which over the steps are all of the row's values.
  template <bool Inner = false>
  void taps(const float* xp, int64_t r, int s, Taps& t, __m256& nan) const {
    if (r < 0 || r >= h_in_) {
      t[0] = t[1] = t[2] = pad_;
      return;
    }
    const float* p = xp + r * w_in_ + 2 * start(s) - 1;
    const __m256 a = load<Inner>(p, s, 0), b = load<Inner>(p + 8, s, 1), c = load<Inner>(p + 1, s, 2),
                 d = load<Inner>(p + 9, s, 3);
    t[0] = _mm256_shuffle_ps(a, b, 0x88);
    t[1] = _mm256_shuffle_ps(a, b, 0xDD);
    t[2] = _mm256_shuffle_ps(c, d, 0xDD);
    if (!sum) nan = _mm256_or_ps(nan, _mm256_cmp_ps(c, d, _CMP_UNORD_Q));
  }
  // Load j of step s (a, b, c, d); where it reaches past the row, the lanes outside are
  // not read (no fault past the tensor) and read as the identity.
  template <bool Inner>
  __m256 load(const float* p, int s, int j) const {
    if (Inner ? s + j > 0 : full_[s][j]) return _mm256_loadu_ps(p);
    const __m256 v = _mm256_maskload_ps(p, load_[s][j]);
    return sum ? v : _mm256_blendv_ps(pad_, v, _mm256_castsi256_ps(load_[s][j]));
  }
  // The first output of step s: 8·s, but on rows of 9 to 16 outputs the last step ends at
  // the row's end, overlapping the one before it (both write the same values there),
  // instead of a masked store (which AMD's cores run as microcode) and the masked loads
  // past the row: A/B on the Xeon, 64×32×28×28 new / old 0.75–0.92 for all four ops. On
  // wider rows the overlap measured 0.72–1.10 (56×56) and 1.13–1.16 (L2 of 112×112): there
  // the last step stays at 8·(S − 1) with a masked store. Rows under 8 outputs are one
  // masked store.
  static constexpr bool kOverlap = S <= 2;
  int64_t start(int s) const { return s + 1 < S || !kOverlap ? 8 * s : last_; }
  void store(float* yr, int s, __m256 v) const {
    if ((S == 1 && w_out_ < 8) || (!kOverlap && s + 1 == S)) {
      _mm256_maskstore_ps(yr + 8 * s, short_store_, v);
    } else {
      _mm256_storeu_ps(yr + start(s), v);
    }
  }
  // a unless v is strictly better (max, min; a on ties and when either is NaN).
  static __m256 keep(__m256 a, __m256 v) { return F == Fold::Max ? _mm256_max_ps(v, a) : _mm256_min_ps(v, a); }
  // An output step's 9 taps summed in scan order (row, then column), from +0.
  static __m256 fold(const Taps& t0, const Taps& t1, const Taps& t2) {
    const __m256* rows[3] = {t0, t1, t2};
    __m256 a = _mm256_setzero_ps();
    FANCY_UNROLL for (int r = 0; r < 3; ++r) {
      FANCY_UNROLL for (int k = 0; k < 3; ++k) {
        const __m256 v = rows[r][k];
        a = F == Fold::SumSq ? _mm256_fmadd_ps(v, v, a) : _mm256_add_ps(a, F == Fold::SumAbs ? Lanes8::abs(v) : v);
      }
    }
    return a;
  }
  // Average: the sum / divisor; L1, L2: lp_scaled_sum (then the root).
  static __m256 finish(__m256 a, __m256 d) {
    if constexpr (F == Fold::Sum) {
      return _mm256_div_ps(a, d);
    } else {
      const __m256 kvol = _mm256_set1_ps(9.0f), scaled = _mm256_cmp_ps(d, kvol, _CMP_NEQ_UQ);
      if (!_mm256_testz_ps(scaled, scaled)) a = _mm256_blendv_ps(a, _mm256_mul_ps(_mm256_div_ps(a, d), kvol), scaled);
      return F == Fold::SumSq ? _mm256_sqrt_ps(a) : a;
    }
  }
  // Output row oh with the exact combine, in scan order (a NaN was read).
  __attribute__((noinline)) void exact_row(const float* xp, int64_t oh, float* yr) const {
    FANCY_UNROLL for (int s = 0; s < S; ++s) {
      Taps t[3];
      __m256 unused = _mm256_setzero_ps();
      for (int r = 0; r < 3; ++r) taps(xp, 2 * oh - 1 + r, s, t[r], unused);
      __m256 a = t[0][0];
      for (int r = 0; r < 3; ++r) {
        for (int k = r == 0 ? 1 : 0; k < 3; ++k) a = combine8<F>(a, t[r][k]);
      }
      store(yr, s, unshuffle8(a));
    }
  }

  const float* x_;
  int64_t h_in_, w_in_, w_out_, last_;
  __m256 pad_;
  __m256i load_[S][4], short_store_;
  bool full_[S][4], inner_full_ = true;
};
#undef FANCY_UNROLL
#endif

template <Fold F, typename T>
bool pool3x3_s2p1_planes(const T* x, T* y, const PoolParams& p) {
#if defined(__AVX2__)
  if constexpr (std::is_same<T, float>::value && (F == Fold::Sum || F == Fold::SumAbs || F == Fold::SumSq ||
                                                  F == Fold::Max || F == Fold::Min)) {
    const PoolGeometry& g = p.g;
    const auto& D = g.dim[0];
    const auto& H = g.dim[1];
    const auto& W = g.dim[2];
    if (!(D.k == 1 && D.s == 1 && D.p == 0 && !g.adaptive && H.k == 3 && W.k == 3 && H.s == 2 && W.s == 2 &&
          H.p == 1 && W.p == 1 && H.d == 1 && W.d == 1)) {
      return false;
    }
    const int64_t planes = g.N * g.C * D.in, h_out = H.out, w_out = W.out, h_in = H.in, w_in = W.in;
    const DivisorTable divisor(p);  // no window is empty: padding 1 < 3, and ceil_mode's last one starts inside
    std::vector<float> col_div((w_out + 15) / 16 * 16, 1.0f);
    for (int64_t o = 0; o < w_out; ++o) col_div[o] = float(divisor.cols()[o]);
    const float div_override = float(divisor.override_divisor());
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, h_in * w_in));
    // Each output's divisor, in rows of whole steps of `lanes` outputs.
    auto divisors = [&](int64_t lanes) {
      const int64_t row = (w_out + lanes - 1) / lanes * lanes;
      std::vector<float> div(h_out * row, 1.0f);
      for (int64_t oh = 0; oh < h_out; ++oh) {
        for (int64_t o = 0; o < w_out; ++o) {
          div[oh * row + o] = div_override > 0 ? div_override : float(divisor.rows(0, oh)) * col_div[o];
        }
      }
      return div;
    };
#if !defined(__AVX512F__)
    if (w_out > 64) return false;
    const std::vector<float> div = divisors(8);
    at::parallel_for(0, planes, grain, [&](int64_t b, int64_t e) {
      auto run = [&](auto steps) {
        Narrow3x3x8<F, decltype(steps)::value>(x, h_in, w_in, w_out).planes(b, e, y, h_out, div.data());
      };
      switch ((w_out + 7) / 8) {
        case 1: run(std::integral_constant<int, 1>()); break;
        case 2: run(std::integral_constant<int, 2>()); break;
        case 3: run(std::integral_constant<int, 3>()); break;
        case 4: run(std::integral_constant<int, 4>()); break;
        case 5: run(std::integral_constant<int, 5>()); break;
        case 6: run(std::integral_constant<int, 6>()); break;
        case 7: run(std::integral_constant<int, 7>()); break;
        default: run(std::integral_constant<int, 8>());
      }
    });
    return true;
#else
    if (w_out <= 64) {
      const int64_t steps = (w_out + 15) / 16;
      const std::vector<float> div = divisors(16);
      at::parallel_for(0, planes, grain, [&](int64_t b, int64_t e) {
        switch (steps) {
          case 1: Narrow3x3<F, 1>(x, h_in, w_in).planes(b, e, y, h_out, w_out, div.data()); break;
          case 2: Narrow3x3<F, 2>(x, h_in, w_in).planes(b, e, y, h_out, w_out, div.data()); break;
          case 3: Narrow3x3<F, 3>(x, h_in, w_in).planes(b, e, y, h_out, w_out, div.data()); break;
          default: Narrow3x3<F, 4>(x, h_in, w_in).planes(b, e, y, h_out, w_out, div.data());
        }
      });
      return true;
    }
    at::parallel_for(0, planes, 1, [&](int64_t b, int64_t e) {
      const int64_t rows_end = e * h_in;  // the input rows of this thread's planes end there
      for (int64_t q = b; q < e; ++q) {
        const float* xp = x + q * h_in * w_in;
        for (int64_t oh = 0; oh < h_out; ++oh) {
          const int64_t r0 = std::max<int64_t>(2 * oh - 1, 0), r1 = std::min<int64_t>(2 * oh + 2, h_in);
          // The two input rows that a later output row adds, as in extreme3x3_s2p1_planes.
          for (int64_t later = q * h_in + r1 + 2 * kPrefetchRows - 2, j = 0; j < 2 && later + j < rows_end; ++j) {
            prefetch_lines(reinterpret_cast<const char*>(x + (later + j) * w_in), w_in * int64_t(sizeof(float)));
          }
          const float* rows[3] = {xp + r0 * w_in, xp + std::min(r0 + 1, h_in - 1) * w_in,
                                  xp + std::min(r0 + 2, h_in - 1) * w_in};
          float* out = y + (q * h_out + oh) * w_out;
          const float row_div = float(divisor.rows(0, oh));
          switch (r1 - r0) {
            case 3: pool3x3_s2p1_row<F, 3>(rows, w_in, out, w_out, row_div, col_div.data(), div_override); break;
            case 2: pool3x3_s2p1_row<F, 2>(rows, w_in, out, w_out, row_div, col_div.data(), div_override); break;
            default: pool3x3_s2p1_row<F, 1>(rows, w_in, out, w_out, row_div, col_div.data(), div_override);
          }
        }
      }
    });
    return true;
#endif
  }
#endif
  (void)x;
  (void)y;
  (void)p;
  return false;
}

// ---------------------------------------------------------------- 2×2 / 2 on short rows
// 2×2 windows of stride 2 without padding or dilation on 2-D maps of even height and
// width from 16 to 64: the input is then one sequence of row pairs (across planes too),
// each giving one output row, and the output is dense. One loop runs over a thread's
// pairs, each through stride2_avx2's 8-output steps, with no per-row set-up: through the
// row path below, whose set-up per output row (plan, prefetch, call) cost more than its
// 14 outputs on 28-wide maps, max k2 s2 of a contiguous 64×32×28×28 took 1.0–1.1 ms
// against 0.12–0.16 ms for x.sum().
// Kernel A/B (one process, all four ops, 1 and 2 threads): 64×32×28×28 0.27–0.32 of the
// row path's time, 8×64×64×64 0.42–0.58, 16×64×56×56 0.88–1.09 at one thread (the memory's
// pace) and 0.54–0.64 at two.
// Each output folds its four values in ATen's scan order (row, then column; sums from
// 0), so values, NaN and signed zeros come out as ATen's. Float max, min, average, L1 and
// L2 without indices, with AVX2; anything else returns false.
template <Fold F, typename T>
bool pool2x2_s2_pairs(const T* x, T* y, const PoolParams& p) {
#if defined(__AVX2__)
  if constexpr (std::is_same<T, float>::value &&
                (F == Fold::Max || F == Fold::Min || F == Fold::Sum || F == Fold::SumAbs || F == Fold::SumSq)) {
    const PoolGeometry& g = p.g;
    const auto& D = g.dim[0];
    const auto& H = g.dim[1];
    const auto& W = g.dim[2];
    if (!(D.in == 1 && D.k == 1 && D.p == 0 && !g.adaptive && H.k == 2 && W.k == 2 && H.s == 2 && W.s == 2 &&
          H.p == 0 && W.p == 0 && H.d == 1 && W.d == 1 && H.in % 2 == 0 && W.in % 2 == 0 && W.in >= 16 &&
          W.in <= 64 && H.out == H.in / 2 && W.out == W.in / 2)) {
      return false;
    }
    // Average: the override or 4; Lp: a full window's divisor is the kernel volume.
    const float div = F == Fold::Sum && p.divisor_override > 0 ? float(p.divisor_override) : 4.0f;
    const int64_t pairs = g.N * g.C * H.out, w_in = W.in, w_out = W.out;
    at::parallel_for(0, pairs, std::max<int64_t>(1, 16384 / (2 * w_in)), [&](int64_t begin, int64_t end) {
      for (int64_t q = begin; q < end; ++q) {
        const float* const rows[2] = {x + q * 2 * w_in, x + q * 2 * w_in + w_in};
        stride2_avx2<F, 2, 2>(rows, y + q * w_out, 0, w_out, 0, div, 4.0f);  // all w_out ≥ 8 outputs
      }
    });
    return true;
  }
#endif
  (void)x;
  (void)y;
  (void)p;
  return false;
}

// Adaptive average of one output row whose windows hold 1–4 input rows of at most
// kShortRow values (small maps, e.g. 28×28 → 7×7): the rows are summed column by column in
// one pass, then each window's columns in order. The general path below adds in the same
// order (for windows under 64 columns; wider ones it sums in 32 lanes), but its per-row
// set-up had cost ten times the arithmetic (0.9 µs a 28×28 plane).
constexpr int64_t kShortRow = 256;
template <typename T>
void adaptive_avg_short_row(const T* const* rows, int n, int64_t w_in, const std::vector<Span>& wspan,
                            int64_t cols_per_window, const T* div, T* __restrict y) {
  alignas(32) T t[kShortRow];
  const T* s = rows[0];
  const T* __restrict a = rows[0];
  const T* __restrict b = rows[n > 1 ? 1 : 0];
  const T* __restrict c = rows[n > 2 ? 2 : 0];
  const T* __restrict d = rows[n > 3 ? 3 : 0];
  if (n == 2) for (int64_t i = 0; i < w_in; ++i) t[i] = a[i] + b[i];
  if (n == 3) for (int64_t i = 0; i < w_in; ++i) t[i] = a[i] + b[i] + c[i];
  if (n == 4) for (int64_t i = 0; i < w_in; ++i) t[i] = a[i] + b[i] + c[i] + d[i];
  if (n > 1) s = t;
  // The sums first, then the divides in vectors: a divide per sum had made each output
  // wait on the divider's latency (a quarter of the time on 28×28 → 7×7).
  const int64_t w_out = static_cast<int64_t>(wspan.size());
  // Windows of 2, 3 or 4 columns each (cols_per_window: W.in = k · W.out, else 0) take an
  // unrolled loop: the loop over a span's bounds had cost more than its adds.
  auto sums = [&](auto k) {
    for (int64_t o = 0; o < w_out; ++o) {
      T sum = T(0);
      for (int i = 0; i < decltype(k)::value; ++i) sum += s[o * decltype(k)::value + i];
      y[o] = sum;
    }
  };
  if (cols_per_window == 2) {
    sums(std::integral_constant<int, 2>());
  } else if (cols_per_window == 3) {
    sums(std::integral_constant<int, 3>());
  } else if (cols_per_window == 4) {
    sums(std::integral_constant<int, 4>());
  } else {
    for (int64_t o = 0; o < w_out; ++o) {
      T sum = T(0);
      for (int64_t i = wspan[o].start; i < wspan[o].end; ++i) sum += s[i];
      y[o] = sum;
    }
  }
  for (int64_t o = 0; o < w_out; ++o) y[o] /= div[o];
}

// ---------------------------------------------------------------- forward, NCDHW
// One output row at a time. Common windows (k ≤ 3 along W, stride 1 or 2, ≤ 4 input
// rows) take the direct path: one fused pass in ATen's scan order, border outputs
// clipped. Otherwise, without indices, the window is separable (rows folded into one
// row, then along W; sums then go column by column, within float rounding of ATen's
// order); with indices each input row is folded into the output row in scan order.
template <Fold F, bool Idx, typename T>
void forward_contiguous(const T* x, T* y, int64_t* yi, const PoolParams& p) {
  using A = acc_t<T>;
  const auto& g = p.g;
  if constexpr (!Idx) {
    if (pool3x3_s2p1_planes<F>(x, y, p)) return;
  }
  if constexpr (!Idx && (F == Fold::Max || F == Fold::Min) && !std::is_same<T, c10::BFloat16>::value) {
    if (extreme3x3_s2p1_planes<F>(x, y, g)) return;
  }
  if constexpr (!Idx) {
    if (pool2x2_s2_pairs<F>(x, y, p)) return;
  }
  if constexpr (!Idx) {
    // One window over each whole plane (global pooling, 1×1 adaptive): one reduction per
    // plane, without the per-row set-up below (which cost more than a 784-value reduction).
    bool whole = true;
    for (const auto& d : g.dim) whole = whole && d.out == 1 && (g.adaptive || (d.k == d.in && d.p == 0 && d.d == 1));
    if (whole) {
      const A pw = static_cast<A>(p.norm_type);
      const int64_t div = DivisorTable(p)(0, 0, 0), K = kernel_volume(g), n = g.plane_in();
      at::parallel_for(0, g.N * g.C, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n)), [&](int64_t b, int64_t e) {
        for (int64_t q = b; q < e; ++q) {
          y[q] = static_cast<T>(finish(F, reduce_span<F>(x + q * n, n, pw), div, K, p.norm_type));
        }
      });
      return;
    }
  }
  const auto& D = g.dim[0];
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  const int64_t rows = g.N * g.C * D.out * H.out;
  const int64_t K = kernel_volume(g);
  const A pw = static_cast<A>(p.norm_type);
  const DivisorTable divisor(p);
  const WindowSpans win(g);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, W.in * H.k * D.k));
  // The interior range along W, and the direct path's kernel for 1..4 window rows.
  const Interior w_inside = interior(W);
  DirectFn<T> direct[4];
  for (int R = 1; R <= 4; ++R) direct[R - 1] = direct_row_for<F, Idx, T>(W.s, W.k, R);
  const A inv_p = A(1.0 / p.norm_type);
  const DirectCall<T> call{w_inside.lo, w_inside.hi, W.out, W.in, W.s, W.p, pw, A(K), inv_p,
                           divisor.cols(), divisor.override_divisor()};
  // Indices over windows wider than 3 (or adaptive ones): column fold, then a pick per
  // output; narrower windows fold (value, index) pairs across the row instead.
  const bool columns = Idx && (g.adaptive || W.k > 3);
  // The branch-free pick packs (row ordinal, column) into 32 bits.
  const bool by_key = W.in < 65536 && D.k * H.k < 65536 && (g.adaptive ? D.in * H.in : D.k * H.k) < 65536;
  // The input rows (offsets in the plane) of each (od, oh)'s window when it has at most 8,
  // computed once: on short rows (28 wide) walking the spans per output row had cost
  // three times the row's own work.
  struct RowPlan {
    int64_t n;  // input rows in the window
    int64_t base[8];
  };
  static_assert(kPrefetchMaxWindowRows <= 8, "the prefetch reads RowPlan::base");
  std::vector<RowPlan> plans(D.out * H.out);
  for (int64_t od = 0; od < D.out; ++od) {
    for (int64_t oh = 0; oh < H.out; ++oh) {
      const Span sd = win.dim[0][od], sh = win.dim[1][oh];
      RowPlan& plan = plans[od * H.out + oh];
      plan.n = span_count(sd) * span_count(sh);
      if (plan.n > 8) continue;
      int n = 0;
      for (int64_t id = sd.start; id < sd.end; id += sd.step) {
        for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) plan.base[n++] = (id * H.in + ih) * W.in;
      }
    }
  }
  // Adaptive windows along W are all k columns wide when W.in = k · W.out (else 0).
  const int64_t cols_per_window = g.adaptive && W.in % W.out == 0 ? W.in / W.out : 0;
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<A> acc(W.out + 7);  // + 7: fold_interior_sliding's full vector stores
    // Row-sized scratch, left uninitialised: a long row (global pooling of a flattened
    // input) must not pay for zeroing, or page faults on, buffers its path never uses.
    std::unique_ptr<A[]> tmp(new A[W.in]), scratch(new A[W.in + 4]);
    std::vector<int64_t> idx(Idx ? W.out : 0), col_base;
    std::vector<int32_t> tmpr(columns ? W.in : 0);
    std::vector<uint64_t> keys(columns ? W.in : 0);
    std::vector<const T*> col_rows;
    const T* row_ptr[4];
    int64_t row_base[4];
    // Output row r = (plane, od, oh), stepped without divisions; `ahead` is row r + kPrefetchRows.
    RowCounter at(begin, D.out, H.out), ahead(begin + kPrefetchRows, D.out, H.out);
    for (int64_t r = begin; r < end; ++r, at.next(), ahead.next()) {
      const int64_t oh = at.oh, od = at.od, plane = at.plane;
      const T* xp = x + plane * g.plane_in();
      const Span sd = win.dim[0][od], sh = win.dim[1][oh];
      const RowPlan& plan = plans[od * H.out + oh];
      const int64_t nrows = plan.n;
      // Ask for the input rows of a later output row now: short rows leave the hardware
      // prefetcher too little time to hide memory latency.
      const RowPlan& later = plans[ahead.od * H.out + ahead.oh];
      if (r + kPrefetchRows < end && W.in <= kPrefetchMaxRow && later.n <= kPrefetchMaxWindowRows) {
        const T* xp2 = x + ahead.plane * g.plane_in();
        for (int64_t j = 0; j < later.n; ++j) {
          prefetch_lines(reinterpret_cast<const char*>(xp2 + later.base[j]), W.in * int64_t(sizeof(T)));
        }
      }
      if (!std::is_same<T, c10::BFloat16>::value && !g.adaptive && W.d == 1 && nrows >= 1 && nrows <= 4) {
        const DirectFn<T> fn = direct[nrows - 1];
        if (fn != nullptr) {
          for (int j = 0; j < nrows; ++j) {
            row_base[j] = plan.base[j];
            row_ptr[j] = xp + plan.base[j];
          }
          fn(call, row_ptr, row_base, y + r * W.out, Idx ? yi + r * W.out : nullptr, divisor.rows(od, oh));
          continue;
        }
      }
      if constexpr (F == Fold::Sum && !Idx && std::is_same<T, A>::value) {
        if (g.adaptive && W.in <= kShortRow && nrows <= 4) {
          for (int j = 0; j < nrows; ++j) row_ptr[j] = xp + plan.base[j];
          for (int64_t ow = 0; ow < W.out; ++ow) acc[ow] = A(divisor(od, oh, ow));
          adaptive_avg_short_row(row_ptr, int(nrows), W.in, win.dim[2], cols_per_window, acc.data(), y + r * W.out);
          continue;
        }
      }
      std::fill(acc.begin(), acc.begin() + W.out, fold_init<A>(F));
      if (columns) {
        col_rows.clear();
        col_base.clear();
        for (int64_t id = sd.start; id < sd.end; id += sd.step) {
          for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
            col_base.push_back((id * H.in + ih) * W.in);
            col_rows.push_back(xp + col_base.back());
          }
        }
        if (col_rows.empty()) {
          std::fill(idx.begin(), idx.end(), int64_t(-1));
        } else {
          fold_columns_with_row<F>(col_rows.data(), int64_t(col_rows.size()), W.in, tmp.get(), tmpr.data());
          if constexpr (std::is_same<A, float>::value) {
            if (by_key) {
              pick_columns_by_key<F>(tmp.get(), tmpr.data(), col_base.data(), win.dim[2], W.in, keys.data(),
                                     acc.data(), idx.data());
            } else {
              pick_columns<F>(tmp.get(), tmpr.data(), col_base.data(), win.dim[2], acc.data(), idx.data());
            }
          } else {
            pick_columns<F>(tmp.get(), tmpr.data(), col_base.data(), win.dim[2], acc.data(), idx.data());
          }
        }
      } else if (Idx) {
        std::fill(idx.begin(), idx.end(), int64_t(-1));
        for (int64_t id = sd.start; id < sd.end; id += sd.step) {
          for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
            const int64_t base = (id * H.in + ih) * W.in;
            fold_input_row<F, Idx>(xp + base, acc.data(), idx.data(), W, w_inside, base, pw);
          }
        }
      } else {
        const Span sw0 = win.dim[2][0];
        const bool whole_rows = W.out == 1 && sh.step == 1 && sd.step == 1 && sw0.step == 1 &&
                                sw0.start == 0 && sw0.end == W.in &&
                                (sd.end - sd.start == 1 || (sh.start == 0 && sh.end == H.in));
        if (whole_rows && nrows > 1) {  // the window is one contiguous block: one reduction
          acc[0] = reduce_span<F>(xp + (sd.start * H.in + sh.start) * W.in, nrows * W.in, pw);
        } else if (nrows == 1) {  // one input row: fold it along W directly
          const T* row = xp + (sd.start * H.in + sh.start) * W.in;
          if (g.adaptive) fold_input_row_adaptive<F>(row, acc.data(), win.dim[2], pw);
          else fold_row_horizontal<F, true>(row, acc.data(), W, w_inside, pw, scratch.get());
        } else if (nrows > 1) {
          // The window's rows folded into tmp.
          A* t = tmp.get();
          bool refold = false;  // max and min: the probe met a NaN or ±inf
          if constexpr (F == Fold::Max || F == Fold::Min) {
            col_rows.clear();
            if (nrows <= 8) {
              for (int64_t j = 0; j < nrows; ++j) col_rows.push_back(xp + plan.base[j]);
            } else {
              for (int64_t id = sd.start; id < sd.end; id += sd.step) {
                for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
                  col_rows.push_back(xp + (id * H.in + ih) * W.in);
                }
              }
            }
            refold = fold_rows_extreme_probed<F>(col_rows.data(), nrows, t, W.in);
          } else {
            bool first = true;  // the first row initialises tmp, the others fold into it
            for (int64_t id = sd.start; id < sd.end; id += sd.step) {
              for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
                const T* row = xp + (id * H.in + ih) * W.in;
                if (first) {
                  for (int64_t i = 0; i < W.in; ++i) t[i] = transform<F>(static_cast<A>(row[i]), pw);
                } else {
                  constexpr Fold C = combine_of(F);
                  for (int64_t i = 0; i < W.in; ++i) t[i] = combine<C>(t[i], transform<F>(static_cast<A>(row[i]), pw));
                }
                first = false;
              }
            }
          }
          if (refold) {  // fold the rows again, NaN-exactly
            bool first = true;
            for (int64_t id = sd.start; id < sd.end; id += sd.step) {
              for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
                const T* row = xp + (id * H.in + ih) * W.in;
                for (int64_t i = 0; i < W.in; ++i) {
                  const A v = static_cast<A>(row[i]);
                  t[i] = first ? v : combine<F>(t[i], v);
                }
                first = false;
              }
            }
          }
          constexpr Fold C = combine_of(F);
          if (g.adaptive) fold_input_row_adaptive<C>(t, acc.data(), win.dim[2], pw);
          else fold_row_horizontal<F, false>(t, acc.data(), W, w_inside, pw, scratch.get());
          if (F == Fold::Max || F == Fold::Min) {
            // Rows folded first, then columns, may keep a later −0 / +0 of a tie where
            // ATen's scan (row, then column) keeps the first zero: a window whose extreme is
            // 0 takes its first zero in scan order (usually its first element).
            int64_t zeros = 0;  // counted first in a loop that vectorises: zeros are rare
            for (int64_t ow = 0; ow < W.out; ++ow) zeros += acc[ow] == A(0);
            for (int64_t ow = 0; ow < W.out && zeros > 0; ++ow) {
              if (acc[ow] != A(0)) continue;
              const Span sw = win.dim[2][ow];
              bool found = false;
              for (int64_t id = sd.start; id < sd.end && !found; id += sd.step) {
                for (int64_t ih = sh.start; ih < sh.end && !found; ih += sh.step) {
                  const T* row = xp + (id * H.in + ih) * W.in;
                  for (int64_t iw = sw.start; iw < sw.end && !found; iw += sw.step) {
                    if (static_cast<A>(row[iw]) == A(0)) {
                      acc[ow] = static_cast<A>(row[iw]);
                      found = true;
                    }
                  }
                }
              }
            }
          }
        }
      }
      T* yr = y + r * W.out;
      if (F == Fold::Max || F == Fold::Min || F == Fold::MaxAbs) {
        for (int64_t ow = 0; ow < W.out; ++ow) yr[ow] = static_cast<T>(acc[ow]);
      } else {
        for (int64_t ow = 0; ow < W.out; ++ow) {
          yr[ow] = static_cast<T>(finish(F, acc[ow], divisor(od, oh, ow), K, p.norm_type));
        }
      }
      if (Idx) {
        // A window whose values all equal the initial ±inf keeps its first position, as
        // ATen does; a window with no element at all keeps −1.
        if (sd.start < sd.end && sh.start < sh.end) {
          const int64_t base = (sd.start * H.in + sh.start) * W.in;
          for (int64_t ow = 0; ow < W.out; ++ow) {
            if (idx[ow] < 0) {
              const Span sw = win.dim[2][ow];
              if (sw.start < sw.end) idx[ow] = base + sw.start;
            }
          }
        }
        std::copy(idx.begin(), idx.end(), yi + r * W.out);
      }
    }
  });
}

// ---------------------------------------------------------------- forward, NDHWC
template <Fold F, bool Idx, typename T>
void forward_channels_last(const T* x, T* y, int64_t* yi, const PoolParams& p) {
  using A = acc_t<T>;
  const auto& g = p.g;
  const auto& D = g.dim[0];
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  const int64_t C = g.C;
  const int64_t positions = g.N * g.plane_out();
  const int64_t K = kernel_volume(g);
  const A pw = static_cast<A>(p.norm_type);
  const DivisorTable divisor(p);
  const WindowSpans win(g);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, C * W.k * H.k));
  at::parallel_for(0, positions, grain, [&](int64_t begin, int64_t end) {
    std::vector<A> acc(C);
    std::vector<int64_t> idx(Idx ? C : 0);
    for (int64_t q = begin; q < end; ++q) {
      const int64_t ow = q % W.out, oh = (q / W.out) % H.out, od = (q / (W.out * H.out)) % D.out;
      const int64_t n = q / g.plane_out();
      std::fill(acc.begin(), acc.end(), fold_init<A>(F));
      if (Idx) std::fill(idx.begin(), idx.end(), int64_t(-1));
      const Span sd = win.dim[0][od], sh = win.dim[1][oh], sw = win.dim[2][ow];
      const T* xn = x + n * g.plane_in() * C;
      for (int64_t id = sd.start; id < sd.end; id += sd.step) {
        for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
          for (int64_t iw = sw.start; iw < sw.end; iw += sw.step) {
            const int64_t pos = (id * H.in + ih) * W.in + iw;
            // Along C every lane sees the same position: a row fold with stride 1.
            fold_row<F, 1, Idx>(xn + pos * C, acc.data(), idx.data(), 0, C, 1, 0, pos, pw);
          }
        }
      }
      T* yq = y + q * C;
      if (F == Fold::Max || F == Fold::Min || F == Fold::MaxAbs) {
        for (int64_t c = 0; c < C; ++c) yq[c] = static_cast<T>(acc[c]);
      } else {
        const int64_t div = divisor(od, oh, ow);
        for (int64_t c = 0; c < C; ++c) yq[c] = static_cast<T>(finish(F, acc[c], div, K, p.norm_type));
      }
      if (Idx) {
        int64_t* iq = yi + q * C;
        // fold_row stored pos + c for lane c; the index is the position alone.
        const bool nonempty = sd.start < sd.end && sh.start < sh.end && sw.start < sw.end;
        const int64_t first = nonempty ? (sd.start * H.in + sh.start) * W.in + sw.start : -1;
        for (int64_t c = 0; c < C; ++c) iq[c] = idx[c] < 0 ? first : idx[c] - c;
      }
    }
  });
}

// One lane of a channels-last block: v folded into a; with indices (max and min) v and its
// position replace (a, ai) when takes<F>. fold8 is the same step on 8 lanes.
template <Fold F, bool Idx, typename T>
inline void fold_lane(T& a, int32_t& ai, T v, int32_t pos) {
  if (Idx) {
    const bool t = takes<F>(v, a);
    a = t ? v : a;
    ai = t ? pos : ai;
  } else {
    a = combine<combine_of(F)>(a, v);
  }
}

// The input rows of one output row's windows (its D and H spans) in ATen's scan order:
// row k starts at element at[k] of the plane (C lanes a position) and at position pos[k].
// Computed once per output row, so a window's fold is two loops over plain offsets.
struct WindowRows {
  const int64_t* at;
  const int32_t* pos;
  int64_t n;
};

#if defined(__AVX2__) && defined(__FMA__)
// Max or min of L::n·V channels-last lanes over a window, NaN-blind: max_ps(x, r) keeps r
// on ties, as the exact fold does, but drops a NaN x, so x·0 is added to a probe alongside
// (NaN exactly when x is NaN or ±inf). Returns false, having written nothing, when the
// probe saw NaN or ±inf: the caller's exact fold (max, NaN compare, blend: three
// operations a vector instead of two) then takes the window. With indices the step is
// L::fold_blind (fold8_blind), and the probe adds x itself: NaN for a NaN x (or for
// inf − inf, which only sends the window to the exact fold); x·0 would need a register for
// its zero, and 4 value, 4 position and 4 probe vectors already fill AVX2's 16 with the
// load, the position and the compare. Kernel A/B with indices, new / old, one thread:
// 4×4/4 of 64×32×28×28 0.74–0.89 (AVX2 build), 0.75–0.80 (AVX-512 build, 16 lanes);
// 3×3/2 pad 1 0.63–0.75 and 0.69–0.80.
// Channels-last global max of 64×32×28×28 ran at 0.9× PyTorch's amax with the exact fold.
// With 16 lanes (AVX-512) the max and the probe are two operations on the two ports
// 512-bit operations use, against the exact fold's three in 8-lane halves: channels-last
// max 3×3/2 pad 1 of 1×64×56×56 (cache-resident) had taken 85 cycles an output position
// through the exact fold. With 8 lanes (AVX2) it was kept to windows of 32 elements or
// more until session 29; kernel A/B of the AVX2 build on the Xeon then, new / old, for
// max and min 3×3/2 pad 1: 64×32×28×28 0.73–0.77 (two threads 0.57–0.78), 16×64×112×112
// 0.73–0.76 (two threads 0.74–0.75); 2×2/2 0.91–0.99.
template <class L, Fold F, bool Idx, int V>
inline bool cl_extremes_probed(const float* __restrict xc, float* __restrict y, int64_t* __restrict yi, WindowRows rows,
                               Span sw, int64_t C) {
  const int64_t n = span_count(sw);
  typename L::V r[V], probe[V];
  typename L::I ri[Idx ? V : 1];
  for (int j = 0; j < V; ++j) {
    r[j] = L::set1(fold_init<float>(F));
    probe[j] = L::zero();
  }
  if (Idx) for (int j = 0; j < V; ++j) ri[j] = L::set1_i(rows.pos[0] + static_cast<int32_t>(sw.start));
  for (int64_t k = 0; k < rows.n; ++k) {
    const float* xv = xc + rows.at[k] + sw.start * C;
    int32_t pos = rows.pos[k] + static_cast<int32_t>(sw.start);
    for (int64_t t = 0; t < n; ++t, xv += sw.step * C, pos += static_cast<int32_t>(sw.step)) {
      for (int j = 0; j < V; ++j) {
        const typename L::V x = L::load(xv + L::n * j);
        if constexpr (Idx) {
          L::template fold_blind<F>(r[j], ri[j], x, L::set1_i(pos));
        } else {
          r[j] = F == Fold::Max ? L::max(x, r[j]) : L::min(x, r[j]);
        }
        probe[j] = Idx ? L::add(probe[j], x) : L::probe(probe[j], x);
      }
    }
  }
  typename L::V any = probe[0];
  for (int j = 1; j < V; ++j) any = L::add(any, probe[j]);
  if (L::any_nan(any)) return false;
  for (int j = 0; j < V; ++j) L::store_in_order(y + L::n * j, r[j]);
  if (Idx) for (int j = 0; j < V; ++j) L::store_positions(yi + L::n * j, ri[j]);
  return true;
}
#endif

// Lanes [0, L) of one channels-last window (xc, yq and iq point at the block's first lane),
// accumulated in registers and written once. The window is not empty. Positions are kept
// as int32 (the caller sends planes of 2^31 elements or more elsewhere), so the index
// lanes are as wide as the float lanes and share their compare masks; they are widened to
// int64 once, when stored (with int64 lanes the accumulators spilled to the stack).
template <Fold F, bool Idx, int L, typename T>
inline void cl_window(const T* __restrict xc, T* __restrict yq, int64_t* __restrict iq, WindowRows rows, Span sw,
                      int64_t C, T pw, T div, T kvol, T inv_p) {
  constexpr Fold Cf = combine_of(F);
  const auto first = rows.pos[0] + static_cast<int32_t>(sw.start);
#if defined(__AVX2__)
  if constexpr (F != Fold::SumPow && std::is_same<T, float>::value && L % 8 == 0) {
    // The same fold in explicit vectors: from the plain loop below, GCC kept one of the
    // four value accumulators of L = 32 on the stack, and each position then waited on a
    // store and a reload (channels-last global max of 64×32×28×28 ran at 0.6× PyTorch,
    // adaptive max 7×7 with indices at 47 % of the read rate; L2 pooling of 64×32×28×28
    // took 1.4–1.5× as long through the plain loop as in vectors). Each lane folds in the
    // plain loop's order with the same roundings (x·x, then the sum).
    // AVX2 has 16 vector registers, AVX-512 32 (the 64-lane blocks of for_lane_blocks).
#if defined(__AVX512F__)
    static_assert(L <= 64, "8 value and 8 position vectors");
#else
    static_assert(L <= 32, "4 value and 4 position vectors");
#endif
    constexpr int V = L / 8;
    const int64_t n = span_count(sw), step = sw.step * C;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 r[V];
    __m256i ri[V];
#if defined(__FMA__)
    if constexpr (F == Fold::Max || F == Fold::Min) {
#if defined(__AVX512F__)
      if constexpr (L % 16 == 0) {
        if (cl_extremes_probed<Lanes16, F, Idx, L / 16>(xc, yq, iq, rows, sw, C)) return;
      } else {
        if (cl_extremes_probed<Lanes8, F, Idx, V>(xc, yq, iq, rows, sw, C)) return;
      }
#else
      if (cl_extremes_probed<Lanes8, F, Idx, V>(xc, yq, iq, rows, sw, C)) return;
#endif
    }
#endif
    for (int j = 0; j < V; ++j) {
      r[j] = _mm256_set1_ps(fold_init<float>(Cf));
      ri[j] = _mm256_set1_epi32(first);
    }
    for (int64_t k = 0; k < rows.n; ++k) {
      const float* xv = xc + rows.at[k] + sw.start * C;
      int32_t pos = rows.pos[k] + static_cast<int32_t>(sw.start);
      for (int64_t t = 0; t < n; ++t, xv += step, pos += static_cast<int32_t>(sw.step)) {
        const __m256 pv = _mm256_castsi256_ps(_mm256_set1_epi32(pos));
        for (int j = 0; j < V; ++j) {
          const __m256 x = _mm256_loadu_ps(xv + 8 * j);
          if constexpr (F == Fold::Sum) r[j] = _mm256_add_ps(r[j], x);
          if constexpr (F == Fold::SumAbs) r[j] = _mm256_add_ps(r[j], _mm256_andnot_ps(sign, x));
          if constexpr (F == Fold::SumSq) r[j] = _mm256_add_ps(r[j], _mm256_mul_ps(x, x));
          if constexpr (F == Fold::MaxAbs) r[j] = combine8<Fold::Max>(r[j], _mm256_andnot_ps(sign, x));
          if constexpr (F == Fold::Max || F == Fold::Min) fold8<F, Idx>(r[j], ri[j], x, pv);
        }
      }
    }
    // finish_fused in vectors: a / div, or for L1 and L2 lp_scaled_sum (then the root).
    const bool scaled = F == Fold::Sum || ((F == Fold::SumAbs || F == Fold::SumSq) && div != kvol);
    for (int j = 0; j < V; ++j) {
      if (scaled) r[j] = _mm256_div_ps(r[j], _mm256_set1_ps(div));
      if ((F == Fold::SumAbs || F == Fold::SumSq) && scaled) r[j] = _mm256_mul_ps(r[j], _mm256_set1_ps(kvol));
      if constexpr (F == Fold::SumSq) r[j] = _mm256_sqrt_ps(r[j]);
      _mm256_storeu_ps(yq + 8 * j, r[j]);
      if constexpr (Idx) store_positions8(iq + 8 * j, ri[j]);
    }
    return;
  }
#endif
  // The lanes start at the fold's identity (−inf, +inf or 0) and the positions at the
  // window's first element, so a first element equal to the identity keeps both, as in
  // ATen. No first-element branch in the loop: with one, the accumulators lived on the
  // stack (a store and a reload per vector per position; global max of a channels-last
  // 64×32×28×28 ran at the latency of that chain).
  T a[L];
  int32_t ai[Idx ? L : 1];
  for (int j = 0; j < L; ++j) a[j] = fold_init<T>(Cf);
  if (Idx) for (int j = 0; j < L; ++j) ai[j] = first;
  for (int64_t k = 0; k < rows.n; ++k) {
    const T* row = xc + rows.at[k];
    for (int64_t iw = sw.start; iw < sw.end; iw += sw.step) {
      const T* xv = row + iw * C;
      const int32_t pos = rows.pos[k] + static_cast<int32_t>(iw);
      for (int j = 0; j < L; ++j) fold_lane<F, Idx>(a[j], ai[Idx ? j : 0], transform<F>(xv[j], pw), pos);
    }
  }
  for (int j = 0; j < L; ++j) yq[j] = finish_fused<F>(a[j], div, kvol, inv_p);
  if (Idx) for (int j = 0; j < L; ++j) iq[j] = ai[j];
}

// Calls f(std::integral_constant<int, L>, c0) over C lanes in register blocks of 64
// (AVX-512: 32 registers hold them), 32, 8, then 1.
template <typename Fn>
inline void for_lane_blocks(int64_t C, Fn&& f) {
  int64_t c = 0;
#if defined(__AVX512F__)
  for (; c + 64 <= C; c += 64) f(std::integral_constant<int, 64>(), c);
#endif
  for (; c + 32 <= C; c += 32) f(std::integral_constant<int, 32>(), c);
  for (; c + 8 <= C; c += 8) f(std::integral_constant<int, 8>(), c);
  for (; c < C; ++c) f(std::integral_constant<int, 1>(), c);
}

// for_lane_blocks with blocks of 64 lanes first on every instruction set: for a fold
// without indices 64 floats are 8 AVX2 registers, and each pass over a row's positions
// then reads whole 256-byte pieces.
template <typename Fn>
inline void for_wide_lane_blocks(int64_t C, Fn&& f) {
  int64_t c = 0;
  for (; c + 64 <= C; c += 64) f(std::integral_constant<int, 64>(), c);
  for_lane_blocks(C - c, [&](auto lanes, int64_t c0) { f(lanes, c + c0); });
}

#if defined(__AVX2__) && defined(__FMA__)
// cl_row_wide's fold of one input row's positions of a window into L::n·V accumulator
// lanes at a (and their positions at ai), max or min, NaN-blind as in cl_extremes_probed:
// x·0 goes into a probe (one per two vectors: eight value vectors and four probes fill
// AVX2's sixteen registers with the loads). Returns false, having written nothing, when
// the probe saw NaN or ±inf; the exact fold then redoes the piece from a. `ahead`, when
// not null, is prefetched at each position as in cl_row_wide. With indices (kernel A/B,
// new / old, 16×16/16 windows of 16×64×112×112): AVX2 build 0.83–0.85 (two threads
// 0.83), AVX-512 build 0.79–0.80 (two threads 0.86–0.87).
template <class L, Fold F, bool Idx, int V>
inline bool wide_extremes_probed(float* __restrict a, int32_t* __restrict ai, const float* __restrict row,
                                 int64_t row_pos, Span sw, int64_t C, const char* ahead) {
  constexpr int P = (V + 1) / 2;
  typename L::V r[V], probe[P];
  typename L::I ri[Idx ? V : 1];
  for (int j = 0; j < V; ++j) r[j] = L::load(a + L::n * j);
  if (Idx) for (int j = 0; j < V; ++j) ri[j] = L::load_i(ai + L::n * j);
  for (int j = 0; j < P; ++j) probe[j] = L::zero();
  for (int64_t iw = sw.start; iw < sw.end; iw += sw.step) {
    const float* xv = row + iw * C;
    if (Idx && ahead) prefetch_lines(ahead + iw * C * int64_t(sizeof(float)), C * int64_t(sizeof(float)));
    for (int j = 0; j < V; ++j) {
      const typename L::V x = L::load(xv + L::n * j);
      if constexpr (Idx) {
        L::template fold_blind<F>(r[j], ri[j], x, L::set1_i(static_cast<int32_t>(row_pos + iw)));
      } else {
        r[j] = F == Fold::Max ? L::max(x, r[j]) : L::min(x, r[j]);
      }
      probe[j / 2] = L::probe(probe[j / 2], x);
    }
  }
  typename L::V any = probe[0];
  for (int j = 1; j < P; ++j) any = L::add(any, probe[j]);
  if (L::any_nan(any)) return false;
  for (int j = 0; j < V; ++j) L::store_in_order(a + L::n * j, r[j]);
  if (Idx) for (int j = 0; j < V; ++j) L::store_i(ai + L::n * j, ri[j]);
  return true;
}
#endif

// Large windows (adaptive and global pooling) with C wider than one register block.
// Folding window by window would stream each window's short pieces of many input rows
// (and, block by block, the same window once per block of C); instead one output row is
// done at once: its input rows are read in memory order and each position is folded into
// the accumulators of the windows holding it (W.out × C values, L1-resident), which are
// then finished into the output row. With indices (max and min), each accumulator lane
// also keeps the int32 position of its value, starting at the window's first element;
// rows come in d, h order and positions in w order, ATen's scan order, so ties and NaN
// resolve as in cl_window. With indices the lanes go in blocks of 32, so each position is
// read in two or more passes, which the hardware prefetcher follows less well: prefetch
// (the input kPrefetchWideBytes ahead, once per position) is then issued by hand.
template <Fold F, bool Idx, typename T>
void cl_row_wide(const T* __restrict xn, T* __restrict yr, int64_t* __restrict yir, T* __restrict acc,
                 int32_t* __restrict acc_i, int64_t C, const Span& sd, const Span& sh, const std::vector<Span>& wspan,
                 int64_t h_in, int64_t w_in, T pw, const T* div, T kvol, T inv_p, bool prefetch) {
  constexpr Fold Cf = combine_of(F);
  const int64_t w_out = static_cast<int64_t>(wspan.size());
  const int64_t position_bytes = C * int64_t(sizeof(T));
  std::fill(acc, acc + w_out * C, fold_init<T>(Cf));
  if (Idx) {
    for (int64_t ow = 0; ow < w_out; ++ow) {
      const auto first = static_cast<int32_t>((sd.start * h_in + sh.start) * w_in + wspan[ow].start);
      std::fill(acc_i + ow * C, acc_i + (ow + 1) * C, first);
    }
  }
  const bool any_row = sd.start < sd.end && sh.start < sh.end;
  for (int64_t id = sd.start; id < sd.end; id += sd.step) {
    for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
      const int64_t row_pos = (id * h_in + ih) * w_in;
      const T* row = xn + row_pos * C;
      for (int64_t ow = 0; ow < w_out; ++ow) {
        // A block of lanes stays in registers over the window's positions in this row:
        // folding into acc in memory instead made each position a load-add-store chain.
        const Span sw = wspan[ow];
        auto block = [&](auto lanes, int64_t c0) {
          constexpr int L = decltype(lanes)::value;
          T* __restrict a = acc + ow * C + c0;
          int32_t* __restrict ai = Idx ? acc_i + ow * C + c0 : nullptr;
#if defined(__AVX512F__)
          // Without indices, in 16-lane vectors (exact combine: max, NaN compare, masked
          // move). GCC's code for the plain loop below had run channels-last global max of
          // 16×64×112×112 at 78 % of the read rate against PyTorch's 52–62 %.
          if constexpr (!Idx && (F == Fold::Max || F == Fold::Min || F == Fold::Sum) &&
                        std::is_same<T, float>::value && L % 16 == 0) {
            constexpr int V = L / 16;
            __m512 r[V];
            for (int j = 0; j < V; ++j) r[j] = _mm512_loadu_ps(a + 16 * j);
            for (int64_t iw = sw.start; iw < sw.end; iw += sw.step) {
              const float* xv = row + iw * C + c0;
              for (int j = 0; j < V; ++j) {
                const __m512 x = _mm512_loadu_ps(xv + 16 * j);
                r[j] = F == Fold::Sum ? _mm512_add_ps(r[j], x) : Lanes16::combine<F>(r[j], x);
              }
            }
            for (int j = 0; j < V; ++j) _mm512_storeu_ps(a + 16 * j, r[j]);
            return;
          }
#endif
#if defined(__AVX2__)
          // Explicit vectors for max, min and average: with GCC's code for the plain loop
          // below, channels-last adaptive average 7×7 of 16×64×112×112 ran at 79–84 % of
          // the read rate, in vectors at 92 % or more (one thread). Each lane adds in the
          // same order.
          if constexpr ((F == Fold::Max || F == Fold::Min || F == Fold::Sum) && std::is_same<T, float>::value &&
                        L % 8 == 0) {
#if defined(__AVX512F__)
            static_assert(L <= 64, "AVX-512 has 32 vector registers");
#else
            static_assert(L <= (Idx ? 32 : 64), "AVX2 has 16 vector registers");
#endif
            constexpr int V = L / 8;
#if defined(__FMA__)
            if constexpr (F != Fold::Sum) {
              const char* ahead =
                  Idx && prefetch && c0 == 0 ? reinterpret_cast<const char*>(row) + kPrefetchWideBytes : nullptr;
#if defined(__AVX512F__)
              // 16-lane blocks reach here only with indices: without, the exact fold above took them.
              if constexpr (L % 16 == 0) {
                if (wide_extremes_probed<Lanes16, F, Idx, L / 16>(a, ai, row + c0, row_pos, sw, C, ahead)) return;
              } else {
                if (wide_extremes_probed<Lanes8, F, Idx, V>(a, ai, row + c0, row_pos, sw, C, ahead)) return;
              }
#else
              if (wide_extremes_probed<Lanes8, F, Idx, V>(a, ai, row + c0, row_pos, sw, C, ahead)) return;
#endif
            }
#endif
            __m256 r[V];
            __m256i ri[V];
            for (int j = 0; j < V; ++j) {
              r[j] = _mm256_loadu_ps(a + 8 * j);
              ri[j] = Idx ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ai + 8 * j)) : _mm256_setzero_si256();
            }
            for (int64_t iw = sw.start; iw < sw.end; iw += sw.step) {
              const __m256 pv = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int32_t>(row_pos + iw)));
              const float* xv = row + iw * C + c0;
              if (Idx && prefetch && c0 == 0) {
                prefetch_lines(reinterpret_cast<const char*>(row + iw * C) + kPrefetchWideBytes, position_bytes);
              }
              for (int j = 0; j < V; ++j) {
                if constexpr (F == Fold::Sum) {
                  r[j] = _mm256_add_ps(r[j], _mm256_loadu_ps(xv + 8 * j));
                } else {
                  fold8<F, Idx>(r[j], ri[j], _mm256_loadu_ps(xv + 8 * j), pv);
                }
              }
            }
            for (int j = 0; j < V; ++j) {
              _mm256_storeu_ps(a + 8 * j, r[j]);
              if (Idx) _mm256_storeu_si256(reinterpret_cast<__m256i*>(ai + 8 * j), ri[j]);
            }
            return;
          }
#endif
          T r[L];
          int32_t rp[Idx ? L : 1];
          for (int l = 0; l < L; ++l) r[l] = a[l];
          if (Idx) for (int l = 0; l < L; ++l) rp[l] = ai[l];
          for (int64_t iw = sw.start; iw < sw.end; iw += sw.step) {
            const T* __restrict xv = row + iw * C + c0;
            const auto pos = static_cast<int32_t>(row_pos + iw);
            for (int l = 0; l < L; ++l) fold_lane<F, Idx>(r[l], rp[Idx ? l : 0], transform<F>(xv[l], pw), pos);
          }
          for (int l = 0; l < L; ++l) a[l] = r[l];
          if (Idx) for (int l = 0; l < L; ++l) ai[l] = rp[l];
        };
        if constexpr (Idx) {
          for_lane_blocks(C, block);  // values and positions: 32 lanes fill AVX2's registers
        } else {
          for_wide_lane_blocks(C, block);
        }
      }
    }
  }
  for (int64_t ow = 0; ow < w_out; ++ow) {
    T* __restrict yq = yr + ow * C;
    const T* __restrict a = acc + ow * C;
    if (!any_row || wspan[ow].start >= wspan[ow].end) {  // no element: ATen's 0 (average) or −inf
      for (int64_t j = 0; j < C; ++j) yq[j] = Cf == Fold::Sum ? T(0) : fold_init<T>(F);
      if (Idx) std::fill(yir + ow * C, yir + (ow + 1) * C, int64_t(-1));
      continue;
    }
    for (int64_t j = 0; j < C; ++j) yq[j] = finish_fused<F>(a[j], div[ow], kvol, inv_p);
    if (Idx) std::copy(acc_i + ow * C, acc_i + (ow + 1) * C, yir + ow * C);
  }
}

// One output row of channels-last windows under 64 positions (or C of 32 or less): each
// output position's C values are folded straight into the output through register
// blocks (cl_window), over the row's window rows, which the caller computes once. Before,
// each position ran three nested window loops that recomputed every row's offset with the
// geometry reloaded from the stack, which cost about as much as a 2×2 window's additions:
// on 64×32×28×28 (one thread, kernel alone, A/B in one process) max, min and average k2 s2
// now take 0.71–0.92 of the time, k3 s2 p1 0.79–0.97. `prefetch` (see the caller) fetches
// the window kPrefetchPositions ahead when its rows are short pieces.
template <Fold F, bool Idx, typename T>
void cl_row_narrow(const T* __restrict xn, T* __restrict yr, int64_t* __restrict yir, WindowRows rows,
                   const std::vector<Span>& wspan, int64_t C, const T* div, T pw, T kvol, T inv_p, bool prefetch) {
  constexpr Fold Cf = combine_of(F);
  const int64_t w_out = static_cast<int64_t>(wspan.size());
  for (int64_t ow = 0; ow < w_out; ++ow) {
    const Span sw = wspan[ow];
    if (prefetch && ow + kPrefetchPositions < w_out) {
      const Span sp = wspan[ow + kPrefetchPositions];
      if ((sp.end - sp.start) * C * int64_t(sizeof(T)) <= kPrefetchMaxPiece) {
        for (int64_t k = 0; k < rows.n; ++k) {
          prefetch_lines(reinterpret_cast<const char*>(xn + rows.at[k] + sp.start * C),
                         (sp.end - sp.start) * C * int64_t(sizeof(T)));
        }
      }
    }
    T* yq = yr + ow * C;
    int64_t* iq = Idx ? yir + ow * C : nullptr;
    if (rows.n == 0 || sw.start >= sw.end) {  // no element: ATen's 0 (average) or −inf
      std::fill(yq, yq + C, Cf == Fold::Sum ? T(0) : fold_init<T>(F));
      if (Idx) std::fill(iq, iq + C, int64_t(-1));
      continue;
    }
    const T d = div[ow];
    for_lane_blocks(C, [&](auto lanes, int64_t c0) {
      cl_window<F, Idx, decltype(lanes)::value>(xn + c0, yq + c0, Idx ? iq + c0 : nullptr, rows, sw, C, pw, d, kvol,
                                                inv_p);
    });
  }
}

// Channels-last, float and double: one row of outputs at a time, so the D/H windows are
// computed once per row; small windows through cl_row_narrow, wide ones cl_row_wide.
template <Fold F, bool Idx, typename T>
void forward_channels_last_direct(const T* x, T* y, int64_t* yi, const PoolParams& p) {
  using A = acc_t<T>;
  static_assert(std::is_same<A, T>::value, "accumulates in the output");
  constexpr Fold Cf = combine_of(F);
  const auto& g = p.g;
  const auto& D = g.dim[0];
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  const int64_t C = g.C;
  const int64_t rows = g.N * D.out * H.out;
  const A kvol = A(kernel_volume(g)), pw = A(p.norm_type), inv_p = A(1.0 / p.norm_type);
  const DivisorTable divisor(p);
  const WindowSpans win(g);
  const std::vector<Span>& wspan = win.dim[2];
  // Work of one output row: C lanes × every window element of its W.out positions.
  auto extent = [&](const WindowDim& w) { return g.adaptive ? (w.in + w.out - 1) / w.out + 1 : w.k; };
  const int64_t row_work = C * W.out * extent(W) * extent(H) * extent(D);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_work));
  // Wide windows (see cl_row_wide): at least 64 positions per window, C over 32.
  const bool row_wide = C > 32 && extent(D) * extent(H) * extent(W) >= 64;
  // The window a few positions ahead is prefetched when its rows are short pieces (longer
  // ones, as in adaptive pooling's, stream well on their own: prefetching each of their lines
  // cost a fifth of adaptive max 7×7's time), only for an input of 16 MB or more on one
  // thread. Measured (16×64×112×112 and 64×32×28×28 channels-last, k3 s2 p1 / k2 s2 avg and
  // max, A/B in one process): it saves 5–10 % there, but costs 10–20 % with two threads or on
  // an input that stays in the caches (the prefetches only add load-port work).
  const int64_t input_bytes = g.N * g.plane_in() * C * int64_t(sizeof(T));
  const bool prefetch = at::get_num_threads() == 1 && input_bytes >= (int64_t(16) << 20);
  // Wide windows with indices (see cl_row_wide) prefetch kPrefetchWideBytes ahead where each
  // thread's share of the input is 8 MB or more. Measured (A/B in one process, adaptive max
  // with indices, channels-last): 16×64×112×112 → 7×7 10–12 % faster at 1 thread, 14–25 % at
  // 2; 16×64×56×56 → 7×7 and 64×64×28×28 → 1×1 50–60 % faster at 1 thread, but 4–9 %
  // slower at 2 (6.4 MB a thread stays in the caches), as 8×64×56×56 was at either.
  const bool prefetch_wide = input_bytes >= at::get_num_threads() * (int64_t(8) << 20);
  const int64_t max_rows = extent(D) * extent(H);
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> wide_acc(row_wide ? W.out * C : 0), div(W.out);
    std::vector<int32_t> wide_pos(row_wide && Idx ? W.out * C : 0);
    std::vector<int64_t> row_at(row_wide ? 0 : max_rows);
    std::vector<int32_t> row_pos(row_wide ? 0 : max_rows);
    RowCounter at(begin, D.out, H.out);
    for (int64_t r = begin; r < end; ++r, at.next()) {
      const Span sd = win.dim[0][at.od], sh = win.dim[1][at.oh];
      const T* xn = x + at.plane * g.plane_in() * C;
      T* yr = y + r * W.out * C;
      int64_t* yir = Idx ? yi + r * W.out * C : nullptr;
      for (int64_t ow = 0; ow < W.out; ++ow) div[ow] = Cf == Fold::Sum ? A(divisor(at.od, at.oh, ow)) : A(1);
      if (row_wide) {
        cl_row_wide<F, Idx>(xn, yr, yir, wide_acc.data(), wide_pos.data(), C, sd, sh, wspan, H.in, W.in, pw,
                            div.data(), kvol, inv_p, prefetch_wide);
        continue;
      }
      // Positions only with indices (the caller checked that the plane fits int32); 0
      // otherwise, so the int32 position arithmetic in cl_window cannot overflow.
      int64_t n = 0;
      for (int64_t id = sd.start; id < sd.end; id += sd.step) {
        for (int64_t ih = sh.start; ih < sh.end; ih += sh.step, ++n) {
          row_pos[n] = Idx ? static_cast<int32_t>((id * H.in + ih) * W.in) : 0;
          row_at[n] = (id * H.in + ih) * W.in * C;
        }
      }
      cl_row_narrow<F, Idx>(xn, yr, yir, WindowRows{row_at.data(), row_pos.data(), n}, wspan, C, div.data(), pw, kvol,
                            inv_p, prefetch);
    }
  });
}

template <Fold F, bool Idx, typename T>
void forward_typed(const at::Tensor& x, at::Tensor& y, at::Tensor* yi, const PoolParams& p) {
  const T* xp = x.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  int64_t* ip = Idx ? yi->data_ptr<int64_t>() : nullptr;
  if (!p.g.channels_last) return forward_contiguous<F, Idx>(xp, yp, ip, p);
  // The direct path keeps window positions as int32 (see cl_window).
  const bool fits_int32 = p.g.plane_in() <= std::numeric_limits<int32_t>::max();
  if constexpr (std::is_same<T, acc_t<T>>::value) {
    if (!Idx || fits_int32) return forward_channels_last_direct<F, Idx>(xp, yp, ip, p);
  }
  forward_channels_last<F, Idx>(xp, yp, ip, p);
}

template <typename T>
void forward_fold(const at::Tensor& x, at::Tensor& y, at::Tensor* yi, const PoolParams& p) {
  const bool idx = yi != nullptr && yi->defined();
  switch (fold_of(p)) {
    case Fold::Max:
      return idx ? forward_typed<Fold::Max, true, T>(x, y, yi, p) : forward_typed<Fold::Max, false, T>(x, y, yi, p);
    case Fold::Min:
      return idx ? forward_typed<Fold::Min, true, T>(x, y, yi, p) : forward_typed<Fold::Min, false, T>(x, y, yi, p);
    case Fold::Sum: return forward_typed<Fold::Sum, false, T>(x, y, yi, p);
    case Fold::SumAbs: return forward_typed<Fold::SumAbs, false, T>(x, y, yi, p);
    case Fold::SumSq: return forward_typed<Fold::SumSq, false, T>(x, y, yi, p);
    case Fold::SumPow: return forward_typed<Fold::SumPow, false, T>(x, y, yi, p);
    case Fold::MaxAbs: return forward_typed<Fold::MaxAbs, false, T>(x, y, yi, p);
  }
}

void forward(const at::Tensor& x, at::Tensor& y, at::Tensor* idx, const PoolParams& p) {
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "fancy_pool_forward",
                                 [&] { forward_fold<scalar_t>(x, y, idx, p); });
}

// ---------------------------------------------------------------- backward by index
// Planes (n, c) are independent; within a plane outputs are visited in order, so the
// sum at each input position is taken in ATen's order and does not depend on threads.
// grad_in arrives uninitialised; each plane (image, channels-last) is zeroed just before,
// while it is cache-sized: one write pass.
void index_backward(const at::Tensor& grad_out, const at::Tensor& idx, at::Tensor& grad_in,
                    const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "fancy_pool_index_backward", [&] {
    const scalar_t* go = grad_out.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    scalar_t* gi = grad_in.data_ptr<scalar_t>();
    const int64_t pin = g.plane_in(), pout = g.plane_out(), C = g.C;
    if (!g.channels_last) {
      at::parallel_for(0, g.N * C, 1, [&](int64_t b, int64_t e) {
        for (int64_t plane = b; plane < e; ++plane) {
          scalar_t* gp = gi + plane * pin;
          const scalar_t* op = go + plane * pout;
          const int64_t* ipp = ix + plane * pout;
          std::fill(gp, gp + pin, scalar_t(0));
          for (int64_t o = 0; o < pout; ++o) {
            if (ipp[o] >= 0) gp[ipp[o]] += op[o];
          }
        }
      });
    } else {
      at::parallel_for(0, g.N, 1, [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n) {
          scalar_t* gp = gi + n * pin * C;
          const scalar_t* op = go + n * pout * C;
          const int64_t* ipp = ix + n * pout * C;
          std::fill(gp, gp + pin * C, scalar_t(0));
          for (int64_t o = 0; o < pout; ++o) {
            for (int64_t c = 0; c < C; ++c) {
              const int64_t i = ipp[o * C + c];
              if (i >= 0) gp[i * C + c] += op[o * C + c];
            }
          }
        }
      });
    }
  });
}

// ---------------------------------------------------------------- window backward
// d y/d x_i for one element of a window of average or Lp pooling.
template <typename A>
struct WindowGrad {
  Fold f;  // a constant in each instantiation of window_backward_typed, so branches fold away
  double norm_type;
  int64_t K;
  // Per output: the factor applied to every element's term.
  A scale(A go, A y, int64_t div) const {
    if (div == 0) return A(0);
    if (f == Fold::Sum) return go / A(div);
    if (f == Fold::MaxAbs) return go;
    if (y == A(0)) return A(0);
    const A c = A(K) / A(div);
    if (f == Fold::SumAbs) return go * c;
    if (f == Fold::SumSq) return go * c / y;
    return go * c * std::pow(y, A(1.0 - norm_type));
  }
  A term(A x) const {
    if (f == Fold::Sum) return A(1);
    const A sgn = x > 0 ? A(1) : (x < 0 ? A(-1) : A(0));
    if (f == Fold::SumAbs) return sgn;
    if (f == Fold::SumSq) return x;
    return sgn * (x == A(0) ? A(0) : std::pow(std::abs(x), A(norm_type - 1.0)));
  }
};

// Average / Lp backward for contiguous inputs, one output row at a time: each output's
// factor is spread over the input columns of its window first (cw), then every input row
// of the window gets cw[i]·term(x_i) in one stride-1 pass. Sums per input element are
// then taken column-wise, a different order from ATen's (within float rounding).
template <Fold F, typename A>
void window_backward_rows(const A* go, const A* xp, const A* yp, A* gi, const PoolParams& p) {
  const auto& g = p.g;
  const auto& D = g.dim[0];
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  const WindowGrad<A> wg{F, p.norm_type, kernel_volume(g)};
  const DivisorTable divisor(p);
  const WindowSpans win(g);
  const std::vector<Span>& wspan = win.dim[2];
  const int64_t pin = g.plane_in(), pout = g.plane_out();
  at::parallel_for(0, g.N * g.C, 1, [&](int64_t b, int64_t e) {
    std::vector<A> cw(W.in);
    for (int64_t u = b; u < e; ++u) {
      const A* xu = xp + u * pin;
      A* gu = gi + u * pin;
      // The plane is zeroed here, just before its sums, while it is cache-sized: one write
      // pass over memory instead of a separate zero fill of the whole gradient.
      std::fill(gu, gu + pin, A(0));
      for (int64_t od = 0; od < D.out; ++od) {
        for (int64_t oh = 0; oh < H.out; ++oh) {
          const int64_t o0 = u * pout + (od * H.out + oh) * W.out;
          std::fill(cw.begin(), cw.end(), A(0));
          int64_t lo_col = W.in, hi_col = 0;
          for (int64_t ow = 0; ow < W.out; ++ow) {
            const A s = wg.scale(go[o0 + ow], yp ? yp[o0 + ow] : A(0), divisor(od, oh, ow));
            const Span sw = wspan[ow];
            for (int64_t iw = sw.start; iw < sw.end; ++iw) cw[iw] += s;
            lo_col = std::min(lo_col, sw.start);
            hi_col = std::max(hi_col, sw.end);
          }
          const Span sd = win.dim[0][od], sh = win.dim[1][oh];
          for (int64_t id = sd.start; id < sd.end; id += sd.step) {
            for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
              const int64_t row = (id * H.in + ih) * W.in;
              A* __restrict gr = gu + row;
              const A* __restrict xr = xu + row;
              const A* __restrict c = cw.data();
              for (int64_t i = lo_col; i < hi_col; ++i) gr[i] += c[i] * wg.term(xr[i]);
            }
          }
        }
      }
    }
  });
}

template <Fold F, typename A>
void window_backward_typed(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& y,
                           at::Tensor& grad_in, const PoolParams& p) {
  const auto& g = p.g;
  if (F != Fold::MaxAbs && !g.channels_last && g.dim[2].d == 1) {
    window_backward_rows<F, A>(grad_out.data_ptr<A>(), x.data_ptr<A>(),
                               y.defined() ? y.data_ptr<A>() : nullptr, grad_in.data_ptr<A>(), p);
    return;
  }
  grad_in.zero_();  // the rows path above zeroes plane by plane; this one adds into zeros
  const WindowGrad<A> wg{F, p.norm_type, kernel_volume(g)};
  const A* go = grad_out.data_ptr<A>();
  const A* xp = x.data_ptr<A>();
  const A* yp = y.defined() ? y.data_ptr<A>() : nullptr;
  A* gi = grad_in.data_ptr<A>();
  const int64_t C = g.C, pin = g.plane_in();
  const bool cl = g.channels_last;
  // Contiguous: one unit per (n, c) plane. Channels-last: one unit per n, all of C.
  const int64_t units = cl ? g.N : g.N * C;
  const int64_t lanes = cl ? C : 1;
  const DivisorTable divisor(p);
  const WindowSpans win(g);
  at::parallel_for(0, units, 1, [&](int64_t b, int64_t e) {
    std::vector<A> scale(lanes), yv(lanes);
    std::vector<char> done(lanes);
    for (int64_t u = b; u < e; ++u) {
      const A* xu = xp + u * pin * lanes;
      A* gu = gi + u * pin * lanes;
      int64_t o = 0;
      for (int64_t od = 0; od < g.dim[0].out; ++od)
        for (int64_t oh = 0; oh < g.dim[1].out; ++oh)
          for (int64_t ow = 0; ow < g.dim[2].out; ++ow, ++o) {
            const int64_t div = divisor(od, oh, ow);
            const int64_t o0 = (u * g.plane_out() + o) * lanes;
            for (int64_t c = 0; c < lanes; ++c) {
              yv[c] = yp ? yp[o0 + c] : A(0);
              scale[c] = wg.scale(go[o0 + c], yv[c], div);
              done[c] = 0;
            }
            const Span sd = win.dim[0][od], sh = win.dim[1][oh], sw = win.dim[2][ow];
            for (int64_t id = sd.start; id < sd.end; id += sd.step)
              for (int64_t ih = sh.start; ih < sh.end; ih += sh.step) {
                const int64_t row = (id * g.dim[1].in + ih) * g.dim[2].in;
                if (F == Fold::MaxAbs) {
                  // p = inf: the gradient goes to the first |x| equal to the output.
                  for (int64_t iw = sw.start; iw < sw.end; iw += sw.step) {
                    const int64_t i0 = (row + iw) * lanes;
                    for (int64_t c = 0; c < lanes; ++c) {
                      const A v = xu[i0 + c];
                      if (!done[c] && std::abs(v) == yv[c]) {
                        gu[i0 + c] += scale[c] * (v > 0 ? A(1) : v < 0 ? A(-1) : A(0));
                        done[c] = 1;
                      }
                    }
                  }
                } else if (lanes == 1) {
                  // Along W, contiguous: a vectorisable run.
                  const A s0 = scale[0];
                  A* gr = gu + row;
                  const A* xr = xu + row;
                  for (int64_t iw = sw.start; iw < sw.end; ++iw) gr[iw] += s0 * wg.term(xr[iw]);
                } else {
                  for (int64_t iw = sw.start; iw < sw.end; ++iw) {
                    const int64_t i0 = (row + iw) * lanes;
                    for (int64_t c = 0; c < lanes; ++c) gu[i0 + c] += scale[c] * wg.term(xu[i0 + c]);
                  }
                }
              }
          }
    }
  });
}

void window_backward(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& y,
                     at::Tensor& grad_in, const PoolParams& p) {
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "fancy_pool_window_backward", [&] {
    switch (fold_of(p)) {
      case Fold::Sum: return window_backward_typed<Fold::Sum, scalar_t>(grad_out, x, y, grad_in, p);
      case Fold::SumAbs: return window_backward_typed<Fold::SumAbs, scalar_t>(grad_out, x, y, grad_in, p);
      case Fold::SumSq: return window_backward_typed<Fold::SumSq, scalar_t>(grad_out, x, y, grad_in, p);
      case Fold::SumPow: return window_backward_typed<Fold::SumPow, scalar_t>(grad_out, x, y, grad_in, p);
      case Fold::MaxAbs: return window_backward_typed<Fold::MaxAbs, scalar_t>(grad_out, x, y, grad_in, p);
      default: TORCH_CHECK(false, "window_backward: max and min pooling take index_backward");
    }
  });
}

// ---------------------------------------------------------------- unpooling
void unpool_forward(const at::Tensor& x, const at::Tensor& idx, at::Tensor& y,
                    const PoolGeometry& g, const char* op) {
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "fancy_unpool", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    const int64_t pin = g.plane_in(), pout = g.plane_out(), C = g.C;
    const bool cl = g.channels_last;
    const int64_t units = cl ? g.N : g.N * C, lanes = cl ? C : 1;
    at::parallel_for(0, units, 1, [&](int64_t b, int64_t e) {
      for (int64_t u = b; u < e; ++u) {
        for (int64_t o = 0; o < pout; ++o) {
          for (int64_t c = 0; c < lanes; ++c) {
            const int64_t oi = (u * pout + o) * lanes + c;
            const int64_t i = ix[oi];
            TORCH_CHECK(i >= 0 && i < pin, op, ": index ", i, " at position ", oi,
                        " of indices is outside the output plane of ", pin,
                        " elements (valid: 0 to ", pin - 1, ")");
            yp[(u * pin + i) * lanes + c] = xp[oi];
          }
        }
      }
    });
  });
}

void unpool_backward(const at::Tensor& grad_out, const at::Tensor& idx, at::Tensor& grad_in,
                     const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "fancy_unpool_backward", [&] {
    const scalar_t* go = grad_out.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    scalar_t* gi = grad_in.data_ptr<scalar_t>();
    const int64_t pin = g.plane_in(), pout = g.plane_out(), C = g.C;
    const bool cl = g.channels_last;
    const int64_t units = cl ? g.N : g.N * C, lanes = cl ? C : 1;
    at::parallel_for(0, units, 1, [&](int64_t b, int64_t e) {
      for (int64_t u = b; u < e; ++u)
        for (int64_t o = 0; o < pout; ++o)
          for (int64_t c = 0; c < lanes; ++c) {
            const int64_t oi = (u * pout + o) * lanes + c;
            const int64_t i = ix[oi];
            TORCH_CHECK(i >= 0 && i < pin, "max_unpool backward: index ", i,
                        " is outside the plane of ", pin, " elements");
            gi[oi] = go[(u * pin + i) * lanes + c];
          }
    });
  });
}

}  // namespace

const PoolKernels pool_kernels{forward, index_backward, window_backward, unpool_forward,
                               unpool_backward};

}  // namespace FANCY_CPU_NS
}  // namespace ops
}  // namespace fancy
