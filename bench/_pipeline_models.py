"""The models of bench/pipelines.py, as one roiclass repository per model set:

    <root>/<set>/square_det/{config.toml, 1/model.onnx}   YOLOv8-layout detector (onnx.helper)
    <root>/<set>/<classifier>/...                          its config has one [[children]]
    <root>/<set>/<child>/...

The detector sees the image letterboxed to DET_SIDE (a square image: a plain
resize) and splits it into a GRID x GRID grid of cells; each cell is one
candidate box (the whole cell, cx cy w h in input pixels) scored by the
cell's mean brightness (sigmoid(SHARPNESS * (mean - 0.5))). Output
[N, 4 + 1, GRID * GRID], Ultralytics YOLOv8's layout with one class. The
bench image (bench_image) has SQUARES bright cell-aligned squares on black:
exactly those cells pass the confidence threshold, so every request gets
SQUARES ROIs, and the classifier's child runs on each (its `when` is empty).

Sets: "small" (tiny CNNs, bench/tiny_model.py, as classifier and child: the
per-call cost dominates) and "large" (EfficientNet-Lite0, models/, as both:
the compute dominates). The detector is the same small model in both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import tiny_model

ROOT = Path(__file__).resolve().parent.parent
DETECTOR = "square_det"
DET_SIDE = 256  # detector input (pixels)
GRID = 8  # cells per side; cell = DET_SIDE / GRID input pixels
SHARPNESS = 20.0
IMAGE_SIDE = 512  # bench image; letterboxed 2:1 into the detector
SQUARES = ((1, 1), (2, 5), (5, 2), (6, 6))  # (row, col) of the bright cells
SETS = {"small": ("cls_small", "child_small"), "large": ("cls_large", "child_large")}

DETECTOR_CONFIG = f"""\
# Made by bench/_pipeline_models.py: a grid-cell detector in YOLOv8's output layout.
name = "{DETECTOR}"
classes = ["square"]

[input]
width = {DET_SIDE}
height = {DET_SIDE}
channel_order = "RGB"
layout = "NCHW"
normalization = "unit"
resize = "stretch"
border = "constant"
fill = 0

[output]
activation = "none"

[batching]
max_batch_size = 8

[detector]
format = "yolov8"
confidence = 0.5
iou = 0.45
"""

CHILD_TABLE = """
[[children]]
model = "{child}"
when = []
min_confidence = 0.0
roi = "same"
"""


def build_detector():
    """AveragePool over each cell -> channel mean -> sigmoid score; boxes are constants broadcast over the batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cell = DET_SIDE // GRID
    centers = (np.arange(GRID, dtype=np.float32) + 0.5) * cell
    cy, cx = np.meshgrid(centers, centers, indexing="ij")  # row-major cells: index = row * GRID + col
    boxes = np.stack([cx.ravel(), cy.ravel(), np.full(GRID * GRID, cell, np.float32),
                      np.full(GRID * GRID, cell, np.float32)])[None].astype(np.float32)  # (1, 4, G*G)
    inits = [numpy_helper.from_array(boxes, "boxes"),
             numpy_helper.from_array(np.array([0, 1, GRID * GRID], np.int64), "shape"),
             numpy_helper.from_array(np.array(SHARPNESS, np.float32), "k"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    nodes = [
        helper.make_node("AveragePool", ["images"], ["cells"], kernel_shape=[cell, cell], strides=[cell, cell]),
        helper.make_node("ReduceMean", ["cells"], ["gray"], axes=[1], keepdims=1),
        helper.make_node("Reshape", ["gray", "shape"], ["flat"]),  # (N, 1, G*G)
        helper.make_node("Sub", ["flat", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "k"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["score"]),
        helper.make_node("Mul", ["score", "zero"], ["nil"]),  # (N, 1, G*G) zeros: the batch size for the boxes
        helper.make_node("Add", ["nil", "boxes"], ["xywh"]),  # (N, 4, G*G)
        helper.make_node("Concat", ["xywh", "score"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, DETECTOR,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, DET_SIDE, DET_SIDE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 5, GRID * GRID])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="roiclass-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def bench_image() -> np.ndarray:
    """IMAGE_SIDE^2 RGB, black with a white square filling each SQUARES cell."""
    image = np.zeros((IMAGE_SIDE, IMAGE_SIDE, 3), np.uint8)
    side = IMAGE_SIDE // GRID
    for row, col in SQUARES:
        image[row * side:(row + 1) * side, col * side:(col + 1) * side] = 255
    return image


def expected_rois() -> np.ndarray:
    """The SQUARES cells in image coordinates, (x, y, width, height, angle) rows."""
    side = IMAGE_SIDE // GRID
    return np.array([(c * side, r * side, side, side, 0.0) for r, c in SQUARES], np.float64)


def _write_detector(folder: Path) -> None:
    import onnx

    (folder / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(build_detector(), str(folder / "1" / "model.onnx"))
    (folder / "config.toml").write_text(DETECTOR_CONFIG)


def _write_tiny(folder: Path, name: str, child: str | None) -> None:
    (folder / "1").mkdir(parents=True, exist_ok=True)
    import onnx

    onnx.save(tiny_model.build_model(), str(folder / "1" / "model.onnx"))
    text = tiny_model.CONFIG.replace('name = "tiny_cnn"', f'name = "{name}"')
    (folder / "config.toml").write_text(text + (CHILD_TABLE.format(child=child) if child else ""))


def _write_lite0(folder: Path, name: str, child: str | None) -> None:
    """models/efficientnet_lite0 under another name: the ONNX file linked, no warm-up golden image."""
    src = ROOT / "models" / "efficientnet_lite0"
    (folder / "1").mkdir(parents=True, exist_ok=True)
    link = folder / "1" / "model.onnx"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(src / "1" / "model.onnx")
    (folder / "classes.txt").write_bytes((src / "classes.txt").read_bytes())
    text = (src / "config.toml").read_text().split("[warmup]")[0]
    (folder / "config.toml").write_text(f'name = "{name}"\n' + text + (CHILD_TABLE.format(child=child) if child else ""))


def write_repository(root: Path, which: str) -> tuple[Path, str, str]:
    """(the repository folder, the classifier's name, the child's name) of set `which`."""
    classifier, child = SETS[which]
    repo = Path(root) / which
    _write_detector(repo / DETECTOR)
    write = _write_tiny if which == "small" else _write_lite0
    write(repo / classifier, classifier, child)
    write(repo / child, child, None)
    return repo, classifier, child
