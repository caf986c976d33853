"""The messages both clients (Classifier, AsyncClassifier) send and read.

Requests are built and checked here, before anything is sent, so the sync
and the asyncio client reject the same input with the same InvalidInputError;
stream responses become StreamResults here.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import grpc
import numpy as np
from grpc_health.v1 import health_pb2

from roiclass.v1 import classifier_pb2 as pb

from .errors import ClassifierError, InvalidInputError
from .images import to_image_proto
from .options import RequestOptions, check_string
from .types import Frame, Roi, StreamResult, classify_result_from_proto, to_heatmap_options_proto, to_roi_proto


def build_request(image: Any, rois: Any = None, *, request_id: str = "", polygons: Any = None,
                  **options: Any) -> pb.ClassifyObjectRequest:
    """The ClassifyObjectRequest that Classifier.classify sends (see there);
    `options` are RequestOptions' fields (model=, top_k=, ...)."""
    return classify_request(image, rois, RequestOptions(**options), request_id, polygons)


def classify_request(
    image: Any, rois: Any, options: RequestOptions, request_id: str = "", polygons: Any = None
) -> pb.ClassifyObjectRequest:
    """One image's request; raises InvalidInputError for bad input. polygons:
    None, or one mask per ROI (see roi_proto)."""
    options.check()
    check_string("request_id", request_id)
    roi_list = _roi_list(rois)
    if polygons is not None and len(polygons) != len(roi_list):
        raise InvalidInputError("polygons", f"has {len(polygons)} entries; one per ROI ({len(roi_list)}) "
                                "expected (None = no mask)")
    masks = polygons if polygons is not None else [None] * len(roi_list)
    image_msg = to_image_proto(image, options.channel_order)
    request = pb.ClassifyObjectRequest(
        model=options.model or "",
        model_version=options.model_version or "",
        rois=[roi_proto(roi, mask, i) for i, (roi, mask) in enumerate(zip(roi_list, masks))],
        create_relevance_heatmap=bool(options.heatmap),
        request_id=request_id or "",
        detector=options.detector or "",
        detector_version=options.detector_version or "",
        tta=options.tta or "",
        tta_spread=bool(options.tta_spread),
    )
    # Not through the constructor: upb merges a message handed to it field by
    # field (1 ms for a 1080p RGB frame alone, 2-9 ms on a busy machine);
    # CopyFrom is 0.3 ms (bench/README.md, video).
    request.image.CopyFrom(image_msg)
    # Optional fields: left unset, the server uses the model's defaults.
    if options.top_k is not None:
        request.top_k = options.top_k
    if options.min_confidence is not None:
        request.min_confidence = options.min_confidence
    if options.children is not None:
        request.children = bool(options.children)
    if options.max_child_depth is not None:
        request.max_child_depth = options.max_child_depth
    if options.heatmap_options is not None:
        request.heatmap_options.CopyFrom(to_heatmap_options_proto(options.heatmap_options))
    return request


def roi_proto(roi: Any, polygon: Any = None, index: int = 0) -> pb.Roi:
    """An ROI (Roi, pb.Roi or (x, y, w, h[, angle])) with an optional polygon
    mask, as a pb.Roi (pb.Roi objects pass through every client call, stream
    frames included). polygon: None, an (M, 2) array-like ring, a list of rings
    (outer first, then holes; even-odd), or a shapely Polygon; image pixel
    coordinates. Model input samples whose source point lies outside the
    polygon take the model's fill."""
    msg = to_roi_proto(roi, index)
    if polygon is None:
        return msg
    out = pb.Roi()
    out.CopyFrom(msg)
    out.polygon.CopyFrom(polygon_proto(polygon, f"polygons[{index}]"))
    return out


def polygon_proto(polygon: Any, where: str = "polygon") -> pb.Polygon2D:
    """A polygon (see roi_proto) -> pb.Polygon2D; a ring's repeated closing vertex is dropped."""
    if hasattr(polygon, "exterior") and hasattr(polygon, "interiors"):  # shapely
        rings = [polygon.exterior.coords] + [r.coords for r in polygon.interiors]
    elif isinstance(polygon, np.ndarray) and polygon.ndim == 2:
        rings = [polygon]
    else:
        try:
            rings = list(polygon)
        except TypeError:
            raise InvalidInputError(where, f"must be an (M, 2) ring, a list of rings or a shapely Polygon, "
                                    f"got {type(polygon).__name__}") from None
        if rings and np.ndim(rings[0]) == 1:  # a list of (x, y) pairs: one ring
            rings = [rings]
    xy, sizes = [], []
    for i, ring in enumerate(rings):
        try:
            points = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{where}[{i}]", "must be (M, 2) numbers") from None
        if points.ndim == 2 and len(points) > 3 and np.array_equal(points[0], points[-1]):
            points = points[:-1]
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise InvalidInputError(f"{where}[{i}]", f"must be (M, 2) with M >= 3 vertices, got shape {points.shape}")
        if not all(math.isfinite(v) for v in points.ravel().tolist()):
            raise InvalidInputError(f"{where}[{i}]", "vertices must be finite")
        xy.append(points.ravel())
        sizes.append(len(points))
    if not sizes:
        raise InvalidInputError(where, "has no ring")
    msg = pb.Polygon2D(xy=np.concatenate(xy).tolist())
    if len(sizes) > 1:
        msg.ring_sizes.extend(sizes)
    return msg


def frame_request(frame: Any, options: RequestOptions) -> pb.ClassifyObjectRequest | StreamResult:
    """A stream frame (a Frame or a bare image) -> its request, or, when the
    frame is bad, the error StreamResult that takes its place in the stream."""
    if not isinstance(frame, Frame):
        frame = Frame(frame)
    try:
        return classify_request(frame.image, frame.rois, options, frame.request_id)
    except ClassifierError as error:
        return StreamResult(frame.request_id or "", None, error)


def stream_result(response: pb.ClassifyObjectStreamResponse) -> StreamResult:
    """One stream response -> its frame's StreamResult (result or error)."""
    if response.HasField("error"):
        return StreamResult(response.request_id, None, ClassifierError.from_status(response.error))
    return StreamResult(response.request_id, classify_result_from_proto(response.response), None)


def missing_answer(request_id: str) -> ClassifierError:
    """The error of a stream that ended before answering a frame it was sent."""
    return ClassifierError(
        grpc.StatusCode.UNKNOWN, f"the server ended the stream before answering frame {request_id!r}"
    )


def ended_early() -> ClassifierError:
    """The error of a stream that ended while frames were still coming."""
    return ClassifierError(grpc.StatusCode.UNKNOWN, "the server ended the stream early")


def model_request(name: str, version: str) -> pb.GetModelRequest:
    if not isinstance(name, str) or not name:
        raise InvalidInputError("name", f"must be a model name, got {name!r}")
    return pb.GetModelRequest(name=name, version=version or "")


def health_request(model: str) -> health_pb2.HealthCheckRequest:
    """The server's health ("") or one model's (its name)."""
    return health_pb2.HealthCheckRequest(service=model or "")


def serving_status(response: health_pb2.HealthCheckResponse) -> str:
    """"SERVING", "NOT_SERVING", ..."""
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def _roi_list(rois: Any) -> Sequence[Any]:
    if rois is None:
        return ()
    if isinstance(rois, (Roi, pb.Roi)):
        return (rois,)
    if isinstance(rois, (str, bytes)) or not hasattr(rois, "__len__"):
        raise InvalidInputError("rois", f"must be a list of Roi or (x, y, width, height[, angle]), got {rois!r}")
    # A bare (x, y, w, h[, angle]) tuple is one ROI, not a list of numbers.
    if len(rois) in (4, 5) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rois):
        return (rois,)
    return rois
