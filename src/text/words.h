// Splitting on whitespace exactly as Python's str.split() does (internal).
#pragma once

#include <string_view>
#include <vector>

namespace fancy::bleu {

std::vector<std::string_view> split_words(std::string_view s);

}  // namespace fancy::bleu
