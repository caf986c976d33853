"""A detector + classifier + children through the Python client and
`roiclass classify --detector`: one call, the tree printed readably."""
from __future__ import annotations

import json

import numpy as np
import pytest

from roiclass.client import Classifier
from roiclass.client.cli import main
from tests.child_models import expected, write_repository
from tests.conftest import png_bytes
from tests.detector_models import cell_detector
from tests.integration.serving import serve

# On a 128 x 64 image each square lies inside one 16-pixel cell of the detector's
# 64 x 64 input once centred (tests/detector_models.py). paint: red -> shade (bright)
# -> tint (greenish); green -> edge on the ROI grown 2x.
SQUARES = [((8, 6, 24, 22), (255, 220, 180)), ((72, 36, 92, 60), (0, 230, 0))]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline-cli")
    repo = write_repository(root / "repo")
    cell_detector(repo / "cells" / "1" / "model.onnx")
    (repo / "cells" / "config.toml").write_text(
        'classes = ["red", "green"]\n[input]\nfill = 114\n[detector]\nformat = "yolov8"\nconfidence = 0.5\n')
    image = np.zeros((64, 128, 3), np.uint8)
    for (x0, y0, x1, y1), rgb in SQUARES:
        image[y0:y1, x0:x1] = rgb
    png = root / "squares.png"
    png.write_bytes(png_bytes(image))
    with serve("--models", str(repo)) as srv:
        yield srv, png, image


def test_the_client_reads_one_tree_per_detected_object(served):
    srv, _, image = served
    with Classifier(srv.address) as classifier:
        result = classifier.classify(image, model="paint", detector="cells")
    boxes = sorted((r.detection.box.x, r.detection.box.y, r.detection.box.width, r.detection.box.height)
                   for r in result.results)
    assert boxes == [pytest.approx((x0, y0, x1 - x0, y1 - y0), abs=1e-3) for (x0, y0, x1, y1), _ in SQUARES]
    by_class = {r.class_name: r for r in result.results}
    assert set(by_class) == {"red", "green"}
    red = by_class["red"]
    pixels = np.array(SQUARES[0][1], np.uint8).reshape(1, 1, 3)
    assert [c.model for c in red.children] == ["shade"] and red.children[0].result.class_name == "bright"
    assert expected("shade", pixels)[0] == "bright"
    grandchild = red.children[0].result.children
    assert [(c.model, c.result.class_name) for c in grandchild] == [("tint", expected("tint", pixels)[0])]
    green = by_class["green"]
    assert [c.model for c in green.children] == ["edge"]
    grown = green.children[0].result.aligned_roi
    assert (grown.width, grown.height) == pytest.approx((2 * 20, 2 * 24), abs=1e-3)
    with Classifier(srv.address) as classifier:
        bare = classifier.classify(image, model="paint", detector="cells", children=False)
    assert len(bare.results) == 2 and all(not r.children for r in bare.results)


def test_the_cli_prints_the_tree_under_each_detection(served, capsys):
    srv, png, _ = served
    code = main(["classify", str(png), "--model", "paint", "--detector", "cells", "--top-k", "1",
                 "--server", srv.address])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert sum(line.startswith("ROI ") for line in lines) == 2
    assert sum("detected " in line and " by cells 1" in line for line in lines) == 2
    shade = next(i for i, line in enumerate(lines) if "└ shade 1: bright" in line)
    tint = next(i for i, line in enumerate(lines) if "└ tint 1: greenish" in line)
    # The grandchild sits under its parent, indented one level deeper.
    assert tint > shade and len(lines[tint]) - len(lines[tint].lstrip()) > len(lines[shade]) - len(lines[shade].lstrip())
    assert any("└ edge 1:" in line for line in lines)


def test_the_cli_json_holds_the_tree_and_no_children_cuts_it(served, capsys):
    srv, png, _ = served
    assert main(["classify", str(png), "--model", "paint", "--detector", "cells", "--json",
                 "--server", srv.address]) == 0
    data = json.loads(capsys.readouterr().out)
    models = sorted(c["model"] for r in data["results"] for c in r["children"])
    assert models == ["edge", "shade"]
    assert all(r["detection"]["model"] == "cells" for r in data["results"])
    assert main(["classify", str(png), "--model", "paint", "--detector", "cells", "--json", "--no-children",
                 "--server", srv.address]) == 0
    assert all(not r["children"] for r in json.loads(capsys.readouterr().out)["results"])
    assert main(["classify", str(png), "--model", "paint", "--detector", "cells", "--json", "--child-depth", "1",
                 "--server", srv.address]) == 0
    red = [r for r in json.loads(capsys.readouterr().out)["results"] if r["class_name"] == "red"][0]
    assert [c["model"] for c in red["children"]] == ["shade"] and not red["children"][0]["result"]["children"]


def test_the_cli_names_a_bad_tta_in_one_line(served, capsys):
    srv, png, _ = served
    code = main(["classify", str(png), "--model", "paint", "--tta", "mirror", "--server", srv.address])
    err = capsys.readouterr().err
    assert code != 0 and err.splitlines()[0].startswith("error: INVALID_ARGUMENT: tta:")


def test_models_lists_what_each_model_chains(served, capsys):
    srv, _, _ = served
    assert main(["models", "--server", srv.address]) == 0
    lines = capsys.readouterr().out.splitlines()
    paint = next(i for i, line in enumerate(lines) if line[2:].startswith("paint "))
    assert lines[paint + 1].strip() == "children: shade (when red), edge (when green or blue)"
    cells = next(i for i, line in enumerate(lines) if line[2:].startswith("cells "))
    assert lines[cells + 1].strip() == "detector yolov8"
    tint = next(i for i, line in enumerate(lines) if line[2:].startswith("tint "))
    assert not lines[tint + 1].startswith("    ")  # no pipeline: no extra line
