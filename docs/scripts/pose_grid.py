#!/usr/bin/env python3
"""Draws people with their keypoints from a COCO keypoint file: ground truth (and, when
given, predictions) over the images, for docs/pose.md.

usage: pose_grid.py GT_JSON IMAGE_DIR OUT_PNG [--results RESULTS_JSON] [--count 18] [--cols 6]

Green: skeleton; red dots: visible (v = 2), yellow: labelled but hidden (v = 1); with
--results the predicted skeleton is drawn in magenta over the ground truth (cyan box).
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402


def draw(ax, k, skeleton, colour, dots):
    for a, b in skeleton:
        if k[3 * (a - 1) + 2] > 0 and k[3 * (b - 1) + 2] > 0:
            ax.plot([k[3 * (a - 1)], k[3 * (b - 1)]], [k[3 * (a - 1) + 1], k[3 * (b - 1) + 1]], "-", lw=1.2,
                    color=colour)
    if dots:
        for j in range(len(k) // 3):
            if k[3 * j + 2] > 0:
                ax.plot(k[3 * j], k[3 * j + 1], "o", ms=2.5, color="red" if k[3 * j + 2] == 2 else "yellow")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gt")
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--results")
    ap.add_argument("--count", type=int, default=18)
    ap.add_argument("--cols", type=int, default=6)
    a = ap.parse_args()
    gt = json.load(open(a.gt))
    skeleton = gt["categories"][0]["skeleton"]
    files = {im["id"]: im["file_name"] for im in gt["images"]}
    preds = {}
    if a.results:
        for r in json.load(open(a.results)):
            preds[r["image_id"]] = [v if i % 3 != 2 else 1 for i, v in enumerate(r["keypoints"])]
    anns = gt["annotations"][: a.count]
    rows = (len(anns) + a.cols - 1) // a.cols
    fig, axs = plt.subplots(rows, a.cols, figsize=(2.2 * a.cols, 2.2 * rows), squeeze=False)
    for ax in axs.flat:
        ax.axis("off")
    for ax, ann in zip(axs.flat, anns):
        im = mpimg.imread(os.path.join(a.images, files[ann["image_id"]]))
        ax.imshow(im)
        if ann["image_id"] in preds:
            draw(ax, preds[ann["image_id"]], skeleton, "magenta", False)
            x, y, w, h = ann["bbox"]
            ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, color="cyan", lw=0.6))
        else:
            draw(ax, ann["keypoints"], skeleton, "lime", True)
    fig.tight_layout()
    fig.savefig(a.out, dpi=80)


if __name__ == "__main__":
    main()
