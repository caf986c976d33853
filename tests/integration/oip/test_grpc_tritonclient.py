"""tritonclient's gRPC client (its own venv, a subprocess: tools.py) against a live
roiclass: readiness, metadata, config, ModelInfer bit-identical to v1 ClassifyObject,
the classification extension, raw tensors vs ONNX Runtime, ModelStreamInfer order,
statistics, repository unload/load and the statuses of bad tensors."""
from __future__ import annotations

import grpc
import numpy as np
import onnxruntime as ort
import pytest

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.engine import EngineConfig
from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc as pb_grpc
from tests.conftest import CAT_CLASSES, png_bytes
from tests.integration.oip.tools import run_script, tritonclient_python, write_inputs

MODEL = "efficientnet_lite0"
ROIS = np.array([[60, 10, 280, 260, 0], [100, 40, 200, 180, 12.5], [30, 30, 380, 250, -8]], np.float32)


def v1_probabilities(address: str, image: pb.Image, rois) -> np.ndarray:
    """Every class's confidence per ROI from v1 ClassifyObject: (N, classes) FP32."""
    request = pb.ClassifyObjectRequest(image=image, top_k=0, rois=[
        pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=x, y=y), width=w, height=h, angle=a))
        for x, y, w, h, a in rois])
    with grpc.insecure_channel(address) as ch:
        reply = pb_grpc.ObjectClassifierStub(ch).ClassifyObject(request, timeout=60)
    out = np.zeros((len(reply.results), len(reply.results[0].confidences)), np.float32)
    for i, result in enumerate(reply.results):
        for c in result.confidences:
            out[i, c.class_index] = c.confidence
    return out


@pytest.fixture(scope="module")
def served():
    # Its own server: the script unloads and reloads the model. A fixed CPU batch cap: a measured
    # one (the default) is timed again at the reload, and the config's preferred batch with it.
    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, engine=EngineConfig(cpu_batch_cap=32))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def run(served, chelsea, tmp_path_factory):
    python = tritonclient_python()
    folder = tmp_path_factory.mktemp("tritonclient")
    tensors = write_inputs(folder, chelsea, ROIS, seed=7)
    summary = run_script(python, "tritonclient_grpc_check.py", served.address, MODEL, folder)
    with np.load(folder / "results.npz") as arrays:
        return summary, dict(arrays), tensors


def test_readiness_and_server_metadata(run):
    summary, _, _ = run
    assert summary["live"] and summary["ready"] and summary["model_ready"]
    meta = summary["server_metadata"]
    assert meta["name"] == "roiclass"
    assert {"classification", "model_repository", "statistics"} <= set(meta["extensions"])


def test_model_metadata_and_config(run, served):
    summary, _, _ = run
    meta, config = summary["model_metadata"], summary["model_config"]
    model = served.app.engine.resolve(MODEL)
    assert meta["name"] == MODEL and meta["versions"] == [model.version]
    inputs = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta["inputs"]}
    assert inputs["IMAGE"] == ("UINT8", [-1, -1, -1, -1]) and inputs["IMAGE_ENCODED"][0] == "BYTES"
    assert inputs["ROIS"] == ("FP32", [-1, -1, 5]) and inputs["ALIGNMENT"] == ("FP32", [-1, -1, 4])
    assert inputs[model.io.input_name] == ("FP32", [-1, 3, 224, 224])
    assert meta["outputs"] == [{"name": "PROBABILITIES", "datatype": "FP32", "shape": ["-1", "1000"]}]
    assert config["name"] == MODEL and config["max_batch_size"] == model.model_max_batch
    assert {i["name"] for i in config["input"]} == set(inputs)
    assert config["output"][0]["dims"] == ["1000"]
    assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == model.spec.max_queue_delay_us


def test_image_and_rois_are_bit_identical_to_v1(run, served, chelsea):
    _, arrays, _ = run
    height, width, _ = chelsea.shape
    raw = pb.Image(raw=pb.RawImage(width=width, height=height, pixel_format=pb.RGB8, pixels=chelsea.tobytes()))
    expected = v1_probabilities(served.address, raw, ROIS.tolist())
    assert arrays["image_rois"].dtype == np.float32 and arrays["image_rois"].shape == (3, 1000)
    np.testing.assert_array_equal(arrays["image_rois"], expected)


def test_image_encoded_is_bit_identical_to_v1(run, served, chelsea):
    _, arrays, _ = run
    height, width, _ = chelsea.shape
    expected = v1_probabilities(served.address, pb.Image(encoded=png_bytes(chelsea)), [(0, 0, width, height, 0)])
    np.testing.assert_array_equal(arrays["encoded"], expected)


def test_classification_extension_top5_has_the_cat_first(run):
    summary, arrays, _ = run
    for row, probs in zip(summary["top5"], arrays["image_rois"]):
        assert len(row) == 5
        parsed = [s.split(":", 2) for s in row]
        assert int(parsed[0][1]) in CAT_CLASSES, row
        order = np.argsort(-probs, kind="stable")[:5]
        assert [int(p[1]) for p in parsed] == order.tolist()
        assert [float(p[0]) for p in parsed] == pytest.approx(probs[order].tolist(), abs=1e-6)
        assert all(p[2] for p in parsed)  # the label


def test_raw_tensor_mode_equals_onnx_runtime(run, served):
    _, arrays, tensors = run
    spec = served.app.engine.resolve(MODEL).spec
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: tensors})[0].astype(np.float32)
    if spec.softmax:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        logits = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(arrays["raw_tensors"], logits, rtol=1e-4, atol=1e-6)


def test_the_tensors_view_lists_only_the_model_input(run, served):
    summary, arrays, _ = run
    meta = summary["tensors_view"]
    name = served.app.engine.resolve(MODEL).io.input_name
    assert meta["name"] == f"{MODEL}.tensors"
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [(name, "FP32")]
    np.testing.assert_array_equal(arrays["tensors_view"], arrays["raw_tensors"])


def test_stream_answers_each_request_in_order_and_a_bad_one_alone(run):
    summary, arrays, _ = run
    sent, got = summary["stream"]["sent"], summary["stream"]["got"]
    assert len(got) == len(sent)
    assert [g["id"] for i, g in enumerate(got) if i != 3] == [s for i, s in enumerate(sent) if i != 3]
    assert "send exactly one of IMAGE" in got[3]["error"]
    for i in (0, 1, 2, 4, 5):  # frame i classified ROI i % 3: the same row as the unary call
        np.testing.assert_array_equal(arrays[f"stream_{i}"][0], arrays["image_rois"][i % 3])


def test_statistics_count_the_requests(run):
    before, after = run[0]["stats"]
    success = lambda s: int(s["inference_stats"]["success"].get("count", 0))  # noqa: E731
    assert success(after) - success(before) == 4  # the four ModelInfer calls between them
    assert int(after["inference_count"]) - int(before.get("inference_count", 0)) == 3 + 1 + 3 + 2
    assert int(after["inference_stats"]["compute_infer"]["ns"]) > 0


def test_bad_tensors_get_the_right_status(run):
    errors = run[0]["errors"]
    assert errors["dtype"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "IMAGE: datatype FP32: allowed UINT8" in errors["dtype"]["message"]
    assert errors["shape"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "IMAGE: shape [451, 3]" in errors["shape"]["message"]
    assert errors["missing"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "exactly one of IMAGE" in errors["missing"]["message"]
    assert errors["unknown_model"]["status"] == "StatusCode.NOT_FOUND"
    assert "no_such_model" in errors["unknown_model"]["message"]
    assert errors["unknown_model_ready"]["status"] == "StatusCode.NOT_FOUND"


def test_repository_unload_and_load_change_readiness(run):
    summary = run[0]
    unloaded, loaded = summary["after_unload"], summary["after_load"]
    assert unloaded["model_ready"] is False
    assert [(m["name"], m["state"]) for m in unloaded["index"]] == [(MODEL, "UNAVAILABLE")]
    assert unloaded["infer"]["status"] == "StatusCode.UNAVAILABLE"
    assert loaded["model_ready"] is True
    assert [(m["name"], m["state"]) for m in loaded["index"]] == [(MODEL, "READY")]
