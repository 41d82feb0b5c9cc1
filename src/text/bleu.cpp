// BLEU with sacreBLEU's arithmetic (sacrebleu/metrics/bleu.py): per-segment n-gram
// statistics clipped by the maximum count over the references, the closest reference
// length (ties to the shorter), statistics summed over the corpus, then compute_bleu.
#include "fancy/bleu.h"

#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "text/words.h"

namespace fancy::bleu {
namespace {

// n-grams as their words joined by single spaces (words never contain spaces).
using NgramCounts = std::unordered_map<std::string, int>;

NgramCounts count_ngrams(const std::vector<std::string_view>& words, int max_order) {
  NgramCounts counts;
  for (int n = 1; n <= max_order; ++n) {
    for (size_t i = 0; i + n <= words.size(); ++i) {
      std::string key(words[i]);
      for (int k = 1; k < n; ++k) {
        key += ' ';
        key += words[i + k];
      }
      ++counts[key];
    }
  }
  return counts;
}

int order_of(const std::string& ngram) {
  int spaces = 0;
  for (char c : ngram) spaces += c == ' ';
  return spaces + 1;
}

std::optional<double> default_smooth_value(const std::string& method) {
  if (method == "floor") return 0.1;
  if (method == "add-k") return 1.0;
  if (method == "exp" || method == "none") return std::nullopt;
  throw Error("bleu: smooth_method '" + method + "' is not one of exp, floor, add-k, none");
}

std::string lowercase(const std::string& s) {
  std::string out;
  icu::UnicodeString::fromUTF8(s).toLower(icu::Locale::getRoot()).toUTF8String(out);
  return out;
}

// sacreBLEU's _preprocess_segment: lowercase (optional), rstrip, tokenize.
std::string preprocess(const std::string& line, const BleuOptions& o) {
  std::string s = o.lowercase ? lowercase(line) : line;
  const auto words = split_words(s);  // rstrip: drop trailing whitespace only
  if (words.empty()) s.clear();
  else s.resize(static_cast<size_t>(words.back().data() + words.back().size() - s.data()));
  return tokenize(s, o.tokenize);
}

long closest_ref_len(long hyp_len, const std::vector<long>& ref_lens) {
  long closest_diff = -1, closest_len = -1;
  for (long ref_len : ref_lens) {
    const long diff = std::labs(hyp_len - ref_len);
    if (closest_diff == -1 || diff < closest_diff) {
      closest_diff = diff;
      closest_len = ref_len;
    } else if (diff == closest_diff && ref_len < closest_len) {
      closest_len = ref_len;
    }
  }
  return closest_len;
}

// Adds one segment's statistics: [hyp_len, ref_len, correct..., total...].
void add_segment(const std::string& hypothesis, const std::vector<const std::string*>& refs, const BleuOptions& o,
                 std::vector<double>& stats) {
  const int N = o.max_ngram_order;
  NgramCounts ref_max;
  std::vector<long> ref_lens;
  for (const std::string* ref : refs) {
    const std::string tok = preprocess(*ref, o);
    const auto words = split_words(tok);
    ref_lens.push_back(static_cast<long>(words.size()));
    for (const auto& [ngram, count] : count_ngrams(words, N)) {
      int& best = ref_max[ngram];
      best = std::max(best, count);
    }
  }
  const std::string tok = preprocess(hypothesis, o);
  const auto words = split_words(tok);
  const long hyp_len = static_cast<long>(words.size());
  stats[0] += static_cast<double>(hyp_len);
  stats[1] += static_cast<double>(closest_ref_len(hyp_len, ref_lens));
  for (const auto& [ngram, count] : count_ngrams(words, N)) {
    const int n = order_of(ngram) - 1;
    stats[2 + N + n] += count;
    const auto it = ref_max.find(ngram);
    if (it != ref_max.end()) stats[2 + n] += std::min(count, it->second);
  }
}

BleuScore from_stats(const std::vector<double>& stats, const BleuOptions& o) {
  const int N = o.max_ngram_order;
  return compute_bleu(std::vector<double>(stats.begin() + 2, stats.begin() + 2 + N),
                      std::vector<double>(stats.begin() + 2 + N, stats.end()), static_cast<long>(stats[0]),
                      static_cast<long>(stats[1]), o.smooth_method, o.smooth_value, o.effective_order, N);
}

void check(const BleuOptions& o) {
  default_smooth_value(o.smooth_method);
  if (o.max_ngram_order < 1) throw Error("bleu: max_ngram_order must be at least 1");
  if (o.tokenize != "13a" && o.tokenize != "none" && o.tokenize != "intl")
    throw Error("bleu: tokenize '" + o.tokenize + "' is not one of 13a, none, intl");
}

}  // namespace

BleuScore compute_bleu(std::vector<double> correct, std::vector<double> total, long sys_len, long ref_len,
                       const std::string& smooth_method, std::optional<double> smooth_value, bool effective_order,
                       int max_ngram_order) {
  const auto def = default_smooth_value(smooth_method);
  const double value = smooth_value ? *smooth_value : def.value_or(0.0);
  BleuScore s;
  s.sys_len = sys_len;
  s.ref_len = ref_len;
  s.bp = sys_len < ref_len ? (sys_len > 0 ? std::exp(1.0 - static_cast<double>(ref_len) / static_cast<double>(sys_len))
                                          : 0.0)
                           : 1.0;
  s.precisions.assign(static_cast<size_t>(max_ngram_order), 0.0);
  bool any = false;
  for (double c : correct) any |= c != 0;
  if (!any) {  // no match at all gives 0 (sacreBLEU issue 141)
    s.counts = correct;
    s.totals = total;
    return s;
  }
  double smooth_mteval = 1.0;
  int eff_order = max_ngram_order;
  for (int n = 1; n <= max_ngram_order; ++n) {
    if (smooth_method == "add-k" && n > 1) {
      correct[n - 1] += value;
      total[n - 1] += value;
    }
    if (total[n - 1] == 0) break;
    if (effective_order) eff_order = n;
    if (correct[n - 1] == 0) {
      if (smooth_method == "exp") {
        smooth_mteval *= 2;
        s.precisions[n - 1] = 100. / (smooth_mteval * total[n - 1]);
      } else if (smooth_method == "floor") {
        s.precisions[n - 1] = 100. * value / total[n - 1];
      }
    } else {
      s.precisions[n - 1] = 100. * correct[n - 1] / total[n - 1];
    }
  }
  // sum(my_log(p) for p in precisions[:eff_order]) / eff_order, my_log(0) = -9999999999
  double log_sum = 0;
  for (int n = 0; n < eff_order; ++n)
    log_sum += s.precisions[n] == 0 ? -9999999999.0 : std::log(s.precisions[n]);
  s.score = s.bp * std::exp(log_sum / eff_order);
  s.counts = std::move(correct);
  s.totals = std::move(total);
  return s;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references, const BleuOptions& o) {
  check(o);
  if (references.empty()) throw Error("bleu: give at least one reference stream");
  for (size_t r = 0; r < references.size(); ++r)
    if (references[r].size() != hypotheses.size())
      throw Error("bleu: reference stream " + std::to_string(r + 1) + " has " + std::to_string(references[r].size()) +
                  " lines but there are " + std::to_string(hypotheses.size()) + " hypotheses");
  std::vector<double> stats(2 + 2 * static_cast<size_t>(o.max_ngram_order), 0.0);
  std::vector<const std::string*> refs(references.size());
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    for (size_t r = 0; r < references.size(); ++r) refs[r] = &references[r][i];
    add_segment(hypotheses[i], refs, o, stats);
  }
  return from_stats(stats, o);
}

BleuOptions sentence_defaults() {
  BleuOptions o;
  o.effective_order = true;
  return o;
}

BleuScore sentence_bleu(const std::string& hypothesis, const std::vector<std::string>& references,
                        const BleuOptions& o) {
  check(o);
  if (references.empty()) throw Error("bleu: give at least one reference");
  std::vector<double> stats(2 + 2 * static_cast<size_t>(o.max_ngram_order), 0.0);
  std::vector<const std::string*> refs;
  for (const auto& r : references) refs.push_back(&r);
  add_segment(hypothesis, refs, o, stats);
  return from_stats(stats, o);
}

std::string signature(const BleuOptions& o, size_t num_refs) {
  std::string smooth = o.smooth_method;
  if (const auto def = default_smooth_value(o.smooth_method)) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "[%.2f]", o.smooth_value.value_or(*def));
    smooth += buf;
  }
  return "nrefs:" + std::to_string(num_refs) + "|case:" + (o.lowercase ? "lc" : "mixed") +
         "|eff:" + (o.effective_order ? "yes" : "no") + "|tok:" + o.tokenize + "|smooth:" + smooth +
         "|version:fancy-0.1.0";
}

std::string BleuScore::verbose(int width) const {
  std::string prec;
  char buf[64];
  for (size_t i = 0; i < precisions.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%s%.1f", i ? "/" : "", precisions[i]);
    prec += buf;
  }
  char out[256];
  std::snprintf(out, sizeof(out), "%.*f %s (BP = %.3f ratio = %.3f hyp_len = %ld ref_len = %ld)", width, score,
                prec.c_str(), bp, ratio(), sys_len, ref_len);
  return out;
}

}  // namespace fancy::bleu
