"""CLI check: `fancy shootout` on a small slice trains, reports and is reproducible.

usage: check_shootout.py path/to/fancy
"""
import json
import os
import subprocess
import sys
import tempfile

DATA = "/usr/share/datasets/fashion-mnist"
METHODS = ["max", "avg", "min", "l2", "soft", "stochastic", "mixed", "gem"]


def run(fancy, out, seed):
    cmd = [fancy, "shootout", "--out", out, "--train-limit", "2000", "--epochs", "1",
           "--threads", "2", "--seed", str(seed), "--methods", ",".join(METHODS)]
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(os.path.join(out, "report.json")) as f:
        return json.load(f)


def main(fancy):
    if not os.path.isdir(DATA):
        print(f"SKIP: {DATA} is missing (Debian package dataset-fashion-mnist)")
        return 0
    help_text = subprocess.run([fancy, "shootout", "--help"], check=True, stdout=subprocess.PIPE,
                               text=True).stdout
    for flag in ("--data", "--out", "--methods", "--epochs", "--seed", "--seeds", "--full", "--threads"):
        assert flag in help_text, f"--help lacks {flag}"
    bad = subprocess.run([fancy, "shootout", "--methods", "nope"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert bad.returncode != 0 and "nope" in bad.stderr, bad.stderr
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        a = run(fancy, d1, 7)
        b = run(fancy, d2, 7)
        assert [r["method"] for r in a["results"]] == METHODS
        # the same seed gives the same accuracies and losses
        for ra, rb in zip(a["results"], b["results"]):
            assert ra["test_accuracy"] == rb["test_accuracy"], (ra, rb)
            assert ra["epoch_loss"] == rb["epoch_loss"], (ra, rb)
        # 2000 images, one epoch: every method is far above chance (10 %)
        acc = {r["method"]: r["test_accuracy"] for r in a["results"]}
        assert min(acc.values()) > 40, acc
        for name in ("report.md", "report.json"):
            assert os.path.getsize(os.path.join(d1, name)) > 0
        with open(os.path.join(d1, "report.md")) as f:
            assert "max pooling" in f.read()
        assert os.path.exists(os.path.join(d1, "shootout.png")), "chart missing"
    print("shootout: OK", acc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
