#pragma once
// Groups of a weight tensor for structured regularization (group lasso and friends).
// Every group spec is reduced to one tile shape (the "block"): each group is one tile
// of the weight, so one kernel serves filters, channels, kernels, rows, columns, blocks
// and user-given dims. Shared by every backend of the group ops (src/ops/group.cpp).
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fancy {
namespace ops {

// The tile of `shape` that one group covers, for a spec:
//   filters   dim 0 indexes the groups: tile (1, S1, S2, …)          (rank ≥ 2)
//   channels  dim 1 indexes the groups: tile (S0, 1, S2, …)          (rank ≥ 2)
//   kernels   each spatial slice W[o, i]: tile (1, 1, S2, …)         (rank ≥ 3)
//   rows      each row of a 2-D weight: tile (1, S1)                 (rank 2)
//   columns   each column of a 2-D weight: tile (S0, 1)              (rank 2)
//   elements  each element its own group (group lasso is then L1)
//   all       the whole tensor one group (group lasso is then L2)
//   block:AxB…  tiles of that shape (one size per dim; a size that does not divide the
//             dim is an error unless `ragged`, which allows smaller tiles at the end)
//   dims:D,…  a group spans these dims (all of them) and one index of every other dim
// Errors name `op`, the spec, the shape and the rule.
std::vector<int64_t> group_block(const char* op, c10::IntArrayRef shape, const std::string& groups, bool ragged);

// The grid of groups: ceil(size / block) per dim.
std::vector<int64_t> group_grid(c10::IntArrayRef shape, c10::IntArrayRef block);

}  // namespace ops
}  // namespace fancy
