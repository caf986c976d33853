"""Loading: warm-up before READY, golden image, broken models, CUDA fallback, hot reload."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from tests.unit.engine.conftest import make_onnx, make_spec, rois_grid
from PIL import Image

from roiclass.server import errors
from roiclass.server.engine.devices import cuda_device_count


def test_warm_up_runs_before_ready(make_engine, tmp_path):
    eng = make_engine(instances_per_device=2)
    spec = make_spec(make_onnx(tmp_path / "slow.onnx", extra_matmuls=8), max_batch_size=64)
    seen = []
    loader = threading.Thread(target=eng.load, args=(spec,))
    loader.start()

    def sample():
        for st in eng.status():
            seen.append((st.state, eng.counters("tiny", "1")["warmup_runs"]))

    while loader.is_alive():
        sample()
        loader.join(0.001)
    sample()
    assert seen[-1] == ("READY", 4)  # batch 1 and batch 64 on each of 2 instances
    assert all(runs == 4 for state, runs in seen if state == "READY")


def _golden(tmp_path, chelsea) -> tuple:
    path = tmp_path / "golden.png"
    Image.fromarray(chelsea).save(path)
    # identity weights: the model predicts the channel with the largest mean
    return path, int(np.argmax(chelsea.reshape(-1, 3).mean(axis=0)))


def test_golden_image_right_class_is_ready(make_engine, tmp_path, chelsea):
    path, cls = _golden(tmp_path, chelsea)
    onnx_path = make_onnx(tmp_path / "id.onnx", weights=np.eye(3, dtype=np.float32) * 50)
    eng = make_engine()
    eng.load(make_spec(onnx_path, golden_image=path, golden_class=cls))
    assert eng.status()[0].state == "READY"


def test_golden_image_wrong_class_is_failed_with_reason(make_engine, tmp_path, chelsea):
    path, cls = _golden(tmp_path, chelsea)
    onnx_path = make_onnx(tmp_path / "id.onnx", weights=np.eye(3, dtype=np.float32) * 50)
    eng = make_engine()
    eng.load(make_spec(onnx_path, golden_image=path, golden_class=(cls + 1) % 3))
    st = eng.status()[0]
    assert st.state == "FAILED" and "golden image golden.png classified as" in st.reason
    with pytest.raises(errors.Unavailable, match="FAILED"):
        eng.resolve("tiny", "1")


def test_broken_model_is_failed_not_raised(make_engine, tmp_path, tiny_onnx):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    eng = make_engine()
    eng.load(make_spec(broken, name="broken"))
    eng.load(make_spec(tiny_onnx, classes=5))  # the model has 3 outputs
    states = {s.name: (s.state, s.reason) for s in eng.status()}
    assert states["broken"][0] == "FAILED" and states["broken"][1]
    assert states["tiny"] == ("FAILED", "model outputs 3 classes but the config names 5")
    with pytest.raises(errors.NotFound, match="broken"):
        eng.resolve("nope")
    with pytest.raises(errors.Unavailable, match="no READY version"):
        eng.resolve("tiny")


def test_resolve_picks_highest_numeric_version(make_engine, tiny_onnx):
    eng = make_engine()
    for v in ("2", "10", "9"):
        eng.load(make_spec(tiny_onnx, version=v))
    assert eng.resolve("tiny").version == "10"
    assert eng.resolve("tiny", "9").version == "9"
    with pytest.raises(errors.NotFound, match="2, 9, 10"):
        eng.resolve("tiny", "3")


def test_cuda_requested_but_unavailable_serves_on_cpu(make_engine, tiny_onnx, chelsea, caplog):
    if cuda_device_count():
        pytest.skip("this machine has a usable CUDA device")
    eng = make_engine(devices="cuda:0")
    with caplog.at_level(logging.WARNING, logger="roiclass.server.engine"):
        eng.load(make_spec(tiny_onnx, version="1"))
        eng.load(make_spec(tiny_onnx, version="2"))
    warnings = [r for r in caplog.records if "cuda:0 is unusable" in r.getMessage()]
    assert len(warnings) == 1
    for st in eng.status():
        assert st.state == "READY"
        assert [(i.device, i.provider) for i in st.instances] == [("cpu", "CPUExecutionProvider")]
    out = eng.classify(eng.resolve("tiny"), chelsea, "RGB8", rois_grid(2)).result(timeout=10)
    assert out.probabilities.shape == (2, 3)


def test_new_version_under_load_loses_no_request(make_engine, tiny_onnx, tmp_path, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx, version="1"))
    stop = threading.Event()
    served, failures = [], []

    def client(seed):
        k = 0
        while not stop.is_set():
            k += 1
            try:
                model = eng.resolve("tiny")
                out = eng.classify(model, chelsea, "RGB8", rois_grid(2, seed * 1000 + k))
                out.result(timeout=10)
                served.append(model.version)
            except Exception as exc:  # any failure is a lost request
                failures.append(exc)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        while served.count("1") < 20:
            stop.wait(0.01)
        eng.load(make_spec(make_onnx(tmp_path / "v2.onnx"), version="2"))
        eng.unload("tiny", "1")
        n = len(served)
        while len(served) < n + 20:
            stop.wait(0.01)
        eng.load(make_spec(tiny_onnx, version="2"))  # reload of a serving version
        n = len(served)
        while len(served) < n + 20:
            stop.wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert "1" in served and served[-1] == "2"
    states = {s.version: s.state for s in eng.status()}
    assert states == {"1": "UNLOADED", "2": "READY"}
