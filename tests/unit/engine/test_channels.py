"""Pixel formats into model channels: channel maps, 16-bit scaling, bands."""
from __future__ import annotations

import numpy as np
import pytest
from tests.unit.engine.conftest import make_spec, rois_grid

from roiclass.server import errors
from roiclass.server.engine.channels import channel_map, kernel_args
from roiclass.server.models.spec import LUMA_BGR, LUMA_RGB


def test_channel_maps(tiny_onnx):
    rgb = make_spec(tiny_onnx)
    assert channel_map(rgb, "BGR8") == (2, 1, 0)
    assert channel_map(rgb, "RGBA8") == (0, 1, 2)
    assert channel_map(rgb, "GRAY8") == (0, 0, 0)
    gray = make_spec(tiny_onnx, channels=1, channel_order="GRAY", mean=(0.0,), std=(255.0,))
    assert channel_map(gray, "RGB8") == (LUMA_RGB,)
    assert channel_map(gray, "BGRA8") == (LUMA_BGR,)
    bands = make_spec(tiny_onnx, channel_order="bands:3,2,1")
    assert channel_map(bands, "RGBA8") == (3, 2, 1)
    with pytest.raises(errors.InvalidArgument) as err:
        channel_map(bands, "RGB8")
    assert err.value.violations[0].field == "image.raw.pixel_format"
    assert "[3]" in err.value.message
    assert kernel_args(rgb, "GRAY16").std == (255.0 * 257,) * 3


def test_bgr_rgba_and_gray16_match_their_rgb_and_gray8_twins(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    rois = rois_grid(4, seed=3)

    def probs(image, fmt):
        return eng.classify(model, image, fmt, rois).result(timeout=10).probabilities

    rgb = probs(chelsea, "RGB8")
    np.testing.assert_allclose(probs(np.ascontiguousarray(chelsea[..., ::-1]), "BGR8"), rgb,
                               rtol=1e-5)
    rgba = np.dstack([chelsea, np.full(chelsea.shape[:2], 9, np.uint8)])
    np.testing.assert_allclose(probs(rgba, "RGBA8"), rgb, rtol=1e-5)
    gray = chelsea[..., 1].copy()
    np.testing.assert_allclose(probs(gray.astype(np.uint16) * 257, "GRAY16"),
                               probs(gray, "GRAY8"), rtol=1e-4)
    strided = np.zeros((300, 500, 3), np.uint8)
    strided[:, :451] = chelsea  # rows longer than the image: a strided view
    np.testing.assert_allclose(probs(strided[:, :451], "RGB8"), rgb, rtol=1e-5)
