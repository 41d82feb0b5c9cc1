// COCO keypoint evaluation with pycocotools' exact arithmetic (cocoeval.py):
// computeOks, evaluateImg, accumulate and summarize, in that order. Every place
// where the order of floating-point operations shows in the last bit follows numpy.
#include "fancy/keypoints/eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <exception>
#include <filesystem>
#include <future>
#include <thread>
#include <unordered_map>

#include "keypoints/loader.h"
#include "keypoints/numpy_math.h"

namespace fancy::keypoints {
namespace {

constexpr double kEps = 2.220446049250313e-16;  // np.spacing(1)
constexpr size_t kAreas = 3;                    // all, medium, large
constexpr double kAreaRanges[kAreas][2] = {{0.0, 1e10}, {1024.0, 9216.0}, {9216.0, 1e10}};

std::vector<double> literals_over_ten(std::initializer_list<double> literals) {
  std::vector<double> s;
  for (double v : literals) s.push_back(v / 10.0);
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs body(i, worker) for i in [0, n) on up to `threads` threads, in contiguous
// chunks. Each i writes only its own slots, so results do not depend on the thread
// count; `worker` (0 .. threads-1) selects per-thread scratch.
template <class F>
void parallel_for(size_t n, int threads, F body) {
  const size_t t = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(threads), n));
  if (t == 1) {
    for (size_t i = 0; i < n; ++i) body(i, size_t{0});
    return;
  }
  std::vector<std::thread> pool;
  for (size_t w = 1; w < t; ++w) {
    pool.emplace_back([&, w] {
      for (size_t i = n * w / t; i < n * (w + 1) / t; ++i) body(i, w);
    });
  }
  for (size_t i = 0; i < n / t; ++i) body(i, size_t{0});
  for (auto& th : pool) th.join();
}

// Stable sort of a short index range by descending key (insertion sort: no
// allocation), falling back to std::stable_sort for long ranges.
template <class It, class Key>
void stable_sort_desc(It first, It last, Key key) {
  if (last - first > 64) {
    std::stable_sort(first, last, [&](auto a, auto b) { return key(a) > key(b); });
    return;
  }
  for (It i = first + (first != last); i < last; ++i) {
    auto v = *i;
    It j = i;
    for (; j > first && key(*(j - 1)) < key(v); --j) *j = *(j - 1);
    *j = v;
  }
}

// The evaluation is laid out in flat arrays, one "unit" per (category, image) pair in
// that order (k-major, as pycocotools' evalImgs): each unit's ground truths in file
// order, its detections in score order (the first maxDets[-1] are used), its OKS
// matrix, and per area range the flags accumulate reads. Detection "slots" are
// positions in the units' concatenated detection lists.
struct Csr {
  std::vector<size_t> begin;  // size units + 1
  std::vector<size_t> items;
  size_t size(size_t u) const { return begin[u + 1] - begin[u]; }
  const size_t* at(size_t u) const { return items.data() + begin[u]; }
};

class Evaluator {
 public:
  Evaluator(const GroundTruth& gt, const Detections& dt, const EvalOptions& options)
      : gt_(gt), dt_(dt), opt_(options) {}

  EvalResult run();

 private:
  void check_and_index();
  void group_units();
  void compute_oks(size_t u);
  double gt_area_for_range(const Annotation& g) const;
  double oks_area(const Annotation& g) const;
  void evaluate_unit(size_t u);
  void accumulate(const std::vector<char>& image_mask, std::vector<double>& precision,
                  std::vector<double>& recall, std::vector<double>* scores) const;
  double summarize(const std::vector<double>& precision, const std::vector<double>& recall, bool ap,
                   double iou, size_t area, int64_t k_only) const;
  std::array<double, 10> summary_numbers(const std::vector<double>& precision, const std::vector<double>& recall,
                                         int64_t k_only) const;
  void keypoint_breakdown(EvalResult& r) const;
  size_t used_dts(size_t u) const { return std::min(dts_.size(u), static_cast<size_t>(max_dets_.back())); }

  const GroundTruth& gt_;
  const Detections& dt_;
  const EvalOptions& opt_;
  std::vector<double> sigmas_, vars_;
  size_t K_ = 0;  // keypoints
  std::vector<int64_t> img_ids_, cat_ids_, max_dets_;
  std::vector<double> iou_thrs_, rec_thrs_;
  std::vector<double> dt_area_;
  std::vector<char> dt_dropped_;
  size_t units_ = 0;
  Csr gts_, dts_;                  // per unit: annotation indices, detection indices
  std::vector<size_t> oks_begin_;  // per unit: offset of its used_dts x gts OKS matrix
  std::vector<double> oks_;
  std::vector<uint16_t> matched_, ignored_;  // [area][slot], bit t
  std::vector<int64_t> npig_;                // [area][unit]: ground truths not ignored
  std::vector<long> match0_;                 // [slot]: GT matched at OKS .5, area all, or -1
  int threads_ = 1;
};

void Evaluator::check_and_index() {
  sigmas_ = opt_.sigmas.empty() ? coco_sigmas() : opt_.sigmas;
  K_ = sigmas_.size();
  for (double s : sigmas_)
    if (!(s > 0) || !std::isfinite(s)) throw Error("sigmas: every sigma must be a positive number, got " + std::to_string(s));
  for (double s : sigmas_) vars_.push_back((s * 2) * (s * 2));  // (sigmas * 2) ** 2

  // A category's keypoint names describe the plain "keypoints" field.
  const bool named = gt_.keypoint_keys == std::vector<std::string>{"keypoints"};
  for (const auto& c : gt_.categories) {
    if (named && !c.keypoint_names.empty() && c.keypoint_names.size() != K_ && !opt_.sigmas.empty())
      throw Error("sigmas: " + std::to_string(K_) + " values, but category " + std::to_string(c.id) + " ('" + c.name +
                  "') of " + gt_.source + " names " + std::to_string(c.keypoint_names.size()) +
                  " keypoints; give one sigma per keypoint");
  }
  for (size_t i = 0; i < gt_.annotations.size(); ++i) {
    const auto& a = gt_.annotations[i];
    if (a.keypoints.size() != 3 * K_)
      throw Error(gt_.source + ": annotations[" + std::to_string(i) + "] (id " + std::to_string(a.id) +
                  "): field 'keypoints' has " + std::to_string(a.keypoints.size()) + " values; expected " +
                  std::to_string(3 * K_) + " (x, y, v for each of the " + std::to_string(K_) +
                  " keypoints that the sigmas describe)");
    if (opt_.rules == Rules::pycocotools && a.num_keypoints < 0)
      throw Error(gt_.source + ": annotations[" + std::to_string(i) + "] (id " + std::to_string(a.id) +
                  "): field 'num_keypoints' is missing (pycocotools ignores a ground truth with num_keypoints == 0)");
    if (!a.has_area && !opt_.area_from_box && opt_.rules == Rules::pycocotools)
      throw Error(gt_.source + ": annotations[" + std::to_string(i) + "] (id " + std::to_string(a.id) +
                  "): field 'area' is missing (use the box area option, as xtcocotools' use_area=False, for "
                  "datasets without areas)");
  }

  // Images and categories: sorted, unique (np.unique), checked against the file.
  std::unordered_map<int64_t, size_t> known_img, known_cat;
  for (size_t i = 0; i < gt_.images.size(); ++i) known_img[gt_.images[i].id] = i;
  for (size_t i = 0; i < gt_.categories.size(); ++i) known_cat[gt_.categories[i].id] = i;
  auto chosen = [](const std::vector<int64_t>& wanted, const auto& known, const char* what, const std::string& src) {
    std::vector<int64_t> ids;
    if (wanted.empty()) {
      for (const auto& kv : known) ids.push_back(kv.first);
    } else {
      for (int64_t id : wanted) {
        if (!known.count(id)) throw Error(std::string(what) + " " + std::to_string(id) + " is not in " + src);
        ids.push_back(id);
      }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
  };
  img_ids_ = chosen(opt_.image_ids, known_img, "image id", gt_.source);
  cat_ids_ = chosen(opt_.category_ids, known_cat, "category id", gt_.source);
  max_dets_ = opt_.max_dets;
  if (max_dets_.empty()) throw Error("max_dets: give at least one value");
  for (int64_t m : max_dets_)
    if (m <= 0) throw Error("max_dets: " + std::to_string(m) + " must be positive");
  std::sort(max_dets_.begin(), max_dets_.end());

  // Detections: known image and category, K keypoints, finite values.
  const size_t n = dt_.size();
  if (n && static_cast<size_t>(dt_.keypoint_count) != K_)
    throw Error(dt_.source + ": results hold " + std::to_string(dt_.keypoint_count) + " keypoints each; expected " +
                std::to_string(K_) + " (" + std::to_string(3 * K_) + " values, x, y, v per keypoint)");
  if (dt_.keypoints.size() != n * 3 * K_ || dt_.image_id.size() != n || dt_.category_id.size() != n ||
      (dt_.has_bbox && dt_.bbox.size() != 4 * n))
    throw Error(dt_.source + ": results columns have inconsistent lengths");
  dt_area_.resize(n);
  dt_dropped_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    auto rec = [&] { return dt_.source + ": results[" + std::to_string(i) + "]: "; };  // only for messages
    if (!known_img.count(dt_.image_id[i]))
      throw Error(rec() + "image_id " + std::to_string(dt_.image_id[i]) + " is not an image of " + gt_.source);
    if (!known_cat.count(dt_.category_id[i]))
      throw Error(rec() + "category_id " + std::to_string(dt_.category_id[i]) + " is not a category of " + gt_.source);
    if (!std::isfinite(dt_.score[i])) throw Error(rec() + "score must be a finite number");
    const double* kp = &dt_.keypoints[i * 3 * K_];
    for (size_t j = 0; j < 3 * K_; ++j)
      if (!std::isfinite(kp[j]))
        throw Error(rec() + "keypoints[" + std::to_string(j) + "] is not a finite number (NaN coordinates are refused)");
    if (dt_.has_bbox) {
      dt_area_[i] = dt_.bbox[4 * i + 2] * dt_.bbox[4 * i + 3];  // loadRes: bb[2]*bb[3]
    } else {  // loadRes: the extent of all keypoints, zeros included
      double x0 = kp[0], x1 = kp[0], y0 = kp[1], y1 = kp[1];
      for (size_t j = 0; j < K_; ++j) {
        x0 = std::min(x0, kp[3 * j]);
        x1 = std::max(x1, kp[3 * j]);
        y0 = std::min(y0, kp[3 * j + 1]);
        y1 = std::max(y1, kp[3 * j + 1]);
      }
      dt_area_[i] = (x1 - x0) * (y1 - y0);
    }
    if (opt_.rules == Rules::xtcocotools) {  // results without a visible keypoint are dropped
      bool any = false;
      for (size_t j = 0; j < K_; ++j) any |= kp[3 * j + 2] > 0;
      dt_dropped_[i] = !any;
    }
  }

}

// Groups GTs and detections by (category, image), in file order as pycocotools'
// _prepare, then sorts each unit's detections by score (stable).
void Evaluator::group_units() {
  std::unordered_map<int64_t, size_t> img_pos, cat_pos;
  for (size_t i = 0; i < img_ids_.size(); ++i) img_pos[img_ids_[i]] = i;
  for (size_t k = 0; k < cat_ids_.size(); ++k) cat_pos[cat_ids_[k]] = k;
  const size_t I = img_ids_.size();
  units_ = cat_ids_.size() * I;
  auto unit_of = [&](int64_t img, int64_t cat) -> long {
    auto i = img_pos.find(img);
    auto k = cat_pos.find(cat);
    if (i == img_pos.end() || k == cat_pos.end()) return -1;
    return static_cast<long>(k->second * I + i->second);
  };
  auto fill = [&](Csr& csr, size_t n, auto unit_of_item) {
    std::vector<long> unit(n);
    csr.begin.assign(units_ + 1, 0);
    for (size_t x = 0; x < n; ++x) {
      unit[x] = unit_of_item(x);
      if (unit[x] >= 0) ++csr.begin[unit[x] + 1];
    }
    for (size_t u = 0; u < units_; ++u) csr.begin[u + 1] += csr.begin[u];
    csr.items.resize(csr.begin[units_]);
    std::vector<size_t> next(csr.begin.begin(), csr.begin.end() - 1);
    for (size_t x = 0; x < n; ++x)
      if (unit[x] >= 0) csr.items[next[unit[x]]++] = x;
  };
  fill(gts_, gt_.annotations.size(), [&](size_t g) {
    return unit_of(gt_.annotations[g].image_id, gt_.annotations[g].category_id);
  });
  fill(dts_, dt_.size(), [&](size_t d) { return dt_dropped_[d] ? -1L : unit_of(dt_.image_id[d], dt_.category_id[d]); });
  oks_begin_.assign(units_ + 1, 0);
  for (size_t u = 0; u < units_; ++u) {
    stable_sort_desc(dts_.items.begin() + dts_.begin[u], dts_.items.begin() + dts_.begin[u + 1],
                     [&](size_t d) { return dt_.score[d]; });
    oks_begin_[u + 1] = oks_begin_[u] + used_dts(u) * gts_.size(u);
  }
}

double Evaluator::oks_area(const Annotation& g) const {
  if (opt_.area_from_box) return g.bbox[3] * g.bbox[2] * 0.53;  // xtcocotools: bb[3] * bb[2] * 0.53
  return g.area;
}

double Evaluator::gt_area_for_range(const Annotation& g) const {
  if (opt_.rules == Rules::xtcocotools && (!g.has_area || opt_.area_from_box))
    return g.bbox[2] * g.bbox[3] * 0.53;
  if (!g.has_area) return g.bbox[2] * g.bbox[3] * 0.53;  // pycocotools mode with the box option
  return g.area;
}

// computeOks for one (image, category): the first maxDets[-1] detections in score
// order against every ground truth.
void Evaluator::compute_oks(size_t u) {
  const size_t D = used_dts(u), G = gts_.size(u);
  if (D == 0 || G == 0) return;
  const size_t* gts = gts_.at(u);
  const size_t* dts = dts_.at(u);
  double* oks = oks_.data() + oks_begin_[u];
  double terms[256];
  std::vector<double> heap_terms;
  double* buf = terms;
  if (K_ > 256) {
    heap_terms.resize(K_);
    buf = heap_terms.data();
  }
  for (size_t j = 0; j < G; ++j) {
    const Annotation& g = gt_.annotations[gts[j]];
    const double* kg = g.keypoints.data();
    size_t k1 = 0;
    for (size_t t = 0; t < K_; ++t) k1 += kg[3 * t + 2] > 0;
    const auto& bb = g.bbox;
    const double x0 = bb[0] - bb[2], x1 = bb[0] + bb[2] * 2;
    const double y0 = bb[1] - bb[3], y1 = bb[1] + bb[3] * 2;
    const double area = oks_area(g) + kEps;
    for (size_t i = 0; i < D; ++i) {
      const double* kd = &dt_.keypoints[dts[i] * 3 * K_];
      size_t n = 0;
      for (size_t t = 0; t < K_; ++t) {
        double dx, dy;
        if (k1 > 0) {
          if (!(kg[3 * t + 2] > 0)) continue;
          dx = kd[3 * t] - kg[3 * t];
          dy = kd[3 * t + 1] - kg[3 * t + 1];
        } else {  // distance outside the GT box grown to [x-w, x+2w] x [y-h, y+2h]
          dx = std::max(0.0, x0 - kd[3 * t]) + std::max(0.0, kd[3 * t] - x1);
          dy = std::max(0.0, y0 - kd[3 * t + 1]) + std::max(0.0, kd[3 * t + 1] - y1);
        }
        buf[n++] = (dx * dx + dy * dy) / vars_[t] / area / 2;  // e
      }
      // Matching only ever compares OKS with thresholds >= 0.5, so a pair whose OKS is
      // certainly below 0.5 is stored as 0; every other pair gets pycocotools' exact
      // value. Bounds: exp(-e) <= exp(-3) < 0.0498 for e >= 3, and <= 1 otherwise; then,
      // term by term, the terms left can add at most 1 each.
      const double give_up = 0.5 * static_cast<double>(n) - 1e-6;
      size_t near = 0;
      for (size_t t = 0; t < n; ++t) near += buf[t] < 3.0;
      bool below = static_cast<double>(near) + 0.0498 * static_cast<double>(n - near) < give_up;
      double partial = 0;
      for (size_t t = 0; t < n && !below; ++t) {
        // exp(-e) is exactly 0 for e > 745.2; skipping the call changes nothing.
        buf[t] = buf[t] > 800.0 ? 0.0 : std::exp(-buf[t]);
        partial += buf[t];
        below = partial + static_cast<double>(n - t - 1) < give_up;
      }
      oks[i * G + j] = below ? 0.0 : (0.0 + numpy::pairwise_sum(buf, n)) / static_cast<double>(n);
    }
  }
}

// evaluateImg for one (image, category), every area range.
void Evaluator::evaluate_unit(size_t u) {
  const size_t G = gts_.size(u), D = used_dts(u);
  if (G == 0 && D == 0) return;
  const size_t* gts = gts_.at(u);
  const size_t slot0 = dts_.begin[u];
  const size_t slots = dts_.items.size();
  const double* oks = oks_.data() + oks_begin_[u];
  const size_t T = iou_thrs_.size();
  thread_local std::vector<char> base_ignore, ignore, taken, crowd;
  thread_local std::vector<size_t> order, cand, cand_begin;
  base_ignore.resize(G);
  crowd.resize(G);
  for (size_t j = 0; j < G; ++j) {
    const Annotation& g = gt_.annotations[gts[j]];
    crowd[j] = g.iscrowd;
    bool ig;
    if (opt_.ignore_overwritten_by_iscrowd || g.ignore < 0) ig = g.iscrowd;
    else ig = g.ignore > 0 || g.iscrowd;
    if (opt_.rules == Rules::pycocotools) {
      ig = g.num_keypoints == 0 || ig;
    } else {
      size_t visible = 0;
      for (size_t t = 0; t < K_; ++t) visible += g.keypoints[3 * t + 2] > 0;
      ig = visible == 0 || ig;
    }
    base_ignore[j] = ig;
  }
  for (size_t a = 0; a < kAreas; ++a) {
    const double lo = kAreaRanges[a][0], hi = kAreaRanges[a][1];
    ignore.resize(G);
    int64_t npig = 0;
    for (size_t j = 0; j < G; ++j) {
      const double area = gt_area_for_range(gt_.annotations[gts[j]]);
      ignore[j] = base_ignore[j] || area < lo || area > hi;
      npig += !ignore[j];
    }
    npig_[a * units_ + u] = npig;
    // GTs with ignore last (stable); detections are already in score order.
    order.clear();
    for (size_t j = 0; j < G; ++j)
      if (!ignore[j]) order.push_back(j);
    for (size_t j = 0; j < G; ++j)
      if (ignore[j]) order.push_back(j);
    uint16_t* matched = matched_.data() + a * slots + slot0;  // (data(): the arrays may be empty)
    uint16_t* ignored = ignored_.data() + a * slots + slot0;
    if (G > 0 && D > 0) {
      // A GT whose OKS with a detection is below the lowest threshold can never be
      // its match, and skipping it cannot change where the loop breaks (the GTs after
      // it are ignored ones too), so each detection visits only its candidates.
      cand_begin.assign(D + 1, 0);
      cand.clear();
      for (size_t d = 0; d < D; ++d) {
        for (size_t s = 0; s < G; ++s)
          if (oks[d * G + order[s]] >= iou_thrs_[0]) cand.push_back(s);
        cand_begin[d + 1] = cand.size();
      }
      taken.resize(G);
      for (size_t t = 0; t < T; ++t) {
        std::fill(taken.begin(), taken.end(), 0);
        for (size_t d = 0; d < D; ++d) {
          double best = std::min(iou_thrs_[t], 1 - 1e-10);
          long m = -1;
          for (size_t c = cand_begin[d]; c < cand_begin[d + 1]; ++c) {
            const size_t s = cand[c];
            const size_t j = order[s];
            if (taken[s] && !crowd[j]) continue;
            if (m > -1 && !ignore[order[m]] && ignore[j]) break;
            const double o = oks[d * G + j];
            if (o < best) continue;
            best = o;
            m = static_cast<long>(s);
          }
          if (m == -1) continue;
          const size_t j = order[m];
          if (ignore[j]) ignored[d] |= uint16_t(1u << t);
          // pycocotools stores the GT's id as the match, and 0 means "unmatched".
          if (gt_.annotations[gts[j]].id != 0 || !opt_.gt_id_zero_never_matched) matched[d] |= uint16_t(1u << t);
          taken[m] = 1;
          if (a == 0 && t == 0 && !ignore[j]) match0_[slot0 + d] = static_cast<long>(gts[j]);
        }
      }
    }
    // Unmatched detections outside the area range are ignored.
    const uint16_t all = static_cast<uint16_t>((1u << T) - 1);
    for (size_t d = 0; d < D; ++d) {
      const double area = dt_area_[dts_.items[slot0 + d]];
      if (area < lo || area > hi) ignored[d] |= static_cast<uint16_t>(~matched[d] & all);
    }
  }
}

// accumulate over the images whose mask is set: per category and maxDets the
// detections of all images (in image-id order) are stable-sorted by score once, then
// each (area range, threshold) row is a cumulative count over that order.
void Evaluator::accumulate(const std::vector<char>& image_mask, std::vector<double>& precision,
                           std::vector<double>& recall, std::vector<double>* scores_out) const {
  const size_t T = iou_thrs_.size(), R = rec_thrs_.size(), K = cat_ids_.size(), M = max_dets_.size();
  const size_t I = img_ids_.size(), slots = dts_.items.size();
  precision.assign(T * R * K * kAreas * M, -1.0);
  recall.assign(T * K * kAreas * M, -1.0);
  if (scores_out) scores_out->assign(T * R * K * kAreas * M, -1.0);
  std::vector<std::pair<double, size_t>> order;  // (score, slot)
  std::vector<uint16_t> sorted_matched, sorted_ignored;
  std::vector<std::vector<double>> scratch(2 * static_cast<size_t>(std::max(1, threads_)));
  for (size_t k = 0; k < K; ++k) {
    for (size_t m = 0; m < M; ++m) {
      const size_t max_det = static_cast<size_t>(max_dets_[m]);
      order.clear();
      bool any = false;
      int64_t npig[kAreas] = {0, 0, 0};
      for (size_t i = 0; i < I; ++i) {
        const size_t u = k * I + i;
        if (!image_mask[i] || (gts_.size(u) == 0 && used_dts(u) == 0)) continue;
        any = true;
        for (size_t a = 0; a < kAreas; ++a) npig[a] += npig_[a * units_ + u];
        const size_t n = std::min(max_det, used_dts(u));
        for (size_t d = 0; d < n; ++d) order.emplace_back(dt_.score[dts_.items[dts_.begin[u] + d]], dts_.begin[u] + d);
      }
      if (!any) continue;
      std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
      // Each area range's flags in score order, so the rows below read memory in order.
      const size_t nd = order.size();
      sorted_matched.resize(kAreas * nd);
      sorted_ignored.resize(kAreas * nd);
      for (size_t a = 0; a < kAreas; ++a)
        for (size_t i = 0; i < nd; ++i) {
          sorted_matched[a * nd + i] = matched_[a * slots + order[i].second];
          sorted_ignored[a * nd + i] = ignored_[a * slots + order[i].second];
        }
      parallel_for(kAreas * T, threads_, [&](size_t job, size_t worker) {
        const size_t a = job / T, t = job % T;
        if (npig[a] == 0) return;
        const uint16_t* matched = sorted_matched.data() + a * nd;
        const uint16_t* ignored = sorted_ignored.data() + a * nd;
        // pycocotools computes rc and pr at every detection, makes pr non-increasing
        // from the right and samples it at searchsorted(rc, recThrs). rc only grows at
        // true positives and pr only grows there, so the same numbers come from the
        // true positives alone: the k-th one has rc = k/npig, and the suffix maximum of
        // pr from it is the maximum over it and the later true positives.
        std::vector<double>& pr_tp = scratch[2 * worker];   // pr at each true positive
        std::vector<double>& pos_tp = scratch[2 * worker + 1];  // its position in `order`
        pr_tp.clear();
        pos_tp.clear();
        int64_t tp = 0, fp = 0;
        for (size_t i = 0; i < nd; ++i) {
          if (ignored[i] >> t & 1) continue;
          if (matched[i] >> t & 1) {
            ++tp;
            const double tpf = static_cast<double>(tp), fpf = static_cast<double>(fp);
            pr_tp.push_back(tpf / (fpf + tpf + kEps));
            pos_tp.push_back(static_cast<double>(i));
          } else {
            ++fp;
          }
        }
        const double npig_f = static_cast<double>(npig[a]);
        recall[((t * K + k) * kAreas + a) * M + m] = nd ? static_cast<double>(tp) / npig_f : 0.0;
        for (size_t e = pr_tp.size(); e-- > 1;)
          if (pr_tp[e] > pr_tp[e - 1]) pr_tp[e - 1] = pr_tp[e];
        size_t e = 0;
        for (size_t r = 0; r < R; ++r) {
          const size_t at = (((t * R + r) * K + k) * kAreas + a) * M + m;
          double q = 0.0, score = 0.0;
          if (nd > 0 && rec_thrs_[r] <= 0.0) {  // searchsorted gives the first detection
            q = pr_tp.empty() ? 0.0 : pr_tp[0];
            score = order[0].first;
          } else {
            while (e < pr_tp.size() && static_cast<double>(e + 1) / npig_f < rec_thrs_[r]) ++e;
            if (e < pr_tp.size()) {
              q = pr_tp[e];
              score = order[static_cast<size_t>(pos_tp[e])].first;
            }  // past the end pycocotools' try/except leaves 0 in the rest of the row
          }
          precision[at] = q;
          if (scores_out) (*scores_out)[at] = score;
        }
      });
    }
  }
}

// _summarize: the mean of the entries > -1, in C order, as np.mean does.
double Evaluator::summarize(const std::vector<double>& precision, const std::vector<double>& recall, bool ap,
                            double iou, size_t area, int64_t k_only) const {
  const size_t T = iou_thrs_.size(), R = rec_thrs_.size(), K = cat_ids_.size(), M = max_dets_.size();
  const size_t m = M - 1;
  std::vector<double> s;
  for (size_t t = 0; t < T; ++t) {
    if (iou >= 0 && !(iou == iou_thrs_[t])) continue;
    if (ap) {
      for (size_t r = 0; r < R; ++r)
        for (size_t k = 0; k < K; ++k) {
          if (k_only >= 0 && static_cast<int64_t>(k) != k_only) continue;
          const double v = precision[(((t * R + r) * K + k) * kAreas + area) * M + m];
          if (v > -1) s.push_back(v);
        }
    } else {
      for (size_t k = 0; k < K; ++k) {
        if (k_only >= 0 && static_cast<int64_t>(k) != k_only) continue;
        const double v = recall[((t * K + k) * kAreas + area) * M + m];
        if (v > -1) s.push_back(v);
      }
    }
  }
  return s.empty() ? -1.0 : numpy::mean(s);
}

std::array<double, 10> Evaluator::summary_numbers(const std::vector<double>& precision,
                                                  const std::vector<double>& recall, int64_t k_only) const {
  std::array<double, 10> st{};
  for (int ap = 1; ap >= 0; --ap) {
    const size_t o = ap ? 0 : 5;
    st[o + 0] = summarize(precision, recall, ap, -1, 0, k_only);
    st[o + 1] = summarize(precision, recall, ap, .5, 0, k_only);
    st[o + 2] = summarize(precision, recall, ap, .75, 0, k_only);
    st[o + 3] = summarize(precision, recall, ap, -1, 1, k_only);
    st[o + 4] = summarize(precision, recall, ap, -1, 2, k_only);
  }
  return st;
}

void Evaluator::keypoint_breakdown(EvalResult& r) const {
  std::vector<std::string> names;
  for (const auto& c : gt_.categories)
    if (c.keypoint_names.size() == K_) names = c.keypoint_names;
  std::vector<double> oks_sum(K_), err_sum(K_);
  std::vector<int64_t> count(K_);
  for (size_t slot = 0; slot < match0_.size(); ++slot) {
    if (match0_[slot] < 0) continue;
    const Annotation& a = gt_.annotations[static_cast<size_t>(match0_[slot])];
    const double* kd = &dt_.keypoints[dts_.items[slot] * 3 * K_];
    const double area = oks_area(a) + kEps;
    for (size_t t = 0; t < K_; ++t) {
      if (!(a.keypoints[3 * t + 2] > 0)) continue;
      const double dx = kd[3 * t] - a.keypoints[3 * t], dy = kd[3 * t + 1] - a.keypoints[3 * t + 1];
      oks_sum[t] += std::exp(-(dx * dx + dy * dy) / vars_[t] / area / 2);
      err_sum[t] += std::sqrt(dx * dx + dy * dy) / std::sqrt(area);
      ++count[t];
    }
  }
  for (size_t t = 0; t < K_; ++t) {
    KeypointBreakdown b;
    b.name = t < names.size() ? names[t] : "keypoint_" + std::to_string(t);
    b.sigma = sigmas_[t];
    b.pairs = count[t];
    b.mean_oks_term = count[t] ? oks_sum[t] / count[t] : -1;
    b.mean_normalized_error = count[t] ? err_sum[t] / count[t] : -1;
    r.per_keypoint.push_back(b);
  }
}

EvalResult Evaluator::run() {
  threads_ = opt_.threads > 0 ? opt_.threads : std::max(1u, std::thread::hardware_concurrency());
  check_and_index();
  iou_thrs_ = numpy::linspace(.5, 0.95, 10);
  rec_thrs_ = numpy::linspace(.0, 1.00, 101);
  if (iou_thrs_.size() > 16) throw Error("internal: at most 16 OKS thresholds");

  EvalResult r;
  auto t0 = std::chrono::steady_clock::now();
  group_units();
  oks_.assign(oks_begin_[units_], 0.0);
  parallel_for(units_, threads_, [&](size_t u, size_t) { compute_oks(u); });
  r.timings.oks = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const size_t I = img_ids_.size(), K = cat_ids_.size();
  matched_.assign(kAreas * dts_.items.size(), 0);
  ignored_.assign(kAreas * dts_.items.size(), 0);
  npig_.assign(kAreas * units_, 0);
  match0_.assign(dts_.items.size(), -1);
  parallel_for(units_, threads_, [&](size_t u, size_t) { evaluate_unit(u); });
  r.timings.match = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  std::vector<char> all(I, 1);
  accumulate(all, r.precision, r.recall, &r.scores);
  r.timings.accumulate = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  r.stats = summary_numbers(r.precision, r.recall, -1);
  for (size_t k = 0; k < K; ++k) {
    CategoryBreakdown c;
    c.id = cat_ids_[k];
    for (const auto& cat : gt_.categories)
      if (cat.id == c.id) c.name = cat.name;
    c.stats = summary_numbers(r.precision, r.recall, static_cast<int64_t>(k));
    r.per_category.push_back(c);
  }
  keypoint_breakdown(r);
  if (opt_.crowd_split) {
    // xtcocotools' get_type_result: images of each crowdIndex class, all GT images.
    std::unordered_map<int64_t, double> crowd;
    for (const auto& img : gt_.images) {
      if (std::isnan(img.crowd_index))
        throw Error(gt_.source + ": image " + std::to_string(img.id) +
                    " has no 'crowdIndex' (the CrowdPose easy/medium/hard split needs it on every image)");
      crowd[img.id] = img.crowd_index;
    }
    r.has_crowd_split = true;
    for (int cls = 0; cls < 3; ++cls) {
      std::vector<char> mask(I, 0);
      bool any = false;
      for (size_t i = 0; i < I; ++i) {
        const double c = crowd[img_ids_[i]];
        const int ci = c < 0.2 ? 0 : (c < 0.8 ? 1 : 2);
        mask[i] = ci == cls;
        any |= mask[i];
      }
      if (!any) continue;
      std::vector<double> prec, rec;
      accumulate(mask, prec, rec, nullptr);
      // np.mean(precision[:, :, :, 0, :]) with the -1 entries, in C order.
      const size_t T = iou_thrs_.size(), R = rec_thrs_.size(), M = max_dets_.size();
      std::vector<double> v;
      for (size_t t = 0; t < T; ++t)
        for (size_t rr = 0; rr < R; ++rr)
          for (size_t k = 0; k < K; ++k)
            for (size_t m = 0; m < M; ++m) v.push_back(prec[(((t * R + rr) * K + k) * kAreas + 0) * M + m]);
      r.crowd_ap[cls] = numpy::mean(v);
    }
  }
  r.timings.summarize = seconds_since(t0);

  r.iou_thresholds = iou_thrs_;
  r.recall_thresholds = rec_thrs_;
  r.category_ids = cat_ids_;
  r.max_dets = max_dets_;
  r.images = static_cast<int64_t>(I);
  r.ground_truths = static_cast<int64_t>(gt_.annotations.size());
  r.detections = static_cast<int64_t>(dt_.size());
  return r;
}

}  // namespace

std::vector<double> coco_sigmas() {
  return literals_over_ten({.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89});
}

std::vector<double> crowdpose_sigmas() {
  return literals_over_ten({.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79});
}

double EvalResult::precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const {
  const size_t R = recall_thresholds.size(), K = category_ids.size(), A = area_labels.size(), M = max_dets.size();
  return precision[(((t * R + r) * K + k) * A + a) * M + m];
}

EvalResult evaluate(const GroundTruth& gt, const Detections& dt, const EvalOptions& options) {
  return Evaluator(gt, dt, options).run();
}

EvalResult evaluate_files(const std::string& gt_path, const std::string& results_path, const EvalOptions& options,
                          const Layout& layout) {
  const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  GroundTruth gt;
  Detections dt;
  double load_gt = 0, load_dt = 0;
  auto t0 = std::chrono::steady_clock::now();
  if (threads <= 1) {
    gt = load_ground_truth(gt_path, layout);
    load_gt = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    dt = load_detections(results_path, layout);
    load_dt = seconds_since(t0);
  } else {
    // A helper thread loads the ground truth, then parses the second part of the
    // results while this thread parses the first (shares sized so both finish together).
    std::error_code ec;
    const double gt_bytes = static_cast<double>(std::filesystem::file_size(gt_path, ec));
    const double dt_bytes = static_cast<double>(std::filesystem::file_size(results_path, ec));
    const double share = dt_bytes > 0 ? std::clamp(0.5 * (1.0 + 1.25 * gt_bytes / dt_bytes), 0.5, 0.9) : 0.5;
    std::promise<std::function<void()>> task_promise;
    auto task_future = task_promise.get_future();
    std::exception_ptr gt_error;
    std::thread helper([&] {
      const auto t = std::chrono::steady_clock::now();
      try {
        gt = load_ground_truth(gt_path, layout);
      } catch (...) {
        gt_error = std::current_exception();
      }
      load_gt = seconds_since(t);
      if (auto task = task_future.get()) task();
    });
    bool sent = false;
    auto other = [&](std::function<void()> task) {
      if (task) {
        task_promise.set_value(std::move(task));
        sent = true;
      } else {
        helper.join();
      }
    };
    std::exception_ptr dt_error;
    try {
      dt = load_detections_split(results_path, layout, share, other);
    } catch (...) {
      dt_error = std::current_exception();
    }
    if (!sent) task_promise.set_value(nullptr);
    if (helper.joinable()) helper.join();
    load_dt = seconds_since(t0);
    if (gt_error) std::rethrow_exception(gt_error);  // the ground truth's problem first
    if (dt_error) std::rethrow_exception(dt_error);
  }
  EvalResult r = evaluate(gt, dt, options);
  r.timings.load_gt = load_gt;
  r.timings.load_results = load_dt;
  return r;
}

}  // namespace fancy::keypoints
