"""tritonclient's HTTP client (its own venv, a subprocess: tools.py) against roiclass's
REST port: readiness, metadata, config, infer with binary and JSON tensors bit-identical
to v1 ClassifyObject, the classification extension, raw tensors vs ONNX Runtime,
statistics, repository unload/load, and the HTTP status of bad tensors."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from roiclass.server.engine import EngineConfig
from roiclass.v1 import classifier_pb2 as pb
from tests.conftest import CAT_CLASSES, png_bytes
from tests.integration.oip.http_helpers import MODEL, start, v1_probabilities, v1_request
from tests.integration.oip.tools import run_script, tritonclient_python, write_inputs
from tests.integration.requests import raw_image

ROIS = np.array([[60, 10, 280, 260, 0], [100, 40, 200, 180, 12.5], [30, 30, 380, 250, -8]], np.float32)


@pytest.fixture(scope="module")
def served():
    # Its own server: the script unloads and reloads the model. A fixed CPU batch cap: a measured
    # one (the default) is timed again at the reload, and the config's preferred batch with it.
    srv = start(engine=EngineConfig(cpu_batch_cap=32))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def run(served, chelsea, tmp_path_factory):
    python = tritonclient_python()
    folder = tmp_path_factory.mktemp("tritonclient-http")
    tensors = write_inputs(folder, chelsea, ROIS, seed=11)
    summary = run_script(python, "tritonclient_http_check.py", f"127.0.0.1:{served.app.http_port}", MODEL, folder)
    with np.load(folder / "results.npz", allow_pickle=False) as arrays:
        return summary, dict(arrays), tensors


def test_readiness_and_metadata(run, served):
    summary, _, _ = run
    assert summary["live"] and summary["ready"] and summary["model_ready"]
    assert summary["unknown_model_ready"] is False
    assert summary["server_metadata"]["name"] == "roiclass"
    assert summary["model_metadata"] == served.app.oip.model_metadata(MODEL)
    assert summary["model_config"] == served.app.oip.model_config(MODEL)


def test_binary_and_json_tensors_are_bit_identical_to_v1(run, served, chelsea):
    summary, arrays, _ = run
    expected = v1_probabilities(served, v1_request(raw_image(chelsea), ROIS.tolist()))
    assert arrays["image_rois"].dtype == np.float32 and arrays["image_rois"].shape == (3, 1000)
    np.testing.assert_array_equal(arrays["image_rois"], expected)
    np.testing.assert_array_equal(arrays["image_rois_json"], expected)
    assert summary["request_id"] == "b1"


def test_image_encoded_is_bit_identical_to_v1(run, served, chelsea):
    _, arrays, _ = run
    expected = v1_probabilities(served, v1_request(pb.Image(encoded=png_bytes(chelsea))))
    np.testing.assert_array_equal(arrays["encoded"], expected)


def test_classification_extension_top5_has_the_cat_first(run):
    summary, arrays, _ = run
    for row, probs in zip(summary["top5"], arrays["image_rois"]):
        parsed = [s.split(":", 2) for s in row]
        assert len(parsed) == 5 and int(parsed[0][1]) in CAT_CLASSES, row
        order = np.argsort(-probs, kind="stable")[:5]
        assert [int(p[1]) for p in parsed] == order.tolist()
        assert [float(p[0]) for p in parsed] == pytest.approx(probs[order].tolist(), abs=1e-6)


def test_raw_tensor_mode_equals_onnx_runtime(run, served):
    _, arrays, tensors = run
    spec = served.app.engine.resolve(MODEL).spec
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: tensors})[0].astype(np.float32)
    if spec.softmax:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        logits = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(arrays["raw_tensors"], logits, rtol=1e-4, atol=1e-6)


def test_statistics_count_the_requests(run):
    before, after = run[0]["stats"]
    success = lambda s: int(s["inference_stats"]["success"].get("count", 0))  # noqa: E731
    assert success(after) - success(before) == 5  # the five infer calls between them


def test_bad_tensors_get_the_right_http_status(run):
    errors = run[0]["errors"]
    assert errors["dtype"]["status"] == "400" and "IMAGE" in errors["dtype"]["message"]
    assert errors["shape"]["status"] == "400" and "IMAGE" in errors["shape"]["message"]
    assert errors["missing"]["status"] == "400" and "IMAGE" in errors["missing"]["message"]
    assert errors["unknown_model"]["status"] == "404" and "no_such_model" in errors["unknown_model"]["message"]


def test_repository_unload_and_load_change_readiness(run):
    unloaded, loaded = run[0]["after_unload"], run[0]["after_load"]
    assert unloaded["model_ready"] is False
    assert [(m["name"], m["state"]) for m in unloaded["index"]] == [(MODEL, "UNAVAILABLE")]
    assert loaded["model_ready"] is True
    assert [(m["name"], m["state"]) for m in loaded["index"]] == [(MODEL, "READY")]
