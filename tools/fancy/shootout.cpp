// fancy shootout: the same small CNN trained on Fashion-MNIST once per pooling method,
// reported as a table (stdout), report.json, report.md and a chart (PNG).
#include "cli_util.h"
#include "fashion_mnist.h"
#include "fancy/fancy_pool.h"
#include "fancy/pool.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A pooling method: input, training mode, and the run's generator (for the methods that
// sample, so the same seed gives the same run).
using PoolFn = std::function<torch::Tensor(const torch::Tensor&, bool, at::Generator&)>;

// How the network ends: flatten + two dense layers, or (the chapter's point) a 1×1
// convolution to the 10 classes followed by global average or global max pooling.
enum class Head { Dense, GlobalAvg, GlobalMax };

// One entry of the shoot-out: the 2×2 / stride-2 down-sampling (none: the convolutions
// take stride 2 instead, as AlphaGo's CNN has no pooling) and the head.
struct Method {
  std::string title;
  PoolFn pool;  // empty: no pooling
  Head head = Head::Dense;
};

PoolFn max2x2() {
  return [](const torch::Tensor& x, bool, at::Generator&) { return fancy::max_pool2d(x, fancy::MaxPool2dOptions(2)); };
}

// The pooling methods (2×2, stride 2), then the variants of the chapter's claims.
const std::map<std::string, Method>& methods() {
  using T = torch::Tensor;
  static const fancy::WindowOptions<2> w2(2);
  static const std::map<std::string, Method> m = {
      {"max", {"max pooling", [](const T& x, bool, at::Generator&) { return fancy::max_pool2d(x, fancy::MaxPool2dOptions(2)); }}},
      {"avg", {"average pooling", [](const T& x, bool, at::Generator&) { return fancy::avg_pool2d(x, fancy::AvgPool2dOptions(2)); }}},
      {"min", {"min pooling", [](const T& x, bool, at::Generator&) { return fancy::min_pool2d(x, fancy::MinPool2dOptions(2)); }}},
      {"l2", {"L2 pooling (Lp, p = 2)", [](const T& x, bool, at::Generator&) { return fancy::lp_pool2d(x, fancy::LPPool2dOptions(2.0, 2)); }}},
      {"soft", {"SoftPool", [](const T& x, bool, at::Generator&) { return fancy::soft_pool<2>(x, w2); }}},
      {"stochastic", {"stochastic pooling", [](const T& x, bool training, at::Generator& g) {
                        return std::get<0>(fancy::stochastic_pool<2>(x, w2, training, g, false));
                      }}},
      {"mixed", {"mixed pooling (random α)", [](const T& x, bool training, at::Generator& g) {
                   return fancy::mixed_pool<2>(x, torch::full({}, 0.5), w2, training, /*random=*/true, g);
                 }}},
      {"gem", {"GeM (p = 3, 2×2 windows)", [](const T& x, bool, at::Generator&) {
                 return fancy::gem_pool(x, torch::full({}, 3.0), 1e-6, std::vector<int64_t>{2, 2});
               }}},
      {"none", {"no pooling (stride-2 convolutions)", PoolFn()}},
      {"gap-head", {"max pooling, global average pooling head", max2x2(), Head::GlobalAvg}},
      {"gmp-head", {"max pooling, global max pooling head", max2x2(), Head::GlobalMax}},
  };
  return m;
}

struct NetImpl : torch::nn::Module {
  NetImpl(const Method& m, uint64_t seed)
      : pool(m.pool),
        head(m.head),
        gen(at::detail::createCPUGenerator(seed + 1)),
        conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).padding(1).stride(m.pool ? 1 : 2)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1).stride(m.pool ? 1 : 2)))) {
    if (head == Head::Dense) {
      fc1 = register_module("fc1", torch::nn::Linear(64 * 7 * 7, 128));
      fc2 = register_module("fc2", torch::nn::Linear(128, 10));
    } else {
      classes = register_module("classes", torch::nn::Conv2d(torch::nn::Conv2dOptions(64, 10, 1)));
    }
  }
  torch::Tensor down(const torch::Tensor& x) { return pool ? pool(x, is_training(), gen) : x; }
  torch::Tensor forward(torch::Tensor x) {
    x = down(torch::relu(conv1(x)));
    x = down(torch::relu(conv2(x)));
    if (head == Head::GlobalAvg) return fancy::global_avg_pool(classes(x), false);
    if (head == Head::GlobalMax) return fancy::global_max_pool(classes(x), false);
    return fc2(torch::relu(fc1(x.flatten(1))));
  }
  PoolFn pool;
  Head head;
  at::Generator gen;
  torch::nn::Conv2d conv1, conv2, classes{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Net);

class Progress {
 public:
  Progress(std::string label, int64_t total) : label_(std::move(label)), total_(total), tty_(isatty(2)) {}
  void update(int64_t done, double loss, double img_per_s) {
    const auto now = Clock::now();
    const bool last = done >= total_;
    if (!last && (now - shown_ < std::chrono::milliseconds(tty_ ? 200 : 10000))) return;
    shown_ = now;
    const int width = 30, fill = int(width * done / total_);
    std::fprintf(stderr, "%s%-28s [%s%s] %3d%%  loss %.4f  %6.0f img/s%s", tty_ ? "\r" : "", label_.c_str(),
                 std::string(fill, '#').c_str(), std::string(width - fill, '.').c_str(),
                 int(100 * done / total_), loss, img_per_s, (last || !tty_) ? "\n" : "");
    std::fflush(stderr);
  }

 private:
  std::string label_;
  int64_t total_;
  bool tty_;
  Clock::time_point shown_{};
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double accuracy(Net& net, const fancy::data::ImageSet& test) {
  torch::NoGradGuard no_grad;
  net->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < test.images.size(0); i += 1000) {
    auto x = test.images.slice(0, i, i + 1000);
    correct += net->forward(x).argmax(1).eq(test.labels.slice(0, i, i + 1000)).sum().item<int64_t>();
  }
  return 100.0 * correct / test.images.size(0);
}

// Forward + backward of the method on the network's two pooling inputs, ms per batch.
double pool_ms(const PoolFn& pool, int64_t batch) {
  if (!pool) return 0;
  auto a = torch::randn({batch, 32, 28, 28}).relu().requires_grad_();
  auto b = torch::randn({batch, 64, 14, 14}).relu().requires_grad_();
  auto gen = at::detail::createCPUGenerator(0);
  auto once = [&] {
    pool(a, true, gen).sum().backward();
    pool(b, true, gen).sum().backward();
  };
  once();
  const int reps = 10;
  auto t = Clock::now();
  for (int i = 0; i < reps; ++i) once();
  return 1e3 * seconds_since(t) / reps;
}

struct Result {
  std::string method, title;
  uint64_t seed = 0;
  double accuracy = 0, train_s = 0, pool_ms = 0;
  std::vector<double> epoch_loss;
};

Result train_one(const std::string& method, const fancy::data::ImageSet& train, const fancy::data::ImageSet& test,
                 int epochs, int64_t batch, uint64_t seed, int64_t limit) {
  const Method& m = methods().at(method);
  const std::string& title = m.title;
  const PoolFn& pool = m.pool;
  torch::manual_seed(seed);
  Net net(m, seed);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  const int64_t n = limit > 0 ? std::min<int64_t>(limit, train.images.size(0)) : train.images.size(0);
  Result r{method, title};
  r.seed = seed;
  auto gen = at::detail::createCPUGenerator(seed);
  const auto start = Clock::now();
  for (int e = 0; e < epochs; ++e) {
    net->train();
    auto order = torch::randperm(n, gen, torch::kLong);
    Progress bar(method + " epoch " + std::to_string(e + 1) + "/" + std::to_string(epochs), n);
    double loss_sum = 0;
    int64_t seen = 0;
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n; i += batch) {
      auto idx = order.slice(0, i, std::min(i + batch, n));
      auto x = train.images.index_select(0, idx);
      auto y = train.labels.index_select(0, idx);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>() * idx.size(0);
      seen += idx.size(0);
      bar.update(seen, loss_sum / seen, seen / seconds_since(t0));
    }
    r.epoch_loss.push_back(loss_sum / seen);
  }
  r.train_s = seconds_since(start);
  r.accuracy = accuracy(net, test);
  r.pool_ms = pool_ms(pool, batch);
  return r;
}

// Writes `text` to path through a temporary name, so a reader never sees half a file.
// Mean and sample standard deviation.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  double m = 0, q = 0;
  for (double x : v) m += x / v.size();
  for (double x : v) q += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(q / (v.size() - 1)) : 0.0};
}

// One row per method; with several seeds, mean ± standard deviation over them.
std::string markdown(const std::vector<Result>& results, int threads, int epochs, int seeds) {
  std::ostringstream s;
  s << "| method | test accuracy (%) | training time (s) | pooling fwd+bwd (ms/batch) |\n"
    << "|---|---:|---:|---:|\n";
  std::vector<std::string> order;
  for (const auto& r : results) {
    if (std::find(order.begin(), order.end(), r.method) == order.end()) order.push_back(r.method);
  }
  for (const auto& name : order) {
    std::vector<double> acc, secs, ms;
    std::string title;
    for (const auto& r : results) {
      if (r.method != name) continue;
      acc.push_back(r.accuracy);
      secs.push_back(r.train_s);
      ms.push_back(r.pool_ms);
      title = r.title;
    }
    const auto [am, as] = mean_std(acc);
    const auto [tm, ts] = mean_std(secs);
    const double pm = mean_std(ms).first;
    char line[512], ms_text[32] = "–";
    if (pm > 0) std::snprintf(ms_text, sizeof(ms_text), "%.3f", pm);
    if (seeds > 1) {
      std::snprintf(line, sizeof(line), "| %s | %.2f ± %.2f | %.1f ± %.1f | %s |\n", title.c_str(), am, as, tm, ts,
                    ms_text);
    } else {
      std::snprintf(line, sizeof(line), "| %s | %.2f | %.1f | %s |\n", title.c_str(), am, tm, ms_text);
    }
    s << line;
  }
  s << "\n" << epochs << " epoch(s), " << threads << " thread(s)";
  if (seeds > 1) s << ", mean ± std over " << seeds << " seeds";
  s << ".\n";
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fancy shootout: train the same CNN on Fashion-MNIST once per pooling method and compare "
               "test accuracy, training time and pooling speed. Writes report.json, report.md and "
               "shootout.png into --out."};
  std::string data = "/usr/share/datasets/fashion-mnist", out = "runs/shootout", method_list;
  int epochs = 1, threads = int(std::max(1u, std::thread::hardware_concurrency()));
  int64_t batch = 128, limit = 0;
  uint64_t seed = 1;
  std::vector<std::string> names;
  for (const auto& m : methods()) names.push_back(m.first);
  std::vector<std::string> chosen = {"max", "avg", "min", "l2", "soft", "stochastic", "mixed", "gem"};
  app.add_option("--data", data, "folder with Fashion-MNIST's {train,t10k}-*-ubyte.gz")->capture_default_str();
  app.add_option("--out", out, "run folder for report.json, report.md and shootout.png")->capture_default_str();
  app.add_option("--methods", chosen, "pooling methods to train, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  app.add_option("--epochs", epochs, "training epochs per method")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch-size", batch, "minibatch size")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--train-limit", limit, "use only the first N shuffled training images (0 = all 60000)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--seed", seed, "seed for weights and shuffling (the first of --seeds)")->capture_default_str();
  int seeds = 1;
  bool full = false;
  app.add_option("--seeds", seeds, "train every method with this many seeds (seed, seed+1, ...) and report "
                 "mean ± std")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--full", full, "the full comparison: every method and variant (no pooling, global average / max "
               "pooling heads), 3 seeds, 3 epochs, unless --methods/--seeds/--epochs say otherwise");
  app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (full) {
      if (app.count("--methods") == 0) chosen = {"max", "avg", "min", "l2", "soft", "stochastic", "mixed", "gem",
                                                 "none", "gap-head", "gmp-head"};
      if (app.count("--seeds") == 0) seeds = 3;
      if (app.count("--epochs") == 0) epochs = 3;
    }
    at::set_num_threads(threads);
    auto train = fancy::data::load_fashion_mnist(data, "train");
    auto test = fancy::data::load_fashion_mnist(data, "t10k");
    std::vector<Result> results;
    for (const auto& m : chosen) {
      for (int k = 0; k < seeds; ++k) results.push_back(train_one(m, train, test, epochs, batch, seed + k, limit));
    }

    const std::string table = markdown(results, threads, epochs, seeds);
    std::cout << "\n" << table;
    fs::create_directories(out);
    nlohmann::json j;
    j["dataset"] = data;
    j["epochs"] = epochs;
    j["threads"] = threads;
    j["seed"] = seed;
    j["seeds"] = seeds;
    j["batch_size"] = batch;
    j["train_images"] = limit > 0 ? std::min<int64_t>(limit, train.images.size(0)) : train.images.size(0);
    for (const auto& r : results) {
      j["results"].push_back({{"method", r.method}, {"title", r.title}, {"seed", r.seed}, {"test_accuracy", r.accuracy},
                              {"train_seconds", r.train_s}, {"pool_fwd_bwd_ms_per_batch", r.pool_ms},
                              {"epoch_loss", r.epoch_loss}});
    }
    fancy::cli::write_atomically(fs::path(out) / "report.json", j.dump(2) + "\n");
    fancy::cli::write_atomically(fs::path(out) / "report.md", "# Pooling shoot-out on Fashion-MNIST\n\n" + table);
    const fs::path script = fancy::cli::share_file("plot_shootout.py");
    if (!fancy::cli::run_python(script, {(fs::path(out) / "report.json").string(), (fs::path(out) / "shootout.png").string()})) {
      std::cerr << "shootout: chart not drawn (needs " << script << " and python3-matplotlib)\n";
    }
    std::cout << "wrote " << out << "/report.json, report.md, shootout.png\n";
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
