// BLEU as sacreBLEU computes it: corpus statistics summed then combined, the 13a,
// none and intl tokenizers, exp / floor / add-k / none smoothing, several references,
// effective order, and sacreBLEU's signature string. Torch-free.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fancy::bleu {

struct Error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct BleuOptions {
  std::string tokenize = "13a";      // 13a | none | intl
  std::string smooth_method = "exp";  // exp | floor | add-k | none
  std::optional<double> smooth_value;  // floor: 0.1, add-k: 1 by default
  bool lowercase = false;
  bool effective_order = false;  // sentence_bleu turns it on, as sacreBLEU does
  int max_ngram_order = 4;
};

struct BleuScore {
  double score = 0;                 // 0..100
  std::vector<double> counts;       // matched n-grams per order (add-k adds its value)
  std::vector<double> totals;       // hypothesis n-grams per order
  std::vector<double> precisions;   // 0..100
  double bp = 0;                    // brevity penalty
  long sys_len = 0, ref_len = 0;
  double ratio() const { return ref_len ? static_cast<double>(sys_len) / static_cast<double>(ref_len) : 0.0; }
  // "48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
  std::string verbose(int width = 2) const;
};

// One line through a tokenizer (sacreBLEU's tokenizer_13a, tokenizer_none,
// tokenizer_intl). Throws Error for an unknown name or, for intl, invalid UTF-8.
std::string tokenize(std::string_view line, const std::string& tokenizer);

// references: one stream per reference set, each with one line per hypothesis.
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references, const BleuOptions& options = {});

// Sentence BLEU; sacreBLEU's sentence_bleu uses effective order by default, so the
// default here is the same.
BleuOptions sentence_defaults();
BleuScore sentence_bleu(const std::string& hypothesis, const std::vector<std::string>& references,
                        const BleuOptions& options = sentence_defaults());

// BLEU from sufficient statistics (sacreBLEU's BLEU.compute_bleu).
BleuScore compute_bleu(std::vector<double> correct, std::vector<double> total, long sys_len, long ref_len,
                       const std::string& smooth_method = "none", std::optional<double> smooth_value = {},
                       bool effective_order = false, int max_ngram_order = 4);

// "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:fancy-0.1.0"
std::string signature(const BleuOptions& options, size_t num_refs);

}  // namespace fancy::bleu
