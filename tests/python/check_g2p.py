"""Smoke test of `fancy g2p`: a tiny training run on CMUdict, eval and predict, and the
errors a user meets first. usage: check_g2p.py FANCY_CLI"""
import json
import os
import re
import subprocess
import sys
import tempfile

DICT = "/usr/share/festival/dicts/cmu/cmudict-0.4.out"


def run(*args, ok=True):
    p = subprocess.run([CLI, "g2p", *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit("g2p %s failed:\n%s%s" % (args, p.stdout, p.stderr))
    return p


if __name__ == "__main__":
    CLI = sys.argv[1]
    if not os.path.exists(DICT):
        print("SKIP: %s not installed (scripts/install-deps installs festlex-cmu)" % DICT)
        sys.exit(0)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "g2p")
        run("train", "--out", model, "--epochs", "1", "--minutes", "0.05", "--validate-every", "30",
            "--dev-words", "50", "--hidden", "32", "--embedding", "16", "--threads", "2")
        for name in ("config.json", "best.pt", "last.pt", "history.json"):
            assert os.path.exists(os.path.join(model, name)), name
        history = json.load(open(os.path.join(model, "history.json")))
        assert history and 0 <= history[-1]["dev_wer"] <= 1
        out = run("eval", "--model", model, "--limit", "40", "--beams", "1,3").stdout
        rates = re.findall(r"WER ([0-9.]+) %, PER ([0-9.]+) %", out)
        assert len(rates) == 2 and all(0 <= float(w) <= 100 for w, _ in rates), out
        out = run("predict", "--model", model, "cat", "--n-best", "2", "--beam", "3").stdout
        lines = out.strip().splitlines()
        assert lines[0] == "cat" and len(lines) == 3, out
        scores = [float(l.split()[0]) for l in lines[1:]]
        assert scores[0] >= scores[1], out  # best first
        bad = run("eval", "--model", os.path.join(tmp, "nothing"), ok=False)
        assert bad.returncode == 1 and "config.json" in bad.stderr, bad.stderr
        # A truncated model file is a clear error.
        best = os.path.join(model, "best.pt")
        with open(best, "r+b") as f:
            f.truncate(os.path.getsize(best) // 2)
        bad = run("predict", "--model", model, "cat", ok=False)
        assert bad.returncode == 1 and "best.pt" in bad.stderr, bad.stderr
    print("g2p CLI smoke test passed")
