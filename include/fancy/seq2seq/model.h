// RNN encoder-decoder with attention (LibTorch C++ frontend).
//
// Encoder: embedding -> LSTM or GRU (n layers, optionally bidirectional) over packed
// sequences, so padding never touches the states. Decoder: LSTM or GRU with
//  - Luong attention (dot, general or concat scores on the current state; attentional
//    state h~ = tanh(W_c [c; h]); input feeding of h~ into the next step), or
//  - Bahdanau attention (additive scores on the previous state; the context enters the
//    RNN input).
// Source padding is masked with -inf before the softmax. One decoder step at a time
// (step()), so training (teacher forcing) and every decoding strategy share the code.
#pragma once

#include <torch/torch.h>

#include <string>

namespace fancy::seq2seq {

struct Seq2SeqOptions {
  Seq2SeqOptions(int64_t src_vocab, int64_t tgt_vocab) : src_vocab_(src_vocab), tgt_vocab_(tgt_vocab) {}
  TORCH_ARG(int64_t, src_vocab);
  TORCH_ARG(int64_t, tgt_vocab);
  TORCH_ARG(int64_t, embedding) = 16;
  TORCH_ARG(int64_t, hidden) = 64;
  TORCH_ARG(int64_t, layers) = 1;
  TORCH_ARG(bool, bidirectional) = true;
  TORCH_ARG(std::string, rnn) = "lstm";           // lstm | gru
  TORCH_ARG(std::string, attention) = "general";  // dot | general | concat | bahdanau
  TORCH_ARG(bool, input_feeding) = true;          // Luong only
  TORCH_ARG(double, dropout) = 0.0;
};

// What the decoder carries from step to step, batch-first except the RNN states.
struct DecoderState {
  torch::Tensor h;         // (layers, B, H)
  torch::Tensor c;         // (layers, B, H), LSTM only
  torch::Tensor feed;      // (B, H): Luong's attentional state, fed to the next input
  torch::Tensor memory;    // (B, S, D): encoder outputs
  torch::Tensor keys;      // (B, S, *): memory projected for the scores
  torch::Tensor src_mask;  // (B, S) bool, true on real tokens
  torch::Tensor coverage;  // (B, S): attention summed over the steps so far
  // Rows per source: rows b·beam … b·beam + beam − 1 all attend to memory row b, so beam
  // search keeps one copy of memory, keys and mask per sentence (memory, keys, src_mask
  // then have B / beam rows).
  int64_t beam = 1;

  // The state of rows `index` (one row per source: reorder, repeat, drop).
  DecoderState select(const torch::Tensor& index) const;
  // Beam search's step: rows `rows` of the decoder states and sources `sources` of the
  // memory; the result has beam = rows / sources rows per source, and row r must belong
  // to source sources[r / beam] (so the first step can grow one row per source to K).
  DecoderState select_beams(const torch::Tensor& rows, const torch::Tensor& sources) const;
};

class Seq2SeqImpl : public torch::nn::Module {
 public:
  explicit Seq2SeqImpl(Seq2SeqOptions options);

  // src: (B, S) token ids padded with <pad>; src_len: (B) lengths (>= 1).
  DecoderState encode(const torch::Tensor& src, const torch::Tensor& src_len);
  // One decoder step from the previous tokens (B): logits (B, V) and attention (B, S).
  std::pair<torch::Tensor, torch::Tensor> step(DecoderState& state, const torch::Tensor& prev);
  // Teacher forcing: logits (B, T, V) for target inputs (B, T) (<s> y1 ... y_{T-1}).
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_len, const torch::Tensor& tgt_in);

  const Seq2SeqOptions& options() const { return options_; }

 private:
  torch::Tensor scores(const torch::Tensor& query, const DecoderState& state);

  Seq2SeqOptions options_;
  bool lstm_;
  bool luong_;
  torch::nn::Embedding src_embed{nullptr}, tgt_embed{nullptr};
  torch::nn::LSTM enc_lstm{nullptr}, dec_lstm{nullptr};
  torch::nn::GRU enc_gru{nullptr}, dec_gru{nullptr};
  torch::nn::Linear bridge_h{nullptr}, bridge_c{nullptr};
  torch::nn::Linear key_proj{nullptr};    // general: W_a; concat/bahdanau: U
  torch::nn::Linear query_proj{nullptr};  // concat/bahdanau: W
  torch::nn::Linear energy{nullptr};      // concat/bahdanau: v
  torch::nn::Linear combine{nullptr};     // Luong W_c / Bahdanau output layer
  torch::nn::Linear output{nullptr};      // to the target vocabulary
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(Seq2Seq);

// Mean token cross-entropy with label smoothing, <pad> targets ignored.
torch::Tensor sequence_loss(const torch::Tensor& logits, const torch::Tensor& target, double label_smoothing = 0.0);

}  // namespace fancy::seq2seq
