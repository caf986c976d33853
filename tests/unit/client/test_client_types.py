"""Requests from Roi / tuples, results from protos, errors from google.rpc.Status."""
import math

import grpc
import numpy as np
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from roiclass.client import (
    Alignment,
    ClassifierError,
    HeatmapOptions,
    InvalidInputError,
    Roi,
    build_request,
    classifier_pb2 as pb,
)
from roiclass.client.types import (
    classify_result_from_proto,
    model_list_from_proto,
    to_jsonable,
    to_roi_proto,
)

IMAGE = np.zeros((8, 8, 3), np.uint8)


def test_tuples_become_rois():
    four = to_roi_proto((1, 2, 30, 40))
    assert (four.rect.origin.x, four.rect.origin.y, four.rect.width, four.rect.height, four.rect.angle) == (
        1, 2, 30, 40, 0)
    five = to_roi_proto([1.5, 2.5, 3, 4, -30.0])
    assert five.rect.angle == -30.0 and five.rect.origin.x == 1.5
    assert not five.HasField("alignment")


def test_roi_with_alignment_and_id():
    roi = to_roi_proto(Roi(1, 2, 3, 4, 10, id="a", alignment=Alignment(100, 50, angle=90, scale=2)))
    assert roi.id == "a" and roi.rect.angle == 10
    assert (roi.alignment.origin.x, roi.alignment.origin.y, roi.alignment.angle, roi.alignment.scale) == (
        100, 50, 90, 2)


def test_bad_rois_name_their_index():
    with pytest.raises(InvalidInputError, match=r"rois\[1\]: must be a Roi or a tuple \(x, y, width, height\[, angle\]\)"):
        build_request(IMAGE, [(0, 0, 4, 4), (1, 2, 3)])
    with pytest.raises(InvalidInputError, match=r"rois\[0\]\.width: must be finite") as info:
        build_request(IMAGE, [(0, 0, math.nan, 4)])
    assert info.value.details[0].field == "rois[0].width"
    with pytest.raises(InvalidInputError, match=r"rois\[0\]\.y: must be a number"):
        build_request(IMAGE, [Roi(0, "2", 4, 4)])


def test_build_request_fields():
    request = build_request(
        IMAGE, (1, 2, 3, 4, 5), model="m", model_version="2", top_k=0, min_confidence=0.25,
        heatmap=True, heatmap_options={"patch_size": 16}, request_id="r1",
    )
    assert len(request.rois) == 1 and request.rois[0].rect.angle == 5  # a bare tuple is one ROI
    assert request.HasField("top_k") and request.top_k == 0
    assert request.min_confidence == pytest.approx(0.25)
    assert request.create_relevance_heatmap and request.heatmap_options.patch_size == 16
    assert (request.model, request.model_version, request.request_id) == ("m", "2", "r1")


def test_build_request_defaults_leave_optional_fields_unset():
    request = build_request(IMAGE)
    assert not request.HasField("top_k") and not request.HasField("min_confidence")
    assert len(request.rois) == 0 and not request.HasField("heatmap_options")
    assert build_request(IMAGE, heatmap_options=HeatmapOptions(stride=4)).heatmap_options.stride == 4


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"top_k": -1}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"model": 3}, "model"),
        ({"heatmap_options": {"size": 3}}, "heatmap_options"),
        ({"heatmap_options": HeatmapOptions(patch_size=-2)}, "heatmap_options.patch_size"),
    ],
)
def test_build_request_rejects_bad_options(kwargs, field):
    with pytest.raises(InvalidInputError) as info:
        build_request(IMAGE, **kwargs)
    assert info.value.details[0].field == field
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_response_to_dataclasses():
    heat = pb.RawImage(width=3, height=2, pixel_format=pb.GRAY8, row_stride=4, pixels=bytes([0, 1, 2, 9, 3, 4, 255]))
    response = pb.ClassifyObjectResponse(
        model="m", model_version="1", request_id="r",
        timing=pb.Timing(queue_us=1, preprocess_us=2, inference_us=3, total_us=7),
        results=[
            pb.RoiResult(
                roi_id="a",
                aligned_roi=pb.Rectangle2D(origin=pb.Point2D(x=1, y=2), angle=30, width=4, height=5),
                confidences=[pb.ClassConfidence(class_index=3, class_name="cat", confidence=0.75)],
                class_index=3, class_name="cat", score=0.75,
                heatmap=pb.RelevanceHeatmap(
                    image=heat, grid_width=2, grid_height=1, relevance=[0.5, 0.25], scale=0.5, patch_size=8, stride=4
                ),
            ),
            pb.RoiResult(class_index=1, class_name="dog", score=0.5),
        ],
    )
    result = classify_result_from_proto(response)
    assert (result.model, result.model_version, result.request_id) == ("m", "1", "r")
    assert result.timing.total_us == 7 and result.timing.queue_us == 1
    first, second = result.results
    assert first.aligned_roi == Roi(1, 2, 4, 5, 30, id="a")
    assert first.confidences[0].name == "cat" and first.confidences[0].confidence == pytest.approx(0.75)
    np.testing.assert_array_equal(first.heatmap.image, [[0, 1, 2], [3, 4, 255]])
    assert first.heatmap.relevance.dtype == np.float32 and first.heatmap.relevance.shape == (1, 2)
    assert (first.heatmap.patch_size, first.heatmap.stride) == (8, 4)
    assert second.heatmap is None and second.class_name == "dog"
    data = to_jsonable(result)
    assert data["results"][0]["heatmap"]["relevance"] == [[0.5, 0.25]]
    assert data["results"][1]["heatmap"] is None


def test_model_list_to_dataclasses():
    response = pb.ListModelsResponse(
        default_model="m",
        models=[
            pb.ModelInfo(
                name="m", classes=["a", "b"], input_width=224, input_height=224, channels=3, layout="NCHW",
                mean=[0.5], std=[2.0],
                versions=[
                    pb.ModelVersionInfo(
                        version="1", state=pb.ModelVersionInfo.READY,
                        instances=[pb.InstanceInfo(device="cpu", provider="CPUExecutionProvider", healthy=True)],
                    ),
                    pb.ModelVersionInfo(version="2", state=pb.ModelVersionInfo.FAILED, reason="bad file"),
                ],
            )
        ],
    )
    models = model_list_from_proto(response)
    assert len(models) == 1 and models.default_model == "m"
    model = models.get("m")
    assert model.classes == ("a", "b") and model.mean == (0.5,)
    assert [v.state for v in model.versions] == ["READY", "FAILED"]
    assert model.versions[0].instances[0].device == "cpu" and model.versions[1].reason == "bad file"
    assert models.get("other") is None


def test_error_from_status_with_bad_request():
    bad_request = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="rois[0].rect.width", description="must be > 0")]
    )
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    status = status_pb2.Status(code=3, message="rois[0].rect.width: must be > 0", details=[detail])
    error = ClassifierError.from_status(status)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details[0].field == "rois[0].rect.width"
    assert str(error) == "INVALID_ARGUMENT: rois[0].rect.width: must be > 0"
    assert ClassifierError.from_status(status_pb2.Status(code=5, message="x")).code == grpc.StatusCode.NOT_FOUND
    assert to_jsonable(error)["details"] == [{"field": "rois[0].rect.width", "description": "must be > 0"}]
