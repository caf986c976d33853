"""The separable area path (0/180 degree ROIs shrunk more than 2x): exact
area averaging for every pixel format, tiles wider than the row buffer,
one-axis shrinks, and rows that leave the image (which take the cell path)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from tests.unit.ext.ext_reference import area_truth

from roiclass.ext import preprocess_rois


def noise(h, w, c, dtype, seed=0):
    hi = 256 if dtype == np.uint8 else 65536
    return np.random.default_rng(seed).integers(0, hi, (h, w, c)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("c", [1, 3, 4])
def test_equals_inter_area_for_every_pixel_format(dtype, c):
    img = noise(180, 260, c, dtype)
    crop = img[7:7 + 157, 11:11 + 233].astype(np.float32)  # float: no rounding in cv2
    out = np.empty((1, 31, 43, c), np.float32)
    preprocess_rois(img, [[11, 7, 233, 157, 0]], out, layout="NHWC")
    ref = cv2.resize(crop, (43, 31), interpolation=cv2.INTER_AREA).reshape(31, 43, c)
    err = np.abs(out[0] - ref).max() / (255.0 if dtype == np.uint8 else 65535.0)
    assert err < 1e-5, f"{dtype.__name__} x{c}: {err:.2e} of the range"


def test_rows_wider_than_the_row_buffer_and_a_huge_shrink():
    # 2400 source px -> 37 (65x, beyond the cell path's 64) and -> 600 (tiles of the buffer)
    img = noise(90, 2500, 3, np.uint8, seed=1)
    crop = img[5:5 + 80, 50:50 + 2400].astype(np.float32)
    for out_w, out_h in ((37, 9), (600, 20)):
        out = np.empty((1, out_h, out_w, 3), np.float32)
        preprocess_rois(img, [[50, 5, 2400, 80, 0]], out, layout="NHWC")
        ref = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
        assert np.abs(out[0] - ref).max() < 2e-3, (out_w, out_h)


def test_one_axis_shrunk_is_area_across_and_bilinear_along():
    # x shrunk 3x (area), y 1.5x (bilinear sample at the footprint centre)
    img = noise(120, 200, 3, np.uint8, seed=2)
    crop = img[10:10 + 90, 20:20 + 150].astype(np.float32)
    out = np.empty((1, 60, 50, 3), np.float32)
    preprocess_rois(img, [[20, 10, 150, 90, 0]], out, layout="NHWC")
    across = cv2.resize(crop, (50, 90), interpolation=cv2.INTER_AREA)
    ref = cv2.resize(across, (50, 60), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out[0] - ref).max() < 1e-3


@pytest.mark.parametrize("angle", [0, 180])
def test_rois_partly_outside_match_the_area_reference(angle):
    # rows inside take the separable path, the others the cell path: both exact area
    img = noise(100, 120, 1, np.uint8, seed=3)[:, :, 0]
    roi = [-20.5, 30.25, 130.0, 110.0, angle] if angle == 0 else [110.5, 140.25, 130.0, 110.0, angle]
    out = np.empty((1, 1, 22, 26), np.float32)
    preprocess_rois(img, [roi], out, fill=9.0)
    truth = area_truth(img, roi, 26, 22, k=20, fill=9.0)
    # k x k sampling of the truth is itself off by up to ~1 level at cell edges
    assert np.abs(out[0, 0] - truth).max() < 3.0
    assert np.sqrt(np.mean((out[0, 0] - truth) ** 2)) < 0.6


@pytest.mark.parametrize("shrink_to", [37, 20, 5])
def test_shrinks_beyond_34x_at_90_degrees(shrink_to):
    # the cell path (90/270 degrees): 34-64 and > 64 source px per output px
    img = noise(2100, 60, 3, np.uint8, seed=4)
    crop = img[30:30 + 2000, 5:5 + 40].astype(np.float32)
    out = np.empty((1, 8, shrink_to, 3), np.float32)
    # clockwise 90 degrees about the corner (x0 + w, y0): the ROI's x axis runs down the image
    preprocess_rois(img, [[45, 30, 2000, 40, 90]], out, layout="NHWC")
    ref = cv2.resize(np.rot90(crop, 1), (shrink_to, 8), interpolation=cv2.INTER_AREA)
    err = np.abs(out[0] - ref)
    if 2000 / shrink_to <= 64:
        assert err.max() < 2e-3
    else:  # beyond 64: 64 sampled cells per axis, noise averages out only partly
        assert np.sqrt(np.mean(err ** 2)) < 10.0 and err.max() < 40.0
