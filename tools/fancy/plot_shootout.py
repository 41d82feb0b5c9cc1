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
    names = []
    for r in results:  # one bar per method; with several seeds, the mean and its spread
        if r["method"] not in names:
            names.append(r["method"])

    def stats(key):
        means, stds = [], []
        for n in names:
            v = [r[key] for r in results if r["method"] == n]
            m = sum(v) / len(v)
            means.append(m)
            stds.append((sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0)
        return means, stds

    acc, acc_sd = stats("test_accuracy")
    secs, secs_sd = stats("train_seconds")
    fig, (a, b) = plt.subplots(1, 2, figsize=(max(9, 0.8 * len(names) + 3), 3.8))
    a.bar(names, acc, yerr=acc_sd, color="#4C72B0", capsize=3)
    a.set_ylabel("test accuracy (%)")
    a.set_ylim(max(0, min(acc) - 5), 100)
    b.bar(names, secs, yerr=secs_sd, color="#DD8452", capsize=3)
    b.set_ylabel("training time (s)")
    for ax in (a, b):  # eight or more names: slant them so they do not overlap
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    seeds = report.get("seeds", 1)
    fig.suptitle(f"Fashion-MNIST, {report['epochs']} epoch(s), {report['threads']} thread(s)"
                 + (f", mean ± std over {seeds} seeds" if seeds > 1 else ""))
    fig.tight_layout()
    tmp = png_path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, png_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
