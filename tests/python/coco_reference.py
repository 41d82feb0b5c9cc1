"""An independent, deliberately plain numpy implementation of COCO keypoint evaluation,
written from the rules in design.md section 7 (pycocotools' cocoeval.py behaviour), to
check fancy's C++ evaluator on large random pairs. Slow; for tests only.
"""
import numpy as np

SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0
AREAS = [[0 ** 2, 1e5 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]


def _oks(dts, gts, sigmas):
    out = np.zeros((len(dts), len(gts)))
    var = (sigmas * 2) ** 2
    for j, g in enumerate(gts):
        kg = np.array(g["keypoints"], dtype=float)
        xg, yg, vg = kg[0::3], kg[1::3], kg[2::3]
        visible = vg > 0
        bx, by, bw, bh = g["bbox"]
        for i, d in enumerate(dts):
            kd = np.array(d["keypoints"], dtype=float)
            xd, yd = kd[0::3], kd[1::3]
            if visible.any():
                dx, dy = xd - xg, yd - yg
            else:
                zero = np.zeros(len(sigmas))
                dx = np.max((zero, (bx - bw) - xd), axis=0) + np.max((zero, xd - (bx + bw * 2)), axis=0)
                dy = np.max((zero, (by - bh) - yd), axis=0) + np.max((zero, yd - (by + bh * 2)), axis=0)
            e = (dx ** 2 + dy ** 2) / var / (g["area"] + np.spacing(1)) / 2
            if visible.any():
                e = e[visible]
            out[i, j] = np.sum(np.exp(-e)) / e.shape[0]
    return out


def evaluate(gt, results, sigmas=SIGMAS, max_det=20):
    """gt: a COCO dict; results: a list of dicts. Returns the 10 summary numbers."""
    image_ids = sorted(img["id"] for img in gt["images"])
    cat_ids = sorted(c["id"] for c in gt["categories"])
    gts, dts = {}, {}
    for g in gt["annotations"]:
        g = dict(g)
        g["_ig"] = bool(g.get("iscrowd", 0)) or g["num_keypoints"] == 0
        gts.setdefault((g["image_id"], g["category_id"]), []).append(g)
    first_has_box = bool(results) and "bbox" in results[0]
    for n, d in enumerate(results):
        d = dict(d)
        d["id"] = n + 1
        if first_has_box:
            d["area"] = d["bbox"][2] * d["bbox"][3]
        else:
            x, y = d["keypoints"][0::3], d["keypoints"][1::3]
            d["area"] = (max(x) - min(x)) * (max(y) - min(y))
        dts.setdefault((d["image_id"], d["category_id"]), []).append(d)

    thresholds = np.linspace(.5, 0.95, 10)
    recall_points = np.linspace(.0, 1.00, 101)
    T, R, K, A = len(thresholds), len(recall_points), len(cat_ids), len(AREAS)
    precision = -np.ones((T, R, K, A))
    recall = -np.ones((T, K, A))
    for k, cat in enumerate(cat_ids):
        per_image = []
        for img in image_ids:
            g_all = gts.get((img, cat), [])
            d_all = dts.get((img, cat), [])
            order = np.argsort([-d["score"] for d in d_all], kind="mergesort")
            d_all = [d_all[i] for i in order][:max_det]
            ious = _oks(d_all, g_all, sigmas) if g_all and d_all else None
            per_image.append((g_all, d_all, ious))
        for a, (lo, hi) in enumerate(AREAS):
            scores, matched, ignored, npig, present = [], [], [], 0, False
            for g_all, d_all, ious in per_image:
                if not g_all and not d_all:
                    continue
                present = True
                g_ig = np.array([g["_ig"] or g["area"] < lo or g["area"] > hi for g in g_all], dtype=bool)
                gorder = np.argsort(g_ig, kind="mergesort")
                g_sorted = [g_all[i] for i in gorder]
                g_ig = g_ig[gorder]
                npig += int(np.count_nonzero(~g_ig))
                D = len(d_all)
                dtm = np.zeros((T, D))
                dt_ig = np.zeros((T, D), dtype=bool)
                if ious is not None:
                    ious_sorted = ious[:, gorder]
                    gtm = np.zeros((T, len(g_sorted)))
                    for t, thr in enumerate(thresholds):
                        for di in range(D):
                            best, m = min(thr, 1 - 1e-10), -1
                            for gi, g in enumerate(g_sorted):
                                if gtm[t, gi] > 0 and not g.get("iscrowd", 0):
                                    continue
                                if m > -1 and not g_ig[m] and g_ig[gi]:
                                    break
                                if ious_sorted[di, gi] < best:
                                    continue
                                best, m = ious_sorted[di, gi], gi
                            if m == -1:
                                continue
                            dt_ig[t, di] = g_ig[m]
                            dtm[t, di] = g_sorted[m]["id"]
                            gtm[t, m] = d_all[di]["id"]
                out = np.array([d["area"] < lo or d["area"] > hi for d in d_all], dtype=bool)
                dt_ig = dt_ig | ((dtm == 0) & out[None, :])
                scores += [d["score"] for d in d_all]
                matched.append(dtm)
                ignored.append(dt_ig)
            if not present or npig == 0:
                continue
            scores = np.array(scores)
            order = np.argsort(-scores, kind="mergesort")
            dtm = np.concatenate(matched, axis=1)[:, order] if matched else np.zeros((T, 0))
            dt_ig = np.concatenate(ignored, axis=1)[:, order] if ignored else np.zeros((T, 0), dtype=bool)
            tps = np.logical_and(dtm, ~dt_ig)
            fps = np.logical_and(np.logical_not(dtm), ~dt_ig)
            tp_sum = np.cumsum(tps, axis=1).astype(float)
            fp_sum = np.cumsum(fps, axis=1).astype(float)
            for t in range(T):
                tp, fp = tp_sum[t], fp_sum[t]
                rc = tp / npig
                pr = tp / (fp + tp + np.spacing(1))
                recall[t, k, a] = rc[-1] if len(tp) else 0
                pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
                idx = np.searchsorted(rc, recall_points, side="left")
                q = np.zeros(R)
                valid = idx < len(pr)
                q[valid] = pr[idx[valid]]
                precision[t, :, k, a] = q

    def mean(s):
        s = s[s > -1]
        return -1 if len(s) == 0 else np.mean(s)

    t50, t75 = np.where(thresholds == .5)[0], np.where(thresholds == .75)[0]
    stats = []
    for arr in (precision, recall):
        stats += [mean(arr[..., 0]), mean(arr[t50][..., 0]), mean(arr[t75][..., 0]), mean(arr[..., 1]),
                  mean(arr[..., 2])]
    return [float(v) for v in stats]
