#pragma once
// The loops of the group ops (schemas in src/ops/group.cpp): per-group reductions and
// per-group scaling over a weight read as its merged tile grid. Compiled once per
// instruction set (FANCY_CPU_NS, like the pooling kernels); group_dispatch.cpp checks
// the arguments, merges the dims and calls the widest set this CPU has.
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <vector>

namespace fancy {
namespace ops {

// The weight as merged dims: size, tile, element stride and grid stride per dim
// (neighbouring dims that are both whole-tile or both tile-1 become one, so a conv
// weight's filters, channels and kernels are 2 or 3 flat dims and inner loops run over
// contiguous memory).
struct GroupLayout {
  std::vector<int64_t> size, block, stride, gstride;
  int64_t groups = 1;
};
GroupLayout merge_group_dims(c10::IntArrayRef shape, c10::IntArrayRef block);

enum class GroupReduce { Sum, SumSq, SumAbs, MaxAbs };

struct GroupKernels {
  // out[g] = Σ x, Σ x², Σ|x| or max|x| over group g (in double; NaN propagates through
  // the max). Each group is reduced in memory order by one thread: the same result for
  // any thread count.
  void (*reduce_float)(const float* x, double* out, const GroupLayout& L, GroupReduce mode);
  void (*reduce_double)(const double* x, double* out, const GroupLayout& L, GroupReduce mode);
  // y[i] = x[i] · s[group(i)] (y may be x).
  void (*scale_float)(const float* x, float* y, const float* s, const GroupLayout& L);
  void (*scale_double)(const double* x, double* y, const double* s, const GroupLayout& L);
  // y[i] += x[i] · s[group(i)].
  void (*add_scaled_float)(const float* x, float* y, const float* s, const GroupLayout& L);
  void (*add_scaled_double)(const double* x, double* y, const double* s, const GroupLayout& L);
  // Group lasso's gradient when every group is a run of `run` consecutive elements of
  // the n-element weight (filters, kernels, rows; the last run may be shorter), in one
  // pass: grad[i] += x[i] · scale · c_g / ‖x_g‖₂ (c_g = √|g| when size_weighted, else 1;
  // nothing for a zero group). Returns Σ_g c_g ‖x_g‖₂, summed in an order that does not
  // depend on the thread count.
  double (*lasso_runs_float)(const float* x, float* grad, int64_t n, int64_t run, double scale, bool size_weighted);
  double (*lasso_runs_double)(const double* x, double* grad, int64_t n, int64_t run, double scale,
                              bool size_weighted);
};

namespace cpu_default { extern const GroupKernels group_kernels; }
namespace cpu_avx2 { extern const GroupKernels group_kernels; }
namespace cpu_avx512 { extern const GroupKernels group_kernels; }

const GroupKernels& cpu_group_kernels();

}  // namespace ops
}  // namespace fancy
