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
    Pipelines (the server's config): detector: a detector model run on the
    whole image first, its boxes become the ROIs (send no ROIs);
    children: False = no child classifiers (None = the model's tree);
    max_child_depth: the deepest child level (None/0 = all); tta:
    "none", "flip", "dihedral" or "rotations:N:DEG" (None = the model's
    default); tta_spread: report each class's spread over the variants.
    """

    model: str | None = None
    model_version: str | None = None
    top_k: int | None = None
    min_confidence: float | None = None
    channel_order: str | None = None
    heatmap: bool = False
    heatmap_options: Any = None
    detector: str | None = None
    detector_version: str | None = None
    children: bool | None = None
    max_child_depth: int | None = None
    tta: str | None = None
    tta_spread: bool = False

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
        for name in ("model", "model_version", "detector", "detector_version", "tta"):
            check_string(name, getattr(self, name))
        depth = self.max_child_depth
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
            raise InvalidInputError("max_child_depth", f"must be an integer >= 0 (0 = all levels) or None, got {depth!r}")


def check_string(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(name, f"must be a string, got {type(value).__name__}")
