"""Chart of `fancy prune`: accuracy against the share of conv filters removed, and the
measured inference speed-up of each pruned network. Usage: plot_prune.py results.json out.png"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        res = json.load(f)
    runs = res["runs"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for r in runs:
        removed = 100.0 * (r["filters"] - r["kept"]) / r["filters"]
        chapter = r["penalty"] != "group_lasso"
        label = ("sum of squares (chapter) " if chapter else "group lasso ") + "λ=%g" % r["lambda"]
        final = r["finetuned_accuracy"] if r.get("finetuned_accuracy", -1) >= 0 else r["pruned_accuracy"]
        ax1.scatter(removed, final, marker="x" if chapter else "o", s=60, label=label)
    ax1.set_xlabel("conv filters removed (%)")
    ax1.set_ylabel("test accuracy of the pruned network (%)")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    names = [("SoS " if r["penalty"] != "group_lasso" else "") + "λ=%g" % r["lambda"] for r in runs]
    ax2.bar(names, [r["ms"] / r["pruned_ms"] for r in runs], color="tab:green")
    ax2.axhline(1.0, color="grey", lw=0.8)
    ax2.set_ylabel("inference speed-up of the pruned network (×)")
    ax2.set_title("batch %d, %d thread(s)" % (res["bench_batch"], res["threads"]), fontsize=9)
    ax2.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    tmp = dst + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
