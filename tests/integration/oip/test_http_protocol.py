"""The REST API's health, metadata, config, statistics and errors (httpx against a live server)."""
from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from importlib.metadata import version as package_version

import httpx
import numpy as np
import pytest

from tests.integration.oip.http_helpers import HEADER, MODEL, base_url, start


@pytest.fixture(scope="module")
def server():
    srv = start(max_message_bytes=2 * 1024 * 1024)  # small, to see the 413 without sending 64 MiB
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=base_url(server), timeout=60) as client:
        yield client


def _small_infer(http, model: str = MODEL) -> httpx.Response:
    pixels = np.random.default_rng(1).integers(0, 256, (16, 16, 3)).tolist()
    return http.post(f"/v2/models/{model}/infer", json={
        "inputs": [{"name": "IMAGE", "datatype": "UINT8", "shape": [16, 16, 3], "data": pixels}]})


def _error(reply: httpx.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    doc = reply.json()
    assert list(doc) == ["error"] and doc["error"]
    return doc["error"]


def test_health(http):
    assert http.get("/v2/health/live").status_code == 200
    head = http.head("/v2/health/ready")
    assert head.status_code == 200 and head.content == b""
    reply = http.get("/v2/health/ready")
    assert reply.status_code == 200 and reply.json() == {"ready": True}


def test_server_metadata(http):
    doc = http.get("/v2").json()
    assert doc["name"] == "roiclass" and doc["version"] == package_version("roiclass")
    assert {"classification", "model_repository", "statistics"} <= set(doc["extensions"])


@pytest.mark.parametrize("path", [f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/versions/1"])
def test_model_metadata(http, path):
    doc = http.get(path).json()
    assert doc["name"] == MODEL and doc["versions"] == ["1"] and doc["platform"] == "onnxruntime_onnx"
    inputs = {t["name"]: t for t in doc["inputs"]}
    assert inputs["IMAGE"]["datatype"] == "UINT8" and inputs["IMAGE_ENCODED"]["datatype"] == "BYTES"
    assert inputs["ROIS"]["datatype"] == "FP32" and inputs["ROIS"]["shape"][-1] == 5
    (out,) = doc["outputs"]
    assert out["name"] == "PROBABILITIES" and out["datatype"] == "FP32" and out["shape"][-1] == 1000


def test_model_ready_and_unknown_models(http):
    assert http.get(f"/v2/models/{MODEL}/ready").status_code == 200
    assert http.get(f"/v2/models/{MODEL}/versions/1/ready").status_code == 200
    assert "nope" in _error(http.get("/v2/models/nope/ready"), 404)
    assert "nope" in _error(http.get("/v2/models/nope"), 404)
    assert "7" in _error(http.get(f"/v2/models/{MODEL}/versions/7"), 404)
    assert "nope" in _error(_small_infer(http, "nope"), 404)


def test_model_config_is_tritons_shape(server, http):
    doc = http.get(f"/v2/models/{MODEL}/config").json()
    assert doc == server.app.oip.model_config(MODEL)  # what the gRPC ModelConfig is filled from
    assert doc["name"] == MODEL and isinstance(doc["max_batch_size"], int)
    assert {"IMAGE", "ROIS"} <= {t["name"] for t in doc["input"]}
    assert [t["name"] for t in doc["output"]] == ["PROBABILITIES"]
    assert "dynamic_batching" in doc


def test_statistics_count_the_requests(http):
    def success_count() -> int:
        (stats,) = http.get(f"/v2/models/{MODEL}/versions/1/stats").json()["model_stats"]
        assert stats["name"] == MODEL and stats["version"] == "1"
        return int(stats["inference_stats"]["success"]["count"])

    before = success_count()
    for _ in range(3):
        assert _small_infer(http).status_code == 200
    assert success_count() == before + 3
    every = http.get("/v2/models/stats").json()["model_stats"]
    assert MODEL in {s["name"] for s in every}


def test_repository_index(http):
    (entry,) = [e for e in http.post("/v2/repository/index", json={}).json() if e["name"] == MODEL]
    assert entry["state"] == "READY" and entry["version"] == "1"
    assert [e["name"] for e in http.post("/v2/repository/index", json={"ready": True}).json()] == [MODEL]
    assert "ready" in _error(http.post("/v2/repository/index", json={"ready": "yes"}), 400)


def _infer_error(http, doc_or_bytes, status=400, headers=None) -> str:
    kwargs = {"content": doc_or_bytes} if isinstance(doc_or_bytes, bytes) else {"json": doc_or_bytes}
    return _error(http.post(f"/v2/models/{MODEL}/infer", headers=headers, **kwargs), status)


def test_bad_bodies_name_what_is_wrong(http):
    assert "JSON" in _infer_error(http, b"{not json")
    assert "inputs" in _infer_error(http, {"inputs": "IMAGE"})
    assert "inputs" in _infer_error(http, {"outputs": []})
    image = {"name": "IMAGE", "datatype": "UINT8", "shape": [2, 2, 3], "data": [0] * 12}
    # Wrong datatype, a shape that does not hold the data, values that are not the datatype's.
    assert "FP64" in _infer_error(http, {"inputs": [{**image, "datatype": "FLOAT"}]})  # names the allowed ones
    message = _infer_error(http, {"inputs": [{**image, "datatype": "FP32"}]})
    assert "IMAGE" in message and "UINT8" in message
    assert "IMAGE" in _infer_error(http, {"inputs": [{**image, "shape": [2, 3, 3]}]})
    assert "IMAGE" in _infer_error(http, {"inputs": [{**image, "data": ["a"] * 12}]})
    assert "IMAGE" in _infer_error(http, {"inputs": [{**image, "data": [300] * 12}]})
    assert "shape" in _infer_error(http, {"inputs": [{**image, "shape": [2, -2, 3]}]})
    assert "nope" in _infer_error(http, {"inputs": [image], "outputs": [{"name": "nope"}]})


def test_bad_binary_framing(http):
    head = json.dumps({"inputs": [{"name": "IMAGE", "datatype": "UINT8", "shape": [2, 2, 3],
                                   "parameters": {"binary_data_size": 12}}]}).encode()
    assert HEADER in _infer_error(http, head + bytes(12), headers={HEADER: str(len(head) + 100)})
    assert HEADER in _infer_error(http, head + bytes(12), headers={HEADER: "twelve"})
    assert "binary_data_size" in _infer_error(http, head + bytes(5), headers={HEADER: str(len(head))})
    assert HEADER in _infer_error(http, head + bytes(20), headers={HEADER: str(len(head))})  # unclaimed bytes
    ok = http.post(f"/v2/models/{MODEL}/infer", content=head + bytes(12), headers={HEADER: str(len(head))})
    assert ok.status_code == 200, ok.text


def test_unknown_endpoint_wrong_method_and_too_large(http):
    assert "/v2/nothing" in _error(http.get("/v2/nothing"), 404)
    assert "GET" in _error(http.get(f"/v2/models/{MODEL}/infer"), 405)
    assert "--max-message-mb" in _error(http.post(f"/v2/models/{MODEL}/infer", content=bytes(3 * 1024 * 1024)),
                                        413)
    bomb = gzip.compress(bytes(8 << 20))  # 8 KB that inflate to 8 MiB: the cap counts inflated bytes
    assert "--max-message-mb" in _error(http.post(f"/v2/models/{MODEL}/infer", content=bomb,
                                                  headers={"Content-Encoding": "gzip"}), 413)
    assert "--max-message-mb" in _error(http.post("/v1/classify", files={"image": ("a.png", bytes(3 << 20))}), 413)


def test_a_bad_request_leaves_the_server_serving(http):
    _infer_error(http, b"\xff\xfe")
    assert _small_infer(http).status_code == 200


def test_load_overrides_are_refused(http):
    # Triton's config / file overrides: roiclass loads what its sources hold (refused before any work).
    message = _error(http.post(f"/v2/repository/models/{MODEL}/load", json={"parameters": {"config": "{}"}}), 400)
    assert "parameters.config" in message
    message = _error(http.post(f"/v2/repository/models/{MODEL}/unload",
                               json={"parameters": {"unload_dependents": "yes"}}), 400)
    assert "unload_dependents" in message
    assert http.get(f"/v2/models/{MODEL}/ready").status_code == 200


def test_the_timeout_parameter_is_a_deadline(http):
    pixels = np.zeros((64, 64, 3), np.uint8).tolist()
    body = {"inputs": [{"name": "IMAGE", "datatype": "UINT8", "shape": [64, 64, 3], "data": pixels}]}
    assert "deadline" in _infer_error(http, {**body, "parameters": {"timeout": 1}}, 504).lower()
    assert "timeout" in _infer_error(http, {**body, "parameters": {"timeout": "soon"}})
    ok = http.post(f"/v2/models/{MODEL}/infer", json={**body, "parameters": {"timeout": 60_000_000}})
    assert ok.status_code == 200, ok.text


def test_a_taken_http_port_stops_serve_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "roiclass.server.cli", "--port", "0", "--http-port", str(port),
                              "--log-level", "ERROR"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert f"cannot listen on 127.0.0.1:{port} (--http-port)" in line, out.stderr


def test_without_the_http_extra_http_port_says_what_to_install():
    code = ("import sys; sys.modules['aiohttp'] = None  # as if the http extra were not installed\n"
            "from roiclass.server.cli import main; main(['--http-port', '0'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith("--http-port needs aiohttp, which is not installed: "
                                                         "pip install 'roiclass[http]'"), out.stderr
