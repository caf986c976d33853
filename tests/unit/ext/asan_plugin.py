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
    # the x86-64-v3 build replaces that module (roiclass.ext picks it where
    # the CPU runs it); the baseline build replaces _preprocess and blocks v3
    name = "_preprocess_avx2" if os.path.basename(path).startswith("_preprocess_avx2") else "_preprocess"
    spec = importlib.util.spec_from_file_location(f"roiclass.ext.{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"roiclass.ext.{name}"] = module
    if name == "_preprocess":
        sys.modules["roiclass.ext._preprocess_avx2"] = None  # roiclass.ext must not pick it
    spec.loader.exec_module(module)
    print(f"roiclass.ext.{name} from {path}")
