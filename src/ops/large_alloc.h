#pragma once
// Allocation of the large outputs and gradients of fancy's kernels.
#include <ATen/core/Tensor.h>

namespace fancy {
namespace ops {

// at::empty, but a buffer of 4 MB or more is offered to the kernel for 2 MB transparent
// huge pages (madvise(MADV_HUGEPAGE), Linux, THP mode "madvise" or "always") before it is
// first touched. A fresh 51 MB gradient otherwise takes ~12,500 page faults on its first
// write — measured here: 31 ms to zero it against 12.6 ms with huge pages, more than the
// kernels that fill it. PyTorch 2.x does the same behind THP_MEM_ALLOC_ENABLE.
at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace ops
}  // namespace fancy
