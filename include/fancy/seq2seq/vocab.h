// Vocabularies for the seq2seq models: characters or whitespace tokens, with the
// specials <pad> <s> </s> <unk> at ids 0..3. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace fancy::seq2seq {

class Vocab {
 public:
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;

  Vocab();
  // Tokens seen at least min_freq times, most frequent first (ties in byte order, so
  // the same data gives the same ids); max_size > 0 caps the size, specials included.
  static Vocab build(const std::vector<std::vector<std::string>>& sentences, int64_t min_freq = 1,
                     int64_t max_size = 0);
  // The same vocabulary from its token list (ids in order), as saved().
  static Vocab from_tokens(const std::vector<std::string>& tokens);

  int64_t id(const std::string& token) const;  // kUnk when unknown
  const std::string& token(int64_t id) const;
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }

  std::vector<int64_t> encode(const std::vector<std::string>& tokens) const;
  // Ids to tokens, stopping at </s> and leaving out <pad> and <s>.
  std::vector<std::string> decode(const std::vector<int64_t>& ids) const;

 private:
  void add(const std::string& token);
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> index_;
};

// A line as tokens: its UTF-8 characters (spaces included as "▁"), or its
// whitespace-separated words.
std::vector<std::string> split_tokens(const std::string& line, bool characters);
// Tokens back to a line: concatenated (characters) or joined by single spaces.
std::string join_tokens(const std::vector<std::string>& tokens, bool characters);

}  // namespace fancy::seq2seq
