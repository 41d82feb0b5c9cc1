#!/usr/bin/env python3
"""Checks saved bench_pool tables against issue 2's speed targets.

Usage: build/bench/bench_pool > run1.md; ...; /usr/bin/python3 bench/check_pool_targets.py run1.md run2.md

Per run, every cell is checked against the targets (one thread unless the target says
otherwise):
- at least 1.5x PyTorch where PyTorch reads below 70 % of the streaming read rate;
- no slower than PyTorch where it reads at 70 % or more;
- max, min, average and Lp forward, k2 s2 and k3 s2 p1, at 70 % of the read rate or more
  (one thread, every shape and layout);
- contiguous max_pool2d k2 s2 on 16x64x112x112 at least 20x PyTorch (one thread).
Ratios are read as printed (two decimals). Prints OK or the cells that miss, for each run,
marking the 1.5x misses that would need fancy above x.sum()'s read rate (PyTorch above
66.7 %); exits 1 when any run misses.
"""
import sys

EXTREMES_AND_SUMS = ("max_pool2d", "min_pool2d", "avg_pool2d", "lp_pool2d")


def cells(path):
    for line in open(path, encoding="utf-8"):
        if not line.startswith("| ") or line.startswith("| op"):
            continue
        c = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(c) < 11 or not c[2].isdigit():
            continue
        yield dict(op=c[0], shape=c[1], threads=int(c[2]), ratio=float(c[5].rstrip("×")),
                   bw=int(c[6].rstrip("%")), torch_bw=int(c[7].rstrip("%")))


def misses(cell):
    name = f"{cell['op']} | {cell['shape']} | {cell['threads']} thr"
    if cell["torch_bw"] < 70 and cell["ratio"] < 1.5:
        # 1.5x over PyTorch at torch_bw % needs 1.5 * torch_bw % of the read rate from fancy.
        ceiling = " [needs fancy above the read rate]" if 1.5 * cell["torch_bw"] > 100 else ""
        yield (f"{name}: {cell['ratio']}x with PyTorch at {cell['torch_bw']} % and fancy at {cell['bw']} % "
               f"(needs 1.5x){ceiling}")
    if cell["torch_bw"] >= 70 and cell["ratio"] < 1.0:
        yield f"{name}: {cell['ratio']}x with PyTorch at {cell['torch_bw']} % (needs no slower)"
    one_thread = cell["threads"] == 1
    if (one_thread and cell["op"].startswith(EXTREMES_AND_SUMS)
            and ("k2 s2" in cell["op"] or "k3 s2 p1" in cell["op"]) and cell["bw"] < 70):
        yield f"{name}: {cell['bw']} % of the read rate (needs 70 %)"
    if one_thread and cell["op"] == "max_pool2d k2 s2" and cell["shape"] == "16×64×112×112" and cell["ratio"] < 20:
        yield f"{name}: {cell['ratio']}x (needs 20x)"


def main(paths):
    if not paths:
        sys.exit(__doc__)
    failed = False
    for path in paths:
        found = [m for cell in cells(path) for m in misses(cell)]
        failed = failed or bool(found)
        print(f"{path}: " + ("OK" if not found else "\n  " + "\n  ".join(found)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
