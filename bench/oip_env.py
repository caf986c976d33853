"""perf_analyzer and the Triton peer's server: bench/.perf-venv, made on first use.

    .venv/bin/python bench/oip_env.py        # make (or check) it and print the versions

tritonclient's wheels ship a `perf_analyzer` binary (checked up to 2.57); from
2.52 on it needs glibc 2.38 / GLIBCXX_3.4.32, so 2.51.0 is the newest that
runs on Debian 12's glibc 2.36 (2.50 runs too). It links libb64.so.0d (Debian `libb64-0d`, installed
with apt-get when missing) and libcudart.so.12, which the
`nvidia-cuda-runtime-cu12` wheel provides; no GPU is needed, the library only
has to load. `nvidia-pytriton` bundles a `tritonserver` binary with the
Python backend (no ONNX Runtime backend): the Triton peer (bench/oip_peer.py),
whose model.py runs on this virtualenv's numpy, OpenCV and ONNX Runtime.
Its own virtualenv because tritonclient pins numpy < 2 and protobuf < 5.
"""
from __future__ import annotations

import ctypes.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".perf-venv"
# Pinned so that reruns compare like with like.
# numpy < 2: the Python backend's stub reads numpy 1's array layout (with numpy 2 every
# output tensor reaches the client with 0 bytes); ONNX Runtime as in roiclass's venv.
REQUIREMENTS = ("tritonclient==2.51.0", "nvidia-cuda-runtime-cu12==12.9.79", "nvidia-pytriton==0.7.0",
                "numpy==1.26.4", "onnxruntime==1.31.1", "opencv-python-headless==4.11.0.86")
_MARKER = VENV / ".bench-requirements"
LIBB64 = "libb64.so.0d"


def site_packages() -> Path:
    return VENV / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def perf_analyzer() -> Path:
    return VENV / "bin" / "perf_analyzer"


def tritonserver() -> Path:
    return site_packages() / "pytriton" / "tritonserver" / "bin" / "tritonserver"


def perf_env() -> dict[str, str]:
    """The environment perf_analyzer needs: libcudart.so.12 from the wheel."""
    env = os.environ.copy()
    cudart = site_packages() / "nvidia" / "cuda_runtime" / "lib"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(cudart), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def _has_libb64() -> bool:
    return ctypes.util.find_library("b64") is not None or Path("/usr/lib/x86_64-linux-gnu", LIBB64).exists()


def ensure_libb64() -> None:
    if _has_libb64():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log.info("installing libb64-0d (perf_analyzer links %s)", LIBB64)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "libb64-0d"], check=True)


def ensure_venv() -> Path:
    """Creates and fills the virtualenv unless it already holds REQUIREMENTS;
    checks that perf_analyzer loads its libraries."""
    ensure_libb64()
    want = "\n".join(REQUIREMENTS)
    if not (perf_analyzer().exists() and _MARKER.exists() and _MARKER.read_text() == want):
        log.info("creating %s with %s (a minute, once)", VENV, ", ".join(REQUIREMENTS))
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *REQUIREMENTS], check=True)
        _MARKER.write_text(want)
    perf_analyzer_version()  # fails here, with the loader's message, if a library is missing
    return perf_analyzer()


def perf_analyzer_version() -> str:
    out = subprocess.run([str(perf_analyzer()), "--version"], env=perf_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{perf_analyzer()} --version exited {out.returncode}: {out.stderr.strip()[-500:]}")
    # 2.51 prints its version on stderr
    return (out.stdout + out.stderr).strip().splitlines()[0]


def versions() -> dict[str, str]:
    code = ("import importlib.metadata as m; "
            "print(';'.join(d + '=' + m.version(d) for d in ('tritonclient', 'nvidia-pytriton', 'numpy', "
            "'onnxruntime', 'opencv-python-headless')))")
    out = subprocess.run([str(VENV / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    found = dict(kv.split("=", 1) for kv in out.stdout.strip().split(";"))
    found["perf_analyzer"] = perf_analyzer_version()
    found["libb64"] = ctypes.util.find_library("b64") or LIBB64
    return found


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ensure_venv()
    print(versions())
    print("tritonserver:", tritonserver() if tritonserver().exists() else "absent", shutil.which("apt-get") or "")
