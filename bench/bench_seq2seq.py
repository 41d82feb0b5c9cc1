#!/usr/bin/env python3
"""Benchmark: decoding throughput of a trained G2P model on its test words.

usage: bench_seq2seq.py MODEL_DIR [--build build] [--limit N]

Runs `fancy g2p eval` for greedy and beam 5, batch 1 and 64, 1 and 2 threads (each setting
three times, the median kept), and prints
words/s, target tokens/s and the share of decode time spent outside the model's forward
(log-softmax, top-k and the beam bookkeeping), as the decoder measures it.
"""
import argparse
import os
import platform
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--limit", type=int, default=0, help="test words (0 = all)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per setting; the median is reported")
    args = ap.parse_args()
    cli = os.path.join(args.build, "bin", "fancy")
    print("machine: %s, %d CPUs; model %s" % (platform.machine(), os.cpu_count(), args.model))
    print()
    print("| decoder | batch | threads | words/s | tokens/s | outside the model | WER | PER |")
    print("|---|---|---|---|---|---|---|---|")
    rows = {}
    for threads in (1, 2):
        for batch in (1, 64):
            limit = args.limit or 0
            if batch == 1 and not limit:
                limit = 500  # batch 1 is slow; a slice is enough for a rate
            # Greedy and beam alternate within each repeat, so a slow spell of the machine
            # hits both; the median of the repeats is reported.
            runs = {}
            for _ in range(args.repeats):
                out = subprocess.run([cli, "g2p", "eval", "--model", args.model, "--beams", "1,5", "--batch-size",
                                      str(batch), "--threads", str(threads), "--limit", str(limit)],
                                     capture_output=True, text=True, check=True).stdout
                for line in out.splitlines():
                    m = re.search(r"\), (greedy|beam 5): WER ([0-9.]+) %, PER ([0-9.]+) %.*?([0-9.]+) words/s, "
                                  r"([0-9.]+) tokens/s, ([0-9.]+) % of the time outside", line)
                    if m:
                        runs.setdefault(m.group(1), []).append(m.groups())
            for dec, results in runs.items():
                results.sort(key=lambda r: float(r[3]))
                _, wer, per, wps, tps, outside = results[len(results) // 2]
                rows[(dec, batch, threads)] = float(wps)
                print("| %s | %d | %d | %s | %s | %s %% | %s %% | %s %% |" % (dec, batch, threads, wps, tps, outside,
                                                                             wer, per))
    for threads in (1, 2):
        g, b = rows.get(("greedy", 64, threads)), rows.get(("beam 5", 64, threads))
        if g and b:
            print("\nbeam 5 / greedy throughput at batch 64, %d thread(s): %.0f %%" % (threads, 100 * b / g))


if __name__ == "__main__":
    main()
