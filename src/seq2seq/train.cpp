#include "fancy/seq2seq/train.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <ostream>

namespace fancy::seq2seq {
namespace {

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// What a checkpoint holds besides the parameters: enough to continue exactly.
struct Progress {
  int64_t step = 0, epoch = 0, batch = 0;  // next batch to train
  double best = -1e300, lr = 0;
  int64_t bad = 0;
  double seconds = 0;
};

void set_lr(torch::optim::Adam& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
}

void save_checkpoint(Seq2Seq& model, torch::optim::Adam& opt, const Progress& p, const std::string& path) {
  torch::serialize::OutputArchive a;
  model->save(a);
  torch::serialize::OutputArchive o;
  opt.save(o);
  a.write("optimizer", o);
  a.write("progress", torch::tensor({static_cast<double>(p.step), static_cast<double>(p.epoch),
                                     static_cast<double>(p.batch), p.best, p.lr, static_cast<double>(p.bad), p.seconds},
                                    torch::kDouble));
  a.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  const std::string tmp = path + ".tmp";
  a.save_to(tmp);
  fs::rename(tmp, path);  // a reader never sees half a checkpoint
}

Progress load_checkpoint(Seq2Seq& model, torch::optim::Adam& opt, const std::string& path) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": no checkpoint to resume from");
  torch::serialize::InputArchive a;
  try {
    a.load_from(path);
    model->load(a);
    torch::serialize::InputArchive o;
    a.read("optimizer", o);
    opt.load(o);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a checkpoint of this model (truncated, or another configuration): " +
                             std::string(e.what_without_backtrace()));
  }
  torch::Tensor p, rng;
  a.read("progress", p);
  a.read("rng", rng);
  auto generator = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
  generator.set_state(rng);
  auto v = p.accessor<double, 1>();
  Progress r;
  r.step = static_cast<int64_t>(v[0]);
  r.epoch = static_cast<int64_t>(v[1]);
  r.batch = static_cast<int64_t>(v[2]);
  r.best = v[3];
  r.lr = v[4];
  r.bad = static_cast<int64_t>(v[5]);
  r.seconds = v[6];
  return r;
}

}  // namespace

void save_weights(Seq2Seq& model, const std::string& path) {
  torch::serialize::OutputArchive a;
  model->save(a);
  const std::string tmp = path + ".tmp";
  a.save_to(tmp);
  fs::rename(tmp, path);
}

void load_weights(Seq2Seq& model, const std::string& path) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": model file not found");
  torch::serialize::InputArchive a;
  try {
    a.load_from(path);
    model->load(a);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot load the model (truncated, or saved with another configuration): " +
                             std::string(e.what_without_backtrace()));
  }
}

std::vector<TrainPoint> train(Seq2Seq& model, const std::vector<Pair>& pairs, const Vocab& sv, const Vocab& tv,
                              const Validator& validate, const TrainOptions& o, std::ostream& log) {
  TORCH_CHECK(!pairs.empty(), "train: no training pairs");
  TORCH_CHECK(o.schedule() == "plateau" || o.schedule() == "linear", "train: schedule must be plateau or linear, got '",
              o.schedule(), "'");
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(o.lr()));
  Progress p;
  p.lr = o.lr();
  const bool checkpoints = !o.checkpoint_dir().empty();
  if (checkpoints) fs::create_directories(o.checkpoint_dir());
  const std::string last = checkpoints ? (fs::path(o.checkpoint_dir()) / "last.pt").string() : "";
  const std::string best = checkpoints ? (fs::path(o.checkpoint_dir()) / "best.pt").string() : "";
  if (o.resume()) {
    TORCH_CHECK(checkpoints, "train: resume needs a checkpoint directory");
    p = load_checkpoint(model, opt, last);
    set_lr(opt, p.lr);
    log << "resumed at step " << p.step << " (epoch " << p.epoch + 1 << ", batch " << p.batch << ")\n";
  } else {
    torch::manual_seed(o.seed());
  }
  std::vector<TrainPoint> history;
  const auto t0 = std::chrono::steady_clock::now();
  const double start_seconds = p.seconds;
  double loss_sum = 0;
  int64_t loss_n = 0, tokens = 0;
  auto elapsed = [&] { return start_seconds + seconds_since(t0); };
  auto validate_now = [&](bool end_of_epoch) {
    model->eval();
    const double metric = validate(model);
    model->train();
    TrainPoint tp{p.step, p.epoch, loss_n ? loss_sum / loss_n : 0, metric, p.lr, elapsed()};
    history.push_back(tp);
    log << "\rstep " << p.step << " epoch " << p.epoch + 1 << ": train loss " << std::fixed << std::setprecision(4)
        << tp.train_loss << ", dev " << std::setprecision(4) << metric << ", lr " << std::scientific
        << std::setprecision(2) << p.lr << std::defaultfloat << ", " << std::fixed << std::setprecision(0)
        << tp.seconds << " s" << (end_of_epoch ? " (end of epoch)" : "") << std::defaultfloat << std::setprecision(6)
        << "\n";
    loss_sum = 0;
    loss_n = 0;
    if (checkpoints && o.snapshot_minutes() > 0) {  // first validation past each multiple of N minutes
      const int64_t k = static_cast<int64_t>(tp.seconds / (60 * o.snapshot_minutes()));
      const auto name = fs::path(o.checkpoint_dir()) /
                        ("minutes" + std::to_string(static_cast<int64_t>(k * o.snapshot_minutes())) + ".pt");
      if (k > 0 && !fs::exists(name)) save_weights(model, name.string());
    }
    if (metric > p.best) {
      p.best = metric;
      p.bad = 0;
      if (checkpoints) save_weights(model, best);
    } else if (o.schedule() == "plateau" && ++p.bad >= o.patience()) {  // decay the learning rate
      p.lr = std::max(o.min_lr(), p.lr * o.decay());
      set_lr(opt, p.lr);
      p.bad = 0;
    }
  };
  // Every epoch has the same number of batches, so the share of the epochs done is exact.
  const double total_steps =
      static_cast<double>(o.epochs()) * static_cast<double>(bucketed_batches(pairs, o.batch_size(), o.seed(), 0).size());
  auto linear_lr = [&] {
    double done = p.step / total_steps;
    if (o.max_minutes() > 0) done = std::max(done, elapsed() / (60 * o.max_minutes()));
    return o.min_lr() + (o.lr() - o.min_lr()) * std::max(0.0, 1 - done);
  };
  model->train();
  bool out_of_time = false;
  for (; p.epoch < o.epochs() && !out_of_time; ++p.epoch, p.batch = 0) {
    const auto batches = bucketed_batches(pairs, o.batch_size(), o.seed(), p.epoch);
    for (; p.batch < static_cast<int64_t>(batches.size()); ++p.batch) {
      if (o.schedule() == "linear") {
        p.lr = linear_lr();
        set_lr(opt, p.lr);
      }
      const auto b = make_batch(pairs, batches[static_cast<size_t>(p.batch)], sv, tv);
      opt.zero_grad();
      auto loss = sequence_loss(model->forward(b.src, b.src_len, b.tgt_in), b.tgt_out, o.label_smoothing());
      loss.backward();
      if (o.clip() > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip());
      opt.step();
      ++p.step;
      loss_sum += loss.item<double>();
      ++loss_n;
      tokens += b.tgt_out.ne(Vocab::kPad).sum().item<int64_t>();
      if (p.step % 50 == 0) {  // progress: loss and speed
        const double s = seconds_since(t0);
        log << "\repoch " << p.epoch + 1 << " batch " << p.batch + 1 << "/" << batches.size() << " loss " << std::fixed
            << std::setprecision(3) << loss_sum / std::max<int64_t>(1, loss_n) << " " << std::setprecision(0)
            << tokens / std::max(1e-9, s) << " tok/s" << std::defaultfloat << std::flush;
      }
      const bool last_batch = p.batch + 1 == static_cast<int64_t>(batches.size());
      out_of_time = o.max_minutes() > 0 && elapsed() > 60.0 * o.max_minutes();
      if (p.step % o.validate_every() == 0 || last_batch || out_of_time) {
        validate_now(last_batch);
        if (checkpoints) {  // the checkpoint continues with the next batch
          Progress next = p;
          next.batch = last_batch ? 0 : p.batch + 1;
          next.epoch = last_batch ? p.epoch + 1 : p.epoch;
          next.seconds = elapsed();
          save_checkpoint(model, opt, next, last);
        }
        if (out_of_time) {
          log << "time budget of " << o.max_minutes() << " min reached\n";
          break;
        }
      }
    }
  }
  return history;
}

}  // namespace fancy::seq2seq
