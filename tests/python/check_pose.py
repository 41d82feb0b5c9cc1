"""Smoke test of `fancy pose`: synthetic people exported and scored, a tiny training run
(with resume), eval, predict, and the errors a user meets first.
usage: check_pose.py FANCY_CLI"""
import json
import os
import re
import subprocess
import sys
import tempfile


def run(*args, ok=True):
    p = subprocess.run([CLI, "pose", *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit("pose %s failed:\n%s%s" % (args, p.stdout, p.stderr))
    return p


if __name__ == "__main__":
    CLI = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "people")
        run("synth", "--out", data, "--count", "6", "--size", "96")
        gt = json.load(open(os.path.join(data, "gt.json")))
        assert len(gt["images"]) == 6 and len(gt["annotations"]) == 6
        assert all(os.path.exists(os.path.join(data, "images", im["file_name"])) for im in gt["images"])
        model = os.path.join(tmp, "model")
        tiny = ["--stacks", "1", "--features", "16", "--order", "2", "--input-size", "64", "--batch", "4",
                "--val-count", "8", "--image-size", "96", "--threads", "2"]
        run("train", "--out", model, "--steps", "6", *tiny)
        for name in ("config.json", "best.pt", "last.pt", "history.json"):
            assert os.path.exists(os.path.join(model, name)), name
        # --precision auto resolves to what this CPU computes natively; eval reads it back.
        precision = json.load(open(os.path.join(model, "config.json")))["precision"]
        assert precision in ("bf16", "fp32"), precision
        run("train", "--out", os.path.join(tmp, "m32"), "--steps", "1", "--precision", "fp32", *tiny)
        assert json.load(open(os.path.join(tmp, "m32", "config.json")))["precision"] == "fp32"
        # Resume continues at the saved step.
        out = run("train", "--out", model, "--steps", "10", "--resume", "--threads", "2").stderr
        assert "resuming at step 6" in out, out
        history = json.load(open(os.path.join(model, "history.json")))
        assert [h["step"] for h in history] == [0, 6, 10], history
        assert all(0 <= h["val_ap"] <= 1 for h in history)
        out = run("eval", "--model", model, "--count", "12").stdout
        assert re.search(r"Average Precision  \(AP\) @\[ IoU=0.50:0.95 \| area=   all \| maxDets= 20 \] = [0-9.]+", out), out
        assert "PCK@0.2" in out and "12 people" in out and "decoding dark" in out, out
        # The quarter-pixel rule by option; the report records the decoding.
        out = run("eval", "--model", model, "--count", "4", "--decode", "quarter").stdout
        assert "decoding quarter" in out, out
        report = json.load(open(os.path.join(model, "eval_synthetic_seed1002_4.json")))
        assert report["decode"] == "quarter", report
        bad = run("eval", "--model", model, "--count", "4", "--decode", "argmax", ok=False)
        assert bad.returncode != 0 and "--decode" in bad.stderr and "argmax" in bad.stderr, bad.stderr
        # Eval on a COCO file works the same (here the exported synthetic people).
        out = run("eval", "--model", model, "--coco", os.path.join(data, "gt.json"), "--images",
                  os.path.join(data, "images"), "--count", "6").stdout
        assert "6 people" in out, out
        # Scoring a slice of a COCO file counts only the images scored (not the others as misses).
        part = run("eval", "--model", model, "--coco", os.path.join(data, "gt.json"), "--images",
                   os.path.join(data, "images"), "--count", "3").stdout
        assert "3 people" in part, part
        report = json.load(open(os.path.join(model, "eval_coco.json")))
        assert report["images"] == 3, report  # every image of the file would be 6
        pic = os.path.join(tmp, "vis.png")
        out = run("predict", os.path.join(data, "images", "00000000.png"), "--model", model, "--out", pic,
                  "--all-stacks").stdout
        assert os.path.getsize(pic) > 1000 and "left_shoulder" in out, out
        bad = run("predict", os.path.join(tmp, "none.png"), "--model", model, ok=False)
        assert bad.returncode == 1 and "none.png: image not found" in bad.stderr, bad.stderr
        bad = run("eval", "--model", os.path.join(tmp, "nothing"), ok=False)
        assert bad.returncode == 1 and "config.json" in bad.stderr, bad.stderr
        best = os.path.join(model, "best.pt")
        with open(best, "r+b") as f:
            f.truncate(os.path.getsize(best) // 2)
        bad = run("eval", "--model", model, "--count", "4", ok=False)
        assert bad.returncode == 1 and "best.pt: not a checkpoint of this model" in bad.stderr, bad.stderr
        bad = run("train", "--out", os.path.join(tmp, "m2"), "--steps", "1", "--optimizer", "sgd", *tiny, ok=False)
        assert bad.returncode == 1 and "--optimizer 'sgd' is not rmsprop or adam" in bad.stderr, bad.stderr
        bad = run("train", "--out", os.path.join(tmp, "m3"), "--steps", "1", "--pool", "median", *tiny, ok=False)
        assert bad.returncode == 1 and "pool 'median' is not one of" in bad.stderr, bad.stderr
        bad = run("train", "--out", os.path.join(tmp, "m4"), "--steps", "1", "--precision", "fp16", *tiny, ok=False)
        assert bad.returncode != 0 and "--precision" in bad.stderr and "fp16" in bad.stderr, bad.stderr
    print("pose CLI smoke test passed")
