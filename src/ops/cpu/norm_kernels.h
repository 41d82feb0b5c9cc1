#pragma once
// The loops of batch_norm_relu (schemas in src/ops/norm.cpp): per-channel statistics,
// the normalise-and-clamp pass and the two backward passes, over a tensor read as
// (outer, channels, inner). Compiled once per instruction set (FANCY_CPU_NS, like the
// pooling kernels); norm_dispatch.cpp checks the arguments and calls the widest set.
#include <c10/core/ScalarType.h>

#include <cstdint>

namespace fancy {
namespace ops {

// A contiguous tensor as (outer, channels, inner): channels-last maps are
// (N·H·W, C, 1), contiguous ones (N, C, H·W).
struct ChannelLayout {
  int64_t outer, channels, inner;
  int64_t per_channel() const { return outer * inner; }
};

// Every function takes float32, float64 or bfloat16 data (the dtype argument); sums
// are in float64, in an order that does not depend on the thread count; per-element
// arithmetic is in float (float64 for float64 data) with per-channel coefficients.
struct NormKernels {
  // mean[c] and the biased variance var[c] of channel c.
  void (*channel_stats)(c10::ScalarType, const void* x, const ChannelLayout&, double* mean, double* var);
  // y = max(0, x·scale[c] + shift[c]) (NaN stays NaN, as torch.relu).
  void (*affine_relu)(c10::ScalarType, const void* x, void* y, const ChannelLayout&, const double* scale,
                      const double* shift);
  // With gz = g where y > 0, else 0: sum_g[c] = Σ gz, sum_gx[c] = Σ gz·(x − mean[c]).
  void (*relu_grad_sums)(c10::ScalarType, const void* g, const void* x, const void* y, const ChannelLayout&,
                         const double* mean, double* sum_g, double* sum_gx);
  // gx = gz·a[c] + x·b[c] + d[c].
  void (*input_grad)(c10::ScalarType, const void* g, const void* x, const void* y, void* gx, const ChannelLayout&,
                     const double* a, const double* b, const double* d);
};

namespace cpu_default { extern const NormKernels norm_kernels; }
namespace cpu_avx2 { extern const NormKernels norm_kernels; }
namespace cpu_avx512 { extern const NormKernels norm_kernels; }

const NormKernels& cpu_norm_kernels();

}  // namespace ops
}  // namespace fancy
