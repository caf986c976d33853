"""classify.py: /v1/classify's parts -> one v1 ClassifyObjectRequest; the response's JSON names."""
from __future__ import annotations

import json

import pytest

from roiclass.server.errors import InvalidArgument
from roiclass.server.oip.http.classify import request_from_parts, response_json
from roiclass.v1 import classifier_pb2 as pb


def test_query_then_json_then_the_file():
    fields = json.dumps({"top_k": 3, "rois": [{"rect": {"origin": {"x": 1, "y": 2}, "width": 3, "height": 4},
                                               "id": "a"}]})
    msg = request_from_parts({"top_k": "9", "model": "m", "min_confidence": "0.25"}, fields, b"PNG")
    assert (msg.top_k, msg.model, msg.min_confidence, msg.image.encoded) == (3, "m", 0.25, b"PNG")  # JSON wins
    assert msg.rois[0].id == "a" and msg.rois[0].rect.width == 3


@pytest.mark.parametrize("query, fields, image, field", [
    ({"topk": "1"}, None, b"x", "topk"),
    ({}, "[1]", b"x", "request"),
    ({}, "{", b"x", "request"),
    ({}, '{"colour": 1}', b"x", "request"),
    ({}, '{"image": {"encoded": "eA=="}}', b"x", "image"),
    ({}, None, b"", "image"),
    ({}, "{}", None, "image"),
])
def test_wrong_parts_are_named(query, fields, image, field):
    with pytest.raises(InvalidArgument) as info:
        request_from_parts(query, fields, image)
    assert info.value.violations[0].field == field, info.value.message


def test_the_response_names_class_id_name_confidence():
    response = pb.ClassifyObjectResponse(model="m", model_version="1", request_id="r", results=[pb.RoiResult(
        roi_id="a", class_index=2, class_name="cat", score=0.5,
        confidences=[pb.ClassConfidence(class_index=2, class_name="cat", confidence=0.5)],
        aligned_roi=pb.Rectangle2D(origin=pb.Point2D(x=1, y=2), width=3, height=4, angle=5))],
        timing=pb.Timing(total_us=9))
    doc = response_json(response)
    (r,) = doc["results"]
    assert (r["class_id"], r["name"], r["confidence"]) == (2, "cat", 0.5)
    assert r["confidences"] == [{"class_id": 2, "name": "cat", "confidence": 0.5}]
    assert r["aligned_roi"] == {"origin": {"x": 1, "y": 2}, "angle": 5, "width": 3, "height": 4}
    assert doc["timing"]["total_us"] == 9 and "heatmap" not in r


def test_a_heatmap_comes_as_protobuf_json():
    result = pb.RoiResult(class_index=0, class_name="a", score=1.0)
    result.heatmap.CopyFrom(pb.RelevanceHeatmap(grid_width=2, grid_height=1, relevance=[0.5, 0.25], patch_size=8))
    (r,) = response_json(pb.ClassifyObjectResponse(results=[result]))["results"]
    assert r["heatmap"]["grid_width"] == 2 and r["heatmap"]["relevance"] == [0.5, 0.25]
