// fancy::seq2seq: vocabulary, masking and packing, decoding bookkeeping checked against
// the model's own teacher-forced probabilities, batch invariance, and a tiny training.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <sstream>

#include "fancy/seq2seq/decode.h"
#include "fancy/seq2seq/model.h"
#include "fancy/seq2seq/vocab.h"

namespace s2s = fancy::seq2seq;

namespace {

// Random sources of ids >= 4 (no specials), each ending in </s>, padded.
std::pair<torch::Tensor, torch::Tensor> random_batch(int64_t B, int64_t V, int64_t max_len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int64_t>> rows;
  int64_t S = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_len));
    std::vector<int64_t> r;
    for (int64_t i = 0; i < n; ++i) r.push_back(4 + static_cast<int64_t>(rng() % static_cast<uint64_t>(V - 4)));
    r.push_back(s2s::Vocab::kEos);
    S = std::max<int64_t>(S, static_cast<int64_t>(r.size()));
    rows.push_back(r);
  }
  auto src = torch::full({B, S}, s2s::Vocab::kPad, torch::kLong);
  auto len = torch::zeros({B}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    for (size_t i = 0; i < rows[b].size(); ++i) src[b][static_cast<int64_t>(i)] = rows[b][i];
    len[b] = static_cast<int64_t>(rows[b].size());
  }
  return {src, len};
}

s2s::Seq2Seq make_model(const std::string& attention, const std::string& rnn = "lstm", int64_t V = 20) {
  torch::manual_seed(7);
  auto opt = s2s::Seq2SeqOptions(V, V).embedding(8).hidden(16).layers(2).rnn(rnn).attention(attention);
  if (attention == "dot") opt.bidirectional(false);
  return s2s::Seq2Seq(opt);
}

// Sum of log-probabilities the model gives a token sequence followed by </s>.
double teacher_forced_logprob(s2s::Seq2Seq& model, const torch::Tensor& src, const torch::Tensor& len,
                              const std::vector<int64_t>& tokens) {
  torch::NoGradGuard g;
  model->eval();
  std::vector<int64_t> in{s2s::Vocab::kBos}, out;
  for (auto t : tokens) in.push_back(t);
  out = tokens;
  out.push_back(s2s::Vocab::kEos);
  auto logits = model->forward(src, len, torch::tensor(in).unsqueeze(0));
  auto logp = torch::log_softmax(logits[0], -1);
  double sum = 0;
  for (size_t t = 0; t < out.size(); ++t) sum += logp[static_cast<int64_t>(t)][out[t]].item<double>();
  return sum;
}

}  // namespace

TEST(Seq2SeqVocab, SpecialsFrequencyOrderAndUnknowns) {
  auto v = s2s::Vocab::build({{"b", "a", "b"}, {"c", "b", "a"}});
  ASSERT_EQ(v.size(), 7);
  EXPECT_EQ(v.token(0), "<pad>");
  EXPECT_EQ(v.token(3), "<unk>");
  EXPECT_EQ(v.token(4), "b");  // most frequent first
  EXPECT_EQ(v.token(5), "a");  // ties in byte order
  EXPECT_EQ(v.id("zzz"), s2s::Vocab::kUnk);
  EXPECT_EQ(v.decode({1, 4, 5, 2, 6}), (std::vector<std::string>{"b", "a"}));  // stops at </s>
  EXPECT_EQ(s2s::Vocab::from_tokens(v.tokens()).tokens(), v.tokens());
  EXPECT_THROW(s2s::Vocab::from_tokens({"a", "b"}), std::invalid_argument);
  EXPECT_EQ(s2s::split_tokens("ab c", true), (std::vector<std::string>{"a", "b", "\xe2\x96\x81", "c"}));
  EXPECT_EQ(s2s::join_tokens(s2s::split_tokens("héllo wörld", true), true), "héllo wörld");
  EXPECT_EQ(s2s::split_tokens("  two   words ", false), (std::vector<std::string>{"two", "words"}));
}

TEST(Seq2SeqModel, PaddedBatchGivesEachSentencesOwnStatesAndMasksPadding) {
  for (const std::string rnn : {"lstm", "gru"}) {
    auto model = make_model("general", rnn);
    model->eval();
    auto [src, len] = random_batch(6, 20, 9, 3);
    torch::NoGradGuard g;
    auto batch = model->encode(src, len);
    for (int64_t b = 0; b < 6; ++b) {
      const int64_t n = len[b].item<int64_t>();
      auto one = model->encode(src[b].slice(0, 0, n).unsqueeze(0), len[b].unsqueeze(0));
      EXPECT_TRUE(torch::allclose(one.h, batch.h.select(1, b).unsqueeze(1), 1e-5, 1e-6)) << rnn;
      EXPECT_TRUE(torch::allclose(one.memory[0], batch.memory[b].slice(0, 0, n), 1e-5, 1e-6)) << rnn;
    }
    auto prev = torch::full({6}, s2s::Vocab::kBos, torch::kLong);
    auto [logits, attn] = model->step(batch, prev);
    EXPECT_EQ(logits.sizes(), torch::IntArrayRef({6, 20}));
    EXPECT_EQ(attn.masked_select(batch.src_mask.logical_not()).abs().sum().item<double>(), 0.0);
    EXPECT_TRUE(torch::allclose(attn.sum(1), torch::ones({6}), 1e-5, 1e-6));
  }
}

TEST(Seq2SeqDecode, ScoresEqualTheModelsTeacherForcedLogProbabilities) {
  for (const std::string attention : {"dot", "general", "concat", "bahdanau"}) {
    auto model = make_model(attention);
    auto [src, len] = random_batch(5, 20, 7, 11);
    const auto beams = s2s::beam_search(model, src, len, s2s::DecodeOptions().beam(4).n_best(3).max_length_b(6));
    for (int64_t b = 0; b < 5; ++b) {
      ASSERT_FALSE(beams[b].empty());
      const int64_t n = len[b].item<int64_t>();
      const auto one_src = src[b].slice(0, 0, n).unsqueeze(0);
      for (size_t i = 0; i < beams[b].size(); ++i) {
        const auto& h = beams[b][i];
        if (i) EXPECT_GE(beams[b][i - 1].score, h.score);  // best first
        const int64_t limit = static_cast<int64_t>(2.0 * n) + 6;
        EXPECT_LE(static_cast<int64_t>(h.tokens.size()), limit);
        if (static_cast<int64_t>(h.tokens.size()) < limit)  // ended by </s>: its score is the full log-probability
          EXPECT_NEAR(h.score, teacher_forced_logprob(model, one_src, len[b].unsqueeze(0), h.tokens), 1e-4)
              << attention;
      }
    }
  }
}

TEST(Seq2SeqDecode, SameOutputAndScoreAloneOrInABatchOf64) {
  auto model = make_model("general");
  auto [src, len] = random_batch(64, 20, 12, 5);
  const auto opts = s2s::DecodeOptions().beam(5).n_best(2).length_penalty(0.6).coverage_penalty(0.2);
  const auto batch = s2s::beam_search(model, src, len, opts);
  const auto greedy = s2s::greedy_decode(model, src, len);
  for (int64_t b : {0, 1, 17, 40, 63}) {
    const int64_t n = len[b].item<int64_t>();
    const auto one_src = src[b].slice(0, 0, n).unsqueeze(0);
    const auto alone = s2s::beam_search(model, one_src, len[b].unsqueeze(0), opts);
    ASSERT_EQ(alone[0].size(), batch[b].size());
    for (size_t i = 0; i < alone[0].size(); ++i) {
      EXPECT_EQ(alone[0][i].tokens, batch[b][i].tokens) << "sentence " << b;
      EXPECT_NEAR(alone[0][i].score, batch[b][i].score, 1e-5);
    }
    const auto g = s2s::greedy_decode(model, one_src, len[b].unsqueeze(0));
    EXPECT_EQ(g[0][0].tokens, greedy[b][0].tokens);
  }
}

TEST(Seq2SeqDecode, BeamOneIsGreedyAndConstraintsHold) {
  auto model = make_model("bahdanau", "gru");
  auto [src, len] = random_batch(8, 20, 6, 9);
  const auto g = s2s::greedy_decode(model, src, len);
  const auto b1 = s2s::beam_search(model, src, len, s2s::DecodeOptions().beam(1));
  for (int64_t b = 0; b < 8; ++b) EXPECT_EQ(g[b][0].tokens, b1[b][0].tokens);
  const auto constrained = s2s::beam_search(
      model, src, len, s2s::DecodeOptions().beam(3).min_length(4).no_repeat_ngram(2).return_attention(true));
  for (int64_t b = 0; b < 8; ++b) {
    const auto& h = constrained[b][0];
    EXPECT_GE(h.tokens.size(), 4u);  // </s> blocked before 4 tokens
    for (size_t i = 0; i + 1 < h.tokens.size(); ++i)
      for (size_t j = i + 1; j + 1 < h.tokens.size(); ++j)
        EXPECT_FALSE(h.tokens[i] == h.tokens[j] && h.tokens[i + 1] == h.tokens[j + 1]) << "repeated bigram";
    // One attention row per generated token (and </s> when it ended with it), summing to 1.
    ASSERT_GE(h.attention.size(), h.tokens.size());
    double total = 0;
    for (float w : h.attention[0]) total += w;
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
  EXPECT_THROW(s2s::beam_search(model, src, len, s2s::DecodeOptions().beam(2).n_best(3)), c10::Error);
  EXPECT_THROW(s2s::Seq2Seq(s2s::Seq2SeqOptions(10, 10).attention("dot")), c10::Error);  // bidirectional + dot
  EXPECT_THROW(s2s::Seq2Seq(s2s::Seq2SeqOptions(10, 10).attention("luong")), c10::Error);
}

TEST(Seq2SeqDecode, SamplingIsSeededPerSentenceAndTopOneIsGreedy) {
  auto model = make_model("general");
  auto [src, len] = random_batch(12, 20, 6, 21);
  const auto g = s2s::greedy_decode(model, src, len);
  const auto top1 = s2s::sample(model, src, len, s2s::SampleOptions().top_k(1).seed(5));
  const auto nucleus = s2s::sample(model, src, len, s2s::SampleOptions().top_p(1e-6).seed(9));
  for (int64_t b = 0; b < 12; ++b) {
    EXPECT_EQ(top1[b].tokens, g[b][0].tokens);     // only the best token can be drawn
    EXPECT_EQ(nucleus[b].tokens, g[b][0].tokens);  // the smallest nucleus is the best token
  }
  const auto o = s2s::SampleOptions().temperature(1.5).top_k(8).top_p(0.9).seed(3);
  const auto a = s2s::sample(model, src, len, o), again = s2s::sample(model, src, len, o);
  int differs_from_greedy = 0;
  for (int64_t b = 0; b < 12; ++b) {
    EXPECT_EQ(a[b].tokens, again[b].tokens);  // same seed, same sample
    differs_from_greedy += a[b].tokens != g[b][0].tokens;
  }
  EXPECT_GT(differs_from_greedy, 0);
  // The first sentence's sample alone equals its sample in the batch: each position of the
  // batch has its own generator, so the other sentences do not matter.
  const auto first_alone = s2s::sample(model, src[0].slice(0, 0, len[0].item<int64_t>()).unsqueeze(0),
                                       len[0].unsqueeze(0), o);
  EXPECT_EQ(first_alone[0].tokens, a[0].tokens);
  EXPECT_THROW(s2s::sample(model, src, len, s2s::SampleOptions().temperature(0)), c10::Error);
}

TEST(Seq2SeqTraining, LearnsToReverseShortSequencesInSeconds) {
  // The reverse task in miniature: digits 4..13, lengths 1..5.
  torch::manual_seed(1);
  torch::set_num_threads(1);  // ctest runs tests side by side: no OpenMP oversubscription
  const int64_t V = 14;
  s2s::Seq2Seq model(s2s::Seq2SeqOptions(V, V).embedding(16).hidden(48).attention("general"));
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
  std::mt19937_64 rng(3);
  auto batch = [&](int64_t B) {
    std::vector<std::vector<int64_t>> seqs;
    int64_t S = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = 1 + static_cast<int64_t>(rng() % 5);
      std::vector<int64_t> s;
      for (int64_t i = 0; i < n; ++i) s.push_back(4 + static_cast<int64_t>(rng() % 10));
      S = std::max(S, n + 1);
      seqs.push_back(s);
    }
    auto src = torch::zeros({B, S}, torch::kLong), len = torch::zeros({B}, torch::kLong);
    auto tin = torch::zeros({B, S}, torch::kLong), tout = torch::zeros({B, S}, torch::kLong);
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = seqs[b];
      const int64_t n = static_cast<int64_t>(s.size());
      for (int64_t i = 0; i < n; ++i) {
        src[b][i] = s[i];
        tout[b][i] = s[n - 1 - i];
        tin[b][i + 1] = s[n - 1 - i];
      }
      src[b][n] = s2s::Vocab::kEos;
      tout[b][n] = s2s::Vocab::kEos;
      tin[b][0] = s2s::Vocab::kBos;
      len[b] = n + 1;
    }
    return std::make_tuple(src, len, tin, tout, seqs);
  };
  model->train();
  for (int step = 0; step < 250; ++step) {
    auto [src, len, tin, tout, seqs] = batch(32);
    opt.zero_grad();
    auto loss = s2s::sequence_loss(model->forward(src, len, tin), tout, 0.1);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
  }
  auto [src, len, tin, tout, seqs] = batch(100);
  const auto out = s2s::greedy_decode(model, src, len);
  int correct = 0;
  for (int64_t b = 0; b < 100; ++b) {
    std::vector<int64_t> want(seqs[b].rbegin(), seqs[b].rend());
    correct += out[b][0].tokens == want;
  }
  EXPECT_GE(correct, 90) << "exact reversals out of 100 after 250 steps";
}

#include <filesystem>
#include <fstream>

#include "fancy/seq2seq/data.h"
#include "fancy/seq2seq/evaluate.h"
#include "fancy/seq2seq/train.h"

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("fancy_test_" + name);
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace

TEST(Seq2SeqData, TsvAndDictionaryErrorsNameFileAndLine) {
  const auto tsv = write_temp("pairs.tsv", "a b\tb a\nno tab here\nx\t\n");
  try {
    s2s::read_tsv(tsv, false, false, false);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("pairs.tsv:2: expected exactly one tab"), std::string::npos) << e.what();
  }
  std::vector<std::string> warnings;
  const auto pairs = s2s::read_tsv(tsv, false, false, true, &warnings);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].target, (std::vector<std::string>{"b", "a"}));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[1].find("pairs.tsv:3: empty target"), std::string::npos);

  const auto dict = write_temp("dict.out",
                               "MNCL\n(\"a\" dt (((ax) 0)))\n(\"a\" n (((ey) 1)))\n(\"aaa\" nil (((t r ih) 1) ((p ax) 0)"
                               " ((l ey) 1)))\n(\"broken\" nil ((( b r\n");
  EXPECT_THROW(s2s::read_cmudict(dict, false), std::runtime_error);
  const auto words = s2s::read_cmudict(dict, true, &warnings);
  ASSERT_EQ(words.size(), 2u);
  EXPECT_EQ(words[0].source, (std::vector<std::string>{"a"}));
  EXPECT_EQ(words[0].answers.size(), 2u);  // both pronunciations accepted
  EXPECT_EQ(words[1].target, (std::vector<std::string>{"t", "r", "ih", "p", "ax", "l", "ey"}));  // syllables flattened
  EXPECT_EQ(s2s::cmudict_split({"a", "a", "a"}), s2s::cmudict_split({"a", "a", "a"}));
}

TEST(Seq2SeqData, LongSourcesAreCutWithAWarningNamingTheLine) {
  const auto tsv = write_temp("long.tsv", "a b\tb a\n\na b c d e f\tf e d c b a\n");
  std::vector<std::string> warnings;
  auto pairs = s2s::read_tsv(tsv, false, false, true, &warnings);
  ASSERT_EQ(pairs.size(), 2u);
  warnings.clear();
  EXPECT_EQ(s2s::truncate_sources(pairs, 4, tsv, &warnings), 1);
  EXPECT_EQ(pairs[0].source.size(), 2u);
  EXPECT_EQ(pairs[1].source, (std::vector<std::string>{"a", "b", "c", "d"}));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("long.tsv:3: source of 6 tokens truncated to the limit of 4"), std::string::npos)
      << warnings[0];
  std::vector<s2s::Pair> typed{{{"x", "y", "z"}, {"z"}, {}}};  // not from a file: named by position
  warnings.clear();
  s2s::truncate_sources(typed, 2, "words", &warnings);
  EXPECT_NE(warnings.at(0).find("words: pair 1: source of 3 tokens"), std::string::npos) << warnings[0];
  EXPECT_THROW(s2s::truncate_sources(typed, -1, "words", &warnings), c10::Error);
}

TEST(Seq2SeqData, ErrorRatesAcceptAnyAnswerAndCountEdits) {
  std::vector<s2s::Pair> pairs(2);
  pairs[0].answers = {{"ax"}, {"ey"}};
  pairs[1].answers = {{"t", "r", "ih"}};
  const auto r = s2s::error_rates({{"ey"}, {"t", "ih"}}, pairs);
  EXPECT_DOUBLE_EQ(r.wer, 0.5);        // the second word is wrong
  EXPECT_DOUBLE_EQ(r.per, 1.0 / 4.0);  // one deletion over 1 + 3 reference phones
  EXPECT_EQ(s2s::edit_distance({"a", "b", "c"}, {"a", "c", "d"}), 2);
}

TEST(Seq2SeqTraining, ResumingGivesTheSameModelAsAnUninterruptedRun) {
  torch::set_num_threads(1);
  const auto pairs = s2s::reverse_task(120, 1, 4, 6, 5);
  std::vector<std::vector<std::string>> toks;
  for (const auto& p : pairs) toks.push_back(p.source);
  const auto v = s2s::Vocab::build(toks);
  const auto dir = (std::filesystem::temp_directory_path() / "fancy_resume_test").string();
  std::filesystem::remove_all(dir);
  auto opts = [&](int64_t epochs, bool resume) {
    return s2s::TrainOptions().epochs(epochs).batch_size(16).validate_every(4).seed(3).checkpoint_dir(dir).resume(resume);
  };
  auto make = [&] { return s2s::Seq2Seq(s2s::Seq2SeqOptions(v.size(), v.size()).embedding(8).hidden(12).dropout(0.1)); };
  auto validate = [](s2s::Seq2Seq&) { return 0.0; };
  std::ostringstream log;
  torch::manual_seed(3);
  auto straight = make();
  s2s::train(straight, pairs, v, v, validate, opts(2, false), log);
  std::filesystem::remove_all(dir);
  torch::manual_seed(3);
  auto first = make();
  s2s::train(first, pairs, v, v, validate, opts(1, false), log);  // stops after epoch 1, checkpoint written
  auto resumed = make();
  s2s::train(resumed, pairs, v, v, validate, opts(2, true), log);  // continues from last.pt
  const auto a = straight->parameters(), b = resumed->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  // A truncated checkpoint is a clear error.
  const auto last = std::filesystem::path(dir) / "last.pt";
  std::filesystem::resize_file(last, std::filesystem::file_size(last) / 2);
  auto again = make();
  try {
    s2s::train(again, pairs, v, v, validate, opts(3, true), log);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("last.pt"), std::string::npos) << e.what();
  }
}
