"""Every wrong field gets its status code and a message naming it; the server goes on."""
from __future__ import annotations

import math

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from roiclass.v1 import classifier_pb2 as pb
from tests.integration.requests import raw_image, request, roi
from tests.png_bomb import png_bomb

SMALL = np.zeros((32, 48, 3), np.uint8)


def _call_error(stub, req) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.ClassifyObject(req, timeout=30)
    return info.value


def _violations(err: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(err)
    fields = []
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


def _raw(**fields) -> pb.Image:
    base = dict(width=48, height=32, pixel_format=pb.RGB8, pixels=SMALL.tobytes())
    base.update(fields)
    return pb.Image(raw=pb.RawImage(**base))


INVALID = [
    ("short pixel buffer", request(_raw(pixels=SMALL.tobytes()[:-1])), "image.raw.pixels", "height * row_stride"),
    ("long pixel buffer", request(_raw(pixels=SMALL.tobytes() + b"\0" * 200)), "image.raw.pixels", "expected"),
    ("stride below a row", request(_raw(row_stride=100)), "image.raw.row_stride", "smaller than"),
    ("zero width", request(_raw(width=0)), "image.raw.width", "allowed 1.."),
    ("zero height", request(_raw(height=0)), "image.raw.height", "allowed 1.."),
    ("oversized width", request(_raw(width=100000)), "image.raw.width", "allowed 1.."),
    ("unspecified format", request(_raw(pixel_format=pb.PIXEL_FORMAT_UNSPECIFIED)),
     "image.raw.pixel_format", "GRAY8, RGB8, BGR8, RGBA8, BGRA8, GRAY16"),
    ("unknown format", request(_raw(pixel_format=77)), "image.raw.pixel_format", "supported"),
    ("undecodable file", request(pb.Image(encoded=b"\x89PNG not really")), "image.encoded", "cannot be decoded"),
    ("empty file", request(pb.Image(encoded=b"")), "image.encoded", "empty"),
    ("no image", pb.ClassifyObjectRequest(), "image", "required"),
    ("zero width roi", request(_raw(), [roi(1, 1, 10, 10), roi(1, 1, 0, 10)]), "rois[1].rect.width", "> 0"),
    ("negative height roi", request(_raw(), [roi(1, 1, 10, -3)]), "rois[0].rect.height", "> 0"),
    ("nan width roi", request(_raw(), [roi(1, 1, math.nan, 3)]), "rois[0].rect.width", "finite"),
    ("inf angle", request(_raw(), [roi(1, 1, 5, 5, angle=math.inf)]), "rois[0].rect.angle", "finite"),
    ("nan origin", request(_raw(), [roi(math.nan, 1, 5, 5)]), "rois[0].rect.origin.x", "finite"),
    ("negative scale", request(_raw(), [roi(1, 1, 5, 5, alignment=(0, 0, 0, -1))]),
     "rois[0].alignment.scale", ">= 0"),
    ("nan alignment angle", request(_raw(), [roi(1, 1, 5, 5, alignment=(0, 0, math.nan, 1))]),
     "rois[0].alignment.angle", "finite"),
    ("roi outside", request(_raw(), [roi(1, 1, 5, 5), roi(100, 100, 5, 5)]), "rois[1]", "entirely outside"),
    ("roi outside after alignment", request(_raw(), [roi(1, 1, 5, 5, alignment=(0, 0, 180, 1))]),
     "rois[0]", "entirely outside"),
    ("too many rois", request(_raw(), [roi(1, 1, 5, 5)] * 1025), "rois", "at most 1024"),
    ("min_confidence above 1", request(_raw(), min_confidence=1.5), "min_confidence", "[0, 1]"),
    ("min_confidence below 0", request(_raw(), min_confidence=-0.1), "min_confidence", "[0, 1]"),
    ("min_confidence nan", request(_raw(), min_confidence=math.nan), "min_confidence", "[0, 1]"),
    ("png bomb", request(pb.Image(encoded=png_bomb())), "image.encoded", "--max-image-pixels"),
    ("raw over the pixel limit", request(_raw(width=9000, height=9000, pixels=b"")), "image.raw",
     "--max-image-pixels"),
]


@pytest.mark.parametrize("req, field, words", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_argument_names_the_field(stub, req, field, words):
    err = _call_error(stub, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert field in err.details() and words in err.details(), err.details()
    assert _violations(err) == [field]
    # The server is unharmed.
    ok = stub.ClassifyObject(request(raw_image(SMALL)), timeout=30)
    assert len(ok.results) == 1


def test_unknown_model_lists_the_models(stub):
    err = _call_error(stub, request(raw_image(SMALL), model="no-such-model"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in err.details() and "efficientnet_lite0" in err.details()


def test_unknown_version_lists_the_versions(stub):
    err = _call_error(stub, request(raw_image(SMALL), model="efficientnet_lite0", model_version="42"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "42" in err.details() and "1" in err.details()


def test_get_model_unknown_is_not_found(stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModel(pb.GetModelRequest(name="nope"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "efficientnet_lite0" in info.value.details()


def test_oversized_message_is_resource_exhausted(stub):
    big = np.zeros((4200, 5500, 3), np.uint8)  # ~69 MB > the 64 MiB default limit
    err = _call_error(stub, request(raw_image(big)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.ClassifyObject(request(raw_image(SMALL)), timeout=30).results

