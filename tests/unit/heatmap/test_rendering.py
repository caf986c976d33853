"""Relevance grid -> GRAY8 ROI image, and its protobuf as the client decodes it."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.client.types import heatmap_from_proto
from roiclass.server.heatmap.rendering import heatmap_image, output_size, roi_to_input, to_proto
from roiclass.v1 import classifier_pb2 as pb


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
@pytest.mark.parametrize("size", [(100.0, 50.0), (33.3, 180.2), (224.0, 224.0)])
def test_roi_mapping_matches_the_preprocessing_kernel(resize, size):
    ext = pytest.importorskip("roiclass.ext")
    w, h = size
    a = ext.roi_affine([0.0, 0.0, w, h, 0.0], 224, 160, resize, 0.875)
    p0, kx, q0, ky = roi_to_input(w, h, 224, 160, resize, 0.875)
    np.testing.assert_allclose([kx, ky, p0, q0], [a[0, 0], a[1, 1], a[0, 2], a[1, 2]], atol=1e-9)


@pytest.mark.parametrize(
    "w,h,max_side,expected",
    [(451, 300, 256, (256, 170)), (40.4, 20.6, 256, (40, 21)), (0.3, 900, 256, (1, 256)), (10, 10, 4, (4, 4))],
)
def test_output_size_is_the_roi_size_capped_by_max_side(w, h, max_side, expected):
    assert output_size(w, h, max_side) == expected


def test_image_follows_the_grid_in_the_roi_frame():
    grid = np.zeros((8, 8))
    grid[1, 6] = 1.0  # top right of the input
    image = heatmap_image(grid, 120.0, 60.0, 32, 32, 4, "stretch", 1.0, 256)
    assert image.shape == (60, 120)
    y, x = np.unravel_index(image.argmax(), image.shape)
    assert 80 <= x < 120 and y < 20
    assert image.max() <= 1.0 and image[40:, :60].max() == 0.0


def test_letterbox_covers_the_whole_roi_and_center_crop_blanks_what_the_model_never_saw():
    grid = np.ones((8, 8))
    letterbox = heatmap_image(grid, 200.0, 50.0, 32, 32, 4, "letterbox", 1.0, 256)
    assert letterbox.shape == (50, 200) and letterbox.min() == pytest.approx(1.0)
    crop = heatmap_image(grid, 200.0, 50.0, 32, 32, 4, "center_crop", 1.0, 256)
    # The crop keeps the middle 50x50 of the 200x50 ROI.
    assert crop[:, 80:120].min() == pytest.approx(1.0)
    assert crop[:, :70].max() == 0.0 and crop[:, 130:].max() == 0.0


def test_proto_scales_to_255_and_decodes_in_the_client():
    grid = np.array([[0.0, 0.1], [0.2, 0.4]])
    image = heatmap_image(grid, 30.0, 20.0, 32, 32, 16, "stretch", 1.0, 256)
    msg = to_proto(grid, image, patch=16, stride=16)
    assert msg.image.pixel_format == pb.GRAY8 and (msg.image.width, msg.image.height) == (30, 20)
    assert msg.scale == pytest.approx(0.4) and (msg.patch_size, msg.stride) == (16, 16)
    heat = heatmap_from_proto(msg)
    assert heat.image.shape == (20, 30) and heat.image.max() == 255 and heat.image.min() == 0
    np.testing.assert_array_equal(heat.image, np.rint(image / 0.4 * 255).astype(np.uint8))
    np.testing.assert_allclose(heat.relevance, grid, rtol=1e-6)


def test_a_prediction_nothing_moves_gives_scale_zero_and_a_black_image():
    grid = np.zeros((3, 3))
    msg = to_proto(grid, heatmap_image(grid, 10.0, 10.0, 9, 9, 3, "stretch", 1.0, 256), 3, 3)
    assert msg.scale == 0.0 and set(msg.image.pixels) == {0} and len(msg.image.pixels) == 100
