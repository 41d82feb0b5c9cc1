#!/usr/bin/python3
"""Pooling windows outside bench_pool's cells (k2 s2, k3 s2 p1, adaptive, global) against
PyTorch's native ops: strides equal to the kernel (max_pool2d(x, 3)), stride-1 and dilated
windows, with and without indices, contiguous and channels-last, forward only. Both sides
at the same thread count in the same run; the ratio is PyTorch / fancy; BW % is fancy's
bytes in + out per second as a share of x.sum()'s read rate on the same tensor.

    FANCY_LIBRARY=build/lib/libfancy.so bench/bench_pool_windows.py [--threads 1 2]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fancy  # noqa: E402

SHAPES = [(64, 32, 28, 28), (16, 64, 112, 112)]
# (op, kernel, stride, padding, dilation, return_indices)
CASES = [("max", 3, 3, 0, 1, False), ("max", 4, 4, 0, 1, False), ("max", 5, 5, 0, 1, False),
         ("max", 5, 1, 2, 1, False), ("max", 7, 2, 3, 1, False), ("max", 3, 1, 1, 2, False),
         ("min", 3, 3, 0, 1, False), ("avg", 3, 3, 0, 1, False), ("avg", 5, 1, 2, 1, False),
         ("lp2", 3, 3, 0, 1, False), ("max", 3, 3, 0, 1, True), ("max", 2, 3, 0, 1, True),
         ("max", 4, 4, 0, 1, True)]


def median_ms(f, seconds=0.3):
    for _ in range(3):
        f()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def pair(op, x, k, s, p, d, idx):
    if op == "max":
        return (lambda: fancy.max_pool2d(x, k, s, p, d, return_indices=idx),
                lambda: F.max_pool2d(x, k, s, p, d, return_indices=idx))
    if op == "min":
        return lambda: fancy.min_pool2d(x, k, s, p, d), lambda: -F.max_pool2d(-x, k, s, p, d)
    if op == "avg":
        return lambda: fancy.avg_pool2d(x, k, s, p), lambda: F.avg_pool2d(x, k, s, p)
    return lambda: fancy.lp_pool2d(x, 2.0, k, s), lambda: F.lp_pool2d(x, 2.0, k, s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    args = ap.parse_args()
    print("| op | window | indices | shape | layout | thr | fancy ms | PyTorch ms | ratio | BW % |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for shape in SHAPES:
            base = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
            for layout, x in (("contiguous", base), ("CL", base.contiguous(memory_format=torch.channels_last))):
                read = median_ms(lambda: x.sum())
                for op, k, s, p, d, idx in CASES:
                    ours, theirs = pair(op, x, k, s, p, d, idx)
                    out = ours()
                    y = out[0] if idx else out
                    a, b = median_ms(ours), median_ms(theirs)
                    bw = 100 * read * (x.numel() + y.numel()) / x.numel() / a
                    window = f"{k}×{k}/{s}" + (f" pad {p}" if p else "") + (f" dil {d}" if d > 1 else "")
                    print(f"| {op} | {window} | {'yes' if idx else 'no'} | {'×'.join(map(str, shape))} | {layout} | "
                          f"{threads} | {a:.3f} | {b:.3f} | {b / a:.2f} | {bw:.0f} |", flush=True)


if __name__ == "__main__":
    main()
