"""The benchmarks' ROI rows reach the kernel as the ROI the server is sent.

bench/serving.py once timed preprocess_ms on a 150x10 ROI at 170 degrees:
its (x, y, w, h, angle) rows went to a kernel reading (x, y, angle, w, h).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from roiclass.client import build_request
from roiclass.ext import roi_affine
from roiclass.server.domain import ClassifyRequest, RequestLimits
from roiclass.server.geometry import ROI_COLUMNS, Rect
from roiclass.server.models.spec import ModelSpec

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))
import _raw  # noqa: E402
import serving  # noqa: E402


@pytest.fixture
def spec() -> ModelSpec:
    return ModelSpec(name="m", version="1", onnx_path=Path("unused.onnx"), classes=("a", "b"),
                     input_width=40, input_height=32, channels=3, mean=(123.7, 116.3, 103.5),
                     std=(58.4, 57.1, 57.4))


def test_bench_rows_preprocess_the_rois_the_server_is_sent(spec):
    image, rois = serving.bench_image(3)
    # The server's path: the client's tuples (as bench/_clients.py sends them) -> proto -> domain rows.
    request = build_request(image, [tuple(r) for r in rois], model="m")
    served = ClassifyRequest.from_proto(request, RequestLimits()).rois_array
    bench_call, bench_out = _raw.preprocess_call(spec, image, rois)
    server_call, server_out = _raw.preprocess_call(spec, image, served)
    bench_call()
    server_call()
    np.testing.assert_array_equal(bench_out, server_out)


def test_the_bench_roi_is_170x150_at_10_degrees_for_the_kernel():
    row = serving.bench_image(1)[1][0]
    named = dict(zip(ROI_COLUMNS, row))
    assert (named["width"], named["height"], named["angle"]) == (170.0, 150.0, 10.0)
    # The kernel maps the output's corners onto the rectangle's corners.
    a = roi_affine(row, 170, 150)
    corners = Rect(**named).corners()
    for (u, v), corner in zip([(0, 0), (170, 0), (170, 150), (0, 150)], corners):
        np.testing.assert_allclose(a @ [u, v, 1], corner, atol=1e-9)
