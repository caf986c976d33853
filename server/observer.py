"""The one observer of classification requests: ClassifyObject calls and the
frames of ClassifyObjectStream alike, counted by roiclass_requests and timed
by roiclass_request_latency_seconds (model, version, code)."""
from __future__ import annotations

from roiclass.server.metrics import Metrics
from roiclass.v1 import classifier_pb2 as pb

_SERVICE = pb.DESCRIPTOR.services_by_name["ObjectClassifier"]
# Unary calls that are one request each; a stream's frames are observed one by one.
REQUEST_CALLS = frozenset({f"/{_SERVICE.full_name}/ClassifyObject"})
UNKNOWN_MODEL = "_unknown"


class RequestObserver:
    def __init__(self, metrics: Metrics, manager):
        self._metrics = metrics
        self._manager = manager  # default_model and knows(name): the model label

    def observes(self, method: str) -> bool:
        """Whether a whole call of `method` is one request."""
        return method in REQUEST_CALLS

    def observe(self, model: str, version: str, code: str, seconds: float) -> None:
        """model: as requested ("" = the default); version: the one that answered
        ("" when the request failed); code: the status code's name."""
        self._metrics.observe_request(self._model_label(model), version, code, seconds)

    def _model_label(self, requested: str) -> str:
        # Label values come from clients: unknown names share one series, so a
        # client cannot grow the metrics without bound.
        name = requested or self._manager.default_model
        return name if self._manager.knows(name) else UNKNOWN_MODEL
