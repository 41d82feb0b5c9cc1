#include "fancy/pose/heatmap.h"

#include <cmath>

namespace fancy::pose {

HeatmapTargets render_heatmaps(const torch::Tensor& keypoints, int64_t height, int64_t width, double sigma) {
  TORCH_CHECK((keypoints.dim() == 3 || keypoints.dim() == 4) && keypoints.size(-1) == 3,
              "render_heatmaps: keypoints must be (N, J, 3) or (N, P, J, 3), got ", keypoints.sizes());
  TORCH_CHECK(height >= 1 && width >= 1, "render_heatmaps: heatmap size ", height, "×", width, " must be positive");
  TORCH_CHECK(sigma > 0, "render_heatmaps: sigma (", sigma, ") must be positive");
  const auto k = (keypoints.dim() == 3 ? keypoints.unsqueeze(1) : keypoints).to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t N = k.size(0), P = k.size(1), J = k.size(2);
  auto maps = torch::zeros({N, J, height, width}, torch::kFloat);
  auto weights = torch::zeros({N, J}, torch::kFloat);
  const double* kp = k.data_ptr<double>();
  float* mp = maps.data_ptr<float>();
  float* wp = weights.data_ptr<float>();
  const double radius = 3 * sigma, inv = 1.0 / (2 * sigma * sigma);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t j = 0; j < J; ++j) {
        const double* q = kp + ((n * P + p) * J + j) * 3;
        if (!(q[2] > 0) || !std::isfinite(q[0]) || !std::isfinite(q[1])) continue;
        // Pixel centres within 3σ: c = i + 0.5 with |c − y| <= 3σ.
        const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(q[1] - radius - 0.5)));
        const int64_t y1 = std::min<int64_t>(height - 1, static_cast<int64_t>(std::floor(q[1] + radius - 0.5)));
        const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(q[0] - radius - 0.5)));
        const int64_t x1 = std::min<int64_t>(width - 1, static_cast<int64_t>(std::floor(q[0] + radius - 0.5)));
        if (y0 > y1 || x0 > x1) continue;  // the Gaussian misses the map: nothing to learn
        wp[n * J + j] = 1;
        float* m = mp + (n * J + j) * height * width;
        for (int64_t y = y0; y <= y1; ++y)
          for (int64_t x = x0; x <= x1; ++x) {
            const double dx = x + 0.5 - q[0], dy = y + 0.5 - q[1];
            const float v = static_cast<float>(std::exp(-(dx * dx + dy * dy) * inv));
            m[y * width + x] = std::max(m[y * width + x], v);
          }
      }
  return {maps.to(keypoints.device()), weights.to(keypoints.device())};
}

namespace {

// The Newton step −H⁻¹∇ of log(m) at the integer positions (x, y) of flat maps (M, H·W),
// with central differences; NaN where it is undefined (within 1 px of the border, or a
// log that is not strictly concave there).
std::pair<torch::Tensor, torch::Tensor> newton_offsets(const torch::Tensor& log_maps, int64_t H, int64_t W,
                                                       const torch::Tensor& x, const torch::Tensor& y) {
  auto at = [&](int64_t dy, int64_t dx) {
    return log_maps.gather(1, ((y + dy).clamp(0, H - 1) * W + (x + dx).clamp(0, W - 1)).unsqueeze(1)).squeeze(1);
  };
  const auto c = at(0, 0);
  const auto gx = 0.5 * (at(0, 1) - at(0, -1)), gy = 0.5 * (at(1, 0) - at(-1, 0));
  const auto hxx = at(0, 1) - 2 * c + at(0, -1), hyy = at(1, 0) - 2 * c + at(-1, 0);
  const auto hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1));
  const auto det = hxx * hyy - hxy * hxy;
  const auto ok = (x > 0) & (x < W - 1) & (y > 0) & (y < H - 1) & (hxx < 0) & (det > 0);
  const auto nan = torch::full_like(c, std::nan(""));
  // −H⁻¹g for H = [hxx hxy; hxy hyy].
  const auto ox = torch::where(ok, -(hyy * gx - hxy * gy) / det, nan);
  const auto oy = torch::where(ok, -(hxx * gy - hxy * gx) / det, nan);
  return {ox, oy};
}

}  // namespace

Decode parse_decode(const std::string& name, const char* what) {
  if (name == "quarter") return Decode::Quarter;
  if (name == "dark") return Decode::Dark;
  TORCH_CHECK(false, what, ": decoding must be 'quarter' or 'dark', got '", name, "'");
}

torch::Tensor decode_heatmaps(const torch::Tensor& heatmaps, Decode method, double sigma) {
  TORCH_CHECK(heatmaps.dim() >= 3, "decode_heatmaps: heatmaps must be (…, J, H, W), got ", heatmaps.sizes());
  const int64_t H = heatmaps.size(-2), W = heatmaps.size(-1);
  TORCH_CHECK(H >= 1 && W >= 1, "decode_heatmaps: empty heatmaps ", heatmaps.sizes());
  TORCH_CHECK(sigma > 0, "decode_heatmaps: sigma (", sigma, ") must be positive");
  const auto flat = heatmaps.reshape({-1, H * W}).to(torch::kFloat);
  const auto [peak, index] = flat.max(1);
  const auto y = torch::div(index, W, "floor"), x = index - y * W;
  // The neighbour on each side, clamped at the border (where the shift is then zero).
  auto at = [&](const torch::Tensor& yy, const torch::Tensor& xx) {
    return flat.gather(1, (yy.clamp(0, H - 1) * W + xx.clamp(0, W - 1)).unsqueeze(1)).squeeze(1);
  };
  const auto inside_x = (x > 0) & (x < W - 1), inside_y = (y > 0) & (y < H - 1);
  auto dx = torch::where(inside_x, 0.25 * torch::sign(at(y, x + 1) - at(y, x - 1)), torch::zeros_like(peak));
  auto dy = torch::where(inside_y, 0.25 * torch::sign(at(y + 1, x) - at(y - 1, x)), torch::zeros_like(peak));
  if (method == Decode::Dark) {
    // Smooth with the targets' Gaussian (a network's maps are not exactly Gaussian; the
    // blur makes them closer, as in DARK), keep the peak height, then the log.
    const int64_t r = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * sigma)));
    const auto t = torch::arange(-r, r + 1, torch::kFloat);
    const auto g1 = (-(t * t) / (2 * sigma * sigma)).exp();
    const auto kernel = (g1.unsqueeze(1) * g1.unsqueeze(0) / g1.sum().square()).view({1, 1, 2 * r + 1, 2 * r + 1});
    const auto m = flat.view({-1, 1, H, W});
    auto blurred = torch::conv2d(m, kernel, {}, 1, r).view({-1, H * W});
    const auto bmax = std::get<0>(blurred.max(1)).clamp_min(1e-10);
    blurred = blurred * (peak.clamp_min(1e-10) / bmax).unsqueeze(1);
    const auto [ox, oy] = newton_offsets(blurred.clamp_min(1e-10).log(), H, W, x, y);
    // Keep the step where it is defined and stays within a pixel of the arg-max.
    const auto use = ox.isfinite() & oy.isfinite() & (ox.abs() <= 1) & (oy.abs() <= 1);
    dx = torch::where(use, ox, dx);
    dy = torch::where(use, oy, dy);
  }
  auto out = torch::stack({x.to(torch::kFloat) + dx + 0.5, y.to(torch::kFloat) + dy + 0.5, peak}, 1);
  auto sizes = heatmaps.sizes().vec();
  sizes.pop_back();
  sizes.back() = 3;
  return out.view(sizes);
}

torch::Tensor heatmap_loss(const std::vector<torch::Tensor>& stacks, const HeatmapTargets& t) {
  TORCH_CHECK(!stacks.empty(), "heatmap_loss: no heatmaps");
  auto loss = torch::zeros({}, stacks[0].options());
  const auto w = t.weights.to(stacks[0].dtype()).unsqueeze(-1).unsqueeze(-1);
  for (size_t s = 0; s < stacks.size(); ++s) {
    TORCH_CHECK(stacks[s].sizes() == t.heatmaps.sizes(), "heatmap_loss: stack ", s, " has heatmaps ",
                stacks[s].sizes(), " but the targets are ", t.heatmaps.sizes());
    loss = loss + ((stacks[s] - t.heatmaps).square() * w).mean();
  }
  return loss;
}

const std::vector<std::pair<int64_t, int64_t>>& coco_flip_pairs() {
  static const std::vector<std::pair<int64_t, int64_t>> pairs{{1, 2},   {3, 4},   {5, 6},  {7, 8},
                                                              {9, 10},  {11, 12}, {13, 14}, {15, 16}};
  return pairs;
}

namespace {
torch::Tensor swap_joints(const torch::Tensor& t, int64_t dim, int64_t joints,
                          const std::vector<std::pair<int64_t, int64_t>>& pairs) {
  std::vector<int64_t> order(static_cast<size_t>(joints));
  for (int64_t j = 0; j < joints; ++j) order[j] = j;
  for (const auto& [a, b] : pairs) {
    TORCH_CHECK(a >= 0 && b >= 0 && a < joints && b < joints, "flip: joint pair (", a, ", ", b,
                ") is out of range for ", joints, " joints");
    std::swap(order[a], order[b]);
  }
  return t.index_select(dim, torch::tensor(order, torch::kLong).to(t.device()));
}
}  // namespace

torch::Tensor flip_heatmaps(const torch::Tensor& heatmaps, const std::vector<std::pair<int64_t, int64_t>>& pairs) {
  TORCH_CHECK(heatmaps.dim() >= 3, "flip_heatmaps: heatmaps must be (…, J, H, W), got ", heatmaps.sizes());
  const int64_t jd = heatmaps.dim() - 3;
  return swap_joints(heatmaps.flip({-1}), jd, heatmaps.size(jd), pairs);
}

torch::Tensor flip_keypoints(const torch::Tensor& keypoints, double width,
                             const std::vector<std::pair<int64_t, int64_t>>& pairs) {
  TORCH_CHECK(keypoints.dim() >= 2 && keypoints.size(-1) >= 2, "flip_keypoints: keypoints must be (…, J, 3), got ",
              keypoints.sizes());
  auto k = keypoints.clone();
  k.select(-1, 0).neg_().add_(width);
  return swap_joints(k, keypoints.dim() - 2, keypoints.size(-2), pairs);
}

Affine crop_affine(double cx, double cy, double box, double degrees, int64_t out_size) {
  TORCH_CHECK(box > 0 && std::isfinite(box), "crop_affine: box size (", box, ") must be positive");
  TORCH_CHECK(out_size >= 1, "crop_affine: out_size (", out_size, ") must be positive");
  // Rotate about the box centre, scale the box onto the crop, centre it there. A
  // counter-clockwise rotation of the content in image coordinates (y down) is R(−θ).
  const double s = out_size / box, t = degrees * M_PI / 180.0, c = std::cos(t) * s, n = std::sin(t) * s;
  const double half = out_size / 2.0;
  return {c, n, half - c * cx - n * cy, -n, c, half + n * cx - c * cy};
}

Affine invert(const Affine& m) {
  const double det = m[0] * m[4] - m[1] * m[3];
  TORCH_CHECK(std::abs(det) > 0 && std::isfinite(det), "invert: the affine map is singular (det ", det, ")");
  const double a = m[4] / det, b = -m[1] / det, d = -m[3] / det, e = m[0] / det;
  return {a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])};
}

Affine scale_affine(const Affine& m, double s) { return {m[0] * s, m[1] * s, m[2] * s, m[3] * s, m[4] * s, m[5] * s}; }

torch::Tensor transform_points(const torch::Tensor& points, const Affine& m) {
  TORCH_CHECK(points.dim() >= 1 && points.size(-1) >= 2, "transform_points: points must be (…, 2+), got ",
              points.sizes());
  const auto p = points.to(torch::kDouble);
  const auto x = p.select(-1, 0), y = p.select(-1, 1);
  auto out = p.clone();
  out.select(-1, 0).copy_(m[0] * x + m[1] * y + m[2]);
  out.select(-1, 1).copy_(m[3] * x + m[4] * y + m[5]);
  return out.to(points.dtype());
}

}  // namespace fancy::pose
