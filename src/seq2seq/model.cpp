#include "fancy/seq2seq/model.h"

#include <limits>

#include "fancy/seq2seq/vocab.h"

namespace fancy::seq2seq {

namespace F = torch::nn::functional;

DecoderState DecoderState::select(const torch::Tensor& index) const {
  TORCH_CHECK(beam == 1, "DecoderState.select: the state holds ", beam, " beams per source; use select_beams");
  DecoderState s;
  s.h = h.index_select(1, index);
  if (c.defined()) s.c = c.index_select(1, index);
  if (feed.defined()) s.feed = feed.index_select(0, index);
  s.memory = memory.index_select(0, index);
  s.keys = keys.index_select(0, index);
  s.src_mask = src_mask.index_select(0, index);
  s.coverage = coverage.index_select(0, index);
  return s;
}

DecoderState DecoderState::select_beams(const torch::Tensor& rows, const torch::Tensor& sources) const {
  TORCH_CHECK(sources.numel() > 0 && rows.numel() % sources.numel() == 0, "DecoderState.select_beams: ",
              rows.numel(), " rows cannot be split evenly over ", sources.numel(), " sources");
  DecoderState s;
  s.beam = rows.numel() / sources.numel();
  s.h = h.index_select(1, rows);
  if (c.defined()) s.c = c.index_select(1, rows);
  if (feed.defined()) s.feed = feed.index_select(0, rows);
  s.coverage = coverage.index_select(0, rows);
  const bool same = sources.numel() == memory.size(0);  // no sentence finished: keep the memory as it is
  s.memory = same ? memory : memory.index_select(0, sources);
  s.keys = same ? keys : keys.index_select(0, sources);
  s.src_mask = same ? src_mask : src_mask.index_select(0, sources);
  return s;
}

Seq2SeqImpl::Seq2SeqImpl(Seq2SeqOptions o) : options_(std::move(o)) {
  const auto& opt = options_;
  TORCH_CHECK(opt.rnn() == "lstm" || opt.rnn() == "gru", "Seq2Seq: rnn '", opt.rnn(), "' is not lstm or gru");
  TORCH_CHECK(opt.attention() == "dot" || opt.attention() == "general" || opt.attention() == "concat" ||
                  opt.attention() == "bahdanau",
              "Seq2Seq: attention '", opt.attention(), "' is not one of dot, general, concat, bahdanau");
  TORCH_CHECK(opt.layers() >= 1 && opt.hidden() >= 1 && opt.embedding() >= 1, "Seq2Seq: layers (", opt.layers(),
              "), hidden (", opt.hidden(), ") and embedding (", opt.embedding(), ") must be positive");
  lstm_ = opt.rnn() == "lstm";
  luong_ = opt.attention() != "bahdanau";
  const int64_t H = opt.hidden(), E = opt.embedding();
  const int64_t D = H * (opt.bidirectional() ? 2 : 1);  // encoder output size
  TORCH_CHECK(opt.attention() != "dot" || D == H, "Seq2Seq: dot attention needs encoder outputs of the decoder's size (",
              D, " vs ", H, "); use general attention with a bidirectional encoder");
  const double rnn_dropout = opt.layers() > 1 ? opt.dropout() : 0.0;
  src_embed = register_module("src_embed", torch::nn::Embedding(torch::nn::EmbeddingOptions(opt.src_vocab(), E)
                                                                    .padding_idx(Vocab::kPad)));
  tgt_embed = register_module("tgt_embed", torch::nn::Embedding(torch::nn::EmbeddingOptions(opt.tgt_vocab(), E)
                                                                    .padding_idx(Vocab::kPad)));
  const int64_t dec_in = E + (luong_ ? (opt.input_feeding() ? H : 0) : D);
  if (lstm_) {
    enc_lstm = register_module("enc_rnn", torch::nn::LSTM(torch::nn::LSTMOptions(E, H)
                                                              .num_layers(opt.layers())
                                                              .bidirectional(opt.bidirectional())
                                                              .batch_first(true)
                                                              .dropout(rnn_dropout)));
    dec_lstm = register_module("dec_rnn", torch::nn::LSTM(torch::nn::LSTMOptions(dec_in, H)
                                                              .num_layers(opt.layers())
                                                              .batch_first(true)
                                                              .dropout(rnn_dropout)));
    bridge_c = register_module("bridge_c", torch::nn::Linear(D, H));
  } else {
    enc_gru = register_module("enc_rnn", torch::nn::GRU(torch::nn::GRUOptions(E, H)
                                                            .num_layers(opt.layers())
                                                            .bidirectional(opt.bidirectional())
                                                            .batch_first(true)
                                                            .dropout(rnn_dropout)));
    dec_gru = register_module("dec_rnn", torch::nn::GRU(
                                             torch::nn::GRUOptions(dec_in, H).num_layers(opt.layers()).batch_first(true)
                                                 .dropout(rnn_dropout)));
  }
  bridge_h = register_module("bridge_h", torch::nn::Linear(D, H));
  if (opt.attention() == "general") {
    key_proj = register_module("key_proj", torch::nn::Linear(torch::nn::LinearOptions(D, H).bias(false)));
  } else if (opt.attention() == "concat" || opt.attention() == "bahdanau") {
    key_proj = register_module("key_proj", torch::nn::Linear(torch::nn::LinearOptions(D, H).bias(false)));
    query_proj = register_module("query_proj", torch::nn::Linear(torch::nn::LinearOptions(H, H).bias(false)));
    energy = register_module("energy", torch::nn::Linear(torch::nn::LinearOptions(H, 1).bias(false)));
  }
  combine = register_module("combine", torch::nn::Linear(torch::nn::LinearOptions(D + H, H).bias(false)));
  output = register_module("output", torch::nn::Linear(H, opt.tgt_vocab()));
  dropout = register_module("dropout", torch::nn::Dropout(opt.dropout()));
}

DecoderState Seq2SeqImpl::encode(const torch::Tensor& src, const torch::Tensor& src_len) {
  TORCH_CHECK(src.dim() == 2 && src_len.dim() == 1 && src_len.size(0) == src.size(0),
              "Seq2Seq.encode: src must be (batch, length) and src_len (batch), got ", src.sizes(), " and ",
              src_len.sizes());
  TORCH_CHECK(src_len.numel() == 0 || src_len.min().item<int64_t>() >= 1,
              "Seq2Seq.encode: every source needs at least one token (</s> counts)");
  const int64_t B = src.size(0), S = src.size(1), L = options_.layers();
  const auto lengths = src_len.to(torch::kCPU, torch::kInt64);
  auto x = dropout(src_embed(src));
  auto packed = torch::nn::utils::rnn::pack_padded_sequence(x, lengths, /*batch_first=*/true,
                                                            /*enforce_sorted=*/false);
  torch::Tensor out, h_n, c_n;
  if (lstm_) {
    auto r = enc_lstm->forward_with_packed_input(packed);
    out = std::get<0>(torch::nn::utils::rnn::pad_packed_sequence(std::get<0>(r), true, 0.0, S));
    h_n = std::get<0>(std::get<1>(r));
    c_n = std::get<1>(std::get<1>(r));
  } else {
    auto r = enc_gru->forward_with_packed_input(packed);
    out = std::get<0>(torch::nn::utils::rnn::pad_packed_sequence(std::get<0>(r), true, 0.0, S));
    h_n = std::get<1>(r);
  }
  // (layers * dirs, B, H) -> (layers, B, dirs * H): each layer's directions side by side.
  auto merge = [&](const torch::Tensor& t) {
    if (!options_.bidirectional()) return t;
    auto v = t.view({L, 2, B, options_.hidden()});
    return torch::cat({v.select(1, 0), v.select(1, 1)}, -1);
  };
  DecoderState s;
  s.h = torch::tanh(bridge_h(merge(h_n))).contiguous();
  if (lstm_) s.c = torch::tanh(bridge_c(merge(c_n))).contiguous();
  s.memory = out;
  s.src_mask = torch::arange(S, src.options()).unsqueeze(0) < src_len.to(src.device()).unsqueeze(1);
  if (options_.attention() == "dot") s.keys = out;
  else s.keys = key_proj(out);
  if (luong_ && options_.input_feeding()) s.feed = torch::zeros({B, options_.hidden()}, out.options());
  s.coverage = torch::zeros({B, S}, out.options());
  return s;
}

// Scores (rows, S) of queries grouped by source: (N·beam, H) against N memories.
torch::Tensor Seq2SeqImpl::scores(const torch::Tensor& query, const DecoderState& s) {
  const int64_t N = s.keys.size(0), S = s.keys.size(1);
  torch::Tensor e;
  if (options_.attention() == "dot" || options_.attention() == "general") {
    e = torch::bmm(query.view({N, s.beam, -1}), s.keys.transpose(1, 2));  // (N, beam, S)
  } else {                                                                 // v^T tanh(W q + U m)
    e = energy(torch::tanh(s.keys.unsqueeze(1) + query_proj(query).view({N, s.beam, 1, -1}))).squeeze(3);
  }
  e = e.masked_fill(s.src_mask.logical_not().unsqueeze(1), -std::numeric_limits<float>::infinity());
  return e.view({N * s.beam, S});
}

// Σ_s attn[r, s] · memory[source(r), s]: (rows, D).
static torch::Tensor attend(const torch::Tensor& attn, const DecoderState& s) {
  const int64_t N = s.memory.size(0);
  return torch::bmm(attn.view({N, s.beam, -1}), s.memory).view({attn.size(0), -1});
}

std::pair<torch::Tensor, torch::Tensor> Seq2SeqImpl::step(DecoderState& s, const torch::Tensor& prev) {
  auto emb = dropout(tgt_embed(prev));  // (B, E)
  auto run_rnn = [&](const torch::Tensor& input) {
    if (lstm_) {
      auto r = dec_lstm->forward(input.unsqueeze(1), std::make_tuple(s.h, s.c));
      s.h = std::get<0>(std::get<1>(r));
      s.c = std::get<1>(std::get<1>(r));
      return std::get<0>(r).squeeze(1);
    }
    auto r = dec_gru->forward(input.unsqueeze(1), s.h);
    s.h = std::get<1>(r);
    return std::get<0>(r).squeeze(1);
  };
  torch::Tensor attn, context, hidden;
  if (luong_) {
    auto input = s.feed.defined() ? torch::cat({emb, s.feed}, 1) : emb;
    auto h = run_rnn(input);  // query: the current state
    attn = torch::softmax(scores(h, s), 1);
    context = attend(attn, s);
    hidden = torch::tanh(combine(torch::cat({context, h}, 1)));  // h~
    if (s.feed.defined()) s.feed = hidden;
  } else {
    attn = torch::softmax(scores(s.h[-1], s), 1);  // query: the previous state
    context = attend(attn, s);
    auto h = run_rnn(torch::cat({emb, context}, 1));
    hidden = torch::tanh(combine(torch::cat({context, h}, 1)));
  }
  s.coverage = s.coverage + attn;
  return {output(dropout(hidden)), attn};
}

torch::Tensor Seq2SeqImpl::forward(const torch::Tensor& src, const torch::Tensor& src_len,
                                   const torch::Tensor& tgt_in) {
  auto state = encode(src, src_len);
  std::vector<torch::Tensor> logits;
  for (int64_t t = 0; t < tgt_in.size(1); ++t) logits.push_back(step(state, tgt_in.select(1, t)).first);
  return torch::stack(logits, 1);
}

torch::Tensor sequence_loss(const torch::Tensor& logits, const torch::Tensor& target, double label_smoothing) {
  return F::cross_entropy(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}),
                          F::CrossEntropyFuncOptions().ignore_index(Vocab::kPad).label_smoothing(label_smoothing));
}

}  // namespace fancy::seq2seq
