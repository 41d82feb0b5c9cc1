// Benchmark: the stacked hourglass in C++ — training images/s (RMSprop, MSE over the
// stacks) and inference latency (batch 1, eval mode). bench/bench_pose.py runs it next
// to the same network written in Python PyTorch, at equal threads.
//
// usage: bench_pose [--threads N] [--stacks 2] [--features 128] [--input 128] [--batch 8]
//                   [--steps 20] [--pool max] [--bf16 0|1]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fancy/pose/heatmap.h"
#include "fancy/pose/hourglass.h"

namespace pose = fancy::pose;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int64_t threads = 1, stacks = 2, features = 128, input = 128, batch = 8, steps = 20;
  std::string pool = "max";
  bool bf16 = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--pool") { pool = argv[i + 1]; continue; }
    const int64_t v = std::stoll(argv[i + 1]);
    if (k == "--threads") threads = v;
    else if (k == "--stacks") stacks = v;
    else if (k == "--features") features = v;
    else if (k == "--input") input = v;
    else if (k == "--batch") batch = v;
    else if (k == "--steps") steps = v;
    else if (k == "--bf16") bf16 = v != 0;
    else { std::fprintf(stderr, "bench_pose: unknown option %s\n", k.c_str()); return 2; }
  }
  at::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  pose::StackedHourglass net(
      pose::HourglassOptions().stacks(stacks).features(features).joints(17).input_size(input).pool(pool).bf16(bf16));
  torch::optim::RMSprop opt(net->parameters(), torch::optim::RMSpropOptions(2.5e-4));
  const auto x = torch::randn({batch, 3, input, input});
  const auto target = torch::rand({batch, 17, input / 4, input / 4});
  auto train_step = [&] {
    opt.zero_grad();
    torch::Tensor loss = torch::zeros({});
    for (const auto& h : net->forward(x)) loss = loss + (h - target).square().mean();
    loss.backward();
    opt.step();
  };
  net->train();
  for (int i = 0; i < 3; ++i) train_step();  // warm-up
  const auto t0 = clock_type::now();
  for (int64_t i = 0; i < steps; ++i) train_step();
  const double train_s = std::chrono::duration<double>(clock_type::now() - t0).count();

  net->eval();
  torch::NoGradGuard no_grad;
  const auto one = torch::randn({1, 3, input, input});
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) net->forward(one);
  for (int i = 0; i < 30; ++i) {
    const auto t = clock_type::now();
    net->forward(one);
    ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("params %lld train_img_s %.2f infer_ms %.3f\n", static_cast<long long>(pose::count_parameters(*net)),
              steps * batch / train_s, ms[ms.size() / 2]);
  return 0;
}
