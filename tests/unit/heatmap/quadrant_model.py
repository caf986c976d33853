"""A real ONNX classifier whose output depends only on the mean of one input
quadrant (made with onnx.helper), for the heatmap tests.

logits = [GAIN * mean(top-left quadrant) - GAIN / 2, 0]: with a bright input
(1.0 after "unit" normalization) class 0 wins with p ~ sigmoid(GAIN / 2);
hiding part of that quadrant with the fill (0) lowers it, hiding anything
else changes nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.onnx_files import save_graph

SIDE = 32
GAIN = 12.0
CLASSES = ("quadrant", "other")


def quadrant_weights(side: int = SIDE, channels: int = 3, layout: str = "NCHW") -> np.ndarray:
    """(C*H*W, 2) float32: column 0 averages the top-left quadrant of the flattened input."""
    mask = np.zeros((side, side), np.float32)
    mask[: side // 2, : side // 2] = 1.0
    full = np.repeat(mask[None], channels, 0) if layout == "NCHW" else np.repeat(mask[:, :, None], channels, 2)
    w = np.zeros((full.size, 2), np.float32)
    w[:, 0] = full.ravel() * (GAIN / full.sum())
    return w


def make_quadrant_model(path: Path, side: int = SIDE, layout: str = "NCHW") -> Path:
    dims = ["N", 3, side, side] if layout == "NCHW" else ["N", side, side, 3]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    inits = [
        numpy_helper.from_array(quadrant_weights(side, 3, layout), "W"),
        numpy_helper.from_array(np.array([-GAIN / 2, 0.0], np.float32), "B"),
    ]
    graph = helper.make_graph(nodes, "quadrant", [x], [y], inits)
    return save_graph(graph, path)


def make_quadrant_folder(folder: Path, side: int = SIDE, layout: str = "NCHW", resize: str = "stretch",
                         max_batch: int = 16) -> Path:
    """A model folder (model.onnx + config.toml) the server loads as model `quadrant`."""
    folder = Path(folder)
    make_quadrant_model(folder / "model.onnx", side, layout)
    (folder / "config.toml").write_text(
        'name = "quadrant"\n'
        f"classes = {list(CLASSES)!r}\n".replace("'", '"')
        + "[input]\n"
        f"width = {side}\nheight = {side}\n"
        f'layout = "{layout}"\nnormalization = "unit"\nresize = "{resize}"\nfill = 0\n'
        "[batching]\n"
        f"max_batch_size = {max_batch}\n"
    )
    return folder
