#include "ops/group_spec.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>

namespace fancy {
namespace ops {
namespace {

std::string shape_str(c10::IntArrayRef shape) {
  std::ostringstream s;
  s << shape;
  return s.str();
}

// "4x4" or "0,2,3" → numbers; anything else is an error naming the spec.
std::vector<int64_t> parse_list(const char* op, const std::string& spec, const std::string& list, char sep) {
  std::vector<int64_t> v;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(sep, start), list.size());
    const std::string item = list.substr(start, end - start);
    size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TORCH_CHECK(!item.empty() && used == item.size(), "fancy::", op, ": groups '", spec, "': '", item,
                "' is not an integer (expected e.g. block:4x4 or dims:1,2)");
    v.push_back(n);
    start = end + 1;
  }
  return v;
}

}  // namespace

std::vector<int64_t> group_block(const char* op, c10::IntArrayRef shape, const std::string& groups, bool ragged) {
  const int64_t n = static_cast<int64_t>(shape.size());
  auto need_rank = [&](bool ok, const char* rule) {
    TORCH_CHECK(ok, "fancy::", op, ": groups '", groups, "' need ", rule, ", got a weight of shape ", shape_str(shape));
  };
  std::vector<int64_t> block(shape.begin(), shape.end());
  if (groups == "filters") {
    need_rank(n >= 2, "a weight of rank >= 2 (dim 0 = output filters)");
    block[0] = 1;
  } else if (groups == "channels") {
    need_rank(n >= 2, "a weight of rank >= 2 (dim 1 = input channels)");
    block[1] = 1;
  } else if (groups == "kernels") {
    need_rank(n >= 3, "a convolution weight (rank >= 3: out, in, kernel…)");
    block[0] = block[1] = 1;
  } else if (groups == "rows" || groups == "columns") {
    need_rank(n == 2, "a 2-D weight");
    block[groups == "rows" ? 0 : 1] = 1;
  } else if (groups == "elements") {
    std::fill(block.begin(), block.end(), 1);
  } else if (groups == "all") {
  } else if (groups.rfind("block:", 0) == 0) {
    block = parse_list(op, groups, groups.substr(6), 'x');
    TORCH_CHECK(static_cast<int64_t>(block.size()) == n, "fancy::", op, ": groups '", groups, "' give ", block.size(),
                " tile sizes for a weight of rank ", n, " (shape ", shape_str(shape), "); give one per dim");
    for (int64_t d = 0; d < n; ++d) {
      TORCH_CHECK(block[d] >= 1, "fancy::", op, ": groups '", groups, "': tile size ", block[d], " of dim ", d,
                  " must be >= 1");
      TORCH_CHECK(ragged || shape[d] % block[d] == 0, "fancy::", op, ": groups '", groups, "': tile size ", block[d],
                  " does not divide dim ", d, " of size ", shape[d], " (shape ", shape_str(shape),
                  "); allow smaller tiles at the edge with ragged=True");
      block[d] = std::min(block[d], std::max<int64_t>(shape[d], 1));
    }
  } else if (groups.rfind("dims:", 0) == 0) {
    const auto dims = parse_list(op, groups, groups.substr(5), ',');
    std::vector<int64_t> inside(block.size(), 0);
    for (int64_t d : dims) {
      TORCH_CHECK(d >= -n && d < n, "fancy::", op, ": groups '", groups, "': dim ", d,
                  " is out of range for a weight of rank ", n, " (shape ", shape_str(shape), ")");
      const int64_t w = d < 0 ? d + n : d;
      TORCH_CHECK(!inside[w], "fancy::", op, ": groups '", groups, "': dim ", d, " is given twice");
      inside[w] = 1;
    }
    for (int64_t d = 0; d < n; ++d)
      if (!inside[d]) block[d] = 1;
  } else {
    TORCH_CHECK(false, "fancy::", op, ": unknown groups '", groups,
                "' (expected filters, channels, kernels, rows, columns, elements, all, block:AxB… or dims:D,…)");
  }
  for (auto& b : block) b = std::max<int64_t>(b, 1);  // empty dims: tiles of 1
  return block;
}

std::vector<int64_t> group_grid(c10::IntArrayRef shape, c10::IntArrayRef block) {
  std::vector<int64_t> g(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) g[d] = (shape[d] + block[d] - 1) / block[d];
  return g;
}

}  // namespace ops
}  // namespace fancy
