"""The Prometheus series of one model version, labelled once (model, version)."""
from __future__ import annotations

from typing import Callable

from roiclass.server.metrics import DROP_REASONS, Metrics
from roiclass.server.states import ModelState



class VersionMetrics:
    """Histograms and counters are always recorded; the gauges (state, queue
    depth, instances) only while `publish` is on: a reload of a serving version
    takes them over once it replaces the old load."""

    def __init__(self, metrics: Metrics, name: str, version: str, publish: bool):
        self._m = metrics
        self._labels = (name, version)
        self.publish = publish
        self.queue_time = metrics.queue_time.labels(name, version)
        self.preprocess_time = metrics.preprocess_time.labels(name, version)
        self.inference_time = metrics.inference_time.labels(name, version)
        self.batch_size = metrics.batch_size.labels(name, version)
        self.dropped = {r: metrics.dropped.labels(name, version, r) for r in DROP_REASONS}

    def state(self, state: ModelState) -> None:
        if self.publish:
            self._m.set_model_state(*self._labels, state)

    def queue_depth(self, depth: Callable[[], int]) -> None:
        if self.publish:
            self._m.track_queue_depth(*self._labels, depth)

    def track(self, instances) -> None:
        if self.publish:
            for inst in instances:
                self._m.track_instance(*self._labels, inst.device, inst.index,
                                       lambda i=inst: i.busy_s, lambda i=inst: i.healthy)

    def forget(self, instances) -> None:
        if self.publish:
            for inst in instances:
                self._m.forget_instance(*self._labels, inst.device, inst.index)

    def instance_failed(self, inst) -> None:
        self._m.instance_failures.labels(*self._labels, inst.device, str(inst.index)).inc()
