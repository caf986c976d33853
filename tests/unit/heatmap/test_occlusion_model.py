"""The occlusion math end to end on a real ONNX model run with ONNX Runtime
(no server): relevance lands on the one quadrant the model looks at."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from roiclass.server.domain import HeatmapRequest
from roiclass.server.heatmap.occlusion import occlude, relevance_grids, resolve
from roiclass.server.heatmap.rendering import heatmap_image
from roiclass.server.models.spec import ModelSpec

from .quadrant_model import SIDE, make_quadrant_model


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_relevance_lies_in_the_quadrant_the_model_reads(tmp_path: Path, layout):
    path = make_quadrant_model(tmp_path / "q.onnx", layout=layout)
    spec = ModelSpec("q", "1", path, ("quadrant", "other"), SIDE, SIDE, 3, layout=layout,
                     mean=(0.0,) * 3, std=(255.0,) * 3, fill=0.0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = (1, 3, SIDE, SIDE) if layout == "NCHW" else (1, SIDE, SIDE, 3)
    base = np.ones(shape, np.float32)  # a white ROI after "unit" normalization
    params = resolve(spec, HeatmapRequest(8, 4, None))
    copies = occlude(base, params, spec.normalized_fill, layout, 0, params.occlusions)
    p0 = _softmax(session.run(None, {"image": base})[0])[0, 0]
    probs = _softmax(session.run(None, {"image": copies})[0])[:, 0]
    drops = np.maximum(p0 - probs, 0.0).reshape(1, len(params.ys), len(params.xs))
    grid = relevance_grids(drops, params, SIDE, SIDE)[0]
    half = grid.shape[0] // 2
    assert grid[:half, :half].min() > 0.0
    assert np.unravel_index(grid.argmax(), grid.shape) < (half, half)
    # Only the cell touching the quadrant's corner sees a patch that overlaps it.
    assert grid[half:, half:].mean() < 0.02 * grid.max() and grid[half + 1:, half + 1:].max() == 0.0
    image = heatmap_image(grid, 90.0, 60.0, SIDE, SIDE, params.stride, "stretch", 1.0, 256)
    assert image[:30, :45].mean() > 20 * image[30:, 45:].mean()

