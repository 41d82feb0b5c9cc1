#include "ops/large_alloc.h"

#include <ATen/ops/empty.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/Storage.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fancy {
namespace ops {

#if defined(__linux__) && defined(MADV_HUGEPAGE)
namespace {

constexpr size_t kHuge = size_t(1) << 21;

// A mapping [base, base + len) whose data start on its first 2 MB boundary.
struct Block {
  void* base;
  size_t len;
  char* data() const { return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~(kHuge - 1)); }
  size_t capacity() const { return len - static_cast<size_t>(data() - static_cast<char*>(base)); }
};

class BlockCache {
 public:
  // A kept block that holds `bytes` and is at most a quarter larger (the smallest such;
  // a block has up to two huge pages of rounding and alignment room besides), else a
  // fresh mapping; base is nullptr when mmap fails.
  Block take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      int best = -1;
      for (int i = 0; i < static_cast<int>(kept_.size()); ++i) {
        const size_t cap = kept_[i].capacity();
        if (cap >= bytes && cap <= bytes + bytes / 4 + 2 * kHuge && (best < 0 || cap < kept_[best].capacity())) {
          best = i;
        }
      }
      if (best >= 0) {
        const Block b = kept_[best];
        kept_bytes_ -= b.len;
        kept_.erase(kept_.begin() + best);
        return b;
      }
    }
    const size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;  // + room to align
    void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return {nullptr, 0};
    // Huge pages for the whole 2 MB pages of the data only: the last partial one stays in
    // small pages, so the resident memory is the tensor's size, not rounded up to 2 MB.
    const Block b{base, len};
    madvise(b.data(), bytes / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: errors are harmless
    return b;
  }

  // Keeps b for a later take; unmaps the oldest kept blocks beyond the limits.
  void give(Block b) {
    std::vector<Block> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      kept_.push_back(b);
      kept_bytes_ += b.len;
      while (kept_.size() > kLargeCacheBlocks || kept_bytes_ > kLargeCacheBytes) {
        drop.push_back(kept_.front());
        kept_bytes_ -= kept_.front().len;
        kept_.erase(kept_.begin());
      }
    }
    for (const Block& d : drop) munmap(d.base, d.len);
  }

 private:
  std::mutex mu_;
  std::vector<Block> kept_;  // oldest first
  size_t kept_bytes_ = 0;
};

// Never destroyed: a tensor may die during static destruction and hand its block back.
BlockCache& cache() {
  static BlockCache* c = new BlockCache();
  return *c;
}

void give_back(void* ctx) {
  Block* b = static_cast<Block*>(ctx);
  cache().give(*b);
  delete b;
}

// Without the cache: huge pages for the 2 MB-aligned part inside malloc's buffer (the
// advice never reaches a neighbour), so that fresh memory faults 2 MB at a time.
at::Tensor advise_huge(at::Tensor t) {
  const auto start = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (start + kHuge - 1) & ~(uintptr_t(kHuge) - 1), hi = (start + t.nbytes()) & ~(uintptr_t(kHuge) - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // advice only
  return t;
}

// FANCY_LARGE_CACHE=0 in the environment turns the cache off (plain at::empty).
bool cache_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("FANCY_LARGE_CACHE");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

}  // namespace

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options) {
  size_t bytes = options.dtype().itemsize();
  for (const int64_t s : sizes) bytes *= static_cast<size_t>(s);
  if (!options.device().is_cpu() || bytes < 2 * kHuge || options.layout() != c10::kStrided) {
    return at::empty(sizes, options);
  }
  if (!cache_enabled()) return advise_huge(at::empty(sizes, options));
  const Block b = cache().take(bytes);
  if (b.base == nullptr) return at::empty(sizes, options);
  auto* ctx = new Block(b);
  c10::DataPtr ptr(b.data(), ctx, &give_back, c10::Device(c10::kCPU));
  // Resizable through the CPU allocator, like at::empty's storage (a resize_ that grows it
  // moves the data to malloc'd memory and hands this block back).
  c10::Storage storage(c10::Storage::use_byte_size_t(), static_cast<int64_t>(bytes), std::move(ptr),
                       c10::GetCPUAllocator(), /*resizable=*/true);
  at::Tensor t = at::empty({0}, options);
  std::vector<int64_t> strides(sizes.size());
  int64_t stride = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    strides[d] = stride;
    stride *= std::max<int64_t>(sizes[d], 1);
  }
  t.set_(storage, 0, sizes, strides);
  return t;
}

#else

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options) { return at::empty(sizes, options); }

#endif

}  // namespace ops
}  // namespace fancy
