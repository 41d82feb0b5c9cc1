// `fancy prune`: group lasso on conv filters, then physical pruning, on Fashion-MNIST.
// For each λ: train the CNN with the penalty (and its proximal step), prune the zero
// filters, and report test accuracy, the share of filters removed, parameters,
// multiply-adds and measured CPU inference time of the pruned network against the
// original. One more run uses the chapter's printed group term (a sum of squares) to
// show that it removes nothing.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_util.h"
#include "fancy/regularize.h"
#include "fashion_mnist.h"

namespace fs = std::filesystem;
namespace nn = torch::nn;
namespace reg = fancy::regularize;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Unpadded 3×3 convolutions (so a pruned filter's constant relu(bias) folds exactly into
// the next layer), ReLU, max pooling, and a linear classifier. No batch norm: it makes
// the loss blind to a filter's scale, so group lasso would shrink every filter alike
// instead of the ones the loss does not need (prune() itself handles batch norm).
nn::Sequential make_net(int64_t width) {
  auto block = [](nn::Sequential& s, int64_t in, int64_t out) {
    s->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3)));
    s->push_back(nn::ReLU());
  };
  nn::Sequential s;
  block(s, 1, width);          // 28 → 26
  block(s, width, 2 * width);  // 26 → 24
  s->push_back(nn::MaxPool2d(2));  // 12
  block(s, 2 * width, 4 * width);  // 10
  s->push_back(nn::MaxPool2d(2));  // 5
  s->push_back(nn::Flatten());
  s->push_back(nn::Linear(4 * width * 25, 10));
  return s;
}

double accuracy(nn::Sequential& net, const fancy::data::ImageSet& test) {
  torch::NoGradGuard no_grad;
  net->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < test.images.size(0); i += 1000)
    correct += net->forward(test.images.slice(0, i, i + 1000))
                   .argmax(1)
                   .eq(test.labels.slice(0, i, i + 1000))
                   .sum()
                   .item<int64_t>();
  return 100.0 * correct / test.images.size(0);
}

// Median milliseconds of one forward pass over a batch.
double inference_ms(nn::Sequential& net, const torch::Tensor& x, int reps) {
  torch::NoGradGuard no_grad;
  net->eval();
  for (int i = 0; i < 3; ++i) net->forward(x);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    net->forward(x);
    t.push_back(1e3 * seconds_since(t0));
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[reps / 2];
}

struct Run {
  std::string penalty;
  double lambda = 0, accuracy = 0, pruned_accuracy = 0, finetuned_accuracy = -1, train_s = 0, ms = 0, pruned_ms = 0;
  int64_t filters = 0, kept = 0, params = 0, pruned_params = 0, macs = 0, pruned_macs = 0;
  std::string report;
};

// SGD with momentum and a cosine learning rate. Group lasso is applied as proximal SGD:
// the data loss's step, then its proximal step w ← prox_{η·λR}(w) (exact zeros; the step
// shrinks with the rate, so groups settle) — not also through the loss, where its
// gradient would act on top of the prox, amplified ~1/(1−momentum) by the velocity. A
// smooth penalty (the chapter's sum of squares) has no proximal step and joins the loss.
void fit(nn::Sequential& net, const reg::Regularizer* regularizer, bool proximal, const fancy::data::ImageSet& train,
         int epochs, int64_t batch, double lr, uint64_t seed, int64_t limit, const std::string& label) {
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(lr).momentum(0.9));
  const int64_t n = limit > 0 ? std::min<int64_t>(limit, train.images.size(0)) : train.images.size(0);
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t steps = epochs * ((n + batch - 1) / batch);
  int64_t step = 0;
  for (int e = 0; e < epochs; ++e) {
    net->train();
    const auto order = torch::randperm(n, gen, torch::kLong);
    double loss_sum = 0;
    int64_t seen = 0;
    for (int64_t i = 0; i < n; i += batch, ++step) {
      const double lr_now = 0.5 * lr * (1 + std::cos(M_PI * step / steps));
      for (auto& g : opt.param_groups()) static_cast<torch::optim::SGDOptions&>(g.options()).lr(lr_now);
      const auto idx = order.slice(0, i, std::min(i + batch, n));
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(train.images.index_select(0, idx)),
                                                       train.labels.index_select(0, idx));
      (regularizer && !proximal ? loss + regularizer->penalty(*net) : loss).backward();
      opt.step();
      if (regularizer && proximal) regularizer->prox_step(*net, lr_now);
      loss_sum += loss.item<double>() * idx.size(0);
      seen += idx.size(0);
      if (step % 20 == 0)
        std::cerr << "\r" << label << " epoch " << e + 1 << "/" << epochs << " " << seen << "/" << n << " loss "
                  << loss_sum / seen << "   " << std::flush;
    }
  }
  std::cerr << "\n";
}

// How each run trains: with the penalty, then (pruned) without it.
struct Schedule {
  int epochs = 4, finetune_epochs = 3;
  int64_t batch = 128, limit = 0;
  double lr = 0.03, finetune_lr = 0.03;
  uint64_t seed = 1;
};

Run train_one(const std::string& penalty, double lambda, const fancy::data::ImageSet& train,
              const fancy::data::ImageSet& test, int64_t width, const Schedule& sc, const torch::Tensor& bench_x,
              int reps) {
  const uint64_t seed = sc.seed;
  torch::manual_seed(seed);
  auto net = make_net(width);
  const reg::Regularizer regularizer({{"type:Conv2d", penalty, "filters", lambda}});
  char label[64];
  std::snprintf(label, sizeof label, "%s λ=%g", penalty.c_str(), lambda);
  const auto start = Clock::now();
  fit(net, &regularizer, penalty == "group_lasso", train, sc.epochs, sc.batch, sc.lr, seed, sc.limit, label);
  Run r;
  r.penalty = penalty;
  r.lambda = lambda;
  r.accuracy = accuracy(net, test);
  auto pruned = reg::prune(net, {1, 28, 28});
  r.pruned_accuracy = accuracy(pruned.net, test);
  if (sc.finetune_epochs > 0) {
    fit(pruned.net, nullptr, false, train, sc.finetune_epochs, sc.batch, sc.finetune_lr, seed + 1, sc.limit,
        std::string(label) + " fine-tune");
    r.finetuned_accuracy = accuracy(pruned.net, test);
  }
  r.train_s = seconds_since(start);
  for (const auto& l : pruned.layers) {  // conv layers only: the classifier's rows are not filters
    r.filters += l.before;
    r.kept += l.after;
  }
  const auto before = reg::sparsity_report(net, {1, 28, 28}), after = reg::sparsity_report(pruned.net, {1, 28, 28});
  r.params = before.params;
  r.pruned_params = after.params;
  r.macs = before.macs;
  r.pruned_macs = after.macs;
  r.report = before.table();
  // Alternate the two networks so that a busy machine slows both alike.
  std::vector<double> a, b;
  for (int i = 0; i < 5; ++i) {
    a.push_back(inference_ms(net, bench_x, std::max(1, reps / 5)));
    b.push_back(inference_ms(pruned.net, bench_x, std::max(1, reps / 5)));
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  r.ms = a[2];
  r.pruned_ms = b[2];
  return r;
}

std::string markdown(const std::vector<Run>& runs, int threads, int64_t batch) {
  std::ostringstream s;
  s << "| penalty | λ | test acc. | after pruning | after fine-tuning | filters kept | removed | params | MACs | inference ms (batch "
    << batch << ", " << threads << " thr.) | pruned ms | speed-up |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                                          "---:|---:|\n";
  for (const auto& r : runs) {
    char line[512], ft[32] = "–";
    if (r.finetuned_accuracy >= 0) std::snprintf(ft, sizeof ft, "%.2f %%", r.finetuned_accuracy);
    const std::string finetuned = ft;
    std::snprintf(line, sizeof line,
                  "| %s | %g | %.2f %% | %.2f %% | %s | %lld / %lld | %.1f %% | %lld → %lld | %.1fM → %.1fM | %.2f | %.2f | "
                  "%.2f× |\n",
                  r.penalty.c_str(), r.lambda, r.accuracy, r.pruned_accuracy, finetuned.c_str(),
                  static_cast<long long>(r.kept),
                  static_cast<long long>(r.filters), 100.0 * (r.filters - r.kept) / r.filters,
                  static_cast<long long>(r.params), static_cast<long long>(r.pruned_params), r.macs / 1e6,
                  r.pruned_macs / 1e6, r.ms, r.pruned_ms, r.ms / r.pruned_ms);
    s << line;
  }
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fancy prune: group lasso on conv filters, proximal steps and physical pruning of a Fashion-MNIST CNN.\n"
               "For each λ the CNN is trained by proximal SGD on λ·Σ_filters ‖W_f‖₂ (the data loss's step, then\n"
               "block soft-thresholding w_f ← max(0, 1 − ηλ/‖w_f‖) w_f), its zero filters are removed, it is\n"
               "fine-tuned, and accuracy, filters removed, parameters, multiply-adds and measured inference time\n"
               "are reported. A last run adds the chapter's sum-of-squares group term to the loss. The defaults\n"
               "take about 65 minutes on 2 cores."};
  std::string data = "/usr/share/datasets/fashion-mnist", out = "runs/prune";
  std::vector<double> lambdas{0, 0.035, 0.05, 0.07};
  double chapter_lambda = 1e-2;
  Schedule sc;
  int threads = 2, reps = 20;
  int64_t width = 48, bench_batch = 256;
  app.add_option("--data", data, "folder with Fashion-MNIST's IDX files (Debian: dataset-fashion-mnist)")
      ->capture_default_str();
  app.add_option("--out", out, "folder for results.json, results.md and pruning.png")->capture_default_str();
  app.add_option("--lambdas", lambdas, "group lasso strengths (of the proximal step) to train with")->delimiter(',')->capture_default_str();
  app.add_option("--chapter-lambda", chapter_lambda,
                 "λ of the run with the chapter's sum-of-squares group term (negative: skip it)")
      ->capture_default_str();
  app.add_option("--width", width, "filters of the first conv layer (then 2× and 4×)")->capture_default_str();
  app.add_option("--epochs", sc.epochs, "training epochs per run (with the penalty)")->capture_default_str();
  app.add_option("--finetune-epochs", sc.finetune_epochs, "epochs of training after pruning, without the penalty")
      ->capture_default_str();
  app.add_option("--batch-size", sc.batch, "training batch size")->capture_default_str();
  app.add_option("--lr", sc.lr, "SGD learning rate (momentum 0.9, cosine decay)")->capture_default_str();
  app.add_option("--finetune-lr", sc.finetune_lr, "learning rate of the fine-tuning (cosine decay from it again)")
      ->capture_default_str();
  app.add_option("--limit", sc.limit, "use only the first N training images (0 = all)")->capture_default_str();
  app.add_option("--seed", sc.seed, "seed of the weights and the batch order")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (training and timing)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--bench-batch", bench_batch, "batch size of the inference timing")->capture_default_str();
  app.add_option("--reps", reps, "timed forward passes per network (the median is reported)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    for (double l : lambdas)
      if (!(l >= 0)) throw std::runtime_error("--lambdas: each λ must be >= 0, got " + std::to_string(l));
    at::set_num_threads(threads);
    auto train = fancy::data::load_fashion_mnist(data, "train");
    auto test = fancy::data::load_fashion_mnist(data, "t10k");
    // Fashion-MNIST's pixel mean and standard deviation: SGD without batch norm needs it.
    train.images = (train.images - 0.2860) / 0.3530;
    test.images = (test.images - 0.2860) / 0.3530;
    const auto bench_x = test.images.slice(0, 0, bench_batch);
    std::vector<Run> runs;
    for (double l : lambdas)
      runs.push_back(train_one("group_lasso", l, train, test, width, sc, bench_x, reps));
    if (chapter_lambda >= 0)
      runs.push_back(train_one("group_sum_of_squares", chapter_lambda, train, test, width, sc, bench_x, reps));
    const std::string table = markdown(runs, threads, bench_batch);
    std::cout << table;
    nlohmann::json j = {{"threads", threads},         {"epochs", sc.epochs},
                        {"finetune_epochs", sc.finetune_epochs}, {"finetune_lr", sc.finetune_lr},
                        {"width", width},             {"bench_batch", bench_batch},
                        {"runs", nlohmann::json::array()}};
    for (const auto& r : runs)
      j["runs"].push_back({{"penalty", r.penalty},     {"lambda", r.lambda},
                           {"accuracy", r.accuracy},   {"pruned_accuracy", r.pruned_accuracy},
                           {"finetuned_accuracy", r.finetuned_accuracy},
                           {"filters", r.filters},     {"kept", r.kept},
                           {"params", r.params},       {"pruned_params", r.pruned_params},
                           {"macs", r.macs},           {"pruned_macs", r.pruned_macs},
                           {"ms", r.ms},               {"pruned_ms", r.pruned_ms},
                           {"train_s", r.train_s},     {"sparsity", r.report}});
    fs::create_directories(out);
    fancy::cli::write_atomically(fs::path(out) / "results.json", j.dump(1) + "\n");
    fancy::cli::write_atomically(fs::path(out) / "results.md", table);
    if (!fancy::cli::run_python(fancy::cli::share_file("plot_prune.py"),
                                {(fs::path(out) / "results.json").string(), (fs::path(out) / "pruning.png").string()}))
      std::cerr << "prune: chart not drawn (needs python3-matplotlib)\n";
  } catch (const std::exception& e) {
    std::cerr << "prune: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
