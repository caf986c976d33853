"""The SIMD coordinate passes (float32 relative to each chunk's base pixel,
or doubles for steps over 4 px) against the float64 NumPy reference, tight:
a coordinate error of 1e-4 px would already show on noise."""
from __future__ import annotations

import math

import numpy as np
import pytest
from tests.unit.ext.ext_reference import affine, warp

from roiclass.ext import preprocess_rois

FORMATS = [(np.uint8, 1), (np.uint8, 3), (np.uint8, 4), (np.uint16, 3), (np.uint16, 4)]


def noise(dtype, c, h=500, w=700, seed=0):
    hi = 256 if dtype == np.uint8 else 65536
    shape = (h, w) if c == 1 else (h, w, c)
    return np.random.default_rng(seed).integers(0, hi, shape, dtype=dtype)


def levels(dtype):
    """Source units per 8-bit level."""
    return 1.0 if dtype == np.uint8 else 65535 / 255


@pytest.mark.parametrize("dtype,c", FORMATS)
def test_bilinear_rows_within_002_levels_of_float64(dtype, c):
    img = noise(dtype, c)
    rng = np.random.default_rng(7)
    out_w, out_h = 70, 9  # one full 64-pixel chunk and a tail per row
    for step in (0.37, 1.0, 1.93, 3.9, 4.4):  # 4.4: past the float32 limit, doubles
        w, h = out_w * step, out_h * step
        x, y = rng.uniform(80, 120) + rng.uniform(0, 1), rng.uniform(60, 100) + rng.uniform(0, 1)
        roi = [x, y, w, h, rng.uniform(0, 360)]
        # keep the whole ROI inside, so the interior (SIMD) span is most of each row
        roi[0] = 350 - w / 2 + rng.uniform(-20, 20)
        roi[1] = 250 - h / 2 + rng.uniform(-20, 20)
        out = np.empty((1, c, out_h, out_w), np.float32)
        preprocess_rois(img, [roi], out, antialias=False)
        a, box = affine(np.array(roi), out_w, out_h)
        ref = warp(img, a, out_w, out_h, box=box)
        err = np.abs(out[0].transpose(1, 2, 0) - ref).max() / levels(dtype)
        assert err < 0.02, f"step {step} roi {roi}: {err} levels"


@pytest.mark.parametrize("dtype,c", [(np.uint8, 3), (np.uint16, 4)])
def test_rotated_supersampling_grid_within_002_levels_of_float64(dtype, c):
    """The antialiasing grid (ceil(0.75 s) taps per axis, the same offsets for
    every pixel) recomputed in float64 from its definition."""
    img = noise(dtype, c, seed=3)
    out_w, out_h = 40, 6
    for angle, shrink in ((17.0, 2.6), (233.0, 5.3)):
        w, h = out_w * shrink, out_h * shrink
        roi = np.array([350 - w / 2 + 0.37, 250 - h / 2 + 0.61, w, h, angle])
        out = np.empty((1, c, out_h, out_w), np.float32)
        preprocess_rois(img, [roi], out, antialias=True)
        a, box = affine(roi, out_w, out_h)
        s1, s2 = math.hypot(a[0, 0], a[1, 0]), math.hypot(a[0, 1], a[1, 1])
        n1 = min(math.ceil(0.75 * s1), 32) if s1 > 2 else 1
        n2 = min(math.ceil(0.75 * s2), 32) if s2 > 2 else 1
        ref = 0.0
        for b in range(n2):
            for k in range(n1):
                shifted = a.copy()
                shifted[:, 2] += ((k + 0.5) / n1 - 0.5) * a[:, 0] + ((b + 0.5) / n2 - 0.5) * a[:, 1]
                ref = ref + warp(img, shifted, out_w, out_h, box=box)
        ref = ref / (n1 * n2)
        err = np.abs(out[0].transpose(1, 2, 0) - ref).max() / levels(dtype)
        assert err < 0.02, f"angle {angle} shrink {shrink}: {err} levels"
