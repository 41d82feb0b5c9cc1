#!/usr/bin/env python3
"""Benchmark: `fancy eval-keypoints` end to end on a generated COCO keypoint pair.

usage: bench_keypoints.py [--images 5000] [--runs 7] [--baseline] [--build build]

Generates the pair with scripts/make_keypoint_pair.py (seeded) unless it exists, then
runs the CLI with 1 and 2 threads and prints the median wall time of the whole process
(load + evaluate + summarize + exit), the median of each phase as the evaluator
reports it, and the peak resident memory. --baseline also times the plain numpy
implementation in tests/python/coco_reference.py (the same per-pair Python loops as
pycocotools; pycocotools itself is not packaged in Debian, so it is not run here).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_once(cli, gt, dt, threads, report):
    start = time.perf_counter()
    proc = subprocess.Popen([cli, "eval-keypoints", "--gt", gt, "--dt", dt, "--threads", str(threads),
                             "--json", report], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit("bench_keypoints: fancy eval-keypoints failed")
    with open(report) as f:
        timings = json.load(f)["timings_s"]
    return wall, usage.ru_maxrss / 1024.0, timings


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--baseline", action="store_true")
    args = ap.parse_args()

    data = os.path.join(args.build, "bench_data", "keypoints_%d" % args.images)
    gt, dt = os.path.join(data, "gt.json"), os.path.join(data, "dt.json")
    if not (os.path.exists(gt) and os.path.exists(dt)):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_keypoint_pair.py"), data,
                        "--images", str(args.images), "--seed", "0"], check=True)
    # The counts come from the CLI's report: this process must stay small, because the
    # children are forked from it and their peak RSS would include its pages.
    cli = os.path.join(args.build, "bin", "fancy")
    with tempfile.TemporaryDirectory() as tmp:
        run_once(cli, gt, dt, 1, os.path.join(tmp, "r.json"))
        with open(os.path.join(tmp, "r.json")) as f:
            counts = json.load(f)["counts"]
    print("pair: %d images, %d ground truths, %d results (%.1f MB + %.1f MB of JSON)" % (
        counts["images"], counts["ground_truths"], counts["detections"], os.path.getsize(gt) / 1e6,
        os.path.getsize(dt) / 1e6))
    print("machine: %s, %d CPUs; command: %s" % (platform.processor() or platform.machine(), os.cpu_count(),
                                                  " ".join(sys.argv)))
    print()
    print("| threads | end to end (s) | load (s) | OKS (s) | match (s) | accumulate (s) | summarize (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        for threads in (1, 2):
            runs = [run_once(cli, gt, dt, threads, report) for _ in range(args.runs)]
            med = lambda xs: statistics.median(xs)  # noqa: E731
            load = med([r[2]["load_results"] + (r[2]["load_gt"] if threads == 1 else 0) for r in runs])
            print("| %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.0f |" % (
                threads, med([r[0] for r in runs]), load, med([r[2]["oks"] for r in runs]),
                med([r[2]["match"] for r in runs]), med([r[2]["accumulate"] for r in runs]),
                med([r[2]["summarize"] for r in runs]), max(r[1] for r in runs)))
    print("\n(median of %d runs; with 2 threads the two files load concurrently, so load is their span)" % args.runs)

    if args.baseline:
        sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
        import coco_reference

        start = time.perf_counter()
        with open(gt) as f:
            g = json.load(f)
        with open(dt) as f:
            results = json.load(f)
        stats = coco_reference.evaluate(g, results)
        base = time.perf_counter() - start
        sys.path.insert(0, os.path.join(ROOT, "python"))
        from fancy.keypoints import evaluate

        ours = evaluate(gt, dt)["stats"]
        print("\nplain numpy implementation (1 thread, in process, JSON load included): %.2f s; same stats: %s"
              % (base, ours == stats))


if __name__ == "__main__":
    main()
