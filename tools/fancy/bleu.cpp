// `fancy bleu`: corpus BLEU as sacreBLEU's command line computes and prints it.
// Torch-free: it links only the text library.
#include <CLI/CLI.hpp>

#include <unicode/utf8.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fancy/bleu.h"

namespace bl = fancy::bleu;

namespace {

// One string per line ('\n'-separated; a final newline ends the last line, as Python
// reads files). Invalid UTF-8 is an error naming the file and line.
std::vector<std::string> read_lines(std::istream& in, const std::string& name) {
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    int32_t j = 0;
    const int32_t n = static_cast<int32_t>(l.size());
    while (j < n) {
      UChar32 c;
      U8_NEXT(l.data(), j, n, c);
      if (c < 0) throw bl::Error(name + ":" + std::to_string(i + 1) + ": not valid UTF-8");
    }
  }
  return lines;
}

std::vector<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw bl::Error(path + ": cannot read the file");
  return read_lines(f, path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "fancy bleu: corpus BLEU as sacreBLEU computes it (same tokenizers, smoothing and signature).\n"
      "Prints 'BLEU|<signature> = <score> <n-gram precisions> (BP, ratio, lengths)', or with -b the score alone.\n"
      "Hypotheses come from -i or, without it, from standard input; one line per segment."};
  std::vector<std::string> refs;
  std::string input, tokenize = "13a", smooth = "exp", format = "text";
  double smooth_value = 0;
  int width = 1;
  bool score_only = false, lowercase = false;
  app.add_option("refs", refs, "reference files, one per reference stream, each with one line per hypothesis")
      ->required();
  app.add_option("-i,--input", input, "hypotheses file (default: standard input)");
  app.add_option("--tokenize", tokenize, "tokenizer (sacreBLEU's -tok is accepted too)")
      ->check(CLI::IsMember({"13a", "none", "intl"}))
      ->capture_default_str();
  app.add_option("-s,--smooth-method", smooth, "smoothing: exp (NIST), floor, add-k or none")
      ->check(CLI::IsMember({"exp", "floor", "add-k", "none"}))
      ->capture_default_str();
  auto* value_opt =
      app.add_option("--smooth-value", smooth_value, "value for floor (default 0.1) and add-k (default 1)");
  app.add_option("-w,--width", width, "decimals of the printed score")->check(CLI::Range(0, 16))->capture_default_str();
  app.add_flag("-b,--score-only", score_only, "print the score alone");
  app.add_flag("--lowercase", lowercase, "lowercase hypotheses and references first (case:lc; -lc works too)");
  app.add_option("-f,--format", format, "text, or json as sacreBLEU 2 prints it")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  // sacreBLEU's multi-letter single-dash options, which CLI11 does not allow as names.
  std::vector<std::string> args(argv + 1, argv + argc);
  for (auto& a : args) {
    if (a == "-tok") a = "--tokenize";
    else if (a == "-lc") a = "--lowercase";
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    bl::BleuOptions o;
    o.tokenize = tokenize;
    o.smooth_method = smooth;
    if (value_opt->count()) o.smooth_value = smooth_value;
    o.lowercase = lowercase;
    std::vector<std::vector<std::string>> streams;
    for (const auto& r : refs) streams.push_back(read_file(r));
    const auto hyps = input.empty() ? read_lines(std::cin, "<stdin>") : read_file(input);
    for (size_t r = 0; r < refs.size(); ++r)
      if (streams[r].size() != hyps.size())
        throw bl::Error(refs[r] + " has " + std::to_string(streams[r].size()) + " lines but the hypotheses (" +
                        (input.empty() ? "<stdin>" : input) + ") have " + std::to_string(hyps.size()));
    const auto s = bl::corpus_bleu(hyps, streams, o);
    const std::string sig = bl::signature(o, refs.size());
    char score[64];
    std::snprintf(score, sizeof(score), "%.*f", width, s.score);
    if (score_only) {
      std::printf("%s\n", score);
    } else if (format == "json") {
      nlohmann::ordered_json j;
      j["name"] = "BLEU";
      j["score"] = std::stod(score);
      j["signature"] = sig;
      const std::string v = s.verbose(width);
      j["verbose_score"] = v.substr(v.find(' ') + 1);
      std::printf("%s\n", j.dump(1).c_str());
    } else {
      std::printf("BLEU|%s = %s\n", sig.c_str(), s.verbose(width).c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bleu: %s\n", e.what());
    return 1;
  }
  return 0;
}
