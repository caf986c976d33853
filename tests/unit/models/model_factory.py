"""Small real ONNX classifiers for the model-loading tests (made with onnx.helper).

The graph: mean over the spatial axes -> (N, C) -> x @ W + b -> (N, K)
logits, optionally followed by Softmax. W is chosen so class k reacts to
channel k % C, which makes the output predictable from the input colour.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.onnx_files import save_graph


def make_classifier(
    path: Path,
    *,
    num_classes: int = 4,
    channels: int = 3,
    height: int | str | None = 32,
    width: int | str | None = 32,
    layout: str = "NCHW",
    batch: int | str | None = "N",
    softmax: bool = False,
    dtype: str = "float32",
    outputs_4d: bool = False,
) -> Path:
    """Write the model to `path` and return it. None/str dims are dynamic."""
    dims = [batch, channels, height, width] if layout == "NCHW" else [batch, height, width, channels]
    elem = TensorProto.FLOAT16 if dtype == "float16" else TensorProto.FLOAT
    x = helper.make_tensor_value_info("image", elem, dims)
    w = np.zeros((channels, num_classes), np.float32)
    for k in range(num_classes):
        w[k % channels, k] = 1.0 + k // channels
    b = np.linspace(0.0, 0.1, num_classes, dtype=np.float32)
    nodes = [helper.make_node("Cast", ["image"], ["xf"], to=TensorProto.FLOAT)]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    nodes.append(helper.make_node("ReduceMean", ["xf"], ["pooled"], axes=axes, keepdims=0))
    nodes.append(helper.make_node("MatMul", ["pooled", "W"], ["mm"]))
    out = "logits" if not softmax else "pre"
    nodes.append(helper.make_node("Add", ["mm", "B"], [out]))
    if softmax:
        nodes.append(helper.make_node("Softmax", ["pre"], ["logits"], axis=1))
    out_dims = [batch, num_classes]
    if outputs_4d:
        nodes.append(helper.make_node("Unsqueeze", ["logits", "ax"], ["probs4"]))
        out_name, out_dims = "probs4", [batch, num_classes, 1, 1]
    else:
        out_name = "logits"
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    if outputs_4d:
        inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "ax"))
    graph = helper.make_graph(
        nodes, "tiny_classifier", [x], [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_dims)], inits
    )
    return save_graph(graph, path)
