#include "fancy/seq2seq/vocab.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>

namespace fancy::seq2seq {

namespace {
const char* kSpecials[] = {"<pad>", "<s>", "</s>", "<unk>"};
const char* kSpace = "\xe2\x96\x81";  // U+2581, stands for a space in character mode
}  // namespace

Vocab::Vocab() {
  for (const char* s : kSpecials) add(s);
}

void Vocab::add(const std::string& token) {
  if (index_.count(token)) return;
  index_[token] = static_cast<int64_t>(tokens_.size());
  tokens_.push_back(token);
}

Vocab Vocab::build(const std::vector<std::vector<std::string>>& sentences, int64_t min_freq, int64_t max_size) {
  std::map<std::string, int64_t> counts;
  for (const auto& s : sentences)
    for (const auto& t : s) ++counts[t];
  std::vector<std::pair<std::string, int64_t>> items(counts.begin(), counts.end());
  std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  Vocab v;
  for (const auto& [token, count] : items) {
    if (count < min_freq) break;
    if (max_size > 0 && v.size() >= max_size) break;
    v.add(token);
  }
  return v;
}

Vocab Vocab::from_tokens(const std::vector<std::string>& tokens) {
  if (tokens.size() < 4 || tokens[0] != kSpecials[0] || tokens[1] != kSpecials[1] || tokens[2] != kSpecials[2] ||
      tokens[3] != kSpecials[3])
    throw std::invalid_argument("Vocab: a saved vocabulary starts with <pad> <s> </s> <unk>");
  Vocab v;
  for (size_t i = 4; i < tokens.size(); ++i) v.add(tokens[i]);
  if (v.size() != static_cast<int64_t>(tokens.size()))
    throw std::invalid_argument("Vocab: a saved vocabulary has a repeated token");
  return v;
}

int64_t Vocab::id(const std::string& token) const {
  const auto it = index_.find(token);
  return it == index_.end() ? kUnk : it->second;
}

const std::string& Vocab::token(int64_t id) const {
  if (id < 0 || id >= size()) throw std::out_of_range("Vocab: id " + std::to_string(id) + " out of range");
  return tokens_[static_cast<size_t>(id)];
}

std::vector<int64_t> Vocab::encode(const std::vector<std::string>& tokens) const {
  std::vector<int64_t> ids;
  ids.reserve(tokens.size());
  for (const auto& t : tokens) ids.push_back(id(t));
  return ids;
}

std::vector<std::string> Vocab::decode(const std::vector<int64_t>& ids) const {
  std::vector<std::string> out;
  for (int64_t i : ids) {
    if (i == kEos) break;
    if (i == kPad || i == kBos) continue;
    out.push_back(token(i));
  }
  return out;
}

std::vector<std::string> split_tokens(const std::string& line, bool characters) {
  std::vector<std::string> out;
  if (!characters) {
    std::istringstream in(line);
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
  }
  for (size_t i = 0; i < line.size();) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    std::string ch = line.substr(i, n);
    out.push_back(ch == " " ? kSpace : ch);
    i += n;
  }
  return out;
}

std::string join_tokens(const std::vector<std::string>& tokens, bool characters) {
  std::string s;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (characters) s += tokens[i] == kSpace ? " " : tokens[i];
    else s += (i ? " " : "") + tokens[i];
  }
  return s;
}

}  // namespace fancy::seq2seq
