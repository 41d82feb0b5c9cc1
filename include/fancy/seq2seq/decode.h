// Decoding: greedy and batched beam search, as the strongest decoders do it
// (CTranslate2, fairseq): per step the top 2·beam of beam·V continuations; </s>
// among the first `beam` of them finishes a hypothesis and the spare ones refill the
// beam; length and coverage penalties apply to finished hypotheses only; a sentence
// stops early only when no penalty is used; each sentence has its own maximum length
// (a·src_len + b) and leaves the batch when it is done, so a sentence decodes the same
// alone or in any batch.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "fancy/seq2seq/model.h"

namespace fancy::seq2seq {

struct DecodeOptions {
  TORCH_ARG(int64_t, beam) = 5;            // 1 = greedy
  TORCH_ARG(int64_t, n_best) = 1;          // hypotheses returned per sentence (<= beam)
  TORCH_ARG(double, length_penalty) = 0;   // alpha; 0 = none
  TORCH_ARG(std::string, length_penalty_kind) = "gnmt";  // gnmt: ((5+len)/6)^a; avg: len^a
  TORCH_ARG(double, coverage_penalty) = 0;  // beta * sum_j log(min(sum_i attn_ij, 1))
  TORCH_ARG(int64_t, min_length) = 0;       // </s> is blocked before this many tokens
  TORCH_ARG(double, max_length_a) = 2.0;    // max tokens = a * source length + b
  TORCH_ARG(int64_t, max_length_b) = 10;
  TORCH_ARG(int64_t, no_repeat_ngram) = 0;  // n > 0: never repeat an n-gram
  TORCH_ARG(bool, return_attention) = false;
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // without <s> and </s>
  double score = 0;             // log-probability, with the penalties when they are used
  std::vector<std::vector<float>> attention;  // per target token (and </s>): source weights
};

// Where decoding time goes: the model (encoder and decoder steps) versus everything
// else (log-softmax, top-k, the beam bookkeeping). Accumulated over calls.
struct DecodeTimings {
  double model_seconds = 0, total_seconds = 0;
  int64_t sentences = 0, target_tokens = 0;
};

// src: (B, S) padded ids, src_len: (B). One list of n_best hypotheses per sentence,
// best first. Runs under NoGradGuard and in eval mode.
std::vector<std::vector<Hypothesis>> beam_search(Seq2Seq& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_len, const DecodeOptions& options,
                                                 DecodeTimings* timings = nullptr);
std::vector<std::vector<Hypothesis>> greedy_decode(Seq2Seq& model, const torch::Tensor& src,
                                                   const torch::Tensor& src_len, DecodeOptions options = {},
                                                   DecodeTimings* timings = nullptr);

// Random sampling, one token at a time from the model's distribution sharpened by
// `temperature` and cut to the `top_k` most likely tokens and / or the smallest set whose
// probability reaches `top_p`. The sentence at batch position i draws from its own
// generator seeded with (seed, i), so its sample depends neither on the other sentences
// nor on the thread count.
struct SampleOptions {
  TORCH_ARG(double, temperature) = 1.0;
  TORCH_ARG(int64_t, top_k) = 0;   // 0 = all tokens
  TORCH_ARG(double, top_p) = 1.0;  // 1 = no nucleus cut
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, min_length) = 0;
  TORCH_ARG(double, max_length_a) = 2.0;
  TORCH_ARG(int64_t, max_length_b) = 10;
};
// One hypothesis per sentence; its score is the model's log-probability of the sample.
std::vector<Hypothesis> sample(Seq2Seq& model, const torch::Tensor& src, const torch::Tensor& src_len,
                               const SampleOptions& options);

}  // namespace fancy::seq2seq
