#pragma once
// CPU kernels of the pooling family. Every function works on the memory of 5-D
// (N, C, D, H, W) tensors, contiguous or channels-last as PoolGeometry::channels_last
// says: it reads the data pointers and the geometry, never the tensors' sizes or strides,
// so any tensor with that memory will do (ops/pool_geometry.h's 5-D views, or global
// pooling's input and final output). Compiled once per instruction set (FANCY_CPU_NS);
// pool_dispatch.cpp picks the best one at run time.
#include "ops/pool_geometry.h"

namespace fancy {
namespace ops {

struct PoolKernels {
  // y = reduce over each window; idx (max/min only, may be undefined) = flat input
  // position in the (n, c) plane of the element chosen, −1 when the window saw none.
  void (*forward)(const at::Tensor& x, at::Tensor& y, at::Tensor* idx, const PoolParams& p);
  // grad_input[plane][idx] += grad_output, per plane in output order (max/min/adaptive max);
  // grad_input comes uninitialised and is zeroed plane by plane.
  void (*index_backward)(const at::Tensor& grad_out, const at::Tensor& idx, at::Tensor& grad_in,
                         const PoolGeometry& g);
  // Average / Lp backward: spreads each output's gradient over its window. grad_in comes
  // uninitialised; the kernel writes every element.
  void (*window_backward)(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& y,
                          at::Tensor& grad_in, const PoolParams& p);
  // Unpooling: y (zero-filled by the caller) [plane][idx] = x; and its backward, a gather.
  void (*unpool_forward)(const at::Tensor& x, const at::Tensor& idx, at::Tensor& y,
                         const PoolGeometry& g, const char* op);
  void (*unpool_backward)(const at::Tensor& grad_out, const at::Tensor& idx, at::Tensor& grad_in,
                          const PoolGeometry& g);
};

namespace cpu_default { extern const PoolKernels pool_kernels; }
namespace cpu_avx2 { extern const PoolKernels pool_kernels; }
namespace cpu_avx512 { extern const PoolKernels pool_kernels; }

// The widest instruction set this CPU has (capped by the FANCY_CPU environment variable:
// default, avx2 or avx512), and the pooling kernels compiled for it.
enum class CpuIsa { Default, Avx2, Avx512 };
CpuIsa cpu_isa();
const PoolKernels& cpu_pool_kernels();

}  // namespace ops
}  // namespace fancy
