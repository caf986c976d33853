"""I420 / NV12 frames end to end: a real server (the built-in EfficientNet-Lite0)
classifies a YUV frame as it does the RGB frame OpenCV converts it to, the
heatmap and stream paths take it, and a frame of the wrong size is
INVALID_ARGUMENT naming the field."""
from __future__ import annotations

import cv2
import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from roiclass.client import Classifier, Frame
from roiclass.client.images import yuv_image
from roiclass.v1 import classifier_pb2 as pb
from tests.conftest import CAT_CLASSES

ROIS = [(0, 0, 450, 300, 0), (60, 20, 300, 260, 12)]


@pytest.fixture(scope="module")
def frames(chelsea):
    rgb = np.ascontiguousarray(chelsea[:, :450])  # even sides
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    h = rgb.shape[0]
    u, v = i420[h:h + h // 4].reshape(h // 2, -1), i420[h + h // 4:].reshape(h // 2, -1)
    nv12 = np.concatenate([i420[:h], np.stack([u, v], -1).reshape(h // 2, -1)])
    return {"I420": i420, "NV12": nv12, "RGB8": cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)}


@pytest.fixture(scope="module")
def classifier(server):
    with Classifier(server.address) as client:
        yield client


def _probabilities(result) -> list[dict[int, float]]:
    return [{c.index: c.confidence for c in r.confidences} for r in result.results]


@pytest.mark.parametrize("name", ["I420", "NV12"])
def test_a_yuv_frame_gets_the_class_and_probabilities_of_its_rgb_frame(classifier, frames, name):
    want = classifier.classify(frames["RGB8"], ROIS, top_k=0)
    got = classifier.classify(frames[name], ROIS, top_k=0, channel_order=name)
    for g, w in zip(got.results, want.results):
        assert g.class_index == w.class_index and g.class_index in CAT_CLASSES
    for g, w in zip(_probabilities(got), _probabilities(want)):
        top = sorted(w, key=w.get)[-5:]
        assert max(abs(g[k] - w[k]) for k in top) < 0.03, (g, w)


def test_padded_rows_and_a_stream_of_yuv_frames(classifier, frames):
    i420 = frames["I420"]
    h, w = 300, 450
    stride = 512
    luma = np.pad(i420[:h], ((0, 0), (0, stride - w)))
    chroma = np.pad(i420[h:].reshape(h, w // 2), ((0, 0), (0, stride // 2 - w // 2)))
    padded = yuv_image(luma.tobytes() + chroma.tobytes(), w, h, "I420", row_stride=stride)
    packed = classifier.classify(i420, ROIS[:1], channel_order="I420").results[0]
    streamed = list(classifier.stream([Frame(padded, ROIS[:1], "a"), Frame(padded, ROIS[:1], "b")]))
    assert [s.error for s in streamed] == [None, None]
    for s in streamed:
        assert s.result.results[0].class_index == packed.class_index
        assert s.result.results[0].score == pytest.approx(packed.score, abs=1e-5)


def test_a_heatmap_of_a_yuv_frame(classifier, frames):
    options = {"patch_size": 64, "stride": 64}
    got = classifier.classify(frames["I420"], [ROIS[1]], channel_order="I420", heatmap=True, heatmap_options=options)
    want = classifier.classify(frames["RGB8"], [ROIS[1]], heatmap=True, heatmap_options=options)
    g, w = got.results[0].heatmap, want.results[0].heatmap
    assert g.relevance.shape == w.relevance.shape and g.relevance.size > 1
    assert np.abs(g.relevance - w.relevance).max() < 0.05


def _field(err: grpc.RpcError) -> list[str]:
    fields = []
    for detail in rpc_status.from_call(err).details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


@pytest.mark.parametrize("fields, field, words", [
    (dict(width=449, height=300), "image.raw.width", "449 is odd; I420 needs an even width and height"),
    (dict(width=450, height=299), "image.raw.height", "299 is odd"),
    (dict(width=450, height=300, row_stride=451), "image.raw.row_stride", "even"),
    (dict(width=450, height=302), "image.raw.pixels", "takes 203850"),
])
def test_a_frame_of_the_wrong_size_is_invalid_argument(stub, frames, fields, field, words):
    raw = pb.RawImage(pixel_format=pb.I420, pixels=frames["I420"].tobytes(), **fields)
    request = pb.ClassifyObjectRequest(image=pb.Image(raw=raw))
    with pytest.raises(grpc.RpcError) as info:
        stub.ClassifyObject(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field(info.value) == [field] and words in info.value.details()
    assert stub.ClassifyObject(pb.ClassifyObjectRequest(image=yuv_image(frames["I420"].tobytes(), 450, 300)),
                               timeout=30).results  # the server goes on
