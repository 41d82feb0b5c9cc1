#!/usr/bin/python3
"""fancy's fused pooling ops against the PyTorch compositions they replace.

For each op: forward and forward+backward time at 1 and 2 threads (median of repeats,
both sides at the same thread count, in the same run), the ratio composition / fancy, and
the memory of one forward+backward in a fresh process: the forward's peak extra RSS
(output included) and the backward's peak extra RSS beyond the input gradient it returns.

    make bench-fancy            # or: FANCY_LIBRARY=build/lib/libfancy.so bench/bench_fancy_pool.py
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fancy  # noqa: E402

BIG = (16, 64, 112, 112)


def _softpool_torch(x):
    # The official SoftPool's CPU path: exp, then two average pools (no max subtracted).
    e = x.exp()
    return F.avg_pool2d(x * e, 2) / F.avg_pool2d(e, 2)


def _stochastic_torch(x):
    # unfold + multinomial, the usual PyTorch recipe (eps keeps all-zero windows legal).
    n, c, h, w = x.shape
    u = F.unfold(x, 2, stride=2).view(n, c, 4, -1).permute(0, 1, 3, 2).reshape(-1, 4)
    idx = torch.multinomial(u + 1e-12, 1)
    return u.gather(1, idx).view(n, c, h // 2, w // 2)


def _lip_torch(x, logits):
    e = logits.exp()
    return F.avg_pool2d(x * e, 2) / F.avg_pool2d(e, 2)


def _sort_torch(x, w):
    n, c, h, ww = x.shape
    win = x.unfold(2, 2, 2).unfold(3, 2, 2).reshape(n, c, h // 2, ww // 2, 4)
    return (win.sort(-1, descending=True).values[..., : w.numel()] * w.softmax(0)).sum(-1)


def _kmax_torch(x):
    idx = x.topk(5, -1).indices.sort(-1).values
    return x.gather(-1, idx)


def _gem_torch(x, p):
    return x.clamp(min=1e-6).pow(p).mean((2, 3)).pow(1.0 / p)


def _mixed_torch(x, a):
    return a * F.max_pool2d(x, 2) + (1 - a) * F.avg_pool2d(x, 2)


def cases():
    """name -> (make inputs, fancy fn, torch fn); inputs[0] gets the gradient."""
    g = torch.Generator().manual_seed(0)

    def relu_big():
        return [torch.randn(*BIG, generator=g).relu_()]

    def big():
        return [torch.randn(*BIG, generator=g)]

    return {
        "soft_pool2d k2": (big, lambda x: fancy.soft_pool2d(x, 2), _softpool_torch),
        "lip_pool2d k2": (lambda: big() + [torch.randn(*BIG, generator=g)],
                          lambda x, l: fancy.lip_pool2d(x, l, 2), _lip_torch),
        "stochastic_pool2d k2 (train)": (relu_big, lambda x: fancy.stochastic_pool2d(x, 2, training=True),
                                         _stochastic_torch),
        "stochastic_pool2d k2 8x64x56x56": (lambda: [torch.randn(8, 64, 56, 56, generator=g).relu_()],
                                            lambda x: fancy.stochastic_pool2d(x, 2, training=True),
                                            _stochastic_torch),
        "sort_pool2d k2, 3 ranks": (lambda: big() + [torch.tensor([0.5, 0.3, 0.2])],
                                    lambda x, w: fancy.sort_pool2d(x, w, 2), _sort_torch),
        "kmax_pool 64x300x400 k5": (lambda: [torch.randn(64, 300, 400, generator=g)],
                                    lambda x: fancy.kmax_pool(x, 5)[0], _kmax_torch),
        "gem_pool (global, p=3)": (lambda: big() + [torch.tensor(3.0)], lambda x, p: fancy.gem_pool(x, p), _gem_torch),
        # A p that is not a whole number (a learnt one): z^p as e^(p ln z).
        "gem_pool (global, p=2.5)": (lambda: big() + [torch.tensor(2.5)], lambda x, p: fancy.gem_pool(x, p),
                                     _gem_torch),
        "mixed_pool2d k2": (lambda: big() + [torch.tensor(0.4)], lambda x, a: fancy.mixed_pool2d(x, a, 2), _mixed_torch),
    }


def alternating(fns, reps):
    """Median ms of each fn, timed in alternation (fancy, torch, fancy, ...) so that this
    VM's drifts in speed hit both sides alike."""
    for fn in fns:
        fn()
    ts = [[] for _ in fns]
    for _ in range(reps):
        for t, fn in zip(ts, fns):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in ts]


def measure_time(name, threads, reps):
    make, ours, theirs = cases()[name]
    torch.set_num_threads(threads)
    inputs = make()
    x = inputs[0]
    rest = inputs[1:]
    out = {}
    out["fancy_fwd"], out["torch_fwd"] = alternating([lambda: ours(x, *rest), lambda: theirs(x, *rest)], reps)
    xg = x.clone().requires_grad_()

    def fb(fn):
        def run():
            y = fn(xg, *rest)
            y.sum().backward()
            xg.grad = None
        return run
    out["fancy_fb"], out["torch_fb"] = alternating([fb(ours), fb(theirs)], reps)
    return out


def peak_memory_mb(name, side):
    """(forward, backward, output) MB of one forward+backward in a fresh process: see
    memory_child."""
    cmd = [sys.executable, os.path.abspath(__file__), "--memory", name, side]
    # A fixed mmap threshold: every buffer of 64 KB or more is mapped and unmapped on its
    # own, so RSS follows the live tensors (glibc's adaptive threshold would otherwise keep
    # freed buffers in its heap and hide later allocations).
    # fancy's cache of large blocks off too (FANCY_LARGE_CACHE=0): a block the warm-up
    # freed would otherwise be reused and the allocation would not show.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", FANCY_LARGE_CACHE="0")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return [float(v) for v in r.stdout.split()]


def memory_child(name, side):
    """Prints three figures (MB): the forward's peak extra RSS (the output, what it keeps
    for the backward, and its temporaries), the backward's peak extra RSS beyond the input
    gradient it returns (its temporaries; the incoming gradient exists beforehand, as in a
    network), and the output's size. A fused op has no full-size temporaries when the
    first is about the output (plus what it saves) and the second is near zero."""
    make, ours, theirs = cases()[name]
    torch.set_num_threads(1)
    inputs = make()
    x = inputs[0].requires_grad_()
    fn = ours if side == "fancy" else theirs

    def peak_mb(step):
        # Reset the kernel's peak-RSS mark (VmHWM), run the step, read the mark back.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status_kb("VmRSS")
        out = step()
        return out, (_status_kb("VmHWM") - base) / 1024.0

    fn(x, *inputs[1:]).sum().backward()  # warm-up: code pages and thread stacks come in
    x.grad = None
    y, fwd = peak_mb(lambda: fn(x, *inputs[1:]))
    g = torch.rand_like(y)
    _, bwd = peak_mb(lambda: y.backward(g))
    mb = lambda t: t.numel() * t.element_size() / 2**20  # noqa: E731 (no Tensor.nbytes in torch 1.13)
    print(fwd, bwd - mb(x.grad), mb(y))


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per measurement (median)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    ap.add_argument("--memory", nargs=2, metavar=("CASE", "SIDE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory:
        return memory_child(*args.memory)
    names = [n for n in cases() if args.only in n]
    print(f"# fancy pooling family vs PyTorch compositions\n")
    print(f"LibTorch {torch.__version__}; median of {args.reps}, fancy and torch timed in alternation; times in ms; ratio = composition / fancy; "
          "memory (MB, fresh process, one thread): the forward's peak extra RSS, output included, / the backward's peak "
          "extra RSS beyond the input gradient it returns.\n")
    print("| op | thr | fancy fwd | torch fwd | ratio | fancy f+b | torch f+b | ratio "
          "| fancy MB fwd / bwd | torch MB fwd / bwd | output MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        mem = (peak_memory_mb(name, "fancy"), peak_memory_mb(name, "torch"))
        for threads in [int(t) for t in args.threads.split(",")]:
            t = measure_time(name, threads, args.reps)
            print(f"| {name} | {threads} | {t['fancy_fwd']:.2f} | {t['torch_fwd']:.2f} | "
                  f"{t['torch_fwd'] / t['fancy_fwd']:.1f}× | {t['fancy_fb']:.2f} | {t['torch_fb']:.2f} | "
                  f"{t['torch_fb'] / t['fancy_fb']:.1f}× | {mem[0][0]:.0f} / {mem[0][1]:.0f} | "
                  f"{mem[1][0]:.0f} / {mem[1][1]:.0f} | {mem[0][2]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
