"""CLI check: `fancy prune` on a small slice trains with group lasso (proximal SGD), removes
whole filters, keeps the pruned network's accuracy equal to the unpruned one's (pruning
is exact), shows that the chapter's sum-of-squares term removes nothing, writes its
reports, and rejects bad arguments with clear errors.

usage: check_prune.py path/to/fancy
"""
import json
import os
import subprocess
import sys
import tempfile

DATA = "/usr/share/datasets/fashion-mnist"


def run(fancy, *args, ok=True):
    p = subprocess.run([fancy, "prune", *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit("prune %s failed:\n%s%s" % (args, p.stdout, p.stderr))
    return p


def main(fancy):
    if not os.path.isdir(DATA):
        print(f"SKIP: {DATA} is missing (Debian package dataset-fashion-mnist)")
        return 0
    help_text = run(fancy, "--help").stdout
    for flag in ("--lambdas", "--chapter-lambda", "--width", "--epochs", "--finetune-epochs", "--finetune-lr",
                 "--threads", "--out"):
        assert flag in help_text, f"--help lacks {flag}"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "prune")
        run(fancy, "--out", out, "--width", "4", "--limit", "2000", "--epochs", "2", "--finetune-epochs", "1",
            "--lambdas", "0,1", "--chapter-lambda", "0.01", "--threads", "2", "--reps", "5", "--bench-batch", "16")
        for name in ("results.json", "results.md"):
            assert os.path.exists(os.path.join(out, name)), name
        runs = json.load(open(os.path.join(out, "results.json")))["runs"]
        assert [(r["penalty"], r["lambda"]) for r in runs] == [
            ("group_lasso", 0), ("group_lasso", 1), ("group_sum_of_squares", 0.01)], runs
        plain, lasso, squares = runs
        assert plain["kept"] == plain["filters"] == 4 + 8 + 16, plain
        assert lasso["kept"] < lasso["filters"], lasso  # a strong λ zeroes whole filters
        assert lasso["pruned_params"] < lasso["params"] and lasso["pruned_macs"] < lasso["macs"], lasso
        assert squares["kept"] == squares["filters"], squares  # weight decay zeroes no filter
        for r in runs:  # removing zero filters changes no output
            assert abs(r["pruned_accuracy"] - r["accuracy"]) <= 0.05, r
        for r in (plain, squares):  # the networks learn (10 classes: chance is 10 %)
            assert 25 < r["finetuned_accuracy"] <= 100, r
    bad = run(fancy, "--lambdas", "-1", "--out", os.path.join(tmp, "x"), ok=False)
    assert bad.returncode == 1 and "--lambdas: each λ must be >= 0" in bad.stderr, bad.stderr
    bad = run(fancy, "--data", "/nonexistent", "--out", os.path.join(tmp, "x"), ok=False)
    assert bad.returncode == 1 and "/nonexistent" in bad.stderr, bad.stderr
    print("prune CLI smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
