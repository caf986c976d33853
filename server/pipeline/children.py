"""Child classifiers ([[children]] of a model's config) on their parent's ROIs."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from roiclass.server.geometry import Rect
from roiclass.server.images import DecodedImage
from roiclass.server.models.spec import ModelSpec
from roiclass.v1 import classifier_pb2 as pb


@dataclass(frozen=True)
class ChildContext:
    """What every child job of one request shares."""
    engine: object
    manager: object  # .resolve(name, version) -> LoadedModel
    image: DecodedImage
    deadline: float | None
    caller: str
    top_k: int | None  # the request's; None = each model's default
    min_confidence: float | None
    max_depth: int  # levels below the request's model, 1..MAX_CHILD_DEPTH


async def run_children(ctx: ChildContext, parent_spec: ModelSpec, rects: Sequence[Rect], polygons,
                       results: Sequence[pb.RoiResult], depth: int = 1) -> None:
    """Fills results[i].children (stub: the children engineer writes it)."""
    return None
