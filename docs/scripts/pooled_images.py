#!/usr/bin/python3
"""One Fashion-MNIST test image and its 2x2/stride-2 pooled output under each method,
side by side (docs/img/pooled.png), plus the numbers behind the chapter's claim: how much
of the background (mean) and of the local texture (variance inside the object) each
method keeps.

    PYTHONPATH=python FANCY_LIBRARY=build/lib/libfancy.so /usr/bin/python3 docs/scripts/pooled_images.py
"""
import gzip
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import fancy  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def load(index):
    with gzip.open(DATA, "rb") as f:
        raw = f.read()
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    return torch.tensor(images[index] / 255.0, dtype=torch.float64).view(1, 1, 28, 28)


def methods():
    gen = torch.Generator().manual_seed(0)
    return [
        ("max", lambda x: fancy.max_pool2d(x, 2)),
        ("average", lambda x: fancy.avg_pool2d(x, 2)),
        ("min", lambda x: fancy.min_pool2d(x, 2)),
        ("L2 / 2 (RMS)", lambda x: fancy.lp_pool2d(x, 2.0, 2) / 2),  # shown as a root mean square
        ("SoftPool", lambda x: fancy.soft_pool2d(x * 10, 2) / 10),  # temperature: pixels in [0, 1]
        ("stochastic (train)", lambda x: fancy.stochastic_pool2d(x, 2, training=True, generator=gen)),
        ("stochastic (eval)", lambda x: fancy.stochastic_pool2d(x, 2, training=False)),
        ("GeM p=3", lambda x: fancy.gem_pool(x, 3.0, kernel_size=2)),
    ]


def main(out_png, index=0):
    x = load(index)
    rows = methods()
    fig, axes = plt.subplots(1, len(rows) + 1, figsize=(2.0 * (len(rows) + 1), 2.4))
    axes[0].imshow(x[0, 0], cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("input 28×28", fontsize=9)
    print("| method | mean of background (input 0 there) | mean inside the object | variance inside the object |")
    print("|---|---:|---:|---:|")
    obj = fancy.max_pool2d((x > 0.05).double(), 2) > 0   # pooled cells touching the object
    bg = ~obj
    for ax, (name, fn) in zip(axes[1:], rows):
        y = fn(x)
        ax.imshow(y[0, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{name}", fontsize=9)
        inside = y[obj]
        print(f"| {name} | {y[bg].mean().item():.4f} | {inside.mean().item():.4f} | {inside.var().item():.4f} |")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    tmp = out_png + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out_png)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img/pooled.png")
