// CPU kernels of the fancy pooling family, compiled once per instruction set
// (FANCY_CPU_NS), like pool_kernels.cpp.
//
// The window ops work one output row (plane, od, oh) at a time and, for each input row
// of the window and each tap j along W, run one loop over the output positions whose tap
// j falls inside the input: ow·s + j − p ∈ [0, W). That loop has no branches and
// vectorises, and clipping at the borders (padding, ceil_mode) comes out of its bounds.
#include "ops/cpu/fancy_pool_kernels.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <numeric>
#include <vector>

namespace fancy {
namespace ops {
namespace FANCY_CPU_NS {
namespace {

// e^x for x in [−87.3, 88.37], written so the compiler vectorises it: Cephes' expf
// polynomial (about 1 ulp), exact 2^n by exponent bits (n ≤ 127).
inline float exp_poly(float x) {
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

// e^x for x ≤ 0 (arguments are always shifted by the window's maximum). Below −87.3 the
// result flushes to 0, where float's normal range ends.
inline float exp_nonpositive(float x) {
  const float tiny = x < -87.3f ? 0.0f : 1.0f;
  return tiny * exp_poly(x < -87.3f ? -87.3f : x);
}
inline double exp_nonpositive(double x) { return std::exp(x); }

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
// m·2^f for |f| ≤ ½ on 8 lanes by Cephes' exp2f polynomial (its coefficients times m, so
// that a caller's scale of 2 costs nothing).
template <int M = 1>
inline __m256 exp2_fraction_avx2(__m256 f) {
  __m256 q = _mm256_set1_ps(M * 1.535336188319500e-4f);
  q = _mm256_fmadd_ps(q, f, _mm256_set1_ps(M * 1.339887440266574e-3f));
  q = _mm256_fmadd_ps(q, f, _mm256_set1_ps(M * 9.618437357674640e-3f));
  q = _mm256_fmadd_ps(q, f, _mm256_set1_ps(M * 5.550332471162809e-2f));
  q = _mm256_fmadd_ps(q, f, _mm256_set1_ps(M * 2.402264791363012e-1f));
  q = _mm256_fmadd_ps(q, f, _mm256_set1_ps(M * 6.931472028550421e-1f));
  return _mm256_fmadd_ps(q, f, _mm256_set1_ps(M * 1.0f));
}

// e^d for d ≤ 0 on 8 lanes, in 13 instructions (SoftPool's forward is bound by their
// number): t = d·log2 e + (1.5·2²³ + 127) rounds w = d·log2 e to a whole k and leaves
// k + 127 in t's low bits, so 2^k is t's bits shifted into the exponent, with no floor
// or conversion; 2^(w − k), |w − k| ≤ ½, by Cephes' exp2f polynomial. 0 below d = −87.3
// (by the mask, which also clears the wrapped exponents there); NaN stays NaN.
// Accuracy: 2e-7 relative for d ≥ −10; below, log2 e's rounding grows it to 1.3e-6 at
// d = −87, on terms below 5e-5 (the error a term adds to a window's sum of e, which is
// ≥ 1, stays below 1e-7 relative).
inline __m256 exp_nonpositive_avx2(__m256 d) {
  const __m256 keep = _mm256_cmp_ps(d, _mm256_set1_ps(-87.3f), _CMP_NLT_UQ);
  const __m256 magic = _mm256_set1_ps(12583039.0f);  // 1.5·2²³ + 127
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 t = _mm256_fmadd_ps(d, log2e, magic);
  const __m256 f = _mm256_fmsub_ps(d, log2e, _mm256_sub_ps(t, magic));  // w − k
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));  // 2^k
  return _mm256_and_ps(_mm256_mul_ps(exp2_fraction_avx2(f), scale), keep);
}
#endif

// e^x for any x, vectorisable: 0 below −87.3, +inf above float's range, NaN stays NaN.
inline float exp_any(float x) {
  constexpr float hi = 88.3762626647949f;
  const float c = x < -87.3f ? -87.3f : (x > hi ? hi : x);
  const float r = exp_poly(c);
  return x < -87.3f ? 0.0f : (x > hi ? std::numeric_limits<float>::infinity() : r);
}
inline double exp_any(double x) { return std::exp(x); }

// ln x for x > 0, vectorisable: Cephes' logf (mantissa in [√½, √2), a degree-9 polynomial,
// about 1 ulp); +inf and NaN pass through. Only called on x ≥ eps > 0.
inline float log_positive(float x) {
  const int32_t bits = __builtin_bit_cast(int32_t, x);
  int32_t e = ((bits >> 23) & 0xff) - 126;
  float m = __builtin_bit_cast(float, (bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const float fe = static_cast<float>(e);
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  const float r = m + y + 0.693359375f * fe;
  return x < std::numeric_limits<float>::infinity() ? r : x;  // +inf, NaN
}
inline double log_positive(double x) { return std::log(x); }

struct Range {
  int64_t start, end;
};

// Input positions of output o's window along one dim, clipped to the input.
inline Range clip(const WindowDim& w, int64_t o) {
  const int64_t s = o * w.s - w.p;
  return {std::max<int64_t>(s, 0), std::min(s + w.k, w.in)};
}

// Output positions whose tap j along W lies inside the input.
inline Range tap_outputs(const WindowDim& w, int64_t j) {
  const int64_t off = j - w.p;  // input position of output 0's tap j
  const int64_t lo = off >= 0 ? 0 : (-off + w.s - 1) / w.s;
  const int64_t hi = w.in - 1 - off >= 0 ? (w.in - 1 - off) / w.s + 1 : 0;
  return {std::min(lo, w.out), std::max(std::min(lo, w.out), std::min(hi, w.out))};
}

// Visits every output row (plane, od, oh) in [begin, end) with the flat offsets of its
// window's input rows (relative to x) and of its output row (relative to y).
template <typename Fn>
void for_rows(const PoolGeometry& g, int64_t begin, int64_t end, Fn&& fn) {
  const auto& D = g.dim[0];
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  std::vector<int64_t> rows;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t oh = r % H.out, od = (r / H.out) % D.out, plane = r / (H.out * D.out);
    const Range rd = clip(D, od), rh = clip(H, oh);
    rows.clear();
    for (int64_t id = rd.start; id < rd.end; ++id) {
      for (int64_t ih = rh.start; ih < rh.end; ++ih) rows.push_back((plane * D.in * H.in + id * H.in + ih) * W.in);
    }
    fn(rows, r * W.out);
  }
}

int64_t row_count(const PoolGeometry& g) { return g.N * g.C * g.dim[0].out * g.dim[1].out; }

// Rows per task: about 16k window elements, so small planes still split across threads.
int64_t row_grain(const PoolGeometry& g) {
  const int64_t work = std::max<int64_t>(1, g.dim[2].out * g.dim[2].k * g.dim[1].k * g.dim[0].k);
  return std::max<int64_t>(1, 16384 / work);
}

// ------------------------------------------------------------------ tiled windows
// The common case k = s, no padding, no partial window (2×2 / 3×3 pooling of a map whose
// size they divide, and the same in 1-D): windows tile the input, so each element belongs
// to at most one window. Those ops then run one loop over the outputs of a row with the
// whole window in registers (sizes known at compile time), and backward passes write each
// gradient element once instead of adding into a zeroed gradient.
enum class Tile { None, K1x2, K1x3, K2x2, K3x3 };

Tile tile_of(const PoolGeometry& g) {
  for (const auto& d : g.dim) {
    if (d.p != 0 || d.k != d.s || d.out * d.k > d.in) return Tile::None;
  }
  const int64_t kd = g.dim[0].k, kh = g.dim[1].k, kw = g.dim[2].k;
  if (kd != 1) return Tile::None;
  if (kh == 1 && kw == 2) return Tile::K1x2;
  if (kh == 1 && kw == 3) return Tile::K1x3;
  if (kh == 2 && kw == 2) return Tile::K2x2;
  if (kh == 3 && kw == 3) return Tile::K3x3;
  return Tile::None;
}

// Calls fn(std::integral_constant<int, rows>, std::integral_constant<int, columns>).
template <typename Fn>
bool with_tile(Tile t, Fn&& fn) {
  switch (t) {
    case Tile::K1x2: fn(std::integral_constant<int, 1>(), std::integral_constant<int, 2>()); return true;
    case Tile::K1x3: fn(std::integral_constant<int, 1>(), std::integral_constant<int, 3>()); return true;
    case Tile::K2x2: fn(std::integral_constant<int, 2>(), std::integral_constant<int, 2>()); return true;
    case Tile::K3x3: fn(std::integral_constant<int, 3>(), std::integral_constant<int, 3>()); return true;
    case Tile::None: return false;
  }
  return false;
}

// Whether the windows cover every input element (else backward zeroes the gradient first).
bool tiles_cover(const PoolGeometry& g) {
  for (const auto& d : g.dim) {
    if (d.out * d.k != d.in) return false;
  }
  return true;
}

// Flat offset of the first input row of tiled output row `row` = (n, c, d, oh); kd = 1,
// so D.in = D.out and (n, c, d) indexes whole H.in × W.in planes.
inline int64_t tile_row_offset(const PoolGeometry& g, int64_t row, int R) {
  const int64_t plane = row / g.dim[1].out, oh = row % g.dim[1].out;
  return (plane * g.dim[1].in + oh * R) * g.dim[2].in;
}

// Output rows per task of a tiled loop: about 16k window elements.
inline int64_t tile_grain(const PoolGeometry& g, int n) { return std::max<int64_t>(1, 16384 / (g.dim[2].out * n)); }

// ------------------------------------------------------------------ SoftPool / LIP
// e[o] = exp(v[o]) over a contiguous array: a loop of its own, so it vectorises.
template <typename T>
void exp_nonpositive_array(T* __restrict v, int64_t n) {
  for (int64_t o = 0; o < n; ++o) v[o] = exp_nonpositive(v[o]);
}

// The W.s phases of an input row (phase q holds row[q], row[q + s], ...), each `len`
// long: tap j of stride-s windows then reads phase q at ow + shift, contiguous memory
// instead of a strided gather.
struct Phases {
  int64_t len;
  explicit Phases(const WindowDim& w) : len((w.in + w.s - 1) / w.s) {}
  int64_t phase(const WindowDim& w, int64_t j) const { return ((j - w.p) % w.s + w.s) % w.s; }
  int64_t shift(const WindowDim& w, int64_t j) const { return (j - w.p - phase(w, j)) / w.s; }
};

template <typename T>
void split_phases(const T* __restrict row, const WindowDim& w, int64_t len, T* __restrict out) {
  if (w.s == 2) {  // the common case, in one pass the compiler turns into shuffles
    for (int64_t i = 0; i < w.in / 2; ++i) {
      out[i] = row[2 * i];
      out[len + i] = row[2 * i + 1];
    }
    if (w.in % 2) out[w.in / 2] = row[w.in - 1];
    return;
  }
  for (int64_t q = 0; q < w.s; ++q) {
    for (int64_t i = 0; q + i * w.s < w.in; ++i) out[q * len + i] = row[q + i * w.s];
  }
}

// Scratch of one output row: the phases of its input rows' x and logits (and of the
// gradients in backward), and the per-output arrays.
template <typename T>
struct WeightedScratch {
  std::vector<T> xb, lb, gxb, glb, m, S, P, e, c;
  std::vector<T> kept_e;  // backward: the exp terms of every (row, tap), not computed twice
  bool keep_e = false;
};

// Per output row: m = the window maxima of the logits, then S = Σe, P = Σe·x with
// e = exp(l − m), one (input row, tap) at a time: l − m, exp, accumulate.
template <typename T>
void weighted_row(const T* x, const T* l, const std::vector<int64_t>& rows, const WindowDim& W,
                  WeightedScratch<T>& sc) {
  const Phases ph(W);
  const int64_t stride = W.s * ph.len, R = static_cast<int64_t>(rows.size());
  // SoftPool passes l = x: its phases are split once and serve as both.
  const bool soft = l == x;
  sc.xb.resize(R * stride);
  if (!soft) sc.lb.resize(R * stride);
  for (int64_t r = 0; r < R; ++r) {
    split_phases(x + rows[r], W, ph.len, sc.xb.data() + r * stride);
    if (!soft) split_phases(l + rows[r], W, ph.len, sc.lb.data() + r * stride);
  }
  const T* lb = soft ? sc.xb.data() : sc.lb.data();
  T* __restrict m = sc.m.data();
  T* __restrict S = sc.S.data();
  T* __restrict P = sc.P.data();
  T* __restrict e = sc.e.data();
  std::fill(m, m + W.out, -std::numeric_limits<T>::infinity());
  std::fill(S, S + W.out, T(0));
  std::fill(P, P + W.out, T(0));
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t j = 0; j < W.k; ++j) {
      const Range o = tap_outputs(W, j);
      const T* __restrict lq = lb + r * stride + ph.phase(W, j) * ph.len + ph.shift(W, j);
      for (int64_t ow = o.start; ow < o.end; ++ow) m[ow] = (lq[ow] > m[ow] || lq[ow] != lq[ow]) ? lq[ow] : m[ow];
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t j = 0; j < W.k; ++j) {
      const Range o = tap_outputs(W, j);
      const int64_t at = r * stride + ph.phase(W, j) * ph.len + ph.shift(W, j);
      const T* __restrict lq = lb + at;
      const T* __restrict xq = sc.xb.data() + at;
      for (int64_t ow = o.start; ow < o.end; ++ow) e[ow] = lq[ow] - m[ow];
      exp_nonpositive_array(e + o.start, o.end - o.start);
      for (int64_t ow = o.start; ow < o.end; ++ow) {
        S[ow] += e[ow];
        P[ow] += e[ow] * xq[ow];
      }
      if (sc.keep_e) std::copy(e + o.start, e + o.end, sc.kept_e.data() + (r * W.k + j) * W.out + o.start);
    }
  }
}

template <typename T>
void size_scratch(WeightedScratch<T>& sc, int64_t w_out) {
  for (auto* v : {&sc.m, &sc.S, &sc.P, &sc.e, &sc.c}) v->resize(w_out);
}

// One output row of tiled windows: R input rows (pointers at the row's first window),
// KW columns per window. m = the window's largest logit, e_t = exp(l_t − m). The plain max
// skips a NaN, but that element's e_t = exp(NaN − m) is NaN, so S, P and the output are
// NaN all the same — without the NaN-propagating select's extra compare and blend. Soft:
// the logits are x (SoftPool), loaded once.
template <int R, int KW, bool Soft, typename T>
struct TileWindow {
  T x[R * KW], e[R * KW], m, S, P;
  void load(const T* const* xr, const T* const* lr, int64_t ow) {
    T l[R * KW];
    m = -std::numeric_limits<T>::infinity();
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < KW; ++j) {
        x[r * KW + j] = xr[r][ow * KW + j];
        l[r * KW + j] = Soft ? x[r * KW + j] : lr[r][ow * KW + j];
        const T v = l[r * KW + j];
        m = v > m ? v : m;
      }
    }
    S = 0;
    P = 0;
    for (int t = 0; t < R * KW; ++t) {
      e[t] = exp_nonpositive(l[t] - m);
      S += e[t];
      P += e[t] * x[t];
    }
  }
};

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
// SoftPool over 2×2 tiles, 8 outputs (16 columns of two input rows) per step, shared by
// the forward and the backward so both see the same e and S. The compiler's loop over
// TileWindow de-interleaved the column pairs with lane-crossing permutes; here the pairs
// stay in place: the row pair's maximum reaches both lanes of a pair by one in-lane swap,
// and pair sums come out of two in-lane shuffles in the order o0 o1 o4 o5 | o2 o3 o6 o7
// (`pair_sums`), which one 64-bit permute (`in_order`) turns back into o0..o7.
struct SoftTiles8 {
  __m256 a[2], b[2], ea[2], eb[2];  // the two rows' 16 values and their e = exp(x − m)
  SoftTiles8(const float* r0, const float* r1) {
    for (int h = 0; h < 2; ++h) {
      a[h] = _mm256_loadu_ps(r0 + 8 * h);
      b[h] = _mm256_loadu_ps(r1 + 8 * h);
      const __m256 c = _mm256_max_ps(a[h], b[h]);
      const __m256 m = _mm256_max_ps(c, _mm256_permute_ps(c, 0xB1));  // each pair's max in both lanes
      ea[h] = exp_nonpositive_avx2(_mm256_sub_ps(a[h], m));
      eb[h] = exp_nonpositive_avx2(_mm256_sub_ps(b[h], m));
    }
  }
  static __m256 pair_sums(__m256 v0, __m256 v1) {
    return _mm256_add_ps(_mm256_shuffle_ps(v0, v1, 0x88), _mm256_shuffle_ps(v0, v1, 0xDD));
  }
  static __m256 in_order(__m256 v) { return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8)); }
  __m256 S() const { return pair_sums(_mm256_add_ps(ea[0], eb[0]), _mm256_add_ps(ea[1], eb[1])); }
  __m256 P() const {
    return pair_sums(_mm256_fmadd_ps(eb[0], b[0], _mm256_mul_ps(ea[0], a[0])),
                     _mm256_fmadd_ps(eb[1], b[1], _mm256_mul_ps(ea[1], a[1])));
  }
};

// The forward's vector steps; returns how many outputs it wrote.
inline int64_t soft_row_2x2_avx2(const float* __restrict r0, const float* __restrict r1, float* __restrict y,
                                 int64_t w_out) {
  int64_t ow = 0;
  for (; ow + 8 <= w_out; ow += 8) {
    const SoftTiles8 t(r0 + 2 * ow, r1 + 2 * ow);
    // S ≥ 1 (the maximum's own term is e⁰); permuted back after the division.
    _mm256_storeu_ps(y + ow, SoftTiles8::in_order(_mm256_div_ps(t.P(), t.S())));
  }
  return ow;
}

// The backward's vector steps: ∂x_i = e_i · go/S · (1 + x_i − y). go/S and 1 − y are
// formed in the pair sums' order (the permute is its own inverse), from which one in-lane
// unpack each spreads them over the lanes of their pairs. Returns how many outputs it did.
inline int64_t soft_grad_2x2_avx2(const float* __restrict r0, const float* __restrict r1, const float* __restrict go,
                                  const float* __restrict y, float* __restrict g0, float* __restrict g1,
                                  int64_t w_out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t ow = 0;
  for (; ow + 8 <= w_out; ow += 8) {
    const SoftTiles8 t(r0 + 2 * ow, r1 + 2 * ow);
    const __m256 c = _mm256_div_ps(SoftTiles8::in_order(_mm256_loadu_ps(go + ow)), t.S());
    const __m256 u = _mm256_sub_ps(one, SoftTiles8::in_order(_mm256_loadu_ps(y + ow)));
    const __m256 cs[2] = {_mm256_unpacklo_ps(c, c), _mm256_unpackhi_ps(c, c)};
    const __m256 us[2] = {_mm256_unpacklo_ps(u, u), _mm256_unpackhi_ps(u, u)};
    for (int h = 0; h < 2; ++h) {
      _mm256_storeu_ps(g0 + 2 * ow + 8 * h, _mm256_mul_ps(_mm256_mul_ps(t.ea[h], cs[h]), _mm256_add_ps(t.a[h], us[h])));
      _mm256_storeu_ps(g1 + 2 * ow + 8 * h, _mm256_mul_ps(_mm256_mul_ps(t.eb[h], cs[h]), _mm256_add_ps(t.b[h], us[h])));
    }
  }
  return ow;
}
#endif

template <int R, int KW, bool Soft, typename T>
void weighted_forward_tiled(const T* xp, const T* lp, T* yp, const PoolGeometry& g) {
  const auto& W = g.dim[2];
  const int64_t rows = row_count(g);  // (n, c, d, oh); kd = 1, so D.in = D.out
  at::parallel_for(0, rows, tile_grain(g, R * KW), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* xr[R];
      const T* lr[R];
      for (int r = 0; r < R; ++r) {
        xr[r] = xp + x0 + r * W.in;
        lr[r] = lp + x0 + r * W.in;
      }
      T* __restrict y = yp + row * W.out;
      int64_t ow = 0;
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
      if constexpr (Soft && R == 2 && KW == 2 && std::is_same<T, float>::value) {
        ow = soft_row_2x2_avx2(xr[0], xr[1], y, W.out);
      }
#endif
      for (; ow < W.out; ++ow) {
        TileWindow<R, KW, Soft, T> w;
        w.load(xr, lr, ow);
        y[ow] = w.S != 0 ? w.P / w.S : T(0);  // S = 0 only for an empty window; NaN propagates
      }
    }
  });
}

// Backward of one input row of tiled windows, given each window's maximum m and
// c = go / S: e = exp(l − m), then ∂x = e·c and ∂l = e·c·(x − y) — or for SoftPool
// (gl null, l = x) their sum. Separate restrict-qualified rows, so the loop vectorises.
template <int KW, typename T>
void weighted_grad_row(const T* __restrict x, const T* __restrict l, const T* __restrict m, const T* __restrict c,
                       const T* __restrict y, T* __restrict gx, T* __restrict gl, bool soft, int64_t n) {
  if (soft) {
    for (int64_t ow = 0; ow < n; ++ow) {
      for (int j = 0; j < KW; ++j) {
        const T a = x[ow * KW + j];
        gx[ow * KW + j] = exp_nonpositive(a - m[ow]) * c[ow] * (1 + a - y[ow]);
      }
    }
    return;
  }
  if (gl == nullptr) {  // only the input needs a gradient
    for (int64_t ow = 0; ow < n; ++ow) {
      for (int j = 0; j < KW; ++j) gx[ow * KW + j] = exp_nonpositive(l[ow * KW + j] - m[ow]) * c[ow];
    }
    return;
  }
  if (gx == nullptr) {  // only the logits
    for (int64_t ow = 0; ow < n; ++ow) {
      for (int j = 0; j < KW; ++j) {
        gl[ow * KW + j] = exp_nonpositive(l[ow * KW + j] - m[ow]) * c[ow] * (x[ow * KW + j] - y[ow]);
      }
    }
    return;
  }
  for (int64_t ow = 0; ow < n; ++ow) {
    for (int j = 0; j < KW; ++j) {
      const T gw = exp_nonpositive(l[ow * KW + j] - m[ow]) * c[ow];
      gx[ow * KW + j] = gw;
      gl[ow * KW + j] = gw * (x[ow * KW + j] - y[ow]);
    }
  }
}

// Backward of tiled windows: every gradient element written once. SoftPool: gx only;
// LIP: gx and/or gl (null: not wanted).
template <int R, int KW, typename T>
void weighted_backward_tiled(const T* go, const T* xp, const T* lp, const T* yp, T* gxp, T* glp, bool soft,
                             const PoolGeometry& g) {
  const auto& W = g.dim[2];
  const int64_t rows = row_count(g);  // (n, c, d, oh); kd = 1, so D.in = D.out
  at::parallel_for(0, rows, tile_grain(g, R * KW), [&](int64_t b, int64_t e) {
    const int64_t w_out = W.out;
    std::vector<T> m(w_out), c(w_out);
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* xr[R];
      const T* lr[R];
      for (int r = 0; r < R; ++r) {
        xr[r] = xp + x0 + r * W.in;
        lr[r] = lp + x0 + r * W.in;
      }
      const T* __restrict gor = go + row * w_out;
      T* __restrict mr = m.data();
      T* __restrict cr = c.data();
      int64_t o0 = 0;  // outputs before o0 are done
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
      if constexpr (R == 2 && KW == 2 && std::is_same<T, float>::value) {
        if (soft && gxp != nullptr) {
          o0 = soft_grad_2x2_avx2(xr[0], xr[1], gor, yp + row * w_out, gxp + x0, gxp + x0 + W.in, w_out);
        }
      }
#endif
      for (int64_t ow = o0; ow < w_out; ++ow) {
        TileWindow<R, KW, false, T> w;
        w.load(xr, lr, ow);
        mr[ow] = w.m;
        cr[ow] = w.S != 0 ? gor[ow] / w.S : T(0);
      }
      for (int r = 0; r < R; ++r) {
        const int64_t at = x0 + r * W.in + o0 * KW;
        weighted_grad_row<KW>(xp + at, lp + at, mr + o0, cr + o0, yp + row * w_out + o0, gxp ? gxp + at : nullptr,
                              glp ? glp + at : nullptr, soft, w_out - o0);
      }
    }
  });
}

template <typename T>
void weighted_forward_t(const at::Tensor& x, const at::Tensor& logits, at::Tensor& y, const PoolGeometry& g) {
  const T* xp = x.data_ptr<T>();
  const T* lp = logits.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  const auto& W = g.dim[2];
  if (with_tile(tile_of(g), [&](auto r, auto kw) {
        if (xp == lp) {
          weighted_forward_tiled<r.value, kw.value, true>(xp, lp, yp, g);
        } else {
          weighted_forward_tiled<r.value, kw.value, false>(xp, lp, yp, g);
        }
      })) {
    return;
  }
  at::parallel_for(0, row_count(g), row_grain(g), [&](int64_t b, int64_t e) {
    WeightedScratch<T> sc;
    size_scratch(sc, W.out);
    for_rows(g, b, e, [&](const std::vector<int64_t>& rows, int64_t o0) {
      weighted_row(xp, lp, rows, W, sc);
      for (int64_t ow = 0; ow < W.out; ++ow) yp[o0 + ow] = sc.S[ow] != 0 ? sc.P[ow] / sc.S[ow] : T(0);
    });
  });
}

template <typename T>
void weighted_backward_t(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& logits,
                         const at::Tensor& y, at::Tensor& gx_in, at::Tensor& gl_in, bool soft, const PoolGeometry& g) {
  const T* go = grad_out.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  const T* lp = logits.data_ptr<T>();
  const T* yp = y.data_ptr<T>();
  const auto& W = g.dim[2];
  const Tile tile = tile_of(g);
  if (tile != Tile::None) {
    if (!tiles_cover(g)) {  // the elements outside every window get 0
      if (gx_in.defined()) gx_in.zero_();
      if (gl_in.defined()) gl_in.zero_();
    }
    T* gxp = gx_in.defined() ? gx_in.data_ptr<T>() : nullptr;
    T* glp = gl_in.defined() ? gl_in.data_ptr<T>() : nullptr;
    with_tile(tile, [&](auto r, auto kw) {
      weighted_backward_tiled<r.value, kw.value>(go, xp, lp, yp, gxp, glp, soft, g);
    });
    return;
  }
  // The general path computes both of LIP's gradients: scratch for one not wanted.
  at::Tensor gx = gx_in.defined() ? gx_in : at::empty_like(x);
  at::Tensor gl = soft || gl_in.defined() ? gl_in : at::empty_like(x);
  T* gxp = gx.data_ptr<T>();
  T* glp = soft ? nullptr : gl.data_ptr<T>();  // SoftPool: both terms into gx
  const Phases ph(W);
  const int64_t plane_in = g.dim[0].in * g.dim[1].in * W.in;
  const int64_t stride = W.s * ph.len;
  const int64_t rows_per_plane = g.dim[0].out * g.dim[1].out;
  // Planes are independent (windows never cross them): one task per plane, so the sums
  // into overlapping windows' inputs are taken in the same order for any thread count.
  at::parallel_for(0, g.N * g.C, 1, [&](int64_t pb, int64_t pe) {
    // The gradients arrive uninitialised: each task zeroes its planes while they are
    // cache-sized, just before adding into them.
    std::fill(gxp + pb * plane_in, gxp + pe * plane_in, T(0));
    if (glp) std::fill(glp + pb * plane_in, glp + pe * plane_in, T(0));
    WeightedScratch<T> sc;
    size_scratch(sc, W.out);
    sc.keep_e = true;
    for_rows(g, pb * rows_per_plane, pe * rows_per_plane, [&](const std::vector<int64_t>& rows, int64_t o0) {
      sc.kept_e.resize(rows.size() * W.k * W.out);
      weighted_row(xp, lp, rows, W, sc);
      T* __restrict c = sc.c.data();
      for (int64_t ow = 0; ow < W.out; ++ow) c[ow] = sc.S[ow] != 0 ? go[o0 + ow] / sc.S[ow] : T(0);
      const T* __restrict yr = yp + o0;
      const int64_t R = static_cast<int64_t>(rows.size());
      sc.gxb.assign(R * stride, T(0));
      if (glp) sc.glb.assign(R * stride, T(0));
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t j = 0; j < W.k; ++j) {
          const Range o = tap_outputs(W, j);
          const int64_t at = r * stride + ph.phase(W, j) * ph.len + ph.shift(W, j);
          const T* __restrict xq = sc.xb.data() + at;
          const T* __restrict eq = sc.kept_e.data() + (r * W.k + j) * W.out;  // the forward pass's exps
          T* __restrict gxq = sc.gxb.data() + at;
          T* __restrict glq = sc.glb.data() + at;
          if (glp) {
            for (int64_t ow = o.start; ow < o.end; ++ow) {
              const T w = eq[ow] * c[ow];  // go · e_i / S
              gxq[ow] += w;
              glq[ow] += w * (xq[ow] - yr[ow]);
            }
          } else {
            for (int64_t ow = o.start; ow < o.end; ++ow) gxq[ow] += eq[ow] * c[ow] * (1 + xq[ow] - yr[ow]);
          }
        }
        // Phases back to the row.
        T* __restrict gxr = gxp + rows[r];
        for (int64_t q = 0; q < W.s; ++q) {
          const T* __restrict a = sc.gxb.data() + r * stride + q * ph.len;
          for (int64_t i = 0; q + i * W.s < W.in; ++i) gxr[q + i * W.s] += a[i];
        }
        if (glp) {
          T* __restrict glr = glp + rows[r];
          for (int64_t q = 0; q < W.s; ++q) {
            const T* __restrict b = sc.glb.data() + r * stride + q * ph.len;
            for (int64_t i = 0; q + i * W.s < W.in; ++i) glr[q + i * W.s] += b[i];
          }
        }
      }
    });
  });
}

// ------------------------------------------------------------------ stochastic
// u ∈ [0, 1) for output o: SplitMix64 of (seed, o), a counter-based draw, so every
// thread computes its own outputs' draws and the result does not depend on the split.
template <typename T>
inline T uniform_at(uint64_t seed, uint64_t o) {
  uint64_t z = seed + (o + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  if (sizeof(T) == 4) return static_cast<T>(static_cast<float>(z >> 40) * (1.0f / 16777216.0f));
  return static_cast<T>(static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0));
}

// Picks of the tiled windows [s0, s0 + n) of a row (n <= 16; xr: the row's R input rows;
// o0: output s0's flat index, for the draws): in each window the first positive element
// whose running sum passes u·Σa, or, if rounding leaves none, the last positive one.
// Writes its tap t = r·KW + col (-1 for a zero-sum window) and its value (0 there), and
// flags negative or NaN values in `seen`. The draws come first (scalar 64-bit hashing),
// then one branch-free loop over the windows that vectorises: random data would defeat a
// branch predictor. Forward and backward both call it, so the backward finds the forward's
// picks from x and the seed, nothing stored. Sums over rows then columns, like the general
// path below, so both pick the same.
// Integer lanes as wide as T's: the masks of tile_picks.
template <typename T>
using LaneInt = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

// Picks of the tiled windows [s0, s0 + n) of a row (n <= 16; xr: the row's R input rows;
// o0: output s0's flat index, for the draws): in each window the first positive element
// whose running sum passes u·Σa, or, if rounding leaves none, the last positive one.
// Writes its tap t = r·KW + col (-1 for a zero-sum window) and its value (0 there), and
// flags negative or NaN values in `seen`. Forward and backward both call it, so the
// backward finds the forward's picks from x and the seed, nothing stored. Sums over rows
// then columns, like the general path below, so both pick the same.
// For speed: random data defeats a branch predictor, so the loop over the windows must
// vectorise; GCC does that only with the windows' taps copied tap-major (unit stride),
// the draws computed beforehand, and the conditions kept as integer masks (0 or -1) of
// the floats' lane width, not bools.
template <int R, int KW, typename T>
inline void tile_picks(const T* const (&xr)[R], int64_t s0, int64_t n, uint64_t seed, uint64_t o0,
                       LaneInt<T>* __restrict tap, T* __restrict value, int& seen) {
  using I = LaneInt<T>;
  constexpr int taps = R * KW;
  T a[taps * 16], u[16];
  for (int t = 0; t < taps; ++t) {
    for (int64_t i = 0; i < n; ++i) a[t * 16 + i] = xr[t / KW][(s0 + i) * KW + t % KW];
  }
  for (int64_t i = 0; i < n; ++i) u[i] = uniform_at<T>(seed, o0 + i);
  I bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    T sum = 0;
    for (int t = 0; t < taps; ++t) {
      sum += a[t * 16 + i];
      bad |= -I(!(a[t * 16 + i] >= 0));
    }
    const T target = u[i] * sum;
    T run = 0, pick_v = 0, last_v = 0;
    I pick = -1, last = -1;
    for (int t = 0; t < taps; ++t) {
      const T v = a[t * 16 + i];
      run += v;
      const I positive = -I(v > 0);
      const I take = (pick >> (8 * sizeof(I) - 1)) & positive & -I(run > target);  // pick < 0: none yet
      pick_v = take ? v : pick_v;
      pick = (take & t) | (~take & pick);
      last_v = positive ? v : last_v;
      last = (positive & t) | (~positive & last);
    }
    const I live = -I(sum > 0), picked = ~(pick >> (8 * sizeof(I) - 1));
    const T v = picked ? pick_v : last_v;
    value[i] = live ? v : T(0);
    tap[i] = (live & ((picked & pick) | (~picked & last))) | ~live;
  }
  seen |= bad != 0;
}

// Visits a tiled output row in chunks of 16 outputs, the last one moved back to end at
// w_out (recomputing a few outputs, same values): full vectors, no scalar remainder on
// short rows. fn(s0, n).
template <typename Fn>
inline void for_chunks16(int64_t w_out, Fn&& fn) {
  for (int64_t c0 = 0; c0 < w_out; c0 += 16) {
    const int64_t s0 = w_out >= 16 ? std::min<int64_t>(c0, w_out - 16) : c0;
    fn(s0, std::min<int64_t>(16, w_out - s0));
  }
}

// Tiled windows (see tile_of), the window in registers. Training writes indices only when
// ip is non-null (asked for); evaluation gives Σa²/Σa.
template <int R, int KW, typename T>
bool stochastic_forward_tiled(const T* xp, bool training, uint64_t seed, T* yp, int64_t* ip, const PoolGeometry& g) {
  const auto& W = g.dim[2];
  std::atomic<bool> bad{false};  // a negative or NaN activation seen
  at::parallel_for(0, row_count(g), tile_grain(g, R * KW), [&](int64_t b, int64_t e) {
    // A local copy: read through the closure, the int64 index stores could alias it.
    const int64_t w_out = W.out, w_in = W.in;
    int seen = 0;
    LaneInt<T> tap[16];
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = xp + x0 + r * w_in;
      T* __restrict y = yp + row * w_out;
      if (!training) {  // Σa² / Σa
        for (int64_t ow = 0; ow < w_out; ++ow) {
          T s1 = 0, s2 = 0;
          for (int r = 0; r < R; ++r) {
            for (int j = 0; j < KW; ++j) {
              const T a = xr[r][ow * KW + j];
              s1 += a;
              s2 += a * a;
              seen |= !(a >= 0);
            }
          }
          y[ow] = s1 > 0 ? s2 / s1 : T(0);
        }
        continue;
      }
      const int64_t rel0 = x0 % g.plane_in();  // the window rows' start inside the (n, c) volume
      for_chunks16(w_out, [&](int64_t s0, int64_t n) {
        tile_picks<R, KW>(xr, s0, n, seed, static_cast<uint64_t>(row * w_out + s0), tap, y + s0, seen);
        if (ip == nullptr) return;
        int64_t* __restrict idx = ip + row * w_out + s0;
        for (int64_t i = 0; i < n; ++i) {  // a zero-sum window: its first element
          const int64_t t = tap[i] < 0 ? 0 : tap[i];
          idx[i] = rel0 + (t / KW) * w_in + (s0 + i) * KW + t % KW;
        }
      });
    }
    if (seen) bad.store(true, std::memory_order_relaxed);
  });
  return !bad.load();
}

// The general path's picks for one output row (rows: its windows' input rows, absolute;
// o0: its first output's flat index; plane_base: the (n, c) volume's offset), into
// pick[ow] as a position in the volume, -1 for a zero-sum window. Σa per window by taps,
// then one pass in scan order (rows, then taps) with a running sum per window: the pick
// is the first element with a > 0 whose running sum passes u·Σa (so a zero is never
// picked; if rounding leaves none, the last positive element). Every step is a select
// across the row's windows.
template <typename T>
struct StochasticRow {
  std::vector<T> sum, run, target;
  std::vector<int32_t> pick, last;  // 32-bit positions: they share vector lanes with the floats
  explicit StochasticRow(int64_t n) : sum(n), run(n), target(n), pick(n), last(n) {}

  void pick_row(const T* xp, const std::vector<int64_t>& rows, int64_t o0, int64_t plane_base, const WindowDim& W,
                uint64_t seed) {
    std::fill(sum.begin(), sum.end(), T(0));
    for (int64_t row : rows) {
      const T* __restrict xr = xp + row;
      for (int64_t j = 0; j < W.k; ++j) {
        const Range o = tap_outputs(W, j);
        for (int64_t ow = o.start; ow < o.end; ++ow) sum[ow] += xr[ow * W.s + j - W.p];
      }
    }
    for (int64_t ow = 0; ow < W.out; ++ow) {
      target[ow] = uniform_at<T>(seed, static_cast<uint64_t>(o0 + ow)) * sum[ow];
      run[ow] = 0;
      pick[ow] = std::numeric_limits<int32_t>::max();
      last[ow] = -1;
    }
    for (int64_t row : rows) {
      const T* __restrict xr = xp + row;
      const int32_t rel = static_cast<int32_t>(row - plane_base);
      T* __restrict rn = run.data();
      int32_t* __restrict pk = pick.data();
      int32_t* __restrict ls = last.data();
      const T* __restrict tg = target.data();
      for (int64_t j = 0; j < W.k; ++j) {
        const Range o = tap_outputs(W, j);
        const int64_t off = j - W.p;
        // Positions grow in scan order and the running sum never falls, so "the first
        // position past the target" is the smallest one that is: a min, no dependence.
        // Conditions as 0 / −1 masks combined with &, not &&: no branch on random data.
        for (int64_t ow = o.start; ow < o.end; ++ow) {
          const T v = xr[ow * W.s + off];
          const int32_t pos = rel + static_cast<int32_t>(ow * W.s + off);
          rn[ow] += v;
          const int32_t positive = -int32_t(v > 0);
          const int32_t take = positive & -int32_t(rn[ow] > tg[ow]) & -int32_t(pos < pk[ow]);
          ls[ow] = (positive & pos) | (~positive & ls[ow]);
          pk[ow] = (take & pos) | (~take & pk[ow]);
        }
      }
    }
    for (int64_t ow = 0; ow < W.out; ++ow) {
      pick[ow] = !(sum[ow] > 0) ? -1 : (pick[ow] != std::numeric_limits<int32_t>::max() ? pick[ow] : last[ow]);
    }
  }
};

template <typename T>
bool stochastic_forward_t(const at::Tensor& x, bool training, uint64_t seed, at::Tensor& y, at::Tensor* idx,
                          const PoolGeometry& g) {
  const T* xp = x.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  int64_t* ip = idx ? idx->data_ptr<int64_t>() : nullptr;
  bool ok = true;
  if (with_tile(tile_of(g), [&](auto r, auto kw) {
        ok = stochastic_forward_tiled<r.value, kw.value>(xp, training, seed, yp, ip, g);
      })) {
    return ok;
  }
  // Negative (or NaN) activations: one pass first here (the tiled path checks as it reads).
  bool seen = false;
  for (int64_t j = 0, n = x.numel(); j < n; ++j) seen |= !(xp[j] >= 0);
  if (seen) return false;
  const auto& W = g.dim[2];
  const int64_t plane_in = g.dim[0].in * g.dim[1].in * W.in;
  if (!training) {  // Σa² / Σa, by taps like SoftPool
    at::parallel_for(0, row_count(g), row_grain(g), [&](int64_t b, int64_t e) {
      std::vector<T> s1(W.out), s2(W.out);
      for_rows(g, b, e, [&](const std::vector<int64_t>& rows, int64_t o0) {
        std::fill(s1.begin(), s1.end(), T(0));
        std::fill(s2.begin(), s2.end(), T(0));
        for (int64_t row : rows) {
          const T* __restrict xr = xp + row;
          for (int64_t j = 0; j < W.k; ++j) {
            const Range o = tap_outputs(W, j);
            for (int64_t ow = o.start; ow < o.end; ++ow) {
              const T v = xr[ow * W.s + j - W.p];
              s1[ow] += v;
              s2[ow] += v * v;
            }
          }
        }
        for (int64_t ow = 0; ow < W.out; ++ow) yp[o0 + ow] = s1[ow] > 0 ? s2[ow] / s1[ow] : T(0);
      });
    });
    return true;
  }
  at::parallel_for(0, row_count(g), row_grain(g), [&](int64_t b, int64_t e) {
    StochasticRow<T> s(W.out);
    for_rows(g, b, e, [&](const std::vector<int64_t>& rows, int64_t o0) {
      const int64_t plane_base = rows.empty() ? 0 : (rows[0] / plane_in) * plane_in;
      s.pick_row(xp, rows, o0, plane_base, W, seed);
      for (int64_t ow = 0; ow < W.out; ++ow) {
        const int64_t q = s.pick[ow];
        yp[o0 + ow] = q >= 0 ? xp[plane_base + q] : T(0);
        if (ip == nullptr) continue;
        const Range rw = clip(W, ow);  // a zero-sum window: its first element's index (none if empty)
        ip[o0 + ow] = q >= 0 ? q : (rows.empty() || rw.start >= rw.end ? -1 : rows[0] - plane_base + rw.start);
      }
    });
  });
  return true;
}

template <int R, int KW, typename T>
void stochastic_train_backward_tiled(const T* go, const T* xp, uint64_t seed, T* gp, const PoolGeometry& g) {
  const auto& W = g.dim[2];
  at::parallel_for(0, row_count(g), tile_grain(g, R * KW), [&](int64_t b, int64_t e) {
    const int64_t w_out = W.out, w_in = W.in;
    int seen = 0;  // checked by the forward
    LaneInt<T> tap[16];
    T value[16];
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = xp + x0 + r * w_in;
      const T* __restrict gor = go + row * w_out;
      for_chunks16(w_out, [&](int64_t s0, int64_t n) {
        tile_picks<R, KW>(xr, s0, n, seed, static_cast<uint64_t>(row * w_out + s0), tap, value, seen);
        for (int r = 0; r < R; ++r) {
          T* __restrict gr = gp + x0 + r * w_in + s0 * KW;
          for (int64_t i = 0; i < n; ++i) {
#pragma GCC unroll 3
            for (int j = 0; j < KW; ++j) gr[i * KW + j] = tap[i] == r * KW + j ? gor[s0 + i] : T(0);
          }
        }
      });
    }
  });
}

template <typename T>
void stochastic_train_backward_t(const at::Tensor& grad_out, const at::Tensor& x, uint64_t seed, at::Tensor& gx,
                                 const PoolGeometry& g) {
  const T* go = grad_out.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  T* gp = gx.data_ptr<T>();
  const Tile tile = tile_of(g);
  if (tile != Tile::None) {
    if (!tiles_cover(g)) gx.zero_();
    with_tile(tile, [&](auto r, auto kw) { stochastic_train_backward_tiled<r.value, kw.value>(go, xp, seed, gp, g); });
    return;
  }
  // Overlapping windows may pick the same element: sums per (n, c) volume in output
  // order, so the result does not depend on the thread count.
  const auto& W = g.dim[2];
  const int64_t pin = g.plane_in(), rows_per_plane = g.dim[0].out * g.dim[1].out;
  at::parallel_for(0, g.N * g.C, 1, [&](int64_t pb, int64_t pe) {
    std::fill(gp + pb * pin, gp + pe * pin, T(0));
    StochasticRow<T> s(W.out);
    for_rows(g, pb * rows_per_plane, pe * rows_per_plane, [&](const std::vector<int64_t>& rows, int64_t o0) {
      if (rows.empty()) return;
      const int64_t plane_base = (rows[0] / pin) * pin;
      s.pick_row(xp, rows, o0, plane_base, W, seed);
      for (int64_t ow = 0; ow < W.out; ++ow) {
        if (s.pick[ow] >= 0) gp[plane_base + s.pick[ow]] += go[o0 + ow];
      }
    });
  });
}

template <typename T>
void stochastic_eval_backward_t(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& y,
                                at::Tensor& gx, const PoolGeometry& g) {
  const T* go = grad_out.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  const T* yp = y.data_ptr<T>();
  T* gp = gx.data_ptr<T>();
  const auto& W = g.dim[2];
  const int64_t rows_per_plane = g.dim[0].out * g.dim[1].out;
  at::parallel_for(0, g.N * g.C, 1, [&](int64_t pb, int64_t pe) {
    std::vector<T> s1(W.out), c(W.out);
    for_rows(g, pb * rows_per_plane, pe * rows_per_plane, [&](const std::vector<int64_t>& rows, int64_t o0) {
      std::fill(s1.begin(), s1.end(), T(0));
      for (int64_t row : rows) {
        for (int64_t j = 0; j < W.k; ++j) {
          const Range o = tap_outputs(W, j);
          for (int64_t ow = o.start; ow < o.end; ++ow) s1[ow] += xp[row + ow * W.s + j - W.p];
        }
      }
      // ∂(Σa²/Σa)/∂a_i = (2a_i − y)/Σa; a zero-sum window passes no gradient.
      for (int64_t ow = 0; ow < W.out; ++ow) c[ow] = s1[ow] > 0 ? go[o0 + ow] / s1[ow] : T(0);
      for (int64_t row : rows) {
        for (int64_t j = 0; j < W.k; ++j) {
          const Range o = tap_outputs(W, j);
          for (int64_t ow = o.start; ow < o.end; ++ow) {
            const int64_t i = row + ow * W.s + j - W.p;
            gp[i] += c[ow] * (2 * xp[i] - yp[o0 + ow]);
          }
        }
      }
    });
  });
}

// ------------------------------------------------------------------ mixed pooling
// Tiled windows only (the composition of max and average pooling covers the rest):
// y = a·max + (1 − a)·mean. a = alpha[0], alpha[c] or alpha[output] (mode 0, 1, 2).
// The row's α, one per output: alpha's own row (mode 2) or `scratch` filled with the one
// value (mode 0) or the row's channel's (mode 1) — read unconditionally, so loops vectorise.
template <typename T>
const T* mixed_alpha_row(const T* alpha, int mode, int64_t row, int64_t w_out, int64_t planes_per_c, int64_t C,
                         int64_t h_out, std::vector<T>& scratch) {
  if (mode == 2) return alpha + row * w_out;
  std::fill(scratch.begin(), scratch.end(), mode == 0 ? alpha[0] : alpha[(row / h_out / planes_per_c) % C]);
  return scratch.data();
}

// The window's maximum (NaN wins; ties and NaNs as max pooling: the last NaN, else the
// first largest), its position and its sum.
template <int N, typename T>
inline void window_max_sum(const T (&v)[N], T& m, int& am, T& sum) {
  m = v[0];
  am = 0;
  sum = v[0];
#pragma GCC unroll 16
  for (int t = 1; t < N; ++t) {
    const bool take = v[t] > m || v[t] != v[t];
    m = take ? v[t] : m;
    am = take ? t : am;
    sum += v[t];
  }
}

template <int R, int KW, typename T>
void mixed_forward_tiled(const T* xp, const T* ap, int mode, T* yp, const PoolGeometry& g) {
  constexpr int n = R * KW;
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  const int64_t D = g.dim[0].out, C = g.C;
  at::parallel_for(0, row_count(g), tile_grain(g, n), [&](int64_t b, int64_t e) {
    const int64_t w_out = W.out, h_out = H.out;
    std::vector<T> alpha_row(w_out);
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = xp + x0 + r * W.in;
      T* __restrict y = yp + row * w_out;
      const T* __restrict arow = mixed_alpha_row(ap, mode, row, w_out, D, C, h_out, alpha_row);
      for (int64_t ow = 0; ow < w_out; ++ow) {
        T v[n];
#pragma GCC unroll 16
        for (int t = 0; t < n; ++t) v[t] = xr[t / KW][ow * KW + t % KW];
        T m, sum;
        int am;
        window_max_sum(v, m, am, sum);
        const T a = arow[ow];
        y[ow] = a * m + (1 - a) * (sum / T(n));
      }
    }
  });
}

// One input row r of tiled windows: g = spread + peak where the window's argmax is.
template <int KW, typename T>
void mixed_grad_row(const T* __restrict spread, const T* __restrict peak, const int32_t* __restrict am, int r,
                    T* __restrict g, int64_t n) {
  for (int64_t ow = 0; ow < n; ++ow) {
#pragma GCC unroll 16
    for (int j = 0; j < KW; ++j) g[ow * KW + j] = spread[ow] + (am[ow] == r * KW + j ? peak[ow] : T(0));
  }
}

// gx (if defined) = go·(a·[t = argmax] + (1 − a)/n), each element written once; gsum (if
// defined, one per output row) = Σ go·(max − mean) along the row, in order.
// Per output of one row of tiled windows (rows `stride` apart from x): the terms of the
// backward. Restrict-qualified parameters, so the loop vectorises.
template <int R, int KW, typename T>
void mixed_terms_row(const T* __restrict x, int64_t stride, const T* __restrict go, const T* __restrict alpha,
                     T* __restrict spread, T* __restrict peak, int32_t* __restrict argmax, T* __restrict diff,
                     int64_t n_out) {
  constexpr int n = R * KW;
  for (int64_t ow = 0; ow < n_out; ++ow) {
    T v[n];
#pragma GCC unroll 16
    for (int t = 0; t < n; ++t) v[t] = x[(t / KW) * stride + ow * KW + t % KW];
    T m, sum;
    int am;
    window_max_sum(v, m, am, sum);
    diff[ow] = go[ow] * (m - sum / T(n));
    spread[ow] = go[ow] * (1 - alpha[ow]) / T(n);
    peak[ow] = go[ow] * alpha[ow];
    argmax[ow] = am;
  }
}

// gx (if defined) = go·(a·[t = argmax] + (1 − a)/n), each element written once; gsum (if
// defined, one per output row) = Σ go·(max − mean) along the row, in order.
template <int R, int KW, typename T>
void mixed_backward_tiled(const T* go, const T* xp, const T* ap, int mode, T* gxp, T* gsum, const PoolGeometry& g) {
  const auto& H = g.dim[1];
  const auto& W = g.dim[2];
  const int64_t D = g.dim[0].out, C = g.C;
  at::parallel_for(0, row_count(g), tile_grain(g, R * KW), [&](int64_t b, int64_t e) {
    const int64_t w_out = W.out, h_out = H.out;
    std::vector<T> spread(w_out), peak(w_out), diff(w_out), alpha_row(w_out);
    std::vector<int32_t> argmax(w_out);
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* arow = mixed_alpha_row(ap, mode, row, w_out, D, C, h_out, alpha_row);
      mixed_terms_row<R, KW>(xp + x0, W.in, go + row * w_out, arow, spread.data(), peak.data(), argmax.data(),
                             diff.data(), w_out);
      if (gsum) {  // summed in order here: a sum in the loop above would keep it scalar
        T acc = 0;
        for (int64_t ow = 0; ow < w_out; ++ow) acc += diff[ow];
        gsum[row] = acc;
      }
      if (gxp) {
        for (int r = 0; r < R; ++r) {
          mixed_grad_row<KW>(spread.data(), peak.data(), argmax.data(), r, gxp + x0 + r * W.in, w_out);
        }
      }
    }
  });
}

template <typename T>
void mixed_forward_t(const at::Tensor& x, const at::Tensor& alpha, int mode, at::Tensor& y, const PoolGeometry& g) {
  const bool tiled = with_tile(tile_of(g), [&](auto r, auto kw) {
    mixed_forward_tiled<r.value, kw.value>(x.data_ptr<T>(), alpha.data_ptr<T>(), mode, y.data_ptr<T>(), g);
  });
  TORCH_CHECK(tiled, "mixed_pool_tiled: the windows do not tile the input (kernel = stride, no padding)");
}

template <typename T>
void mixed_backward_t(const at::Tensor& go, const at::Tensor& x, const at::Tensor& alpha, int mode, at::Tensor& gx,
                      at::Tensor& gsum, const PoolGeometry& g) {
  const Tile tile = tile_of(g);
  TORCH_CHECK(tile != Tile::None, "mixed_pool_tiled_backward: the windows do not tile the input");
  if (gx.defined() && !tiles_cover(g)) gx.zero_();
  with_tile(tile, [&](auto r, auto kw) {
    mixed_backward_tiled<r.value, kw.value>(go.data_ptr<T>(), x.data_ptr<T>(), alpha.data_ptr<T>(), mode,
                                            gx.defined() ? gx.data_ptr<T>() : nullptr,
                                            gsum.defined() ? gsum.data_ptr<T>() : nullptr, g);
  });
}

// ------------------------------------------------------------------ GeM (global)
#if defined(__AVX512F__)
// Σ z^p and Σ z^p·ln z over n values (n a multiple of 16), z = max(x, eps), into 16 lanes,
// with AVX-512's exponent/mantissa split for ln z (Cephes' polynomial on the mantissa, as
// log_positive) and e^w as Cephes' polynomial scaled by 2^n with vscalefps, which
// saturates to +inf / 0 by itself: a third fewer instructions than the portable loop.
// Returns false when a value is NaN (max_ps would hide it) or +inf (ln and e^w of inf
// meet inf − inf); the caller then redoes the block with the portable loop.
inline bool gem_block_avx512(const float* x, int64_t n, float p, float eps, float* ls, float* lt) {
  const __m512 vp = _mm512_set1_ps(p), ve = _mm512_set1_ps(eps), one = _mm512_set1_ps(1.0f);
  __m512 s = _mm512_setzero_ps(), t = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) |
           _mm512_cmp_ps_mask(v, _mm512_set1_ps(std::numeric_limits<float>::infinity()), _CMP_EQ_OQ);
    const __m512 z = _mm512_max_ps(v, ve);
    __m512 e = _mm512_getexp_ps(z);
    __m512 m = _mm512_getmant_ps(z, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);  // [1, 2)
    const __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356237f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, big, e, one);
    const __m512 f = _mm512_sub_ps(m, one), f2 = _mm512_mul_ps(f, f);
    __m512 y = _mm512_set1_ps(7.0376836292e-2f);
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.1514610310e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.1676998740e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.2420140846e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.4249322787e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.6668057665e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(2.0000714765e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-2.4999993993e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(3.3333331174e-1f));
    y = _mm512_mul_ps(_mm512_mul_ps(y, f), f2);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fmadd_ps(f2, _mm512_set1_ps(-0.5f), y);
    const __m512 lz = _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), _mm512_add_ps(f, y));
    // e^w = 2^k · e^r, k = round(w·log2 e), r = w − k·ln 2 in two parts.
    const __m512 w = _mm512_mul_ps(vp, lz);
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(w, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), w);
    r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 q = _mm512_set1_ps(1.9875691500e-4f);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.3981999507e-3f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(8.3334519073e-3f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(4.1665795894e-2f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.6666665459e-1f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(5.0000001201e-1f));
    q = _mm512_fmadd_ps(_mm512_mul_ps(q, r), r, _mm512_add_ps(r, one));
    const __m512 zp = _mm512_scalef_ps(q, k);
    s = _mm512_add_ps(s, zp);
    t = _mm512_fmadd_ps(zp, lz, t);
  }
  _mm512_storeu_ps(ls, _mm512_add_ps(_mm512_loadu_ps(ls), s));
  _mm512_storeu_ps(lt, _mm512_add_ps(_mm512_loadu_ps(lt), t));
  return nan == 0;
}
#endif

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
// log2 z for a normal z > 0, 8 lanes. z = 2^e·m with m in [√½, √2) from one integer
// offset (no compare and blend), then log2 m = (2/ln 2)·atanh(r), r = (m − 1)/(m + 1),
// |r| ≤ 0.172: the odd series to r⁹ (the next term is below 1e-9 relative). Fewer
// instructions than Cephes' degree-9 polynomial in m − 1, and this loop is bound by
// their number.
inline __m256 log2_avx2(__m256 z) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256i off = _mm256_set1_epi32(0x3f3504f3);  // √½'s bits
  const __m256i b = _mm256_sub_epi32(_mm256_castps_si256(z), off);
  const __m256 e = _mm256_cvtepi32_ps(_mm256_srai_epi32(b, 23));
  const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)), off));
  const __m256 r = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 q = _mm256_set1_ps(0.32059889f);                   // 2/(9 ln 2)
  q = _mm256_fmadd_ps(q, r2, _mm256_set1_ps(0.41219858f));  // 2/(7 ln 2)
  q = _mm256_fmadd_ps(q, r2, _mm256_set1_ps(0.57707802f));  // 2/(5 ln 2)
  q = _mm256_fmadd_ps(q, r2, _mm256_set1_ps(0.96179669f));  // 2/(3 ln 2)
  q = _mm256_fmadd_ps(q, r2, _mm256_set1_ps(2.88539008f));  // 2/ln 2
  return _mm256_fmadd_ps(r, q, e);
}

// 2^w, 8 lanes: 0 below w = −125.5 (near where float's normal range ends), +inf from 128.
// k = round(w), f = w − k in [−½, ½]; 2^f by Cephes' exp2f polynomial, doubled, times
// 2^(k−1) built in the exponent bits (so that k = 128 still has a finite scale and
// w just below 128 stays finite).
inline __m256 exp2_avx2(__m256 w) {
  const __m256 c = _mm256_min_ps(_mm256_max_ps(w, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(128.0f));
  const __m256 k = _mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(c, k);
  const __m256 q = exp2_fraction_avx2<2>(f);
  const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(126)), 23);
  return _mm256_mul_ps(q, _mm256_castsi256_ps(scale));
}

// The AVX2 twin of gem_block_avx512 for n ≤ 256 values (n a multiple of 16): z^p as
// 2^(p·log2 z). Two passes, log2 z into a buffer and then the powers and sums: each pass's
// dependency chain is half as long, so the scheduler keeps more vectors in flight
// (1.1 against 1.3 ns per value in one loop; 2.6 for the portable loop). Returns false
// when a value is NaN or +inf, and the caller redoes the block with the portable loop.
inline bool gem_block_avx2(const float* x, int64_t n, float p, float eps, float* ls, float* lt) {
  const __m256 vp = _mm256_set1_ps(p), ve = _mm256_set1_ps(eps);
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  alignas(32) float l2z[256];
  __m256 bad = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, inf, _CMP_NLT_UQ));  // NaN or +inf
    _mm256_store_ps(l2z + i, log2_avx2(_mm256_max_ps(v, ve)));
  }
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, t0 = s0, t1 = s0;
  for (int64_t i = 0; i < n; i += 16) {
    const __m256 l0 = _mm256_load_ps(l2z + i), l1 = _mm256_load_ps(l2z + i + 8);
    const __m256 z0 = exp2_avx2(_mm256_mul_ps(vp, l0)), z1 = exp2_avx2(_mm256_mul_ps(vp, l1));
    s0 = _mm256_add_ps(s0, z0);
    s1 = _mm256_add_ps(s1, z1);
    t0 = _mm256_fmadd_ps(z0, l0, t0);
    t1 = _mm256_fmadd_ps(z1, l1, t1);
  }
  const __m256 ln2 = _mm256_set1_ps(0.693147180559945f);  // Σ z^p·ln z = ln 2 · Σ z^p·log2 z
  _mm256_storeu_ps(ls, _mm256_add_ps(_mm256_loadu_ps(ls), s0));
  _mm256_storeu_ps(ls + 8, _mm256_add_ps(_mm256_loadu_ps(ls + 8), s1));
  _mm256_storeu_ps(lt, _mm256_fmadd_ps(t0, ln2, _mm256_loadu_ps(lt)));
  _mm256_storeu_ps(lt + 8, _mm256_fmadd_ps(t1, ln2, _mm256_loadu_ps(lt + 8)));
  return _mm256_movemask_ps(bad) == 0;
}
#endif

// z^N for a whole N >= 0 by multiplication (unrolled at compile time).
template <int N, typename T>
inline T ipow(T z) {
  T r = 1;
  for (int q = 0; q < N; ++q) r *= z;
  return r;
}

// p as a whole number 1..4 (GeM's usual p = 3), else 0. z^p then comes by multiplication:
// a few roundings instead of e^(p·ln z)'s, and the forward and backward skip e^x.
inline int whole_p(double p) { return (p == std::round(p) && p >= 1 && p <= 4) ? static_cast<int>(p) : 0; }

// Calls fn(std::integral_constant<int, whole_p(p)>()).
template <typename Fn>
void with_whole_p(double p, Fn&& fn) {
  switch (whole_p(p)) {
    case 1: fn(std::integral_constant<int, 1>()); return;
    case 2: fn(std::integral_constant<int, 2>()); return;
    case 3: fn(std::integral_constant<int, 3>()); return;
    case 4: fn(std::integral_constant<int, 4>()); return;
    default: fn(std::integral_constant<int, 0>());
  }
}

// Rows of a (rows, L) tensor: z = max(x, eps), S = mean z^p, Tm = mean z^p·ln z, y = S^(1/p).
// Sums over blocks of 256 in vector lanes, the blocks added in double, in order.
// IP: p when it is a whole number 1..4 (see whole_p), else 0.
template <int IP, typename T>
void gem_forward_rows(const at::Tensor& x, double p, double eps, at::Tensor& y, at::Tensor& S, at::Tensor& Tm) {
  const T* xp = x.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  double* sp = S.data_ptr<double>();
  double* tp = Tm.data_ptr<double>();
  const int64_t rows = x.size(0), L = x.size(1);
  const T pt = static_cast<T>(p), et = static_cast<T>(eps);
  constexpr int kLanes = 16, kBlock = 256;
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, L)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* __restrict xr = xp + r * L;
      double s = 0, t = 0;
      for (int64_t i0 = 0; i0 < L; i0 += kBlock) {
        const int64_t len = std::min<int64_t>(kBlock, L - i0);
        T ls[kLanes] = {}, lt[kLanes] = {};
        int64_t i = 0;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
        if constexpr (std::is_same<T, float>::value && IP == 0) {
          const int64_t n16 = len / kLanes * kLanes;
#if defined(__AVX512F__)
          const bool done = gem_block_avx512(xr + i0, n16, pt, et, ls, lt);
#else
          const bool done = gem_block_avx2(xr + i0, n16, pt, et, ls, lt);
#endif
          if (done) {
            i = n16;
          } else {
            std::fill(ls, ls + kLanes, T(0));
            std::fill(lt, lt + kLanes, T(0));
          }
        }
#endif
        for (; i + kLanes <= len; i += kLanes) {
          for (int l = 0; l < kLanes; ++l) {  // the lanes: one vector
            const T v = xr[i0 + i + l];
            const T z = v < et ? et : v;  // NaN stays
            const T lz = log_positive(z);
            const T zp = IP > 0 ? ipow<IP>(z) : exp_any(pt * lz);
            ls[l] += zp;
            lt[l] += zp * lz;
          }
        }
        for (; i < len; ++i) {
          const T v = xr[i0 + i];
          const T z = v < et ? et : v;
          const T lz = log_positive(z);
          const T zp = IP > 0 ? ipow<IP>(z) : exp_any(pt * lz);
          ls[0] += zp;
          lt[0] += zp * lz;
        }
        for (int l = 0; l < kLanes; ++l) {
          s += ls[l];
          t += lt[l];
        }
      }
      sp[r] = s / double(L);
      tp[r] = t / double(L);
      yp[r] = static_cast<T>(std::pow(sp[r], 1.0 / p));
    }
  });
}

template <typename T>
void gem_forward_t(const at::Tensor& x, double p, double eps, at::Tensor& y, at::Tensor& S, at::Tensor& Tm) {
  with_whole_p(p, [&](auto whole) { gem_forward_rows<decltype(whole)::value, T>(x, p, eps, y, S, Tm); });
}

// gx = go·y·z^(p−1) / (L·S) where x ≥ eps (clamp's gradient), else 0.
template <typename T>
void gem_backward_t(const at::Tensor& go, const at::Tensor& x, double p, double eps, const at::Tensor& y,
                    const at::Tensor& S, at::Tensor& gx) {
  const T* gop = go.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  const T* yp = y.data_ptr<T>();
  const double* sp = S.data_ptr<double>();
  T* gp = gx.data_ptr<T>();
  const int64_t rows = x.size(0), L = x.size(1);
  const T pm1 = static_cast<T>(p - 1), et = static_cast<T>(eps);
  with_whole_p(p, [&](auto whole) {
    constexpr int IP = decltype(whole)::value;
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, L)), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T c = static_cast<T>(double(gop[r]) * double(yp[r]) / (double(L) * sp[r]));
        const T* __restrict xr = xp + r * L;
        T* __restrict gr = gp + r * L;
        for (int64_t i = 0; i < L; ++i) {
          const T v = xr[i];
          const T z = v < et ? et : v;
          const T d = c * (IP > 0 ? ipow<IP - 1>(z) : exp_any(pm1 * log_positive(z)));
          gr[i] = v >= et ? d : (v != v ? v : T(0));  // NaN passes as NaN, as in the composition
        }
      }
    });
  });
}

// ------------------------------------------------------------------ sort pooling
// "a before b" in descending order: larger first, NaN largest, ties by position.
template <typename T>
inline bool ranks_before(T va, int64_t pa, T vb, int64_t pb) {
  const bool na = va != va, nb = vb != vb;
  if (na || nb) return na && (!nb || pa < pb);
  return va > vb || (va == vb && pa < pb);
}

// Tiled windows (k = s, each a full R×KW block): every element's rank in its window,
// counted with branch-free comparisons against the others (NaN largest, ties to the
// earlier), for the row's windows: rk[t·w_out + ow] for element t = r·KW + col. Forward
// and backward both call it, so the backward needs nothing stored.
template <int R, int KW, typename T>
inline void tile_ranks(const T* const (&xr)[R], int64_t w_out, int32_t* __restrict rk) {
  constexpr int n = R * KW;
  for (int64_t ow = 0; ow < w_out; ++ow) {
    T v[n];
#pragma GCC unroll 16
    for (int t = 0; t < n; ++t) v[t] = xr[t / KW][ow * KW + t % KW];
#pragma GCC unroll 16
    for (int t = 0; t < n; ++t) {
      const bool nan_t = v[t] != v[t];
      int32_t c = 0;
#pragma GCC unroll 16
      for (int u = 0; u < n; ++u) {
        const bool nan_u = v[u] != v[u];
        // u before t: an earlier u on ties, NaN above every number.
        const bool before = u < t ? (nan_u | (!nan_t & (v[u] >= v[t]))) : ((nan_u & !nan_t) | (v[u] > v[t]));
        c += u != t && before;
      }
      rk[t * w_out + ow] = c;
    }
  }
}

// The value of rank j in each of the row's windows, by selects (no branch): val[ow].
template <int R, int KW, typename T>
inline void tile_rank_values(const T* const (&xr)[R], int64_t w_out, const int32_t* __restrict rk, int32_t j,
                             T* __restrict val) {
  constexpr int n = R * KW;
  for (int64_t ow = 0; ow < w_out; ++ow) {
    T v = 0;
#pragma GCC unroll 16
    for (int t = 0; t < n; ++t) {
      const T xt = xr[t / KW][ow * KW + t % KW];  // loaded unconditionally: a select, no branch
      v = rk[t * w_out + ow] == j ? xt : v;
    }
    val[ow] = v;
  }
}

// Ranks then, per kept rank j, y += w_j · (rank j's value). The same sums in the same
// order as the general path below.
template <int R, int KW, typename T>
void sort_forward_tiled(const T* xp, const T* wp, int64_t K, T* yp, const PoolGeometry& g) {
  const auto& W = g.dim[2];
  at::parallel_for(0, row_count(g), std::max<int64_t>(1, 4096 / (W.out * R * KW)), [&](int64_t b, int64_t e) {
    const int64_t w_out = W.out;
    // Ranks as 32-bit integers: the width of float's lanes, so the selects vectorise.
    std::vector<int32_t> rank(R * KW * w_out);
    std::vector<T> acc(w_out), val(w_out);
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = xp + x0 + r * W.in;
      tile_ranks<R, KW>(xr, w_out, rank.data());
      T* __restrict a = acc.data();
      std::fill(a, a + w_out, T(0));
      for (int64_t j = 0; j < K; ++j) {
        tile_rank_values<R, KW>(xr, w_out, rank.data(), static_cast<int32_t>(j), val.data());
        for (int64_t ow = 0; ow < w_out; ++ow) a[ow] += wp[j] * val[ow];
      }
      std::copy(a, a + w_out, yp + row * w_out);
    }
  });
}

// The positions (into x) of the top K of one full window (rows: its input rows, columns
// rw), best first, by insertion into a sorted list of K (windows are small; most elements
// lose to the current K-th after one comparison).
template <typename T>
void window_top_k(const T* xp, const std::vector<int64_t>& rows, Range rw, int64_t K, int64_t* pos) {
  auto before = [&](int64_t a, int64_t c) { return ranks_before(xp[a], a, xp[c], c); };
  int64_t top = 0;
  for (int64_t row : rows) {
    for (int64_t iw = rw.start; iw < rw.end; ++iw) {
      const int64_t q = row + iw;
      if (top == K && !before(q, pos[K - 1])) continue;
      int64_t j = top < K ? top++ : K - 1;
      for (; j > 0 && before(q, pos[j - 1]); --j) pos[j] = pos[j - 1];
      pos[j] = q;
    }
  }
}

template <typename T>
void sort_forward_t(const at::Tensor& x, const at::Tensor& weights, at::Tensor& y, const PoolGeometry& g) {
  const T* xp = x.data_ptr<T>();
  const T* wp = weights.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  const int64_t K = weights.numel();
  const auto& W = g.dim[2];
  if (with_tile(tile_of(g), [&](auto r, auto kw) { sort_forward_tiled<r.value, kw.value>(xp, wp, K, yp, g); })) {
    return;
  }
  at::parallel_for(0, row_count(g), std::max<int64_t>(1, row_grain(g) / 4), [&](int64_t b, int64_t e) {
    std::vector<int64_t> pos(K);
    for_rows(g, b, e, [&](const std::vector<int64_t>& rows, int64_t o0) {
      for (int64_t ow = 0; ow < W.out; ++ow) {
        window_top_k(xp, rows, clip(W, ow), K, pos.data());
        T acc = 0;
        for (int64_t j = 0; j < K; ++j) acc += wp[j] * xp[pos[j]];
        yp[o0 + ow] = acc;
      }
    });
  });
}

// Tiled backward: each element written once, gx = go·w_rank for ranks < K, else 0; the
// row's Σ go·(rank j's value) into part[row·K + j].
template <int R, int KW, typename T>
void sort_backward_tiled(const T* go, const T* xp, const T* wp, int64_t K, T* gp, T* part, const PoolGeometry& g) {
  const auto& W = g.dim[2];
  at::parallel_for(0, row_count(g), std::max<int64_t>(1, 4096 / (W.out * R * KW)), [&](int64_t b, int64_t e) {
    const int64_t w_out = W.out;
    std::vector<int32_t> rank(R * KW * w_out);
    std::vector<T> val(w_out);
    for (int64_t row = b; row < e; ++row) {
      const int64_t x0 = tile_row_offset(g, row, R);
      const T* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = xp + x0 + r * W.in;
      tile_ranks<R, KW>(xr, w_out, rank.data());
      const T* __restrict gor = go + row * w_out;
      for (int t = 0; t < R * KW; ++t) {
        const int32_t* __restrict rt = rank.data() + t * w_out;
        T* __restrict gt = gp + x0 + (t / KW) * W.in + t % KW;
        for (int64_t ow = 0; ow < w_out; ++ow) {
          const int32_t r = rt[ow];
          gt[ow * KW] = r < K ? gor[ow] * wp[r < K ? r : 0] : T(0);
        }
      }
      for (int64_t j = 0; j < K; ++j) {
        tile_rank_values<R, KW>(xr, w_out, rank.data(), static_cast<int32_t>(j), val.data());
        T sum = 0;
        for (int64_t ow = 0; ow < w_out; ++ow) sum += gor[ow] * val[ow];
        part[row * K + j] = sum;
      }
    }
  });
}

// The ranks are found again from x (as the forward found them), nothing stored. ∂w_j is
// summed per row (tiled) or per plane (general) in a fixed order, then over those in
// order, so it does not depend on the thread count.
template <typename T>
void sort_backward_t(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weights, at::Tensor& gx,
                     at::Tensor& gw, const PoolGeometry& g) {
  const auto& W = g.dim[2];
  const int64_t K = weights.numel();
  const T* go = grad_out.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  const T* wp = weights.data_ptr<T>();
  T* gp = gx.data_ptr<T>();
  std::vector<T> part;
  const Tile tile = tile_of(g);
  if (tile != Tile::None) {
    if (!tiles_cover(g)) gx.zero_();
    part.assign(row_count(g) * K, T(0));
    with_tile(tile, [&](auto r, auto kw) {
      sort_backward_tiled<r.value, kw.value>(go, xp, wp, K, gp, part.data(), g);
    });
  } else {
    const int64_t planes = g.N * g.C, pin = g.plane_in(), rows_per_plane = g.dim[0].out * g.dim[1].out;
    part.assign(planes * K, T(0));
    at::parallel_for(0, planes, 1, [&](int64_t pb, int64_t pe) {
      std::fill(gp + pb * pin, gp + pe * pin, T(0));
      std::vector<int64_t> pos(K);
      for_rows(g, pb * rows_per_plane, pe * rows_per_plane, [&](const std::vector<int64_t>& rows, int64_t o0) {
        T* pu = part.data() + (rows[0] / pin) * K;
        for (int64_t ow = 0; ow < W.out; ++ow) {
          window_top_k(xp, rows, clip(W, ow), K, pos.data());
          const T gr = go[o0 + ow];
          for (int64_t j = 0; j < K; ++j) {
            gp[pos[j]] += gr * wp[j];
            pu[j] += gr * xp[pos[j]];
          }
        }
      });
    });
  }
  T* gwp = gw.data_ptr<T>();
  for (int64_t j = 0; j < K; ++j) gwp[j] = 0;
  const int64_t parts = static_cast<int64_t>(part.size()) / K;
  for (int64_t u = 0; u < parts; ++u)
    for (int64_t j = 0; j < K; ++j) gwp[j] += part[u * K + j];
}

// ------------------------------------------------------------------ k-max
// Bit i set where x[i] >= tau, for 16 consecutive values (the portable path's compare).
inline uint32_t ge_mask16(const float* x, float tau) {
  uint32_t m = 0;
  for (int i = 0; i < 16; ++i) m |= static_cast<uint32_t>(x[i] >= tau) << i;
  return m;
}

// A lower bound tau of the k-th largest of a row (L >= kGroups, k <= kGroups), without a
// branch: the maxima of 64 interleaved groups (i mod 64), those maxima's maxima over k
// super-groups (g mod k), and tau = the least of these k — k distinct elements are >= tau.
// Returns false when the row holds a NaN (the caller's exact path ranks it).
constexpr int kGroups = 64;
inline bool kmax_bound(const float* __restrict xr, int64_t L, int64_t k, float& tau) {
  float gm[kGroups];
  int nan = 0;
  for (int g = 0; g < kGroups; ++g) {
    gm[g] = xr[g];
    nan |= xr[g] != xr[g];
  }
  int64_t i0 = kGroups;
  for (; i0 + kGroups <= L; i0 += kGroups) {
    for (int g = 0; g < kGroups; ++g) {
      const float v = xr[i0 + g];
      gm[g] = v > gm[g] ? v : gm[g];
      nan |= v != v;
    }
  }
  for (int64_t g = 0; i0 + g < L; ++g) {
    const float v = xr[i0 + g];
    gm[g] = v > gm[g] ? v : gm[g];
    nan |= v != v;
  }
  if (nan) return false;
  tau = std::numeric_limits<float>::infinity();
  for (int64_t q = 0; q < k; ++q) {
    float m = gm[q];
    for (int64_t g = q + k; g < kGroups; g += k) m = gm[g] > m ? gm[g] : m;
    tau = m < tau ? m : tau;
  }
  return true;
}

#if defined(__AVX512F__)
// Each lane's rank among the first n lanes of v (n <= 16; lanes[] holds v): the count of
// lanes ranked before it — larger, or equal and earlier. Lanes past n count nothing.
inline __m512i lane_ranks(__m512 v, const float* lanes, int64_t n) {
  const __m512i one = _mm512_set1_epi32(1);
  __m512i rank = _mm512_setzero_si512();
  for (int64_t d = 0; d < n; ++d) {
    const __m512 b = _mm512_set1_ps(lanes[d]);
    const auto later = static_cast<__mmask16>(~((uint32_t{2} << d) - 1));  // lanes c > d
    const __mmask16 before = _mm512_cmp_ps_mask(b, v, _CMP_GT_OQ) | (_mm512_cmp_ps_mask(b, v, _CMP_EQ_OQ) & later);
    rank = _mm512_mask_add_epi32(rank, before, rank, one);
  }
  return rank;
}

// For k <= 16 a tighter and cheaper bound with AVX-512: the maxima of 16 interleaved groups
// (i mod 16) sit in one vector, and tau = the k-th largest of them, found by ranking the 16
// lanes against each other. One unordered compare per two vectors finds NaN.
inline bool kmax_bound16(const float* __restrict xr, int64_t L, int64_t k, float& tau) {
  __m512 a0 = _mm512_loadu_ps(xr), a1 = _mm512_loadu_ps(xr + 16), a2 = _mm512_loadu_ps(xr + 32),
         a3 = _mm512_loadu_ps(xr + 48);
  __mmask16 nan = _mm512_cmp_ps_mask(a0, a1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a2, a3, _CMP_UNORD_Q);
  int64_t i = 64;
  for (; i + 64 <= L; i += 64) {
    const __m512 v0 = _mm512_loadu_ps(xr + i), v1 = _mm512_loadu_ps(xr + i + 16),
                 v2 = _mm512_loadu_ps(xr + i + 32), v3 = _mm512_loadu_ps(xr + i + 48);
    nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v2, v3, _CMP_UNORD_Q);
    a0 = _mm512_max_ps(a0, v0);
    a1 = _mm512_max_ps(a1, v1);
    a2 = _mm512_max_ps(a2, v2);
    a3 = _mm512_max_ps(a3, v3);
  }
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (; i < L; i += 16) {
    const __mmask16 live = L - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (L - i)) - 1);
    const __m512 v = _mm512_mask_loadu_ps(ninf, live, xr + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    a0 = _mm512_max_ps(a0, v);
  }
  if (nan) return false;
  const __m512 m = _mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3));
  alignas(64) float lane[16];
  _mm512_store_ps(lane, m);
  const __m512i rank = lane_ranks(m, lane, 16);
  const __mmask16 kth = _mm512_cmpeq_epi32_mask(rank, _mm512_set1_epi32(static_cast<int>(k - 1)));
  tau = _mm512_cvtss_f32(_mm512_maskz_compress_ps(kth, m));
  return true;
}
#elif defined(__AVX2__)
// Each lane's rank among the first n of 16 lanes (lanes[]; n <= 16) — the count of lanes
// larger, or equal and earlier — in two halves, counted against each of the n lanes in turn.
inline void lane_ranks16(const float* lanes, int64_t n, __m256i& r0, __m256i& r1) {
  const __m256 h0 = _mm256_loadu_ps(lanes), h1 = _mm256_loadu_ps(lanes + 8);
  const __m256i i0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), i1 = _mm256_add_epi32(i0, _mm256_set1_epi32(8));
  r0 = _mm256_setzero_si256();
  r1 = _mm256_setzero_si256();
  for (int64_t d = 0; d < n; ++d) {
    const __m256 b = _mm256_set1_ps(lanes[d]);
    const __m256i dv = _mm256_set1_epi32(static_cast<int>(d));
    const __m256 b0 = _mm256_or_ps(_mm256_cmp_ps(b, h0, _CMP_GT_OQ),
                                   _mm256_and_ps(_mm256_cmp_ps(b, h0, _CMP_EQ_OQ),
                                                 _mm256_castsi256_ps(_mm256_cmpgt_epi32(i0, dv))));
    const __m256 b1 = _mm256_or_ps(_mm256_cmp_ps(b, h1, _CMP_GT_OQ),
                                   _mm256_and_ps(_mm256_cmp_ps(b, h1, _CMP_EQ_OQ),
                                                 _mm256_castsi256_ps(_mm256_cmpgt_epi32(i1, dv))));
    r0 = _mm256_sub_epi32(r0, _mm256_castps_si256(b0));  // a true compare is −1
    r1 = _mm256_sub_epi32(r1, _mm256_castps_si256(b1));
  }
}

// The same bound with AVX2: 64 values per step in eight vectors, whose lanes pair up into
// 16 groups (any split into 16 disjoint groups gives a valid bound, so the tail's values
// join whichever group); tau = the k-th largest of the 16 group maxima.
inline bool kmax_bound16(const float* __restrict xr, int64_t L, int64_t k, float& tau) {
  __m256 a[8];
  for (int q = 0; q < 8; ++q) a[q] = _mm256_loadu_ps(xr + 8 * q);
  __m256 nan = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(a[0], a[1], _CMP_UNORD_Q), _mm256_cmp_ps(a[2], a[3], _CMP_UNORD_Q)),
                            _mm256_or_ps(_mm256_cmp_ps(a[4], a[5], _CMP_UNORD_Q), _mm256_cmp_ps(a[6], a[7], _CMP_UNORD_Q)));
  int64_t i = 64;
  for (; i + 64 <= L; i += 64) {
    __m256 v[8];
    for (int q = 0; q < 8; ++q) v[q] = _mm256_loadu_ps(xr + i + 8 * q);
    nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(v[0], v[1], _CMP_UNORD_Q),
                                                      _mm256_cmp_ps(v[2], v[3], _CMP_UNORD_Q)),
                                         _mm256_or_ps(_mm256_cmp_ps(v[4], v[5], _CMP_UNORD_Q),
                                                      _mm256_cmp_ps(v[6], v[7], _CMP_UNORD_Q))));
    for (int q = 0; q < 8; ++q) a[q] = _mm256_max_ps(a[q], v[q]);
  }
  for (int q = 0; i + 8 <= L; i += 8, ++q) {  // the tail's whole vectors join groups 0, 1, ...
    const __m256 v = _mm256_loadu_ps(xr + i);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    a[q] = _mm256_max_ps(a[q], v);
  }
  if (_mm256_movemask_ps(nan) != 0) return false;
  alignas(32) float lane[16];
  _mm256_store_ps(lane, _mm256_max_ps(_mm256_max_ps(a[0], a[2]), _mm256_max_ps(a[4], a[6])));
  _mm256_store_ps(lane + 8, _mm256_max_ps(_mm256_max_ps(a[1], a[3]), _mm256_max_ps(a[5], a[7])));
  for (int64_t q = 0; i < L; ++i, ++q) {
    const float v = xr[i];
    if (v != v) return false;
    lane[q] = v > lane[q] ? v : lane[q];
  }
  // tau: the lane of rank k − 1 (a library selection took 40 % of the time here).
  __m256i r0, r1;
  lane_ranks16(lane, 16, r0, r1);
  const __m256i want = _mm256_set1_epi32(static_cast<int>(k - 1));
  const uint32_t hit = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(r0, want)))) |
                       static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(r1, want))))
                           << 8;
  tau = lane[__builtin_ctz(hit)];  // ranks are distinct, so exactly one lane has rank k − 1
  return true;
}

// The lane numbers of the set bits of an 8-bit mask, in order, as one vector per mask
// (8 KB; AVX2 has no compress instruction, so collect_at_least loads them from here).
struct CompressTable {
  alignas(32) int32_t lanes[256][8];
  constexpr CompressTable() : lanes() {
    for (int m = 0; m < 256; ++m) {
      int n = 0;
      for (int b = 0; b < 8; ++b) {
        if (m & (1 << b)) lanes[m][n++] = b;
      }
    }
  }
};
constexpr CompressTable kCompress{};
#endif

// The positions of the row's elements >= tau, in row order; returns how many. The buffer
// holds L + 16 (a whole vector may be stored past the last candidate).
inline int64_t collect_at_least(const float* __restrict xr, int64_t L, float tau, int32_t* __restrict ci) {
  int64_t n = 0, i = 0;
#if defined(__AVX512F__)
  // Compressed in a register and stored whole: no branch per candidate (~10 of 400 for
  // k = 5 land in unpredictable blocks; a loop over mask bits mispredicted on each).
  const __m512 t = _mm512_set1_ps(tau);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i < L; i += 16) {
    const __mmask16 live = L - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (L - i)) - 1);
    const __mmask16 m = _mm512_mask_cmp_ps_mask(live, _mm512_maskz_loadu_ps(live, xr + i), t, _CMP_GE_OQ);
    _mm512_storeu_si512(ci + n, _mm512_maskz_compress_epi32(m, idx));
    n += __builtin_popcount(m);
    idx = _mm512_add_epi32(idx, step);
  }
#elif defined(__AVX2__)
  // The same without a compress instruction: the mask's lane numbers from a table.
  const __m256 t = _mm256_set1_ps(tau);
  __m256i base = _mm256_setzero_si256();
  for (; i + 8 <= L; i += 8) {
    const int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(xr + i), t, _CMP_GE_OQ));
    const __m256i lanes = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[m]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ci + n), _mm256_add_epi32(lanes, base));
    n += __builtin_popcount(m);
    base = _mm256_add_epi32(base, _mm256_set1_epi32(8));
  }
  for (; i < L; ++i) {
    ci[n] = static_cast<int32_t>(i);
    n += xr[i] >= tau;
  }
#else
  for (; i + 16 <= L; i += 16) {
    for (uint32_t m = ge_mask16(xr + i, tau); m != 0; m &= m - 1) ci[n++] = static_cast<int32_t>(i + __builtin_ctz(m));
  }
  for (; i < L; ++i) {
    ci[n] = static_cast<int32_t>(i);
    n += xr[i] >= tau;
  }
#endif
  return n;
}

// The k largest of the n <= 16 candidates at positions ci (no NaN; larger first, ties to the
// earlier), written in row order: each candidate's rank by counting those ranked before it,
// all 16 lanes at once; those ranked below k, in candidate (= row) order, are the answer.
inline void rank_few(const float* __restrict xr, const int32_t* __restrict ci, int64_t n, int64_t k,
                     float* __restrict out_v, int64_t* __restrict out_i) {
#if defined(__AVX512F__)
  const __mmask16 live = static_cast<__mmask16>((uint32_t{1} << n) - 1);
  const __m512i p = _mm512_maskz_loadu_epi32(live, ci);
  const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, p, xr, 4);
  alignas(64) float cv[16];
  _mm512_store_ps(cv, v);
  const __m512i rank = lane_ranks(v, cv, n);
  const __mmask16 take = _mm512_mask_cmplt_epi32_mask(live, rank, _mm512_set1_epi32(static_cast<int>(k)));
  const __m512i tp = _mm512_maskz_compress_epi32(take, p);
  const auto kk = static_cast<__mmask16>((uint32_t{1} << k) - 1);
  _mm512_mask_storeu_ps(out_v, kk, _mm512_maskz_compress_ps(take, v));
  _mm512_mask_storeu_epi64(out_i, static_cast<__mmask8>(kk), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(tp)));
  if (k > 8) {
    _mm512_mask_storeu_epi64(out_i + 8, static_cast<__mmask8>(kk >> 8),
                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(tp, 1)));
  }
#elif defined(__AVX2__)
  alignas(32) float v[16];
  for (int c = 0; c < 16; ++c) v[c] = c < n ? xr[ci[c]] : -std::numeric_limits<float>::infinity();
  __m256i r0, r1;
  lane_ranks16(v, n, r0, r1);
  const __m256i kk = _mm256_set1_epi32(static_cast<int>(k));
  uint32_t take = (static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(kk, r0)))) |
                   static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(kk, r1)))) << 8) &
                  ((uint32_t{1} << n) - 1);
  for (int64_t j = 0; take != 0; take &= take - 1, ++j) {  // k of them, in candidate (= row) order
    const int c = __builtin_ctz(take);
    out_v[j] = v[c];
    out_i[j] = ci[c];
  }
#else
  float v[16];
  int32_t rank[16];
  for (int c = 0; c < 16; ++c) v[c] = c < n ? xr[ci[c]] : -std::numeric_limits<float>::infinity();
  for (int c = 0; c < 16; ++c) {
    int32_t r = 0;
    for (int d = 0; d < 16; ++d) r += (d < c) ? (v[d] >= v[c]) : (v[d] > v[c]);
    rank[c] = r;
  }
  int64_t j = 0;
  for (int64_t c = 0; c < n; ++c) {
    if (rank[c] >= k) continue;  // (the outputs end at k: no write past them)
    out_v[j] = v[c];
    out_i[j++] = ci[c];
  }
#endif
}

// One row's k largest (k <= kGroups, no NaN) through the bound: only elements >= tau can be
// among the k largest (usually a few times k of them). Returns false, doing nothing, when
// the row holds a NaN or does not suit (the caller's exact path ranks it).
struct KmaxScratch {
  std::vector<int32_t> cand;
  std::vector<int32_t> top;
};
inline bool kmax_row_by_groups(const float* __restrict xr, int64_t L, int64_t k, KmaxScratch& s,
                               float* __restrict out_v, int64_t* __restrict out_i) {
  float tau;
  if (L < kGroups || L > std::numeric_limits<int32_t>::max() - 16) return false;
#if defined(__AVX512F__) || defined(__AVX2__)
  if (!(k <= 16 ? kmax_bound16(xr, L, k, tau) : kmax_bound(xr, L, k, tau))) return false;
#else
  if (!kmax_bound(xr, L, k, tau)) return false;
#endif
  s.cand.resize(L + 16);
  const int32_t* ci = s.cand.data();
  const int64_t n = collect_at_least(xr, L, tau, s.cand.data());
  if (n <= 16) {
    rank_few(xr, ci, n, k, out_v, out_i);
    return true;
  }
  // Many (ties, or an unlucky bound): insertion, larger first, ties to the earlier (the
  // candidates come in row order); then back to row order.
  s.top.resize(k);
  int32_t* top = s.top.data();
  int64_t filled = 0;
  for (int64_t q = 0; q < n; ++q) {
    const int32_t c = ci[q];
    if (filled == k && !(xr[c] > xr[top[k - 1]])) continue;
    int64_t j = filled < k ? filled++ : k - 1;
    for (; j > 0 && xr[c] > xr[top[j - 1]]; --j) top[j] = top[j - 1];
    top[j] = c;
  }
  std::sort(top, top + k);
  for (int64_t j = 0; j < k; ++j) {
    out_v[j] = xr[top[j]];
    out_i[j] = top[j];
  }
  return true;
}
template <typename T>
inline bool kmax_row_by_groups(const T*, int64_t, int64_t, KmaxScratch&, T*, int64_t*) {
  return false;
}

// Rows of a few KB are read once each, with a burst of work in between during which the
// hardware prefetcher (which stops at 4 KB pages) falls idle: the row two ahead is asked for
// explicitly (k-max 64×300×400, one thread: 3.0 → 2.6 ms measured).
template <typename T>
inline void prefetch_short_row(const T* row, int64_t L) {
  const int64_t bytes = L * int64_t(sizeof(T));
  if (bytes > 16384) return;
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}

template <typename T>
void kmax_forward_t(const at::Tensor& x, int64_t k, at::Tensor& values, at::Tensor& indices) {
  const T* xp = x.data_ptr<T>();
  T* vp = values.data_ptr<T>();
  int64_t* ip = indices.data_ptr<int64_t>();
  const int64_t rows = x.size(0), L = x.size(1);
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, L)), [&](int64_t b, int64_t e) {
    std::vector<int64_t> pos(L);
    KmaxScratch scratch;
    for (int64_t r = b; r < e; ++r) {
      const T* xr = xp + r * L;
      if (r + 2 < e) prefetch_short_row(xr + 2 * L, L);
      if (k <= kGroups && kmax_row_by_groups(xr, L, k, scratch, vp + r * k, ip + r * k)) continue;
      auto before = [&](int64_t a, int64_t c) { return ranks_before(xr[a], a, xr[c], c); };
      if (k <= 32) {
        // Small k: one pass keeping the best k so far in rank order; most elements lose
        // to the current k-th and cost one comparison.
        for (int64_t i = 0; i < k; ++i) pos[i] = i;
        std::sort(pos.begin(), pos.begin() + k, before);
        T kth = xr[pos[k - 1]];
        for (int64_t i0 = k; i0 < L; i0 += 16) {
          // The block's elements that can beat the current k-th (larger, or a NaN over a
          // non-NaN) as a bit mask from a branch-free loop; only those are visited.
          const int64_t i1 = std::min<int64_t>(i0 + 16, L);
          const bool kth_nan = kth != kth;
          uint32_t mask = 0;  // the block's candidates, one bit each
          for (int64_t i = i0; i < i1; ++i) {
            mask |= static_cast<uint32_t>((xr[i] > kth) | ((xr[i] != xr[i]) & !kth_nan)) << (i - i0);
          }
          for (; mask != 0; mask &= mask - 1) {
            const int64_t i = i0 + __builtin_ctz(mask);
            if (!before(i, pos[k - 1])) continue;
            int64_t j = k - 1;
            for (; j > 0 && before(i, pos[j - 1]); --j) pos[j] = pos[j - 1];
            pos[j] = i;
            kth = xr[pos[k - 1]];
          }
        }
      } else {
        std::iota(pos.begin(), pos.end(), int64_t(0));
        std::nth_element(pos.begin(), pos.begin() + (k - 1), pos.end(), before);
      }
      std::sort(pos.begin(), pos.begin() + k);  // back to the original order
      for (int64_t j = 0; j < k; ++j) {
        vp[r * k + j] = xr[pos[j]];
        ip[r * k + j] = pos[j];
      }
    }
  });
}

// Copies n bytes with non-temporal stores where dst is 64-byte aligned (plain stores for
// the unaligned head and tail): a large output written once is then not first read into
// the cache line by line (a plain store's read for ownership), halving its memory traffic.
// The caller ends its pass with store_fence() so other threads see the stores.
inline void stream_copy(char* __restrict dst, const char* __restrict src, int64_t n) {
  const int64_t head = std::min<int64_t>(n, (64 - int64_t(reinterpret_cast<uintptr_t>(dst) & 63)) & 63);
  std::memcpy(dst, src, head);
  int64_t i = head;
  for (; i + 64 <= n; i += 64) {
#if defined(__AVX512F__)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), _mm512_loadu_si512(src + i));
#elif defined(__AVX2__)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 32),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32)));
#elif defined(__SSE2__)
    for (int q = 0; q < 64; q += 16) {
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + q), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + q)));
    }
#else
    std::memcpy(dst + i, src + i, 64);
#endif
  }
  std::memcpy(dst + i, src + i, n - i);
}
inline void store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// gx comes uninitialised: each row is built in a small buffer (zeros, then its k values
// added back: repeated indices add up) and written out once; a gradient larger than the
// caches is streamed.
template <typename T>
void kmax_backward_t(const at::Tensor& grad_out, const at::Tensor& indices, at::Tensor& gx) {
  const T* go = grad_out.data_ptr<T>();
  const int64_t* ip = indices.data_ptr<int64_t>();
  T* gp = gx.data_ptr<T>();
  const int64_t rows = gx.size(0), L = gx.size(1), k = indices.size(1);
  const bool stream = gx.nbytes() >= (size_t(4) << 20) && L <= 4096;
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, L)), [&](int64_t b, int64_t e) {
    std::vector<T> row(stream ? L : 0);
    for (int64_t r = b; r < e; ++r) {
      T* g = stream ? row.data() : gp + r * L;
      std::fill(g, g + L, T(0));
      for (int64_t j = 0; j < k; ++j) g[ip[r * k + j]] += go[r * k + j];
      if (stream) stream_copy(reinterpret_cast<char*>(gp + r * L), reinterpret_cast<const char*>(g), L * sizeof(T));
    }
    if (stream) store_fence();
  });
}

// ------------------------------------------------------------------ dtype dispatch
void weighted_forward(const at::Tensor& x, const at::Tensor& l, at::Tensor& y, const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "weighted_forward", [&] { weighted_forward_t<scalar_t>(x, l, y, g); });
}
void weighted_backward(const at::Tensor& go, const at::Tensor& x, const at::Tensor& l, const at::Tensor& y,
                       at::Tensor& gx, at::Tensor& gl, bool soft, const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "weighted_backward",
                             [&] { weighted_backward_t<scalar_t>(go, x, l, y, gx, gl, soft, g); });
}
bool stochastic_forward(const at::Tensor& x, bool training, uint64_t seed, at::Tensor& y, at::Tensor* idx,
                        const PoolGeometry& g) {
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "stochastic_forward",
                             [&] { ok = stochastic_forward_t<scalar_t>(x, training, seed, y, idx, g); });
  return ok;
}
void stochastic_train_backward(const at::Tensor& go, const at::Tensor& x, uint64_t seed, at::Tensor& gx,
                               const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "stochastic_train_backward",
                             [&] { stochastic_train_backward_t<scalar_t>(go, x, seed, gx, g); });
}
void stochastic_eval_backward(const at::Tensor& go, const at::Tensor& x, const at::Tensor& y, at::Tensor& gx,
                              const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "stochastic_eval_backward",
                             [&] { stochastic_eval_backward_t<scalar_t>(go, x, y, gx, g); });
}
void mixed_forward(const at::Tensor& x, const at::Tensor& alpha, int mode, at::Tensor& y, const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mixed_forward", [&] { mixed_forward_t<scalar_t>(x, alpha, mode, y, g); });
}
void mixed_backward(const at::Tensor& go, const at::Tensor& x, const at::Tensor& alpha, int mode, at::Tensor& gx,
                    at::Tensor& gsum, const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mixed_backward",
                             [&] { mixed_backward_t<scalar_t>(go, x, alpha, mode, gx, gsum, g); });
}
void gem_forward(const at::Tensor& x, double p, double eps, at::Tensor& y, at::Tensor& S, at::Tensor& Tm) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gem_forward", [&] { gem_forward_t<scalar_t>(x, p, eps, y, S, Tm); });
}
void gem_backward(const at::Tensor& go, const at::Tensor& x, double p, double eps, const at::Tensor& y,
                  const at::Tensor& S, at::Tensor& gx) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gem_backward", [&] { gem_backward_t<scalar_t>(go, x, p, eps, y, S, gx); });
}
void sort_forward(const at::Tensor& x, const at::Tensor& w, at::Tensor& y, const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sort_forward", [&] { sort_forward_t<scalar_t>(x, w, y, g); });
}
void sort_backward(const at::Tensor& go, const at::Tensor& x, const at::Tensor& w, at::Tensor& gx, at::Tensor& gw,
                   const PoolGeometry& g) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sort_backward", [&] { sort_backward_t<scalar_t>(go, x, w, gx, gw, g); });
}
void kmax_backward(const at::Tensor& go, const at::Tensor& indices, at::Tensor& gx) {
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "kmax_backward", [&] { kmax_backward_t<scalar_t>(go, indices, gx); });
}
void kmax_forward(const at::Tensor& x, int64_t k, at::Tensor& values, at::Tensor& indices) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmax_forward", [&] { kmax_forward_t<scalar_t>(x, k, values, indices); });
}

}  // namespace

const FancyPoolKernels fancy_pool_kernels{weighted_forward, weighted_backward, stochastic_forward,
                                          stochastic_train_backward, stochastic_eval_backward, mixed_forward,
                                          mixed_backward, gem_forward, gem_backward, sort_forward, sort_backward,
                                          kmax_forward, kmax_backward};

}  // namespace FANCY_CPU_NS
}  // namespace ops
}  // namespace fancy
