// `fancy g2p`: grapheme-to-phoneme conversion on CMUdict (Festival's, from Debian's
// festlex-cmu) with the seq2seq encoder-decoder: train, eval (WER / PER, greedy and
// beam), predict (n-best with scores, attention picture).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_util.h"
#include "fancy/seq2seq/evaluate.h"
#include "fancy/seq2seq/train.h"

namespace fs = std::filesystem;
namespace s2s = fancy::seq2seq;
using nlohmann::json;

namespace {

const char* kDict = "/usr/share/festival/dicts/cmu/cmudict-0.4.out";

struct Split {
  std::vector<s2s::Pair> train, dev, test;
};

// Words longer than max_letters are cut to that length, each with a warning naming its line.
Split load_split(const std::string& dict, bool skip_bad, int64_t max_letters) {
  std::vector<std::string> warnings;
  auto all = s2s::read_cmudict(dict, skip_bad, &warnings);
  s2s::truncate_sources(all, max_letters, dict, &warnings);
  for (const auto& w : warnings) std::cerr << "g2p: " << w << "\n";
  Split s;
  for (auto& p : all) {
    const int k = s2s::cmudict_split(p.source);
    (k == 0 ? s.train : k == 1 ? s.dev : s.test).push_back(std::move(p));
  }
  return s;
}

// Training pairs: one per accepted pronunciation.
std::vector<s2s::Pair> expand(const std::vector<s2s::Pair>& words) {
  std::vector<s2s::Pair> out;
  for (const auto& w : words)
    for (const auto& a : w.answers) out.push_back({w.source, a, {a}});
  return out;
}

struct Loaded {
  s2s::Seq2Seq model{nullptr};
  s2s::Vocab src, tgt;
  json config;
};

s2s::Seq2SeqOptions options_from(const json& c) {
  return s2s::Seq2SeqOptions(c["src_vocab"].size(), c["tgt_vocab"].size())
      .embedding(c["embedding"])
      .hidden(c["hidden"])
      .layers(c["layers"])
      .bidirectional(c["bidirectional"])
      .rnn(c["rnn"])
      .attention(c["attention"])
      .input_feeding(c["input_feeding"])
      .dropout(c["dropout"]);
}

Loaded load_model(const std::string& dir, const std::string& weights = "best.pt") {
  const fs::path cfg = fs::path(dir) / "config.json";
  std::ifstream f(cfg);
  if (!f) throw std::runtime_error(cfg.string() + ": not found (train a model with `fancy g2p train --out DIR`)");
  Loaded l;
  try {
    l.config = json::parse(f);
    l.src = s2s::Vocab::from_tokens(l.config["src_vocab"].get<std::vector<std::string>>());
    l.tgt = s2s::Vocab::from_tokens(l.config["tgt_vocab"].get<std::vector<std::string>>());
    l.model = s2s::Seq2Seq(options_from(l.config));
  } catch (const std::exception& e) {
    throw std::runtime_error(cfg.string() + ": malformed model configuration: " + e.what());
  }
  s2s::load_weights(l.model, (fs::path(dir) / weights).string());
  l.model->eval();
  return l;
}

s2s::DecodeOptions decode_options(int64_t beam, int64_t n_best = 1) {
  // Pronunciations are rarely longer than the word plus a few phones.
  return s2s::DecodeOptions().beam(beam).n_best(n_best).max_length_a(1.5).max_length_b(5);
}

int train_cmd(const std::string& dict, int64_t max_letters, const std::string& out, double minutes,
              const std::string& schedule, double snapshot_minutes, int64_t epochs, int64_t embedding,
              int64_t hidden, int64_t layers, const std::string& attention, double dropout, int64_t batch, double lr,
              int64_t validate_every, int64_t dev_words, uint64_t seed, bool resume, bool skip_bad) {
  const auto split = load_split(dict, skip_bad, max_letters);
  const auto train_pairs = expand(split.train);
  std::vector<std::vector<std::string>> src_tokens, tgt_tokens;
  for (const auto& p : train_pairs) {
    src_tokens.push_back(p.source);
    tgt_tokens.push_back(p.target);
  }
  const auto sv = s2s::Vocab::build(src_tokens), tv = s2s::Vocab::build(tgt_tokens);
  std::cout << "CMUdict: " << split.train.size() << " train words (" << train_pairs.size() << " pronunciations), "
            << split.dev.size() << " dev, " << split.test.size() << " test; " << sv.size() - 4 << " letters, "
            << tv.size() - 4 << " phones\n";
  json config = {{"task", "g2p"},         {"dict", dict},           {"src_vocab", sv.tokens()},
                 {"tgt_vocab", tv.tokens()}, {"embedding", embedding}, {"hidden", hidden},
                 {"layers", layers},       {"bidirectional", true},  {"rnn", "lstm"},
                 {"attention", attention}, {"input_feeding", true},  {"dropout", dropout},
                 {"seed", seed},           {"max_letters", max_letters}};
  fs::create_directories(out);
  fancy::cli::write_atomically(fs::path(out) / "config.json", config.dump(1) + "\n");
  torch::manual_seed(seed);
  s2s::Seq2Seq model(options_from(config));
  const std::vector<s2s::Pair> dev(split.dev.begin(),
                                   split.dev.begin() + std::min<long>(dev_words, static_cast<long>(split.dev.size())));
  auto validate = [&](s2s::Seq2Seq& m) {
    return 1.0 - s2s::error_rates(s2s::translate(m, dev, sv, tv, decode_options(1), 256), dev).wer;
  };
  const auto history = s2s::train(model, train_pairs, sv, tv, validate,
                                  s2s::TrainOptions()
                                      .epochs(epochs)
                                      .batch_size(batch)
                                      .lr(lr)
                                      .validate_every(validate_every)
                                      .seed(seed)
                                      .max_minutes(minutes)
                                      .schedule(schedule)
                                      .snapshot_minutes(snapshot_minutes)
                                      .checkpoint_dir(out)
                                      .resume(resume),
                                  std::cerr);
  json h = json::array();
  for (const auto& p : history)
    h.push_back({{"step", p.step}, {"epoch", p.epoch}, {"train_loss", p.train_loss}, {"dev_wer", 1.0 - p.metric},
                 {"lr", p.lr}, {"seconds", p.seconds}});
  const fs::path hist = fs::path(out) / "history.json";
  json old = json::array();
  if (resume && fs::exists(hist)) old = json::parse(std::ifstream(hist));
  for (auto& p : h) old.push_back(p);
  fancy::cli::write_atomically(hist, old.dump(1) + "\n");
  if (!fancy::cli::run_python(fancy::cli::share_file("plot_seq2seq.py"),
                              {"curve", hist.string(), (fs::path(out) / "learning_curve.png").string()}))
    std::cerr << "g2p: learning curve not drawn (needs python3-matplotlib)\n";
  std::cout << "model in " << out << " (best.pt: best dev WER, last.pt: checkpoint to resume)\n";
  return 0;
}

int eval_cmd(const std::string& dir, const std::string& weights, const std::string& set,
             const std::vector<int64_t>& beams, double length_penalty, int64_t limit, int64_t batch_size, int threads) {
  auto l = load_model(dir, weights);
  const auto split =
      load_split(l.config.value("dict", std::string(kDict)), true, l.config.value("max_letters", int64_t{0}));
  std::vector<s2s::Pair> data = set == "dev" ? split.dev : split.test;
  if (limit > 0 && static_cast<int64_t>(data.size()) > limit) data.resize(static_cast<size_t>(limit));
  json report = json::object();
  for (int64_t beam : beams) {
    s2s::DecodeTimings t;
    const auto out = s2s::translate(l.model, data, l.src, l.tgt,
                                    decode_options(beam).length_penalty(beam > 1 ? length_penalty : 0), batch_size, &t);
    const auto r = s2s::error_rates(out, data);
    std::string name = beam == 1 ? "greedy" : "beam " + std::to_string(beam);
    if (beam > 1 && length_penalty != 0) name += " (length penalty " + std::to_string(length_penalty).substr(0, 4) + ")";
    std::printf("%s (%lld words), %s: WER %.2f %%, PER %.2f %%  [batch %lld, %d thread(s): %.1f s, %.0f words/s, "
                "%.0f tokens/s, %.1f %% of the time outside the model]\n",
                set.c_str(), static_cast<long long>(r.count), name.c_str(), 100 * r.wer, 100 * r.per,
                static_cast<long long>(batch_size), threads, t.total_seconds, t.sentences / t.total_seconds,
                t.target_tokens / t.total_seconds, 100 * (1 - t.model_seconds / t.total_seconds));
    report[beam == 1 ? "greedy" : "beam" + std::to_string(beam)] = {
        {"wer", r.wer},           {"per", r.per},
        {"words", r.count},       {"seconds", t.total_seconds},
        {"model_seconds", t.model_seconds}, {"target_tokens", t.target_tokens},
        {"batch_size", batch_size}, {"threads", threads}};
  }
  const std::string tag = weights == "best.pt" ? "" : "_" + fs::path(weights).stem().string();
  fancy::cli::write_atomically(fs::path(dir) / ("eval_" + set + tag + ".json"), report.dump(1) + "\n");
  return 0;
}

int predict_cmd(const std::string& dir, const std::vector<std::string>& words, int64_t beam, int64_t n_best,
                const std::string& attention_png) {
  auto l = load_model(dir);
  std::vector<s2s::Pair> pairs;
  for (const auto& w : words) {
    std::string lower = w;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    pairs.push_back({s2s::split_tokens(lower, true), {"x"}, {}});
  }
  std::vector<std::string> warnings;
  s2s::truncate_sources(pairs, l.config.value("max_letters", int64_t{0}), "words", &warnings);
  for (const auto& w : warnings) std::cerr << "g2p: " << w << "\n";
  std::vector<size_t> idx(pairs.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  const auto b = s2s::make_batch(pairs, idx, l.src, l.tgt);
  const auto hyps = s2s::beam_search(l.model, b.src, b.src_len, decode_options(beam, n_best).return_attention(true));
  json att = json::array();
  for (size_t i = 0; i < words.size(); ++i) {
    std::cout << words[i] << "\n";
    for (const auto& h : hyps[i]) {
      const auto phones = l.tgt.decode(h.tokens);
      std::printf("  %8.3f  %s\n", h.score, s2s::join_tokens(phones, false).c_str());
    }
    if (!hyps[i].empty()) {
      auto src = pairs[i].source;
      src.push_back("</s>");
      auto tgt = l.tgt.decode(hyps[i][0].tokens);
      tgt.push_back("</s>");
      att.push_back({{"source", src}, {"target", tgt}, {"weights", hyps[i][0].attention}});
    }
  }
  if (!attention_png.empty()) {
    const std::string tmp = attention_png + ".json.tmp";
    fancy::cli::write_atomically(tmp, att.dump() + "\n");
    if (!fancy::cli::run_python(fancy::cli::share_file("plot_seq2seq.py"), {"attention", tmp, attention_png}))
      std::cerr << "g2p: attention picture not drawn (needs python3-matplotlib)\n";
    fs::remove(tmp);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fancy g2p: grapheme-to-phoneme conversion on CMUdict with an attention encoder-decoder.\n"
               "Words are split 90/5/5 into train/dev/test by a hash of the word; every pronunciation of a word\n"
               "is an accepted answer."};
  app.require_subcommand(1);
  app.fallthrough();  // --threads may come after the subcommand too
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();

  auto* tr = app.add_subcommand("train", "train a model; writes DIR/config.json, best.pt, last.pt, minutesN.pt, "
                                         "history.json, learning_curve.png");
  std::string dict = kDict, out = "runs/g2p", attention = "general";
  double minutes = 58, dropout = 0.2, lr = 2e-3, snapshot_minutes = 30;
  std::string schedule = "linear";
  int64_t epochs = 30, embedding = 64, hidden = 256, layers = 1, batch = 64, validate_every = 1000, dev_words = 1000;
  int64_t max_letters = 48;
  uint64_t seed = 1;
  bool resume = false, skip_bad = false;
  tr->add_option("--dict", dict, "CMUdict in Festival's format")->capture_default_str();
  tr->add_option("--max-letters", max_letters,
                 "longer words are cut to this length, with a warning naming the line (0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  tr->add_option("--out", out, "model folder")->capture_default_str();
  tr->add_option("--minutes", minutes, "training time budget (0 = until --epochs)")->capture_default_str();
  tr->add_option("--epochs", epochs, "epochs at most")->capture_default_str();
  tr->add_option("--embedding", embedding, "embedding size")->capture_default_str();
  tr->add_option("--hidden", hidden, "LSTM size (the encoder is bidirectional)")->capture_default_str();
  tr->add_option("--layers", layers, "LSTM layers")->capture_default_str();
  tr->add_option("--attention", attention, "dot, general, concat or bahdanau")->capture_default_str();
  tr->add_option("--dropout", dropout, "dropout")->capture_default_str();
  tr->add_option("--batch-size", batch, "batch size")->capture_default_str();
  tr->add_option("--lr", lr, "Adam's initial learning rate")->capture_default_str();
  tr->add_option("--schedule", schedule,
                 "learning rate: linear (falls to 1e-5 over the time budget, or the epochs) or plateau (halved "
                 "after 2 validations without a better dev WER)")
      ->check(CLI::IsMember({"linear", "plateau"}))
      ->capture_default_str();
  tr->add_option("--snapshot-minutes", snapshot_minutes,
                 "also keep the weights every N minutes as DIR/minutesN.pt (0 = no)")
      ->capture_default_str();
  tr->add_option("--validate-every", validate_every, "steps between dev evaluations and checkpoints")
      ->capture_default_str();
  tr->add_option("--dev-words", dev_words, "dev words used for validation during training")->capture_default_str();
  tr->add_option("--seed", seed, "seed for weights, batches and dropout")->capture_default_str();
  tr->add_flag("--resume", resume, "continue from DIR/last.pt");
  tr->add_flag("--skip-bad", skip_bad, "skip malformed dictionary lines (reported) instead of stopping");

  auto* ev = app.add_subcommand("eval", "word and phone error rates on the test (or dev) words");
  std::string model_dir = "runs/g2p", set = "test";
  std::vector<int64_t> beams{1, 5};
  int64_t limit = 0;
  double length_penalty = 0;
  ev->add_option("--model", model_dir, "model folder")->capture_default_str();
  std::string weights = "best.pt";
  ev->add_option("--weights", weights, "weights in the model folder: best.pt, last.pt or a minutesN.pt snapshot")
      ->capture_default_str();
  ev->add_option("--set", set, "test or dev")->check(CLI::IsMember({"test", "dev"}))->capture_default_str();
  ev->add_option("--beams", beams, "beam sizes to evaluate (1 = greedy)")->delimiter(',')->capture_default_str();
  ev->add_option("--length-penalty", length_penalty,
                 "GNMT length penalty α of the beam search, ((5 + len) / 6)^α (0 = none)")
      ->capture_default_str();
  ev->add_option("--limit", limit, "evaluate only the first N words (0 = all)")->capture_default_str();
  int64_t eval_batch = 64;
  ev->add_option("--batch-size", eval_batch, "sentences decoded together")->capture_default_str();

  auto* pr = app.add_subcommand("predict", "pronounce words: n-best phone strings with their log-probabilities");
  std::vector<std::string> words;
  int64_t beam = 5, n_best = 3;
  std::string attention_png;
  pr->add_option("words", words, "words to pronounce")->required();
  pr->add_option("--model", model_dir, "model folder")->capture_default_str();
  pr->add_option("--beam", beam, "beam size")->capture_default_str();
  pr->add_option("--n-best", n_best, "pronunciations per word")->capture_default_str();
  pr->add_option("--attention", attention_png, "draw the best hypothesis' attention to this PNG");
  CLI11_PARSE(app, argc, argv);

  try {
    at::set_num_threads(threads);
    if (*tr)
      return train_cmd(dict, max_letters, out, minutes, schedule, snapshot_minutes, epochs, embedding, hidden, layers, attention, dropout, batch, lr,
                       validate_every, dev_words, seed, resume, skip_bad);
    if (*ev) return eval_cmd(model_dir, weights, set, beams, length_penalty, limit, eval_batch, threads);
    if (*pr) return predict_cmd(model_dir, words, beam, n_best, attention_png);
  } catch (const std::exception& e) {
    std::cerr << "g2p: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
