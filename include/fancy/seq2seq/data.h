// Data for the seq2seq models: TSV / dictionary readers that name the file and line of
// every bad record, the CMUdict and reverse tasks, and length-bucketed batches.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fancy/seq2seq/vocab.h"

namespace fancy::seq2seq {

// A source/target pair as tokens; `answers` holds every accepted target (CMUdict keeps
// each pronunciation of a word), answers[0] == target.
struct Pair {
  std::vector<std::string> source, target;
  std::vector<std::vector<std::string>> answers;
  size_t line = 0;  // line in the file it was read from (0: not read from a file)
};

// Reads "source<TAB>target" lines. A malformed line (no tab, empty side) is an error
// naming file and line, or, with skip_bad, a warning appended to `warnings`.
std::vector<Pair> read_tsv(const std::string& path, bool source_chars, bool target_chars, bool skip_bad,
                           std::vector<std::string>* warnings = nullptr);

// Festival's CMUdict ("word" pos (((ph ph) stress) ...)): the word's characters to
// its phones, syllables flattened; every pronunciation of a word is an accepted answer.
std::vector<Pair> read_cmudict(const std::string& path, bool skip_bad, std::vector<std::string>* warnings = nullptr);
// 0 train, 1 dev, 2 test: FNV-1a of the word, 90/5/5, so no word is in two sets.
int cmudict_split(const std::vector<std::string>& word_chars);

// JoeyNMT's reverse task: n pairs of random integers in [0, vocab), length in
// [min_len, max_len], target = source reversed; seeded.
std::vector<Pair> reverse_task(int64_t n, int64_t min_len, int64_t max_len, int64_t vocab, uint64_t seed);

struct Batch {
  torch::Tensor src, src_len, tgt_in, tgt_out;  // src ends with </s>; tgt_in starts with <s>
  std::vector<size_t> index;                     // positions of the pairs in the dataset
};

// Cuts sources longer than max_tokens (> 0) to that length, with one warning per cut
// source naming where it came from ("FILE:LINE" for pairs read from `path`, else its
// position) and its length. Returns how many were cut.
int64_t truncate_sources(std::vector<Pair>& pairs, int64_t max_tokens, const std::string& path,
                         std::vector<std::string>* warnings);

// Tensors for pairs[index...].
Batch make_batch(const std::vector<Pair>& pairs, const std::vector<size_t>& index, const Vocab& src_vocab,
                 const Vocab& tgt_vocab);

// Length-bucketed batches for one epoch: the pairs shuffled with (seed, epoch), cut into
// pools of 100 batches, each pool sorted by length and cut into batches, the batches
// shuffled. The same (seed, epoch) always gives the same batches.
std::vector<std::vector<size_t>> bucketed_batches(const std::vector<Pair>& pairs, int64_t batch_size, uint64_t seed,
                                                  int64_t epoch);

}  // namespace fancy::seq2seq
