"""A ClassifyResult as the lines `roiclass classify` prints: one block per ROI,
its detection and TTA, and its children's tree indented below it."""
from __future__ import annotations

from .types import ClassifyResult, RoiResult


def result_lines(result: ClassifyResult) -> list[str]:
    t = result.timing
    lines = [
        f"model {result.model} version {result.model_version}: "
        f"{t.total_us / 1000:.1f} ms (queue {t.queue_us / 1000:.1f}, "
        f"preprocess {t.preprocess_us / 1000:.1f}, inference {t.inference_us / 1000:.1f})"
    ]
    if not result.results:
        lines.append("no ROIs (the detector kept no box)")
    for i, roi_result in enumerate(result.results):
        name = f" {roi_result.roi_id!r}" if roi_result.roi_id else ""
        lines.append(f"ROI {i}{name}: {_rect(roi_result)}")
        lines += _body(roi_result, "  ")
    return lines


def _rect(r: RoiResult) -> str:
    a = r.aligned_roi
    return f"x={a.x:g} y={a.y:g} w={a.width:g} h={a.height:g} angle={a.angle:g}"


def _body(r: RoiResult, pad: str) -> list[str]:
    lines = []
    if r.detection is not None:
        d = r.detection
        lines.append(f"{pad}detected {d.class_name} ({d.class_index}) {d.confidence:.4f} by {d.model} {d.model_version}")
    if r.tta is not None:
        lines.append(f"{pad}tta {r.tta.mode}: mean of {r.tta.variants} variants")
    scores = r.confidences or ()
    if not scores:
        lines.append(f"{pad}{r.class_index:>5}  {r.class_name:<40} {r.score:.4f}")
    for score in scores:
        lines.append(f"{pad}{score.index:>5}  {score.name:<40} {score.confidence:.4f}")
    for child in r.children:
        head = f"{pad}└ {child.model} {child.model_version}"
        if child.error is not None:
            lines.append(f"{head}: error {child.error.code.name}: {child.error.message}")
            continue
        lines.append(f"{head}: {child.result.class_name} {child.result.score:.4f}")
        lines += _body(child.result, pad + "    ")
    return lines
