"""An identity model for the chip tests (onnx.helper): its output is its
input, flattened and divided by its sum (|x| / sum |x|), so the server
reads it as probabilities (no softmax) and class i's confidence is the
chip's pixel i up to one scale. Served from an .emd (one band, DataRange
[0, 255]: the model sees the raw uint8 values; the fill is 0).
"""
from __future__ import annotations

import json

import numpy as np
from onnx import TensorProto, helper

from tests.onnx_files import save_graph

SIDE = 16


def write_identity_emd(folder, name: str = "ident", **keys) -> str:
    """The model and its .emd in `folder`; `keys` add or replace .emd keys."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, SIDE, SIDE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", SIDE * SIDE])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("Abs", ["flat"], ["mag"]),
        helper.make_node("ReduceSum", ["mag", "axes"], ["total"], keepdims=1),
        helper.make_node("Div", ["mag", "total"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "identity", [x], [y], initializer=[axes])
    save_graph(graph, folder / f"{name}.onnx")
    emd = {"Framework": "ONNX", "ModelFile": f"{name}.onnx", "ModelType": "ObjectClassification",
           "ImageWidth": SIDE, "ImageHeight": SIDE, "ExtractBands": [0], "DataRange": [0, 255],
           "CropSizeFixed": 1, "BlackenAroundFeature": 0, "ImageSpaceUsed": "MAP_SPACE",
           "Classes": [{"Value": 1000 + i, "Name": f"p{i:03d}"} for i in range(SIDE * SIDE)]}
    emd.update(keys)
    path = folder / f"{name}.emd"
    path.write_text(json.dumps(emd))
    return str(path)


def chip_from(all_classes_json: str) -> np.ndarray:
    """AllClasses of one feature -> the (SIDE, SIDE) chip, scaled to sum 1."""
    scores = json.loads(all_classes_json)
    return np.array([scores[f"p{i:03d}"] for i in range(SIDE * SIDE)]).reshape(SIDE, SIDE)
