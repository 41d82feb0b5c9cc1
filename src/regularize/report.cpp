// Sparsity reports (include/fancy/regularize.h): per weight, the share of zero filters,
// channels, kernels, rows, columns and elements, its parameters and multiply-adds.
#include <torch/torch.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fancy/regularize.h"

namespace fancy {
namespace regularize {
namespace {

// Share of groups whose max |w| is 0; -1 where the grouping does not apply.
double zero_share(const at::Tensor& w, const char* groups, int64_t min_rank, int64_t max_rank = 99) {
  if (w.dim() < min_rank || w.dim() > max_rank) return -1;
  const at::Tensor m = group_norms(w, groups, INFINITY);
  return m.eq(0).sum().item<double>() / static_cast<double>(m.numel());
}

LayerSparsity layer(const NamedParam& p) {
  torch::NoGradGuard no_grad;
  const at::Tensor w = p.value.detach();
  LayerSparsity l;
  l.name = p.name;
  l.shape = w.sizes().vec();
  l.params = w.numel();
  l.zeros = w.eq(0).sum().item<int64_t>();
  l.filters = zero_share(w, "filters", 2);
  l.channels = zero_share(w, "channels", 2);
  l.kernels = zero_share(w, "kernels", 3);
  l.rows = zero_share(w, "rows", 2, 2);
  l.columns = zero_share(w, "columns", 2, 2);
  return l;
}

std::string pct(double v) {
  if (v < 0) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f %%", 100 * v);
  return b;
}

}  // namespace

SparsityReport sparsity_report(const std::vector<NamedParam>& params) {
  SparsityReport r;
  for (const auto& p : params) {
    if (p.value.dim() < 2) continue;
    r.layers.push_back(layer(p));
    r.params += r.layers.back().params;
    r.zeros += r.layers.back().zeros;
  }
  return r;
}

SparsityReport sparsity_report(torch::nn::Sequential& net, const std::vector<int64_t>& input_shape) {
  SparsityReport r = sparsity_report(named_parameters(*net));
  // Multiply-adds from the shapes a forward pass of one input gives.
  torch::NoGradGuard no_grad;
  const bool training = net->is_training();
  net->eval();
  std::vector<int64_t> shape = input_shape;
  shape.insert(shape.begin(), 1);
  at::Tensor x = torch::zeros(shape);
  r.macs = 0;
  const auto children = net->named_children();
  size_t i = 0;
  for (auto& any : *net) {
    const std::string name = children[i++].key();
    x = any.forward(x);
    int64_t macs = -1;
    if (auto* conv = any.ptr()->as<torch::nn::Conv2d>())
      macs = x.numel() * conv->weight[0].numel();  // every output value: in/groups × kh × kw
    else if (auto* lin = any.ptr()->as<torch::nn::Linear>())
      macs = x.numel() * lin->weight.size(1);
    if (macs < 0) continue;
    r.macs += macs;
    for (auto& l : r.layers)
      if (l.name == name + ".weight") l.macs = macs;
  }
  net->train(training);
  return r;
}

std::string SparsityReport::table() const {
  std::ostringstream s;
  s << "| weight | shape | params | zero elements | zero filters | zero channels | zero kernels | zero rows | "
       "zero columns | MACs |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& l : layers) {
    std::ostringstream shape;
    for (size_t d = 0; d < l.shape.size(); ++d) shape << (d ? "×" : "") << l.shape[d];
    s << "| " << l.name << " | " << shape.str() << " | " << l.params << " | "
      << pct(l.params ? static_cast<double>(l.zeros) / l.params : 0) << " | " << pct(l.filters) << " | "
      << pct(l.channels) << " | " << pct(l.kernels) << " | " << pct(l.rows) << " | " << pct(l.columns) << " | "
      << (l.macs >= 0 ? std::to_string(l.macs) : "–") << " |\n";
  }
  s << "| **total** | | " << params << " | " << pct(params ? static_cast<double>(zeros) / params : 0)
    << " | | | | | | " << (macs >= 0 ? std::to_string(macs) : "–") << " |\n";
  return s.str();
}

std::string SparsityReport::json() const {
  nlohmann::json j = {{"params", params}, {"zeros", zeros}, {"macs", macs}, {"layers", nlohmann::json::array()}};
  auto share = [](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
  for (const auto& l : layers)
    j["layers"].push_back({{"name", l.name},
                           {"shape", l.shape},
                           {"params", l.params},
                           {"zeros", l.zeros},
                           {"zero_filters", share(l.filters)},
                           {"zero_channels", share(l.channels)},
                           {"zero_kernels", share(l.kernels)},
                           {"zero_rows", share(l.rows)},
                           {"zero_columns", share(l.columns)},
                           {"macs", l.macs >= 0 ? nlohmann::json(l.macs) : nlohmann::json(nullptr)}});
  return j.dump(1);
}

}  // namespace regularize
}  // namespace fancy
