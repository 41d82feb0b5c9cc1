"""fancy.keypoints from Python: parity with an independent numpy implementation on random
pairs, invariants, the Python API, the CLI and the absence of torch."""
import copy
import importlib.util
import json
import os
import random
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, HERE)

from fancy import keypoints as K  # noqa: E402
import coco_reference  # noqa: E402

TESTDATA = os.path.join(ROOT, "..", "shared", "testdata", "keypoints")
CLI = os.environ.get("FANCY_CLI", os.path.join(ROOT, "build", "bin", "fancy"))


def _generator():
    spec = importlib.util.spec_from_file_location("make_keypoint_pair",
                                                  os.path.join(ROOT, "scripts", "make_keypoint_pair.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_pair = _generator().make


@pytest.fixture(scope="module")
def pair():
    return make_pair(300, seed=7, dets_per_gt=3)


def test_importing_keypoints_does_not_import_torch():
    code = "import sys; sys.path.insert(0, %r); from fancy.keypoints import evaluate; print('torch' in sys.modules)" % (
        os.path.join(ROOT, "python"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_pairs_equal_an_independent_numpy_implementation(seed):
    gt, dt = make_pair(120, seed=seed, dets_per_gt=3)
    ours = K.evaluate(gt, dt)["stats"]
    theirs = coco_reference.evaluate(gt, dt)
    assert ours == theirs


def test_random_pair_without_boxes_equals_the_numpy_implementation():
    gt, dt = make_pair(120, seed=11, dets_per_gt=2)
    for d in dt:
        del d["bbox"]  # detection areas then come from the keypoints' extent
    assert K.evaluate(gt, dt)["stats"] == coco_reference.evaluate(gt, dt)


def test_permuting_results_changes_nothing_when_scores_are_distinct(pair):
    gt, dt = pair
    dt = copy.deepcopy(dt)
    for i, d in enumerate(dt):
        d["score"] = 0.5 + i * 1e-7  # distinct
    base = K.evaluate(gt, dt)["stats"]
    shuffled = list(dt)
    random.Random(3).shuffle(shuffled)
    assert K.evaluate(gt, shuffled)["stats"] == base


def test_duplicating_every_detection_never_raises_ap(pair):
    gt, dt = pair
    once = K.evaluate(gt, dt)["stats"]
    twice = K.evaluate(gt, dt + copy.deepcopy(dt))["stats"]
    for a, b in zip(once[:5], twice[:5]):
        assert b <= a + 1e-12


def test_results_equal_to_ground_truth_give_ap_one(pair):
    gt, _ = pair
    dt = [{"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": a["keypoints"],
           "score": 1.0 - 1e-6 * n, "bbox": a["bbox"]}
          for n, a in enumerate(gt["annotations"]) if not a["iscrowd"] and a["num_keypoints"] > 0]
    stats = K.evaluate(gt, dt)["stats"]
    assert stats[0] == pytest.approx(1.0, abs=1e-12)
    assert stats[5] == pytest.approx(1.0, abs=1e-12)


def test_same_numbers_from_files_lists_arrays_and_any_thread_count(pair, tmp_path):
    np = pytest.importorskip("numpy")
    gt, dt = pair
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    from_files = K.evaluate(str(tmp_path / "gt.json"), str(tmp_path / "dt.json"), threads=1)
    arrays = {
        "image_id": np.array([d["image_id"] for d in dt]),
        "category_id": np.array([d["category_id"] for d in dt]),
        "score": np.array([d["score"] for d in dt]),
        "keypoints": np.array([d["keypoints"] for d in dt]).reshape(len(dt), 17, 3),
        "bbox": np.array([d["bbox"] for d in dt]),
    }
    from_arrays = K.evaluate(gt, arrays, threads=2)
    from_lists = K.evaluate(gt, dt, threads=2)
    assert from_files["stats"] == from_arrays["stats"] == from_lists["stats"]
    assert from_files["precision"] == from_arrays["precision"]


def test_cocoeval_swap_in(pair, capsys):
    gt, dt = pair
    coco_gt = K.COCO(gt)
    E = K.COCOeval(coco_gt, coco_gt.loadRes(dt), "keypoints")
    E.evaluate()
    E.accumulate()
    E.summarize()
    assert list(E.stats) == K.evaluate(gt, dt)["stats"]
    assert E.eval["precision"].shape == (10, 101, 1, 3, 1)
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ]" in capsys.readouterr().out
    E.params.iouThrs = [0.5]
    with pytest.raises(ValueError, match="only imgIds, catIds, maxDets"):
        E.evaluate()


@pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/testdata/keypoints not found (CI has it)")
def test_reference_pairs_from_python():
    expected = json.load(open(os.path.join(TESTDATA, "expected.json")))
    for name in ("fce_keypoints", "xtcoco_example"):
        r = K.evaluate(os.path.join(TESTDATA, name, "gt.json"), os.path.join(TESTDATA, name, "dt.json"))
        assert r["stats"] == expected[name]
        # The independent implementation agrees too.
        gt = json.load(open(os.path.join(TESTDATA, name, "gt.json")))
        dt = json.load(open(os.path.join(TESTDATA, name, "dt.json")))
        assert coco_reference.evaluate(gt, dt) == expected[name]
    crowd = K.evaluate(os.path.join(TESTDATA, "crowdpose_example", "gt.json"),
                       os.path.join(TESTDATA, "crowdpose_example", "dt.json"), crowdpose=True)
    want = expected["crowdpose_example"]
    assert crowd["stats"][0] == want["AP"] and crowd["stats"][5] == want["AR"]
    assert round(crowd["crowd"]["AP_hard"], 4) == want["AP_hard"]
    whole = K.evaluate(os.path.join(TESTDATA, "wholebody_example", "gt.json"),
                       os.path.join(TESTDATA, "wholebody_example", "dt.json"), wholebody=True)
    assert set(whole["parts"]) == {"body", "foot", "face", "lefthand", "righthand", "wholebody"}


def test_bad_input_is_a_value_error_naming_the_record(pair):
    gt, dt = pair
    bad = copy.deepcopy(dt[:3])
    bad[2]["keypoints"] = bad[2]["keypoints"][:-1]
    with pytest.raises(ValueError, match=r"results\[2\].*keypoints.*multiple of 3"):
        K.evaluate(gt, bad)
    bad = copy.deepcopy(dt[:3])
    bad[1]["image_id"] = 999999
    with pytest.raises(ValueError, match=r"results\[1\].*image_id 999999"):
        K.evaluate(gt, bad)
    with pytest.raises(ValueError, match="sigmas"):
        K.evaluate(gt, dt[:3], sigmas=[0.1] * 5)


def test_oks_nms_and_pck():
    base = [[10.0 * j, 5.0 * j, 2.0] for j in range(17)]
    near = [[x + 0.5, y, v] for x, y, v in base]
    far = [[x + 500, y, v] for x, y, v in base]
    assert K.oks_nms([base, near, far], [0.8, 0.9, 0.7], [1e4, 1e4, 1e4], threshold=0.9) == [1, 2]
    r = K.pck([[[10, 0], [0, 20]]], [[[0, 0], [0, 0]]], [[1, 1]], K.mpii_head_sizes([0, 0, 30, 40]), alpha=0.5)
    assert r["per_keypoint"] == [1.0, 0.0] and r["mean"] == 0.5


@pytest.mark.skipif(not os.path.exists(CLI), reason="fancy CLI not built")
def test_cli_prints_the_summary_writes_json_and_fails_clearly(pair, tmp_path):
    gt, dt = pair
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    out = subprocess.run([CLI, "eval-keypoints", "--gt", str(tmp_path / "gt.json"), "--dt", str(tmp_path / "dt.json"),
                          "--json", str(tmp_path / "r.json"), "--per-keypoint"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Average Precision") == 5 and out.stdout.count("Average Recall") == 5
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["stats"] == K.evaluate(gt, dt)["stats"]
    assert len(report["per_keypoint"]) == 17 and report["per_keypoint"][0]["name"] == "nose"
    (tmp_path / "bad.json").write_text('[{"image_id": 1, "category_id": 1, "score": NaN, "keypoints": []}]')
    bad = subprocess.run([CLI, "eval-keypoints", "--gt", str(tmp_path / "gt.json"), "--dt", str(tmp_path / "bad.json")],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "bad.json" in bad.stderr and "NaN" in bad.stderr
    help_text = subprocess.run([CLI, "eval-keypoints", "--help"], capture_output=True, text=True).stdout
    # The command never loads LibTorch (its start-up alone would cost ~0.75 s).
    libs = subprocess.run(["ldd", CLI + "-eval-keypoints"], capture_output=True, text=True).stdout
    assert "torch" not in libs and "libc10" not in libs
    for flag in ("--gt", "--dt", "--json", "--sigmas", "--crowdpose", "--wholebody", "--area-from-box", "--plot"):
        assert flag in help_text
