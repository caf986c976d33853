"""RequestOptions: how to classify, the one list of the knobs that classify and
stream take on every client surface (Classifier, AsyncClassifier, build_request).

A field added here reaches every surface; a unit test keeps the sync
Classifier's spelled-out parameters equal to these fields.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError


@dataclass(frozen=True)
class RequestOptions:
    """model / model_version: "" or None = the server's default model / the
    latest ready version. top_k: classes returned per ROI (0 = all),
    min_confidence: leave out classes below it (0..1); None = the model's
    configured default. channel_order: what a colour array holds ("RGB",
    "BGR", "RGBA", "BGRA", "GRAY"; None = by channel count). heatmap: also
    compute an occlusion relevance heatmap per ROI, tuned by heatmap_options
    (HeatmapOptions, a dict of its fields, or None = model defaults).
    """

    model: str | None = None
    model_version: str | None = None
    top_k: int | None = None
    min_confidence: float | None = None
    channel_order: str | None = None
    heatmap: bool = False
    heatmap_options: Any = None

    def check(self) -> None:
        """Raises InvalidInputError naming the first wrong field. Called when a
        request is built, so a stream answers a wrong option per frame."""
        top_k = self.top_k
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise InvalidInputError(
                "top_k", f"must be an integer >= 0 (0 = all classes) or None (model default), got {top_k!r}"
            )
        confidence = self.min_confidence
        if confidence is not None and (
            isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not (0.0 <= confidence <= 1.0)
        ):
            raise InvalidInputError(
                "min_confidence", f"must be a number in 0..1 or None (model default), got {confidence!r}"
            )
        for name in ("model", "model_version"):
            check_string(name, getattr(self, name))


def check_string(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(name, f"must be a string, got {type(value).__name__}")
