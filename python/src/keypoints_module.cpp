// Python binding of fancy::keypoints (pybind11). Torch-free: importing it loads no
// LibTorch. The friendly API is python/fancy/keypoints.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fancy/keypoints/eval.h"
#include "fancy/keypoints/pose_metrics.h"

namespace py = pybind11;
namespace kp = fancy::keypoints;

namespace {

kp::Layout layout_of(const std::vector<std::string>& keys, const std::string& score_key) {
  kp::Layout l;
  if (!keys.empty()) l.keys = keys;
  l.score_key = score_key;
  return l;
}

py::dict stats_dict(const std::array<double, 10>& s) {
  static const char* names[10] = {"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"};
  py::dict d;
  for (int i = 0; i < 10; ++i) d[names[i]] = s[i];
  return d;
}

py::dict result_dict(const kp::EvalResult& r) {
  py::dict d;
  d["stats"] = std::vector<double>(r.stats.begin(), r.stats.end());
  d["summary"] = stats_dict(r.stats);
  d["summary_text"] = kp::summary_text(r);
  d["iou_thresholds"] = r.iou_thresholds;
  d["recall_thresholds"] = r.recall_thresholds;
  d["category_ids"] = r.category_ids;
  d["max_dets"] = r.max_dets;
  d["area_labels"] = r.area_labels;
  d["precision"] = r.precision;  // flat, C order [T][R][K][A][M]
  d["recall"] = r.recall;        // flat, C order [T][K][A][M]
  d["scores"] = r.scores;
  py::list cats;
  for (const auto& c : r.per_category) {
    py::dict e;
    e["id"] = c.id;
    e["name"] = c.name;
    e["stats"] = stats_dict(c.stats);
    cats.append(e);
  }
  d["per_category"] = cats;
  py::list kps;
  for (const auto& k : r.per_keypoint) {
    py::dict e;
    e["name"] = k.name;
    e["sigma"] = k.sigma;
    e["pairs"] = k.pairs;
    e["mean_oks_term"] = k.mean_oks_term;
    e["mean_normalized_error"] = k.mean_normalized_error;
    kps.append(e);
  }
  d["per_keypoint"] = kps;
  if (r.has_crowd_split) {
    py::dict c;
    c["AP_easy"] = r.crowd_ap[0];
    c["AP_medium"] = r.crowd_ap[1];
    c["AP_hard"] = r.crowd_ap[2];
    d["crowd"] = c;
  }
  py::dict counts;
  counts["images"] = r.images;
  counts["ground_truths"] = r.ground_truths;
  counts["detections"] = r.detections;
  d["counts"] = counts;
  py::dict t;
  t["oks"] = r.timings.oks;
  t["match"] = r.timings.match;
  t["accumulate"] = r.timings.accumulate;
  t["summarize"] = r.timings.summarize;
  d["timings_s"] = t;
  return d;
}

kp::Detections from_arrays(py::array_t<int64_t, py::array::c_style | py::array::forcecast> image_id,
                           py::array_t<int64_t, py::array::c_style | py::array::forcecast> category_id,
                           py::array_t<double, py::array::c_style | py::array::forcecast> score,
                           py::array_t<double, py::array::c_style | py::array::forcecast> keypoints,
                           std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>> bbox) {
  const auto n = static_cast<size_t>(score.size());
  if (static_cast<size_t>(image_id.size()) != n || static_cast<size_t>(category_id.size()) != n)
    throw kp::Error("<arrays>: image_id, category_id and score need one entry per detection (got " +
                    std::to_string(image_id.size()) + ", " + std::to_string(category_id.size()) + ", " +
                    std::to_string(n) + ")");
  if (n && (keypoints.size() % (3 * static_cast<py::ssize_t>(n)) != 0 || keypoints.size() == 0))
    throw kp::Error("<arrays>: keypoints has " + std::to_string(keypoints.size()) + " values for " +
                    std::to_string(n) + " detections; expected N x K x 3");
  kp::Detections d;
  d.source = "<arrays>";
  d.image_id.assign(image_id.data(), image_id.data() + n);
  d.category_id.assign(category_id.data(), category_id.data() + n);
  d.score.assign(score.data(), score.data() + n);
  d.keypoints.assign(keypoints.data(), keypoints.data() + keypoints.size());
  d.keypoint_count = n ? static_cast<int64_t>(keypoints.size() / (3 * n)) : 0;
  if (bbox) {
    if (static_cast<size_t>(bbox->size()) != 4 * n)
      throw kp::Error("<arrays>: bbox has " + std::to_string(bbox->size()) + " values; expected N x 4");
    d.has_bbox = true;
    d.bbox.assign(bbox->data(), bbox->data() + bbox->size());
  }
  return d;
}

}  // namespace

PYBIND11_MODULE(_fancy_keypoints, m) {
  m.doc() = "fancy's COCO keypoint evaluation (torch-free); use fancy.keypoints";
  py::register_exception<kp::Error>(m, "KeypointsError", PyExc_ValueError);

  py::class_<kp::GroundTruth>(m, "GroundTruth")
      .def_property_readonly("source", [](const kp::GroundTruth& g) { return g.source; })
      .def_property_readonly("image_ids",
                             [](const kp::GroundTruth& g) {
                               std::vector<int64_t> v;
                               for (const auto& i : g.images) v.push_back(i.id);
                               return v;
                             })
      .def_property_readonly("category_ids",
                             [](const kp::GroundTruth& g) {
                               std::vector<int64_t> v;
                               for (const auto& c : g.categories) v.push_back(c.id);
                               return v;
                             })
      .def("__len__", [](const kp::GroundTruth& g) { return g.annotations.size(); });
  py::class_<kp::Detections>(m, "Detections")
      .def_property_readonly("source", [](const kp::Detections& d) { return d.source; })
      .def("__len__", &kp::Detections::size);

  const std::vector<std::string> no_keys;
  m.def("load_ground_truth",
        [](const std::string& path, const std::vector<std::string>& keys, const std::string& score_key) {
          return kp::load_ground_truth(path, layout_of(keys, score_key));
        },
        py::arg("path"), py::arg("keys") = no_keys, py::arg("score_key") = "score",
        py::call_guard<py::gil_scoped_release>());
  m.def("parse_ground_truth",
        [](const std::string& text, const std::string& source, const std::vector<std::string>& keys,
           const std::string& score_key) { return kp::parse_ground_truth(text, source, layout_of(keys, score_key)); },
        py::arg("text"), py::arg("source") = "<memory>", py::arg("keys") = no_keys, py::arg("score_key") = "score",
        py::call_guard<py::gil_scoped_release>());
  m.def("load_detections",
        [](const std::string& path, const std::vector<std::string>& keys, const std::string& score_key) {
          return kp::load_detections(path, layout_of(keys, score_key));
        },
        py::arg("path"), py::arg("keys") = no_keys, py::arg("score_key") = "score",
        py::call_guard<py::gil_scoped_release>());
  m.def("parse_detections",
        [](const std::string& text, const std::string& source, const std::vector<std::string>& keys,
           const std::string& score_key) { return kp::parse_detections(text, source, layout_of(keys, score_key)); },
        py::arg("text"), py::arg("source") = "<memory>", py::arg("keys") = no_keys, py::arg("score_key") = "score",
        py::call_guard<py::gil_scoped_release>());
  m.def("detections_from_arrays", &from_arrays, py::arg("image_id"), py::arg("category_id"), py::arg("score"),
        py::arg("keypoints"), py::arg("bbox") = py::none());

  auto options = [](std::vector<double> sigmas, const std::string& rules, bool area_from_box,
                    std::vector<int64_t> image_ids, std::vector<int64_t> category_ids, std::vector<int64_t> max_dets,
                    bool crowd_split, bool match_gt_id_zero, bool keep_ignore_field, int threads) {
    kp::EvalOptions o;
    o.sigmas = std::move(sigmas);
    if (rules != "pycocotools" && rules != "xtcocotools")
      throw kp::Error("rules: '" + rules + "' is not one of pycocotools, xtcocotools");
    o.rules = rules == "xtcocotools" ? kp::Rules::xtcocotools : kp::Rules::pycocotools;
    o.area_from_box = area_from_box;
    o.image_ids = std::move(image_ids);
    o.category_ids = std::move(category_ids);
    o.max_dets = std::move(max_dets);
    o.crowd_split = crowd_split;
    o.gt_id_zero_never_matched = !match_gt_id_zero;
    o.ignore_overwritten_by_iscrowd = !keep_ignore_field;
    o.threads = threads;
    return o;
  };
  m.def(
      "evaluate_files",
      [options](const std::string& gt_path, const std::string& dt_path, std::vector<double> sigmas,
                const std::string& rules, bool area_from_box, std::vector<int64_t> image_ids,
                std::vector<int64_t> category_ids, std::vector<int64_t> max_dets, bool crowd_split,
                bool match_gt_id_zero, bool keep_ignore_field, int threads) {
        const kp::EvalOptions o = options(std::move(sigmas), rules, area_from_box, std::move(image_ids),
                                          std::move(category_ids), std::move(max_dets), crowd_split, match_gt_id_zero,
                                          keep_ignore_field, threads);
        kp::EvalResult r;
        {
          py::gil_scoped_release release;
          r = kp::evaluate_files(gt_path, dt_path, o);
        }
        return result_dict(r);
      },
      py::arg("gt_path"), py::arg("dt_path"), py::arg("sigmas") = std::vector<double>{},
      py::arg("rules") = "pycocotools", py::arg("area_from_box") = false,
      py::arg("image_ids") = std::vector<int64_t>{}, py::arg("category_ids") = std::vector<int64_t>{},
      py::arg("max_dets") = std::vector<int64_t>{20}, py::arg("crowd_split") = false,
      py::arg("match_gt_id_zero") = false, py::arg("keep_ignore_field") = false, py::arg("threads") = 0);
  m.def(
      "evaluate",
      [options](const kp::GroundTruth& gt, const kp::Detections& dt, std::vector<double> sigmas,
                const std::string& rules, bool area_from_box, std::vector<int64_t> image_ids,
                std::vector<int64_t> category_ids, std::vector<int64_t> max_dets, bool crowd_split,
                bool match_gt_id_zero, bool keep_ignore_field, int threads) {
        const kp::EvalOptions o = options(std::move(sigmas), rules, area_from_box, std::move(image_ids),
                                          std::move(category_ids), std::move(max_dets), crowd_split, match_gt_id_zero,
                                          keep_ignore_field, threads);
        kp::EvalResult r;
        {
          py::gil_scoped_release release;
          r = kp::evaluate(gt, dt, o);
        }
        return result_dict(r);
      },
      py::arg("gt"), py::arg("dt"), py::arg("sigmas") = std::vector<double>{}, py::arg("rules") = "pycocotools",
      py::arg("area_from_box") = false, py::arg("image_ids") = std::vector<int64_t>{},
      py::arg("category_ids") = std::vector<int64_t>{}, py::arg("max_dets") = std::vector<int64_t>{20},
      py::arg("crowd_split") = false, py::arg("match_gt_id_zero") = false, py::arg("keep_ignore_field") = false,
      py::arg("threads") = 0);

  m.def("coco_sigmas", &kp::coco_sigmas);
  m.def("crowdpose_sigmas", &kp::crowdpose_sigmas);
  m.def("wholebody_parts", [] {
    py::list parts;
    for (const auto& p : kp::wholebody_parts()) {
      py::dict d;
      d["name"] = p.name;
      d["keys"] = p.layout.keys;
      d["score_key"] = p.layout.score_key;
      d["sigmas"] = p.sigmas;
      parts.append(d);
    }
    return parts;
  });
  m.def("oks_nms", &kp::oks_nms, py::arg("keypoints"), py::arg("scores"), py::arg("areas"), py::arg("sigmas"),
        py::arg("threshold"), py::arg("vis_threshold") = -1.0);
  m.def("oks_pair",
        [](const std::vector<double>& a, const std::vector<double>& b, double area_a, double area_b,
           const std::vector<double>& sigmas, double vis) {
          if (a.size() != 3 * sigmas.size() || b.size() != 3 * sigmas.size())
            throw kp::Error("oks_pair: each pose needs 3 values per sigma (" + std::to_string(3 * sigmas.size()) +
                            ")");
          return kp::oks_pair(a.data(), b.data(), area_a, area_b, sigmas, vis);
        },
        py::arg("a"), py::arg("b"), py::arg("area_a"), py::arg("area_b"), py::arg("sigmas"),
        py::arg("vis_threshold") = -1.0);
  m.def(
      "pck",
      [](const std::vector<double>& pred, const std::vector<double>& gt, const std::vector<uint8_t>& visible,
         const std::vector<double>& normalizer, int64_t k, double alpha) {
        const auto r = kp::pck(pred, gt, visible, normalizer, k, alpha);
        py::dict d;
        d["per_keypoint"] = r.per_keypoint;
        d["mean"] = r.mean;
        d["counted"] = r.counted;
        return d;
      },
      py::arg("pred"), py::arg("gt"), py::arg("visible"), py::arg("normalizer"), py::arg("keypoint_count"),
      py::arg("alpha"));
  m.def("mpii_head_sizes", &kp::mpii_head_sizes, py::arg("head_boxes"));
}
