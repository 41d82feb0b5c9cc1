// The pooling ops' schemas (declared once, here) and the C++ entry points of
// include/fancy/pool.h, which call them through the dispatcher. Kernels live in
// ops/cpu/, autograd in ops/autograd/.
#include "fancy/pool.h"

#include "ops/op_handle.h"

#include <torch/library.h>

#include <string>

namespace {

void define_nd(torch::Library& m, int nd) {
  const std::string n = std::to_string(nd);
  const std::string window = "int[" + n + "] kernel_size, int[" + n + "] stride=[], int[" + n +
                             "] padding=0";
  const std::string maxargs = "(Tensor self, " + window + ", int[" + n +
                              "] dilation=1, bool ceil_mode=False)";
  for (const char* stem : {"max_pool", "min_pool"}) {
    m.def((fancy::ops::nd_op_name(stem, nd) + maxargs + " -> Tensor").c_str());
    m.def((fancy::ops::nd_op_name(stem, nd) + "_with_indices" + maxargs + " -> (Tensor, Tensor)").c_str());
  }
  m.def((fancy::ops::nd_op_name("avg_pool", nd) + "(Tensor self, " + window +
         ", bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor")
            .c_str());
  m.def((fancy::ops::nd_op_name("lp_pool", nd) + "(Tensor self, float norm_type, int[" + n +
         "] kernel_size, int[" + n + "] stride=[], bool ceil_mode=False, int[" + n +
         "] padding=0) -> Tensor")
            .c_str());
  m.def((fancy::ops::nd_op_name("adaptive_avg_pool", nd) + "(Tensor self, int[" + n + "] output_size) -> Tensor").c_str());
  m.def((fancy::ops::nd_op_name("adaptive_max_pool", nd) + "(Tensor self, int[" + n +
         "] output_size) -> (Tensor, Tensor)")
            .c_str());
  m.def((fancy::ops::nd_op_name("max_unpool", nd) + "(Tensor self, Tensor indices, " + window +
         ", int[]? output_size=None) -> Tensor")
            .c_str());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fancy, m) {
  for (int nd = 1; nd <= 3; ++nd) define_nd(m, nd);
  m.def("global_avg_pool(Tensor self, bool keepdim=False) -> Tensor");
  m.def("global_max_pool(Tensor self, bool keepdim=False) -> Tensor");
  // Backward ops: one per backward kind, for any spatial rank. Backends implement them;
  // ops/autograd/pool_autograd.cpp calls them.
  m.def("pool_index_backward(Tensor grad_output, Tensor self, Tensor indices, int spatial_dims) -> Tensor");
  m.def("avg_pool_backward(Tensor grad_output, Tensor self, int[] kernel_size, int[] stride, "
        "int[] padding, bool ceil_mode, bool count_include_pad, int? divisor_override) -> Tensor");
  m.def("lp_pool_backward(Tensor grad_output, Tensor self, Tensor result, float norm_type, "
        "int[] kernel_size, int[] stride, int[] padding, bool ceil_mode) -> Tensor");
  m.def("adaptive_avg_pool_backward(Tensor grad_output, Tensor self, int spatial_dims) -> Tensor");
  m.def("max_unpool_backward(Tensor grad_output, Tensor indices, int spatial_dims) -> Tensor");
}

namespace fancy {

using at::IntArrayRef;
using at::Tensor;
using TT = std::tuple<Tensor, Tensor>;

template <size_t D>
Tensor max_pool(const Tensor& x, const MaxPoolOptions<D>& o) {
  static auto op = ops::op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef,
                                         IntArrayRef, bool)>(fancy::ops::nd_op_name("max_pool", D));
  return op.call(x, *o.kernel_size(), *o.stride(), *o.padding(), *o.dilation(), o.ceil_mode());
}

template <size_t D>
TT max_pool_with_indices(const Tensor& x, const MaxPoolOptions<D>& o) {
  static auto op = ops::op_handle<TT(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef,
                                     IntArrayRef, bool)>(fancy::ops::nd_op_name("max_pool", D) + "_with_indices");
  return op.call(x, *o.kernel_size(), *o.stride(), *o.padding(), *o.dilation(), o.ceil_mode());
}

template <size_t D>
Tensor min_pool(const Tensor& x, const MinPoolOptions<D>& o) {
  static auto op = ops::op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef,
                                         IntArrayRef, bool)>(fancy::ops::nd_op_name("min_pool", D));
  return op.call(x, *o.kernel_size(), *o.stride(), *o.padding(), *o.dilation(), o.ceil_mode());
}

template <size_t D>
TT min_pool_with_indices(const Tensor& x, const MinPoolOptions<D>& o) {
  static auto op = ops::op_handle<TT(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef,
                                     IntArrayRef, bool)>(fancy::ops::nd_op_name("min_pool", D) + "_with_indices");
  return op.call(x, *o.kernel_size(), *o.stride(), *o.padding(), *o.dilation(), o.ceil_mode());
}

template <size_t D>
Tensor avg_pool(const Tensor& x, const AvgPoolOptions<D>& o) {
  static auto op = ops::op_handle<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool,
                                         bool, c10::optional<int64_t>)>(fancy::ops::nd_op_name("avg_pool", D));
  return op.call(x, *o.kernel_size(), *o.stride(), *o.padding(), o.ceil_mode(),
                 o.count_include_pad(), o.divisor_override());
}

template <size_t D>
Tensor lp_pool(const Tensor& x, const LPPoolOptions<D>& o) {
  static auto op = ops::op_handle<Tensor(const Tensor&, double, IntArrayRef, IntArrayRef, bool,
                                         IntArrayRef)>(fancy::ops::nd_op_name("lp_pool", D));
  return op.call(x, o.norm_type(), *o.kernel_size(), *o.stride(), o.ceil_mode(), *o.padding());
}

template <size_t D>
Tensor adaptive_avg_pool(const Tensor& x, torch::ExpandingArray<D> output_size) {
  static auto op = ops::op_handle<Tensor(const Tensor&, IntArrayRef)>(fancy::ops::nd_op_name("adaptive_avg_pool", D));
  return op.call(x, *output_size);
}

template <size_t D>
TT adaptive_max_pool(const Tensor& x, torch::ExpandingArray<D> output_size) {
  static auto op = ops::op_handle<TT(const Tensor&, IntArrayRef)>(fancy::ops::nd_op_name("adaptive_max_pool", D));
  return op.call(x, *output_size);
}

template <size_t D>
Tensor max_unpool(const Tensor& x, const Tensor& indices, const MaxUnpoolOptions<D>& o) {
  static auto op = ops::op_handle<Tensor(const Tensor&, const Tensor&, IntArrayRef, IntArrayRef,
                                         IntArrayRef, at::OptionalIntArrayRef)>(fancy::ops::nd_op_name("max_unpool", D));
  at::OptionalIntArrayRef size;
  if (o.output_size()) size = IntArrayRef(*o.output_size());
  return op.call(x, indices, *o.kernel_size(), *o.stride(), *o.padding(), size);
}

Tensor global_avg_pool(const Tensor& x, bool keepdim) {
  static auto op = ops::op_handle<Tensor(const Tensor&, bool)>("global_avg_pool");
  return op.call(x, keepdim);
}

Tensor global_max_pool(const Tensor& x, bool keepdim) {
  static auto op = ops::op_handle<Tensor(const Tensor&, bool)>("global_max_pool");
  return op.call(x, keepdim);
}

#define FANCY_INSTANTIATE(D)                                                                   \
  template Tensor max_pool<D>(const Tensor&, const MaxPoolOptions<D>&);                        \
  template TT max_pool_with_indices<D>(const Tensor&, const MaxPoolOptions<D>&);               \
  template Tensor min_pool<D>(const Tensor&, const MinPoolOptions<D>&);                        \
  template TT min_pool_with_indices<D>(const Tensor&, const MinPoolOptions<D>&);               \
  template Tensor avg_pool<D>(const Tensor&, const AvgPoolOptions<D>&);                        \
  template Tensor lp_pool<D>(const Tensor&, const LPPoolOptions<D>&);                          \
  template Tensor adaptive_avg_pool<D>(const Tensor&, torch::ExpandingArray<D>);               \
  template TT adaptive_max_pool<D>(const Tensor&, torch::ExpandingArray<D>);                   \
  template Tensor max_unpool<D>(const Tensor&, const Tensor&, const MaxUnpoolOptions<D>&);
FANCY_INSTANTIATE(1)
FANCY_INSTANTIATE(2)
FANCY_INSTANTIATE(3)

}  // namespace fancy
