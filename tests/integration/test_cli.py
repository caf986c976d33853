"""The `roiclass` command against a real server."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CAT_CLASSES, png_bytes


@pytest.fixture(scope="module")
def chelsea_png(tmp_path_factory, chelsea):
    path = tmp_path_factory.mktemp("cli") / "chelsea.png"
    path.write_bytes(png_bytes(chelsea))
    return path


def _roiclass(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "roiclass.client.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_classify_prints_a_cat_first(server, chelsea_png):
    done = _roiclass("classify", str(chelsea_png), "--top-k", "3", "--server", server.address)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("ROI 0")
    assert int(lines[2].split()[0]) in CAT_CLASSES, done.stdout
    assert len(lines) == 5


def test_classify_json_parses(server, chelsea_png):
    done = _roiclass(
        "classify", str(chelsea_png), "--json", "--roi", "140,20,200,200", "--roi", "150,30,180,180,15",
        "--server", server.address,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [r["class_index"] in CAT_CLASSES for r in data["results"]] == [True, True]
    assert data["results"][1]["aligned_roi"]["angle"] == pytest.approx(15)
    assert data["timing"]["total_us"] > 0


def test_classify_heatmap_png(server, chelsea_png, tmp_path):
    out = tmp_path / "heat.png"
    done = _roiclass("classify", str(chelsea_png), "--roi", "140,20,200,200,10", "--heatmap", str(out),
                     "--server", server.address, "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert f"heatmap written to {out}" in done.stdout
    with Image.open(out) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    assert min(pixels.shape[:2]) >= 128 and pixels.std() > 10


def test_models_and_health(server):
    table = _roiclass("models", "--server", server.address)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].startswith("* ")
    listed = json.loads(_roiclass("models", "--json", "--server", server.address).stdout)
    default = listed["default_model"]
    assert default in [m["name"] for m in listed["models"]]
    healthy = _roiclass("health", "--server", server.address)
    assert (healthy.returncode, healthy.stdout.strip()) == (0, "SERVING")
    assert _roiclass("health", "--model", default, "--server", server.address).returncode == 0


def test_server_errors_exit_1(server, chelsea_png):
    done = _roiclass("classify", str(chelsea_png), "--model", "no-such-model", "--server", server.address)
    assert done.returncode == 1
    assert done.stderr.startswith("error: NOT_FOUND: ")
    done = _roiclass("classify", str(chelsea_png), "--roi", "1000,1000,5,5", "--server", server.address)
    assert done.returncode == 1
    assert done.stderr.startswith("error: INVALID_ARGUMENT: rois[0]")
    unknown = _roiclass("health", "--model", "no-such-model", "--server", server.address)
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
