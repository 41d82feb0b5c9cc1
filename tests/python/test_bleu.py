"""fancy.bleu from Python and `fancy bleu` from the shell, against sacreBLEU's vectors."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

from fancy import bleu  # noqa: E402

VECTORS = os.path.join(ROOT, "..", "shared", "testdata", "bleu", "vectors.json")
CLI = os.environ.get("FANCY_CLI", os.path.join(ROOT, "build", "bin", "fancy"))

HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS = [["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]]


def test_importing_bleu_does_not_import_torch():
    code = "import sys; sys.path.insert(0, %r); from fancy.bleu import corpus_bleu; print('torch' in sys.modules)" % (
        os.path.join(ROOT, "python"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.skipif(not os.path.exists(VECTORS), reason="../shared/testdata/bleu not found (CI has it)")
def test_vectors_through_the_python_api():
    v = json.load(open(VECTORS))
    for c in v["corpus"]:
        s = bleu.corpus_bleu(c["hypotheses"], c["references"], **c["settings"])
        assert abs(s.score - c["bleu"]) < 1e-6
    for c in v["raw_corpus_floor"]["cases"]:
        s = bleu.corpus_bleu(c["hypotheses"], c["references"], smooth_method="floor", smooth_value=c["floor"],
                             tokenize="none", use_effective_order=True)
        assert abs(s.score / 100 - c["bleu"]) < 1e-10


def test_score_object_looks_like_sacrebleus():
    s = bleu.corpus_bleu(HYPS, REFS)
    assert round(s.score, 6) == 48.530827
    # sacreBLEU's README prints exactly this line for the example.
    assert str(s) == "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
    assert s.counts == [14, 7, 5, 3] and s.totals == [17, 14, 11, 8] and (s.sys_len, s.ref_len) == (17, 18)
    assert s.format(score_only=True, width=1) == "48.5"
    assert bleu.sentence_bleu("a test", ["a test"]).score == pytest.approx(100.0)
    with pytest.raises(ValueError, match="laplace"):
        bleu.corpus_bleu(HYPS, REFS, smooth_method="laplace")


@pytest.mark.skipif(not os.path.exists(CLI), reason="fancy CLI not built")
def test_cli_like_sacrebleu(tmp_path):
    for i, stream in enumerate(REFS):
        (tmp_path / ("ref%d.txt" % i)).write_text("\n".join(stream) + "\n")
    (tmp_path / "hyp.txt").write_text("\n".join(HYPS) + "\n")
    refs = [str(tmp_path / "ref0.txt"), str(tmp_path / "ref1.txt")]
    out = subprocess.run([CLI, "bleu", *refs, "-i", str(tmp_path / "hyp.txt")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:fancy-0.1.0 = 48.5 "
                                  "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)")
    # Hypotheses from standard input, score only, more decimals, another tokenizer.
    out = subprocess.run([CLI, "bleu", *refs, "-b", "-w", "7", "-tok", "intl"], input="\n".join(HYPS) + "\n",
                         capture_output=True, text=True)
    assert out.stdout.strip() == "43.9162349"
    # Line counts that disagree, and bytes that are not UTF-8, are clear errors.
    (tmp_path / "short.txt").write_text("only one line\n")
    bad = subprocess.run([CLI, "bleu", *refs, "-i", str(tmp_path / "short.txt")], capture_output=True, text=True)
    assert bad.returncode == 1 and "ref0.txt has 3 lines" in bad.stderr and "short.txt" in bad.stderr
    (tmp_path / "latin1.txt").write_bytes(b"ok\ncaf\xe9\nok\n")
    bad = subprocess.run([CLI, "bleu", *refs, "-i", str(tmp_path / "latin1.txt")], capture_output=True, text=True)
    assert bad.returncode == 1 and "latin1.txt:2: not valid UTF-8" in bad.stderr
    help_text = subprocess.run([CLI, "bleu", "--help"], capture_output=True, text=True).stdout
    for flag in ("--tokenize", "--smooth-method", "--smooth-value", "--width", "--score-only", "--input"):
        assert flag in help_text
