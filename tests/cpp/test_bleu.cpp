// fancy::bleu against sacreBLEU's own test vectors (../shared/testdata/bleu) and the
// tokenizer rules. Torch-free.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fancy/bleu.h"

namespace bl = fancy::bleu;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kVectors = fs::path(FANCY_TESTDATA_DIR) / "bleu" / "vectors.json";

#define REQUIRE_VECTORS()                                                                                   \
  if (!fs::exists(kVectors))                                                                                 \
  GTEST_SKIP() << "BLEU test vectors not found at " << kVectors                                              \
               << " (they live in ../shared/testdata next to the repository; CI has them)"

json vectors() {
  std::ifstream f(kVectors);
  return json::parse(f);
}

std::vector<std::vector<std::string>> streams(const json& refs) {
  std::vector<std::vector<std::string>> out;
  for (const auto& s : refs) out.push_back(s.get<std::vector<std::string>>());
  return out;
}

}  // namespace

TEST(BleuVectors, CorpusBleuMatchesSacrebleu) {
  REQUIRE_VECTORS();
  int checked = 0;
  const json v = vectors();  // (not a temporary: the loop holds references into it)
  for (const auto& c : v["corpus"]) {
    bl::BleuOptions o;
    const auto& st = c["settings"];
    if (st.contains("tokenize")) o.tokenize = st["tokenize"];
    if (st.contains("smooth_method")) o.smooth_method = st["smooth_method"];
    if (st.contains("smooth_value")) o.smooth_value = st["smooth_value"].get<double>();
    const auto s = bl::corpus_bleu(c["hypotheses"].get<std::vector<std::string>>(), streams(c["references"]), o);
    EXPECT_NEAR(s.score, c["bleu"].get<double>(), 1e-6) << c.dump();  // vectors carry 6-8 decimals
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(BleuVectors, RawCorpusBleuWithFloorSmoothing) {
  REQUIRE_VECTORS();
  const json v = vectors();
  for (const auto& c : v["raw_corpus_floor"]["cases"]) {
    bl::BleuOptions o;
    o.tokenize = "none";
    o.smooth_method = "floor";
    o.smooth_value = c["floor"].get<double>();
    o.effective_order = true;
    const auto s = bl::corpus_bleu(c["hypotheses"].get<std::vector<std::string>>(), streams(c["references"]), o);
    EXPECT_NEAR(s.score / 100.0, c["bleu"].get<double>(), 1e-10) << c.dump();
  }
}

TEST(BleuVectors, SegmentStatistics) {
  REQUIRE_VECTORS();
  const json v = vectors();
  for (const auto& c : v["statistics"]) {
    bl::BleuOptions o;
    o.tokenize = c["tokenize"];
    const auto s = bl::corpus_bleu({c["hypothesis"].get<std::string>()}, {{c["reference"].get<std::string>()}}, o);
    const auto matches = c["matches"].get<std::vector<double>>();
    const auto totals = c["totals"].get<std::vector<double>>();
    EXPECT_EQ(s.counts, matches);
    EXPECT_EQ(s.totals, totals);
  }
}

TEST(BleuVectors, FromStatistics) {
  REQUIRE_VECTORS();
  const json v = vectors();
  for (const auto& c : v["from_statistics"]["cases"]) {
    std::optional<double> value;
    if (c.contains("floor")) value = c["floor"].get<double>();
    const auto s = bl::compute_bleu(c["matches"].get<std::vector<double>>(), c["totals"].get<std::vector<double>>(),
                                    c["sys_len"].get<long>(), c["ref_len"].get<long>(), c["smooth"], value);
    EXPECT_NEAR(s.score / 100.0, c["bleu"].get<double>(), 1e-10) << c.dump();
  }
}

TEST(BleuTokenize, Rules13a) {
  EXPECT_EQ(bl::tokenize("The dog bit the man.", "13a"), "The dog bit the man .");
  EXPECT_EQ(bl::tokenize("It wasn't surprising.", "13a"), "It wasn't surprising .");
  EXPECT_EQ(bl::tokenize("3.14 and 1,000, but x.y", "13a"), "3.14 and 1,000 , but x . y");
  EXPECT_EQ(bl::tokenize("pages 10-20 and self-made", "13a"), "pages 10 - 20 and self-made");
  EXPECT_EQ(bl::tokenize("&quot;hi&quot; &amp;&lt;b&gt;", "13a"), "\" hi \" & < b >");
  EXPECT_EQ(bl::tokenize("a<skipped>b well-\nknown\nline", "13a"), "ab wellknown line");
  EXPECT_EQ(bl::tokenize("  (x)  [y]{z}  ", "13a"), "( x ) [ y ] { z }");
  EXPECT_EQ(bl::tokenize("café, naïve.", "13a"), "café , naïve .");
}

TEST(BleuTokenize, IntlSeparatesUnicodePunctuationAndSymbols) {
  EXPECT_EQ(bl::tokenize("«Bonjour», dit-il… 5€", "intl"), "« Bonjour » , dit - il … 5 €");
  EXPECT_EQ(bl::tokenize("3.14 x.y", "intl"), "3.14 x . y");
  EXPECT_THROW(bl::tokenize("\xff\xfe", "intl"), bl::Error);
  EXPECT_EQ(bl::tokenize("  keep   as is ", "none"), "  keep   as is ");
}

TEST(BleuSentence, EffectiveOrderByDefaultAndSignature) {
  // One token, reference of two: only unigram precision counts with effective order.
  EXPECT_NEAR(bl::sentence_bleu("test", {"a test"}).score, 100.0 * std::exp(1.0 - 2.0), 1e-12);
  EXPECT_NEAR(bl::sentence_bleu("a test", {"a test"}).score, 100.0, 1e-12);
  bl::BleuOptions o;
  EXPECT_EQ(bl::signature(o, 2), "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:fancy-0.1.0");
  o.smooth_method = "floor";
  o.effective_order = true;
  EXPECT_EQ(bl::signature(o, 1), "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:floor[0.10]|version:fancy-0.1.0");
  o.smooth_method = "add-k";
  o.smooth_value = 2;
  EXPECT_EQ(bl::signature(o, 1), "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:add-k[2.00]|version:fancy-0.1.0");
}

TEST(BleuSentence, ClosestReferenceLengthTiesGoToTheShorter) {
  // Hypothesis of 4 words, references of 3 and 5: both 1 away, the shorter (3) wins.
  const auto s = bl::sentence_bleu("a b c d", {"a b c d e", "a b c"});
  EXPECT_EQ(s.ref_len, 3);
  EXPECT_EQ(s.sys_len, 4);
}

TEST(BleuErrors, BadArgumentsAreNamed) {
  bl::BleuOptions o;
  o.tokenize = "zh";
  EXPECT_THROW(bl::corpus_bleu({"a"}, {{"a"}}, o), bl::Error);
  o = {};
  o.smooth_method = "laplace";
  try {
    bl::corpus_bleu({"a"}, {{"a"}}, o);
    ADD_FAILURE();
  } catch (const bl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("laplace"), std::string::npos);
  }
  try {
    bl::corpus_bleu({"a", "b"}, {{"a"}});
    ADD_FAILURE();
  } catch (const bl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("reference stream 1 has 1 lines but there are 2 hypotheses"), std::string::npos)
        << e.what();
  }
}
