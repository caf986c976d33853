"""ClassifyRequest.from_proto's pipeline fields: detector, children, depth,
TTA and Roi.mirror, each wrong one an InvalidArgument naming it."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.server.errors import InvalidArgument
from roiclass.server.models.pipeline import MAX_CHILD_DEPTH, TtaMode

from .test_domain import parse, roi


def test_defaults_run_the_models_pipeline():
    req = parse()
    assert req.whole_image and req.detector == "" and req.children and req.max_child_depth == 0
    assert req.tta is None and not req.tta_spread
    assert not parse([roi(1, 2, 3, 4)]).whole_image


def test_pipeline_fields_are_read():
    req = parse(detector="yolo", detector_version="3", children=False, max_child_depth=2,
                tta="rotations:3:5", tta_spread=True)
    assert (req.detector, req.detector_version, req.children, req.max_child_depth) == ("yolo", "3", False, 2)
    assert req.tta == TtaMode("rotations", 3, 5.0) and req.tta_spread


def test_mirrored_rois_add_the_flags_column():
    plain = parse([roi(1, 2, 10, 20), roi(3, 4, 5, 6)])
    assert plain.rois_array.shape == (2, 5)
    first = roi(1, 2, 10, 20)
    first.mirror = True
    req = parse([first, roi(3, 4, 5, 6)])
    np.testing.assert_array_equal(req.rois_array[:, :5], plain.rois_array)
    np.testing.assert_array_equal(req.rois_array[:, 5], [1.0, 0.0])


@pytest.mark.parametrize("fields, rois, field, text", [
    (dict(detector="yolo"), [roi(1, 2, 3, 4)], "detector", "send no rois with it (got 1)"),
    (dict(tta="mirror"), [], "tta", "allowed: none, flip, dihedral, rotations:N:DEG"),
    (dict(tta="rotations:0:5"), [], "tta", "1 <= N <= 64"),
    (dict(tta="flip", create_relevance_heatmap=True), [], "tta", "allowed with it: none"),
    (dict(max_child_depth=MAX_CHILD_DEPTH + 1), [], "max_child_depth", f"allowed: 0 (the whole tree) .. {MAX_CHILD_DEPTH}"),
])
def test_bad_pipeline_fields_name_the_field(fields, rois, field, text):
    with pytest.raises(InvalidArgument) as info:
        parse(rois, **fields)
    assert [v.field for v in info.value.violations] == [field] and text in str(info.value)


def test_a_mirrored_roi_with_a_heatmap_names_the_roi():
    second = roi(3, 4, 5, 6)
    second.mirror = True
    with pytest.raises(InvalidArgument) as info:
        parse([roi(1, 2, 10, 20), second], create_relevance_heatmap=True)
    assert [v.field for v in info.value.violations] == ["rois[1].mirror"] and "allowed with it: false" in str(info.value)
