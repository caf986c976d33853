"""The `roiclass` command against a real server.

Two tests run the real console entry (`python -m roiclass.client.cli`) in a
subprocess; the rest call cli.main() in-process, which is the same code
without a second of interpreter start-up each.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from roiclass.client.cli import main
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


def test_classify_heatmap_png(server, chelsea_png, tmp_path, capsys):
    out = tmp_path / "heat.png"
    code = main(["classify", str(chelsea_png), "--roi", "140,20,200,200,10", "--heatmap", str(out),
                 "--heatmap-patch-size", "112", "--heatmap-stride", "56", "--server", server.address, "--timeout", "60"])
    assert code == 0, capsys.readouterr().err
    assert f"heatmap written to {out}" in capsys.readouterr().out
    with Image.open(out) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    assert min(pixels.shape[:2]) >= 128 and pixels.std() > 10


def test_classify_heatmap_json_for_two_rois(server, chelsea_png, tmp_path, capsys):
    out = tmp_path / "heat.png"
    code = main(["classify", str(chelsea_png), "--roi", "140,20,200,200", "--roi", "0,0,100,100", "--json",
                 "--heatmap", str(out), "--heatmap-patch-size", "112", "--heatmap-stride", "56",
                 "--server", server.address, "--timeout", "60"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    paths = [r["heatmap"]["path"] for r in data["results"]]
    assert paths == [str(tmp_path / "heat-0.png"), str(tmp_path / "heat-1.png")]
    assert all((tmp_path / f"heat-{i}.png").stat().st_size > 0 for i in range(2))
    grid = np.asarray(data["results"][0]["heatmap"]["relevance"])
    assert grid.ndim == 2 and grid.max() > 0 and "image" not in data["results"][0]["heatmap"]


def test_models_and_health(server, capsys):
    assert main(["models", "--server", server.address]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("* ")
    assert main(["models", "--json", "--server", server.address]) == 0
    listed = json.loads(capsys.readouterr().out)
    default = listed["default_model"]
    assert default in [m["name"] for m in listed["models"]]
    assert main(["health", "--server", server.address]) == 0
    assert capsys.readouterr().out.strip() == "SERVING"
    assert main(["health", "--model", default, "--server", server.address]) == 0


def test_server_errors_exit_1(server, chelsea_png, capsys):
    assert main(["classify", str(chelsea_png), "--model", "no-such-model", "--server", server.address]) == 1
    assert capsys.readouterr().err.startswith("error: NOT_FOUND: ")
    assert main(["classify", str(chelsea_png), "--roi", "1000,1000,5,5", "--server", server.address]) == 1
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: rois[0]")
    assert main(["health", "--model", "no-such-model", "--server", server.address]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
