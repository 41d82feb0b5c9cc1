#include "fancy/seq2seq/data.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>

namespace fancy::seq2seq {
namespace {

void bad_line(const std::string& path, size_t line, const std::string& why, bool skip,
              std::vector<std::string>* warnings) {
  const std::string msg = path + ":" + std::to_string(line) + ": " + why;
  if (!skip) throw std::runtime_error(msg + " (skip bad lines with the skip option)");
  if (warnings) warnings->push_back(msg + " (skipped)");
}

std::ifstream open(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot read the file");
  return f;
}

}  // namespace

std::vector<Pair> read_tsv(const std::string& path, bool source_chars, bool target_chars, bool skip_bad,
                           std::vector<std::string>* warnings) {
  auto f = open(path);
  std::vector<Pair> out;
  std::string line;
  for (size_t n = 1; std::getline(f, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos) {
      bad_line(path, n, "expected exactly one tab between source and target", skip_bad, warnings);
      continue;
    }
    Pair p;
    p.source = split_tokens(line.substr(0, tab), source_chars);
    p.target = split_tokens(line.substr(tab + 1), target_chars);
    if (p.target.empty()) {
      bad_line(path, n, "empty target", skip_bad, warnings);
      continue;
    }
    p.answers = {p.target};
    p.line = n;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Pair> read_cmudict(const std::string& path, bool skip_bad, std::vector<std::string>* warnings) {
  auto f = open(path);
  std::map<std::string, Pair> words;  // sorted by word: a stable order
  std::string line;
  for (size_t n = 1; std::getline(f, line); ++n) {
    if (n == 1 && line.rfind("MNCL", 0) == 0) continue;
    if (line.empty()) continue;
    // ("word" pos (((ph ph) 1) ((ph) 0)))
    const size_t q1 = line.find('"'), q2 = line.find('"', q1 + 1);
    const size_t body = line.find("(((", q2 == std::string::npos ? 0 : q2);
    if (line.rfind("(\"", 0) != 0 || q2 == std::string::npos || body == std::string::npos) {
      bad_line(path, n, "not a Festival lexicon entry (\"word\" pos (((phones) stress) ...))", skip_bad, warnings);
      continue;
    }
    const std::string word = line.substr(q1 + 1, q2 - q1 - 1);
    std::vector<std::string> phones;
    std::string tok;
    int depth = 0;
    bool ok = true;
    size_t i = body;
    for (; i < line.size(); ++i) {
      const char c = line[i];
      if (c == ')' && depth == 1) {  // the end of the pronunciation list
        if (!tok.empty()) ok = false;
        depth = 0;
        ++i;
        break;
      }
      if (c == '(') {
        ++depth;
      } else if (c == ')' || c == ' ') {
        if (!tok.empty()) {
          if (depth == 3) phones.push_back(tok);  // phones sit three parentheses deep
          else if (depth != 2 || !std::all_of(tok.begin(), tok.end(), ::isdigit)) ok = false;
          tok.clear();
        }
        if (c == ')') --depth;
      } else {
        tok += c;
      }
    }
    const bool closed = line.find_first_not_of(" )", i) == std::string::npos && line.find(')', i) != std::string::npos;
    if (!ok || depth != 0 || !closed || phones.empty() || word.empty()) {
      bad_line(path, n, "malformed pronunciation for \"" + word + "\"", skip_bad, warnings);
      continue;
    }
    auto& p = words[word];
    if (p.source.empty()) {
      p.source = split_tokens(word, true);
      p.line = n;
    }
    if (std::find(p.answers.begin(), p.answers.end(), phones) == p.answers.end()) p.answers.push_back(phones);
  }
  std::vector<Pair> out;
  for (auto& [w, p] : words) {
    p.target = p.answers[0];
    out.push_back(std::move(p));
  }
  return out;
}

int cmudict_split(const std::vector<std::string>& word_chars) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& c : word_chars)
    for (unsigned char b : c) {
      h ^= b;
      h *= 1099511628211ull;
    }
  const uint64_t r = h % 100;
  return r < 90 ? 0 : (r < 95 ? 1 : 2);
}

std::vector<Pair> reverse_task(int64_t n, int64_t min_len, int64_t max_len, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> length(min_len, max_len), symbol(0, vocab - 1);
  std::vector<Pair> out;
  for (int64_t i = 0; i < n; ++i) {
    Pair p;
    const int64_t len = length(rng);
    for (int64_t j = 0; j < len; ++j) p.source.push_back(std::to_string(symbol(rng)));
    p.target.assign(p.source.rbegin(), p.source.rend());
    p.answers = {p.target};
    out.push_back(std::move(p));
  }
  return out;
}

int64_t truncate_sources(std::vector<Pair>& pairs, int64_t max_tokens, const std::string& path,
                         std::vector<std::string>* warnings) {
  TORCH_CHECK(max_tokens >= 0, "truncate_sources: max_tokens must be >= 0 (0 = no limit), got ", max_tokens);
  if (max_tokens == 0) return 0;
  int64_t cut = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto& src = pairs[i].source;
    if (static_cast<int64_t>(src.size()) <= max_tokens) continue;
    ++cut;
    if (warnings) {
      const std::string where = pairs[i].line ? path + ":" + std::to_string(pairs[i].line)
                                              : (path.empty() ? "" : path + ": ") + "pair " + std::to_string(i + 1);
      warnings->push_back(where + ": source of " + std::to_string(src.size()) + " tokens truncated to the limit of " +
                          std::to_string(max_tokens));
    }
    src.resize(static_cast<size_t>(max_tokens));
  }
  return cut;
}

Batch make_batch(const std::vector<Pair>& pairs, const std::vector<size_t>& index, const Vocab& sv, const Vocab& tv) {
  const int64_t B = static_cast<int64_t>(index.size());
  int64_t S = 1, T = 1;
  for (size_t i : index) {
    S = std::max(S, static_cast<int64_t>(pairs[i].source.size()) + 1);
    T = std::max(T, static_cast<int64_t>(pairs[i].target.size()) + 1);
  }
  Batch b;
  b.index = index;
  b.src = torch::full({B, S}, Vocab::kPad, torch::kLong);
  b.src_len = torch::zeros({B}, torch::kLong);
  b.tgt_in = torch::full({B, T}, Vocab::kPad, torch::kLong);
  b.tgt_out = torch::full({B, T}, Vocab::kPad, torch::kLong);
  auto src = b.src.accessor<int64_t, 2>();
  auto tin = b.tgt_in.accessor<int64_t, 2>();
  auto tout = b.tgt_out.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const Pair& p = pairs[index[r]];
    const int64_t s = static_cast<int64_t>(p.source.size());
    for (int64_t j = 0; j < s; ++j) src[r][j] = sv.id(p.source[j]);
    src[r][s] = Vocab::kEos;
    b.src_len[r] = s + 1;
    tin[r][0] = Vocab::kBos;
    const int64_t t = static_cast<int64_t>(p.target.size());
    for (int64_t j = 0; j < t; ++j) {
      tout[r][j] = tv.id(p.target[j]);
      tin[r][j + 1] = tout[r][j];
    }
    tout[r][t] = Vocab::kEos;
  }
  return b;
}

std::vector<std::vector<size_t>> bucketed_batches(const std::vector<Pair>& pairs, int64_t batch_size, uint64_t seed,
                                                  int64_t epoch) {
  std::vector<size_t> order(pairs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed * 1000003ull + static_cast<uint64_t>(epoch));
  std::shuffle(order.begin(), order.end(), rng);
  const size_t B = static_cast<size_t>(std::max<int64_t>(1, batch_size)), pool = B * 100;
  std::vector<std::vector<size_t>> batches;
  for (size_t start = 0; start < order.size(); start += pool) {
    const size_t end = std::min(order.size(), start + pool);
    std::stable_sort(order.begin() + static_cast<long>(start), order.begin() + static_cast<long>(end),
                     [&](size_t a, size_t b) {
                       return std::make_pair(pairs[a].source.size(), pairs[a].target.size()) <
                              std::make_pair(pairs[b].source.size(), pairs[b].target.size());
                     });
    for (size_t s = start; s < end; s += B)
      batches.emplace_back(order.begin() + static_cast<long>(s), order.begin() + static_cast<long>(std::min(end, s + B)));
  }
  std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

}  // namespace fancy::seq2seq
