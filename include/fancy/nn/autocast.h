#pragma once
// Mixed precision on the CPU: inside a CpuAutocast scope, convolutions and matrix
// products run in bfloat16 (weights and optimizer state stay float32; autocast casts
// them per call and caches the casts until the scope ends). On CPUs with AVX512-BF16 or
// AMX this roughly doubles convolution throughput; elsewhere bfloat16 is emulated and
// slower, so `native_bf16()` is the usual switch:
//   fancy::nn::CpuAutocast bf16(fancy::nn::native_bf16());
//   auto y = model->forward(x);  // y may be bfloat16
#include <c10/core/ScalarType.h>

namespace fancy {
namespace nn {

// True when the CPU computes bfloat16 dot products natively (AVX512-BF16; every CPU
// with AMX-BF16 also has it).
bool native_bf16();

class CpuAutocast {
 public:
  explicit CpuAutocast(bool enabled);
  ~CpuAutocast();
  CpuAutocast(const CpuAutocast&) = delete;
  CpuAutocast& operator=(const CpuAutocast&) = delete;

 private:
  bool enabled_, was_enabled_;
  c10::ScalarType was_dtype_;
};

}  // namespace nn
}  // namespace fancy
