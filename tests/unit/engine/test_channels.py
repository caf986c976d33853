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


def test_bands_of_named_formats_are_numbered_in_colour_order(tiny_onnx):
    """extract_bands reads R, G, B, A whatever the storage order (BGR8's band 0 is red)."""
    from roiclass.server import formats
    bands = make_spec(tiny_onnx, channel_order="bands:0,3,2")
    assert channel_map(bands, "RGBA8") == (0, 3, 2)
    assert channel_map(bands, "BGRA8") == (2, 3, 0)
    assert channel_map(bands, formats.generic(4, "uint16")) == (0, 3, 2)
    assert channel_map(make_spec(tiny_onnx, channel_order="bands:0,0,0"), "GRAY16") == (0, 0, 0)


def test_generic_images_feed_colour_and_gray_models_by_position(tiny_onnx):
    from roiclass.server import formats
    rgb, bgr = make_spec(tiny_onnx), make_spec(tiny_onnx, channel_order="BGR")
    gray = make_spec(tiny_onnx, channels=1, channel_order="GRAY", mean=(0.0,), std=(255.0,))
    eight = formats.generic(8, "float32")
    assert (channel_map(rgb, eight), channel_map(bgr, eight), channel_map(gray, eight)) == \
        ((0, 1, 2), (2, 1, 0), (LUMA_RGB,))
    assert channel_map(rgb, formats.generic(1, "uint8")) == (0, 0, 0)
    with pytest.raises(errors.InvalidArgument, match="has 2 bands"):
        channel_map(rgb, formats.generic(2, "uint8"))


def test_kernel_args_scale_by_the_sample_type_unless_raw_units(tiny_onnx):
    from roiclass.server import formats
    spec = make_spec(tiny_onnx, mean=(10.0,), std=(20.0,), fill=5.0)
    f32, u16 = formats.generic(3, "float32"), formats.generic(3, "uint16")
    assert kernel_args(spec, f32).std == pytest.approx((20 / 255,) * 3)
    assert kernel_args(spec, u16).mean == (10.0 * 257,) * 3 and kernel_args(spec, u16).fill == 5.0 * 257
    raw = make_spec(tiny_onnx, mean=(10.0,), std=(20.0,), fill=5.0, raw_units=True)
    for fmt in (f32, u16, "RGB8"):
        ka = kernel_args(raw, fmt)
        assert (ka.mean, ka.std, ka.fill) == ((10.0,) * 3, (20.0,) * 3, 5.0)


def test_engine_classify_takes_polygons_per_roi(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    rois = rois_grid(3, seed=4)
    rois[2] = rois[0]  # the same ROI and mask, given as a list of rings and as one ring
    ring = np.array([[100.0, 60.0], [250.0, 90.0], [160.0, 220.0]])
    masked = eng.classify(model, chelsea, "RGB8", rois, polygons=[[ring], None, ring]).result(timeout=10)
    plain = eng.classify(model, chelsea, "RGB8", rois).result(timeout=10)
    assert np.array_equal(masked.probabilities[1], plain.probabilities[1])
    assert not np.array_equal(masked.probabilities[0], plain.probabilities[0])
    np.testing.assert_array_equal(masked.probabilities[0], masked.probabilities[2])
    tensors = eng.preprocess(model, chelsea, "RGB8", rois, [[ring], None, ring])
    np.testing.assert_array_equal(tensors[0], tensors[2])
    with pytest.raises(errors.InvalidArgument, match="one per ROI"):
        eng.classify(model, chelsea, "RGB8", rois, polygons=[None]).result(timeout=10)
