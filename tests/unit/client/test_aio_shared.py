"""The pieces the sync and the asyncio client share: RequestOptions, the
request/stream messages, the connection settings, the error mapping."""
import dataclasses
import inspect

import grpc
import numpy as np
import pytest

from roiclass.client import (
    Classifier,
    ClassifierError,
    Frame,
    InvalidInputError,
    RequestOptions,
    build_request,
    classifier_pb2 as pb,
)
from roiclass.client.messages import classify_request, frame_request, stream_result

IMAGE = np.zeros((8, 8, 3), np.uint8)
OPTION_FIELDS = {field.name: field.default for field in dataclasses.fields(RequestOptions)}


@pytest.mark.parametrize("method", [Classifier.classify, Classifier.stream])
def test_sync_parameters_are_the_request_options(method):
    # The sync surface spells the options out; they must stay RequestOptions' fields.
    parameters = inspect.signature(method).parameters
    spelled = {name: p.default for name, p in parameters.items() if name in OPTION_FIELDS}
    assert spelled == OPTION_FIELDS
    assert not set(parameters) - set(OPTION_FIELDS) - {"self", "image", "rois", "frames", "request_id", "timeout",
                                                       "polygons"}


def test_build_request_is_classify_request_with_options():
    keywords = dict(model="m", model_version="2", top_k=3, min_confidence=0.5, heatmap=True,
                    heatmap_options={"stride": 4})
    by_keywords = build_request(IMAGE, [(1, 2, 3, 4)], request_id="r", **keywords)
    by_options = classify_request(IMAGE, [(1, 2, 3, 4)], RequestOptions(**keywords), "r")
    assert by_keywords == by_options
    assert by_options.top_k == 3 and by_options.heatmap_options.stride == 4 and by_options.request_id == "r"


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="topk"):
        build_request(IMAGE, topk=3)


@pytest.mark.parametrize(
    "options, field",
    [
        (RequestOptions(top_k=True), "top_k"),
        (RequestOptions(min_confidence=-0.1), "min_confidence"),
        (RequestOptions(model_version=2), "model_version"),
    ],
)
def test_options_are_checked_when_a_request_is_built(options, field):
    with pytest.raises(InvalidInputError) as info:
        classify_request(IMAGE, None, options)
    assert info.value.details[0].field == field


def test_frame_request_turns_bad_input_into_its_error_result():
    good = frame_request(Frame(IMAGE, rois=[(0, 0, 4, 4)], request_id="a"), RequestOptions(top_k=1))
    assert isinstance(good, pb.ClassifyObjectRequest) and good.request_id == "a" and good.top_k == 1
    bare = frame_request(IMAGE, RequestOptions())
    assert isinstance(bare, pb.ClassifyObjectRequest) and bare.request_id == ""
    bad = frame_request(Frame(IMAGE.astype(np.float64), request_id="b"), RequestOptions())
    assert bad.request_id == "b" and bad.result is None
    assert bad.error.code == grpc.StatusCode.INVALID_ARGUMENT and bad.error.details[0].field == "image"
    # A wrong option fails every frame in its place, as it did before options were shared.
    assert frame_request(IMAGE, RequestOptions(top_k=-1)).error.details[0].field == "top_k"


def test_stream_result_of_an_answer_and_of_an_error():
    answer = stream_result(pb.ClassifyObjectStreamResponse(
        request_id="a", response=pb.ClassifyObjectResponse(model="m", request_id="a")))
    assert answer.ok and answer.result.model == "m" and answer.request_id == "a"
    failed = stream_result(pb.ClassifyObjectStreamResponse(request_id="b", error={"code": 5, "message": "gone"}))
    assert not failed.ok and failed.result is None
    assert (failed.error.code, failed.error.message) == (grpc.StatusCode.NOT_FOUND, "gone")


def test_constructor_checks_timeout_and_repr_names_the_class():
    with pytest.raises(InvalidInputError, match="timeout"):
        Classifier("127.0.0.1:1", timeout=0)
    with Classifier("127.0.0.1:1", timeout=2.5) as client:
        assert repr(client) == "Classifier('127.0.0.1:1', timeout=2.5)"
        assert client._deadline(None) == 2.5 and client._deadline(1) == 1
        with pytest.raises(InvalidInputError, match="timeout"):
            client._deadline(float("inf"))


def test_wait_until_ready_names_the_address():
    with Classifier("127.0.0.1:1") as client:
        with pytest.raises(ClassifierError, match=r"no server reachable at 127\.0\.0\.1:1 after 0\.2 s") as info:
            client.wait_until_ready(timeout=0.2)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
