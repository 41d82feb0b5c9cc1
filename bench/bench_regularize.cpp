// Group lasso benchmark: penalty + gradient over a 25M-parameter model (ResNet-50's conv
// and linear weight shapes) against one x.abs().sum() over the same weights — the cost
// of reading them once — at 1 and 2 threads: through autograd (penalty(), backward into
// fresh .grad tensors) and fused (add_group_lasso_grad_ into existing .grad tensors);
// plus the proximal step and a per-group loop through the dispatcher (what a user writes
// without fancy's group ops) for scale.
// Prints a markdown table with the ratio to the baseline.
//
// usage: bench_regularize [--quick] [--only TEXT]   (--only: just the rows whose name
// contains TEXT, besides the baseline)
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "fancy/regularize.h"

namespace reg = fancy::regularize;
using torch::Tensor;

namespace {

int reps = 9;
std::string only;  // --only: rows whose name contains this

double median_ms(const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// ResNet-50's weights of rank >= 2 (25.5M parameters).
std::vector<Tensor> resnet50_weights() {
  std::vector<Tensor> w;
  auto conv = [&](int64_t o, int64_t i, int64_t k) { w.push_back(torch::randn({o, i, k, k}) * 0.05); };
  conv(64, 3, 7);
  const int64_t blocks[] = {3, 4, 6, 3}, widths[] = {64, 128, 256, 512};
  int64_t in = 64;
  for (int s = 0; s < 4; ++s) {
    const int64_t c = widths[s], out = 4 * c;
    for (int64_t b = 0; b < blocks[s]; ++b) {
      conv(c, b == 0 ? in : out, 1);
      conv(c, c, 3);
      conv(out, c, 1);
      if (b == 0) conv(out, in, 1);  // projection shortcut
    }
    in = out;
  }
  w.push_back(torch::randn({1000, 2048}) * 0.05);
  for (auto& t : w) t.requires_grad_();
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      reps = 3;
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench_regularize [--quick] [--only TEXT]\n");
      return 2;
    }
  }
  auto weights = resnet50_weights();
  int64_t params = 0;
  for (const auto& w : weights) params += w.numel();
  std::printf("weights: %zu tensors, %.2fM parameters (ResNet-50 shapes), float32\n\n", weights.size(), params / 1e6);
  std::printf("| threads | case | ms | × abs().sum() |\n|---:|---|---:|---:|\n");
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    auto zero_grads = [&] {
      for (auto& w : weights) w.mutable_grad() = Tensor();
    };
    const double base = median_ms([&] {
      torch::NoGradGuard g;
      for (const auto& w : weights) w.abs().sum();
    });
    auto row = [&](const std::string& name, const std::function<void()>& f) {
      if (!only.empty() && name.find(only) == std::string::npos) return;
      const double ms = median_ms(f);
      std::printf("| %d | %s | %.2f | %.2f |\n", threads, name.c_str(), ms, ms / base);
    };
    std::printf("| %d | baseline: Σ w.abs().sum() | %.2f | 1.00 |\n", threads, base);
    for (const char* groups : {"filters", "channels", "kernels"}) {
      const std::string name = std::string("group lasso (") + groups + "): penalty + backward";
      row(name, [&] {
            zero_grads();
            Tensor total = torch::zeros({});
            for (const auto& w : weights)
              if (w.dim() >= 3 || std::strcmp(groups, "kernels") != 0)  // kernels: conv weights only
                total = total + reg::group_lasso(w, groups);
            total.backward();
          });
    }
    // The fused gradient: what a training loop does after loss.backward(), when every
    // weight already has its .grad (here zeros, allocated once).
    for (auto& w : weights) w.mutable_grad() = torch::zeros_like(w);
    for (const char* groups : {"filters", "channels", "kernels"}) {
      const std::string name = std::string("group lasso (") + groups + "): fused penalty + gradient into .grad";
      row(name, [&] {
            double total = 0;
            for (auto& w : weights)
              if (w.dim() >= 3 || std::strcmp(groups, "kernels") != 0)
                total += reg::add_group_lasso_grad_(w.mutable_grad(), w, groups, 1e-6);
            (void)total;
          });
    }
    row("group lasso (filters): proximal step", [&] {
          for (auto& w : weights) {
            Tensor v = w.detach();
            reg::prox_group_lasso_(v, "filters", 1e-6);
          }
        });
    row("L1: penalty + backward", [&] {
          zero_grads();
          Tensor total = torch::zeros({});
          for (const auto& w : weights) total = total + reg::l1(w);
          total.backward();
        });
    // What a user writes without group ops: one norm per filter through the dispatcher.
    const int saved = reps;
    reps = 1;
    if (threads == 1) row("per-filter loop of w[f].norm() (penalty + backward)", [&] {
          zero_grads();
          Tensor total = torch::zeros({});
          for (const auto& w : weights)
            for (int64_t f = 0; f < w.size(0); ++f) total = total + w[f].norm();
          total.backward();
        });
    reps = saved;
  }
  return 0;
}
