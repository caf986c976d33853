"""Bytes that do not parse as the request message (issue #17, defect 1):
INVALID_ARGUMENT with a short message, not UNKNOWN with a traceback per
request; in a stream only that frame fails and the stream goes on."""
from __future__ import annotations

import logging

import grpc
import pytest

from roiclass.v1 import classifier_pb2 as pb
from tests.integration.requests import raw_image, request, roi

GARBAGE = bytes.fromhex("ffffffffff0f1280")  # a truncated varint field: DecodeError
SERVICE = "/roiclass.v1.ObjectClassifier/"


def raw_call(channel, method: str, payload: bytes, parse=pb.ClassifyObjectResponse.FromString):
    return channel.unary_unary(SERVICE + method, request_serializer=None,
                               response_deserializer=parse)(payload, timeout=30)


@pytest.mark.parametrize("method", ["ClassifyObject", "GetModel", "ListModels", "ReloadModels"])
def test_undecodable_unary_request_is_invalid_argument(channel, method):
    with pytest.raises(grpc.RpcError) as info:
        raw_call(channel, method, GARBAGE, parse=None)
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "do not parse as roiclass.v1." in err.details() and "8 bytes" in err.details()
    assert len(err.details()) < 300


def test_undecodable_requests_log_one_short_warning_not_tracebacks(channel, caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(50):
        with pytest.raises(grpc.RpcError):
            raw_call(channel, "ClassifyObject", GARBAGE, parse=None)
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) <= 1  # once per interval (10 s), the rest counted
    assert not any(r.exc_info for r in records) and not any(r.levelno >= logging.ERROR for r in records)


def test_an_undecodable_frame_fails_alone_and_the_stream_goes_on(channel, chelsea):
    good = request(raw_image(chelsea), rois=[roi(150, 20, 170, 150, 10)], top_k=1)
    frames = []
    for i in range(6):
        if i in (1, 4):
            frames.append(GARBAGE)
        else:
            good.request_id = str(i)
            frames.append(good.SerializeToString())
    call = channel.stream_stream(SERVICE + "ClassifyObjectStream", request_serializer=None,
                                 response_deserializer=pb.ClassifyObjectStreamResponse.FromString)
    replies = list(call(iter(frames), timeout=60))
    assert len(replies) == 6
    for i, reply in enumerate(replies):
        if i in (1, 4):
            assert reply.WhichOneof("outcome") == "error"
            assert reply.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert "do not parse" in reply.error.message
        else:
            assert reply.WhichOneof("outcome") == "response" and reply.request_id == str(i)
            assert reply.response.results[0].class_index == 285
