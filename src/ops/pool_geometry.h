#pragma once
// Shape rules and argument checks shared by every backend of every pooling op.
// A pooling problem is normalised to 5-D (N, C, D, H, W): 1-D and 2-D ops add
// singleton D/H dims and unbatched inputs get N = 1, so one kernel serves all ranks.
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Optional.h>

#include <array>
#include <string>
#include <vector>

namespace fancy {
namespace ops {

enum class Reduce { Max, Min, Avg, Lp };

// One spatial dim of a pooling window. Adaptive windows ignore k, s, p, d.
struct WindowDim {
  int64_t in = 1, out = 1, k = 1, s = 1, p = 0, d = 1;
};

struct PoolGeometry {
  int64_t N = 1, C = 1;
  std::array<WindowDim, 3> dim;  // D, H, W
  bool adaptive = false;
  bool channels_last = false;    // C innermost (NDHWC order) in memory
  int64_t plane_in() const { return dim[0].in * dim[1].in * dim[2].in; }
  int64_t plane_out() const { return dim[0].out * dim[1].out * dim[2].out; }
};

struct PoolParams {
  PoolGeometry g;
  Reduce op = Reduce::Max;
  double norm_type = 2.0;         // Lp only; +inf allowed
  bool count_include_pad = true;  // Avg (and Lp, which is K·avg)
  int64_t divisor_override = 0;   // Avg; 0 = none
};

// PyTorch's pooling_output_shape: floor or ceil of (in + 2p − d(k−1) − 1)/s + 1, and
// with ceil_mode the last window must start inside the input or the left padding.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode);

// Checks rank and dtype of `input` for an `nd`-dimensional op called `op`.
void check_input(const char* op, const at::Tensor& input, int64_t nd, bool allow_bfloat16 = true);

// Validates the window arguments and builds the geometry of input (rank nd+1 or nd+2).
// `padding_rule` is the largest padding allowed for a kernel (PyTorch differs per op).
enum class PaddingRule { HalfKernel, HalfEffectiveKernel };
PoolGeometry window_geometry(const char* op, const at::Tensor& input, int64_t nd,
                             at::IntArrayRef kernel_size, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                             PaddingRule padding_rule);

PoolGeometry adaptive_geometry(const char* op, const at::Tensor& input, int64_t nd,
                               at::IntArrayRef output_size);

// Global pooling of x (N, C, *spatial, any number of spatial dims): one adaptive window
// over a single row of L = the spatial dims' product, which x's memory already is when
// it is contiguous ((N, C, L) planes) or channels-last (L positions of C channels).
// Returns x itself then, else a copy in the layout x's strides suggest (as as_5d makes);
// sets g, g.channels_last included.
at::Tensor global_rows(const char* op, const at::Tensor& x, PoolGeometry& g);

// The rank rule of global pooling op `op`: x is (N, C, *spatial), at least one spatial dim.
void check_global_rank(const char* op, const at::Tensor& x);

// Global pooling's output shape: (N, C), or with keepdim (N, C, 1, ...) of x's rank.
std::vector<int64_t> global_output_shape(const at::Tensor& x, bool keepdim);

// Views `t` (rank nd+1 or nd+2) as 5-D (N, C, D, H, W) without copying when it is
// contiguous or channels-last; otherwise makes it so. Sets g.channels_last.
at::Tensor as_5d(const at::Tensor& t, int64_t nd, PoolGeometry& g);

// A new 5-D output for geometry g in the layout of the input, and its view back to the
// caller's rank (same batch/unbatched shape as `like`).
at::Tensor new_output_5d(const PoolGeometry& g, const at::TensorOptions& options);
at::Tensor output_view(const at::Tensor& out5, const at::Tensor& like, int64_t nd);

// "[a, b, c]" for messages.
std::string shape_str(at::IntArrayRef v);

}  // namespace ops
}  // namespace fancy
