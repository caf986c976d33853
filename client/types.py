"""Plain dataclasses for requests and results, and their proto conversions.

Callers never need to touch protobuf messages: ROIs go in as `Roi` (or
tuples), results come back as `ClassifyResult`, models as `ModelInfo`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from roiclass.server import formats
from roiclass.server.geometry import ROI_COLUMNS
from roiclass.v1 import classifier_pb2 as pb

from .errors import ClassifierError, InvalidInputError


@dataclass(frozen=True)
class Alignment:
    """A coordinate system on the image: image = (x, y) + scale * R(angle) * local."""

    x: float
    y: float
    angle: float = 0.0
    scale: float = 1.0

    def to_proto(self) -> pb.CoordinateSystem2D:
        return pb.CoordinateSystem2D(
            origin=pb.Point2D(x=self.x, y=self.y), angle=self.angle, scale=self.scale
        )


@dataclass(frozen=True)
class Roi:
    """A rectangle with top-left corner (x, y), rotated clockwise by `angle`
    degrees about that corner; in `alignment` coordinates when given."""

    x: float
    y: float
    width: float
    height: float
    angle: float = 0.0
    id: str = ""
    alignment: Alignment | None = None
    mirror: bool = False  # the chip flipped left-right (along the ROI's width)

    def to_proto(self) -> pb.Roi:
        roi = pb.Roi(rect=_rect_proto(self.x, self.y, self.width, self.height, self.angle), id=self.id,
                     mirror=bool(self.mirror))
        if self.alignment is not None:
            roi.alignment.CopyFrom(self.alignment.to_proto())
        return roi

    @classmethod
    def from_rect(cls, rect: pb.Rectangle2D, id: str = "") -> "Roi":
        return cls(rect.origin.x, rect.origin.y, rect.width, rect.height, rect.angle, id)

    def corners(self) -> np.ndarray:
        """The 4 corners in image coordinates (ignores `alignment`), shape (4, 2):
        top-left, top-right, bottom-right, bottom-left."""
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        local = np.array([[0, 0], [self.width, 0], [self.width, self.height], [0, self.height]], float)
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.array([self.x, self.y])


@dataclass(frozen=True)
class HeatmapOptions:
    """Occlusion heatmap parameters in model input pixels; 0 = model default."""

    patch_size: int = 0
    stride: int = 0
    max_side: int = 0

    def to_proto(self) -> pb.HeatmapOptions:
        for name in ("patch_size", "stride", "max_side"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise InvalidInputError(f"heatmap_options.{name}", f"must be an integer >= 0, got {value!r}")
        # Only non-zero fields are set: an explicit 0 is invalid in the proto (unset = model default).
        fields = {name: getattr(self, name) for name in ("patch_size", "stride", "max_side")}
        return pb.HeatmapOptions(**{name: int(value) for name, value in fields.items() if value})


@dataclass(frozen=True)
class Frame:
    """One frame of a stream: an image (anything `classify` takes) and its ROIs."""

    image: Any
    rois: Sequence[Any] | None = None
    request_id: str = ""


@dataclass(frozen=True)
class ClassScore:
    index: int
    name: str
    confidence: float


@dataclass(frozen=True, eq=False)
class Heatmap:
    """Relevance of each part of the ROI to the predicted class.

    `image`: uint8 (h, w), the ROI's size capped by the server's max_side
    (255 = largest probability drop); `relevance`: float32 (grid_h, grid_w)
    probability drop per occluded cell; image = round(relevance / scale * 255).
    """

    image: np.ndarray
    relevance: np.ndarray
    scale: float
    patch_size: int
    stride: int


@dataclass(frozen=True)
class RoiResult:
    roi_id: str
    aligned_roi: Roi  # in image coordinates, after alignment
    confidences: tuple[ClassScore, ...]  # descending, cut by top_k / min_confidence
    class_index: int
    class_name: str
    score: float
    heatmap: Heatmap | None = None
    # Pipelines: the child classifiers' results where their conditions held,
    # the detector's box this ROI came from, the test-time augmentation run.
    children: tuple["ChildResult", ...] = ()
    detection: "Detection | None" = None
    tta: "TtaSummary | None" = None


@dataclass(frozen=True)
class ChildResult:
    """One child model on its parent's ROI: exactly one of result and error is set."""

    model: str
    model_version: str
    result: RoiResult | None
    error: ClassifierError | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Detection:
    """The detector's box (image coordinates; rotated for oriented boxes) and class."""

    box: Roi
    class_index: int
    class_name: str
    confidence: float
    model: str
    model_version: str


@dataclass(frozen=True)
class TtaSummary:
    mode: str
    variants: int
    spread: tuple[float, ...]  # per class index; empty unless tta_spread was asked for


@dataclass(frozen=True)
class Timing:
    """Server-side time spent, in microseconds."""

    queue_us: int
    preprocess_us: int
    inference_us: int
    total_us: int


@dataclass(frozen=True)
class ClassifyResult:
    model: str
    model_version: str
    results: tuple[RoiResult, ...]
    timing: Timing
    request_id: str


@dataclass(frozen=True)
class StreamResult:
    """One frame's outcome: exactly one of `result` and `error` is set."""

    request_id: str
    result: ClassifyResult | None
    error: ClassifierError | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class InstanceInfo:
    device: str
    provider: str
    index: int
    healthy: bool


@dataclass(frozen=True)
class ModelVersionInfo:
    version: str
    state: str  # "LOADING", "READY", "FAILED", "UNLOADED"
    reason: str
    instances: tuple[InstanceInfo, ...]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    versions: tuple[ModelVersionInfo, ...]
    classes: tuple[str, ...]
    input_width: int
    input_height: int
    channels: int
    channel_order: str
    normalization: str
    layout: str
    max_batch_size: int
    resize: str
    format: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Pipelines (its config): child model -> the parent classes that trigger it
    # (empty = any); the detector format when it is a detector ("" = a
    # classifier); defaults.detector and defaults.tta ("" = unset).
    children: tuple[tuple[str, tuple[str, ...]], ...] = ()
    detector_format: str = ""
    default_detector: str = ""
    default_tta: str = ""


@dataclass(frozen=True)
class ModelList:
    models: tuple[ModelInfo, ...]
    default_model: str

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def get(self, name: str) -> ModelInfo | None:
        return next((m for m in self.models if m.name == name), None)


# ---------------------------------------------------------------- requests


def _rect_proto(x: float, y: float, width: float, height: float, angle: float) -> pb.Rectangle2D:
    return pb.Rectangle2D(origin=pb.Point2D(x=x, y=y), angle=angle, width=width, height=height)


def to_roi_proto(roi: Any, index: int = 0) -> pb.Roi:
    """A Roi, a pb.Roi or a tuple (x, y, w, h[, angle]) -> pb.Roi."""
    where = f"rois[{index}]"
    if isinstance(roi, pb.Roi):
        return roi
    if isinstance(roi, Roi):
        numbers = (roi.x, roi.y, roi.width, roi.height, roi.angle)
        _check_numbers(where, numbers)
        if roi.alignment is not None and not isinstance(roi.alignment, Alignment):
            raise InvalidInputError(f"{where}.alignment", f"must be an Alignment, got {type(roi.alignment).__name__}")
        return roi.to_proto()
    if isinstance(roi, (tuple, list, np.ndarray)) and len(roi) in (4, 5):
        numbers = tuple(roi)
        _check_numbers(where, numbers)
        return _rect_and_id(*(float(v) for v in numbers))
    raise InvalidInputError(
        where, f"must be a Roi or a tuple (x, y, width, height[, angle]), got {roi!r}"
    )


def _rect_and_id(x: float, y: float, w: float, h: float, angle: float = 0.0) -> pb.Roi:
    return pb.Roi(rect=_rect_proto(x, y, w, h, angle))


def _check_numbers(where: str, numbers: Iterable[Any]) -> None:
    for name, value in zip(ROI_COLUMNS, numbers):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidInputError(f"{where}.{name}", f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise InvalidInputError(f"{where}.{name}", f"must be finite, got {value!r}")


def to_heatmap_options_proto(options: Any) -> pb.HeatmapOptions:
    """HeatmapOptions, a dict of its fields, or a pb.HeatmapOptions -> proto."""
    if isinstance(options, pb.HeatmapOptions):
        return options
    if isinstance(options, dict):
        unknown = set(options) - {"patch_size", "stride", "max_side"}
        if unknown:
            raise InvalidInputError(
                "heatmap_options", f"unknown keys {sorted(unknown)}; allowed: patch_size, stride, max_side"
            )
        options = HeatmapOptions(**options)
    if not isinstance(options, HeatmapOptions):
        raise InvalidInputError("heatmap_options", f"must be a HeatmapOptions or dict, got {type(options).__name__}")
    return options.to_proto()


# ----------------------------------------------------------------- results


def raw_to_array(raw: pb.RawImage) -> np.ndarray:
    """A GRAY8 / GRAY16 / 3- or 4-channel RawImage -> (h, w[, c]) array."""
    fmt = formats.by_proto(raw.pixel_format)
    if fmt is None:
        raise ValueError(f"unsupported pixel_format {formats.proto_name(raw.pixel_format)}")
    channels, dtype = fmt.channels, fmt.dtype
    row = raw.width * fmt.bytes_per_pixel
    stride = raw.row_stride or row
    if raw.height and len(raw.pixels) < (raw.height - 1) * stride + row:
        raise ValueError(f"RawImage pixels too short: {len(raw.pixels)} bytes for {raw.width}x{raw.height}")
    buffer = np.frombuffer(raw.pixels, np.uint8)
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(raw.height, row), strides=(stride, 1))
    array = np.ascontiguousarray(rows).view(dtype).reshape(raw.height, raw.width, channels)
    return array[:, :, 0] if channels == 1 else array


def heatmap_from_proto(heatmap: pb.RelevanceHeatmap) -> Heatmap:
    image = raw_to_array(heatmap.image) if heatmap.image.width else np.zeros((0, 0), np.uint8)
    relevance = np.asarray(heatmap.relevance, np.float32)
    if relevance.size != heatmap.grid_width * heatmap.grid_height:
        raise ValueError(
            f"heatmap has {relevance.size} relevance values for a {heatmap.grid_width}x{heatmap.grid_height} grid"
        )
    return Heatmap(
        image=image,
        relevance=relevance.reshape(heatmap.grid_height, heatmap.grid_width),
        scale=heatmap.scale,
        patch_size=heatmap.patch_size,
        stride=heatmap.stride,
    )


def roi_result_from_proto(result: pb.RoiResult) -> RoiResult:
    return RoiResult(
        roi_id=result.roi_id,
        aligned_roi=Roi.from_rect(result.aligned_roi, result.roi_id),
        confidences=tuple(ClassScore(c.class_index, c.class_name, c.confidence) for c in result.confidences),
        class_index=result.class_index,
        class_name=result.class_name,
        score=result.score,
        heatmap=heatmap_from_proto(result.heatmap) if result.HasField("heatmap") else None,
        children=tuple(_child_from_proto(c) for c in result.children),
        detection=_detection_from_proto(result.detection) if result.HasField("detection") else None,
        tta=TtaSummary(result.tta.mode, result.tta.variants, tuple(result.tta.spread))
        if result.HasField("tta") else None,
    )


def _child_from_proto(child: pb.ChildResult) -> ChildResult:
    if child.HasField("error"):
        return ChildResult(child.model, child.model_version, None, ClassifierError.from_status(child.error))
    return ChildResult(child.model, child.model_version, roi_result_from_proto(child.result), None)


def _detection_from_proto(d: pb.Detection) -> Detection:
    return Detection(Roi.from_rect(d.box), d.class_index, d.class_name, d.confidence, d.model, d.model_version)


def classify_result_from_proto(response: pb.ClassifyObjectResponse) -> ClassifyResult:
    t = response.timing
    return ClassifyResult(
        model=response.model,
        model_version=response.model_version,
        results=tuple(roi_result_from_proto(r) for r in response.results),
        timing=Timing(t.queue_us, t.preprocess_us, t.inference_us, t.total_us),
        request_id=response.request_id,
    )


def model_info_from_proto(info: pb.ModelInfo) -> ModelInfo:
    return ModelInfo(
        name=info.name,
        versions=tuple(
            ModelVersionInfo(
                version=v.version,
                state=pb.ModelVersionInfo.State.Name(v.state),
                reason=v.reason,
                instances=tuple(InstanceInfo(i.device, i.provider, i.index, i.healthy) for i in v.instances),
            )
            for v in info.versions
        ),
        classes=tuple(info.classes),
        input_width=info.input_width,
        input_height=info.input_height,
        channels=info.channels,
        channel_order=info.channel_order,
        normalization=info.normalization,
        layout=info.layout,
        max_batch_size=info.max_batch_size,
        resize=info.resize,
        format=info.format,
        mean=tuple(info.mean),
        std=tuple(info.std),
        children=tuple((c.model, tuple(c.when)) for c in info.children),
        detector_format=info.detector.format if info.HasField("detector") else "",
        default_detector=info.default_detector,
        default_tta=info.default_tta,
    )


def model_list_from_proto(response: pb.ListModelsResponse) -> ModelList:
    return ModelList(tuple(model_info_from_proto(m) for m in response.models), response.default_model)


def to_jsonable(value: Any) -> Any:
    """Dataclass results -> plain dicts/lists (numpy arrays as nested lists)."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: to_jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, ClassifierError):
        return {
            "code": value.code.name,
            "message": value.message,
            "details": [{"field": v.field, "description": v.description} for v in value.details],
        }
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


__all__ = [
    "Alignment",
    "ClassScore",
    "ClassifyResult",
    "Frame",
    "Heatmap",
    "HeatmapOptions",
    "InstanceInfo",
    "ModelInfo",
    "ModelList",
    "ModelVersionInfo",
    "Roi",
    "RoiResult",
    "StreamResult",
    "Timing",
]
