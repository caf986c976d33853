"""A tiny CNN made with onnx.helper, as a roiclass model folder.

It costs a few microseconds per ROI, so a benchmark on it measures what a
server adds per request (transport, decoding, preprocessing, batching), not
the network's arithmetic.

    <folder>/config.toml
    <folder>/1/model.onnx
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SIDE = 32  # input side in pixels
CLASSES = 10
WIDTH = 8  # conv channels

CONFIG = f"""\
# Made by bench/tiny_model.py: a tiny CNN for per-request overhead benchmarks.
name = "tiny_cnn"
classes = [{", ".join(f'"class_{i}"' for i in range(CLASSES))}]

[input]
width = {SIDE}
height = {SIDE}
channel_order = "RGB"
layout = "NCHW"
normalization = "unit"
resize = "stretch"

[output]
activation = "softmax"

[batching]
max_batch_size = 64
"""


def build_model():
    """conv3x3/2 (3->8) -> ReLU -> global average pool -> dense (8->10): logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w_conv = rng.standard_normal((WIDTH, 3, 3, 3)).astype(np.float32) * 0.3
    b_conv = rng.standard_normal(WIDTH).astype(np.float32) * 0.1
    w_fc = rng.standard_normal((CLASSES, WIDTH)).astype(np.float32)
    b_fc = rng.standard_normal(CLASSES).astype(np.float32) * 0.1
    inits = [
        numpy_helper.from_array(w_conv, "w_conv"),
        numpy_helper.from_array(b_conv, "b_conv"),
        numpy_helper.from_array(w_fc, "w_fc"),
        numpy_helper.from_array(b_fc, "b_fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w_conv", "b_conv"], ["conv"], kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w_fc", "b_fc"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        inits,
    )
    # Opset 13 / IR 8: loadable by every onnxruntime the bench meets.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="roiclass-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_model_folder(folder: Path) -> Path:
    """Writes (or rewrites) the model folder; returns it."""
    import onnx

    folder = Path(folder)
    (folder / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(build_model(), str(folder / "1" / "model.onnx"))
    (folder / "config.toml").write_text(CONFIG)
    log.info("tiny CNN written to %s", folder)
    return folder
