"""Writing the small ONNX graphs the tests build with onnx.helper."""
from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper


def save_graph(graph: onnx.GraphProto, path: Path, opset: int = 13) -> Path:
    """Checks the graph as a model (IR 8, so any onnxruntime >= 1.14 loads it) and writes it."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="roiclass-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
