"""Charts for the seq2seq commands.

usage: plot_seq2seq.py curve HISTORY.json OUT.png     (dev WER and train loss over time)
       plot_seq2seq.py attention ATT.json OUT.png     (source x target attention weights)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curve(path, out):
    h = json.load(open(path))
    minutes = [p["seconds"] / 60 for p in h]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(minutes, [100 * p["dev_wer"] for p in h], "o-", label="dev WER (greedy, %)")
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("dev WER (%)")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(minutes, [p["train_loss"] for p in h], "s--", color="tab:orange", label="train loss")
    ax2.set_ylabel("train loss (label-smoothed)")
    fig.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def attention(path, out):
    items = json.load(open(path))
    fig, axes = plt.subplots(1, len(items), figsize=(4 * len(items), 4), squeeze=False)
    for ax, it in zip(axes[0], items):
        w = [row[: len(it["source"])] for row in it["weights"]]  # drop the batch's padding
        ax.imshow(w, cmap="Greys", aspect="auto", vmin=0, vmax=1)
        ax.set_xticks(range(len(it["source"])))
        ax.set_xticklabels(it["source"])
        ax.set_yticks(range(len(it["target"][: len(w)])))
        ax.set_yticklabels(it["target"][: len(w)])
        ax.set_xlabel("letters")
        ax.set_ylabel("phones")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("curve", "attention"):
        sys.exit(__doc__)
    (curve if sys.argv[1] == "curve" else attention)(sys.argv[2], sys.argv[3])
