"""inference.* protobuf <-> the core's dataclasses: typed contents and raw contents give
the same tensors; parameters keep their types; outputs travel raw."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.inference import grpc_service_pb2 as pb
from roiclass.server.errors import InvalidArgument
from roiclass.server.oip import grpc_messages
from roiclass.server.oip.core import InferResponse
from roiclass.server.oip.tensors import Tensor

IMAGE = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
ROIS = np.array([[0, 0, 2.5, 2, 10]], np.float32)


def typed() -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="m", model_version="2", id="r1")
    image = req.inputs.add(name="IMAGE", datatype="UINT8", shape=IMAGE.shape)
    image.contents.uint_contents.extend(IMAGE.ravel().tolist())
    image.parameters["pixel_format"].string_param = "BGR8"
    rois = req.inputs.add(name="ROIS", datatype="FP32", shape=ROIS.shape)
    rois.contents.fp32_contents.extend(ROIS.ravel().tolist())
    out = req.outputs.add(name="PROBABILITIES")
    out.parameters["classification"].int64_param = 3
    return req


def raw() -> pb.ModelInferRequest:
    req = typed()
    for t in req.inputs:
        t.ClearField("contents")
    req.raw_input_contents.extend([IMAGE.tobytes(), ROIS.tobytes()])
    return req


@pytest.mark.parametrize("make", [typed, raw])
def test_typed_and_raw_contents_give_the_same_request(make):
    r = grpc_messages.infer_request(make())
    assert (r.model, r.version, r.id) == ("m", "2", "r1")
    image, rois = r.inputs
    np.testing.assert_array_equal(image.data, IMAGE)
    assert image.data.dtype == np.uint8 and image.parameters == {"pixel_format": "BGR8"}
    np.testing.assert_array_equal(rois.data, ROIS)
    assert [(o.name, o.parameters) for o in r.outputs] == [("PROBABILITIES", {"classification": 3})]


def test_raw_contents_must_be_one_per_input():
    req = raw()
    del req.raw_input_contents[1]
    with pytest.raises(InvalidArgument, match="raw_input_contents: has 1 entries for 2 inputs"):
        grpc_messages.infer_request(req)


def test_fp16_needs_raw_contents():
    req = pb.ModelInferRequest(model_name="m")
    req.inputs.add(name="x", datatype="FP16", shape=[1])
    with pytest.raises(InvalidArgument, match="x: FP16 has no typed contents; send it in raw_input_contents"):
        grpc_messages.infer_request(req)


def test_response_outputs_travel_raw():
    probs = np.array([[0.25, 0.75]], np.float32)
    strings = np.array([[b"0.750000:1:b"]], dtype=object)
    msg = grpc_messages.infer_response(InferResponse("m", "1", "r", [
        Tensor.of("PROBABILITIES", probs), Tensor.of("LABELS", strings, {"note": "x"})]))
    assert [(o.name, o.datatype, list(o.shape)) for o in msg.outputs] == [
        ("PROBABILITIES", "FP32", [1, 2]), ("LABELS", "BYTES", [1, 1])]
    assert msg.raw_output_contents[0] == probs.tobytes()
    assert msg.raw_output_contents[1] == len(b"0.750000:1:b").to_bytes(4, "little") + b"0.750000:1:b"
    assert msg.outputs[1].parameters["note"].string_param == "x"
