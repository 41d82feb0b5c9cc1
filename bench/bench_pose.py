#!/usr/bin/env python3
"""Benchmark: the stacked hourglass in C++ (fancy) against the same network written in
Python with Debian's PyTorch, at equal threads: training images/s (RMSprop, MSE summed
over the stacks, batch 8) and inference latency (batch 1, eval mode, median of 30).

usage: bench_pose.py [--build build] [--stacks 2] [--features 128] [--input 128] [--repeats 5] [--steps 10]
                     [--precision fp32,bf16]

Both networks are channels-last (NHWC), as fancy's is; bf16 runs the convolutions under
CPU autocast in bfloat16 on both sides (weights stay float32).

Both sides use the same OpenBLAS kernels (OPENBLAS_CORETYPE as the `fancy` command sets
it). Each repeat runs the two back to back (alternating which goes first); the ratio
columns are the median (and range) of the per-pair ratios, the other columns medians.
"""
import argparse
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def python_side(threads, stacks, features, size, batch, steps, bf16):
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Residual(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            m = o // 2
            self.bn1, self.conv1 = nn.BatchNorm2d(i), nn.Conv2d(i, m, 1)
            self.bn2, self.conv2 = nn.BatchNorm2d(m), nn.Conv2d(m, m, 3, padding=1)
            self.bn3, self.conv3 = nn.BatchNorm2d(m), nn.Conv2d(m, o, 1)
            self.skip = None if i == o else nn.Conv2d(i, o, 1)

        def forward(self, x):
            # in place, as pytorch-pose writes it (ReLU(inplace=True), out += residual)
            y = self.conv1(torch.relu_(self.bn1(x)))
            y = self.conv2(torch.relu_(self.bn2(y)))
            y = self.conv3(torch.relu_(self.bn3(y)))
            y += x if self.skip is None else self.skip(x)
            return y

    class Hourglass(nn.Module):
        def __init__(self, n, f):
            super().__init__()
            self.upper, self.before, self.after = Residual(f, f), Residual(f, f), Residual(f, f)
            self.inner = Hourglass(n - 1, f) if n > 1 else Residual(f, f)

        def forward(self, x):
            low = self.after(self.inner(self.before(nn.functional.max_pool2d(x, 2))))
            return self.upper(x) + nn.functional.interpolate(low, scale_factor=2, mode="nearest")

    class StackedHourglass(nn.Module):
        def __init__(self, stacks, f, joints=17):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), Residual(64, 128))
            self.tail = nn.Sequential(Residual(128, 128), Residual(128, f))
            self.hgs = nn.ModuleList([Hourglass(4, f) for _ in range(stacks)])
            self.heads = nn.ModuleList([nn.Sequential(Residual(f, f), nn.Conv2d(f, f, 1), nn.BatchNorm2d(f), nn.ReLU())
                                        for _ in range(stacks)])
            self.out = nn.ModuleList([nn.Conv2d(f, joints, 1) for _ in range(stacks)])
            self.mf = nn.ModuleList([nn.Conv2d(f, f, 1) for _ in range(stacks - 1)])
            self.mh = nn.ModuleList([nn.Conv2d(joints, f, 1) for _ in range(stacks - 1)])

        def forward(self, x):
            x = self.tail(nn.functional.max_pool2d(self.stem(x), 2))
            outs = []
            for s in range(len(self.hgs)):
                feat = self.heads[s](self.hgs[s](x))
                h = self.out[s](feat)
                outs.append(h)
                if s + 1 < len(self.hgs):
                    x = x + self.mf[s](feat) + self.mh[s](h)
            return outs

    net = StackedHourglass(stacks, features).to(memory_format=torch.channels_last)
    opt = torch.optim.RMSprop(net.parameters(), lr=2.5e-4)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    target = torch.rand(batch, 17, size // 4, size // 4)

    def forward(images):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return [h.float() for h in net(images)]

    def step():
        opt.zero_grad()
        loss = sum(((h - target) ** 2).mean() for h in forward(x))
        loss.backward()
        opt.step()

    net.train()
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    train = steps * batch / (time.perf_counter() - t0)
    net.eval()
    one = torch.randn(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    ms = []
    with torch.no_grad():
        for _ in range(5):
            forward(one)
        for _ in range(30):
            t = time.perf_counter()
            forward(one)
            ms.append(1000 * (time.perf_counter() - t))
    ms.sort()
    params = sum(p.numel() for p in net.parameters())
    print("params %d train_img_s %.2f infer_ms %.3f" % (params, train, ms[len(ms) // 2]))


def parse(line):
    f = line.split()
    return int(f[1]), float(f[3]), float(f[5])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--stacks", type=int, default=2)
    ap.add_argument("--features", type=int, default=128)
    ap.add_argument("--input", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16")
    ap.add_argument("--bf16", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--python-side", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.python_side:
        python_side(a.python_side, a.stacks, a.features, a.input, a.batch, a.steps, bool(a.bf16))
        return
    env = dict(os.environ)
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    if "OPENBLAS_CORETYPE" not in env and {"avx512f", "avx512bw", "avx512vl"} <= set(flags):
        env["OPENBLAS_CORETYPE"] = "SkylakeX"  # what the `fancy` command sets; both sides equal
    common = ["--stacks", str(a.stacks), "--features", str(a.features), "--input", str(a.input), "--batch",
              str(a.batch), "--steps", str(a.steps)]
    print("machine: %s, %d CPUs; OPENBLAS_CORETYPE=%s; %d stacks, F %d, %d px, batch %d" % (
        platform.machine(), os.cpu_count(), env.get("OPENBLAS_CORETYPE", "(auto)"), a.stacks, a.features, a.input,
        a.batch))
    print()
    print("| precision | threads | C++ train img/s | Python train img/s | train ratio (range) "
          "| C++ inference ms | Python inference ms | inference ratio (range) |")
    print("|---|---|---|---|---|---|---|---|")
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    for precision, threads in [(p, t) for p in a.precision.split(",") for t in (1, 2)]:
        cpp, py = [], []
        run = common + ["--bf16", str(int(precision == "bf16"))]
        sides = [("cpp", [os.path.join(a.build, "bench", "bench_pose"), "--threads", str(threads), *run]),
                 ("py", [sys.executable, __file__, "--python-side", str(threads), *run])]
        # Pairs run back to back, in alternating order, so a slow spell of this VM hits
        # both sides of a pair; each pair gives one ratio and the table shows their median.
        for r in range(a.repeats):
            for name, cmd in (sides if r % 2 == 0 else sides[::-1]):
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
                (cpp if name == "cpp" else py).append(parse(out))
        assert cpp[0][0] == py[0][0], "parameter counts differ: %d vs %d" % (cpp[0][0], py[0][0])
        train = sorted(c[1] / p[1] for c, p in zip(cpp, py))
        infer = sorted(p[2] / c[2] for c, p in zip(cpp, py))
        print("| %s | %d | %.1f | %.1f | %.2f× (%.2f–%.2f) | %.1f | %.1f | %.2f× (%.2f–%.2f) |" % (
            precision, threads, med([c[1] for c in cpp]), med([p[1] for p in py]), med(train), train[0], train[-1],
            med([c[2] for c in cpp]), med([p[2] for p in py]), med(infer), infer[0], infer[-1]))
    print("\nratio: C++ over Python (higher is faster for C++), parameters %d" % cpp[0][0])


if __name__ == "__main__":
    main()
