"""codec.py: infer bodies in JSON and in the binary-tensor extension, both ways, with
the bytes framed here by hand (struct / NumPy) and every wrong field named."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from roiclass.server.errors import InvalidArgument
from roiclass.server.oip.core import InferRequest, InferResponse
from roiclass.server.oip.http import codec
from roiclass.server.oip.outputs import RequestedOutput
from roiclass.server.oip.tensors import Tensor


def _binary(doc: dict, *blobs: bytes) -> tuple[bytes, str]:
    head = json.dumps(doc).encode()
    return head + b"".join(blobs), str(len(head))


def test_json_tensors_flat_and_nested():
    body = json.dumps({"id": "r", "parameters": {"p": 1}, "inputs": [
        {"name": "A", "datatype": "UINT8", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
        {"name": "B", "datatype": "FP32", "shape": [3], "data": [0.5, 1, -2]},
        {"name": "C", "datatype": "BYTES", "shape": [2], "data": ["x", "é"]},
    ], "outputs": [{"name": "O", "parameters": {"classification": 2}}]}).encode()
    req = codec.parse_infer(body, None, "m", "1")
    assert (req.model, req.version, req.id, req.parameters) == ("m", "1", "r", {"p": 1})
    a, b, c = req.inputs
    np.testing.assert_array_equal(a.data, np.array([[1, 2], [3, 4]], np.uint8))
    assert a.data.dtype == np.uint8 and b.data.dtype == np.float32
    assert list(c.data) == [b"x", "é".encode()]
    assert req.outputs == [RequestedOutput("O", {"classification": 2})]


def test_binary_inputs_are_cut_in_input_order_between_json_ones():
    rois = np.arange(10, dtype="<f4").reshape(2, 5)
    pixels = np.arange(12, dtype=np.uint8)
    strings = b"".join(struct.pack("<I", len(s)) + s for s in (b"ab", b""))
    body, n = _binary({"inputs": [
        {"name": "ROIS", "datatype": "FP32", "shape": [2, 5], "parameters": {"binary_data_size": 40}},
        {"name": "J", "datatype": "INT64", "shape": [1], "data": [7]},
        {"name": "IMAGE", "datatype": "UINT8", "shape": [2, 2, 3], "parameters": {"binary_data_size": 12}},
        {"name": "S", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(strings)}},
    ]}, rois.tobytes(), pixels.tobytes(), strings)
    r, j, image, s = codec.parse_infer(body, n, "m", "").inputs
    np.testing.assert_array_equal(r.data, rois)
    assert j.data.tolist() == [7]
    np.testing.assert_array_equal(image.data, pixels.reshape(2, 2, 3))
    assert list(s.data) == [b"ab", b""]


@pytest.mark.parametrize("doc, header, field", [
    (b"[1]", None, "body"),
    (b"{", None, "body"),
    (b'{"inputs": []}', None, "inputs"),
    (b'{"inputs": {}}', None, "inputs"),
    (b'{"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}', None, "inputs[0].name"),
    (b'{"inputs": [{"name": "A", "datatype": "F32", "shape": [1], "data": [1]}]}', None, "inputs[0] (A).datatype"),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1.5], "data": [1]}]}', None, "inputs[0] (A).shape"),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1]}]}', None, "inputs[0] (A).data"),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1], "data": [null]}]}', None, "inputs[0] (A).data"),
    (b'{"inputs": [{"name": "A", "datatype": "BYTES", "shape": [1], "data": [1]}]}', None, "inputs[0] (A).data"),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1], "data": ["1"]}]}', None, "inputs[0] (A).data"),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1], "data": [1]}], "outputs": [{}]}', None,
     "outputs[0].name"),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1], "data": [1]}], "id": 5}', None, "id"),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1], "data": [1]}]}', "999", codec.HEADER_LENGTH),
    (b'{"inputs": [{"name": "A", "datatype": "FP32", "shape": [1], "data": [1]}]}', "-1", codec.HEADER_LENGTH),
])
def test_wrong_fields_are_named(doc, header, field):
    with pytest.raises(InvalidArgument) as info:
        codec.parse_infer(doc, header, "m", "")
    assert info.value.violations[0].field == field, info.value.message


def test_binary_sizes_must_match_the_bytes_sent():
    doc = {"inputs": [{"name": "A", "datatype": "UINT8", "shape": [4], "parameters": {"binary_data_size": 4}}]}
    body, n = _binary(doc, bytes(3))
    with pytest.raises(InvalidArgument, match="binary_data_size"):
        codec.parse_infer(body, n, "m", "")
    body, n = _binary(doc, bytes(6))
    with pytest.raises(InvalidArgument, match="2 bytes after the JSON header"):
        codec.parse_infer(body, n, "m", "")
    doc["inputs"][0]["parameters"]["binary_data_size"] = 3  # fits the body, not the shape
    body, n = _binary(doc, bytes(3))
    with pytest.raises(InvalidArgument, match="A"):
        codec.parse_infer(body, n, "m", "")


def _response(*tensors: Tensor) -> InferResponse:
    return InferResponse("m", "2", "id7", list(tensors))


def test_outputs_as_json_or_binary():
    probs = Tensor.of("P", np.array([[0.25, 0.75]], np.float32))
    labels = Tensor.of("L", np.array([b"0.75:1:b", b"0.25:0:a"], dtype=object))
    req = InferRequest("m", outputs=[RequestedOutput("P", {"binary_data": True}), RequestedOutput("L")])
    out = codec.encode_infer(_response(probs, labels), req)
    assert out.content_type == codec.BINARY_TYPE
    head = json.loads(out.body[:out.header_length])
    assert head["model_name"] == "m" and head["model_version"] == "2" and head["id"] == "id7"
    p, l = head["outputs"]
    assert p == {"name": "P", "datatype": "FP32", "shape": [1, 2], "parameters": {"binary_data_size": 8}}
    assert l["data"] == ["0.75:1:b", "0.25:0:a"]
    np.testing.assert_array_equal(np.frombuffer(out.body[out.header_length:], "<f4"), [0.25, 0.75])
    plain = codec.encode_infer(_response(probs), InferRequest("m"))
    assert plain.header_length is None and plain.content_type == codec.JSON_TYPE
    assert json.loads(plain.body)["outputs"][0]["data"] == [0.25, 0.75]
    every = codec.encode_infer(_response(probs, labels), InferRequest("m", parameters={"binary_data_output": True}))
    assert len(every.body) - every.header_length == 8 + (4 + 8) * 2  # BYTES: a length before each


def test_bytes_that_are_not_text_need_binary_output():
    blob = Tensor.of("L", np.array([b"\xff\xfe"], dtype=object))
    with pytest.raises(InvalidArgument, match="binary_data"):
        codec.encode_infer(_response(blob), InferRequest("m"))
    out = codec.encode_infer(_response(blob), InferRequest("m", outputs=[RequestedOutput("L", {"binary_data": True})]))
    assert out.body[out.header_length:] == struct.pack("<I", 2) + b"\xff\xfe"
