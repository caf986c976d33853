"""Exact cases: identity, rot90, layouts, pixel formats, channel maps, normalization."""
from __future__ import annotations

import numpy as np
import pytest
from tests.unit.ext.ext_reference import channels_and_normalize
from skimage.data import chelsea

from roiclass.ext import LUMA_BGR, LUMA_RGB, default_channel_map, preprocess_rois


def image(dtype, c, h=37, w=53, seed=0):
    hi = 256 if dtype == np.uint8 else 65536
    shape = (h, w) if c == 0 else (h, w, c)
    return np.random.default_rng(seed).integers(0, hi, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("c", [0, 1, 3, 4])  # 0: 2-D (H, W) array
def test_identity_roi_reproduces_the_image_bit_for_bit(dtype, c):
    img = image(dtype, c)
    cin = max(c, 1)
    out = np.empty((1, 37, 53, cin), np.float32)
    preprocess_rois(img, [[0, 0, 53, 37, 0]], out, layout="NHWC")
    assert np.array_equal(out[0], img.reshape(37, 53, cin).astype(np.float32))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rot90_of_integer_roi_equals_np_rot90(k):
    img = chelsea()
    x0, y0, w, h = 100, 50, 60, 40  # the crop img[y0:y0+h, x0:x0+w]
    crop = img[y0:y0 + h, x0:x0 + w]
    angle = 90 * k
    # clockwise rotation about the ROI origin: origin at the crop corner it starts from
    origin, size = {1: ((x0 + w, y0), (h, w)), 2: ((x0 + w, y0 + h), (w, h)),
                    3: ((x0, y0 + h), (h, w))}[k]
    expected = np.rot90(crop, k)
    out = np.empty((1,) + expected.shape, np.float32)
    preprocess_rois(img, [[*origin, *size, angle]], out, layout="NHWC")
    assert np.array_equal(out[0], expected.astype(np.float32))
    # -270 is +90
    preprocess_rois(img, [[*origin, *size, angle - 360]], out, layout="NHWC")
    assert np.array_equal(out[0], expected.astype(np.float32))


def test_nchw_and_nhwc_hold_the_same_numbers():
    img = chelsea()
    rois = [[10.5, 20.25, 200, 120, 33], [300, 10, 80, 90, 250], [-40, -40, 100, 100, 10]]
    nchw = np.empty((3, 3, 48, 64), np.float32)
    nhwc = np.empty((3, 48, 64, 3), np.float32)
    kw = dict(mean=[1, 2, 3], std=[4, 5, 6], resize="letterbox", fill=9)
    preprocess_rois(img, rois, nchw, layout="NCHW", **kw)
    preprocess_rois(img, rois, nhwc, layout="NHWC", **kw)
    assert np.array_equal(nchw, nhwc.transpose(0, 3, 1, 2))


CHANNEL_CASES = [
    (1, 1, None), (1, 3, None), (3, 3, None), (3, 1, None), (4, 3, None), (4, 4, None), (4, 1, None),
    (3, 3, [2, 1, 0]), (4, 3, [2, 1, 0]), (3, 1, [LUMA_BGR]), (4, 2, [LUMA_RGB, 3]),
    (3, 5, [0, 0, 1, LUMA_RGB, LUMA_BGR]), (1, 2, [0, 0]),
]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("cin,cout,cmap", CHANNEL_CASES)
def test_every_channel_map_and_normalization_against_numpy(dtype, cin, cout, cmap):
    img = image(dtype, cin, seed=cin * 10 + cout)
    rng = np.random.default_rng(cout)
    mean, std = rng.uniform(0, 100, cout), rng.uniform(0.5, 90, cout) * rng.choice([-1, 1], cout)
    out = np.empty((1, cout, 37, 53), np.float32)
    preprocess_rois(img, [[0, 0, 53, 37, 0]], out, channel_map=cmap, mean=mean, std=std)
    used = default_channel_map(cin, cout) if cmap is None else cmap
    ref = channels_and_normalize(img.reshape(37, 53, cin).astype(np.float64), used, mean, std)
    np.testing.assert_allclose(out[0].transpose(1, 2, 0), ref, rtol=2e-6, atol=1e-5 * (1 + abs(mean / std).max()))


def test_default_channel_maps():
    assert default_channel_map(1, 3) == [0, 0, 0]
    assert default_channel_map(4, 3) == [0, 1, 2]
    assert default_channel_map(3, 1) == [LUMA_RGB]
    assert default_channel_map(3, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="channel_map is required"):
        default_channel_map(3, 2)


@pytest.mark.parametrize("norm", ["none", "unit", "symmetric", "imagenet"])
def test_float16_output_equals_float32_rounded(norm):
    mean, std = {"none": (0, 1), "unit": (0, 255), "symmetric": (127.5, 127.5),
                 "imagenet": ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])}[norm]
    img = chelsea()
    rois = [[20.3, 30.7, 150, 100, 17], [0, 0, 451, 300, 0]]
    f32 = np.empty((2, 3, 50, 60), np.float32)
    f16 = np.empty((2, 3, 50, 60), np.float16)
    preprocess_rois(img, rois, f32, mean=mean, std=std)
    preprocess_rois(img, rois, f16, mean=mean, std=std)
    assert np.array_equal(f16.view(np.uint16), f32.astype(np.float16).view(np.uint16))


def test_float16_conversion_rounds_like_numpy_on_edge_values():
    vals = np.array([0, 1e-8, 5.96e-8, 6.1e-5, 1 / 3, 2049, 65504, 65519, 65520, 1e6, -1e6, -2.5e-6],
                    np.float32)
    img = np.zeros((1, len(vals)), np.uint8)
    out = np.empty((1, 1, 1, len(vals)), np.float16)
    # out = (0 - mean) * (1/std) with mean = -v, std = 1: writes the values themselves
    for i, v in enumerate(vals):
        preprocess_rois(img, [[0, 0, len(vals), 1, 0]], out, mean=[-float(v)], std=[1.0])
        with np.errstate(over="ignore"):  # 1e6 -> inf is the point
            expected = np.float32(v).astype(np.float16)
        assert out[0, 0, 0, 0].view(np.uint16) == expected.view(np.uint16), v


def test_strided_read_only_buffer_view():
    img = chelsea()
    h, w, _ = img.shape
    stride = w * 3 + 13  # padded rows, as in a RawImage with row_stride
    buf = bytearray(h * stride)
    arr = np.frombuffer(buf, np.uint8).reshape(h, stride)
    arr[:, :w * 3] = img.reshape(h, w * 3)
    view = np.ndarray(buffer=bytes(buf), shape=(h, w, 3), dtype=np.uint8, strides=(stride, 3, 1))
    assert not view.flags.writeable
    out = np.empty((1, 3, h, w), np.float32)
    preprocess_rois(view, [[0, 0, w, h, 0]], out)
    assert np.array_equal(out[0].transpose(1, 2, 0), img)


def test_writes_only_its_slice_of_the_batch():
    img = chelsea()
    batch = np.full((6, 3, 20, 20), -5.0, np.float32)
    preprocess_rois(img, [[0, 0, 100, 100, 10]] * 2, batch[2:4])
    assert np.all(batch[:2] == -5.0) and np.all(batch[4:] == -5.0)
    assert not np.any(batch[2:4] == -5.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("antialias", [False, True])
def test_rois_at_the_very_end_of_a_tight_buffer(dtype, c, antialias):
    """The last byte of the buffer is the last pixel's: under an ASan build
    (ext/README.md) any read past it fails; here the values are checked too."""
    from tests.unit.ext.ext_reference import affine, warp

    h, w = 41, 67
    isz = np.dtype(dtype).itemsize
    stride = w * c * isz + 6
    img = image(dtype, c, h, w, seed=c)
    buf = bytearray((h - 1) * stride + w * c * isz)  # no padding after the last row
    for r in range(h):
        buf[r * stride:r * stride + w * c * isz] = img[r].tobytes()
    view = np.ndarray(buffer=bytes(buf), shape=(h, w, c), dtype=dtype, strides=(stride, c * isz, isz))
    rois = [[w - 10.3, h - 8.6, 10.3, 8.6, 0], [w - 0.5, h - 0.5, 5, 5, 0], [w, h, 12, 9, 180],
            [w - 3, h - 2, 20, 20, 37], [w - 40, h - 30, 40, 30, 0]]
    out = np.empty((len(rois), 9, 7, c), np.float32)
    for border in ("constant", "replicate"):
        preprocess_rois(view, rois, out, layout="NHWC", border=border, fill=3.0, antialias=antialias)
        if not antialias:
            for n, roi in enumerate(rois):
                a, _ = affine(roi, 7, 9)
                np.testing.assert_allclose(out[n], warp(img, a, 7, 9, border, 3.0), rtol=1e-5, atol=0.02)
        assert np.all(np.isfinite(out))
