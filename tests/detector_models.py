"""Small real ONNX detectors for the detector tests (made with onnx.helper).

cell_detector (YOLOv8 layout [4+nc, N]): the input is cut into square cells,
one anchor each; a cell's box is the bounding box of its bright pixels (max
over channels > 0.5) and class k's score is the largest value of channel k
among them. So a coloured square inside a cell is detected as exactly its
bounding box, its class by its colour, its confidence by its brightness.

moments_detector (YOLOv8-OBB layout [4+nc+1, N], one anchor, one class): the
box of the brightness-weighted image from its moments: centre = first
moments; angle = 0.5 * atan(2 mu11 / (mu20 - mu02)) (the major axis, for
|angle| < 45 degrees); width, height = sqrt(12 * eigenvalue + 1) of the covariance
(a uniform rectangle's side; + 1: the pixel's own variance, 1/12, which
samples at pixel centres miss); score = the brightest sample.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.onnx_files import save_graph


def _const(name: str, value) -> object:
    return numpy_helper.from_array(np.asarray(value), name)


def cell_detector(path: Path, *, side: int = 64, cell: int = 16, classes: int = 2) -> Path:
    g = side // cell
    n = g * g
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, side, side])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4 + classes, n])
    idx = np.arange(cell, dtype=np.float32)
    cx0 = np.tile(np.arange(g) * cell, g).astype(np.float32)  # cell (row r, column c) -> c * cell
    cy0 = np.repeat(np.arange(g) * cell, g).astype(np.float32)
    inits = [
        _const("half", np.float32(0.5)), _const("big", np.float32(cell)),
        _const("idx_m", idx - cell), _const("idx_1", idx + 1),
        _const("cx0", cx0), _const("cy0", cy0),
        _const("cells1", np.array([-1, 1, g, cell, g, cell], np.int64)),
        _const("flat1", np.array([-1, n, cell, cell], np.int64)),
        _const("cells3", np.array([-1, 3, g, cell, g, cell], np.int64)),
        _const("flat3", np.array([-1, 3, n, cell * cell], np.int64)),
        _const("row", np.array([-1, 1, n], np.int64)),
        _const("keep_cls", np.arange(classes, dtype=np.int64)),
    ]
    N = helper.make_node
    nodes = [
        N("ReduceMax", ["images"], ["bright"], axes=[1], keepdims=1),
        N("Greater", ["bright", "half"], ["on"]),
        N("Cast", ["on"], ["mask"], to=TensorProto.FLOAT),
        N("Mul", ["images", "mask"], ["lit"]),
        # (B, 1, H, W) -> (B, cells, cell y, cell x)
        N("Reshape", ["mask", "cells1"], ["m6"]),
        N("Transpose", ["m6"], ["m6t"], perm=[0, 1, 2, 4, 3, 5]),
        N("Reshape", ["m6t", "flat1"], ["mc"]),
        N("ReduceMax", ["mc"], ["cols"], axes=[2], keepdims=0),  # (B, cells, cell x)
        N("ReduceMax", ["mc"], ["rows"], axes=[3], keepdims=0),
    ]
    for prof, axis0, name in (("cols", "cx0", "x"), ("rows", "cy0", "y")):
        nodes += [
            N("Mul", [prof, "idx_m"], [f"{name}_m"]),
            N("Add", [f"{name}_m", "big"], [f"{name}_lo_s"]),  # off pixels count as `cell`
            N("ReduceMin", [f"{name}_lo_s"], [f"{name}_lo"], axes=[2], keepdims=0),
            N("Mul", [prof, "idx_1"], [f"{name}_h"]),
            N("ReduceMax", [f"{name}_h"], [f"{name}_hi"], axes=[2], keepdims=0),
            N("Sub", [f"{name}_hi", f"{name}_lo"], [f"{name}_size"]),
            N("Add", [f"{name}_hi", f"{name}_lo"], [f"{name}_sum"]),
            N("Mul", [f"{name}_sum", "half"], [f"{name}_mid"]),
            N("Add", [f"{name}_mid", axis0], [f"{name}_c"]),
            N("Reshape", [f"{name}_c", "row"], [f"{name}_cr"]),
            N("Reshape", [f"{name}_size", "row"], [f"{name}_sr"]),
        ]
    nodes += [
        N("Reshape", ["lit", "cells3"], ["l6"]),
        N("Transpose", ["l6"], ["l6t"], perm=[0, 1, 2, 4, 3, 5]),
        N("Reshape", ["l6t", "flat3"], ["lc"]),
        N("ReduceMax", ["lc"], ["chan"], axes=[3], keepdims=0),  # (B, 3, cells)
        N("Gather", ["chan", "keep_cls"], ["scores"], axis=1),
        N("Concat", ["x_cr", "y_cr", "x_sr", "y_sr", "scores"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(nodes, "cell_detector", [x], [out], inits)
    return save_graph(graph, path)


def moments_detector(path: Path, *, side: int = 64) -> Path:
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, side, side])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, 1])
    centres = np.arange(side, dtype=np.float32) + 0.5  # pixel centres
    gx = np.broadcast_to(centres[None, :], (side, side)).reshape(1, 1, side, side).copy()
    gy = np.broadcast_to(centres[:, None], (side, side)).reshape(1, 1, side, side).copy()
    inits = [_const("gx", gx), _const("gy", gy), _const("half", np.float32(0.5)),
             _const("twelve", np.float32(12.0)), _const("one", np.float32(1.0)), _const("two", np.float32(2.0)),
             _const("shape", np.array([-1, 6, 1], np.int64)), _const("axes", np.array([1, 2, 3], np.int64))]
    N = helper.make_node
    # ReduceSum takes its axes as an input from opset 13; (B, 1, 1, 1) values throughout.
    s = lambda src, dst: N("ReduceSum", [src, "axes"], [dst], keepdims=1)  # noqa: E731
    nodes = [
        N("ReduceMax", ["images"], ["g"], axes=[1], keepdims=1),
        s("g", "m00"),
        N("Mul", ["g", "gx"], ["wx"]), N("Mul", ["g", "gy"], ["wy"]),
        s("wx", "m10"), s("wy", "m01"),
        N("Mul", ["wx", "gx"], ["wxx"]), N("Mul", ["wy", "gy"], ["wyy"]), N("Mul", ["wx", "gy"], ["wxy"]),
        s("wxx", "m20"), s("wyy", "m02"), s("wxy", "m11"),
        N("Div", ["m10", "m00"], ["cx"]), N("Div", ["m01", "m00"], ["cy"]),
        N("Div", ["m20", "m00"], ["e20"]), N("Div", ["m02", "m00"], ["e02"]), N("Div", ["m11", "m00"], ["e11"]),
        N("Mul", ["cx", "cx"], ["cx2"]), N("Mul", ["cy", "cy"], ["cy2"]), N("Mul", ["cx", "cy"], ["cxy"]),
        N("Sub", ["e20", "cx2"], ["mu20"]), N("Sub", ["e02", "cy2"], ["mu02"]), N("Sub", ["e11", "cxy"], ["mu11"]),
        N("Sub", ["mu20", "mu02"], ["diff"]), N("Mul", ["mu11", "two"], ["mu11x2"]),
        N("Div", ["mu11x2", "diff"], ["ratio"]), N("Atan", ["ratio"], ["at"]), N("Mul", ["at", "half"], ["angle"]),
        N("Add", ["mu20", "mu02"], ["tr"]), N("Mul", ["tr", "half"], ["mid"]),
        N("Mul", ["diff", "half"], ["hd"]), N("Mul", ["hd", "hd"], ["hd2"]), N("Mul", ["mu11", "mu11"], ["m112"]),
        N("Add", ["hd2", "m112"], ["disc"]), N("Sqrt", ["disc"], ["root"]),
        N("Add", ["mid", "root"], ["l1"]), N("Sub", ["mid", "root"], ["l2"]),
        N("Mul", ["l1", "twelve"], ["l1x"]), N("Mul", ["l2", "twelve"], ["l2x"]),
        N("Add", ["l1x", "one"], ["l1p"]), N("Add", ["l2x", "one"], ["l2p"]),
        N("Sqrt", ["l1p"], ["w"]), N("Sqrt", ["l2p"], ["h"]),
        N("ReduceMax", ["g"], ["score"], axes=[1, 2, 3], keepdims=1),
        N("Concat", ["cx", "cy", "w", "h", "score", "angle"], ["flat"], axis=1),
        N("Reshape", ["flat", "shape"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "moments_detector", [x], [out], inits)
    return save_graph(graph, path)


def constant_detector(path: Path, output: np.ndarray, *, side: int = 64, dims: list | None = None) -> Path:
    """Outputs `output` (one image's rows) for every image: for decoding a chosen raw
    output through the engine, and for the load checks (`dims`: the declared
    per-image dims, a str for a dynamic one)."""
    output = np.asarray(output, np.float32)
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, side, side])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch"] + (dims or list(output.shape)))
    N = helper.make_node
    nodes = [
        N("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),  # (B,)
        N("Reshape", ["m", "col"], ["m3"]),
        N("Mul", ["m3", "zero"], ["z"]),  # (B, 1, ...) zeros: the batch axis
        N("Add", ["z", "rows"], ["out"]),
    ]
    inits = [_const("col", np.array([-1] + [1] * output.ndim, np.int64)), _const("zero", np.float32(0)),
             _const("rows", output)]
    if dims is None or all(isinstance(d, int) for d in dims):
        nodes.append(N("Identity", ["out"], ["output0"]))
    else:  # a shape only known at run time (from the input's): ONNX Runtime reports it dynamic
        nodes += [N("Shape", ["images"], ["in_shape"]), N("Slice", ["in_shape", "s0", "s1"], ["b"]),
                  N("Concat", ["b", "tail"], ["out_shape"], axis=0), N("Reshape", ["out", "out_shape"], ["output0"])]
        inits += [_const("s0", np.array([0], np.int64)), _const("s1", np.array([1], np.int64)),
                  _const("tail", np.array([output.shape[0], -1], np.int64))]
    graph = helper.make_graph(nodes, "constant_detector", [x], [y], inits)
    return save_graph(graph, path)
