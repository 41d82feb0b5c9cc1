// Pooling benchmark: every classic op against PyTorch's native op (or the composition a
// user would write where PyTorch has none), forward and forward+backward, at 1 and 2
// threads, on a large case (16×64×112×112, contiguous and channels_last) and a small one
// (64×32×28×28). Prints a markdown table: times (median), ratio, and the achieved
// bandwidth (bytes read + written per second) as a share of a streaming read (x.sum())
// of the same tensor measured in the same run.
//
// usage: bench_pool [--quick] [--only TEXT]   (--quick: 3 rounds; --only: the cases whose
// "op shape" contains TEXT)
#include "fancy/pool.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace F = torch::nn::functional;
using torch::Tensor;

namespace {

int reps = 11;

// Median ms of each function, timed in alternation (f0, f1, ..., f0, f1, ...) so that this
// VM's drifts in speed (up to 1.5x within minutes) hit every side alike. In each round a
// function first runs back to back for kRampMs untimed (at least once), then its calls
// are timed for kTimedMs (at least one). The ramp is there because streaming reads slow
// down within milliseconds of light memory traffic (as with uncore frequency scaling;
// the VM gives no way to check): on the session-26 Xeon, x.sum()
// of the 51 MB input took 4.9 ms after an 80 ms pause (a sleep, Python, or PyTorch's
// 80 ms max_pool2d) and 2.0 ms only after 15-20 ms of streaming (5.0 4.9 4.0 3.4 2.7 2.1
// 2.0 ms in a row). Timed straight after the other side's call instead, the x.sum()
// reference ran slow after PyTorch's op and fancy ran fast after the reference, which
// made fancy's share of the read rate up to 2.5 times too high there.
constexpr double kRampMs = 25.0, kTimedMs = 10.0;
std::vector<double> alternating_ms(const std::vector<std::function<void()>>& fs) {
  using clock = std::chrono::steady_clock;
  auto since = [](clock::time_point a) { return std::chrono::duration<double, std::milli>(clock::now() - a).count(); };
  std::vector<std::vector<double>> t(fs.size());
  for (int i = 0; i < reps; ++i) {
    for (size_t j = 0; j < fs.size(); ++j) {
      const auto ramp = clock::now();
      do fs[j](); while (since(ramp) < kRampMs);
      const auto timed = clock::now();
      do {
        const auto a = clock::now();
        fs[j]();
        t[j].push_back(since(a));
      } while (since(timed) < kTimedMs);
    }
  }
  std::vector<double> med;
  for (auto& v : t) {
    std::sort(v.begin(), v.end());
    med.push_back(v[v.size() / 2]);
  }
  return med;
}

struct Case {
  std::string op;
  std::function<Tensor(const Tensor&)> ours, theirs;
  bool backward = true;
};

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  // --quick: 3 rounds; --only TEXT: the cases whose "op shape" contains TEXT.
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) reps = 3;
    if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
  }
  torch::manual_seed(0);
  using namespace fancy;
  std::vector<Case> cases = {
      {"max_pool2d k2 s2", [](const Tensor& x) { return max_pool2d(x, MaxPool2dOptions(2)); },
       [](const Tensor& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(2)); }},
      {"max_pool2d k3 s2 p1", [](const Tensor& x) { return max_pool2d(x, MaxPool2dOptions(3).stride(2).padding(1)); },
       [](const Tensor& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1)); }},
      {"min_pool2d k2 s2 (vs −max(−x))", [](const Tensor& x) { return min_pool2d(x, MinPool2dOptions(2)); },
       [](const Tensor& x) { return -F::max_pool2d(-x, F::MaxPool2dFuncOptions(2)); }},
      {"min_pool2d k3 s2 p1 (vs −max(−x))",
       [](const Tensor& x) { return min_pool2d(x, MinPool2dOptions(3).stride(2).padding(1)); },
       [](const Tensor& x) { return -F::max_pool2d(-x, F::MaxPool2dFuncOptions(3).stride(2).padding(1)); }},
      {"avg_pool2d k2 s2", [](const Tensor& x) { return avg_pool2d(x, AvgPool2dOptions(2)); },
       [](const Tensor& x) { return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2)); }},
      {"avg_pool2d k3 s2 p1", [](const Tensor& x) { return avg_pool2d(x, AvgPool2dOptions(3).stride(2).padding(1)); },
       [](const Tensor& x) { return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(2).padding(1)); }},
      {"lp_pool2d p2 k2 s2", [](const Tensor& x) { return lp_pool2d(x, LPPool2dOptions(2.0, 2)); },
       [](const Tensor& x) { return F::lp_pool2d(x, F::LPPool2dFuncOptions(2.0, 2)); }},
      {"lp_pool2d p2 k3 s2 p1 (vs composition)",
       [](const Tensor& x) { return lp_pool2d(x, LPPool2dOptions(2.0, 3).stride(2).padding(1)); },
       [](const Tensor& x) {
         return (F::avg_pool2d(x * x, F::AvgPool2dFuncOptions(3).stride(2).padding(1)) * 9).sqrt();
       }},
      {"adaptive_avg_pool2d 7×7", [](const Tensor& x) { return fancy::adaptive_avg_pool2d(x, {7, 7}); },
       [](const Tensor& x) { return F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({7, 7})); }},
      {"adaptive_max_pool2d 7×7", [](const Tensor& x) { return fancy::adaptive_max_pool2d(x, {7, 7}); },
       [](const Tensor& x) { return F::adaptive_max_pool2d(x, F::AdaptiveMaxPool2dFuncOptions({7, 7})); }},
      {"adaptive_avg_pool2d 1×1", [](const Tensor& x) { return fancy::adaptive_avg_pool2d(x, {1, 1}); },
       [](const Tensor& x) { return F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({1, 1})); }},
      {"global_avg_pool (vs mean)", [](const Tensor& x) { return global_avg_pool(x); },
       [](const Tensor& x) { return x.mean({2, 3}); }},
      {"global_max_pool (vs amax)", [](const Tensor& x) { return global_max_pool(x); },
       [](const Tensor& x) { return x.amax({2, 3}); }},
  };

  struct Shape {
    std::string name;
    std::vector<int64_t> sizes;
    bool channels_last;
  };
  std::vector<Shape> shapes = {{"16×64×112×112", {16, 64, 112, 112}, false},
                               {"16×64×112×112 CL", {16, 64, 112, 112}, true},
                               {"64×32×28×28", {64, 32, 28, 28}, false},
                               {"64×32×28×28 CL", {64, 32, 28, 28}, true}};

  std::printf("# fancy pooling benchmark\n\nCPU: %s; LibTorch %s; median over %d rounds, fancy, PyTorch (and x.sum()) timed in "
              "alternation, each side in each round after %.0f ms of its own untimed calls, then every call for %.0f ms (at least one); "
              "times in ms; ratio = PyTorch / fancy; BW%% = (bytes in + out) / time as a share of x.sum()'s read rate.\n\n",
              cpu_name().c_str(), TORCH_VERSION, reps, kRampMs, kTimedMs);
  std::printf("| op | shape | thr | fancy fwd | torch fwd | ratio | fancy BW%% | torch BW%% | fancy f+b | torch f+b | ratio |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& shape : shapes) {
    Tensor x = torch::randn(shape.sizes);
    if (shape.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const double in_bytes = x.numel() * 4.0;
    for (int threads : {1, 2}) {
      at::set_num_threads(threads);
      for (const auto& c : cases) {
        if ((c.op + " " + shape.name).find(only) == std::string::npos) continue;
        const double out_bytes = c.ours(x).numel() * 4.0;
        // The read-rate reference (x.sum()) is timed with each case, in the same rounds.
        const auto fwd = alternating_ms({[&] { (void)x.sum(); }, [&] { (void)c.ours(x); }, [&] { (void)c.theirs(x); }});
        const double read_ms = fwd[0], ours = fwd[1], theirs = fwd[2];
        Tensor xg = x.detach().requires_grad_();
        auto fb = [&](const std::function<Tensor(const Tensor&)>& f) {
          return [&xg, f] {
            xg.mutable_grad() = Tensor();
            f(xg).sum().backward();
          };
        };
        const auto both = alternating_ms({fb(c.ours), fb(c.theirs)});
        const double ours_fb = both[0], theirs_fb = both[1];
        const double share = (in_bytes + out_bytes) / in_bytes * read_ms;
        std::printf("| %s | %s | %d | %.3f | %.3f | %.2f× | %.0f%% | %.0f%% | %.3f | %.3f | %.2f× |\n", c.op.c_str(),
                    shape.name.c_str(), threads, ours, theirs, theirs / ours, 100 * share / ours,
                    100 * share / theirs, ours_fb, theirs_fb, theirs_fb / ours_fb);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
