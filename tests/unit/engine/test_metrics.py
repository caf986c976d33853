"""The metrics endpoint serves the documented names."""
from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from tests.unit.engine.conftest import make_spec, rois_grid

from roiclass.server.metrics import Metrics

README = Path(__file__).resolve().parents[3] / "server" / "engine" / "README.md"


def documented_names() -> list[str]:
    return re.findall(r"^\| `(roiclass_[a-z_]+)`", README.read_text(), flags=re.M)


def test_metrics_endpoint_serves_documented_names(make_engine, tiny_onnx, chelsea):
    metrics = Metrics()
    eng = make_engine(metrics=metrics)
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    eng.classify(model, chelsea, "RGB8", rois_grid(3)).result(timeout=10)
    metrics.observe_request("tiny", "1", "OK", 0.002)
    port = metrics.start_http("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        metrics.stop_http()
    names = documented_names()
    assert len(names) >= 12
    for name in names:
        assert re.search(rf"^{name}(_bucket|_count|_sum)?{{", text, flags=re.M), name
    assert 'roiclass_requests_total{code="OK",model="tiny",version="1"} 1.0' in text
    assert 'roiclass_model_state{model="tiny",state="READY",version="1"} 1.0' in text
    assert 'roiclass_batch_size_sum{model="tiny",version="1"} 3.0' in text


def test_two_metrics_objects_do_not_share_a_registry():
    a, b = Metrics(), Metrics()
    a.observe_request("m", "1", "OK", 0.1)
    assert b"roiclass_requests_total{" in a.render()
    assert b"roiclass_requests_total{" not in b.render()


def test_reloading_a_serving_version_keeps_its_gauges(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    eng.load(make_spec(tiny_onnx))  # same version again: swap once the new one is READY
    text = eng.metrics.render().decode()
    assert 'roiclass_model_state{model="tiny",state="READY",version="1"} 1.0' in text
    assert 'roiclass_model_state{model="tiny",state="UNLOADED",version="1"} 0.0' in text
    assert ('roiclass_instance_healthy{device="cpu",instance="0",model="tiny",version="1"} 1.0'
            in text)
    assert [s.state for s in eng.status()] == ["READY"]
    out = eng.classify(eng.resolve("tiny"), chelsea, "RGB8", rois_grid(1)).result(timeout=10)
    assert out.probabilities.shape == (1, 3)
