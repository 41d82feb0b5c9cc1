#include "fancy/nn/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace fancy {
namespace nn {

namespace {
// LibTorch 2.4 replaced the CPU-specific calls with per-device ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool cpu_enabled() { return at::autocast::is_autocast_enabled(at::kCPU); }
void set_cpu_enabled(bool on) { at::autocast::set_autocast_enabled(at::kCPU, on); }
c10::ScalarType cpu_dtype() { return at::autocast::get_autocast_dtype(at::kCPU); }
void set_cpu_dtype(c10::ScalarType t) { at::autocast::set_autocast_dtype(at::kCPU, t); }
#else
bool cpu_enabled() { return at::autocast::is_cpu_enabled(); }
void set_cpu_enabled(bool on) { at::autocast::set_cpu_enabled(on); }
c10::ScalarType cpu_dtype() { return at::autocast::get_autocast_cpu_dtype(); }
void set_cpu_dtype(c10::ScalarType t) { at::autocast::set_autocast_cpu_dtype(t); }
#endif
}  // namespace

bool native_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

CpuAutocast::CpuAutocast(bool enabled) : enabled_(enabled), was_enabled_(cpu_enabled()), was_dtype_(cpu_dtype()) {
  if (!enabled_) return;
  set_cpu_dtype(at::kBFloat16);
  set_cpu_enabled(true);
}

CpuAutocast::~CpuAutocast() {
  if (!enabled_) return;
  set_cpu_enabled(was_enabled_);
  set_cpu_dtype(was_dtype_);
  if (!was_enabled_) at::autocast::clear_cache();  // the outermost scope drops the cached weight casts
}

}  // namespace nn
}  // namespace fancy
