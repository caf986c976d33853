"""RequestObserver: which calls are requests, and the bounded model label."""
from __future__ import annotations

from roiclass.server.metrics import Metrics
from roiclass.server.observer import RequestObserver


class FakeManager:
    default_model = "cats"

    def knows(self, name: str) -> bool:
        return name in ("cats", "dogs")


def _sample(metrics: Metrics, name: str, labels: dict) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_only_classify_object_calls_are_requests():
    observer = RequestObserver(Metrics(), FakeManager())
    assert observer.observes("/roiclass.v1.ObjectClassifier/ClassifyObject")
    for method in ("/roiclass.v1.ObjectClassifier/ClassifyObjectStream",
                   "/roiclass.v1.ObjectClassifier/ListModels", "/grpc.health.v1.Health/Check"):
        assert not observer.observes(method), method


def test_requests_are_counted_and_timed_by_model_version_and_code():
    metrics = Metrics()
    observer = RequestObserver(metrics, FakeManager())
    observer.observe("dogs", "2", "OK", 0.004)
    observer.observe("dogs", "2", "OK", 0.001)
    observer.observe("", "1", "OK", 0.002)  # "" = the default model
    observer.observe("dogs", "", "INVALID_ARGUMENT", 0.001)
    count = "roiclass_requests_total"
    assert _sample(metrics, count, {"model": "dogs", "version": "2", "code": "OK"}) == 2
    assert _sample(metrics, count, {"model": "cats", "version": "1", "code": "OK"}) == 1
    assert _sample(metrics, count, {"model": "dogs", "version": "", "code": "INVALID_ARGUMENT"}) == 1
    latency = "roiclass_request_latency_seconds_sum"
    assert abs(_sample(metrics, latency, {"model": "dogs", "version": "2"}) - 0.005) < 1e-9


def test_unknown_model_names_share_one_series():
    metrics = Metrics()
    observer = RequestObserver(metrics, FakeManager())
    for name in ("x1", "x2", "x3"):
        observer.observe(name, "", "NOT_FOUND", 0.001)
    labels = {"model": "_unknown", "version": "", "code": "NOT_FOUND"}
    assert _sample(metrics, "roiclass_requests_total", labels) == 3
    assert _sample(metrics, "roiclass_requests_total", {**labels, "model": "x1"}) is None
