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
//
// With `zeroed` (for buffers a kernel scatters into, zero elsewhere): a CPU buffer of 32 MB
// or more is mapped afresh from the kernel here, 2 MB-aligned, and *zeroed is set — the
// kernel hands out zero pages, so the caller skips its own fill (a 51 MB gradient is then
// written once instead of twice). glibc's malloc maps every buffer of that size afresh
// anyway (its mmap threshold never rises above 32 MB), so this costs nothing it would not;
// smaller buffers come from malloc, which reuses them warm, and *zeroed is false.
at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options, bool* zeroed = nullptr);

// Zeros through empty_large: filled only when the buffer did not come zeroed.
at::Tensor zeros_large(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace ops
}  // namespace fancy
