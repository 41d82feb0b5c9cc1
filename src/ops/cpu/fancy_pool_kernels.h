#pragma once
// CPU kernels of the fancy pooling family (SoftPool/LIP, stochastic, sort, k-max), one
// table per instruction set like pool_kernels.h. Inputs are 5-D contiguous (N, C, D, H,
// W) tensors described by a PoolGeometry (dilation 1); outputs are allocated by the caller.
#include "ops/pool_geometry.h"

#include <ATen/core/Tensor.h>

namespace fancy {
namespace ops {

struct FancyPoolKernels {
  // y = Σ x·e^(l − m) / Σ e^(l − m) over each window (m = the window's largest logit; padded
  // cells excluded; an empty window gives 0). SoftPool is l = x.
  void (*weighted_forward)(const at::Tensor& x, const at::Tensor& logits, at::Tensor& y,
                           const PoolGeometry& g);
  // Writes ∂/∂x = go·w_i and ∂/∂l = go·w_i·(x_i − y) into gx and gl (uninitialised on
  // entry; either may be undefined: not wanted); soft (SoftPool, l = x): their sum
  // go·w_i·(1 + x_i − y) into gx, gl undefined.
  void (*weighted_backward)(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& logits,
                            const at::Tensor& y, at::Tensor& gx, at::Tensor& gl, bool soft, const PoolGeometry& g);
  // Training: picks in each window the first element whose running sum passes u·Σa
  // (u a counter-based draw from `seed` and the output's index) and writes its value and,
  // when idx is non-null, its flat index in the (n, c) volume (a zero-sum window gives 0
  // and its first index). Evaluation (training false): y = Σa² / Σa, idx unused.
  // Returns false, with the outputs unspecified, when x holds a negative value or NaN.
  bool (*stochastic_forward)(const at::Tensor& x, bool training, uint64_t seed, at::Tensor& y, at::Tensor* idx,
                             const PoolGeometry& g);
  // Training backward: finds the forward's picks again from x and seed and writes gx = go
  // there (added where overlapping windows share a pick; a zero-sum window passes none),
  // 0 everywhere else. gx comes uninitialised.
  void (*stochastic_train_backward)(const at::Tensor& grad_out, const at::Tensor& x, uint64_t seed, at::Tensor& gx,
                                    const PoolGeometry& g);
  // Eval-mode backward: adds go·(2a_i − y)/Σa into gx (zeroed by the caller).
  void (*stochastic_eval_backward)(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& y,
                                   at::Tensor& gx, const PoolGeometry& g);
  // Mixed pooling over windows that tile the input (k = s, no padding; the others are a
  // composition of max and average pooling): y = a·max + (1 − a)·mean, a = alpha[0],
  // alpha[c] or alpha[output] for mode 0, 1, 2.
  void (*mixed_forward)(const at::Tensor& x, const at::Tensor& alpha, int mode, at::Tensor& y,
                        const PoolGeometry& g);
  // gx (if defined, uninitialised) = go·(a·[i = argmax] + (1 − a)/n); gsum (if defined, one
  // per output row (n, c, d, oh)) = Σ go·(max − mean) along the row.
  void (*mixed_backward)(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& alpha, int mode,
                         at::Tensor& gx, at::Tensor& gsum, const PoolGeometry& g);
  // Global GeM over the rows of a contiguous (rows, L) tensor: z = max(x, eps), S = mean z^p
  // and Tm = mean z^p·ln z (float64, for the backward), y = S^(1/p).
  void (*gem_forward)(const at::Tensor& x, double p, double eps, at::Tensor& y, at::Tensor& S, at::Tensor& Tm);
  // gx = go·y·z^(p−1) / (L·S) where x ≥ eps, else 0 (gx uninitialised).
  void (*gem_backward)(const at::Tensor& grad_out, const at::Tensor& x, double p, double eps, const at::Tensor& y,
                       const at::Tensor& S, at::Tensor& gx);
  // Each (full, unpadded) window sorted descending (ties: earlier first, NaN largest);
  // y = Σ_j w_j·sorted_j over the top K = weights.numel().
  void (*sort_forward)(const at::Tensor& x, const at::Tensor& weights, at::Tensor& y, const PoolGeometry& g);
  // Sort pooling's backward, the ranks found again from x: gx[rank_j] += go·w_j (gx
  // uninitialised on entry) and gw_j = Σ go·x[rank_j], summed in a fixed order (any
  // thread count).
  void (*sort_backward)(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weights, at::Tensor& gx,
                        at::Tensor& gw, const PoolGeometry& g);
  // k largest of each row of a (rows, L) tensor, kept in their original order (ties:
  // earlier position; NaN counts as largest, as in torch.topk).
  void (*kmax_forward)(const at::Tensor& x, int64_t k, at::Tensor& values, at::Tensor& indices);
  // k-max backward over rows: gx (rows, L), uninitialised, = 0 except gx[r][indices[r][j]] = go[r][j].
  void (*kmax_backward)(const at::Tensor& grad_out, const at::Tensor& indices, at::Tensor& gx);
};

namespace cpu_default { extern const FancyPoolKernels fancy_pool_kernels; }
namespace cpu_avx2 { extern const FancyPoolKernels fancy_pool_kernels; }
namespace cpu_avx512 { extern const FancyPoolKernels fancy_pool_kernels; }

// The kernels for this machine's CPU (the same choice as cpu_pool_kernels()).
const FancyPoolKernels& cpu_fancy_pool_kernels();

}  // namespace ops
}  // namespace fancy
