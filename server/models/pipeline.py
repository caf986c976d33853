"""What a model's config says about pipelines: its children ([[children]]),
its detector role ([detector]) and its test-time augmentation (defaults.tta).

The parsed records live here, beside ModelSpec; running them is
roiclass.server.pipeline's job. Parsers raise ValueError with the allowed
values; the config reader and the request domain prefix it with where the
value came from (the file and key, or the request field).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MAX_CHILD_DEPTH = 7  # levels below a model (Encord allows 7 nested attributes)
TTA_MODES = ("none", "flip", "dihedral", "rotations:N:DEG")
DETECTOR_FORMATS = ("yolov5", "yolov8", "yolox", "yolov8-obb")
LETTERBOX_MODES = ("center", "topleft")
ROI_RULES = ("same", "expand:F")


@dataclass(frozen=True)
class TtaMode:
    """A test-time augmentation: `name` one of none, flip, dihedral, rotations."""
    name: str = "none"
    count: int = 1  # rotations: variants
    step_deg: float = 0.0  # rotations: degrees between them

    @property
    def text(self) -> str:
        """As written in a config or a request (parse_tta(m.text) == m)."""
        if self.name == "rotations":
            return f"rotations:{self.count}:{self.step_deg:g}"
        return self.name

    @property
    def variants(self) -> int:
        return {"none": 1, "flip": 2, "dihedral": 8}.get(self.name, self.count)


def parse_tta(text: str) -> TtaMode:
    t = text.strip().lower()
    if t in ("none", "flip", "dihedral"):
        return TtaMode(t)
    parts = t.split(":")
    if len(parts) == 3 and parts[0] == "rotations":
        try:
            count, step = int(parts[1]), float(parts[2])
        except ValueError:
            count, step = 0, math.nan
        if 1 <= count <= 64 and math.isfinite(step) and 0 < abs(step) <= 180:
            return TtaMode("rotations", count, step)
        raise ValueError(f"{text!r}: rotations:N:DEG needs 1 <= N <= 64 and 0 < |DEG| <= 180")
    raise ValueError(f"{text!r} is not a test-time augmentation; allowed: {', '.join(TTA_MODES)}")


def parse_roi_rule(text: str) -> float:
    """A child's `roi`: "same" -> 1.0, "expand:F" -> F (the ROI grown F times about its centre)."""
    t = text.strip().lower()
    if t == "same":
        return 1.0
    name, _, factor = t.partition(":")
    if name == "expand":
        try:
            f = float(factor)
        except ValueError:
            f = math.nan
        if math.isfinite(f) and 0 < f <= 16:
            return f
    raise ValueError(f"{text!r}; allowed: same, expand:F with 0 < F <= 16")


@dataclass(frozen=True)
class ChildSpec:
    """One [[children]] entry: run `model` on the parent's ROI when the parent's
    best class is one of `when` (names or indices; empty = any class) with a
    score of at least `min_confidence`."""
    model: str
    version: str = ""  # "" = the latest ready version
    when: tuple[str | int, ...] = ()
    min_confidence: float = 0.0
    roi: str = "same"
    expand: float = 1.0  # from roi: the ROI's growth about its centre


@dataclass(frozen=True)
class DetectorSpec:
    """[detector]: the model is an object detector; its output is decoded as
    `format`, boxes under `confidence` dropped, then NMS at `iou`."""
    format: str
    confidence: float = 0.25
    iou: float = 0.45
    classes: tuple[str | int, ...] = ()  # kept classes (names or indices); empty = all
    agnostic: bool = False  # NMS across classes
    letterbox: str = "center"  # the image's place in the square input: center (Ultralytics) or topleft
    max_detections: int = 300
    # One image's output as the ONNX graph gives it, without the batch axis
    # (e.g. (84, 8400) for YOLOv8 with 80 classes); set by the loader.
    output_shape: tuple[int, ...] = ()
