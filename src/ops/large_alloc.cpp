#include "ops/large_alloc.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <cstdint>
#include <functional>
#include <numeric>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fancy {
namespace ops {

namespace {

constexpr size_t kHuge = size_t(1) << 21;

// A fresh anonymous mapping of `bytes` (zero-filled by the kernel), its start 2 MB-aligned
// and offered for huge pages; nullptr when mmap fails.
void* map_zeroed(size_t bytes, size_t& mapped_bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t padded = bytes + kHuge;
  void* raw = mmap(nullptr, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t lo = (start + kHuge - 1) & ~(kHuge - 1);
  const size_t head = lo - start;
  mapped_bytes = (bytes + 4095) & ~size_t(4095);
  if (head > 0) munmap(raw, head);
  if (padded - head > mapped_bytes) munmap(reinterpret_cast<void*>(lo + mapped_bytes), padded - head - mapped_bytes);
  madvise(reinterpret_cast<void*>(lo), mapped_bytes, MADV_HUGEPAGE);  // advice only: errors are harmless
  return reinterpret_cast<void*>(lo);
#else
  (void)bytes;
  (void)mapped_bytes;
  return nullptr;
#endif
}

}  // namespace

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options, bool* zeroed) {
  if (zeroed != nullptr) *zeroed = false;
  const bool cpu = options.device().is_cpu() && options.layout() == at::kStrided;
  if (zeroed != nullptr && cpu) {
    const int64_t numel = std::accumulate(sizes.begin(), sizes.end(), int64_t{1}, std::multiplies<int64_t>());
    const size_t bytes = size_t(numel) * options.dtype().itemsize();
    size_t mapped = 0;
    void* p = bytes >= (size_t(32) << 20) ? map_zeroed(bytes, mapped) : nullptr;
    if (p != nullptr) {
      *zeroed = true;
      return at::from_blob(
          p, sizes, [mapped](void* q) { munmap(q, mapped); }, options);
    }
  }
  at::Tensor t = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t bytes = t.nbytes();
  if (cpu && bytes >= 2 * kHuge) {
    // Only the 2 MB-aligned part inside the buffer: the advice never reaches a neighbour.
    const auto start = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t lo = (start + kHuge - 1) & ~(kHuge - 1), hi = (start + bytes) & ~(kHuge - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // advice only: errors are harmless
  }
#endif
  return t;
}

at::Tensor zeros_large(at::IntArrayRef sizes, const at::TensorOptions& options) {
  bool zeroed = false;
  at::Tensor t = empty_large(sizes, options, &zeroed);
  return zeroed ? t : t.zero_();
}

}  // namespace ops
}  // namespace fancy
