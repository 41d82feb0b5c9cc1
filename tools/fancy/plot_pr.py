"""Draws the precision-recall curves of a `fancy eval-keypoints` report.

usage: plot_pr.py REPORT.json OUT.png
One panel per category (at most 4): precision against recall at OKS 0.50, 0.75 and
0.95, area "all", as pycocotools' accumulate computes them.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(report_path, out_path):
    with open(report_path) as f:
        report = json.load(f)
    if "parts" in report:  # WholeBody: draw the whole-body part
        report = report["parts"]["wholebody"]
    curves = report["pr_curves"]
    recall = curves["recall"]
    cats = curves["categories"][:4]
    ap = {c["id"]: c["stats"]["AP"] for c in report.get("per_category", [])}
    fig, axes = plt.subplots(1, len(cats), figsize=(5 * len(cats), 4), squeeze=False)
    for ax, cat in zip(axes[0], cats):
        for c in cat["curves"]:
            if round(c["oks"], 2) in (0.5, 0.75, 0.95):
                p = [max(v, 0.0) for v in c["precision"]]
                ax.plot(recall, p, label="OKS %.2f" % c["oks"])
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title("category %s (AP %.3f)" % (cat["category_id"], ap.get(cat["category_id"], report["stats"][0])))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
