"""`import fancy` names OpenBLAS's kernels for the CPU before torch/numpy load OpenBLAS
(Debian's 0.3.21 falls back to SSE3 kernels on CPUs it does not know), and leaves a
user's choice, or an already loaded OpenBLAS, alone."""
import os
import subprocess
import sys

PYTHON = os.path.join(os.path.dirname(__file__), "..", "..", "python")


def env_after(code, extra=None):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(extra or {})
    env["PYTHONPATH"] = PYTHON
    out = subprocess.run([sys.executable, "-c", code + "; print(os.environ.get('OPENBLAS_CORETYPE'))"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        return set(next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), []))


def test_import_names_the_widest_kernels_the_cpu_runs():
    flags = cpu_flags()
    want = ("SkylakeX" if {"avx512f", "avx512bw", "avx512vl"} <= flags else
            "Haswell" if {"avx2", "fma"} <= flags else "None")
    assert env_after("import os, fancy") == want


def test_a_users_choice_is_kept():
    assert env_after("import os, fancy", {"OPENBLAS_CORETYPE": "Haswell"}) == "Haswell"


def test_nothing_changes_once_openblas_is_loaded():
    assert env_after("import os, numpy, fancy") == "None"
