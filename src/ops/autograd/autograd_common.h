#pragma once
// What the autograd kernels of fancy's ops share.
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <string>

namespace fancy {
namespace ops {

// Backward kernels compute gradients with the ops' own backward kernels, which have no
// autograd of their own: asking for a second derivative is an error that says so.
inline void refuse_double_backward(const std::string& op) {
  TORCH_CHECK(!at::GradMode::is_enabled(), "fancy::", op, ": double backward (create_graph=True) is not supported");
}

}  // namespace ops
}  // namespace fancy
