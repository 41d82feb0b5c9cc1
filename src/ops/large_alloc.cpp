#include "ops/large_alloc.h"

#include <ATen/ops/empty.h>

#include <cstdint>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fancy {
namespace ops {

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor t = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  const size_t bytes = t.nbytes();
  if (t.device().is_cpu() && bytes >= 2 * kHuge) {
    // Only the 2 MB-aligned part inside the buffer: the advice never reaches a neighbour.
    const auto start = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t lo = (start + kHuge - 1) & ~(kHuge - 1), hi = (start + bytes) & ~(kHuge - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // advice only: errors are harmless
  }
#endif
  return t;
}

}  // namespace ops
}  // namespace fancy
