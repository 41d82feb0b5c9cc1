"""Finds and loads fancy's torch-free pybind11 modules (_fancy_keypoints, _fancy_bleu)."""
import glob
import importlib.util
import os


def load_extension(name, env):
    """The module from $<env>, next to this package, or in the source tree's build/lib."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    if os.environ.get(env):
        candidates.append(os.environ[env])
    for folder in (here, os.path.join(here, "..", "..", "build", "lib")):
        candidates += sorted(glob.glob(os.path.join(folder, name + "*.so")))
    for path in candidates:
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError("fancy: %s*.so not found (looked in %s and the source tree's build/lib); run `make` or set %s "
                      "to its path" % (name, here, env))
