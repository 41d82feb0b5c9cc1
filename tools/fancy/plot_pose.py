#!/usr/bin/env python3
"""Learning curve of `fancy pose train`: training loss and validation OKS AP against minutes.

usage: plot_pose.py HISTORY_JSON OUT_PNG [LABEL=HISTORY_JSON ...]
Extra LABEL=HISTORY pairs are drawn on the same axes (ablations).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs = [("", sys.argv[1])] + [tuple(a.split("=", 1)) for a in sys.argv[3:]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, path in runs:
        h = json.load(open(path))
        pts = [p for p in h if p["train_loss"] > 0]
        ax1.plot([p["minutes"] for p in pts], [p["train_loss"] for p in pts], marker=".", label=label or None)
        ax2.plot([p["minutes"] for p in h], [p["val_ap"] for p in h], marker=".", label=label or None)
    ax1.set_xlabel("minutes")
    ax1.set_ylabel("training loss (MSE, summed over stacks)")
    ax1.set_yscale("log")
    ax2.set_xlabel("minutes")
    ax2.set_ylabel("validation OKS AP")
    ax2.set_ylim(0, 1)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
