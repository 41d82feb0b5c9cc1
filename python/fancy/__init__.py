"""fancy: pooling operators on LibTorch and COCO keypoint evaluation, from Python.

    import fancy
    y = fancy.max_pool2d(x, 3, stride=2, padding=1)       # like torch.nn.functional
    pool = fancy.nn.MaxPool2d(3, stride=2)                  # like torch.nn
    y = torch.ops.fancy.max_pool2d(x, [3, 3], [2, 2])       # the op itself

    from fancy.keypoints import evaluate                    # torch-free
    stats = evaluate("gt.json", "results.json")["stats"]

The ops live in libfancy.so (built by `make`); it is found through $FANCY_LIBRARY,
next to this package, or in the source tree's build/lib. Importing fancy does not
import torch by itself: the ops load when torch is already imported, or on first use
of a pooling name (fancy.max_pool2d, fancy.nn, ...), or with fancy.load_ops().
fancy.keypoints never loads torch.
"""
import os
import sys


def _choose_blas_kernels():
    """Names OpenBLAS's kernels for this CPU when OpenBLAS is not loaded yet.

    Debian's OpenBLAS 0.3.21 does not recognise recent Xeons (Sapphire/Emerald Rapids)
    and falls back to its SSE3 "Prescott" kernels: sgemm 5-6x slower. It reads
    OPENBLAS_CORETYPE when it loads (with torch or numpy), so the choice is made here,
    before; a value already set is left alone. The `fancy` command does the same.
    """
    if "OPENBLAS_CORETYPE" in os.environ or "torch" in sys.modules or "numpy" in sys.modules:
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return
    if {"avx512f", "avx512bw", "avx512vl"} <= set(flags):
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif {"avx2", "fma"} <= set(flags):
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"


_choose_blas_kernels()

__all__ = ["library_path", "load_ops", "keypoints"]


def _find(name, env):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    if os.environ.get(env):
        candidates.append(os.environ[env])
    candidates += [
        os.path.join(here, name),
        os.path.join(here, "..", "..", "build", "lib", name),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise ImportError(
        "fancy: " + name + " not found (looked in: " + ", ".join(candidates) + "); run `make` "
        "in the source tree or set " + env + " to its path"
    )


_library_loaded = False
_api_loaded = False


def _load_library():
    """Imports torch and registers fancy's ops (torch.ops.fancy.*)."""
    global _library_loaded, library_path
    if not _library_loaded:
        import torch

        library_path = _find("libfancy.so", "FANCY_LIBRARY")
        torch.ops.load_library(library_path)
        _library_loaded = True


def load_ops():
    """Registers fancy's ops and exposes the pooling API (fancy.max_pool2d, fancy.nn, ...)."""
    global _api_loaded
    if _api_loaded:
        return
    _load_library()
    _api_loaded = True
    from . import functional, nn

    for name in functional.__all__:
        globals()[name] = getattr(functional, name)
    globals()["functional"] = functional
    globals()["nn"] = nn
    __all__.extend(functional.__all__ + ["functional", "nn"])


def __getattr__(name):
    # Pooling names load torch and the ops on first use.
    if name.startswith("__") or name in ("keypoints", "bleu", "regularize", "_native"):
        raise AttributeError(name)
    load_ops()
    if name in globals():
        return globals()[name]
    raise AttributeError("module 'fancy' has no attribute '" + name + "'")


if "torch" in sys.modules:  # torch is there anyway: make torch.ops.fancy.* ready now
    try:
        load_ops()
    except ImportError:  # no libfancy.so: fancy.keypoints still works; pooling names say why
        pass
