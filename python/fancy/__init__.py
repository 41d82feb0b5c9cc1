"""fancy: pooling operators on LibTorch, from Python.

    import fancy
    y = fancy.max_pool2d(x, 3, stride=2, padding=1)       # like torch.nn.functional
    pool = fancy.nn.MaxPool2d(3, stride=2)                  # like torch.nn
    y = torch.ops.fancy.max_pool2d(x, [3, 3], [2, 2])       # the op itself

The ops live in libfancy.so (built by `make`); it is found through $FANCY_LIBRARY,
next to this package, or in the source tree's build/lib.
"""
import os

import torch

__all__ = ["library_path"]


def _find_library():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    if os.environ.get("FANCY_LIBRARY"):
        candidates.append(os.environ["FANCY_LIBRARY"])
    candidates += [
        os.path.join(here, "libfancy.so"),
        os.path.join(here, "..", "..", "build", "lib", "libfancy.so"),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise ImportError(
        "fancy: libfancy.so not found (looked in: " + ", ".join(candidates) + "); run `make` "
        "in the source tree or set FANCY_LIBRARY to the library's path"
    )


library_path = _find_library()
torch.ops.load_library(library_path)

from . import functional  # noqa: E402
from . import nn  # noqa: E402
from .functional import *  # noqa: E402,F401,F403

__all__ += functional.__all__ + ["functional", "nn"]
