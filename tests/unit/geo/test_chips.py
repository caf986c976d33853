"""Chip geometry against shapely: the ROI's footprint is the box, the
rectangle or the fixed square the module docstring promises."""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from affine import Affine

from roiclass.geo.chips import ChipPolicy, axis_angle, chip_polygon, chip_rois, mask_rings, to_pixels

NORTH_UP = Affine(0.5, 0, 500000, 0, -0.5, 5000000)


def _apply(t: Affine, xy: np.ndarray) -> np.ndarray:
    return xy @ np.array([[t.a, t.b], [t.d, t.e]]).T + np.array([t.c, t.f])


def _footprint(roi) -> shapely.Polygon:
    return chip_polygon(roi)


def test_fixed_chip_is_centred_on_a_point_and_on_a_polygons_box():
    geoms = np.array([shapely.Point(10.5, 20.25), shapely.box(100, 50, 140, 70)])
    rois = chip_rois(geoms, ChipPolicy("fixed", 32, 16), 0.0)
    for roi, centre in zip(rois, [(10.5, 20.25), (120, 60)]):
        assert roi[2:] == pytest.approx([32, 16, 0])
        assert np.asarray(_footprint(roi).centroid.coords[0]) == pytest.approx(centre)


def test_bbox_chip_is_the_bounds_plus_padding():
    polygon = shapely.Polygon([(10, 10), (50, 20), (30, 60)])
    (roi,) = chip_rois(np.array([polygon]), ChipPolicy("bbox", padding=4), 0.0)
    assert _footprint(roi).bounds == pytest.approx((6, 6, 54, 64))


def test_bbox_of_a_point_is_a_fixed_chip_and_a_flat_line_gets_one_pixel():
    geoms = np.array([shapely.Point(5, 5), shapely.LineString([(0, 10), (40, 10)])])
    point, line = chip_rois(geoms, ChipPolicy("bbox", 8, 8, padding=2), 0.0)
    assert point[2:4] == pytest.approx([8, 8])
    assert line[2:4] == pytest.approx([44, 5])


@pytest.mark.parametrize("angle", [0.0, 20.0, 70.0, 130.0, -30.0])
def test_oriented_chip_is_the_minimum_rotated_rectangle(angle):
    ship = shapely.affinity.rotate(shapely.box(0, 0, 80, 12), angle, origin=(0, 0)).buffer(0)
    ship = shapely.affinity.translate(ship, 300, 200)
    (roi,) = chip_rois(np.array([ship]), ChipPolicy("oriented"), 0.0)
    reference = shapely.minimum_rotated_rectangle(ship)
    footprint = _footprint(roi)
    assert footprint.symmetric_difference(reference).area < 1e-6 * reference.area
    assert -45 <= roi[4] <= 45  # never upside down: the side nearest the x axis is the width


def test_oriented_padding_grows_each_side():
    ship = shapely.affinity.rotate(shapely.box(0, 0, 80, 12), 30, origin=(0, 0))
    (plain,), (padded,) = (chip_rois(np.array([ship]), ChipPolicy("oriented", padding=p), 0.0) for p in (0, 5))
    assert padded[2:4] == pytest.approx(plain[2:4] + 10)
    assert padded[4] == pytest.approx(plain[4])


def test_map_space_on_a_rotated_raster_is_north_up_in_the_map():
    rotated = NORTH_UP @ Affine.rotation(25)  # pixel axes turned 25 degrees
    angle = axis_angle(rotated, "MAP_SPACE")
    assert axis_angle(rotated, "PIXEL_SPACE") == 0.0
    field = shapely.box(500010, 4999950, 500030, 4999970)  # map units
    (roi,) = chip_rois(to_pixels(np.array([field]), rotated), ChipPolicy("bbox"), angle)
    back = shapely.transform(_footprint(roi), lambda xy: _apply(rotated, xy))
    assert back.symmetric_difference(field).area < 1e-6 * field.area  # the same box, north-up


def test_pixel_space_on_a_rotated_raster_is_on_the_pixel_grid():
    rotated = NORTH_UP @ Affine.rotation(25)
    field = shapely.box(500010, 4999950, 500030, 4999970)
    pixels = to_pixels(np.array([field]), rotated)
    (roi,) = chip_rois(pixels, ChipPolicy("bbox"), axis_angle(rotated, "PIXEL_SPACE"))
    assert roi[4] == 0.0
    assert _footprint(roi).bounds == pytest.approx(pixels[0].bounds)


def test_north_up_map_space_is_angle_zero_and_pixels_follow_the_transform():
    assert axis_angle(NORTH_UP, "MAP_SPACE") == pytest.approx(0.0)
    (p,) = to_pixels(np.array([shapely.Point(500001, 4999999)]), NORTH_UP)
    assert (p.x, p.y) == pytest.approx((2, 2))


def test_cell_scale_multiplies_the_fixed_size():
    (roi,) = chip_rois(np.array([shapely.Point(0, 0)]), ChipPolicy("fixed", 10, 10), 0.0, cell_scale=2.5)
    assert roi[2:4] == pytest.approx([25, 25])


def test_mask_rings_of_polygons_only_with_holes():
    donut = shapely.box(0, 0, 10, 10).difference(shapely.box(3, 3, 6, 6))
    two = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), donut])
    rings = mask_rings(two)
    assert len(rings) == 3 and all(r.shape[1] == 2 for r in rings)
    assert mask_rings(shapely.Point(1, 1)) is None and mask_rings(shapely.LineString([(0, 0), (1, 1)])) is None


def test_empty_geometry_gives_a_nan_row_and_a_bad_policy_is_refused():
    rois = chip_rois(np.array([shapely.Point(), None], dtype=object), ChipPolicy(), 0.0)
    assert np.isnan(rois).all()
    with pytest.raises(ValueError, match="chip mode"):
        ChipPolicy("square")
    with pytest.raises(ValueError, match="ImageSpaceUsed"):
        ChipPolicy(space="WORLD")
    assert math.isfinite(ChipPolicy(padding=3).padding)
