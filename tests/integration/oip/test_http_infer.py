"""POST /v2/models/{m}/infer over HTTP (httpx): JSON tensors and the binary-tensor
extension give v1 ClassifyObject's probabilities bit for bit; the classification
extension; the raw-tensor mode against a direct ONNX Runtime run."""
from __future__ import annotations

import json
import time

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from roiclass.v1 import classifier_pb2 as pb
from tests.conftest import CAT_CLASSES, png_bytes
from tests.integration.oip.http_helpers import (
    HEADER, MODEL, base_url, binary_body, bytes_blob, split_binary_response, start, v1_probabilities, v1_request,
)
from tests.integration.requests import raw_image

ROIS = [(40.0, 20.0, 260.0, 250.0, 0.0), (100.0, 60.0, 150.0, 120.0, 20.0)]


@pytest.fixture(scope="module")
def server():
    srv = start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=base_url(server), timeout=60) as client:
        yield client


def _image_inputs(image: np.ndarray, rois) -> list[dict]:
    return [
        {"name": "IMAGE", "datatype": "UINT8", "shape": list(image.shape), "data": image.tolist()},
        {"name": "ROIS", "datatype": "FP32", "shape": [len(rois), 5], "data": [list(r) for r in rois]},
    ]


def test_json_image_and_rois_equal_v1_bit_for_bit(server, http, chelsea):
    small = np.ascontiguousarray(chelsea[::2, ::2])  # JSON of every pixel: keep it small
    rois = [(10.0, 5.0, 180.0, 140.0, 0.0), (50.0, 30.0, 90.0, 70.0, -15.0)]
    reply = http.post(f"/v2/models/{MODEL}/infer", json={"id": "j1", "inputs": _image_inputs(small, rois)})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    doc = reply.json()
    assert doc["model_name"] == MODEL and doc["model_version"] == "1" and doc["id"] == "j1"
    (out,) = doc["outputs"]
    assert out["name"] == "PROBABILITIES" and out["datatype"] == "FP32" and out["shape"] == [2, 1000]
    got = np.asarray(out["data"], np.float32).reshape(out["shape"])
    want = v1_probabilities(server, v1_request(raw_image(small), rois))
    np.testing.assert_array_equal(got, want)
    assert int(got[0].argmax()) in CAT_CLASSES


def test_binary_tensors_both_ways_equal_v1_and_json(server, http, chelsea):
    body, headers = binary_body({
        "inputs": [
            {"name": "IMAGE", "datatype": "UINT8", "shape": list(chelsea.shape),
             "parameters": {"binary_data_size": chelsea.nbytes}},
            {"name": "ROIS", "datatype": "FP32", "shape": [2, 5], "parameters": {"binary_data_size": 40}},
        ],
        "outputs": [{"name": "PROBABILITIES", "parameters": {"binary_data": True}}],
    }, [chelsea.tobytes(), np.asarray(ROIS, "<f4").tobytes()])
    reply = http.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    doc, blob = split_binary_response(reply.content, reply.headers[HEADER])
    (out,) = doc["outputs"]
    assert out["parameters"]["binary_data_size"] == len(blob) == 2 * 1000 * 4 and "data" not in out
    got = np.frombuffer(blob, "<f4").reshape(out["shape"])
    np.testing.assert_array_equal(got, v1_probabilities(server, v1_request(raw_image(chelsea), ROIS)))
    # The same request asking for JSON output: the same numbers.
    as_json = json.loads(body[:int(headers[HEADER])])
    as_json["outputs"] = [{"name": "PROBABILITIES"}]
    head = json.dumps(as_json).encode()
    reply = http.post(f"/v2/models/{MODEL}/infer", content=head + body[int(headers[HEADER]):],
                      headers={HEADER: str(len(head))})
    assert HEADER not in reply.headers
    np.testing.assert_array_equal(np.asarray(reply.json()["outputs"][0]["data"], np.float32), got.ravel())


def test_encoded_png_and_the_classification_extension(server, http, chelsea):
    png = png_bytes(chelsea)
    body, headers = binary_body({
        "inputs": [{"name": "IMAGE_ENCODED", "datatype": "BYTES", "shape": [1],
                    "parameters": {"binary_data_size": len(png) + 4}}],
        "outputs": [{"name": "PROBABILITIES", "parameters": {"classification": 5}}],
    }, [bytes_blob([png])])
    reply = http.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    doc = json.loads(reply.content[:int(reply.headers[HEADER])]) if HEADER in reply.headers else reply.json()
    (out,) = doc["outputs"]
    assert out["datatype"] == "BYTES"
    strings = out["data"]
    assert len(strings) == 5
    want = v1_probabilities(server, v1_request(pb.Image(encoded=png)))[0]
    top = np.argsort(-want, kind="stable")[:5]
    for s, index in zip(strings, top):
        score, idx, label = s.split(":", 2)
        # Triton writes the score with 6 decimals (std::to_string)
        assert int(idx) == index and float(score) == pytest.approx(want[index], abs=1e-6) and label
    assert int(strings[0].split(":")[1]) in CAT_CLASSES


def test_binary_data_output_for_every_output(http, chelsea):
    small = np.ascontiguousarray(chelsea[::4, ::4])
    reply = http.post(f"/v2/models/{MODEL}/infer", json={
        "inputs": _image_inputs(small, [])[:1], "parameters": {"binary_data_output": True}})
    assert reply.status_code == 200, reply.text
    doc, blob = split_binary_response(reply.content, reply.headers[HEADER])
    assert reply.headers["content-type"] == "application/octet-stream"
    assert doc["outputs"][0]["parameters"]["binary_data_size"] == len(blob) == 4000


@pytest.mark.parametrize("model", [MODEL, f"{MODEL}.tensors"])  # .tensors: the raw-tensor mode alone
def test_raw_tensor_mode_equals_onnxruntime(server, http, model):
    meta = http.get(f"/v2/models/{model}").json()
    known = {"IMAGE", "IMAGE_ENCODED", "ROIS", "ALIGNMENT"}
    (model_input,) = [t for t in meta["inputs"] if t["name"] not in known]
    shape = [2, *model_input["shape"][1:]]
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    body, headers = binary_body({
        "inputs": [{"name": model_input["name"], "datatype": "FP32", "shape": shape,
                    "parameters": {"binary_data_size": x.nbytes}}],
        "outputs": [{"name": "PROBABILITIES", "parameters": {"binary_data": True}}],
    }, [x.tobytes()])
    reply = http.post(f"/v2/models/{model}/infer", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    doc, blob = split_binary_response(reply.content, reply.headers[HEADER])
    got = np.frombuffer(blob, "<f4").reshape(doc["outputs"][0]["shape"])
    spec = server.app.engine.resolve(MODEL).spec
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {model_input["name"]: x})
    assert spec.softmax  # config.toml: activation = "softmax"
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_client_that_goes_away_cancels_its_queued_rois(server, http):
    """aiohttp cancels the handler when the connection closes; the engine then drops the
    request's ROIs that did not run yet (as for a cancelled gRPC call)."""
    def inferred() -> int:
        (stats,) = http.get(f"/v2/models/{MODEL}/stats").json()["model_stats"]
        return int(stats["inference_count"])

    image = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rois = np.tile(np.array([[4, 4, 40, 40, 0]], "<f4"), (1024, 1))  # --max-rois
    body, headers = binary_body({"inputs": [
        {"name": "IMAGE", "datatype": "UINT8", "shape": [64, 64, 3], "parameters": {"binary_data_size": image.nbytes}},
        {"name": "ROIS", "datatype": "FP32", "shape": [1024, 5], "parameters": {"binary_data_size": rois.nbytes}},
    ]}, [image.tobytes(), rois.tobytes()])
    before = inferred()
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        httpx.post(f"{base_url(server)}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=0.5)
    settled, deadline = -1, time.monotonic() + 30
    while (now := inferred()) != settled:  # until the engine stops inferring its ROIs
        assert time.monotonic() < deadline
        settled = now
        time.sleep(1.0)
    assert 0 < settled - before < 1024


def test_a_large_json_output_equals_the_binary_one(http, chelsea):
    """66 ROIs x 1000 classes in JSON: encoded off the event loop (routes.ENCODE_IN_THREAD_VALUES);
    the two ROIs repeated, so each row matches the binary output of a request with the two alone."""
    image = np.ascontiguousarray(chelsea[::2, ::2])
    two = np.asarray([(10.0, 5.0, 180.0, 140.0, 0.0), (50.0, 30.0, 90.0, 70.0, -15.0)], "<f4")

    def infer(rois: np.ndarray, binary: bool) -> httpx.Response:
        inputs = [{"name": "IMAGE", "datatype": "UINT8", "shape": list(image.shape),
                   "parameters": {"binary_data_size": image.nbytes}},
                  {"name": "ROIS", "datatype": "FP32", "shape": list(rois.shape),
                   "parameters": {"binary_data_size": rois.nbytes}}]
        body, headers = binary_body({"inputs": inputs, "parameters": {"binary_data_output": binary}},
                                    [image.tobytes(), rois.tobytes()])
        reply = http.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
        assert reply.status_code == 200, reply.text
        return reply

    large = infer(np.tile(two, (33, 1)), binary=False)
    assert HEADER not in large.headers
    got = np.asarray(large.json()["outputs"][0]["data"], np.float32).reshape(66, 1000)
    small = infer(two, binary=True)
    _, blob = split_binary_response(small.content, small.headers[HEADER])
    # Close, not bit-equal: the 66 rows ran in other batch sizes than the 2.
    np.testing.assert_allclose(got, np.tile(np.frombuffer(blob, "<f4").reshape(2, 1000), (33, 1)),
                               rtol=1e-5, atol=1e-7)
