#pragma once
// Allocation of the large outputs and gradients of fancy's kernels.
#include <ATen/core/Tensor.h>

#include <cstddef>

namespace fancy {
namespace ops {

// at::empty, but a CPU buffer of 4 MB or more comes from a small cache of large blocks
// instead of malloc. A block starts on a 2 MB boundary and is offered to the kernel for
// transparent huge pages (madvise(MADV_HUGEPAGE); Linux, THP mode "madvise" or "always")
// before it is first touched; when its tensor dies the block is kept, still mapped, for
// the next request it fits (at most a quarter larger). A training step's outputs and
// gradients, the same sizes every step, then reuse memory that is already mapped:
// otherwise each fresh 51 MB gradient took ~12,500 page faults on its first write (31 ms
// to zero it against 12.6 ms with huge pages, and 0 faults with reuse), and whether
// malloc reused or returned such a block depended on what the process had freed before
// (k-max's forward+backward at 2 threads took 7.3–9.2 ms in runs where its gradient
// faulted, 3.6–4.7 ms where it did not). The cache keeps at most kLargeCacheBlocks blocks and kLargeCacheBytes bytes of
// freed blocks mapped, the oldest unmapped first. FANCY_LARGE_CACHE=0 in the environment
// turns it off (at::empty, its 2 MB-aligned interior advised for huge pages). Elsewhere
// (not Linux) it is at::empty.
at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options);

constexpr size_t kLargeCacheBlocks = 6;
constexpr size_t kLargeCacheBytes = size_t(512) << 20;

}  // namespace ops
}  // namespace fancy
