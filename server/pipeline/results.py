"""Per-ROI results as protobuf, the same at every level of a pipeline."""
from __future__ import annotations

import numpy as np

from roiclass.server.domain import confidences_to_proto, rect_to_proto
from roiclass.server.geometry import Rect
from roiclass.server.models.spec import ModelSpec
from roiclass.v1 import classifier_pb2 as pb


def roi_result(spec: ModelSpec, rect: Rect, roi_id: str, probs: np.ndarray, top_k: int,
               min_confidence: float) -> pb.RoiResult:
    """probs: (C,) the ROI's class probabilities."""
    entries, best, score = confidences_to_proto(probs, spec.classes, top_k, min_confidence)
    return pb.RoiResult(roi_id=roi_id, aligned_roi=rect_to_proto(rect), confidences=entries,
                        class_index=best, class_name=spec.classes[best], score=score)
