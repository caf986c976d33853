"""The KServe side's virtualenv (bench/.kserve-venv) and its v2 gRPC stubs.

KServe pins its own protobuf/grpc/fastapi versions, so it gets a virtualenv
of its own, made on first use from PyPI. The bench process talks to it with
the Open Inference Protocol stubs that ship inside the kserve package,
copied into bench/.cache so that this (roiclass) environment can import them.
"""
from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".kserve-venv"
STUBS = BENCH / ".cache" / "kserve_v2"
# Pinned so that reruns compare like with like.
REQUIREMENTS = ("kserve==0.21.0", "onnxruntime", "pillow", "numpy")
_MARKER = VENV / ".bench-requirements"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """Creates and fills the virtualenv unless it already holds REQUIREMENTS."""
    want = "\n".join(REQUIREMENTS)
    if venv_python().exists() and _MARKER.exists() and _MARKER.read_text() == want:
        return venv_python()
    log.info("creating %s with %s (a few minutes, once)", VENV, ", ".join(REQUIREMENTS))
    # The base interpreter, not this virtualenv's: a venv of a venv works but
    # would tie the two together.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    _MARKER.write_text(want)
    return venv_python()


def kserve_version() -> str:
    out = subprocess.run([str(venv_python()), "-c", "import kserve, importlib.metadata as m; print(m.version('kserve'))"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def v2_stubs():
    """(grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc) from the kserve package."""
    if not (STUBS / "grpc_predict_v2_pb2_grpc.py").exists():
        src = subprocess.run(
            [str(venv_python()), "-c", "import kserve.protocol.grpc as g, os; print(os.path.dirname(g.__file__))"],
            check=True, capture_output=True, text=True).stdout.strip()
        STUBS.mkdir(parents=True, exist_ok=True)
        pb2 = Path(src, "grpc_predict_v2_pb2.py").read_text()
        grpc_py = Path(src, "grpc_predict_v2_pb2_grpc.py").read_text().replace(
            "from kserve.protocol.grpc import grpc_predict_v2_pb2", "import grpc_predict_v2_pb2")
        (STUBS / "grpc_predict_v2_pb2.py").write_text(pb2)
        (STUBS / "grpc_predict_v2_pb2_grpc.py").write_text(grpc_py)
    if str(STUBS) not in sys.path:
        sys.path.insert(0, str(STUBS))
    return importlib.import_module("grpc_predict_v2_pb2"), importlib.import_module("grpc_predict_v2_pb2_grpc")
