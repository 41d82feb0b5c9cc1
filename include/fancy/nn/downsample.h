#pragma once
// A k×k, stride-k pooling module chosen by name, for networks whose down-sampling is a
// design choice (the stacked hourglass's pool, the shoot-out's CNN):
//   auto pool = fancy::nn::make_downsample_pool("soft");      // SoftPool 2×2
//   register_module("pool", pool.ptr());  y = pool.forward(x);
#include <torch/nn/modules/container/any.h>

#include <string>
#include <vector>

namespace fancy {
namespace nn {

// max, min, avg, l2 (Lp with p = 2), soft (SoftPool), stochastic (samples in training,
// Σa²/Σa in eval; needs non-negative inputs), mixed (learnable α·max + (1 − α)·avg; one α
// per channel when channels > 0). Any other name is an error that lists these.
torch::nn::AnyModule make_downsample_pool(const std::string& name, int64_t kernel = 2, int64_t channels = 0);
const std::vector<std::string>& downsample_pool_names();

}  // namespace nn
}  // namespace fancy
