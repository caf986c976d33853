"""Parity of the preprocessing kernel with OpenCV and with the NumPy reference."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from tests.unit.ext.ext_reference import affine, area_truth, opencv_matrix, warp
from skimage.data import chelsea

from roiclass.ext import preprocess_rois, roi_affine, roi_content_box
from roiclass.server.geometry import ROI_COLUMNS

MODES = ("stretch", "letterbox", "center_crop")


def noise_image(h=240, w=320, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def random_rois(rng, n, img_w, img_h, out_w, out_h, max_shrink=2.0):
    """Rotated rectangles 4 px to larger than the image, often partly outside;
    no side shrunk more than max_shrink (bilinear only)."""
    rois = []
    for _ in range(n):
        w = min(rng.uniform(4, 1.3 * img_w), out_w * max_shrink)
        h = min(rng.uniform(4, 1.3 * img_h), out_h * max_shrink)
        x, y, angle = rng.uniform(-0.3 * img_w, img_w), rng.uniform(-0.3 * img_h, img_h), rng.uniform(0, 360)
        rois.append([x, y, w, h, angle])
    return np.array(rois)


@pytest.mark.parametrize("source", ["noise", "chelsea"])
def test_matches_opencv_warpaffine_on_150_random_rotated_rois(source):
    img = noise_image() if source == "noise" else chelsea()
    rng = np.random.default_rng(1 if source == "noise" else 2)
    mean, std = rng.uniform(0, 128, 3), rng.uniform(20, 80, 3)
    fill = 17.0
    checked = 0
    for out_w, out_h in [(32, 24), (57, 57), (96, 64)]:
        rois = random_rois(rng, 50, img.shape[1], img.shape[0], out_w, out_h)
        out = np.empty((len(rois), out_h, out_w, 3), np.float32)
        preprocess_rois(img, rois, out, layout="NHWC", mean=mean, std=std, fill=fill)
        for n, roi in enumerate(rois):
            ref = cv2.warpAffine(img, opencv_matrix(roi_affine(roi, out_w, out_h)), (out_w, out_h),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(fill,) * 3)
            ref = (ref.astype(np.float64) - mean) / std
            # 1/255 of the normalized range (255 / std) is one source level
            err = np.abs(out[n] - ref) * std
            assert err.max() <= 1.0, f"roi {roi.tolist()} off by {err.max():.3f} levels"
            checked += 1
    assert checked == 150


@pytest.mark.parametrize("mode", MODES)
def test_roi_affine_matches_numpy_geometry(mode):
    rng = np.random.default_rng(3)
    for _ in range(50):
        x, y, angle = rng.uniform(-100, 100), rng.uniform(-100, 100), rng.uniform(-720, 720)
        roi = [x, y, rng.uniform(1, 500), rng.uniform(1, 500), angle]
        out_w, out_h = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        frac = rng.uniform(0.1, 1.0)
        a, box = affine(roi, out_w, out_h, mode, frac)
        np.testing.assert_allclose(roi_affine(roi, out_w, out_h, mode, frac), a, rtol=1e-12, atol=1e-9)
        assert roi_content_box(roi, out_w, out_h, mode, frac) == box


def test_roi_affine_maps_output_corners_to_roi_corners():
    # 30 degrees clockwise about (10, 20): the x axis points to (cos, sin) on the image;
    # the row in the server's one ROI order (a 100x50 ROI at 30 degrees, not 50x30 at 100)
    named = dict(x=10, y=20, width=100, height=50, angle=30)
    a = roi_affine([named[c] for c in ROI_COLUMNS], 200, 100)
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    np.testing.assert_allclose(a @ [0, 0, 1], [10, 20], atol=1e-12)
    np.testing.assert_allclose(a @ [200, 0, 1], [10 + 100 * c, 20 + 100 * s], atol=1e-12)
    np.testing.assert_allclose(a @ [0, 100, 1], [10 - 50 * s, 20 + 50 * c], atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_matches_numpy_reference(mode, border):
    img = noise_image(90, 120, 3, seed=4)
    rng = np.random.default_rng(5)
    out_w, out_h = 40, 30
    rois = random_rois(rng, 20, 120, 90, out_w, out_h)
    out = np.empty((len(rois), 3, out_h, out_w), np.float32)
    preprocess_rois(img, rois, out, resize=mode, crop_fraction=0.7, border=border, fill=200.0,
                    antialias=False)
    for n, roi in enumerate(rois):
        a, box = affine(roi, out_w, out_h, mode, 0.7)
        ref = warp(img, a, out_w, out_h, border, 200.0, box)
        np.testing.assert_allclose(out[n].transpose(1, 2, 0), ref, atol=2e-3,
                                   err_msg=f"roi {roi.tolist()} mode {mode}")


def test_letterbox_pads_with_fill_and_keeps_aspect():
    img = np.full((50, 100, 3), 255, np.uint8)
    out = np.empty((1, 3, 64, 64), np.float32)
    preprocess_rois(img, [[0, 0, 100, 50, 0]], out, resize="letterbox", fill=7.0)
    assert roi_content_box([0, 0, 100, 50, 0], 64, 64, "letterbox") == (0, 16, 64, 48)
    assert np.all(out[0, :, :16] == 7.0) and np.all(out[0, :, 48:] == 7.0)
    assert np.all(out[0, :, 16:48] == 255.0)


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_axis_aligned_shrink_matches_inter_area(angle):
    img = chelsea()
    rng = np.random.default_rng(6)
    for _ in range(10):
        out_w, out_h = int(rng.integers(8, 40)), int(rng.integers(8, 40))
        w = int(out_w * rng.uniform(2.05, 6.0))
        h = int(out_h * rng.uniform(2.05, 6.0))
        crop_w, crop_h = (w, h) if angle in (0, 180) else (h, w)
        x0, y0 = int(rng.integers(0, 451 - crop_w)), int(rng.integers(0, 300 - crop_h))
        crop = img[y0:y0 + crop_h, x0:x0 + crop_w]
        # the ROI's origin is the corner the rotation starts from
        origin = {0: (x0, y0), 90: (x0 + crop_w, y0), 180: (x0 + crop_w, y0 + crop_h),
                  270: (x0, y0 + crop_h)}[angle]
        out = np.empty((1, out_h, out_w, 3), np.float32)
        preprocess_rois(img, [[*origin, w, h, angle]], out, layout="NHWC", std=[255.0] * 3)
        ref = cv2.resize(np.rot90(crop, angle // 90), (out_w, out_h), interpolation=cv2.INTER_AREA)
        err = np.abs(out[0] * 255.0 - ref)
        assert err.max() <= 2.0, f"angle {angle} size {w}x{h}->{out_w}x{out_h}: {err.max():.2f} levels"


@pytest.mark.parametrize("period", [2, 3, 5])
@pytest.mark.parametrize("angle", [10, 30])
def test_antialias_keeps_thin_lines_from_aliasing_when_rotated(period, angle):
    lines = np.zeros((700, 700), np.uint8)
    lines[:, ::period] = 255  # 1-px lines: any point sampler aliases them
    roi = [200, 100, 300, 300, angle]
    truth = area_truth(lines, roi, 50, 50)
    smooth = np.empty((1, 1, 50, 50), np.float32)
    aliased = np.empty_like(smooth)
    preprocess_rois(lines, [roi], smooth, antialias=True)
    preprocess_rois(lines, [roi], aliased, antialias=False)
    rms = float(np.sqrt(np.mean((smooth[0, 0] - truth) ** 2)))
    rms_point = float(np.sqrt(np.mean((aliased[0, 0] - truth) ** 2)))
    assert rms < 4.0 < 40.0 < rms_point, (rms, rms_point)


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (40, 1), (2, 2), (1, 3)])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_images_of_one_or_two_rows_or_columns_match_numpy_reference(shape, c, border):
    # the interior span, the SIMD taps and the row prefetch all need a second
    # row and column; these images take the border path everywhere
    img = noise_image(shape[0], shape[1], c, seed=7)
    rng = np.random.default_rng(8)
    rois = []
    for _ in range(6):
        x, y, angle = rng.uniform(-2, shape[1]), rng.uniform(-2, shape[0]), rng.uniform(0, 360)
        rois.append([x, y, rng.uniform(1, 3 * shape[1]), rng.uniform(1, 3 * shape[0]), angle])
    out = np.empty((len(rois), c, 12, 16), np.float32)
    preprocess_rois(img, rois, out, border=border, fill=50.0, antialias=False)
    for n, roi in enumerate(rois):
        a, box = affine(np.asarray(roi), 16, 12)
        ref = warp(img, a, 16, 12, border, 50.0, box)
        np.testing.assert_allclose(out[n].transpose(1, 2, 0), ref, atol=2e-3, err_msg=f"roi {roi}")
