// sacreBLEU's tokenizers, reproduced rule by rule. Python's re.sub replaces
// non-overlapping matches from left to right; each rule below scans the same way.
// 13a and none work on UTF-8 bytes (their rules only look at ASCII characters, and a
// byte-wise scan makes the same replacements as Python's code-point scan); intl needs
// Unicode categories and decodes UTF-8, with ICU's character data.
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <string>

#include "fancy/bleu.h"
#include "text/words.h"

namespace fancy::bleu {
namespace {

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t at = 0;
  while ((at = s.find(from, at)) != std::string::npos) {
    s.replace(at, from.size(), to);
    at += to.size();
  }
}

// Python's str.split() + ' '.join: whitespace per str.isspace (ASCII and the Unicode
// spaces), given as UTF-8.
size_t space_length(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) return 1;
  if (c < 0x80) return 0;
  UChar32 cp;
  int32_t j = static_cast<int32_t>(i);
  U8_NEXT(s.data(), j, static_cast<int32_t>(s.size()), cp);
  if (cp < 0) return 0;
  const bool space = cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
                     cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
  return space ? static_cast<size_t>(j) - i : 0;
}

std::string join_words(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  bool pending_space = false;
  while (i < s.size()) {
    if (const size_t n = space_length(s, i)) {
      pending_space = !out.empty();
      i += n;
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += s[i++];
  }
  return out;
}

// Python's re.sub for a two-character pattern: scanning left to right, each pair (x, y)
// with match(x, y) is written as `layout` ('1' stands for x, '2' for y, anything else is
// itself), and the scan goes on after the pair, so matches never overlap.
template <class Str, class Match>
Str sub_pairs(const Str& s, Match match, std::string_view layout) {
  using Char = typename Str::value_type;
  Str out;
  out.reserve(s.size() * 2);
  for (size_t i = 0; i < s.size();) {
    if (i + 1 < s.size() && match(s[i], s[i + 1])) {
      for (char c : layout) out += c == '1' ? s[i] : c == '2' ? s[i + 1] : static_cast<Char>(c);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// 13a's first rule: ` \1 ` around every character of [\{-\~\[-\` -\&\(-\+\:-\@\/].
bool is_13a_symbol(unsigned char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

std::string tokenize_13a(std::string_view input) {
  std::string line(input);
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  std::string a;
  a.reserve(line.size() * 2);
  for (unsigned char c : line) {
    if (is_13a_symbol(c)) {
      a += ' ';
      a += static_cast<char>(c);
      a += ' ';
    } else {
      a += static_cast<char>(c);
    }
  }
  auto period_or_comma = [](char c) { return c == '.' || c == ','; };
  auto digit = [](char c) { return is_digit(static_cast<unsigned char>(c)); };
  // ([^0-9])([\.,]) -> \1 \2   (period and comma unless preceded by a digit)
  const auto b = sub_pairs(a, [&](char x, char y) { return !digit(x) && period_or_comma(y); }, "1 2 ");
  // ([\.,])([^0-9]) -> " \1 \2"   (unless followed by a digit)
  const auto c = sub_pairs(b, [&](char x, char y) { return period_or_comma(x) && !digit(y); }, " 1 2");
  // ([0-9])(-) -> \1 \2   (dash after a digit)
  const auto d = sub_pairs(c, [&](char x, char y) { return digit(x) && y == '-'; }, "1 2 ");
  return join_words(d);
}

// Unicode general categories as the `regex` module's \p{N}, \p{P}, \p{S} see them.
bool is_number(UChar32 c) {
  const auto t = u_charType(c);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}
bool is_punct(UChar32 c) {
  const auto t = u_charType(c);
  return t == U_CONNECTOR_PUNCTUATION || t == U_DASH_PUNCTUATION || t == U_START_PUNCTUATION ||
         t == U_END_PUNCTUATION || t == U_INITIAL_PUNCTUATION || t == U_FINAL_PUNCTUATION ||
         t == U_OTHER_PUNCTUATION;
}
bool is_symbol(UChar32 c) {
  const auto t = u_charType(c);
  return t == U_MATH_SYMBOL || t == U_CURRENCY_SYMBOL || t == U_MODIFIER_SYMBOL || t == U_OTHER_SYMBOL;
}

std::u32string decode(std::string_view s) {
  std::u32string out;
  int32_t i = 0;
  const int32_t n = static_cast<int32_t>(s.size());
  while (i < n) {
    UChar32 c;
    const int32_t at = i;
    U8_NEXT(s.data(), i, n, c);
    if (c < 0) throw Error("tokenize intl: invalid UTF-8 at byte " + std::to_string(at));
    out += static_cast<char32_t>(c);
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  char buf[4];
  int32_t len = 0;
  UBool error = false;  // cannot happen: c came from a valid decode
  U8_APPEND(buf, len, 4, c, error);
  (void)error;
  out.append(buf, static_cast<size_t>(len));
}

std::string tokenize_intl(std::string_view input) {
  const std::u32string s = decode(input);
  auto number = [](char32_t c) { return is_number(static_cast<UChar32>(c)); };
  auto punct = [](char32_t c) { return is_punct(static_cast<UChar32>(c)); };
  // (\P{N})(\p{P}) -> \1 \2
  const auto a = sub_pairs(s, [&](char32_t x, char32_t y) { return !number(x) && punct(y); }, "1 2 ");
  // (\p{P})(\P{N}) -> " \1 \2"
  const auto b = sub_pairs(a, [&](char32_t x, char32_t y) { return punct(x) && !number(y); }, " 1 2");
  // (\p{S}) -> " \1 "
  std::string out;
  for (char32_t c : b) {
    if (is_symbol(static_cast<UChar32>(c))) {
      out += ' ';
      append_utf8(out, c);
      out += ' ';
    } else {
      append_utf8(out, c);
    }
  }
  return join_words(out);
}

}  // namespace

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0, start = std::string_view::npos;
  while (i < s.size()) {
    if (const size_t n = space_length(s, i)) {
      if (start != std::string_view::npos) words.push_back(s.substr(start, i - start));
      start = std::string_view::npos;
      i += n;
    } else {
      if (start == std::string_view::npos) start = i;
      ++i;
    }
  }
  if (start != std::string_view::npos) words.push_back(s.substr(start));
  return words;
}

std::string tokenize(std::string_view line, const std::string& tokenizer) {
  if (tokenizer == "13a") return tokenize_13a(line);
  if (tokenizer == "none") return std::string(line);
  if (tokenizer == "intl") return tokenize_intl(line);
  throw Error("tokenize: '" + tokenizer + "' is not one of 13a, none, intl");
}

}  // namespace fancy::bleu
