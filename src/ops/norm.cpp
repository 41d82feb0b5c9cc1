// batch_norm_relu's schemas (declared once, here) and its C++ entry points
// (include/fancy/norm.h). CPU: ops/cpu/norm_dispatch.cpp (loops in norm_kernels.cpp);
// autograd: ops/autograd/norm_autograd.cpp.
#include "fancy/norm.h"

#include "ops/op_handle.h"

#include <torch/library.h>
#include <torch/nn/modules/batchnorm.h>

TORCH_LIBRARY_FRAGMENT(fancy, m) {
  // relu(batch_norm(input)), the arguments of torch.nn.functional.batch_norm.
  m.def("batch_norm_relu(Tensor input, Tensor(a!)? running_mean, Tensor(b!)? running_var, Tensor? weight=None, "
        "Tensor? bias=None, bool training=False, float momentum=0.1, float eps=1e-05) -> Tensor");
  // The forward with what the backward needs: (output, mean, 1/√(var + eps)) — the
  // batch's statistics in training, the running ones in evaluation.
  m.def("batch_norm_relu_forward(Tensor input, Tensor(a!)? running_mean, Tensor(b!)? running_var, Tensor? weight, "
        "Tensor? bias, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)");
  // Gradients for (input, weight, bias), each computed when its output_mask entry is set.
  m.def("batch_norm_relu_backward(Tensor grad_output, Tensor input, Tensor output, Tensor? weight, Tensor mean, "
        "Tensor invstd, bool training, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
}

namespace fancy {

using at::Tensor;

namespace {
c10::optional<Tensor> opt(const Tensor& t) { return t.defined() ? c10::optional<Tensor>(t) : c10::nullopt; }
}  // namespace

Tensor batch_norm_relu(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps) {
  static auto op = ops::op_handle<Tensor(const Tensor&, const c10::optional<Tensor>&, const c10::optional<Tensor>&,
                                         const c10::optional<Tensor>&, const c10::optional<Tensor>&, bool, double,
                                         double)>("batch_norm_relu");
  return op.call(input, opt(running_mean), opt(running_var), opt(weight), opt(bias), training, momentum, eps);
}

namespace nn {

Tensor batch_norm_relu(torch::nn::BatchNorm2dImpl& bn, const Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "fancy::nn::batch_norm_relu: a BatchNorm2d takes 4-D input (N, C, H, W), got ", x.dim(),
              "-D input of shape ", x.sizes());
  const auto& o = bn.options;
  if (!o.momentum().has_value()) return torch::relu(bn.forward(x));
  const bool training = bn.is_training() || !o.track_running_stats();
  if (bn.is_training() && o.track_running_stats()) bn.num_batches_tracked.add_(1);
  return fancy::batch_norm_relu(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training, *o.momentum(),
                                o.eps());
}

}  // namespace nn
}  // namespace fancy
