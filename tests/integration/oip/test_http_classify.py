"""POST /v1/classify: an image file as the body, multipart with a JSON part, or the
v1 request as JSON; the answer equals v1 ClassifyObject over gRPC (httpx, and curl)."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc as pb_grpc
from tests.conftest import CAT_CLASSES, png_bytes
from tests.integration.oip.http_helpers import MODEL, base_url, start
from tests.integration.requests import roi

ROIS_JSON = {"rois": [{"rect": {"origin": {"x": 40, "y": 20}, "width": 260, "height": 250}, "id": "cat"},
                      {"rect": {"origin": {"x": 100, "y": 60}, "width": 150, "height": 120, "angle": 20},
                       "id": "face"}],
             "top_k": 3}


@pytest.fixture(scope="module")
def server():
    srv = start(metrics_port=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=base_url(server), timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def png(chelsea) -> bytes:
    return png_bytes(chelsea)


def _grpc(server, request: pb.ClassifyObjectRequest) -> pb.ClassifyObjectResponse:
    with grpc.insecure_channel(server.address) as ch:
        return pb_grpc.ObjectClassifierStub(ch).ClassifyObject(request, timeout=60)


def _assert_same(doc: dict, want: pb.ClassifyObjectResponse) -> None:
    assert doc["model"] == want.model and doc["model_version"] == want.model_version
    assert len(doc["results"]) == len(want.results)
    for got, ref in zip(doc["results"], want.results):
        assert got["roi_id"] == ref.roi_id
        assert (got["class_id"], got["name"]) == (ref.class_index, ref.class_name)
        assert np.float32(got["confidence"]) == np.float32(ref.score)  # the same float32, bit for bit
        assert [(c["class_id"], c["name"], np.float32(c["confidence"])) for c in got["confidences"]] == [
            (c.class_index, c.class_name, np.float32(c.confidence)) for c in ref.confidences]
        assert got["aligned_roi"]["width"] == ref.aligned_roi.width


def test_a_png_body(server, http, png):
    reply = http.post("/v1/classify", content=png, headers={"Content-Type": "image/png"})
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    _assert_same(doc, _grpc(server, pb.ClassifyObjectRequest(image=pb.Image(encoded=png))))
    assert doc["results"][0]["class_id"] in CAT_CLASSES
    assert len(doc["results"][0]["confidences"]) == 5  # the model's default top_k
    assert doc["timing"]["total_us"] >= doc["timing"]["inference_us"] > 0


def test_query_parameters(server, http, png):
    reply = http.post("/v1/classify", params={"top_k": "2", "request_id": "q1", "model": MODEL}, content=png)
    doc = reply.json()
    assert doc["request_id"] == "q1" and len(doc["results"][0]["confidences"]) == 2
    _assert_same(doc, _grpc(server, pb.ClassifyObjectRequest(image=pb.Image(encoded=png), top_k=2)))


def test_multipart_with_rois(server, http, png):
    reply = http.post("/v1/classify", files={"image": ("chelsea.png", png, "image/png"),
                                             "request": (None, json.dumps(ROIS_JSON), "application/json")})
    assert reply.status_code == 200, reply.text
    want = _grpc(server, pb.ClassifyObjectRequest(
        image=pb.Image(encoded=png), top_k=3,
        rois=[roi(40, 20, 260, 250, roi_id="cat"), roi(100, 60, 150, 120, 20, roi_id="face")]))
    _assert_same(reply.json(), want)
    assert [r["roi_id"] for r in reply.json()["results"]] == ["cat", "face"]


def test_the_v1_request_as_json(server, http, png):
    doc = {**ROIS_JSON, "image": {"encoded": base64.b64encode(png).decode()}, "min_confidence": 0.01}
    reply = http.post("/v1/classify", json=doc)
    assert reply.status_code == 200, reply.text
    want = _grpc(server, pb.ClassifyObjectRequest(
        image=pb.Image(encoded=png), top_k=3, min_confidence=0.01,
        rois=[roi(40, 20, 260, 250, roi_id="cat"), roi(100, 60, 150, 120, 20, roi_id="face")]))
    _assert_same(reply.json(), want)


# CI (.ci/run) installs curl and sets ROICLASS_REQUIRE_CLIENTS: there the test always runs.
@pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("ROICLASS_REQUIRE_CLIENTS"),
                    reason="curl is not installed (.ci/run installs it)")
def test_curl_multipart(server, png, tmp_path):
    path = tmp_path / "chelsea.png"
    path.write_bytes(png)
    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-F", f"image=@{path}",
         "-F", 'request={"top_k": 1};type=application/json', f"{base_url(server)}/v1/classify"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    (result,) = json.loads(out.stdout)["results"]
    assert result["class_id"] in CAT_CLASSES and len(result["confidences"]) == 1


def _error(reply: httpx.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    return reply.json()["error"]


def test_bad_requests(http, png):
    assert "image" in _error(http.post("/v1/classify", content=b""), 400)
    assert "image" in _error(http.post("/v1/classify", content=b"not an image at all"), 400)
    assert "request" in _error(http.post("/v1/classify", files={"image": ("a.png", png),
                                                                "request": (None, "{oops")}), 400)
    assert "colour" in _error(http.post("/v1/classify", files={"image": ("a.png", png),
                                                               "request": (None, '{"colour": 1}')}), 400)
    assert "allowed" in _error(http.post("/v1/classify", files={"picture": ("a.png", png)}), 400)
    assert "top_k" in _error(http.post("/v1/classify", params={"topk": "1"}, content=png), 400)
    assert "min_confidence" in _error(http.post("/v1/classify", params={"min_confidence": "2"}, content=png), 400)
    assert "rois[0]" in _error(http.post("/v1/classify", files={"image": ("a.png", png), "request": (
        None, '{"rois": [{"rect": {"origin": {"x": 9000, "y": 9000}, "width": 5, "height": 5}}]}')}), 400)
    assert "nope" in _error(http.post("/v1/classify", params={"model": "nope"}, content=png), 404)


def test_requests_are_counted_like_grpc_calls(server, http, png):
    def ok_count() -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.app.metrics_port}/metrics", timeout=10).read()
        return sum(s.value for f in text_string_to_metric_families(text.decode()) for s in f.samples
                   if s.name == "roiclass_requests_total" and s.labels.get("code") == "OK"
                   and s.labels.get("model") == MODEL)

    before = ok_count()
    assert http.post("/v1/classify", content=png).status_code == 200
    assert ok_count() == before + 1


@pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("ROICLASS_REQUIRE_CLIENTS"),
                    reason="curl is not installed (.ci/run installs it)")
def test_the_readmes_curl_examples_run(server, png, tmp_path):
    """The ```sh blocks of README.md's "Over HTTP/REST" section, as written, against this server."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### Over HTTP/REST", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    script = "\n".join(line for block in blocks for line in block.splitlines()
                       if not line.startswith(("roiclass serve", "#")))
    (tmp_path / "cat.png").write_bytes(png)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script.replace("localhost:8000", base_url(server))],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("200\n"), out.stdout[:200]
    assert '"name":"efficientnet_lite0","versions":["1"]' in out.stdout
    assert out.stdout.count('285:Egyptian cat"') == 1  # the binary PNG request's top-5
    assert out.stdout.count('"class_id":285,"name":"Egyptian cat"') == 4  # /v1/classify twice: best + list
    assert '"error"' not in out.stdout
