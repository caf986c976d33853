"""Domain types of a classification call and their protobuf conversions.

protobuf -> ClassifyRequest (validated; every wrong field raises
InvalidArgument naming it) -> engine -> ClassifyRequest.to_response().
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from roiclass.server.decoding import Undecodable
from roiclass.server.errors import InvalidArgument
from roiclass.server.geometry import MIRROR_FLAG, Alignment, Rect, overlaps_image, rect_rows
from roiclass.server.images import DecodedImage, ImageLimits, decode_image
from roiclass.server.models.pipeline import MAX_CHILD_DEPTH, TtaMode, parse_tta
from roiclass.v1 import classifier_pb2 as pb



# Polygon vertices within this of the origin (the kernel's coordinate limit).
MAX_COORD = float(1 << 24)


@dataclass(frozen=True)
class RequestLimits:
    max_rois: int = 1024
    max_polygon_vertices: int = 1 << 20  # all ROIs' polygons of one request together
    max_image_side: int = 16384
    max_image_pixels: int = ImageLimits.max_pixels
    max_decoded_bytes: int = ImageLimits.max_bytes

    @cached_property  # read per request: built once
    def image(self) -> ImageLimits:
        return ImageLimits(self.max_image_side, self.max_image_pixels, self.max_decoded_bytes)


@dataclass(frozen=True)
class HeatmapRequest:
    patch_size: int | None  # None = the model's default; 0 is invalid
    stride: int | None
    max_side: int | None


@dataclass(frozen=True, eq=False)
class ClassifyRequest:
    model: str
    model_version: str
    image: DecodedImage
    rects: tuple[Rect, ...]  # in image coordinates, after alignment
    # The same ROIs as the engine takes them, built once: (N, 5) float64 rows
    # in ROI_COLUMNS order.
    rois_array: np.ndarray
    roi_ids: tuple[str, ...]
    # Per ROI: None or its polygon's rings ((M, 2) float64 arrays, image
    # coordinates); None when no ROI has one.
    polygons: tuple[list[np.ndarray] | None, ...] | None
    top_k: int | None  # None = the model's default; 0 = all classes
    min_confidence: float | None
    heatmap: HeatmapRequest | None
    request_id: str
    whole_image: bool = False  # no ROIs were sent: rects holds the whole image
    # Pipelines (server/pipeline): the detector to run first ("" = the model's
    # default when whole_image), children on/off and their depth (0 = all),
    # the TTA (None = the model's default) and whether to report its spread.
    detector: str = ""
    detector_version: str = ""
    children: bool = True
    max_child_depth: int = 0
    tta: TtaMode | None = None
    tta_spread: bool = False

    @classmethod
    def from_proto(cls, msg: pb.ClassifyObjectRequest, limits: RequestLimits) -> "ClassifyRequest":
        if isinstance(msg, Undecodable):  # a stream frame whose bytes did not parse
            raise msg.error()
        if len(msg.rois) > limits.max_rois:
            raise InvalidArgument.for_field("rois", f"has {len(msg.rois)} ROIs; at most {limits.max_rois} are allowed")
        min_conf = None
        if msg.HasField("min_confidence"):
            min_conf = msg.min_confidence
            if not (0.0 <= min_conf <= 1.0):  # NaN fails too
                raise InvalidArgument.for_field("min_confidence", f"{min_conf} is outside the allowed range [0, 1]")
        if not msg.HasField("image"):
            raise InvalidArgument.for_field("image", "is required: raw pixels or an encoded PNG/JPEG/BMP/TIFF file")
        image = decode_image(msg.image, limits.image)
        polygons = None
        if msg.rois:
            rects = tuple(_aligned_rect(i, roi, image) for i, roi in enumerate(msg.rois))
            ids = tuple(roi.id for roi in msg.rois)
            polygons = _polygons(msg.rois, limits)
        else:
            rects = (Rect(0.0, 0.0, float(image.width), float(image.height), 0.0),)
            ids = ("",)
        heatmap = None
        if msg.detector and msg.rois:
            raise InvalidArgument.for_field(
                "detector", f"runs on the whole image: send no rois with it (got {len(msg.rois)})")
        if msg.create_relevance_heatmap:
            mirrored = next((i for i, r in enumerate(msg.rois) if r.mirror), None)
            if mirrored is not None:  # the heatmap is drawn in the ROI's own, unmirrored frame
                raise InvalidArgument.for_field(
                    f"rois[{mirrored}].mirror", "cannot be combined with create_relevance_heatmap; allowed with it: false")
            opts = msg.heatmap_options
            heatmap = HeatmapRequest(*(getattr(opts, f) if opts.HasField(f) else None
                                       for f in ("patch_size", "stride", "max_side")))
        return cls(
            model=msg.model,
            model_version=msg.model_version,
            image=image,
            rects=rects,
            rois_array=_rows(rects, msg.rois),
            roi_ids=ids,
            polygons=polygons,
            top_k=msg.top_k if msg.HasField("top_k") else None,
            min_confidence=min_conf,
            heatmap=heatmap,
            request_id=msg.request_id,
            whole_image=not msg.rois,
            detector=msg.detector,
            detector_version=msg.detector_version,
            children=msg.children if msg.HasField("children") else True,
            max_child_depth=_depth(msg),
            tta=_tta(msg.tta, heatmap is not None),
            tta_spread=msg.tta_spread,
        )


def _rows(rects, rois) -> np.ndarray:
    """The engine's ROI rows: (N, 5), or (N, 6) with the kernel's flags (bit 0:
    mirror) when some ROI is mirrored."""
    rows = rect_rows(rects)
    if any(roi.mirror for roi in rois):
        flags = np.array([[float(MIRROR_FLAG) if roi.mirror else 0.0] for roi in rois])
        rows = np.hstack([rows, flags])
    return rows


def _depth(msg: pb.ClassifyObjectRequest) -> int:
    depth = msg.max_child_depth if msg.HasField("max_child_depth") else 0
    if depth > MAX_CHILD_DEPTH:
        raise InvalidArgument.for_field(
            "max_child_depth", f"{depth} is out of range; allowed: 0 (the whole tree) .. {MAX_CHILD_DEPTH}")
    return depth


def _tta(text: str, heatmap: bool) -> TtaMode | None:
    if not text:
        return None
    try:
        mode = parse_tta(text)
    except ValueError as exc:
        raise InvalidArgument.for_field("tta", str(exc)) from None
    if heatmap and mode.name != "none":
        raise InvalidArgument.for_field(
            "tta", f"{text!r} cannot be combined with create_relevance_heatmap (the heatmap explains one chip); "
                   "allowed with it: none")
    return mode


def _aligned_rect(index: int, roi: pb.Roi, image: DecodedImage) -> Rect:
    path = f"rois[{index}]"
    r = roi.rect
    for name, value in (("origin.x", r.origin.x), ("origin.y", r.origin.y), ("angle", r.angle)):
        if not math.isfinite(value):
            raise InvalidArgument.for_field(f"{path}.rect.{name}", f"{value} is not a finite number")
    for name, value in (("width", r.width), ("height", r.height)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidArgument.for_field(f"{path}.rect.{name}", f"{value} must be a finite number > 0")
    rect = Rect(r.origin.x, r.origin.y, r.width, r.height, r.angle)
    if roi.HasField("alignment"):
        a = roi.alignment
        values = (("origin.x", a.origin.x), ("origin.y", a.origin.y), ("angle", a.angle), ("scale", a.scale))
        for name, value in values:
            if not math.isfinite(value):
                raise InvalidArgument.for_field(f"{path}.alignment.{name}", f"{value} is not a finite number")
        if a.scale < 0:
            raise InvalidArgument.for_field(f"{path}.alignment.scale", f"{a.scale} must be >= 0 (0 means 1)")
        rect = Alignment(a.origin.x, a.origin.y, a.angle, a.scale or 1.0).apply(rect)
    # Common case first: the origin corner strictly inside the image means the
    # rectangle (of positive size) shares area with it; skip the full test.
    inside = 0.0 < rect.x < image.width and 0.0 < rect.y < image.height
    if not inside and not overlaps_image(rect, image.width, image.height):
        raise InvalidArgument.for_field(
            path,
            f"lies entirely outside the {image.width}x{image.height} image "
            f"(in image coordinates: origin ({rect.x:g}, {rect.y:g}), angle {rect.angle:g}, "
            f"size {rect.width:g}x{rect.height:g})",
        )
    return rect


def _polygons(rois, limits: RequestLimits) -> tuple[list[np.ndarray] | None, ...] | None:
    """Each ROI's polygon as rings, checked; None when no ROI has one."""
    if not any(roi.HasField("polygon") for roi in rois):
        return None
    total = sum(len(roi.polygon.xy) for roi in rois) // 2
    if total > limits.max_polygon_vertices:
        raise InvalidArgument.for_field(
            "rois", f"the polygons have {total} vertices; at most {limits.max_polygon_vertices} are allowed")
    return tuple(_rings(i, roi.polygon) if roi.HasField("polygon") else None for i, roi in enumerate(rois))


def _rings(index: int, polygon: pb.Polygon2D) -> list[np.ndarray]:
    path = f"rois[{index}].polygon"
    xy = np.asarray(polygon.xy, dtype=np.float64)
    if len(xy) % 2:
        raise InvalidArgument.for_field(f"{path}.xy", f"has {len(xy)} values; x, y pairs expected")
    if not (np.isfinite(xy).all() and (np.abs(xy) <= MAX_COORD).all()):
        raise InvalidArgument.for_field(f"{path}.xy", f"vertices must be finite and within +-{MAX_COORD:g}")
    points = xy.reshape(-1, 2)
    sizes = list(polygon.ring_sizes) or [len(points)]
    if sum(sizes) != len(points):
        raise InvalidArgument.for_field(
            f"{path}.ring_sizes", f"add up to {sum(sizes)} vertices but xy holds {len(points)}")
    if min(sizes) < 3:
        raise InvalidArgument.for_field(
            f"{path}.ring_sizes" if polygon.ring_sizes else f"{path}.xy",
            f"every ring needs at least 3 vertices, got ring sizes {sizes}")
    return np.split(points, np.cumsum(sizes)[:-1])


def rect_to_proto(rect: Rect) -> pb.Rectangle2D:
    return pb.Rectangle2D(
        origin=pb.Point2D(x=rect.x, y=rect.y), angle=rect.angle, width=rect.width, height=rect.height
    )


def confidences_to_proto(
    probs: np.ndarray, classes: tuple[str, ...], top_k: int, min_confidence: float
) -> tuple[list[pb.ClassConfidence], int, float]:
    """Sorted, cut classes of one ROI, and the best class (always reported)."""
    n = probs.shape[0]
    k = n if top_k <= 0 else min(top_k, n)
    if k < n:
        top = np.argpartition(-probs, k - 1)[:k]
        order = top[np.argsort(-probs[top], kind="stable")]
    else:
        order = np.argsort(-probs, kind="stable")
    best = int(order[0])
    values = probs[order].tolist()
    entries = [
        pb.ClassConfidence(class_index=int(i), class_name=classes[i], confidence=v)
        for i, v in zip(order.tolist(), values)
        if v >= min_confidence
    ]
    return entries, best, float(probs[best])
