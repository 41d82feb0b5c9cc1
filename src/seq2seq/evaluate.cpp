#include "fancy/seq2seq/evaluate.h"

#include <algorithm>
#include <numeric>

namespace fancy::seq2seq {

std::vector<std::vector<std::string>> translate(Seq2Seq& model, const std::vector<Pair>& pairs, const Vocab& sv,
                                                const Vocab& tv, const DecodeOptions& options, int64_t batch_size,
                                                DecodeTimings* timings) {
  std::vector<size_t> order;  // an empty source gives an empty output, undecoded
  for (size_t i = 0; i < pairs.size(); ++i)
    if (!pairs[i].source.empty()) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pairs[a].source.size() < pairs[b].source.size(); });
  std::vector<std::vector<std::string>> out(pairs.size());
  for (size_t s = 0; s < order.size(); s += static_cast<size_t>(batch_size)) {
    const std::vector<size_t> idx(order.begin() + static_cast<long>(s),
                                  order.begin() + static_cast<long>(std::min(order.size(), s + batch_size)));
    const auto b = make_batch(pairs, idx, sv, tv);
    const auto hyps = beam_search(model, b.src, b.src_len, options, timings);
    for (size_t i = 0; i < idx.size(); ++i) out[idx[i]] = tv.decode(hyps[i].empty() ? std::vector<int64_t>{} : hyps[i][0].tokens);
  }
  return out;
}

int64_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<int64_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

ErrorRates error_rates(const std::vector<std::vector<std::string>>& outputs, const std::vector<Pair>& pairs) {
  ErrorRates r;
  int64_t wrong = 0, edits = 0, length = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    int64_t best = -1, best_len = 0;
    for (const auto& ans : pairs[i].answers) {
      const int64_t e = edit_distance(outputs[i], ans);
      if (best < 0 || e < best || (e == best && static_cast<int64_t>(ans.size()) > best_len)) {
        best = e;
        best_len = static_cast<int64_t>(ans.size());
      }
    }
    wrong += best != 0;
    edits += best;
    length += best_len;
  }
  r.count = static_cast<int64_t>(pairs.size());
  r.wer = r.count ? static_cast<double>(wrong) / static_cast<double>(r.count) : 0;
  r.per = length ? static_cast<double>(edits) / static_cast<double>(length) : 0;
  return r;
}

}  // namespace fancy::seq2seq
