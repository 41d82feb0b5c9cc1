#!/usr/bin/python3
"""fancy.batch_norm_relu against torch's batch_norm followed by relu (in place, as a
pre-activation block writes it), training mode, forward and forward+backward, at 1 and 2
threads: median of repeats, both sides in the same run, ratio = torch / fancy.

Shapes are the stacked hourglass's (batch 8, 128 px input: 64×64 and 32×32 maps), in
channels-last, the layout fancy's hourglass uses, and one contiguous (NCHW) case.

    make bench-norm             # or: FANCY_LIBRARY=build/lib/libfancy.so bench/bench_norm.py
"""
import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fancy  # noqa: E402

CASES = [((8, 128, 64, 64), True), ((8, 64, 64, 64), True), ((8, 128, 32, 32), True), ((8, 64, 32, 32), True),
         ((8, 128, 16, 16), True), ((8, 128, 64, 64), False)]


def ours(x, rm, rv, w, b):
    return fancy.batch_norm_relu(x, rm, rv, w, b, True, 0.1, 1e-5)


def theirs(x, rm, rv, w, b):
    return torch.relu_(F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5))


def timed(fn, backward, x, args, g, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        y = fn(x, *args)
        if backward:
            y.backward(g)
        times.append(time.perf_counter() - t)
        x.grad = None
    return statistics.median(times) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    a = ap.parse_args()
    print("machine: %s, %d CPUs, torch %s; training mode, float32; median of %d" % (
        platform.machine(), os.cpu_count(), torch.__version__, a.repeats))
    print()
    print("| shape | layout | threads | torch fwd ms | fancy fwd ms | ratio | torch fwd+bwd ms | fancy fwd+bwd ms | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape, cl in CASES:
        torch.manual_seed(0)
        fmt = torch.channels_last if cl else torch.contiguous_format
        x = (torch.randn(shape) * 2 + 1).contiguous(memory_format=fmt).requires_grad_()
        g = torch.randn(shape).contiguous(memory_format=fmt)
        C = shape[1]
        w, b = torch.rand(C) + 0.5, torch.randn(C) * 0.1
        args = (torch.zeros(C), torch.ones(C), w, b)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row = []
            for backward in (False, True):
                with torch.set_grad_enabled(backward):
                    timed(theirs, backward, x, args, g, 3)  # warm-up
                    timed(ours, backward, x, args, g, 3)
                    t = timed(theirs, backward, x, args, g, a.repeats)
                    o = timed(ours, backward, x, args, g, a.repeats)
                row += [t, o, t / o]
            print("| %s | %s | %d | %.2f | %.2f | %.2f× | %.2f | %.2f | %.2f× |" % (
                "×".join(map(str, shape)), "NHWC" if cl else "NCHW", threads, *row))


if __name__ == "__main__":
    main()
