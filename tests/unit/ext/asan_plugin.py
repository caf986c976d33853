"""pytest plugin: run the ext tests against another build of the kernel,
e.g. an AddressSanitizer one (see ext/README.md) or the x86-64-v2 baseline
where the CPU would get the AVX2 one (`make test` does that second run).
Inactive unless ROICLASS_EXT_SO names the built module file."""
from __future__ import annotations

import importlib.util
import os
import sys


def pytest_configure(config):
    path = os.environ.get("ROICLASS_EXT_SO")
    if not path:
        return
    spec = importlib.util.spec_from_file_location("roiclass.ext._preprocess", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["roiclass.ext._preprocess"] = module
    sys.modules["roiclass.ext._preprocess_avx2"] = None  # roiclass.ext must not pick it
    spec.loader.exec_module(module)
    print(f"roiclass.ext._preprocess from {path}")
