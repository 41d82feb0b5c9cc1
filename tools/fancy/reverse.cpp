// `fancy reverse`: JoeyNMT's reverse task (integers 0-49, target = source reversed) with
// its tutorial configuration: BiLSTM 64 encoder, embeddings 16, Luong general attention
// with input feeding, Adam 1e-3, batch 12, 5 epochs; scored with BLEU (sacreBLEU's).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <iostream>
#include <thread>

#include "fancy/bleu.h"
#include "fancy/seq2seq/evaluate.h"
#include "fancy/seq2seq/train.h"

namespace s2s = fancy::seq2seq;

namespace {

double bleu_of(s2s::Seq2Seq& model, const std::vector<s2s::Pair>& data, const s2s::Vocab& v, int64_t beam) {
  const auto out = s2s::translate(model, data, v, v, s2s::DecodeOptions().beam(beam).max_length_a(1.5).max_length_b(5),
                                  128);
  std::vector<std::string> hyps, refs;
  for (size_t i = 0; i < data.size(); ++i) {
    hyps.push_back(s2s::join_tokens(out[i], false));
    refs.push_back(s2s::join_tokens(data[i].target, false));
  }
  return fancy::bleu::corpus_bleu(hyps, {refs}).score;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fancy reverse: train and score JoeyNMT's reverse task (generated here with its recipe, seed 42).\n"
               "Prints dev BLEU while training and the final dev and test BLEU (greedy and beam 5)."};
  int64_t train_n = 50000, epochs = 5, batch = 12, hidden = 64, embedding = 16;
  uint64_t seed = 42;
  double lr = 1e-3, minutes = 0;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string out = "runs/reverse";
  app.add_option("--train-pairs", train_n, "training pairs")->capture_default_str();
  app.add_option("--epochs", epochs, "epochs")->capture_default_str();
  app.add_option("--batch-size", batch, "batch size")->capture_default_str();
  app.add_option("--hidden", hidden, "LSTM size")->capture_default_str();
  app.add_option("--embedding", embedding, "embedding size")->capture_default_str();
  app.add_option("--lr", lr, "Adam learning rate")->capture_default_str();
  app.add_option("--seed", seed, "seed for the data, the weights and the batches")->capture_default_str();
  app.add_option("--minutes", minutes, "training time budget (0 = all epochs)")->capture_default_str();
  app.add_option("--out", out, "checkpoint folder")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(threads);
    // JoeyNMT's generator: training lengths 1-25, dev and test up to 30, symbols 0-49.
    const auto train = s2s::reverse_task(train_n, 1, 25, 50, seed);
    const auto dev = s2s::reverse_task(1000, 1, 30, 50, seed + 1);
    const auto test = s2s::reverse_task(1000, 1, 30, 50, seed + 2);
    std::vector<std::vector<std::string>> toks;
    for (const auto& p : train) toks.push_back(p.source);
    const auto v = s2s::Vocab::build(toks);
    torch::manual_seed(seed);
    s2s::Seq2Seq model(s2s::Seq2SeqOptions(v.size(), v.size()).embedding(embedding).hidden(hidden).attention("general"));
    s2s::train(model, train, v, v, [&](s2s::Seq2Seq& m) { return bleu_of(m, dev, v, 1); },
               s2s::TrainOptions()
                   .epochs(epochs)
                   .batch_size(batch)
                   .lr(lr)
                   .label_smoothing(0.0)
                   .validate_every(1000)
                   .seed(seed)
                   .max_minutes(minutes)
                   .checkpoint_dir(out),
               std::cerr);
    s2s::load_weights(model, out + "/best.pt");
    std::printf("reverse task, best checkpoint: dev BLEU %.2f greedy, %.2f beam 5; test BLEU %.2f greedy, %.2f beam 5\n",
                bleu_of(model, dev, v, 1), bleu_of(model, dev, v, 5), bleu_of(model, test, v, 1),
                bleu_of(model, test, v, 5));
  } catch (const std::exception& e) {
    std::cerr << "reverse: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
