// Training a Seq2Seq model: teacher forcing, label smoothing, Adam, gradient clipping,
// learning-rate decay on plateau or linear decay over the budget, validation every N
// steps, best and last checkpoints written atomically, and resume to the same result as
// an uninterrupted run.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "fancy/seq2seq/data.h"
#include "fancy/seq2seq/model.h"

namespace fancy::seq2seq {

struct TrainOptions {
  TORCH_ARG(int64_t, epochs) = 10;
  TORCH_ARG(int64_t, batch_size) = 64;
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, label_smoothing) = 0.1;
  TORCH_ARG(double, clip) = 1.0;             // max gradient norm; 0 = off
  TORCH_ARG(int64_t, validate_every) = 500;  // steps; an epoch's end validates too
  // "plateau": lr *= decay after `patience` validations without improvement.
  // "linear": lr falls linearly from lr to min_lr over the budget: the share of the
  // epochs done, or of max_minutes used when that is larger (time-based, so a run cut by
  // its time budget is not reproducible step for step; the epochs form is).
  TORCH_ARG(std::string, schedule) = "plateau";
  TORCH_ARG(int64_t, patience) = 2;
  TORCH_ARG(double, decay) = 0.5;
  TORCH_ARG(double, min_lr) = 1e-5;
  TORCH_ARG(uint64_t, seed) = 1;
  TORCH_ARG(double, max_minutes) = 0;        // stop after this much training time; 0 = none
  TORCH_ARG(double, snapshot_minutes) = 0;   // also keep the weights as minutesN.pt at the first
                                             // validation past each N minutes; 0 = none
  TORCH_ARG(std::string, checkpoint_dir);    // best.pt and last.pt; empty = none
  TORCH_ARG(bool, resume) = false;           // continue from checkpoint_dir/last.pt
};

struct TrainPoint {
  int64_t step = 0, epoch = 0;
  double train_loss = 0, metric = 0, lr = 0, seconds = 0;
};

// Higher is better (e.g. accuracy or BLEU on a dev set).
using Validator = std::function<double(Seq2Seq&)>;

std::vector<TrainPoint> train(Seq2Seq& model, const std::vector<Pair>& pairs, const Vocab& src_vocab,
                              const Vocab& tgt_vocab, const Validator& validate, const TrainOptions& options,
                              std::ostream& log);

// Saves / loads the parameters alone (the checkpoints hold the training state too).
void save_weights(Seq2Seq& model, const std::string& path);
void load_weights(Seq2Seq& model, const std::string& path);

}  // namespace fancy::seq2seq
