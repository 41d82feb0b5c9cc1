import os
import sys

# Use the package from the source tree; the library from the build tree (FANCY_LIBRARY,
# set by ctest) or the default build/lib.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

import torch  # noqa: E402

torch.set_num_threads(2)
