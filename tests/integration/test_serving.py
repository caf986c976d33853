"""Engine behaviour seen over gRPC: batching, isolation of bad items, backpressure,
deadlines, failover, CPU fallback, hot reload and metrics, on a tiny real model."""
from __future__ import annotations

import shutil
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.engine import EngineConfig
from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request, roi
from tests.unit.models.model_factory import make_classifier

CONFIG = """
classes = ["red", "green", "blue", "bright"]
[input]
normalization = "unit"
[batching]
max_batch_size = 8
max_queue_delay_us = 2000
max_queue_size = 64
[defaults]
top_k = 0
"""


def _write_model(folder, version: str) -> None:
    make_classifier(folder / version / "model.onnx", num_classes=4, height=32, width=32)
    (folder / "config.toml").write_text(CONFIG)


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    _write_model(repo / "tiny", "1")
    config = ServerConfig(
        port=0, metrics_port=0, repositories=(repo,),
        engine=EngineConfig(devices="cuda:0", instances_per_device=2, fault_injection=True),
    )
    srv = BackgroundServer(config).start()
    srv.repo = repo
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tiny_stub(tiny_server):
    with grpc.insecure_channel(tiny_server.address) as ch:
        yield classifier_pb2_grpc.ObjectClassifierStub(ch)


def _image(seed: int) -> pb.Image:
    return raw_image(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8))


def _probs(resp) -> list[np.ndarray]:
    out = []
    for r in resp.results:
        p = np.zeros(4, np.float32)
        for c in r.confidences:
            p[c.class_index] = c.confidence
        out.append(p)
    return out


def test_cuda_requested_but_unavailable_serves_on_cpu(tiny_stub):
    info = tiny_stub.GetModel(pb.GetModelRequest(name="tiny"), timeout=10)
    instances = info.versions[-1].instances
    assert len(instances) == 2
    assert all(i.device == "cpu" and i.provider == "CPUExecutionProvider" and i.healthy for i in instances)


def test_batches_form_and_match_unbatched_results(tiny_server, tiny_stub):
    reqs = [request(_image(i), [roi(2, 3, 30, 20, angle=i * 7.0), roi(10, 10, 20, 20)], top_k=0)
            for i in range(48)]
    alone = [_probs(tiny_stub.ClassifyObject(r, timeout=10)) for r in reqs[:8]]
    before = tiny_server.app.engine.counters("tiny", "1")
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda r: _probs(tiny_stub.ClassifyObject(r, timeout=30)), reqs))
    after = tiny_server.app.engine.counters("tiny", "1")
    items, batches = after["items"] - before["items"], after["batches"] - before["batches"]
    assert items == 96
    assert batches < items, "concurrent requests must share batches"
    assert after["max_batch"] > 1
    for a, b in zip(alone, together[:8]):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-6)


def test_poisoned_item_fails_only_its_request(tiny_server, tiny_stub):
    tiny_server.app.engine.inject_fault("tiny", "1", "preprocess", match=lambda row: row[0] == 13.0)
    try:
        reqs = [request(_image(i), [roi(13.0 if i == 5 else 1.0, 1, 20, 20)]) for i in range(16)]

        def call(r):
            try:
                return tiny_stub.ClassifyObject(r, timeout=30)
            except grpc.RpcError as err:
                return err

        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(call, reqs))
    finally:
        tiny_server.app.engine.inject_fault("tiny", "1", "preprocess", match=None)
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, grpc.RpcError)]
    assert failed == [5]
    assert outcomes[5].code() == grpc.StatusCode.INVALID_ARGUMENT and "rois[0]" in outcomes[5].details()


def test_queue_overflow_is_resource_exhausted_and_server_goes_on(tiny_stub):
    too_many = request(_image(1), [roi(1, 1, 20, 20)] * 200)  # max_queue_size = 64
    with pytest.raises(grpc.RpcError) as err:
        tiny_stub.ClassifyObject(too_many, timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue" in err.value.details()
    assert tiny_stub.ClassifyObject(request(_image(2)), timeout=10).results


def test_runtime_failover_retries_on_another_instance(tiny_server, tiny_stub):
    engine = tiny_server.app.engine
    before = engine.counters("tiny", "1")
    engine.inject_fault("tiny", "1", "run", instance=0, times=1)
    for i in range(6):  # whichever instance takes the batch, every call succeeds
        assert tiny_stub.ClassifyObject(request(_image(i)), timeout=10).results
    info = tiny_stub.GetModel(pb.GetModelRequest(name="tiny"), timeout=10)
    after = engine.counters("tiny", "1")
    if after["instance_failures"] > before["instance_failures"]:
        assert after["retries"] > before["retries"]
        assert [i.healthy for i in info.versions[-1].instances].count(False) == 1
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{tiny_server.app.metrics_port}/metrics").read().decode()
    assert "roiclass_instance_healthy" in metrics


def test_expired_deadline_is_dropped_before_inference(server, stub):
    """A small call queued behind a big one expires in the queue: it gets
    DEADLINE_EXCEEDED and its item is dropped, never run."""
    engine = server.app.engine
    image = _image(3)
    before = engine.counters("efficientnet_lite0", "1")
    big = stub.ClassifyObject.future(request(image, [roi(1, 1, 40, 30, angle=a % 60) for a in range(384)]), timeout=120)
    while engine.counters("efficientnet_lite0", "1")["items"] == before["items"]:
        pass  # the big call is running
    with pytest.raises(grpc.RpcError) as err:
        stub.ClassifyObject(request(image, [roi(2, 2, 20, 20)]), timeout=0.05)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(big.result().results) == 384
    after = engine.counters("efficientnet_lite0", "1")
    assert after["dropped_deadline"] - before["dropped_deadline"] == 1
    assert after["items"] - before["items"] == 384  # the expired item never ran


def test_cancelled_call_is_dropped_before_inference(server, stub):
    engine = server.app.engine
    image = _image(4)
    before = engine.counters("efficientnet_lite0", "1")
    big = stub.ClassifyObject.future(request(image, [roi(1, 1, 40, 30, angle=a % 60) for a in range(384)]), timeout=120)
    while engine.counters("efficientnet_lite0", "1")["items"] == before["items"]:
        pass
    small = stub.ClassifyObject.future(request(image, [roi(2, 2, 20, 20)] * 4), timeout=60)
    time.sleep(0.2)  # the small call is queued on the server behind the big one
    small.cancel()
    assert len(big.result().results) == 384
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the queue reaches the cancelled items after the big call
        after = engine.counters("efficientnet_lite0", "1")
        if after["dropped_cancelled"] - before["dropped_cancelled"] == 1:
            break
        time.sleep(0.05)
    assert after["dropped_cancelled"] - before["dropped_cancelled"] == 1  # one call (4 items)
    assert after["items"] - before["items"] == 384


def test_metrics_endpoint_serves_the_documented_names(tiny_server, tiny_stub):
    tiny_stub.ClassifyObject(request(_image(5)), timeout=10)
    text = urllib.request.urlopen(f"http://127.0.0.1:{tiny_server.app.metrics_port}/metrics").read().decode()
    for name in ("roiclass_requests_total", "roiclass_request_latency_seconds", "roiclass_queue_time_seconds",
                 "roiclass_preprocess_time_seconds", "roiclass_inference_time_seconds", "roiclass_batch_size",
                 "roiclass_queue_depth", "roiclass_instance_utilization", "roiclass_model_state"):
        assert name in text, name
    assert 'model="tiny"' in text
    # Model names from clients do not become label values unless they exist.
    with pytest.raises(grpc.RpcError):
        tiny_stub.ClassifyObject(request(_image(5), model="no-such-model-4711"), timeout=10)
    text = urllib.request.urlopen(f"http://127.0.0.1:{tiny_server.app.metrics_port}/metrics").read().decode()
    assert "no-such-model-4711" not in text
    assert any(line.startswith("roiclass_requests_total{") and 'model="_unknown"' in line
               and 'code="NOT_FOUND"' in line and 'version=""' in line for line in text.splitlines())


def _ok_count(text: str, model: str, version: str) -> float:
    for line in text.splitlines():
        if (line.startswith("roiclass_requests_total{") and f'model="{model}"' in line
                and f'version="{version}"' in line and 'code="OK"' in line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_request_metrics_name_the_version_that_answered(tiny_server, tiny_stub):
    url = f"http://127.0.0.1:{tiny_server.app.metrics_port}/metrics"
    version = tiny_stub.ClassifyObject(request(_image(5)), timeout=10).model_version
    assert version
    before = _ok_count(urllib.request.urlopen(url).read().decode(), "tiny", version)
    tiny_stub.ClassifyObject(request(_image(5)), timeout=10)
    frames = list(tiny_stub.ClassifyObjectStream(iter([request(_image(5)), request(_image(6))]), timeout=10))
    assert [f.WhichOneof("outcome") for f in frames] == ["response", "response"]
    after = _ok_count(urllib.request.urlopen(url).read().decode(), "tiny", version)
    assert after - before == 3  # one unary call and two stream frames


def test_hot_reload_under_load_loses_no_request(tiny_server, tiny_stub):
    stop = threading.Event()
    failures: list[Exception] = []
    versions: set[str] = set()

    def hammer(seed):
        while not stop.is_set():
            try:
                versions.add(tiny_stub.ClassifyObject(request(_image(seed), model="tiny"), timeout=10).model_version)
            except grpc.RpcError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        shutil.copytree(tiny_server.repo / "tiny" / "1", tiny_server.repo / "tiny" / "2")
        listing = tiny_stub.ReloadModels(pb.ReloadModelsRequest(), timeout=60)
        (info,) = [m for m in listing.models if m.name == "tiny"]
        assert "2" in [v.version for v in info.versions if v.state == pb.ModelVersionInfo.READY]
        # Remove version 1 again: requests keep flowing to version 2.
        shutil.rmtree(tiny_server.repo / "tiny" / "1")
        tiny_stub.ReloadModels(pb.ReloadModelsRequest(), timeout=60)
        final = tiny_stub.ClassifyObject(request(_image(9), model="tiny"), timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert final.model_version == "2"
    assert {"1", "2"} & versions
