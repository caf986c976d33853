"""ClassifyRequest.from_proto without a server: each wrong field an
InvalidArgument naming it; the ROI array built once, in ROI_COLUMNS order."""
from __future__ import annotations

import math

import numpy as np
import pytest

from roiclass.server.domain import ClassifyRequest, RequestLimits, confidences_to_proto, rect_to_proto
from roiclass.server.errors import InvalidArgument
from roiclass.server.geometry import ROI_COLUMNS
from roiclass.v1 import classifier_pb2 as pb

IMAGE = pb.Image(raw=pb.RawImage(width=48, height=32, pixel_format=pb.RGB8, pixels=bytes(48 * 32 * 3)))
LIMITS = RequestLimits(max_rois=4, max_image_side=64)


def roi(x, y, w, h, angle=0.0, alignment=None, roi_id="") -> pb.Roi:
    r = pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=x, y=y), angle=angle, width=w, height=h), id=roi_id)
    if alignment is not None:
        ax, ay, aangle, scale = alignment
        r.alignment.CopyFrom(pb.CoordinateSystem2D(origin=pb.Point2D(x=ax, y=ay), angle=aangle, scale=scale))
    return r


def parse(rois=(), image=IMAGE, **fields) -> ClassifyRequest:
    msg = pb.ClassifyObjectRequest(rois=list(rois), **fields)
    if image is not None:
        msg.image.CopyFrom(image)
    return ClassifyRequest.from_proto(msg, LIMITS)


def test_rois_become_one_array_of_rows_in_roi_columns_order():
    req = parse([roi(1, 2, 10, 20, 30, roi_id="a"), roi(3, 4, 5, 6)])
    assert req.rois_array is req.rois_array  # a field, built once
    assert req.rois_array.dtype == np.float64 and req.rois_array.shape == (2, len(ROI_COLUMNS))
    expected = [dict(x=1, y=2, width=10, height=20, angle=30), dict(x=3, y=4, width=5, height=6, angle=0)]
    np.testing.assert_array_equal(req.rois_array, [[row[c] for c in ROI_COLUMNS] for row in expected])
    assert req.roi_ids == ("a", "")


def test_no_rois_is_the_whole_image():
    req = parse()
    np.testing.assert_array_equal(req.rois_array, [[0, 0, 48, 32, 0]])
    assert req.top_k is None and req.min_confidence is None and req.heatmap is None


def test_alignment_is_applied_before_the_array_is_built():
    req = parse([roi(2, 0, 4, 3, 10, alignment=(20, 10, 90, 2))])
    # image = (20, 10) + 2 * R(90) * (2, 0) = (20, 14); sizes doubled, angles added
    np.testing.assert_allclose(req.rois_array, [[20, 14, 8, 6, 100]], atol=1e-12)
    back = rect_to_proto(req.rects[0])
    assert (back.width, back.height, back.angle) == (8, 6, 100)
    assert parse([roi(2, 0, 4, 3, alignment=(0, 0, 0, 0))]).rois_array[0, 2] == 4  # scale 0 means 1


@pytest.mark.parametrize("kwargs, field", [
    (dict(rois=[roi(1, 1, 5, 5)] * 5), "rois"),
    (dict(min_confidence=1.5), "min_confidence"),
    (dict(min_confidence=math.nan), "min_confidence"),
    (dict(image=None), "image"),
    (dict(image=pb.Image(raw=pb.RawImage(width=0))), "image.raw.pixel_format"),
    (dict(rois=[roi(math.nan, 1, 5, 5)]), "rois[0].rect.origin.x"),
    (dict(rois=[roi(1, math.inf, 5, 5)]), "rois[0].rect.origin.y"),
    (dict(rois=[roi(1, 1, 5, 5, math.nan)]), "rois[0].rect.angle"),
    (dict(rois=[roi(1, 1, 5, 5), roi(1, 1, 0, 5)]), "rois[1].rect.width"),
    (dict(rois=[roi(1, 1, 5, -1)]), "rois[0].rect.height"),
    (dict(rois=[roi(1, 1, 5, 5, alignment=(math.nan, 0, 0, 1))]), "rois[0].alignment.origin.x"),
    (dict(rois=[roi(1, 1, 5, 5, alignment=(0, 0, math.inf, 1))]), "rois[0].alignment.angle"),
    (dict(rois=[roi(1, 1, 5, 5, alignment=(0, 0, 0, -1))]), "rois[0].alignment.scale"),
    (dict(rois=[roi(1, 1, 5, 5), roi(100, 1, 5, 5)]), "rois[1]"),
    (dict(rois=[roi(1, 1, 5, 5, alignment=(0, 0, 180, 1))]), "rois[0]"),
])
def test_each_wrong_field_is_named(kwargs, field):
    with pytest.raises(InvalidArgument) as err:
        parse(**kwargs)
    assert [v.field for v in err.value.violations] == [field]


def test_an_roi_touching_the_image_only_by_rotation_is_kept():
    # The origin (50, 10) lies right of the 48-wide image; turned 180 degrees
    # about it the rectangle covers x 45..50, partly inside.
    req = parse([roi(50, 10, 5, 5, 180)])
    assert req.rois_array.shape == (1, 5)


def test_optional_fields_and_heatmap_options():
    req = parse(top_k=0, min_confidence=0.25, create_relevance_heatmap=True,
                heatmap_options=pb.HeatmapOptions(stride=4), request_id="r1")
    assert (req.top_k, req.min_confidence, req.request_id) == (0, 0.25, "r1")
    assert (req.heatmap.patch_size, req.heatmap.stride, req.heatmap.max_side) == (None, 4, None)


def test_confidences_cut_by_top_k_and_min_confidence_keep_the_best():
    probs = np.array([0.1, 0.6, 0.05, 0.25], np.float32)
    entries, best, score = confidences_to_proto(probs, ("a", "b", "c", "d"), 2, 0.0)
    assert [e.class_name for e in entries] == ["b", "d"] and best == 1 and score == pytest.approx(0.6)
    entries, best, _ = confidences_to_proto(probs, ("a", "b", "c", "d"), 0, 0.7)
    assert entries == [] and best == 1


def polygon_roi(xy, ring_sizes=(), **kw) -> pb.Roi:
    r = roi(2, 2, 20, 20, **kw)
    r.polygon.xy.extend(xy)
    r.polygon.ring_sizes.extend(ring_sizes)
    return r


def test_polygons_become_rings_per_roi_and_none_without():
    assert parse([roi(1, 2, 10, 20)]).polygons is None
    square = [0, 0, 10, 0, 10, 10, 0, 10]
    hole = [2, 2, 4, 2, 3, 4]
    req = parse([polygon_roi(square + hole, [4, 3]), roi(1, 1, 5, 5)])
    outer, inner = req.polygons[0]
    np.testing.assert_array_equal(outer, np.reshape(square, (4, 2)))
    np.testing.assert_array_equal(inner, np.reshape(hole, (3, 2)))
    assert req.polygons[1] is None
    (one,) = parse([polygon_roi(square)]).polygons[0]  # no ring_sizes: one ring
    assert one.shape == (4, 2)


@pytest.mark.parametrize("xy, sizes, field, message", [
    ([0, 0, 1, 1, 2], (), "rois[0].polygon.xy", "x, y pairs"),
    ([0, 0, 1, 1], (), "rois[0].polygon.xy", "at least 3 vertices"),
    ([0, 0, 1, 1, 2, 0, 5, 5], (3, 2), "rois[0].polygon.ring_sizes", "add up to 5"),
    ([0, 0, 1, 1, 2, 0, 5, 5], (1, 3), "rois[0].polygon.ring_sizes", "at least 3 vertices"),
    ([0, 0, math.nan, 1, 2, 0], (), "rois[0].polygon.xy", "finite"),
    ([0, 0, 1e30, 1, 2, 0], (), "rois[0].polygon.xy", "within"),
])
def test_each_wrong_polygon_field_is_named(xy, sizes, field, message):
    with pytest.raises(InvalidArgument, match=message) as err:
        parse([polygon_roi(xy, sizes)])
    assert err.value.violations[0].field == field


def test_polygon_vertices_are_limited_per_request():
    limits = RequestLimits(max_rois=4, max_image_side=64, max_polygon_vertices=5)
    msg = pb.ClassifyObjectRequest(image=IMAGE, rois=[polygon_roi([0, 0, 1, 0, 1, 1]), polygon_roi([0, 0, 1, 0, 1, 1])])
    with pytest.raises(InvalidArgument, match="6 vertices; at most 5"):
        ClassifyRequest.from_proto(msg, limits)
