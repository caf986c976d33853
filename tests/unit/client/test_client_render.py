"""Heatmap drawing: rotated ROI crops and the colour overlay."""
import numpy as np

from roiclass.client import Roi
from roiclass.client.render import INFERNO, crop_roi, overlay, render_heatmap, to_rgb8


def _image():
    return np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)


def test_axis_aligned_crop_is_a_slice():
    image = _image()
    np.testing.assert_array_equal(crop_roi(image, Roi(5, 7, 20, 10), 20, 10), image[7:17, 5:25])


def test_rotated_crop_follows_the_proto_convention():
    image = _image()
    # 90° clockwise about (30, 5): the ROI's x axis runs down the image, its y axis to the left.
    crop = crop_roi(image, Roi(30, 5, 10, 8, 90), 10, 8)
    expected = np.stack([[image[5 + u, 29 - v] for u in range(10)] for v in range(8)])
    np.testing.assert_array_equal(crop, expected)


def test_gray16_is_stretched_for_display():
    gray = np.array([[0, 1000], [500, 250]], np.uint16)
    rgb = to_rgb8(gray)
    assert rgb.shape == (2, 2, 3) and rgb[0, 1, 0] == 255 and rgb[1, 0, 2] == 128


def test_overlay_uses_the_colour_map():
    crop = np.zeros((4, 6, 3), np.uint8)
    heat = np.zeros((4, 6), np.uint8)
    heat[:, 3:] = 255
    out = overlay(crop, heat, alpha=1.0)
    np.testing.assert_array_equal(out[0, 0], INFERNO[0])
    np.testing.assert_array_equal(out[0, 5], INFERNO[255])
    assert INFERNO[255].sum() > INFERNO[0].sum() + 500  # bright = relevant


def test_render_heatmap_upscales_small_heatmaps(tmp_path):
    picture = render_heatmap(_image(), Roi(0, 0, 40, 20, 10), np.full((10, 20), 200, np.uint8), min_side=64)
    assert picture.size == (140, 70)
    picture.save(tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 0
