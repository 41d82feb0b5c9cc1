// COCO keypoint evaluation with pycocotools' exact arithmetic (cocoeval.py):
// computeOks, evaluateImg, accumulate and summarize, in that order. Every place
// where the order of floating-point operations shows in the last bit follows numpy.
#include "fancy/keypoints/eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <thread>
#include <unordered_map>

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

// Runs body(i) for i in [0, n) on `threads` threads, in contiguous chunks. Each i
// writes only its own slot, so the result does not depend on the thread count.
template <class F>
void parallel_for(size_t n, int threads, F body) {
  const size_t t = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(threads), n / 64 + 1));
  if (t == 1) {
    for (size_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::vector<std::thread> pool;
  for (size_t w = 0; w < t; ++w) {
    pool.emplace_back([&, w] {
      for (size_t i = n * w / t; i < n * (w + 1) / t; ++i) body(i);
    });
  }
  for (auto& th : pool) th.join();
}

// One (category, image) pair: its ground truths in file order, its detections in
// score order cut to the largest maxDets, and the OKS between them.
struct Unit {
  std::vector<size_t> gts;
  std::vector<size_t> dts;
  std::vector<double> oks;  // dts.size() x gts.size()
};

// evaluateImg's output for one (category, area range, image), reduced to what
// accumulate reads: per detection its score and, per threshold, whether it is a
// true positive (matched to a GT id != 0) and whether it is ignored.
struct ImageEval {
  bool present = false;
  std::vector<double> scores;
  std::vector<uint16_t> matched;  // bit t
  std::vector<uint16_t> ignored;  // bit t
  int64_t not_ignored_gts = 0;
  std::vector<std::pair<size_t, size_t>> pairs;  // (dt, gt) matched at threshold 0
};

class Evaluator {
 public:
  Evaluator(const GroundTruth& gt, const Detections& dt, const EvalOptions& options)
      : gt_(gt), dt_(dt), opt_(options) {}

  EvalResult run();

 private:
  void check_and_index();
  void compute_oks(Unit& u) const;
  double gt_area_for_range(const Annotation& g) const;
  double oks_area(const Annotation& g) const;
  void evaluate_unit(const Unit& u, size_t a, ImageEval& out) const;
  void accumulate(const std::vector<char>& image_mask, std::vector<double>& precision,
                  std::vector<double>& recall, std::vector<double>* scores) const;
  double summarize(const std::vector<double>& precision, const std::vector<double>& recall, bool ap,
                   double iou, size_t area, int64_t k_only) const;
  std::array<double, 10> summary_numbers(const std::vector<double>& precision, const std::vector<double>& recall,
                                         int64_t k_only) const;
  void keypoint_breakdown(EvalResult& r) const;

  const GroundTruth& gt_;
  const Detections& dt_;
  const EvalOptions& opt_;
  std::vector<double> sigmas_, vars_;
  size_t K_ = 0;  // keypoints
  std::vector<int64_t> img_ids_, cat_ids_, max_dets_;
  std::vector<double> iou_thrs_, rec_thrs_;
  std::vector<double> dt_area_;
  std::vector<char> dt_dropped_;
  std::vector<Unit> units_;                  // [k][i]
  std::vector<ImageEval> evals_;             // [k][a][i]
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
    const std::string rec = dt_.source + ": results[" + std::to_string(i) + "]: ";
    if (!known_img.count(dt_.image_id[i]))
      throw Error(rec + "image_id " + std::to_string(dt_.image_id[i]) + " is not an image of " + gt_.source);
    if (!known_cat.count(dt_.category_id[i]))
      throw Error(rec + "category_id " + std::to_string(dt_.category_id[i]) + " is not a category of " + gt_.source);
    if (!std::isfinite(dt_.score[i])) throw Error(rec + "score must be a finite number");
    const double* kp = &dt_.keypoints[i * 3 * K_];
    for (size_t j = 0; j < 3 * K_; ++j)
      if (!std::isfinite(kp[j]))
        throw Error(rec + "keypoints[" + std::to_string(j) + "] is not a finite number (NaN coordinates are refused)");
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

  // Units [k][i]: GTs and detections grouped in file order, as pycocotools' _prepare.
  std::unordered_map<int64_t, size_t> img_pos, cat_pos;
  for (size_t i = 0; i < img_ids_.size(); ++i) img_pos[img_ids_[i]] = i;
  for (size_t k = 0; k < cat_ids_.size(); ++k) cat_pos[cat_ids_[k]] = k;
  const size_t I = img_ids_.size();
  units_.assign(cat_ids_.size() * I, Unit{});
  auto unit_of = [&](int64_t img, int64_t cat) -> Unit* {
    auto i = img_pos.find(img);
    auto k = cat_pos.find(cat);
    if (i == img_pos.end() || k == cat_pos.end()) return nullptr;
    return &units_[k->second * I + i->second];
  };
  for (size_t g = 0; g < gt_.annotations.size(); ++g)
    if (Unit* u = unit_of(gt_.annotations[g].image_id, gt_.annotations[g].category_id)) u->gts.push_back(g);
  for (size_t d = 0; d < n; ++d)
    if (!dt_dropped_[d])
      if (Unit* u = unit_of(dt_.image_id[d], dt_.category_id[d])) u->dts.push_back(d);
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

// computeOks for one (image, category).
void Evaluator::compute_oks(Unit& u) const {
  // Stable sort by -score, then keep the first maxDets[-1].
  std::stable_sort(u.dts.begin(), u.dts.end(), [&](size_t a, size_t b) { return dt_.score[a] > dt_.score[b]; });
  if (u.dts.size() > static_cast<size_t>(max_dets_.back())) u.dts.resize(max_dets_.back());
  const size_t D = u.dts.size(), G = u.gts.size();
  if (D == 0 || G == 0) return;
  u.oks.assign(D * G, 0.0);
  std::vector<double> terms(K_);
  for (size_t j = 0; j < G; ++j) {
    const Annotation& g = gt_.annotations[u.gts[j]];
    const double* kg = g.keypoints.data();
    size_t k1 = 0;
    for (size_t t = 0; t < K_; ++t) k1 += kg[3 * t + 2] > 0;
    const auto& bb = g.bbox;
    const double x0 = bb[0] - bb[2], x1 = bb[0] + bb[2] * 2;
    const double y0 = bb[1] - bb[3], y1 = bb[1] + bb[3] * 2;
    const double area = oks_area(g) + kEps;
    for (size_t i = 0; i < D; ++i) {
      const double* kd = &dt_.keypoints[u.dts[i] * 3 * K_];
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
        const double e = (dx * dx + dy * dy) / vars_[t] / area / 2;
        terms[n++] = std::exp(-e);
      }
      u.oks[i * G + j] = (0.0 + numpy::pairwise_sum(terms.data(), n)) / static_cast<double>(n);
    }
  }
}

// evaluateImg for one (image, category, area range).
void Evaluator::evaluate_unit(const Unit& u, size_t a, ImageEval& out) const {
  const size_t G = u.gts.size(), D = u.dts.size();
  if (G == 0 && D == 0) return;
  out.present = true;
  const double lo = kAreaRanges[a][0], hi = kAreaRanges[a][1];
  std::vector<char> ignore(G);
  for (size_t j = 0; j < G; ++j) {
    const Annotation& g = gt_.annotations[u.gts[j]];
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
    const double area = gt_area_for_range(g);
    ignore[j] = ig || area < lo || area > hi;
  }
  // GTs with ignore last (stable), detections already in score order.
  std::vector<size_t> order(G);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return ignore[x] < ignore[y]; });
  const size_t T = iou_thrs_.size();
  out.scores.resize(D);
  out.matched.assign(D, 0);
  out.ignored.assign(D, 0);
  for (size_t d = 0; d < D; ++d) out.scores[d] = dt_.score[u.dts[d]];
  for (size_t j = 0; j < G; ++j) out.not_ignored_gts += !ignore[j];
  if (G > 0 && D > 0) {
    std::vector<char> gt_taken(G);
    for (size_t t = 0; t < T; ++t) {
      std::fill(gt_taken.begin(), gt_taken.end(), 0);
      for (size_t d = 0; d < D; ++d) {
        double best = std::min(iou_thrs_[t], 1 - 1e-10);
        long m = -1;
        for (size_t s = 0; s < G; ++s) {
          const size_t j = order[s];
          const Annotation& g = gt_.annotations[u.gts[j]];
          if (gt_taken[s] && !g.iscrowd) continue;
          if (m > -1 && !ignore[order[m]] && ignore[j]) break;
          const double o = u.oks[d * G + j];
          if (o < best) continue;
          best = o;
          m = static_cast<long>(s);
        }
        if (m == -1) continue;
        const size_t j = order[m];
        const Annotation& g = gt_.annotations[u.gts[j]];
        if (ignore[j]) out.ignored[d] |= uint16_t(1u << t);
        // pycocotools stores the GT's id as the match, and 0 means "unmatched".
        if (g.id != 0 || !opt_.gt_id_zero_never_matched) out.matched[d] |= uint16_t(1u << t);
        gt_taken[m] = 1;
        if (a == 0 && t == 0 && !ignore[j]) out.pairs.emplace_back(u.dts[d], u.gts[j]);
      }
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (size_t d = 0; d < D; ++d) {
    const double area = dt_area_[u.dts[d]];
    if (area < lo || area > hi) out.ignored[d] |= uint16_t(~out.matched[d] & ((1u << T) - 1));
  }
}

// accumulate over the images whose mask is set.
void Evaluator::accumulate(const std::vector<char>& image_mask, std::vector<double>& precision,
                           std::vector<double>& recall, std::vector<double>* scores_out) const {
  const size_t T = iou_thrs_.size(), R = rec_thrs_.size(), K = cat_ids_.size(), M = max_dets_.size();
  const size_t I = img_ids_.size();
  precision.assign(T * R * K * kAreas * M, -1.0);
  recall.assign(T * K * kAreas * M, -1.0);
  if (scores_out) scores_out->assign(T * R * K * kAreas * M, -1.0);
  std::vector<double> sc;
  std::vector<uint16_t> mt, ig;
  std::vector<size_t> idx;
  std::vector<double> rc, pr;
  for (size_t k = 0; k < K; ++k) {
    for (size_t a = 0; a < kAreas; ++a) {
      for (size_t m = 0; m < M; ++m) {
        const size_t max_det = static_cast<size_t>(max_dets_[m]);
        sc.clear();
        mt.clear();
        ig.clear();
        int64_t npig = 0;
        bool any = false;
        for (size_t i = 0; i < I; ++i) {
          if (!image_mask[i]) continue;
          const ImageEval& e = evals_[(k * kAreas + a) * I + i];
          if (!e.present) continue;
          any = true;
          const size_t n = std::min(max_det, e.scores.size());
          sc.insert(sc.end(), e.scores.begin(), e.scores.begin() + n);
          mt.insert(mt.end(), e.matched.begin(), e.matched.begin() + n);
          ig.insert(ig.end(), e.ignored.begin(), e.ignored.begin() + n);
          npig += e.not_ignored_gts;
        }
        if (!any || npig == 0) continue;
        idx.resize(sc.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return sc[x] > sc[y]; });
        for (size_t t = 0; t < T; ++t) {
          rc.clear();
          pr.clear();
          int64_t tp = 0, fp = 0;
          for (size_t d : idx) {  // cumulative sums of tp and fp
            if (ig[d] >> t & 1) {
            } else if (mt[d] >> t & 1) {
              ++tp;
            } else {
              ++fp;
            }
            const double tpf = static_cast<double>(tp), fpf = static_cast<double>(fp);
            rc.push_back(tpf / static_cast<double>(npig));
            pr.push_back(tpf / (fpf + tpf + kEps));
          }
          const size_t nd = rc.size();
          recall[((t * K + k) * kAreas + a) * M + m] = nd ? rc.back() : 0.0;
          for (size_t i = nd; i-- > 1;)
            if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
          size_t pi = 0;
          for (size_t r = 0; r < R; ++r) {
            while (pi < nd && rc[pi] < rec_thrs_[r]) ++pi;  // searchsorted, side='left'
            const size_t at = (((t * R + r) * K + k) * kAreas + a) * M + m;
            if (pi >= nd) {  // pycocotools' try/except leaves the rest at 0
              for (size_t r2 = r; r2 < R; ++r2) {
                const size_t at2 = (((t * R + r2) * K + k) * kAreas + a) * M + m;
                precision[at2] = 0.0;
                if (scores_out) (*scores_out)[at2] = 0.0;
              }
              break;
            }
            precision[at] = pr[pi];
            if (scores_out) (*scores_out)[at] = sc[idx[pi]];
          }
        }
      }
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
  const size_t I = img_ids_.size();
  for (size_t k = 0; k < cat_ids_.size(); ++k) {
    for (size_t i = 0; i < I; ++i) {
      for (const auto& [d, g] : evals_[(k * kAreas + 0) * I + i].pairs) {
        const Annotation& a = gt_.annotations[g];
        const double* kd = &dt_.keypoints[d * 3 * K_];
        const double area = oks_area(a) + kEps;
        for (size_t t = 0; t < K_; ++t) {
          if (!(a.keypoints[3 * t + 2] > 0)) continue;
          const double dx = kd[3 * t] - a.keypoints[3 * t], dy = kd[3 * t + 1] - a.keypoints[3 * t + 1];
          oks_sum[t] += std::exp(-(dx * dx + dy * dy) / vars_[t] / area / 2);
          err_sum[t] += std::sqrt(dx * dx + dy * dy) / std::sqrt(area);
          ++count[t];
        }
      }
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
  parallel_for(units_.size(), threads_, [&](size_t u) { compute_oks(units_[u]); });
  r.timings.oks = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const size_t I = img_ids_.size(), K = cat_ids_.size();
  evals_.assign(K * kAreas * I, ImageEval{});
  parallel_for(K * I, threads_, [&](size_t ki) {
    const size_t k = ki / I, i = ki % I;
    for (size_t a = 0; a < kAreas; ++a) evaluate_unit(units_[ki], a, evals_[(k * kAreas + a) * I + i]);
  });
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

}  // namespace fancy::keypoints
