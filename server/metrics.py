"""Prometheus metrics of one server, in a registry of its own.

Several servers (and engines) can live in one process (tests): each Metrics
object owns its CollectorRegistry and, optionally, one HTTP endpoint.
The names are documented in server/engine/README.md.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from roiclass.server.metrics_http import Authorize, start_metrics_http

from roiclass.server.states import ModelState

log = logging.getLogger(__name__)

# Why items were not run: the `reason` label of roiclass_dropped_items.
DROP_REASONS = ("deadline", "cancelled", "overflow", "client_limit", "failed")
NS = "roiclass"
MV = ("model", "version")
_LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1,
                    0.2, 0.5, 1.0, 2.0, 5.0)
_STAGE_BUCKETS = (0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                  0.05, 0.1, 0.2, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(f"{NS}_requests", "Requests by model, version and gRPC status code",
                                MV + ("code",), registry=r)
        self.request_latency = Histogram(f"{NS}_request_latency_seconds",
                                         "Request latency as seen by the servicer", MV,
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_time = Histogram(f"{NS}_queue_time_seconds",
                                    "Time items waited in the model queue", MV,
                                    buckets=_STAGE_BUCKETS, registry=r)
        self.preprocess_time = Histogram(f"{NS}_preprocess_time_seconds",
                                         "Preprocessing time per batch", MV,
                                         buckets=_STAGE_BUCKETS, registry=r)
        self.inference_time = Histogram(f"{NS}_inference_time_seconds",
                                        "ONNX Runtime run time per batch", MV,
                                        buckets=_STAGE_BUCKETS, registry=r)
        self.batch_size = Histogram(f"{NS}_batch_size", "Items per batch run", MV,
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge(f"{NS}_queue_depth", "Items waiting in the model queue", MV,
                                 registry=r)
        self.dropped = Counter(f"{NS}_dropped_items",
                               "Items not run: reason = " + " | ".join(DROP_REASONS),
                               MV + ("reason",), registry=r)
        inst = MV + ("device", "instance")
        self.instance_utilization = Gauge(f"{NS}_instance_utilization",
                                          "Fraction of time the instance was busy (last ~10 s)",
                                          inst, registry=r)
        self.instance_busy = Counter(f"{NS}_instance_busy_seconds",
                                     "Time the instance spent preprocessing and running", inst,
                                     registry=r)
        self.instance_healthy = Gauge(f"{NS}_instance_healthy",
                                      "1 while the instance is in the pool, 0 once taken out",
                                      inst, registry=r)
        self.instance_failures = Counter(f"{NS}_instance_failures",
                                         "Runs that failed with a device/provider error", inst,
                                         registry=r)
        self.model_state = Gauge(f"{NS}_model_state",
                                 "1 for the current load state of a model version",
                                 MV + ("state",), registry=r)
        self._httpd = None
        self._request_children: dict[tuple[str, str, str], tuple] = {}

    # -- servicer --------------------------------------------------------------
    def observe_request(self, model: str, version: str, code_name: str, seconds: float) -> None:
        # Label lookups cost ~5 us per call on the event loop: keep the children.
        key = (model, version, code_name)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(model, version, code_name),
                self.request_latency.labels(model, version))
        children[0].inc()
        children[1].observe(seconds)

    # -- engine ----------------------------------------------------------------
    def set_model_state(self, model: str, version: str, state: ModelState) -> None:
        for s in ModelState:
            self.model_state.labels(model, version, s.value).set(1.0 if s == state else 0.0)

    def track_queue_depth(self, model: str, version: str, depth: Callable[[], float]) -> None:
        self.queue_depth.labels(model, version).set_function(depth)

    def track_instance(self, model: str, version: str, device: str, index: int,
                       busy_seconds: Callable[[], float], healthy: Callable[[], bool]) -> None:
        labels = (model, version, device, str(index))
        self.instance_utilization.labels(*labels).set_function(_Utilization(busy_seconds))
        self.instance_healthy.labels(*labels).set_function(lambda: 1.0 if healthy() else 0.0)
        self.instance_busy.labels(*labels)  # exported at 0 from the start
        self.instance_failures.labels(*labels)

    def forget_instance(self, model: str, version: str, device: str, index: int) -> None:
        labels = (model, version, device, str(index))
        for m in (self.instance_utilization, self.instance_healthy, self.instance_busy,
                  self.instance_failures):
            try:
                m.remove(*labels)
            except KeyError:
                pass

    # -- exposition ------------------------------------------------------------
    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)

    def start_http(self, host: str = "127.0.0.1", port: int = 0, ssl_context=None,
                   authorize: Authorize | None = None) -> int:
        """Serves /metrics on host:port (0 = any free port); returns the port.
        ssl_context: HTTPS; authorize: the request's Authorization header -> HTTP status (200 = ok)."""
        self._httpd = start_metrics_http(self.registry, host, port, ssl_context, authorize)
        bound = self._httpd.server_port
        log.info("metrics on %s://%s:%s/metrics", "https" if ssl_context else "http", host, bound)
        return bound

    def stop_http(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _Utilization:
    """Busy fraction since a reference point that moves every ~10 s."""

    WINDOW_S = 10.0

    def __init__(self, busy_seconds: Callable[[], float]):
        self._busy = busy_seconds
        self._lock = threading.Lock()
        self._ref = (time.monotonic(), busy_seconds())
        self._prev = self._ref

    def __call__(self) -> float:
        now, busy = time.monotonic(), self._busy()
        with self._lock:
            t0, b0 = self._prev
            if now - self._ref[0] >= self.WINDOW_S:
                self._prev, self._ref = self._ref, (now, busy)
            elapsed = now - t0
        return min(1.0, max(0.0, (busy - b0) / elapsed)) if elapsed > 0 else 0.0
