"""Draws the shoot-out chart: test accuracy and training time per pooling method.

usage: plot_shootout.py report.json out.png   (the PNG is written atomically)
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(report_path, png_path):
    with open(report_path) as f:
        report = json.load(f)
    results = report["results"]
    names = [r["method"] for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.bar(names, [r["test_accuracy"] for r in results], color="#4C72B0")
    a.set_ylabel("test accuracy (%)")
    lo = min(r["test_accuracy"] for r in results)
    a.set_ylim(max(0, lo - 5), 100)
    b.bar(names, [r["train_seconds"] for r in results], color="#DD8452")
    b.set_ylabel("training time (s)")
    for ax in (a, b):  # eight or more names: slant them so they do not overlap
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.suptitle(f"Fashion-MNIST, {report['epochs']} epoch(s), {report['threads']} thread(s)")
    fig.tight_layout()
    tmp = png_path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, png_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
