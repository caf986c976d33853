"""A model whose output depends on the chip's orientation, for the TTA tests:
its logits are scaled means of the chip's left, right, top and bottom halves
and of its top-left quadrant (a mirror swaps left and right, a turn moves
every half), so averaging variants is visible in every class."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from tests.onnx_files import save_graph

SIZE = 16
CLASSES = ("left", "right", "top", "bottom", "corner")


def orientation_weights(size: int = SIZE, channels: int = 3) -> np.ndarray:
    """(C * S * S, 5): each column averages one region of the (C, S, S) chip, times 6."""
    half = size // 2
    regions = np.zeros((len(CLASSES), size, size), np.float32)
    regions[0, :, :half] = 1
    regions[1, :, half:] = 1
    regions[2, :half, :] = 1
    regions[3, half:, :] = 1
    regions[4, :half, :half] = 1
    regions /= regions.sum(axis=(1, 2), keepdims=True) * channels
    w = np.broadcast_to(regions[:, None], (len(CLASSES), channels, size, size))
    return (6.0 * w.reshape(len(CLASSES), -1).T).astype(np.float32)


def make_orientation_onnx(path: Path, size: int = SIZE) -> Path:
    w = orientation_weights(size)
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(CLASSES)])
    inits = [helper.make_tensor("W", TensorProto.FLOAT, list(w.shape), w.ravel()),
             helper.make_tensor("shape", TensorProto.INT64, [2], [0, -1])]
    nodes = [helper.make_node("Reshape", ["pixels", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["logits"])]
    return save_graph(helper.make_graph(nodes, "orientation", [x], [y], inits), path)
