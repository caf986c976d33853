"""The wheel holds every package of the source tree: a subpackage that
setup.py does not list would be missing from `pip install .` and the Docker
image, while the editable install of the tests still finds it.

Built from the files the Dockerfile copies (so its COPY list is checked too),
in a temporary folder, without build isolation (no network).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"roiclass.server": "server", "roiclass.client": "client", "roiclass.ext": "ext", "roiclass.geo": "geo"}


def _dockerfile_copies() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    build_stage = text.split("FROM ", 2)[1]  # the copies of the build stage
    names = []
    for line in build_stage.splitlines():
        m = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if m:
            names += m.group(1).split()
    return names


def _packages(package: str, folder: Path) -> set[str]:
    return {".".join((package, *d.relative_to(folder).parts)).rstrip(".")
            for d in [folder, *folder.rglob("*")] if d.is_dir() and (d / "__init__.py").is_file()}


@pytest.mark.slow
def test_the_wheel_has_every_package_and_the_kernel(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in _dockerfile_copies():
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(
                "*.so", "*.c", "*_pb2*.py*", "__pycache__", "node_modules"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path / "wheel"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("roiclass-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for package, folder in SOURCES.items():
        expected |= _packages(package, ROOT / folder)
    missing = sorted(p for p in expected if p.replace(".", "/") + "/__init__.py" not in names)
    assert not missing, f"packages missing from the wheel: {missing}"
    assert "roiclass/v1/classifier_pb2.py" in names  # generated at build time
    assert {"roiclass/inference/grpc_service_pb2.py", "roiclass/inference/grpc_service_pb2_grpc.py",
            "roiclass/inference/model_config_pb2.py"} <= names  # the Open Inference Protocol's, likewise
    assert any(n.startswith("roiclass/ext/_preprocess") and n.endswith(".so") for n in names)
    assert any(n.startswith("roiclass/models/efficientnet_lite0/") and n.endswith(".onnx") for n in names)
