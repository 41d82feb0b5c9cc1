// Physical pruning of conv/linear stacks (include/fancy/regularize.h): zero filters are
// removed with the matching input channels of the next layer and the batch-norm
// channels between, their constant activation folded into the next layer's bias.
#include <torch/torch.h>

#include "fancy/regularize.h"

namespace fancy {
namespace regularize {
namespace {

namespace nn = torch::nn;
using at::Tensor;

bool is_weighted(const nn::AnyModule& m) { return m.ptr()->as<nn::Conv2d>() || m.ptr()->as<nn::Linear>(); }

// Modules that act on every channel alone (so a constant channel stays constant).
bool is_channelwise(const nn::AnyModule& m) {
  auto* p = m.ptr().get();
  return p->as<nn::BatchNorm2d>() || p->as<nn::BatchNorm1d>() || p->as<nn::ReLU>() || p->as<nn::LeakyReLU>() ||
         p->as<nn::Tanh>() || p->as<nn::Sigmoid>() || p->as<nn::MaxPool2d>() || p->as<nn::Dropout>() ||
         p->as<nn::Flatten>() || p->as<nn::Identity>() ||
         (p->as<nn::AvgPool2d>() && *p->as<nn::AvgPool2d>()->options.padding() == *torch::ExpandingArray<2>(0));
}

// Whether a Conv2d adds zeros around its input (then a constant input channel does not
// give a constant contribution, and a non-zero constant cannot be folded into the bias).
bool pads_with_zeros(const nn::Conv2dImpl& conv) {
  const auto& o = conv.options;
  if (!c10::get_if<torch::enumtype::kZeros>(&o.padding_mode())) return false;
  if (c10::get_if<torch::enumtype::kValid>(&o.padding())) return false;
  if (c10::get_if<torch::enumtype::kSame>(&o.padding())) return (*o.kernel_size())[0] > 1 || (*o.kernel_size())[1] > 1;
  const auto& p = *c10::get<torch::ExpandingArray<2>>(o.padding());
  return p[0] != 0 || p[1] != 0;
}

int64_t filters(const nn::AnyModule& m) {
  if (auto* c = m.ptr()->as<nn::Conv2d>()) return c->options.out_channels();
  return m.ptr()->as<nn::Linear>()->options.out_features();
}
Tensor weight(const nn::AnyModule& m) {
  if (auto* c = m.ptr()->as<nn::Conv2d>()) return c->weight;
  return m.ptr()->as<nn::Linear>()->weight;
}
Tensor bias(const nn::AnyModule& m) {
  if (auto* c = m.ptr()->as<nn::Conv2d>()) return c->bias;
  return m.ptr()->as<nn::Linear>()->bias;
}

// The plan for one producer layer: which filters stay, and what the removed ones add to
// the consumer's bias.
struct Plan {
  Tensor keep;        // int64 indices of kept filters
  Tensor features;    // the consumer's input indices that stay (channels or flattened features)
  Tensor bias_delta;  // (consumer filters) added to the consumer's bias; undefined if nothing
  int64_t kept_constant = 0;
};

// A layer needs one filter at least (LibTorch has no 0-channel conv): when every filter
// is zero, the first stays. It is exact either way — the kept zero filter outputs its
// constant, and the others' constants are folded into the next layer's bias.
void keep_one_at_least(Tensor& keep) {
  if (!keep.any().item<bool>()) keep[0] = true;
}

Plan plan_layer(std::vector<nn::AnyModule>& mods, size_t producer, size_t consumer, const Tensor& out_shape) {
  const int64_t C = filters(mods[producer]);
  const Tensor w = weight(mods[producer]), b = bias(mods[producer]);
  const Tensor zero = w.reshape({C, -1}).abs().amax(1).eq(0);
  // Every channel of a zero filter is its bias; push that through the modules between.
  std::vector<int64_t> shape(out_shape.data_ptr<int64_t>(), out_shape.data_ptr<int64_t>() + out_shape.numel());
  Tensor probe = torch::zeros(shape, w.options());
  if (b.defined()) {
    std::vector<int64_t> view(shape.size(), 1);
    view[1] = C;
    probe = probe + b.view(view);
  }
  for (size_t k = producer + 1; k < consumer; ++k) probe = mods[k].forward(probe);
  Plan plan;
  const nn::AnyModule& next = mods[consumer];
  Tensor keep = ~zero;
  if (auto* conv = next.ptr()->as<nn::Conv2d>()) {
    TORCH_CHECK(probe.dim() == 4 && probe.size(1) == C, "fancy::regularize::prune: layer ", consumer,
                " (Conv2d) must see the ", C, " channels of layer ", producer, ", got shape ", probe.sizes());
    TORCH_CHECK(conv->options.groups() == 1, "fancy::regularize::prune: layer ", consumer,
                " is a grouped convolution (groups = ", conv->options.groups(), "), which is not supported");
    const Tensor a = probe.select(0, 0).select(1, 0).select(1, 0);  // a_c
    if (pads_with_zeros(*conv)) {
      const Tensor stuck = zero & a.ne(0);
      plan.kept_constant = stuck.sum().item<int64_t>();
      keep = keep | stuck;
    }
    keep_one_at_least(keep);
    const Tensor removed = (~keep).to(a.scalar_type());
    if (removed.sum().item<double>() > 0) plan.bias_delta = conv->weight.sum({2, 3}).matmul(a * removed);
    plan.keep = keep.nonzero().flatten();
    plan.features = plan.keep;
  } else {
    auto* lin = next.ptr()->as<nn::Linear>();
    TORCH_CHECK(probe.dim() == 2 && probe.size(1) % C == 0, "fancy::regularize::prune: layer ", consumer,
                " (Linear) must see the ", C, " outputs of layer ", producer,
                " (flattened: put a Flatten between a Conv2d and a Linear), got shape ", probe.sizes());
    const int64_t per = probe.size(1) / C;  // flattened features per channel
    keep_one_at_least(keep);
    const Tensor removed = (~keep).repeat_interleave(per).to(probe.scalar_type());
    if (removed.sum().item<double>() > 0) plan.bias_delta = lin->weight.matmul(probe[0] * removed);
    plan.keep = keep.nonzero().flatten();
    plan.features = keep.repeat_interleave(per).nonzero().flatten();
  }
  return plan;
}

// Copies the kept rows/columns of a layer's weight and bias (plus the folded constants)
// into a new layer of the reduced size.
void copy_kept(const Tensor& weight, const Tensor& bias, const Tensor& in_keep, const Tensor& out_keep,
               const Tensor& delta, Tensor& new_weight, Tensor& new_bias) {
  Tensor w = weight;
  if (in_keep.defined()) w = w.index_select(1, in_keep);
  if (out_keep.defined()) w = w.index_select(0, out_keep);
  new_weight.copy_(w);
  if (!new_bias.defined()) return;
  Tensor b = bias.defined() ? bias.clone() : torch::zeros({weight.size(0)}, weight.options());
  if (delta.defined()) b += delta;
  new_bias.copy_(out_keep.defined() ? b.index_select(0, out_keep) : b);
}

nn::AnyModule rebuild(const nn::AnyModule& m, const Tensor& in_keep, const Tensor& out_keep, const Tensor& delta) {
  auto size = [](const Tensor& keep, int64_t all) { return keep.defined() ? keep.numel() : all; };
  if (auto* c = m.ptr()->as<nn::Conv2d>()) {
    const auto& co = c->options;
    nn::Conv2d n(nn::Conv2dOptions(size(in_keep, co.in_channels()), size(out_keep, co.out_channels()), co.kernel_size())
                     .stride(co.stride())
                     .padding(co.padding())
                     .dilation(co.dilation())
                     .groups(co.groups())
                     .padding_mode(co.padding_mode())
                     .bias(c->bias.defined() || delta.defined()));
    copy_kept(c->weight, c->bias, in_keep, out_keep, delta, n->weight, n->bias);
    return nn::AnyModule(n);
  }
  if (auto* l = m.ptr()->as<nn::Linear>()) {
    auto o = l->options;
    o.in_features(size(in_keep, o.in_features()))
        .out_features(size(out_keep, o.out_features()))
        .bias(l->bias.defined() || delta.defined());
    nn::Linear n(o);
    copy_kept(l->weight, l->bias, in_keep, out_keep, delta, n->weight, n->bias);
    return nn::AnyModule(n);
  }
  auto slice_bn = [&](auto* bn, auto make) {
    auto o = bn->options;
    o.num_features(out_keep.numel());
    auto n = make(o);
    if (o.affine()) {
      n->weight.copy_(bn->weight.index_select(0, out_keep));
      n->bias.copy_(bn->bias.index_select(0, out_keep));
    }
    if (o.track_running_stats()) {
      n->running_mean.copy_(bn->running_mean.index_select(0, out_keep));
      n->running_var.copy_(bn->running_var.index_select(0, out_keep));
      n->num_batches_tracked.copy_(bn->num_batches_tracked);
    }
    return nn::AnyModule(n);
  };
  if (out_keep.defined()) {
    if (auto* bn = m.ptr()->as<nn::BatchNorm2d>())
      return slice_bn(bn, [](const nn::BatchNorm2dOptions& o) { return nn::BatchNorm2d(o); });
    if (auto* bn = m.ptr()->as<nn::BatchNorm1d>())
      return slice_bn(bn, [](const nn::BatchNorm1dOptions& o) { return nn::BatchNorm1d(o); });
  }
  return m.clone();
}

}  // namespace

PruneResult prune(nn::Sequential& net, const std::vector<int64_t>& input_shape) {
  torch::NoGradGuard no_grad;
  const bool training = net->is_training();
  net->eval();
  std::vector<nn::AnyModule> mods(net->begin(), net->end());
  const auto names = net->named_children();
  // Output shapes of every module for one input, and the weighted layers.
  const auto first = std::find_if(mods.begin(), mods.end(), is_weighted);
  TORCH_CHECK(first != mods.end(), "fancy::regularize::prune: the Sequential has no Conv2d or Linear layer");
  std::vector<int64_t> shape = input_shape;
  shape.insert(shape.begin(), 1);
  Tensor x = torch::zeros(shape, weight(*first).options());
  int64_t channels = -1;  // filters of the last weighted layer: what a batch norm after it must have
  std::vector<Tensor> out_shapes;
  std::vector<size_t> layers;
  for (size_t i = 0; i < mods.size(); ++i) {
    TORCH_CHECK(is_weighted(mods[i]) || is_channelwise(mods[i]), "fancy::regularize::prune: module ", names[i].key(),
                " (", mods[i].ptr()->name(), ") is not supported between layers (supported: Conv2d, Linear, ",
                "BatchNorm1d/2d, ReLU, LeakyReLU, Tanh, Sigmoid, MaxPool2d, AvgPool2d without padding, Dropout, ",
                "Flatten, Identity)");
    if (is_weighted(mods[i])) channels = filters(mods[i]);
    const auto* bn2 = mods[i].ptr()->as<nn::BatchNorm2d>();
    const auto* bn1 = mods[i].ptr()->as<nn::BatchNorm1d>();
    const int64_t features = bn2 ? bn2->options.num_features() : bn1 ? bn1->options.num_features() : -1;
    TORCH_CHECK(features < 0 || features == channels, "fancy::regularize::prune: batch norm ", names[i].key(), " has ",
                features, " features but follows a layer with ", channels,
                " filters (a batch norm over flattened features is not supported)");
    x = mods[i].forward(x);
    out_shapes.push_back(torch::tensor(x.sizes().vec(), torch::kLong));
    if (is_weighted(mods[i])) layers.push_back(i);
  }
  PruneResult r;
  std::vector<Tensor> keep(mods.size()), features(mods.size()), delta(mods.size());
  for (size_t j = 0; j + 1 < layers.size(); ++j) {
    const Plan p = plan_layer(mods, layers[j], layers[j + 1], out_shapes[layers[j]]);
    keep[layers[j]] = p.keep;
    features[layers[j + 1]] = p.features;
    delta[layers[j + 1]] = p.bias_delta;
    const int64_t before = filters(mods[layers[j]]);
    r.layers.push_back({names[layers[j]].key(), before, p.keep.numel(), p.kept_constant});
    r.filters_before += before;
    r.filters_after += p.keep.numel();
  }
  r.net = nn::Sequential();
  Tensor channel_keep;  // the last producer's kept filters, for the batch norms after it
  for (size_t i = 0; i < mods.size(); ++i) {
    if (is_weighted(mods[i])) {
      r.net->push_back(names[i].key(), rebuild(mods[i], features[i], keep[i], delta[i]));
      channel_keep = keep[i];
    } else {
      r.net->push_back(names[i].key(), rebuild(mods[i], Tensor(), channel_keep, Tensor()));
    }
  }
  net->train(training);
  r.net->train(training);
  return r;
}

}  // namespace regularize
}  // namespace fancy
