// Decoding a whole data set in batches, and the error rates G2P is judged by.
#pragma once

#include <string>
#include <vector>

#include "fancy/seq2seq/data.h"
#include "fancy/seq2seq/decode.h"

namespace fancy::seq2seq {

// The best hypothesis for every pair, as target tokens (batches of similar lengths);
// an empty source gives an empty output.
std::vector<std::vector<std::string>> translate(Seq2Seq& model, const std::vector<Pair>& pairs, const Vocab& src_vocab,
                                                const Vocab& tgt_vocab, const DecodeOptions& options,
                                                int64_t batch_size = 64, DecodeTimings* timings = nullptr);

int64_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b);

struct ErrorRates {
  double wer = 0;  // share of sources whose output is none of the accepted answers
  double per = 0;  // token edits to the closest answer / that answer's length, summed
  int64_t count = 0;
};
ErrorRates error_rates(const std::vector<std::vector<std::string>>& outputs, const std::vector<Pair>& pairs);

}  // namespace fancy::seq2seq
