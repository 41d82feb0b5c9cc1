"""COCO keypoint evaluation with pycocotools' exact numbers, without torch.

    from fancy.keypoints import evaluate
    result = evaluate("person_keypoints_val2017.json", "results.json")
    result["stats"]          # AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl

A drop-in for pycocotools' keypoint evaluation:

    from fancy.keypoints import COCO, COCOeval      # was: from pycocotools...
    gt = COCO("gt.json"); dt = gt.loadRes("results.json")
    E = COCOeval(gt, dt, "keypoints"); E.evaluate(); E.accumulate(); E.summarize()
    E.stats

The work is done by the C++ library (fancy::keypoints) through _fancy_keypoints, a
pybind11 module found through $FANCY_KEYPOINTS_MODULE, next to this package, or in
the source tree's build/lib.
"""
import json
import os

from ._native import load_extension

__all__ = [
    "evaluate",
    "load_ground_truth",
    "load_results",
    "results_from_arrays",
    "oks_nms",
    "oks_pair",
    "pck",
    "mpii_head_sizes",
    "coco_sigmas",
    "crowdpose_sigmas",
    "wholebody_parts",
    "COCO",
    "COCOeval",
    "KeypointsError",
]


_k = load_extension('_fancy_keypoints', 'FANCY_KEYPOINTS_MODULE')
KeypointsError = _k.KeypointsError  # a ValueError
coco_sigmas = _k.coco_sigmas
crowdpose_sigmas = _k.crowdpose_sigmas
wholebody_parts = _k.wholebody_parts
mpii_head_sizes = _k.mpii_head_sizes
oks_pair = _k.oks_pair


def _keys(keys, score_key):
    return list(keys) if keys else [], score_key


def load_ground_truth(gt, keys=None, score_key="score"):
    """Ground truth from a path, a JSON string or a dict in COCO format."""
    if isinstance(gt, _k.GroundTruth):
        return gt
    k, s = _keys(keys, score_key)
    if isinstance(gt, dict):
        return _k.parse_ground_truth(json.dumps(gt), "<dict>", k, s)
    if isinstance(gt, (str, os.PathLike)):
        text = os.fspath(gt)
        if text.lstrip().startswith("{"):
            return _k.parse_ground_truth(text, "<string>", k, s)
        return _k.load_ground_truth(text, k, s)
    raise TypeError("fancy.keypoints: ground truth must be a path, a JSON string or a dict, got " + type(gt).__name__)


def results_from_arrays(image_id, category_id, score, keypoints, bbox=None):
    """Results from arrays: N image ids, N category ids, N scores, N x K x 3 keypoints
    and optionally N x 4 boxes (areas then come from the boxes, as pycocotools' loadRes)."""
    return _k.detections_from_arrays(image_id, category_id, score, keypoints, bbox)


def load_results(dt, keys=None, score_key="score"):
    """Results from a path, a JSON string, a list of dicts or a dict of arrays
    (image_id, category_id, score, keypoints[, bbox])."""
    if isinstance(dt, _k.Detections):
        return dt
    k, s = _keys(keys, score_key)
    if isinstance(dt, list):
        return _k.parse_detections(json.dumps(dt), "<list>", k, s)
    if isinstance(dt, dict):
        return results_from_arrays(dt["image_id"], dt["category_id"], dt["score"], dt["keypoints"], dt.get("bbox"))
    if isinstance(dt, (str, os.PathLike)):
        text = os.fspath(dt)
        if text.lstrip().startswith("["):
            return _k.parse_detections(text, "<string>", k, s)
        return _k.load_detections(text, k, s)
    raise TypeError("fancy.keypoints: results must be a path, a JSON string, a list of dicts or a dict of "
                    "arrays, got " + type(dt).__name__)


def evaluate(gt, dt, *, sigmas=None, area_from_box=False, crowdpose=False, wholebody=False,
             rules="pycocotools", categories=None, images=None, max_dets=(20,), match_gt_id_zero=False,
             keep_ignore_field=False, threads=0):
    """Evaluates keypoint results against COCO ground truth as pycocotools does.

    Returns a dict: "stats" (the 10 summary numbers), "summary" (by name),
    "summary_text" (pycocotools' printout), "per_category", "per_keypoint",
    "precision"/"recall" (flat, C order, shapes [T,R,K,A,M] / [T,K,A,M]), the
    thresholds, "crowd" (CrowdPose) and "timings_s". With wholebody=True: one such
    dict per part under "parts" and the whole-body "stats".
    """
    options = dict(
        sigmas=list(sigmas) if sigmas is not None else [],
        rules=rules,
        area_from_box=area_from_box,
        image_ids=list(images or []),
        category_ids=list(categories or []),
        max_dets=list(max_dets),
        match_gt_id_zero=match_gt_id_zero,
        keep_ignore_field=keep_ignore_field,
        threads=threads,
    )
    if crowdpose:
        if sigmas is None:
            options["sigmas"] = crowdpose_sigmas()
        options.update(rules="xtcocotools", area_from_box=True, crowd_split=True)
    if wholebody:
        options["rules"] = "xtcocotools"
        parts = {}
        for part in wholebody_parts():
            g = load_ground_truth(gt, part["keys"], part["score_key"])
            d = load_results(dt, part["keys"], part["score_key"])
            parts[part["name"]] = _k.evaluate(g, d, **dict(options, sigmas=part["sigmas"]))
        return {"parts": parts, "stats": parts["wholebody"]["stats"]}
    if _is_path(gt, "{") and _is_path(dt, "["):  # both files: loaded concurrently in C++
        return _k.evaluate_files(os.fspath(gt), os.fspath(dt), **options)
    return _k.evaluate(load_ground_truth(gt), load_results(dt), **options)


def _is_path(x, json_start):
    return isinstance(x, (str, os.PathLike)) and not os.fspath(x).lstrip().startswith(json_start)


def oks_nms(keypoints, scores, areas, sigmas=None, threshold=0.9, vis_threshold=None):
    """OKS non-maximum suppression (HRNet / mmpose): indices of the kept poses, best
    first. keypoints: N x K x 3 (nested lists or an array)."""
    flat = [float(v) for pose in keypoints for kp in pose for v in kp] if _nested(keypoints) else \
        [float(v) for v in _flatten(keypoints)]
    sig = list(sigmas) if sigmas is not None else coco_sigmas()
    return _k.oks_nms(flat, [float(s) for s in scores], [float(a) for a in areas], sig, float(threshold),
                      -1.0 if vis_threshold is None else float(vis_threshold))


def pck(pred, gt, visible, normalizer, alpha=0.2):
    """PCK@alpha: share of visible keypoints within alpha * normalizer of the truth.
    pred, gt: N x K x 2; visible: N x K; normalizer: N (e.g. mpii_head_sizes(...) for
    PCKh, or the box size). Returns {"per_keypoint", "mean", "counted"}."""
    n = len(normalizer)
    p = [float(v) for v in _flatten(pred)]
    k = len(p) // (2 * n) if n else 0
    return _k.pck(p, [float(v) for v in _flatten(gt)], [1 if v else 0 for v in _flatten(visible)],
                  [float(v) for v in normalizer], k, float(alpha))


def _nested(x):
    return isinstance(x, (list, tuple)) and x and isinstance(x[0], (list, tuple)) and x[0] and \
        isinstance(x[0][0], (list, tuple))


def _flatten(x):
    if hasattr(x, "reshape"):
        return x.reshape(-1).tolist()
    out = []
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        else:
            out.append(v)
    return out


# --- pycocotools-style classes ------------------------------------------------------

class COCO:
    """The part of pycocotools.coco.COCO that keypoint evaluation uses."""

    def __init__(self, annotation_file=None, _gt=None, _results=None):
        # annotation_file: a path, as pycocotools takes, or a COCO dict / JSON string.
        self._gt = _gt if _gt is not None else (load_ground_truth(annotation_file) if annotation_file else None)
        self._results = _results
        self._source = annotation_file

    def getImgIds(self):
        return sorted(self._gt.image_ids)

    def getCatIds(self):
        return sorted(self._gt.category_ids)

    def loadRes(self, resFile):
        """Results from a path, a list of dicts, or a dict of arrays (see load_results)."""
        return COCO(_gt=self._gt, _results=load_results(resFile))


class Params:
    """pycocotools' keypoint Params; imgIds, catIds, maxDets and kpt_oks_sigmas may be set."""

    def __init__(self, iouType="keypoints"):
        if iouType != "keypoints":
            raise ValueError("fancy.keypoints.COCOeval: iouType '" + str(iouType) + "' is not supported; "
                             "only 'keypoints'")
        self.iouType = iouType
        self.imgIds = []
        self.catIds = []
        self.iouThrs = _linspace(0.5, 0.95, 10)
        self.recThrs = _linspace(0.0, 1.0, 101)
        self.maxDets = [20]
        self.areaRng = [[0 ** 2, 1e5 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
        self.areaRngLbl = ["all", "medium", "large"]
        self.useCats = 1
        self.kpt_oks_sigmas = coco_sigmas()


def _linspace(start, stop, num):
    step = (stop - start) / (num - 1)
    y = [i * step + start for i in range(num)]
    y[-1] = stop
    return y


class COCOeval:
    """Swap-in for pycocotools.cocoeval.COCOeval(iouType="keypoints")."""

    def __init__(self, cocoGt=None, cocoDt=None, iouType="keypoints"):
        self.cocoGt = cocoGt
        self.cocoDt = cocoDt
        self.params = Params(iouType)
        if cocoGt is not None:
            self.params.imgIds = cocoGt.getImgIds()
            self.params.catIds = cocoGt.getCatIds()
        self.eval = {}
        self.stats = []
        self._result = None

    def evaluate(self):
        p = self.params
        if list(p.iouThrs) != _linspace(0.5, 0.95, 10) or list(p.recThrs) != _linspace(0.0, 1.0, 101) or \
                [list(a) for a in p.areaRng] != [[0, 1e10], [1024, 9216], [9216, 1e10]] or not p.useCats:
            raise ValueError("fancy.keypoints.COCOeval: only imgIds, catIds, maxDets and kpt_oks_sigmas may be "
                             "changed (thresholds, area ranges and useCats are pycocotools' defaults)")
        self._result = _k.evaluate(self.cocoGt._gt, self.cocoDt._results, sigmas=[float(s) for s in p.kpt_oks_sigmas],
                                   image_ids=[int(i) for i in p.imgIds], category_ids=[int(c) for c in p.catIds],
                                   max_dets=[int(m) for m in p.maxDets])

    def accumulate(self):
        if self._result is None:
            raise RuntimeError("fancy.keypoints.COCOeval: run evaluate() first")
        r = self._result
        T, R, K, A, M = (len(r["iou_thresholds"]), len(r["recall_thresholds"]), len(r["category_ids"]),
                         len(r["area_labels"]), len(r["max_dets"]))
        try:
            import numpy as np

            shape = lambda v, s: np.asarray(v, dtype=np.float64).reshape(s)  # noqa: E731
        except ImportError:  # plain nested lists would do, but keep the flat ones
            shape = lambda v, s: v  # noqa: E731
        self.eval = {
            "params": self.params,
            "counts": [T, R, K, A, M],
            "precision": shape(r["precision"], (T, R, K, A, M)),
            "recall": shape(r["recall"], (T, K, A, M)),
            "scores": shape(r["scores"], (T, R, K, A, M)),
        }

    def summarize(self):
        if not self.eval:
            raise RuntimeError("fancy.keypoints.COCOeval: run accumulate() first")
        print(self._result["summary_text"], end="")
        try:
            import numpy as np

            self.stats = np.asarray(self._result["stats"])
        except ImportError:
            self.stats = list(self._result["stats"])

    def run(self):
        self.evaluate()
        self.accumulate()
        self.summarize()
        return self.stats
