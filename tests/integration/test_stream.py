"""ClassifyObjectStream: order, request ids, per-frame errors, pipelining."""
from __future__ import annotations

import numpy as np
from google.rpc import code_pb2

from roiclass.v1 import classifier_pb2 as pb
from tests.conftest import CAT_CLASSES
from tests.integration.requests import raw_image, request, roi


def test_stream_answers_in_order_and_bad_frames_fail_alone(stub, chelsea):
    frames = []
    for i in range(12):
        if i in (3, 7):
            bad = pb.Image(raw=pb.RawImage(width=10, height=10, pixel_format=pb.RGB8, pixels=b"short"))
            frames.append(request(bad, request_id=f"f{i}"))
        else:
            frames.append(request(raw_image(chelsea), [roi(140, 20, 200, 200)], request_id=f"f{i}"))
    responses = list(stub.ClassifyObjectStream(iter(frames), timeout=60))
    assert [r.request_id for r in responses] == [f"f{i}" for i in range(12)]
    for i, r in enumerate(responses):
        if i in (3, 7):
            assert r.WhichOneof("outcome") == "error"
            assert r.error.code == code_pb2.INVALID_ARGUMENT
            assert "image.raw.pixels" in r.error.message
        else:
            assert r.WhichOneof("outcome") == "response"
            assert r.response.request_id == f"f{i}"
            assert r.response.results[0].class_index in CAT_CLASSES


def test_stream_unknown_model_is_a_frame_error(stub, chelsea):
    frames = [request(raw_image(chelsea), model="missing", request_id="a"),
              request(raw_image(chelsea), request_id="b")]
    a, b = stub.ClassifyObjectStream(iter(frames), timeout=60)
    assert a.error.code == code_pb2.NOT_FOUND and "missing" in a.error.message
    assert b.response.results[0].class_index in CAT_CLASSES


def test_stream_frames_are_pipelined(stub, server, chelsea):
    """Frames of one stream run concurrently: they are in the engine's queue
    together and share batches, so 32 frames take fewer than 32 batches."""
    img = raw_image(np.ascontiguousarray(chelsea[:224, :224]))
    frames = [request(img, request_id=str(i)) for i in range(32)]
    before = server.app.engine.counters("efficientnet_lite0", "1")
    responses = list(stub.ClassifyObjectStream(iter(frames), timeout=60))
    after = server.app.engine.counters("efficientnet_lite0", "1")
    assert [r.request_id for r in responses] == [str(i) for i in range(32)]
    assert all(r.WhichOneof("outcome") == "response" for r in responses)
    assert after["items"] - before["items"] == 32
    assert after["batches"] - before["batches"] < 32
