"""Generic N-band sources: 1..16 interleaved bands of uint8, uint16 or float32
against the NumPy reference, every band subset and order, and the generic
kernel against the SIMD one on the same values where both apply."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from tests.unit.ext.ext_reference import affine, channels_and_normalize, warp

from roiclass.ext import preprocess_batch, preprocess_rois

RANGE = {np.uint8: 255.0, np.uint16: 65535.0, np.float32: 1.0}
# bilinear, not shrunk: rotated, enlarged, partly outside the image
ROIS = np.array([[3.25, 2.5, 17.5, 11.0, 23.0], [-4.0, 6.0, 12.0, 14.0, 301.0], [20.0, 1.0, 9.0, 9.0, 0.0]])
OUT = (24, 16)  # (width, height)


def source(dtype, bands, h=19, w=27, seed=0):
    rng = np.random.default_rng(seed + bands)
    if dtype == np.float32:
        return rng.random((h, w, bands), dtype=np.float32)
    return rng.integers(0, int(RANGE[dtype]) + 1, (h, w, bands)).astype(dtype)


def reference(img, rois, cmap, mean, std, fill=0.0, border="constant"):
    out = []
    for roi in rois:
        a, box = affine(roi, *OUT)
        samples = warp(img, a, *OUT, border=border, fill=fill, box=box)
        out.append(channels_and_normalize(samples, cmap, mean, std).transpose(2, 0, 1))
    return np.stack(out)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32], ids=["uint8", "uint16", "float32"])
@pytest.mark.parametrize("bands", range(1, 17))
def test_n_band_source_matches_the_numpy_reference(dtype, bands):
    img = source(dtype, bands)
    rng = np.random.default_rng(bands)
    cmap = rng.integers(0, bands, size=min(bands, 5)).tolist()  # repeats and any order
    scale = RANGE[dtype]
    mean = (rng.random(len(cmap)) * 0.2 * scale).tolist()
    std = ((0.5 + rng.random(len(cmap))) * scale).tolist()
    fill = 0.25 * scale
    out = np.empty((len(ROIS), len(cmap), OUT[1], OUT[0]), np.float32)
    preprocess_rois(img, ROIS, out, channel_map=cmap, mean=mean, std=std, fill=fill)
    expected = reference(img, ROIS, cmap, mean, std, fill)
    assert np.abs(out - expected).max() < 2e-5  # in units of the full range (std ~ range)


def test_every_band_subset_and_order_of_four_bands():
    """64 channel maps (every non-empty subset of 4 bands in every order), for
    the SIMD kernel (uint16) and the generic one (float32), against the reference."""
    for dtype in (np.uint16, np.float32):
        img = source(dtype, 4, seed=7)
        scale = RANGE[dtype]
        maps = [list(p) for r in range(1, 5) for p in itertools.permutations(range(4), r)]
        assert len(maps) == 64
        for cmap in maps:
            out = np.empty((len(ROIS), len(cmap), OUT[1], OUT[0]), np.float32)
            preprocess_rois(img, ROIS, out, channel_map=cmap, std=scale)
            expected = reference(img, ROIS, cmap, 0.0, scale)
            assert np.abs(out - expected).max() < 2e-5, (dtype, cmap)


@pytest.mark.parametrize("roi", [
    [2.0, 3.0, 180.0, 140.0, 0.0],     # shrunk ~7x: exact area cells
    [190.0, 150.0, 180.0, 140.0, 180.0],
    [20.0, 10.0, 150.0, 120.0, 90.0],
    [40.0, 20.0, 150.0, 120.0, 33.0],  # rotated and shrunk: the supersampling grid
    [-30.0, -20.0, 120.0, 90.0, 0.0],  # shrunk across the border
], ids=["area0", "area180", "area90", "grid33", "border"])
@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_generic_kernel_equals_the_simd_kernel_on_the_same_values(roi, border):
    """float32 / 7-band copies of a uint16 image give the 3-channel uint16 result
    (the SIMD kernels are checked against OpenCV's INTER_AREA in test_ext_parity)."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 65536, (160, 200, 3)).astype(np.uint16)
    seven = np.concatenate([img[..., ::-1], rng.integers(0, 65536, (160, 200, 4)).astype(np.uint16)], -1)
    kw = dict(std=65535.0, fill=1000.0, border=border)
    simd = np.empty((1, 3, 20, 24), np.float32)
    preprocess_rois(img, [roi], simd, **kw)
    for other, cmap in ((img.astype(np.float32), [0, 1, 2]), (seven, [2, 1, 0]),
                        (seven.astype(np.float32), [2, 1, 0])):
        out = np.empty_like(simd)
        preprocess_rois(other, [roi], out, channel_map=cmap, **kw)
        assert np.abs(out - simd).max() < 2e-5, (other.dtype, other.shape)


def test_generic_layouts_outputs_and_strided_rows_agree():
    img = source(np.uint16, 6, h=30, w=40)
    padded = np.zeros((30, 50, 6), np.uint16)
    padded[:, :40] = img
    view = padded[:, :40]  # rows strided, pixels contiguous
    cmap = [5, 0, 2]
    nchw = np.empty((3, 3, OUT[1], OUT[0]), np.float32)
    nhwc = np.empty((3, OUT[1], OUT[0], 3), np.float32)
    half = np.empty((3, 3, OUT[1], OUT[0]), np.float16)
    preprocess_rois(img, ROIS, nchw, channel_map=cmap, std=65535.0)
    preprocess_rois(view, ROIS, nhwc, layout="NHWC", channel_map=cmap, std=65535.0)
    preprocess_rois(img, ROIS, half, channel_map=cmap, std=65535.0)
    assert np.array_equal(nchw, nhwc.transpose(0, 3, 1, 2))
    assert np.array_equal(half, nchw.astype(np.float16))


def test_identity_roi_copies_every_band_exactly():
    for dtype in (np.uint8, np.uint16, np.float32):
        img = source(dtype, 11, h=9, w=13)
        out = np.empty((1, 9, 13, 11), np.float32)
        preprocess_rois(img, [[0, 0, 13, 9, 0]], out, layout="NHWC")
        assert np.array_equal(out[0], img.astype(np.float32))


def test_preprocess_batch_mixes_generic_and_named_images():
    imgs = [source(np.float32, 8), source(np.uint8, 3), source(np.uint16, 13)]
    maps = [[7, 1, 3], [0, 1, 2], [12, 0, 6]]
    outs = [np.empty((len(ROIS), 3, OUT[1], OUT[0]), np.float32) for _ in imgs]
    items = [(img, ROIS, out, cmap, 0.0, 1.0, 0.0) for img, out, cmap in zip(imgs, outs, maps)]
    assert preprocess_batch(items) == [None, None, None]
    for img, out, cmap in zip(imgs, outs, maps):
        single = np.empty_like(out)
        preprocess_rois(img, ROIS, single, channel_map=cmap)
        assert np.array_equal(out, single)
